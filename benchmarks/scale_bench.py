#!/usr/bin/env python3
"""Scale: tests/min with batched compilation, and where one campaign driver saturates.

``batch`` part: inductor-only, fwd, one worker process. For each node count it runs the
same generated models (same seed) through the real worker (``fuzz.campaign.executor``'s
``LocalExecutor``, sandboxed, as a campaign does) once unbatched and once with ``--batch K``,
one after the other, each with its own empty inductor cache, and reports steady-state
tests/min (from the worker's ``ready`` to the last verdict: generation, references, compile
and judging included; worker start-up excluded) and the ratio batched/unbatched.

``driver`` part: what the driver itself spends per test (journal row, case staging and
finalising into the store, bytes of a case) measured on a real store, and from it the
tests/s one driver can take and the workers a 100-node campaign keeps busy.

``ray`` part (needs ``pip install assay[ray]``): tests/min of the same programs through
the local executor, a 1-node Ray cluster and a 2-node Ray cluster on this machine (same
total cores). See docs/distributed.md for the numbers and the exact commands.

    python benchmarks/scale_bench.py batch --nodes 5,10 --models 16 --batch 4,8
    python benchmarks/scale_bench.py driver
    python benchmarks/scale_bench.py ray --programs 12
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _load() -> float:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # pragma: no cover
        return -1.0


def run_jobs(executor, jobs: list, expected: int, timeout: float = 3600) -> dict:
    """Start ``executor``, wait for a ready worker, submit ``jobs``; time until ``expected`` verdicts."""
    executor.start()
    kinds: dict = {}
    ready = False
    deadline = time.monotonic() + timeout
    try:
        while not ready:
            for ev in executor.poll(0.5):
                ready = ready or (ev.get("event") == "worker" and ev.get("state") == "ready")
            if time.monotonic() > deadline:
                raise RuntimeError("no worker became ready")
        t0 = time.monotonic()
        for job in jobs:
            executor.submit(job)
        got = 0
        while got < expected and time.monotonic() < deadline:
            for ev in executor.poll(0.5):
                if ev.get("event") == "verdict":
                    got += 1
                    kinds[ev["kind"]] = kinds.get(ev["kind"], 0) + 1
        elapsed = time.monotonic() - t0
    finally:
        executor.shutdown()
    tests = sum(n for k, n in kinds.items() if k != "genfail")
    return {"tests": tests, "seconds": round(elapsed, 1), "tests_per_min": round(60 * tests / elapsed, 1),
            "kinds": kinds}


def batch_part(args) -> list[dict]:
    from fuzz.campaign.batch import batch_jobs
    from fuzz.campaign.config import Config
    from fuzz.campaign.executor import LocalExecutor
    from fuzz.campaign.jobs import job_stream

    rows = []
    for nodes in args.nodes:
        row = {"nodes": nodes, "models": args.models}
        for k in (1, *args.batch):
            with tempfile.TemporaryDirectory(prefix="assay-scale-") as tmp:
                cfg = Config(out=tmp, backends=["inductor"], modes=["fwd"], seed=args.seed, nodes=nodes)
                jobs = list(batch_jobs(itertools.islice(job_stream(cfg, set(), -1), args.models), k))
                env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(Path(tmp) / "inductor-cache"))
                ex = LocalExecutor(1, ["inductor"], timeout_s=600, mem_limit_mb=6144, threads=1, env=env,
                                   log_dir=Path(tmp) / "logs")
                load0 = _load()
                res = run_jobs(ex, jobs, args.models)
                batched_log = "".join(p.read_text(errors="replace") for p in (Path(tmp) / "logs").glob("*.log"))
            key = "unbatched" if k == 1 else f"batch{k}"
            row[key] = dict(res, load=[load0, _load()])
            if k != 1:
                row[key]["batch_lines"] = [ln for ln in batched_log.splitlines() if ln.startswith("assay batch")]
                row[key]["ratio"] = round(res["tests_per_min"] / max(row["unbatched"]["tests_per_min"], 1e-9), 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="part", required=True)
    b = sub.add_parser("batch", help="tests/min unbatched vs --batch K (inductor, fwd, one worker)")
    b.add_argument("--nodes", type=lambda s: [int(x) for x in s.split(",")], default=[5, 10])
    b.add_argument("--models", type=int, default=16)
    b.add_argument("--batch", type=lambda s: [int(x) for x in s.split(",")], default=[4, 8])
    b.add_argument("--seed", type=int, default=0)
    sub.add_parser("driver", help="per-test driver costs on a real store; saturation estimate")
    r = sub.add_parser("ray", help="tests/min: local executor vs Ray with 1 and 2 local nodes")
    r.add_argument("--programs", type=int, default=12)
    r.add_argument("--backends", default="aot_eager")
    args = ap.parse_args(argv)
    if args.part == "batch":
        rows = batch_part(args)
        print("\n| nodes | models | K | unbatched tests/min | batched tests/min | ratio | load (1-min avg) |")
        print("|---|---|---|---|---|---|---|")
        for row in rows:
            for k in args.batch:
                b = row[f"batch{k}"]
                print(f"| {row['nodes']} | {row['models']} | {k} | {row['unbatched']['tests_per_min']} | "
                      f"{b['tests_per_min']} | {b['ratio']}x | {row['unbatched']['load'][0]}-{b['load'][1]} |")
    elif args.part == "driver":
        from driver_costs import report  # noqa: E402 (benchmarks/driver_costs.py)

        report()
    else:
        from ray_bench import report  # noqa: E402 (benchmarks/ray_bench.py)

        report(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
