"""One module per ``assay`` subcommand group.

Each module defines ``register(subparsers)``, which adds its parser(s) and sets
``func`` (a callable taking the parsed args and returning an exit code); ``fuzz/cli.py``
lists them in the order of ``assay --help``. Heavy imports (torch, z3) happen inside the
handlers so that ``assay --help`` is fast.
"""

import argparse


class ExamplesFormatter(argparse.HelpFormatter):
    """Wraps descriptions as usual but prints an ``examples:`` block line by line."""

    def _fill_text(self, text, width, indent):
        if text.startswith("examples:"):
            return "\n".join(indent + line for line in text.splitlines())
        return super()._fill_text(text, width, indent)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (a bad value is argparse's one-line error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_seconds(text: str) -> float:
    """argparse type: a number of seconds > 0."""
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


def check_output_dir(path: str, flag: str = "--out") -> str:
    """Can ``path`` be (or become) a writable directory? A one-line ``AssayError`` naming the flag
    if not (a file in its place or on its way, a place the user may not write); writes nothing."""
    import os
    from pathlib import Path

    from fuzz.errors import AssayError

    p = Path(path).absolute()
    if p.exists() and not p.is_dir():
        raise AssayError(f"{flag} {path} is a file, not a directory; give a directory path")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise AssayError(f"{flag} {path}: {parent} is a file, not a directory")
            if not p.exists() and not os.access(parent, os.W_OK | os.X_OK):
                raise AssayError(f"cannot create {flag} {path}: {parent} is not writable")
            break
    if p.exists() and not os.access(p, os.W_OK | os.X_OK):
        raise AssayError(f"{flag} {path} is not writable; choose another directory")
    return path


def output_dir(path: str, flag: str = "--out") -> str:
    """``check_output_dir``, then create the directory if it is missing."""
    from pathlib import Path

    from fuzz.errors import AssayError

    check_output_dir(path, flag)
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AssayError(f"cannot create {flag} {path}: {exc.strerror or exc}") from None
    return path


def output_file(path: str, flag: str = "--out") -> str:
    """Like ``output_dir`` for the folder a file goes in; ``path`` itself must not be a directory."""
    import os

    from fuzz.errors import AssayError

    if os.path.isdir(path):
        raise AssayError(f"{flag} {path} is a directory; give a file path")
    output_dir(os.path.dirname(os.path.abspath(path)), flag=f"{flag} {path}: folder")
    return path


def command_group(sub, name: str, help: str, description: str, examples: str):
    """Add ``assay NAME`` as a group of subcommands; returns its subparsers.

    ``assay NAME`` alone prints the group's help (``func=None``); ``examples`` (one command and
    what it does per line) is printed under the help as written.
    """
    p = sub.add_parser(name, help=help, description=description, epilog="examples:\n" + examples.rstrip(),
                       formatter_class=ExamplesFormatter)
    p.set_defaults(func=None, group_parser=p)
    return p.add_subparsers(dest=f"{name}_command", metavar="SUBCOMMAND", parser_class=type(p))


# flag (args attribute), policy axis, what its choices mean; the defaults are printed from
# fuzz.gen.policy.DEFAULT_SHARES, so the help cannot drift from what a campaign draws
POLICY_FLAGS = (
    ("shapes", "shape", "small, vector (innermost dims at SIMD widths and tails), large (10^4-10^5 elements)"),
    ("dtype_themes", "dtype", "mix (the rules' dtypes) or one theme for the whole model: float16, bfloat16, int8, "
                              "uint8, int16, int32, int64, mixed (casts between dtypes), complex64 (complex inside, "
                              "float32 (re, im) pairs in and out)"),
    ("values", "values", "finite, edge (inf, nan, +-0, subnormals, extremes, ties)"),
    ("forms", "form", "random, blocks (model-shaped blocks), forms (in-place, out=, views, higher-order ops, "
                      "graph breaks)"),
    ("layouts", "layout", "contiguous, strided (inputs transposed, permuted, channels-last, gapped or with padded "
                          "rows)"),
    ("scalars", "scalars", "constant, python (numbers of calls passed to forward as Python floats/ints), tensor "
                           "(passed as 0-dim tensors of a drawn dtype)"),
    ("calls", "calls", "valid, invalid (a recorded call eager rejects: every backend must reject it too)"),
    ("shape_args", "shape_args", "constant, sizes (sizes of calls written as sizes of tensors, a.size(1), where one "
                                 "matches: symbolic under dynamic shapes)"),
    ("empty_dims", "empty_dims", "none, one (one dim of an input is 0 where the model's calls accept it: "
                                 "zero-size tensors through the model)"),
)


def add_policy_flags(p) -> None:
    """The model-policy flags of ``assay gen`` and ``assay fuzz`` (see ``fuzz.gen.policy``)."""
    from fuzz.gen.policy import DEFAULT_SHARES

    g = p.add_argument_group("model policy (shares per axis, e.g. small=0.5,vector=0.5; docs/generator.md)")
    for flag, axis, what in POLICY_FLAGS:
        default = ",".join(f"{choice}={share:g}" for choice, share in DEFAULT_SHARES[axis].items())
        g.add_argument("--" + flag.replace("_", "-"), default=None, metavar="SHARES", help=f"{what}; default {default}")
    g.add_argument("--legacy-mix", action="store_true",
                   help="the mix before policies (small shapes, rule dtypes, finite values, random ops); "
                        "the flags above then change one axis of it")


def shares_from_args(args):
    """``fuzz.gen.policy.Shares`` from the policy flags; None when none was given."""
    from fuzz.gen.policy import Shares

    given = [(flag, axis) for flag, axis, _ in POLICY_FLAGS if getattr(args, flag, None) is not None]
    if not given and not getattr(args, "legacy_mix", False):
        return None
    shares = Shares.legacy() if args.legacy_mix else Shares()
    for flag, axis in given:
        shares = shares.with_axis(axis, getattr(args, flag))
    return shares
