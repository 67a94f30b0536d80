"""Keeping code under test from taking the machine: address-space limits and a deadline pool.

Foundation layer: imports only the standard library (and ``fuzz.errors``), so every
stage may use it.

Address space (``RLIMIT_AS``, Linux; elsewhere these do nothing):

- ``limit_address_space(mb)``: a fixed limit for the whole process (a campaign worker,
  the sandbox launcher before it ``exec``\\ s a repro). Self-contained, so the standalone
  ``repro.py`` embeds its source rather than importing this package;
- ``cap_address_space_growth(headroom)``: the soft limit at what the process maps now
  plus ``headroom`` bytes (a forked pool worker, whose parent already mapped torch);
- ``address_space_headroom(headroom)``: the same for the duration of one ``with`` block
  (one operator call while generating), restoring the old limit after.

``run_tasks``: a process pool with a per-task deadline. ``multiprocessing.Pool`` cannot
take back a task from a worker that hangs or dies in native code, so this pool runs one
task at a time per worker over a pipe, watches the clock, and replaces a worker that
overruns its task's budget (killed) or dies (a crash in an operator); the task is then
reported with why it stopped, with whatever results arrived before. An optional overall
``stop_at`` ends the whole run (tasks not finished by then are not reported). Workers are
forked, so a worker starts with everything its parent imported (torch, the OpInfo
database) in milliseconds; results cross the pipe as JSON text, never pickled objects.
One pool serves tracing (streamed record chunks, a soft deadline per task), rule
inference (one result per operator) and rule validation (chunks of rules, an overall
budget).
"""

from __future__ import annotations

import json
import os
import multiprocessing
import time
from contextlib import contextmanager
from multiprocessing.connection import wait


def limit_address_space(mb):
    """Limit this process's address space to ``mb`` MiB (soft and hard); no-op for 0/None or off Linux."""
    if not mb:
        return
    try:
        import resource

        limit = int(mb) * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass


_STATM = {}  # pid -> an open descriptor of /proc/self/statm (re-read with pread: no open per call)


def private_compile_cache(prefix: str = "assay-inductor-") -> str:
    """Give this process its own inductor cache directory (``TORCHINDUCTOR_CACHE_DIR``), made now
    and removed at exit, unless the user set one; returns it. Call before torch compiles anything.

    Why: inductor writes a kernel's ``.so`` in place in the shared cache (``/tmp/torchinductor_<user>``),
    so a compile killed mid-build (a test's deadline, a memory limit) can leave an empty file that
    every later compile of the same kernel, in any process, loads and fails on (``ImportError: ...
    main.so: file too short``): seen in a seventeenth-session campaign, a zero-byte file left by a
    run three hours before. A worker that is killed takes its directory with it; its replacement
    starts a new one."""
    import atexit
    import shutil
    import tempfile

    given = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if given and not os.path.basename(given.rstrip("/")).startswith(prefix):
        return given  # the user's choice
    path = tempfile.mkdtemp(prefix=prefix)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = path
    atexit.register(shutil.rmtree, path, True)
    return path


def _mapped_bytes() -> int:
    import resource

    pid = os.getpid()  # a forked child has its own /proc/self: it opens its own descriptor
    fd = _STATM.get(pid)
    if fd is None:
        fd = _STATM[pid] = os.open("/proc/self/statm", os.O_RDONLY | os.O_CLOEXEC)
    return int(os.pread(fd, 128, 0).split()[0]) * resource.getpagesize()


def cap_address_space_growth(headroom: int) -> None:
    """Soft ``RLIMIT_AS`` at the current size + ``headroom`` bytes, so a call asking for a huge
    allocation fails with an allocation error instead of swapping the machine."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (_mapped_bytes() + headroom, resource.RLIM_INFINITY))
    except (ImportError, OSError, ValueError):
        pass


_HEADROOM_DEPTH = [0]  # address_space_headroom blocks open in this process


@contextmanager
def address_space_headroom(headroom: int):
    """Lower ``RLIMIT_AS``'s soft limit to (current size + ``headroom``) inside the block. Inside
    another such block nothing changes: the outer limit holds (a block per graph run around a
    block per call costs one read of ``/proc/self/statm`` and two ``setrlimit`` calls in all)."""
    if _HEADROOM_DEPTH[0]:
        _HEADROOM_DEPTH[0] += 1
        try:
            yield
        finally:
            _HEADROOM_DEPTH[0] -= 1
        return
    saved = None
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = _mapped_bytes() + headroom
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        if soft == resource.RLIM_INFINITY or limit < soft:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
            saved = (soft, hard)
    except (ImportError, OSError, ValueError):  # not Linux: no headroom
        saved = None
    _HEADROOM_DEPTH[0] += 1
    try:
        yield
    finally:
        _HEADROOM_DEPTH[0] -= 1
        if saved is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, saved)


# ---------------------------------------------------------------------------
# the pool


def _single_threaded_torch() -> None:
    """Make a forked worker's torch run its ops on one thread, if its parent imported torch.

    OpenMP (libgomp) is not fork-safe: once the parent has run an op big enough for torch's
    intra-op pool (tens of thousands of elements), the forked child's first parallel region waits
    for pool threads it does not have, until its deadline. The reducer's eager-value runs of a
    large model (158,760 elements) hung so, three times 60 s, and the case was not reduced. One
    thread runs such ops inline. torch is not imported here: a worker of a process without it
    has no pool to inherit."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads"):
        torch.set_num_threads(1)


def _worker_main(conn, task_fn, memory_headroom):
    import warnings

    warnings.filterwarnings("ignore")
    _single_threaded_torch()
    if memory_headroom:
        cap_address_space_growth(memory_headroom)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        tid, task, deadline_s = msg
        try:
            gen = task_fn(task, time.monotonic() + deadline_s)
            while True:
                try:
                    chunk = next(gen)
                except StopIteration as stop:  # the generator's return value: why it stopped early
                    problem = stop.value
                    break
                conn.send(("recs", tid, json.dumps(chunk)))
            conn.send(("done", tid, problem))
        except Exception as exc:  # the task's own failure; the worker lives on
            conn.send(("done", tid, f"{type(exc).__name__}: {str(exc)[:200]}"))


class PoolWorker:
    """One forked worker of ``run_tasks`` and the task it runs (``(index, started)`` or None)."""

    def __init__(self, ctx, task_fn, memory_headroom):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, task_fn, memory_headroom), daemon=True)
        self.proc.start()
        child.close()
        self.task = None
        self.done = 0  # tasks finished

    def stop(self, kill=False):
        try:
            if kill:
                self.proc.kill()
            else:
                self.conn.send(None)
        except (OSError, ValueError):
            pass
        self.proc.join(timeout=5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(timeout=5)
        self.conn.close()


def run_tasks(tasks, task_fn, workers=2, time_budget=30.0, on_result=None, on_tick=None,
              memory_headroom: int | None = None, stop_at: float | None = None,
              tasks_per_worker: int | None = None) -> bool:
    """Run ``task_fn(task, soft_deadline)`` (a generator of JSON-ready lists) for every task.

    ``on_result(index, items, problem)`` is called once per task in completion order with the
    concatenated lists; ``problem`` is None, or why the task stopped early (its generator's
    return value, an exception, a crash, a timeout). The soft deadline (``time_budget`` from
    the task's start, as ``time.monotonic()``) lets a task stop itself; a task still running
    at 1.5x the budget + 5 s is killed and its worker replaced. ``memory_headroom``: bytes of
    address space a worker may add to what it had at fork. ``stop_at`` (``time.monotonic()``):
    when reached, every worker is killed and the run ends. ``tasks_per_worker``: a worker that
    finished that many tasks is replaced by a fresh one (what it leaked goes with it).
    True when every task finished.
    """
    ctx = multiprocessing.get_context("fork")
    pending = list(range(len(tasks)))[::-1]
    results: dict[int, list] = {}
    pool = [PoolWorker(ctx, task_fn, memory_headroom) for _ in range(max(1, workers))]
    hard = time_budget * 1.5 + 5.0

    def assign(w):
        if pending:
            tid = pending.pop()
            results[tid] = []
            w.conn.send((tid, tasks[tid], time_budget))
            w.task = (tid, time.monotonic())
        else:
            w.task = None

    def finish(tid, problem):
        items = results.pop(tid)
        if on_result:
            on_result(tid, items, problem)

    def replace(i):
        pool[i].stop(kill=True)
        pool[i] = PoolWorker(ctx, task_fn, memory_headroom)
        return pool[i]

    try:
        for w in pool:
            assign(w)
        while any(w.task for w in pool):
            if stop_at is not None and time.monotonic() >= stop_at:
                return False
            ready = wait([w.conn for w in pool if w.task], timeout=0.5)
            for i, w in enumerate(pool):
                if w.task is None:
                    continue
                tid, started = w.task
                if w.conn in ready:
                    try:
                        kind, rtid, payload = w.conn.recv()
                    except (EOFError, OSError):
                        # The worker died in native code: replace it, keep what arrived.
                        w.proc.join(timeout=5)
                        code = w.proc.exitcode
                        w = replace(i)
                        finish(tid, f"worker died (exit code {code})")
                        assign(w)
                        continue
                    if kind == "recs":
                        results[rtid].extend(json.loads(payload))
                    else:
                        finish(rtid, payload)
                        w.done += 1
                        if tasks_per_worker and w.done >= tasks_per_worker and pending:
                            w.stop()
                            w = pool[i] = PoolWorker(ctx, task_fn, memory_headroom)
                        assign(w)
                    continue
                if time.monotonic() - started > hard:
                    w = replace(i)
                    finish(tid, f"timed out after {hard:.0f} s")
                    assign(w)
            if on_tick:
                on_tick()
        return True
    finally:
        for w in pool:
            w.stop(kill=bool(w.task))
