"""One module per ``assay`` subcommand group.

Each module defines ``register(subparsers)``, which adds its parser(s) and sets
``func`` (a callable taking the parsed args and returning an exit code). Heavy
imports (torch, z3) happen inside the handlers so that ``assay --help`` is fast.
"""

# Order is the order in `assay --help`.
COMMAND_MODULES = [
    "fuzz.commands.traces",
    "fuzz.commands.rules",
    "fuzz.commands.gen",
    "fuzz.commands.fuzz",
    "fuzz.commands.triage",
    "verify.command",
]


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (a bad value is argparse's one-line error)."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_seconds(text: str) -> float:
    """argparse type: a number of seconds > 0."""
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value
