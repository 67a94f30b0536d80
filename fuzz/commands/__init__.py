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
