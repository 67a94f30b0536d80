"""Child processes for code under test: own process group, memory limit, timeout.

- ``run(cmd, timeout_s, mem_limit_mb)`` runs a command to completion (re-checking a
  case's ``repro.py``): the child sets ``RLIMIT_AS`` on itself
  (``fuzz.isolation.limit_address_space``) through a tiny
  launcher (``python -m fuzz.campaign.sandbox --mem-limit-mb N -- cmd...``, then ``exec``), so
  no ``preexec_fn`` runs in the threaded driver; on timeout the whole process group
  is killed.
- ``spawn(cmd, ...)`` starts a long-lived child (a worker) the same way and returns
  the ``Popen``; ``kill_group(proc)`` ends it and everything it started.
- ``describe_exit(returncode)`` names how a child ended (``SIGSEGV``, ``exit 3``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from fuzz.isolation import limit_address_space


@dataclass
class Result:
    returncode: int | None
    timed_out: bool
    elapsed_s: float
    stdout: str
    stderr: str

    @property
    def signal_name(self) -> str | None:
        if self.returncode is not None and self.returncode < 0:
            return signal_name(-self.returncode)
        return None


def signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "still running"
    if returncode < 0:
        return signal_name(-returncode)
    return f"exit {returncode}"


def launcher(cmd: list[str], mem_limit_mb: int | None) -> list[str]:
    if not mem_limit_mb:
        return list(cmd)
    return [sys.executable, "-m", "fuzz.campaign.sandbox", "--mem-limit-mb", str(int(mem_limit_mb)), "--", *cmd]


def spawn(cmd: list[str], mem_limit_mb: int | None = None, **popen_kwargs) -> subprocess.Popen:
    """Start ``cmd`` in a new session (its own process group) under the memory limit."""
    return subprocess.Popen(launcher(cmd, mem_limit_mb), start_new_session=True, **popen_kwargs)


def kill_group(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass


def run(cmd: list[str], timeout_s: float, mem_limit_mb: int | None = None, cwd=None, env=None,
        on_start=None) -> Result:
    """Run to completion (or kill the group after ``timeout_s``); output captured.

    ``on_start(proc)`` is called with the ``Popen`` (so an owner can kill it early).
    """
    t0 = time.monotonic()
    proc = spawn(cmd, mem_limit_mb, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                 stdin=subprocess.DEVNULL, text=True, errors="replace")
    if on_start is not None:
        on_start(proc)
    try:
        out, err = proc.communicate(timeout=timeout_s)
        timed_out = False
    except subprocess.TimeoutExpired:
        kill_group(proc)
        out, err = proc.communicate()
        timed_out = True
    return Result(proc.returncode, timed_out, time.monotonic() - t0, out[-20000:], err[-20000:])


def _main(argv: list[str]) -> None:
    if len(argv) < 4 or argv[0] != "--mem-limit-mb" or argv[2] != "--":
        sys.stderr.write("usage: python -m fuzz.campaign.sandbox --mem-limit-mb N -- cmd ...\n")
        sys.exit(2)
    limit_address_space(int(argv[1]))
    cmd = argv[3:]
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    _main(sys.argv[1:])
