#!/usr/bin/env python
"""Reduce every case of a crashes directory and report how small and how fast.

    python benchmarks/triage_bench.py --dir crashes/ [--time-budget 120] [--limit N] [--json out.json]

For each original case (reduced ones are skipped; an existing ``<id>-reduced`` is
replaced): ops before/after, wall time of ``reduce`` (worker start-up included), candidate
runs, and whether the reduced ``repro.py`` still reproduces when run alone in a fresh
sandboxed process (exit 1). Prints a table, then the median ops after and median time.

Cases sharing a (backend, mode) share one warm worker, as ``assay triage reduce`` would
if it were given several cases; ``--cold`` starts a fresh worker per case instead (what
a single ``assay triage reduce ID`` pays). Extra environment for the children (e.g. a
test-only fault, see tests/fault_injection) is taken from this process's environment.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fuzz.campaign import sandbox  # noqa: E402
from fuzz.errors import AssayError  # noqa: E402
from fuzz.triage.actions import REDUCED_SUFFIX, case_timeout, reduce_case  # noqa: E402
from fuzz.triage.cases import iter_cases  # noqa: E402
from fuzz.triage.runner import WorkerRunner  # noqa: E402


def repro_reproduces(case_dir: Path, timeout: float = 600) -> bool | None:
    res = sandbox.run([sys.executable, str(case_dir / "repro.py")], timeout, None, cwd=str(case_dir))
    if res.timed_out:
        return None
    return res.returncode != 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--dir", default="crashes", help="crashes directory (default crashes/)")
    ap.add_argument("--time-budget", type=float, default=120.0, help="seconds of reduction per case (default 120)")
    ap.add_argument("--limit", type=int, default=0, help="at most this many cases (default all)")
    ap.add_argument("--kind", default=None, help="only cases of this kind")
    ap.add_argument("--cold", action="store_true", help="a fresh worker per case (default: one per backend/mode)")
    ap.add_argument("--json", default=None, help="also write the rows as JSON here")
    args = ap.parse_args(argv)

    root = Path(args.dir)
    cases = [c for c in iter_cases(root) if not c.reduced_from and (not args.kind or c.kind == args.kind)]
    cases.sort(key=lambda c: c.id)
    if args.limit:
        cases = cases[: args.limit]
    if not cases:
        print(f"no cases in {root}")
        return 1
    runners: dict[tuple, WorkerRunner] = {}
    rows = []
    try:
        for case in cases:
            old = root / (case.id + REDUCED_SUFFIX)
            if old.exists():
                shutil.rmtree(old)
            key = (case.backend, case.mode or "fwd")
            runner = None
            if not args.cold:
                runner = runners.get(key)
                if runner is None:
                    runner = runners[key] = WorkerRunner(case.backend, case.mode or "fwd", timeout=case_timeout(case, None),
                                                         mem_limit_mb=case.mem_limit_mb or None)
            t0 = time.monotonic()
            try:
                r = reduce_case(case, time_budget=args.time_budget, runner=runner)
                wall = time.monotonic() - t0
                rep = repro_reproduces(Path(r["reduced_case"]))
                row = {"case": case.id, "kind": case.kind, "backend": case.backend, "mode": case.mode,
                       "ops_before": r["ops_before"], "ops_after": r["ops_after"], "seconds": round(wall, 1),
                       "runs": r["runs"], "timed_out": r["timed_out"], "reproduces": rep, "ops": r["ops"]}
            except AssayError as exc:
                row = {"case": case.id, "kind": case.kind, "backend": case.backend, "mode": case.mode,
                       "ops_before": len(case.ops), "ops_after": None, "seconds": round(time.monotonic() - t0, 1),
                       "runs": None, "timed_out": None, "reproduces": None, "error": str(exc)[:200]}
            rows.append(row)
            print(_line(row), flush=True)
    finally:
        for r in runners.values():
            r.close()
    done = [r for r in rows if r["ops_after"] is not None]
    print()
    print(f"{'case':40s} {'kind':9s} {'backend':10s} {'mode':7s} {'before':>6s} {'after':>5s} {'time_s':>7s} {'runs':>4s}  reproduces")
    for r in rows:
        print(_line(r))
    if done:
        print()
        print(f"cases reduced: {len(done)} of {len(rows)}")
        print(f"median ops after: {statistics.median(r['ops_after'] for r in done):g} "
              f"(before: {statistics.median(r['ops_before'] for r in done):g})")
        print(f"median time: {statistics.median(r['seconds'] for r in done):.1f} s "
              f"(max {max(r['seconds'] for r in done):.1f} s)")
        print(f"reduced repro.py reproduces: {sum(1 for r in done if r['reproduces'])} of {len(done)}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


def _line(r: dict) -> str:
    rep = {True: "yes", False: "NO", None: "-"}[r["reproduces"]]
    after = "-" if r["ops_after"] is None else str(r["ops_after"])
    extra = f"  ({r['error']})" if r.get("error") else ("  (budget hit)" if r.get("timed_out") else "")
    return (f"{r['case'][:40]:40s} {r['kind']:9s} {r['backend']:10s} {str(r['mode']):7s} {r['ops_before']:6d} {after:>5s} "
            f"{r['seconds']:7.1f} {str(r['runs'] or '-'):>4s}  {rep}{extra}")


if __name__ == "__main__":
    sys.exit(main())
