"""One module per ``assay`` subcommand group.

Each module defines ``register(subparsers)``, which adds its parser(s) and sets
``func`` (a callable taking the parsed args and returning an exit code); ``fuzz/cli.py``
lists them in the order of ``assay --help``. Heavy
imports (torch, z3) happen inside the handlers so that ``assay --help`` is fast.
"""

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


def print_json(obj) -> None:
    """Print one JSON document on stdout (the form scripts read with --json)."""
    import json
    import sys

    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
