"""Replaying a graph against one backend in a sandboxed, long-lived child process.

The child is the campaign's own test worker (``python -m fuzz.campaign.worker``) run by the
campaign's executor (``fuzz.campaign.executor.LocalExecutor``, one worker): it imports torch and warms
the backend up once, then runs one job per candidate (the program saved with
``fuzz.gen.program.save_program``), judging with the campaign's oracle. A worker that dies or
stops answering becomes a ``signal`` / ``oom`` / ``hang`` verdict and is replaced.

Every verdict gets the campaign's failure signature (``fuzz.campaign.failure``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from fuzz.errors import AssayError
from fuzz.ir.graph import Graph

FAILURE_KINDS = ("crash", "mismatch", "hang", "signal", "oom")
DEFAULT_TIMEOUT = 60.0
DEFAULT_MEM_MB = 8192
READY_TIMEOUT = 300.0


@dataclass
class Verdict:
    kind: str                         # pass | crash | mismatch | hang | signal | oom | invalid | skip | unsupported
    backend: str
    mode: str
    detail: str = ""
    error: dict | None = None
    diff: dict | None = None
    signature: str | None = None
    signature_text: str = ""
    ops: list = field(default_factory=list)
    seconds: float = 0.0
    raw: dict = field(default_factory=dict)   # the worker's verdict event as it came

    @property
    def failed(self) -> bool:
        return self.kind in FAILURE_KINDS

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in ("kind", "backend", "mode", "detail", "error", "diff", "signature",
                                              "signature_text", "ops", "seconds")}


def sign(verdict: Verdict) -> Verdict:
    """Fill in the campaign's signature for a failing verdict."""
    if verdict.failed:
        from fuzz.campaign.failure import signature

        verdict.signature, verdict.signature_text = signature(
            verdict.kind, verdict.backend, verdict.mode, ops=verdict.ops, error=verdict.error or {}, detail=verdict.detail)
    return verdict


def failure_class(kind: str, backend: str, mode: str, signature: str | None, signature_text: str = "") -> tuple:
    """What must stay equal while a case is reduced.

    A crash keeps its exact signature (exception type, normalised message, innermost torch
    frames). The other kinds' signatures name the graph's whole operator set, which reduction
    changes by design, so for them the class is the signature text without its operator set:
    kind, backend, mode and what differs (``values``/``shape``/``dtype``/``nonfinite``) or the
    signal name.
    """
    if kind == "crash":
        return ("crash", signature)
    parts = (signature_text or "").split("|")
    if parts and parts[0] == kind and len(parts) >= 3:
        return tuple(parts[:-1])  # drop the trailing operator set
    return (kind, backend, mode)


def verdict_class(v: Verdict) -> tuple:
    return failure_class(v.kind, v.backend, v.mode, v.signature, v.signature_text)


class WorkerRunner:
    """One warm campaign worker for one (backend, mode); ``run(graph, tensors)`` -> ``Verdict``.

    Uses the campaign's ``fuzz.campaign.executor.LocalExecutor`` with one worker: its process group,
    memory limit (``RLIMIT_AS`` + resident-size watch) and per-test deadline, and its
    synthesised ``hang`` / ``signal`` / ``oom`` verdicts when the worker dies or is killed
    (it then starts a fresh worker for the next candidate).
    """

    def __init__(self, backend: str, mode: str = "fwd", *, timeout: float | None = None,
                 mem_limit_mb: int | None = None, env: dict | None = None, device: str = "cpu",
                 log=None) -> None:
        self.backend = backend
        self.mode = mode or "fwd"
        self.timeout = float(timeout or DEFAULT_TIMEOUT)
        self.mem_limit_mb = int(mem_limit_mb or DEFAULT_MEM_MB)
        self.env = env
        self.device = device
        self.log = log or (lambda m: None)
        self.tmp = Path(tempfile.mkdtemp(prefix="assay-triage-"))
        self.executor = None
        self.jobs = 0

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

    def run_dir(self, program_dir: Path, ops: list[str]) -> Verdict:
        """Judge a saved program directory (graph.json, program.py, tensors)."""
        if self.executor is None:
            self._start()
        self.jobs += 1
        jid = f"triage-{os.getpid()}-{self.jobs}"
        job = {"job": jid, "model": self.jobs, "source": {"program_dir": str(program_dir)},
               "tests": [{"test": f"{jid}-t", "backend": self.backend, "mode": self.mode}],
               "device": self.device, "timeout_s": self.timeout}
        t0 = time.monotonic()
        self.executor.submit(job)
        verdict = None
        # worker start-up + model preparation + the test itself, with room to spare
        deadline = t0 + READY_TIMEOUT + 180 + self.timeout + 60
        while time.monotonic() < deadline:
            done = False
            for ev in self.executor.poll(1.0):
                if not str(ev.get("job", "")).startswith(jid):
                    continue
                if ev.get("event") == "verdict":
                    verdict = ev
                elif ev.get("event") == "done":
                    done = True
            if done and verdict is not None:
                break
        if verdict is None:
            raise AssayError(f"the test worker gave no verdict for a candidate in {time.monotonic() - t0:.0f}s; "
                             f"see its log under {self.tmp / 'logs'}")
        v = Verdict(kind=verdict.get("kind", "skip"), backend=self.backend, mode=self.mode,
                    detail=verdict.get("detail") or "", error=verdict.get("error"), diff=verdict.get("diff"),
                    ops=ops, seconds=time.monotonic() - t0, raw=verdict)
        return sign(v)

    def run(self, graph: Graph, tensors: dict) -> Verdict:
        """Save ``graph`` + ``tensors`` as a program and judge it."""
        from fuzz.gen.program import save_program

        d = self.tmp / f"cand-{self.jobs + 1}"
        save_program(graph, tensors, d)
        try:
            return self.run_dir(d, graph.ops())
        finally:
            shutil.rmtree(d, ignore_errors=True)
