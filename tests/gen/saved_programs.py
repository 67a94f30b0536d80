"""A generated program saved and run alone, as a user runs ``program.py``: only torch on the path."""

import subprocess
import sys

from fuzz.gen import program


def run_saved_program(g, inputs: list, folder) -> str:
    """Save ``g`` with ``inputs`` (in ``g.inputs`` order) to ``folder``, run its ``program.py`` with
    an empty PYTHONPATH, check that it ran and printed its outputs; its stdout."""
    program.save_program(g, (dict(zip(g.inputs, inputs)), {}), folder)
    run = subprocess.run([sys.executable, str(folder / "program.py")], capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ""})
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith(f"{len(g.outputs)} outputs")
    return run.stdout
