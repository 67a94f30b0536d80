"""The one exception type a user sees.

Anything raised as ``AssayError`` reaches the user as a single line
``assay: error: <message>`` and a non-zero exit, never as a traceback. The
message says what is wrong and, where it can, what to do next.
"""


class AssayError(Exception):
    """A problem with the user's input or environment, reported in one line."""

    exit_code = 2
