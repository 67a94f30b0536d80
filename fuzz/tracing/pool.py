"""A small process pool with a per-task time budget.

``multiprocessing.Pool`` cannot take back a task from a worker that hangs or
dies in native code, so this pool runs one task at a time per worker over a
pipe, watches the clock, and replaces a worker that overruns its task's budget
(killed) or dies (a crash in an operator). Such tasks are reported as skipped,
with whatever records arrived before.

Workers are forked from the collector after torch and the OpInfo database are
imported, so a fresh worker starts in milliseconds. Results cross the pipe as
JSON text, never as pickled objects of our own.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from multiprocessing.connection import wait


MEMORY_HEADROOM = 6 << 30  # bytes of address space a worker may add to what it had at fork


def _limit_memory(headroom: int) -> None:
    """Cap the worker's address space, so a mutant asking for a huge output fails with an
    allocation error (dropped as an environment error) instead of swapping the machine."""
    try:
        import resource

        with open("/proc/self/status") as fh:
            vm = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))
        resource.setrlimit(resource.RLIMIT_AS, (vm + headroom, resource.RLIM_INFINITY))
    except (OSError, ValueError, StopIteration, ImportError):
        pass


def _worker_main(conn, task_fn):
    import warnings

    warnings.filterwarnings("ignore")
    _limit_memory(MEMORY_HEADROOM)
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


class _Worker:
    def __init__(self, ctx, task_fn):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, task_fn), daemon=True)
        self.proc.start()
        child.close()
        self.task = None  # (tid, started)

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


def run_tasks(tasks, task_fn, workers=2, time_budget=30.0, on_result=None, on_tick=None):
    """Run ``task_fn(task, soft_deadline)`` (a generator of record-chunk lists) for every task.

    ``on_result(index, records, problem)`` is called once per task in completion order;
    ``problem`` is None, or why the task stopped early (error, crash, timeout).
    The soft deadline (``time_budget`` from the task's start, as ``time.monotonic()``)
    lets a task stop itself; a task still running at 1.5x the budget + 5 s is killed.
    """
    ctx = multiprocessing.get_context("fork")
    pending = list(range(len(tasks)))[::-1]
    results: dict[int, list] = {}
    pool = [_Worker(ctx, task_fn) for _ in range(max(1, workers))]
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
        recs = results.pop(tid)
        if on_result:
            on_result(tid, recs, problem)

    try:
        for w in pool:
            assign(w)
        while any(w.task for w in pool):
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
                        code = w.proc.exitcode
                        w.stop(kill=True)
                        pool[i] = w = _Worker(ctx, task_fn)
                        finish(tid, f"worker died (exit code {code})")
                        assign(w)
                        continue
                    if kind == "recs":
                        results[rtid].extend(json.loads(payload))
                    else:
                        finish(rtid, payload)
                        assign(w)
                    continue
                if time.monotonic() - started > hard:
                    w.stop(kill=True)
                    pool[i] = w = _Worker(ctx, task_fn)
                    finish(tid, f"timed out after {hard:.0f} s")
                    assign(w)
            if on_tick:
                on_tick()
    finally:
        for w in pool:
            w.stop(kill=bool(w.task))
