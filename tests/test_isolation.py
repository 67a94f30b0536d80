"""fuzz.isolation: the address-space limits and the deadline pool, on real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from fuzz import isolation

REPO = Path(__file__).resolve().parent.parent


def _task(task, deadline):
    if task == "hang":
        time.sleep(3600)
    if task == "die":
        os._exit(3)
    if task == "raise":
        raise ValueError("bad task")
    yield [task, 1]
    yield [task, 2]
    return "stopped early" if task == "partial" else None


def test_pool_reports_every_task_with_why_it_stopped():
    seen = {}
    done = isolation.run_tasks(["a", "hang", "die", "raise", "partial"], _task, workers=2, time_budget=0.5,
                               on_result=lambda i, items, problem: seen.__setitem__(i, (items, problem)))
    assert done
    assert seen[0] == (["a", 1, "a", 2], None)
    assert seen[1][1].startswith("timed out")
    assert seen[2] == ([], "worker died (exit code 3)")
    assert seen[3] == ([], "ValueError: bad task")
    assert seen[4] == (["partial", 1, "partial", 2], "stopped early")


def test_pool_stops_at_the_overall_deadline():
    seen = []
    t0 = time.monotonic()
    done = isolation.run_tasks(["hang", "hang", "a"], _task, workers=2, time_budget=600,
                               on_result=lambda i, items, problem: seen.append(i), stop_at=t0 + 1.0)
    assert not done and seen == []
    assert time.monotonic() - t0 < 15


def _pid(task, deadline):
    yield [os.getpid()]


def test_pool_replaces_a_worker_after_its_share_of_tasks():
    pids = []
    isolation.run_tasks(list(range(6)), _pid, workers=1, on_result=lambda i, items, problem: pids.extend(items),
                        tasks_per_worker=2)
    assert len(pids) == 6 and len(set(pids)) == 3 and pids[0] == pids[1] != pids[2] == pids[3] != pids[4]


def _run(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)


def test_address_space_limit_makes_a_huge_allocation_fail():
    res = _run("from fuzz.isolation import limit_address_space\n"
               "limit_address_space(512)\n"
               "try:\n    b = bytearray(1 << 30)\nexcept MemoryError:\n    print('refused')\n")
    assert res.stdout.strip() == "refused", res.stderr


def test_headroom_applies_inside_the_block_only():
    res = _run("from fuzz.isolation import address_space_headroom\n"
               "with address_space_headroom(64 << 20):\n"
               "    try:\n        b = bytearray(1 << 30)\n    except MemoryError:\n        print('refused')\n"
               "b = bytearray(1 << 30)\nprint('after', len(b))\n")
    assert res.stdout.split() == ["refused", "after", str(1 << 30)], res.stderr


def test_a_nested_headroom_keeps_the_outer_limit_and_restores_it_once():
    """A block inside another changes nothing (the outer limit, set at the outer block's size,
    holds: a gigabyte is still refused); leaving the outer block lifts the limit."""
    res = _run("import resource\n"
               "from fuzz.isolation import address_space_headroom as h\n"
               "before = resource.getrlimit(resource.RLIMIT_AS)\n"
               "with h(64 << 20):\n"
               "    outer = resource.getrlimit(resource.RLIMIT_AS)\n"
               "    with h(2 << 30):\n"
               "        print(resource.getrlimit(resource.RLIMIT_AS) == outer)\n"
               "        try:\n            b = bytearray(1 << 30)\n        except MemoryError:\n            print('refused')\n"
               "    print(resource.getrlimit(resource.RLIMIT_AS) == outer)\n"
               "print(resource.getrlimit(resource.RLIMIT_AS) == before, outer != before)\n")
    assert res.stdout.split() == ["True", "refused", "True", "True", "True"], res.stderr


def test_each_process_gets_its_own_compile_cache_and_removes_it(tmp_path):
    """``private_compile_cache``: a fresh inductor cache directory per process (a compile killed
    mid-build leaves its empty .so there, not in the cache every later process loads from),
    removed at exit; a directory the user chose is kept."""
    code = ("import os; from fuzz.isolation import private_compile_cache as p; d = p(); "
            "print(d); print(os.environ['TORCHINDUCTOR_CACHE_DIR'] == d, os.path.isdir(d))")
    env = {k: v for k, v in os.environ.items() if k != "TORCHINDUCTOR_CACHE_DIR"}
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout.split()
            for _ in range(2)]
    (d1, same1, made1), (d2, _, _) = runs
    assert same1 == made1 == "True" and d1 != d2 and "assay-inductor-" in d1
    assert not os.path.exists(d1) and not os.path.exists(d2)  # removed at exit
    mine = tmp_path / "my-cache"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**env, "TORCHINDUCTOR_CACHE_DIR": str(mine)}).stdout.split()
    assert out[0] == str(mine)

