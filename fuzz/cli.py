"""The ``assay`` console command: a thin dispatcher over subcommand modules."""

from __future__ import annotations

import argparse
import importlib
import json
import sys

from fuzz.commands import COMMAND_MODULES
from fuzz.errors import AssayError
from verify.errors import VerifyError


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag ends in one line and exit 2 (argparse's own code)."""

    def error(self, message):  # pragma: no cover - exercised through the CLI tests
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="assay",
        description=(
            "Assay: differential fuzzing of PyTorch compilers from inferred operator rules, "
            "triage of the failures it saves, and Z3 robustness verification of small ReLU networks."
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a subcommand not built yet must not break the others
            if exc.name == name:
                continue
            raise
        module.register(sub)
    return parser


def print_json(obj) -> None:
    """Print one JSON document on stdout (the form scripts read with --json)."""
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        # A group without its action (e.g. `assay rules`): show that group's help.
        (getattr(args, "group_parser", None) or parser).print_help()
        return 2
    try:
        code = func(args)
    except AssayError as exc:
        sys.stderr.write(f"assay: error: {exc}\n")
        return exc.exit_code
    except VerifyError as exc:
        sys.stderr.write(f"assay: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("assay: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0
    return int(code or 0)


if __name__ == "__main__":  # python -m fuzz.cli
    sys.exit(main())
