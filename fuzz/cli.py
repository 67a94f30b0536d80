"""The ``assay`` console command: a thin dispatcher over subcommand modules.

Only the standard library is imported at module level, so that a Ctrl-C at any moment after
start-up (even while the subcommand modules load) ends in one line, never a traceback.
"""

from __future__ import annotations

import sys

EXAMPLES = """\
examples:
  assay fuzz --time 8h --workers 8 --out crashes/     an overnight campaign
  assay triage list --dir crashes/                    what it found, one line per signature
  assay triage reduce ID --dir crashes/               shrink a case to the operators that matter
  assay gen --count 10 --nodes 6 --out models/        write 10 random valid models as programs
  assay verify net.onnx --vnnlib prop.vnnlib          prove a property or find a counterexample
  assay COMMAND --help                                each command's options, with examples
"""


def version_text() -> str:
    """``assay X (torch Y, python Z)``: what a bug report needs to say about this install."""
    from importlib import metadata

    try:
        assay = metadata.version("assay")
    except metadata.PackageNotFoundError:  # run from a checkout without installing
        assay = "unknown"
    try:
        torch = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch = "not installed"
    return f"assay {assay} (torch {torch}, python {sys.version.split()[0]})"


def build_parser():
    import argparse

    from fuzz.commands import fuzz as fuzz_command
    from fuzz.commands import gen, rules, traces, triage
    from verify import command as verify_command

    class _Parser(argparse.ArgumentParser):
        """argparse, but a bad flag ends in one line and exit 2 (argparse's own code)."""

        def error(self, message):
            self.exit(2, f"assay: error: {message} (see '{self.prog} --help')\n")

    parser = _Parser(
        prog="assay",
        description=(
            "Assay: differential fuzzing of PyTorch compilers from inferred operator rules, "
            "triage of the failures it saves, and Z3 robustness verification of small ReLU networks."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=version_text())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    # One module per subcommand group, in the order of `assay --help`.
    for module in (traces, rules, gen, fuzz_command, triage, verify_command):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``assay ARGV``; returns the exit status (also for --help and argparse's own errors)."""
    try:
        return _run(argv)
    except SystemExit as exc:  # argparse: --help, --version, a bad flag
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except KeyboardInterrupt:
        sys.stderr.write("assay: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0


def _run(argv: list[str] | None) -> int:
    from fuzz.errors import AssayError
    from verify.errors import VerifyError

    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        # A group without its action (e.g. `assay rules`): show that group's help.
        (getattr(args, "group_parser", None) or parser).print_help()
        return 2
    # numpy before any command imports torch: torch's C start-up imports numpy itself and clears
    # whatever that import raises, so a Ctrl-C landing in it was swallowed (the command then ran
    # on and exited 0); imported here, a Ctrl-C in it reaches main's handler
    import numpy  # noqa: F401

    try:
        code = func(args)
    except (AssayError, VerifyError) as exc:
        sys.stderr.write(f"assay: error: {exc}\n")
        return exc.exit_code
    return int(code or 0)


if __name__ == "__main__":  # python -m fuzz.cli
    sys.exit(main())
