"""The tracing pool: ``fuzz.isolation.run_tasks`` with the collector's memory headroom.

Workers are forked from the collector after torch and the OpInfo database are imported,
so a fresh worker starts in milliseconds; a task that overruns its budget or dies in
native code is reported as skipped, with whatever records arrived before.
"""

from __future__ import annotations

from fuzz import isolation

MEMORY_HEADROOM = 6 << 30  # bytes of address space a worker may add to what it had at fork


def run_tasks(tasks, task_fn, workers=2, time_budget=30.0, on_result=None, on_tick=None):
    """``isolation.run_tasks`` for record-collecting tasks (see there)."""
    isolation.run_tasks(tasks, task_fn, workers=workers, time_budget=time_budget, on_result=on_result,
                        on_tick=on_tick, memory_headroom=MEMORY_HEADROOM)
