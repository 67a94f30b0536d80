"""Replaying a graph against one backend in a sandboxed, long-lived child process.

The child is the campaign's own test worker (``python -m fuzz.campaign.worker``) run by the
campaign's executor (``fuzz.campaign.executor.LocalExecutor``, one worker): it imports torch and warms
the backend up once, then runs one job per candidate (the program saved with
``fuzz.gen.program.save_program``), judging with the campaign's oracle. A worker that dies or
stops answering becomes a ``signal`` / ``oom`` / ``hang`` verdict and is replaced.

A replay's result is the campaign's own ``Verdict`` (``fuzz.campaign.verdict``), its
``elapsed_s`` the whole round trip; its signature is the campaign's too
(``fuzz.campaign.failure.sign``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from fuzz.campaign.verdict import Verdict
from fuzz.errors import AssayError
from fuzz.ir.graph import Graph

DEFAULT_TIMEOUT = 60.0
DEFAULT_MEM_MB = 8192
READY_TIMEOUT = 300.0


class WorkerRunner:
    """One warm campaign worker for one (backend, mode); ``run(graph, tensors)`` -> ``Verdict``.

    Uses the campaign's ``fuzz.campaign.executor.LocalExecutor`` with one worker: its process group,
    memory limit (``RLIMIT_AS`` + resident-size watch) and per-test deadline, and its
    synthesised ``hang`` / ``signal`` / ``oom`` verdicts when the worker dies or is killed
    (it then starts a fresh worker for the next candidate).
    """

    def __init__(self, backend: str, mode: str = "fwd", *, timeout: float | None = None,
                 mem_limit_mb: int | None = None, env: dict | None = None, device: str = "cpu",
                 log=None, knobs: dict | None = None) -> None:
        self.backend = backend
        self.mode = mode or "fwd"
        self.timeout = float(timeout or DEFAULT_TIMEOUT)
        self.mem_limit_mb = int(mem_limit_mb or DEFAULT_MEM_MB)
        self.env = env
        self.device = device
        self.log = log or (lambda m: None)
        self.knobs = knobs or None  # the case's compiler settings (fuzz.campaign.knobs), set for every replay
        self.tmp = Path(tempfile.mkdtemp(prefix="assay-triage-"))
        self.executor = None
        self.jobs = 0
        # dynamic mode: the last run's second call, as the campaign saves it (``_second_call_of``)
        self.last_second_call: tuple[dict | None, bytes | None] = (None, None)

    def _start(self) -> None:
        from fuzz.campaign.executor import LocalExecutor

        env = dict(os.environ if self.env is None else self.env)
        repo = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), repo) if p)
        if self.backend.startswith("_"):
            env["ASSAY_TEST_BACKENDS"] = "1"
        threads = max(1, min(4, os.cpu_count() or 1))
        self.executor = LocalExecutor(1, [self.backend], device=self.device, timeout_s=self.timeout,
                                      mem_limit_mb=self.mem_limit_mb, log_dir=self.tmp / "logs", env=env,
                                      threads=threads, warmup_timeout_s=READY_TIMEOUT)
        self.executor.start()

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown()
            self.executor = None
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def run_dir(self, program_dir: Path) -> Verdict:
        """Judge a saved program directory (graph.json, program.py, tensors)."""
        if self.executor is None:
            self._start()
        self.jobs += 1
        jid = f"triage-{os.getpid()}-{self.jobs}"
        job = {"job": jid, "model": self.jobs, "source": {"program_dir": str(program_dir)},
               "tests": [{"test": f"{jid}-t", "backend": self.backend, "mode": self.mode}],
               "device": self.device, "timeout_s": self.timeout, "knobs": self.knobs}
        t0 = time.monotonic()
        self.executor.submit(job)
        verdict = model = None
        # worker start-up + model preparation + the test itself, with room to spare
        deadline = t0 + READY_TIMEOUT + 180 + self.timeout + 60
        while time.monotonic() < deadline:
            done = False
            for ev in self.executor.poll(1.0):
                if not str(ev.get("job", "")).startswith(jid):
                    continue
                if ev.get("event") == "verdict":
                    verdict = ev
                elif ev.get("event") == "model":
                    model = ev
                elif ev.get("event") == "done":
                    done = True
            if done and verdict is not None:
                break
        if verdict is None:
            raise AssayError(f"the test worker gave no verdict for a candidate in {time.monotonic() - t0:.0f}s; "
                             f"see its log under {self.tmp / 'logs'}")
        v = Verdict.from_event(verdict)
        v.elapsed_s = time.monotonic() - t0
        self.last_second_call = _second_call_of(model)
        return v

    def run(self, graph: Graph, tensors: dict) -> Verdict:
        """Save ``graph`` + ``tensors`` as a program and judge it."""
        from fuzz.gen.program import save_program

        d = self.tmp / f"cand-{self.jobs + 1}"
        save_program(graph, tensors, d)
        try:
            return self.run_dir(d)
        finally:
            shutil.rmtree(d, ignore_errors=True)


def _second_call_of(model_event: dict | None) -> tuple[dict | None, bytes | None]:
    """(second_call info, inputs.safetensors with the second call's inputs) of a dynamic-mode
    run, from the worker's model event, as a campaign saves them; (None, None) otherwise."""
    import base64

    if not model_event or "second_call" not in model_event:
        return None, None
    data = (model_event.get("files_dynamic") or {}).get("inputs.safetensors")
    return model_event["second_call"], base64.b64decode(data) if data else None
