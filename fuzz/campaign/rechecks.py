"""Re-checking staged cases: each ``repro.py`` alone in a fresh sandboxed process.

A case reproduces (``reproduces: true``) only when its repro shows the *same* failure (exit 1
with its ``REPRODUCED:`` line, ``fuzz.campaign.repro.judge_run``); one that agrees with eager
or fails differently is kept as flaky (``reproduces: false``, the note says which); one whose
files do not verify or whose repro cannot run is kept with ``reproduces: null``. Re-checks run on their own
threads so the campaign goes on meanwhile; ``drain`` moves the finished ones into place
(``CrashStore.finalize``). Whatever is still waiting at the end stays staged, and
``--resume`` re-checks it.
"""

from __future__ import annotations

import queue
import sys
import threading
import time

from fuzz.campaign import repro, sandbox
from fuzz.campaign.case import read_case
from fuzz.campaign.store import CrashStore, warn
from fuzz.errors import AssayError


class Rechecker:
    def __init__(self, store: CrashStore, enabled: bool = True, threads: int = 2):
        self.store = store
        self.enabled = enabled
        self.threads = threads
        self.todo: queue.Queue = queue.Queue()
        self.done: queue.Queue = queue.Queue()
        self.pending = 0
        self.procs: set = set()

    def start(self) -> None:
        for _ in range(self.threads):
            threading.Thread(target=self._loop, daemon=True).start()

    def queue(self, case_id: str) -> None:
        self.pending += 1
        if self.enabled:
            self.todo.put(case_id)
        else:
            self.done.put((case_id, None, "not re-checked (--no-recheck)"))

    def _loop(self) -> None:
        while True:
            case_id = self.todo.get()
            if case_id is None:
                return
            try:
                self.done.put((case_id, *self.recheck(case_id)))
            except Exception as exc:  # never let a re-check kill the campaign
                self.done.put((case_id, None, f"re-check failed: {exc}"))

    def recheck(self, case_id: str) -> tuple[bool | None, str]:
        """Run the staged case's repro.py alone in a fresh sandboxed process."""
        d = self.store.staging_dir(case_id)
        case = read_case(d)
        damage = case.damage()
        if damage:
            return None, f"not re-checked: {damage}"
        timeout = float(case.timeout_s or 300) + 60
        res = sandbox.run([sys.executable, str(d / "repro.py")], timeout, case.mem_limit_mb or None, cwd=str(d),
                          on_start=self.procs.add)
        outcome = repro.judge_run(case, None if res.timed_out else res.returncode, res.stdout, res.stderr,
                                  res.timed_out)
        reproduces = {"reproduced": True, "agree": False, "different": False}.get(outcome)
        last = (res.stdout.strip().splitlines() or res.stderr.strip().splitlines() or [""])[-1][:300]
        how = "timed out" if res.timed_out else sandbox.describe_exit(res.returncode)
        return reproduces, f"{outcome}: fresh process: {how} after {res.elapsed_s:.1f} s; {last}"

    def drain(self) -> None:
        """Finalize every re-check that finished."""
        while True:
            try:
                case_id, reproduces, note = self.done.get_nowait()
            except queue.Empty:
                return
            try:
                self.store.finalize(case_id, reproduces, note)
            except AssayError as exc:
                warn(str(exc))
            self.pending -= 1

    def finish(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for pending re-checks, then stop the rest."""
        end = time.monotonic() + grace
        while self.pending > 0 and time.monotonic() < end:
            self.drain()
            time.sleep(0.2)
        self.drain()
        for _ in range(self.threads):
            self.todo.put(None)
        for proc in list(self.procs):
            if proc.poll() is None:
                sandbox.kill_group(proc)
