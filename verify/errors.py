"""The verifier's own user-facing error type (verify/ imports nothing from fuzz/).

Anything raised as ``VerifyError`` reaches the user of ``assay verify`` as a single line
``assay: error: <message>`` and exit code ``exit_code`` (2), never a traceback. The
message says what is wrong and, where it can, what to do next.
"""


class VerifyError(Exception):
    """A problem with the user's network, property, point or flags, reported in one line."""

    exit_code = 2


class VerifyInputError(ValueError):
    """Bad input to the Python API (wrong point length, eps < 0, NaN box, ...).

    A ``ValueError`` for API callers; the CLI turns it into a one-line ``VerifyError``.
    """
