#!/usr/bin/env python3
"""Campaign throughput: Assay's tests/min vs NNSmith's single-process fuzz loop.

For each node count, runs a real ``assay fuzz`` campaign (``--workers N``, default
2, against ``--backends``, default inductor) for ``--seconds`` and reports:

- ``tests_per_min_steady``: tests finished after the first verdict, per minute of the
  time after it (worker start-up and backend warm-up excluded, as NNSmith's harness
  excludes its warm-up compile);
- ``tests_per_min_overall``: ``stats.json``'s figure, warm-up included;
- every run (Assay's and NNSmith's) compiles into its own empty inductor cache
  directory, so no compile is a cache hit from an earlier run of the same seed;
- outcomes, and every non-pass verdict (to be examined: a false alarm is a bug of
  the oracle).

``--backends`` takes several configurations separated by ``;`` (each model is tested on
every backend of its configuration and each verdict counts as a test, as in a campaign).
With ``--nnsmith-src DIR``, after each node count's Assay runs it runs
``benchmarks/nnsmith_baseline.py``'s fuzz loop (single process, inductor) for the same
node count and time, one after the other (never concurrently), and records the load
average around each run. Without ``--json`` it prints a Markdown table.

    python benchmarks/fuzz_bench.py --nodes 5,10 --seconds 180 --json
    python benchmarks/fuzz_bench.py --nodes 5,10 --seconds 180 --backends 'inductor;inductor,aot_eager' \\
        --nnsmith-src /tmp/nnsmith --nnsmith-python /tmp/nnsmith-venv/bin/python
"""

from __future__ import annotations

import argparse
import calendar
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NNSMITH_REFERENCE = {"5": 49.0, "10": 40.0}  # tests/min vs inductor, single process (the brief's numbers)


def _load() -> float:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # pragma: no cover
        return -1.0


def assay_run(nodes: int, seconds: float, workers: int, backends: str, modes: str, seed: int, out: Path) -> dict:
    exe = Path(sys.executable).parent / "assay"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "fuzz.cli"]
    cmd += ["fuzz", "--time", str(seconds), "--workers", str(workers), "--backends", backends, "--modes", modes,
            "--nodes", str(nodes), "--seed", str(seed), "--out", str(out), "--progress-every", "60"]
    load0 = _load()
    t0 = time.time()
    res = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.time() - t0
    if res.returncode != 0:
        raise RuntimeError(f"assay fuzz failed ({res.returncode}): {res.stderr[-2000:]}")
    stats = json.loads((out / "stats.json").read_text())
    db = sqlite3.connect(str(out / "index.sqlite"))
    rows = db.execute("SELECT id, kind, detail, t, backend FROM tests WHERE kind != 'genfail' ORDER BY t").fetchall()
    genfail = db.execute("SELECT COUNT(*) FROM tests WHERE kind = 'genfail'").fetchone()[0]
    db.close()
    campaign = json.loads((out / "campaign.json").read_text())
    started = calendar.timegm(time.strptime(campaign["created"], "%Y-%m-%dT%H:%M:%SZ"))
    end = started + stats["elapsed_s"]
    steady = None
    first = None
    if len(rows) >= 2:
        first = rows[0][3]
        window = max(1e-9, end - first)
        steady = round((len(rows) - 1) / window * 60, 2)
    failures = [{"test": r[0], "kind": r[1], "detail": r[2][:200]} for r in rows if r[1] not in ("pass",)]
    per_backend = {}
    for r in rows:
        per_backend.setdefault(r[4], 0)
        per_backend[r[4]] += 1
    return {
        "nodes": nodes, "seconds": seconds, "workers": workers, "backends": backends, "modes": modes, "seed": seed,
        "tests": len(rows), "tests_per_min_steady": steady, "tests_per_min_overall": stats["tests_per_min"],
        "warmup_s": round(first - started, 1) if first else None, "tests_per_backend": per_backend,
        "outcomes": stats["outcomes"], "invalid": stats["invalid"], "unsupported": stats["unsupported"],
        "generation_failures": genfail, "unique_signatures": stats["unique_signatures"], "models": stats["models"],
        "ops_covered": stats["ops_covered"], "failures": failures, "wall_s": round(wall, 1),
        "load_start": load0, "load_end": _load(), "out": str(out),
    }


def _fresh_compile_cache(base: Path, name: str) -> None:
    """Point inductor's on-disk caches (FX graph, C++ kernels) at an empty directory.

    Both tools generate the same models for the same seed, so a cache left by an earlier
    run turns most compiles into cache hits (measured: 153 instead of 44 tests/min), which
    a real campaign, whose models are all new, never gets. Every run starts cold.
    """
    path = base / f"inductor-cache-{name}"
    path.mkdir(parents=True, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(path)


def _nnsmith(args, n: int) -> dict | None:
    """NNSmith's single-process fuzz loop for ``n`` nodes (None without ``--nnsmith-src``)."""
    if not args.nnsmith_src:
        return None
    sys.path.insert(0, str(REPO))
    from benchmarks.nnsmith_baseline import NNSmithUnavailable, nnsmith_fuzz_stats

    _fresh_compile_cache(Path(args.base), f"nnsmith-{n}")
    try:
        load0 = _load()
        res = nnsmith_fuzz_stats(args.nnsmith_src, [n], args.seconds, seed=args.seed,
                                 python=args.nnsmith_python, opset="eager")
        row = dict(res.get("fuzz", {}).get(str(n)) or {})
        row.update({"load_start": load0, "load_end": _load()})
        return row
    except NNSmithUnavailable as exc:
        return {"unavailable": str(exc)}


def _table(result: dict) -> str:
    lines = ["| nodes | run | tests | tests/min | x NNSmith (same run) | outcomes (non-pass) | load start-end |",
             "|---|---|---|---|---|---|---|"]
    for n, runs in result["assay"].items():
        nn = (result["nnsmith"] or {}).get(n) or {}
        for label, a in runs.items():
            bad = {k: v for k, v in a["outcomes"].items() if k != "pass" and v}
            lines.append(f"| {n} | Assay {label} ({a['workers']} workers) | {a['tests']} | {a['tests_per_min_steady']} | "
                         f"{a.get('speedup_vs_nnsmith_same_machine', '-')} | {bad or '-'} | {a['load_start']}-{a['load_end']} |")
        if nn.get("tests_per_min"):
            lines.append(f"| {n} | NNSmith bc0af42, inductor (1 process) | {nn['tests']} | {nn['tests_per_min']} | 1.0 | "
                         f"reports {nn.get('report_kinds') or '-'} | {nn['load_start']}-{nn['load_end']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", default="5,10")
    ap.add_argument("--seconds", type=float, default=180)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--backends", default="inductor",
                    help="Assay configurations to run, separated by ';' (each a --backends list), "
                         "e.g. 'inductor;inductor,aot_eager'")
    ap.add_argument("--modes", default="fwd")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", action="store_true", help="keep the campaign directories (printed in the JSON)")
    ap.add_argument("--nnsmith-src", default=os.environ.get("NNSMITH_SRC"))
    ap.add_argument("--nnsmith-python", default=os.environ.get("NNSMITH_PYTHON"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    nodes = [int(n) for n in args.nodes.split(",") if n.strip()]
    configs = [c.strip() for c in args.backends.split(";") if c.strip()]
    base = Path(tempfile.mkdtemp(prefix="assay-fuzz-bench-"))
    args.base = str(base)
    result = {"machine": {"cores": os.cpu_count()}, "assay": {}, "nnsmith": {} if args.nnsmith_src else None,
              "nnsmith_reference_tests_per_min": NNSMITH_REFERENCE, "argv": sys.argv[1:]}
    try:
        import torch

        result["machine"]["torch"] = torch.__version__
    except ImportError:  # pragma: no cover
        pass
    # Per node count: every Assay configuration, then NNSmith, one after the other (never
    # concurrently), so each pair is measured under the same conditions.
    for n in nodes:
        runs = result["assay"].setdefault(str(n), {})
        for i, backends in enumerate(configs):
            out = base / f"assay-{n}-{i}"
            _fresh_compile_cache(base, f"assay-{n}-{i}")
            runs[backends] = assay_run(n, args.seconds, args.workers, backends, args.modes, args.seed, out)
            sys.stderr.write(f"assay {n} nodes [{backends}]: {runs[backends]['tests_per_min_steady']} tests/min steady\n")
        nn = _nnsmith(args, n)
        if nn is not None:
            result["nnsmith"][str(n)] = nn
            sys.stderr.write(f"nnsmith {n} nodes: {nn.get('tests_per_min')} tests/min\n")
        for a in runs.values():
            if nn and nn.get("tests_per_min"):
                a["speedup_vs_nnsmith_same_machine"] = round((a["tests_per_min_steady"] or 0) / nn["tests_per_min"], 2)
            a["speedup_vs_nnsmith_reference"] = round((a["tests_per_min_steady"] or 0) / NNSMITH_REFERENCE.get(str(n), 1), 3)
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
