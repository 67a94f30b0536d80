"""Where tests run: the executor interface and the local process pool.

The campaign driver only talks to an ``Executor``:

- ``start()``; ``submit(job)`` (a JSON-ready dict, see ``fuzz.campaign.worker``);
- ``poll(timeout)`` -> list of events (JSON-ready dicts): the workers' ``model``,
  ``verdict`` and ``done`` events, plus verdicts the executor makes itself for a test
  whose worker died (``signal``), was killed at its deadline (``hang``) or over its
  memory limit / by the kernel's OOM killer (``oom``), and ``worker`` notices;
- ``wants()`` -> how many more jobs it can take now; ``shutdown()``.

Jobs and events are plain JSON data and tensors travel inside them as base64
safetensors files, so a distributed executor (e.g. Ray actors each running
``fuzz.campaign.worker.run_job``) is a drop-in: implement these five methods, keep the same
event contract, and the driver, oracle and crash store do not change.

``LocalExecutor`` runs N long-lived ``python -m fuzz.campaign.worker`` children (own process
group, ``RLIMIT_AS``, one torch thread each). A worker that dies is replaced; the
test it was running gets its verdict and the job's remaining tests are queued again
on the new worker. The driver never dies with a worker.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from pathlib import Path

from fuzz.campaign import sandbox
from fuzz.campaign.batch import solo_jobs
from fuzz.campaign.verdict import Kind, Verdict
from fuzz.errors import AssayError


# Session methods that run eager torch inside a test (references made on first use, not while the
# model is prepared). A worker whose crashing thread died inside one was killed by eager torch before
# the compiled side ran: still a finding (a segfault in torch), but not the backend's.
EAGER_STAGES = ("bwd_reference", "train_reference", "second_call")
_EXTENSION_MODULES = re.compile(r"(\nExtension modules:)[^\n]*")
_SESSION_FRAME = re.compile(r'File "[^"]*fuzz/campaign/session\.py", line \d+ in (\w+)')


def eager_stage(tail: str) -> str | None:
    """The eager stage (``EAGER_STAGES``) a dead worker's test thread was in, or None: read from the
    faulthandler dump in its log, whose last thread block is the main thread, the one running tests
    (the helper threads are newer and printed first). The block ends where faulthandler's list of
    extension modules begins; a tail cut short keeps the block's end, so a missing header is no loss."""
    text = (tail or "").split("\nExtension modules:", 1)[0]
    frames = _SESSION_FRAME.findall(text.rsplit("(most recent call first):", 1)[-1])
    return next((f for f in frames if f in EAGER_STAGES), None)


class Executor(ABC):
    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def submit(self, job: dict) -> None: ...

    @abstractmethod
    def poll(self, timeout: float) -> list[dict]: ...

    @abstractmethod
    def wants(self) -> int: ...

    @abstractmethod
    def shutdown(self) -> None: ...


class _Worker:
    def __init__(self, index: int):
        self.index = index
        self.proc: subprocess.Popen | None = None
        self.ready = False
        self.job: dict | None = None
        self.remaining: list = []     # tests of the job not yet given a verdict
        self.test: dict | None = None  # the test running now
        self.phase = "start"
        self.deadline = float("inf")
        self.kill_reason: Kind | None = None
        self.restarting: str | None = None  # why the worker is exiting on its own (a "restart" event)
        self.started = 0.0
        self.log = None


class LocalExecutor(Executor):
    def __init__(self, workers: int, backends: list[str], *, device: str = "cpu", timeout_s: float = 60,
                 mem_limit_mb: int | None = None, log_dir=None, threads: int = 1, warmup_timeout_s: float = 600,
                 prepare_timeout_s: float = 180, env: dict | None = None):
        self.n = max(1, int(workers))
        self.backends = backends
        self.device = device
        self.timeout_s = timeout_s
        self.mem_limit_mb = mem_limit_mb
        self.log_dir = Path(log_dir) if log_dir else None
        self.threads = threads
        self.warmup_timeout_s = warmup_timeout_s
        self.prepare_timeout_s = prepare_timeout_s
        self.env = env
        self.jobs: deque = deque()
        self.events: queue.Queue = queue.Queue()
        self.workers = [_Worker(i) for i in range(self.n)]
        self.restarts = 0
        self._early_deaths = 0
        self._last_rss_check = 0.0

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> None:
        for w in self.workers:
            self._launch(w)

    def _launch(self, w: _Worker) -> None:
        r, wfd = os.pipe()
        cmd = [sys.executable, "-m", "fuzz.campaign.worker", "--result-fd", str(wfd), "--threads", str(self.threads),
               "--backends", ",".join(self.backends), "--device", self.device]
        # CUDA reserves far more address space than memory: there only the RSS watchdog applies.
        rlimit = self.mem_limit_mb if self.device != "cuda" else None
        if rlimit:
            cmd += ["--mem-limit-mb", str(rlimit)]
        if self.log_dir:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            w.log = open(self.log_dir / f"worker-{w.index}.log", "ab")
        out = w.log if w.log else subprocess.DEVNULL
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("PYTHONWARNINGS", "ignore")
        w.proc = sandbox.spawn(cmd, rlimit, stdin=subprocess.PIPE, stdout=out, stderr=out,
                               pass_fds=(wfd,), env=env)
        os.close(wfd)
        w.ready, w.job, w.test, w.remaining, w.kill_reason = False, None, None, [], None
        w.phase, w.started = "start", time.monotonic()
        w.deadline = w.started + self.warmup_timeout_s
        proc = w.proc
        threading.Thread(target=self._reader, args=(w, proc, r), daemon=True).start()

    def _reader(self, w: _Worker, proc, fd: int) -> None:
        with os.fdopen(fd, "r", errors="replace") as fh:
            for line in fh:
                try:
                    self.events.put((w, proc, json.loads(line)))
                except json.JSONDecodeError:
                    continue
        self.events.put((w, proc, None))  # end of stream: the worker exited

    def shutdown(self) -> None:
        for w in self.workers:
            if w.proc and w.proc.poll() is None:
                sandbox.kill_group(w.proc)
        for w in self.workers:
            if w.proc:
                try:
                    w.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
                if w.proc.stdin:
                    try:
                        w.proc.stdin.close()
                    except OSError:
                        pass
            if w.log:
                w.log.close()
        self.jobs.clear()

    # -- jobs -----------------------------------------------------------------------
    def submit(self, job: dict) -> None:
        self.jobs.append(job)

    def wants(self) -> int:
        busy = sum(1 for w in self.workers if w.job is not None)
        return max(0, 2 * self.n - busy - len(self.jobs))

    def in_flight(self) -> int:
        return len(self.jobs) + sum(1 for w in self.workers if w.job is not None)

    def _dispatch(self) -> None:
        for w in self.workers:
            if w.ready and w.job is None and not w.restarting and self.jobs:
                job = self.jobs.popleft()
                w.job, w.remaining, w.test = job, list(job["tests"]), None
                w.phase = "prepare"
                w.deadline = time.monotonic() + self.prepare_timeout_s
                try:
                    w.proc.stdin.write((json.dumps(job) + "\n").encode())
                    w.proc.stdin.flush()
                except (BrokenPipeError, OSError):
                    pass  # its death is noticed by the reader

    # -- events ---------------------------------------------------------------------
    def poll(self, timeout: float) -> list[dict]:
        out: list[dict] = []
        self._dispatch()
        end = time.monotonic() + timeout
        while True:
            remaining = end - time.monotonic()
            try:
                w, proc, event = self.events.get(timeout=max(0.0, min(remaining, 0.25)))
            except queue.Empty:
                self._check_deadlines()
                self._check_memory()
                if time.monotonic() >= end or out:
                    break
                continue
            if proc is not w.proc:
                continue  # a message from a worker already replaced
            if event is None:
                out.extend(self._on_death(w))
            else:
                out.extend(self._on_event(w, event))
            self._dispatch()
            if time.monotonic() >= end:
                break
        self._dispatch()
        return out

    def _on_event(self, w: _Worker, ev: dict) -> list[dict]:
        kind = ev.get("event")
        if kind == "ready":
            w.ready, w.phase, w.deadline = True, "idle", float("inf")
            self._early_deaths = 0
            return [{"event": "worker", "worker": w.index, "state": "ready", "warmup_s": ev.get("warmup_s"),
                     "pid": ev.get("pid")}]
        if kind == "begin":
            w.test = next((t for t in w.remaining if t["test"] == ev.get("test")), None)
            w.phase = ev.get("phase", "test")
            limit = {"test": self.timeout_s, "batch": self.timeout_s * len(w.job.get("batch") or [1])}.get(
                w.phase, self.prepare_timeout_s)
            w.deadline = time.monotonic() + limit
            w.log_offset = ev["log_offset"] if isinstance(ev.get("log_offset"), int) else self._log_size(w)
            return []
        if kind == "verdict":
            w.remaining = [t for t in w.remaining if t["test"] != ev.get("test")]
            w.test = None
            ev["worker"] = w.index
            return [ev]
        if kind == "restart":  # the worker's process is spoiled (worker.spoiled_state): it exits now
            events = []
            if w.job is not None:
                self._requeue(w.job, list(w.remaining))
                events.append({"event": "done", "job": w.job["job"], "worker": w.index, "died": ev.get("why")})
            w.job, w.test, w.remaining, w.phase, w.deadline = None, None, [], "idle", float("inf")
            w.restarting = ev.get("why") or "restart"
            return events
        if kind == "done":
            if w.job is not None and ev.get("job") != w.job["job"]:
                return [ev]  # one model of a batch job is done
            batch = w.job is not None and "batch" in w.job
            w.job, w.test, w.remaining, w.phase, w.deadline = None, None, [], "idle", float("inf")
            return [] if batch else [ev]  # the driver hears of each model's end, not the batch's
        return [ev]

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        for w in self.workers:
            if w.proc and w.proc.poll() is None and now > w.deadline and w.kill_reason is None:
                w.kill_reason = Kind.HANG
                sandbox.kill_group(w.proc)

    def _check_memory(self) -> None:
        """Kill a worker whose resident memory (with its children) passes the limit: an ``oom`` verdict."""
        if not self.mem_limit_mb or time.monotonic() - self._last_rss_check < 1.0:
            return
        self._last_rss_check = time.monotonic()
        try:
            import psutil
        except ImportError:  # pragma: no cover
            return
        for w in self.workers:
            if not w.proc or w.proc.poll() is not None or w.kill_reason:
                continue
            try:
                p = psutil.Process(w.proc.pid)
                rss = p.memory_info().rss + sum(c.memory_info().rss for c in p.children(recursive=True))
            except psutil.Error:
                continue
            if rss > self.mem_limit_mb * 2**20:
                w.kill_reason = Kind.OOM
                sandbox.kill_group(w.proc)

    def _on_death(self, w: _Worker) -> list[dict]:
        proc = w.proc
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            sandbox.kill_group(proc)
            rc = proc.wait()
        how = sandbox.describe_exit(rc)
        reason = w.kill_reason
        if reason is None and rc == -signal.SIGKILL:
            reason = Kind.OOM  # killed by someone else: the kernel's OOM killer
        events: list[dict] = []
        tail = self._log_tail(w)
        if not w.ready:
            self._early_deaths += 1
            if self._early_deaths >= 3:
                raise AssayError(f"workers die while starting ({how}); see {self.log_dir or 'worker logs'}"
                                 f"{': ' + tail.strip().splitlines()[-1] if tail.strip() else ''}")
        job = w.job
        if job is not None:
            events.extend(self._orphaned(w, job, reason, how, tail))
            events.append({"event": "done", "job": job["job"], "worker": w.index, "died": how})
        events.append({"event": "worker", "worker": w.index, "state": "restarted" if w.restarting else "died",
                       "how": w.restarting or how, "reason": reason})
        w.restarting = None
        if w.log:
            w.log.close()
            w.log = None
        self.restarts += 1
        self._launch(w)
        return events

    def _orphaned(self, w: _Worker, job: dict, reason: Kind | None, how: str, tail: str) -> list[dict]:
        """Verdicts for the job of a worker that died, and its tests queued again.

        The test running alone when it died gets the death (hang, oom or signal); the job's
        other unjudged tests run again on the new worker. A death while preparing a one-model
        job makes its tests ``invalid`` (building the model or running it eagerly killed the
        worker: not a compiler bug). A batch job that died while preparing or running its
        batched compile blames no test: its unjudged models run again, each alone, so the one
        that kills a worker does so in a job of its own."""
        events: list[dict] = []
        t = w.test if w.phase == "test" else None
        if t is None and "batch" not in job:
            for x in w.remaining:
                events.append(self._verdict(job, x, Kind.INVALID, f"worker died while preparing the model ({how})",
                                            {"type": "WorkerDied", "message": how, "traceback": tail}))
            w.remaining = []
            return events
        if t is not None:
            if reason == Kind.HANG:
                kind, detail = Kind.HANG, f"no verdict within {self.timeout_s:g} s; worker killed"
            elif reason == Kind.OOM:
                kind, detail = Kind.OOM, f"worker over its memory limit ({how})"
            else:
                stage = eager_stage(tail)
                kind, detail = Kind.SIGNAL, how if stage is None else f"{how} in eager ({stage}): the compiled side had not run"
            sub = next((j for j in job.get("batch", []) if any(x["test"] == t["test"] for x in j["tests"])), job)
            events.append(self._verdict(sub, t, kind, detail,
                                        {"type": kind.value.capitalize() if kind != Kind.SIGNAL else how,
                                         "message": f"worker {detail}", "traceback": tail}))
        self._requeue(job, [x for x in w.remaining if t is None or x["test"] != t["test"]])
        return events

    def _requeue(self, job: dict, rest: list) -> None:
        """The unjudged tests ``rest`` of ``job`` at the head of the queue (a batch's as one-model jobs)."""
        retry = solo_jobs(job, rest) if "batch" in job else ([dict(job, tests=rest, job=job["job"] + "+")] if rest else [])
        self.jobs.extendleft(reversed(retry))

    @staticmethod
    def _verdict(job, t, kind: Kind, detail, error) -> dict:
        return Verdict(kind, detail, error=error, backend=t["backend"], mode=t["mode"],
                       synthesised=True).to_event(job["job"], t["test"])

    def _log_size(self, w: _Worker) -> int:
        try:
            return (self.log_dir / f"worker-{w.index}.log").stat().st_size if self.log_dir else 0
        except OSError:
            return 0

    def _log_tail(self, w: _Worker, limit: int = 20000) -> str:
        """What the worker wrote since its current test began (e.g. a faulthandler stack), its last
        ``limit`` characters. faulthandler's one-line list of extension modules is shortened first: in
        a worker that has loaded hundreds of compiled kernels it alone outgrew the limit and cut the
        stack above it (the twenty-third session's segfault case kept half a frame line)."""
        if not self.log_dir:
            return ""
        try:
            with open(self.log_dir / f"worker-{w.index}.log", "rb") as fh:
                fh.seek(getattr(w, "log_offset", 0))
                data = fh.read()
        except OSError:
            return ""
        text = _EXTENSION_MODULES.sub(lambda m: m.group(1) + " (list left out)", data.decode(errors="replace"))
        return text[-limit:]
