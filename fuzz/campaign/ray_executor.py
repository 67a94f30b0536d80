"""The campaign on a Ray cluster: ``assay fuzz --executor ray --address auto|HOST:PORT --workers N``.

Same seam as ``fuzz.campaign.executor.LocalExecutor`` (start, submit, poll, wants, shutdown),
so the driver, the oracle and the crash store do not change. ``RayExecutor`` starts N
long-lived actors (``WorkerActor``, one CPU each) wherever the cluster has room. Each actor
owns a one-worker ``LocalExecutor`` on its node: the very sandboxed ``python -m
fuzz.campaign.worker`` process a local campaign runs (own process group, ``RLIMIT_AS``, the
RSS watchdog, per-test deadlines), so a segfault, hang or OOM in torch is a verdict and a
replaced worker process, never a lost actor.

An actor runs one job (one model, every backend x mode) to its end, retries after worker
deaths included, and returns all of the job's events at once: verdicts, and the model's files
as bytes (JSON, the files base64 in the ``model`` event, as the local worker sends them). Only the driver
writes the campaign folder. Test ids are deterministic and the journal is keyed by them, so
``--resume`` and Ctrl-C behave as locally.

Faults: an actor that dies (its node died or was removed) has returned nothing of its jobs
in flight, so they are queued again whole, for another actor: nothing is lost and nothing is
journaled twice. A replacement actor is asked for at once; jobs go only to actors that have
started, so a replacement the cluster cannot place yet holds nothing up.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque

from fuzz.campaign.executor import Executor, LocalExecutor
from fuzz.errors import AssayError

JOBS_PER_ACTOR = 2       # one running, one waiting in the actor's queue: no idle gap between jobs
START_TIMEOUT_S = 600    # an actor that has not started by then (torch import, warm-up) counts as lost
FORWARDED_ENV = ("ASSAY_", "TORCHINDUCTOR_", "PYTHONWARNINGS")  # driver settings the workers need


def import_ray():
    try:
        import ray
    except ImportError:
        raise AssayError("--executor ray needs Ray: pip install 'assay[ray]' (or 'ray[default]')") from None
    return ray


def connect(address: str) -> None:
    """Join the Ray cluster at ``address`` (``auto``: the one ``ray start`` runs on this machine);
    no Ray installed or no cluster there: a one-line AssayError."""
    ray = import_ray()
    if ray.is_initialized():
        return
    if not address.startswith("ray://"):
        _probe(address)
    try:
        ray.init(address=address, logging_level="ERROR", log_to_driver=False, configure_logging=False)
    except Exception as exc:  # noqa: BLE001 - Ray raises many kinds; one line for the user
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise AssayError(f"--address {address}: cannot join a Ray cluster ({type(exc).__name__}: {first}); "
                         "start one with 'ray start --head' (docs/distributed.md)") from None


def _probe(address: str) -> None:
    """A one-line AssayError unless a Ray cluster's port answers at ``address`` (``auto``: the
    cluster in ``RAY_ADDRESS``, else the last one ``ray start`` ran on this machine). Ray itself
    retries an address where nothing listens for minutes."""
    import socket

    target = address
    if address == "auto":
        try:
            from ray._private.services import canonicalize_bootstrap_address

            target = canonicalize_bootstrap_address("auto")
        except Exception:  # noqa: BLE001 - Ray's own lookup: none found, or it moved
            target = None
        if not target:
            raise AssayError("--address auto: no Ray cluster runs on this machine; start one with 'ray start "
                             "--head' or give --address HOST:PORT (docs/distributed.md)")
    host, _, port = target.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=10).close()
    except (OSError, ValueError) as exc:
        raise AssayError(f"--address {address}: no Ray cluster answers at {target} "
                         f"({getattr(exc, 'strerror', None) or exc}); start one with 'ray start --head' "
                         "(docs/distributed.md)") from None


class WorkerActorBody:
    """What each Ray actor holds: a one-worker ``LocalExecutor`` on its node."""

    def __init__(self, backends, device, timeout_s, mem_limit_mb, env_overrides):
        import tempfile

        env = dict(os.environ, **env_overrides)
        # the worker's log stays on its node: a dead worker's faulthandler stack still reaches the
        # verdict (LocalExecutor reads it into the error), so a case is the same as a local one
        self.log_dir = tempfile.mkdtemp(prefix="assay-ray-worker-")
        self.executor = LocalExecutor(1, backends, device=device, timeout_s=timeout_s, mem_limit_mb=mem_limit_mb,
                                      threads=1, env=env, log_dir=self.log_dir)
        self.executor.start()
        self.node = os.uname().nodename
        self.pid = os.getpid()

    def ready(self) -> dict:
        """Returns once the worker process has started and warmed up."""
        while not self.executor.workers[0].ready:
            self.executor.poll(0.5)
        return {"node": self.node, "pid": self.pid}

    def run(self, job: bytes) -> bytes:
        """Run one job (JSON) to its end, retries after worker deaths included; all its events and
        the worker restarts it cost, as JSON bytes (nothing of Assay's travels pickled)."""
        restarts = self.executor.restarts
        self.executor.submit(json.loads(job))
        events = []
        while self.executor.in_flight():
            # a short poll: the call returns as soon as the job is done, and the actor's next
            # job (already queued by the driver) starts at once
            events.extend(ev for ev in self.executor.poll(0.02) if ev.get("event") != "worker")
        return json.dumps({"events": events, "restarts": self.executor.restarts - restarts}).encode()



class _Actor:
    def __init__(self, handle, ready_ref):
        self.handle = handle
        self.ready_ref = ready_ref
        self.ready = False
        self.started = time.monotonic()
        self.calls: dict = {}   # ObjectRef -> job


class RayExecutor(Executor):
    def __init__(self, workers: int, backends: list[str], *, address: str = "auto", device: str = "cpu",
                 timeout_s: float = 60, mem_limit_mb: int | None = None):
        self.ray = import_ray()
        self.n = max(1, int(workers))
        self.address = address
        self.options = dict(backends=backends, device=device, timeout_s=timeout_s, mem_limit_mb=mem_limit_mb,
                            env_overrides={k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV)})
        self.jobs: deque = deque()
        self.actors: list[_Actor] = []
        self.restarts = 0        # worker processes replaced inside actors, plus actors replaced
        self.lost_actors = 0
        self._remote = None

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> None:
        connect(self.address)
        ray = self.ray
        self._remote = ray.remote(num_cpus=1, max_restarts=0, max_concurrency=1)(WorkerActorBody)
        for _ in range(self.n):
            self._add_actor()

    def _add_actor(self) -> None:
        handle = self._remote.remote(**self.options)
        self.actors.append(_Actor(handle, handle.ready.remote()))

    def shutdown(self) -> None:
        for a in self.actors:
            try:
                self.ray.kill(a.handle)  # its worker process group dies with the actor's process
            except Exception:  # noqa: BLE001
                pass
        self.actors = []
        self.jobs.clear()
        self.ray.shutdown()  # leave the cluster (it keeps running for the next campaign)

    # -- jobs -----------------------------------------------------------------------
    def submit(self, job: dict) -> None:
        self.jobs.append(job)

    def wants(self) -> int:
        return max(0, JOBS_PER_ACTOR * self.n - self.in_flight())

    def in_flight(self) -> int:
        return len(self.jobs) + sum(len(a.calls) for a in self.actors)

    def _dispatch(self) -> None:
        for a in self.actors:
            while a.ready and self.jobs and len(a.calls) < JOBS_PER_ACTOR:
                job = self.jobs.popleft()
                a.calls[a.handle.run.remote(json.dumps(job).encode())] = job

    # -- events ---------------------------------------------------------------------
    def poll(self, timeout: float) -> list[dict]:
        ray = self.ray
        self._dispatch()
        pending = {a.ready_ref: a for a in self.actors if not a.ready}
        calls = {ref: a for a in self.actors for ref in a.calls}
        refs = list(pending) + list(calls)
        if not refs:
            time.sleep(min(timeout, 0.25))
            return []
        done, _ = ray.wait(refs, num_returns=1, timeout=timeout)
        if done:  # everything else already finished too, without waiting
            done, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        out: list[dict] = []
        for ref in done:
            if ref in pending:
                a = pending[ref]
                try:
                    info = ray.get(ref)
                    a.ready = True
                    out.append({"event": "worker", "state": "ready", "node": info["node"]})
                except Exception as exc:  # noqa: BLE001 - the actor died while starting
                    out.extend(self._lost(a, exc))
            else:
                a = calls[ref]
                job = a.calls.pop(ref, None)
                if job is None:
                    continue
                try:
                    result = json.loads(ray.get(ref))
                except Exception as exc:  # noqa: BLE001 - RayActorError, node died, ...
                    self.jobs.appendleft(job)  # nothing of it came back: it runs again, whole
                    out.extend(self._lost(a, exc))
                    continue
                self.restarts += result["restarts"]
                out.extend(result["events"])
        now = time.monotonic()
        for a in list(self.actors):
            if not a.ready and now - a.started > START_TIMEOUT_S and a in self.actors:
                out.extend(self._lost(a, TimeoutError(f"not started in {START_TIMEOUT_S} s")))
        self._dispatch()
        return out

    def _lost(self, a: _Actor, exc: BaseException) -> list[dict]:
        """An actor is gone: its jobs in flight go back to the queue; a new actor is asked for."""
        if a not in self.actors:
            return []
        self.actors.remove(a)
        for job in reversed(list(a.calls.values())):
            self.jobs.appendleft(job)
        a.calls.clear()
        try:
            self.ray.kill(a.handle)
        except Exception:  # noqa: BLE001
            pass
        self.lost_actors += 1
        self.restarts += 1
        if self.lost_actors > 10 * self.n:
            raise AssayError(f"Ray worker actors keep dying ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})")
        self._add_actor()
        return [{"event": "worker", "state": "lost", "how": f"{type(exc).__name__}"}]
