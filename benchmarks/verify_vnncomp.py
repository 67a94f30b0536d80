"""VNN-COMP 2021 ACAS Xu (186 instances): Assay verify against the competition's result tables.

    python benchmarks/verify_vnncomp.py                       # all 186 at the official 116 s
    python benchmarks/verify_vnncomp.py --cap 30 --every 5    # the subset used in docs/benchmarks-verify.md

--cap S lowers every instance's timeout to S seconds; --every K keeps instances 0, K, 2K, ...
of props 1-4 (plus all 6 instances of props 5-10). Each tool's row in the table is computed on
the same instance subset, from results/vnncomp2021/TOOL.csv (run_s includes the tool's own
start-up overhead, measured on the competition's machines, not ours). Solved = holds/violated
within the timeout used here (--cap applies to the competition tools' times too).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
SHARED = os.path.join(REPO, "..", "shared", "benchmarks", "verify")


def tool_results(subset, cap):
    d = os.path.join(SHARED, "results", "vnncomp2021")
    table = {}
    for f in sorted(os.listdir(d)):
        if not f.endswith(".csv"):
            continue
        tool = f[:-4]
        res = {}
        with open(os.path.join(d, f)) as fh:
            for row in csv.reader(fh):
                if len(row) < 6 or row[0] != "acasxu":
                    continue
                key = (os.path.basename(row[1]), os.path.basename(row[2]))
                try:
                    t = float(row[5])
                except ValueError:
                    t = float("inf")
                res[key] = (row[4].strip().lower(), t)
        if not res:
            continue
        solved, times, answers = 0, [], {}
        for key in subset:
            r, t = res.get(key, ("missing", float("inf")))
            ok = r in ("holds", "violated", "unsat", "sat") and t <= cap
            if ok:
                solved += 1
                times.append(t)
                answers[key] = "unsat" if r in ("holds", "unsat") else "sat"
        table[tool] = {"solved": solved, "median_s": float(np.median(times)) if times else None,
                       "answers": answers}
    return table


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cap", type=float, default=116.0, help="per-instance timeout (seconds, <= 116)")
    ap.add_argument("--every", type=int, default=1, help="keep every K-th instance of props 1-4")
    ap.add_argument("--out", default=None, help="also write the results as JSON here")
    args = ap.parse_args(argv)
    import verify

    with open(os.path.join(SHARED, "acasxu", "acasxu_instances.csv")) as fh:
        rows = [r for r in csv.reader(fh) if r]
    sel = [r for i, r in enumerate(rows) if i >= 180 or i % args.every == 0]
    print(f"{len(sel)} of {len(rows)} instances, cap {args.cap:g} s", flush=True)
    ours = {}
    for onnx_name, prop, to in sel:
        timeout = min(float(to), args.cap)
        net = verify.load_network(os.path.join(SHARED, "acasxu", "onnx", onnx_name))
        t0 = time.monotonic()
        r = verify.check_vnnlib(net, os.path.join(SHARED, "acasxu", "vnnlib", prop), timeout=timeout)
        el = time.monotonic() - t0
        ours[(onnx_name, prop)] = (r.result, el)
        print(f"{onnx_name:36s} {prop:15s} {r.result:8s} {el:7.2f}s", flush=True)
    subset = list(ours)
    table = tool_results(subset, args.cap)
    solved = {k: v for k, v in ours.items() if v[0] in ("sat", "unsat")}
    lines = ["| tool | solved | median s (solved) | disagreements with Assay |", "|---|---|---|---|"]
    lines.append(f"| **Assay (this run)** | {len(solved)}/{len(subset)} | "
                 f"{np.median([v[1] for v in solved.values()]) if solved else float('nan'):.2f} | - |")
    for tool, t in sorted(table.items(), key=lambda kv: -kv[1]["solved"]):
        dis = sum(1 for k, a in t["answers"].items() if k in solved and solved[k][0] != a)
        med = f"{t['median_s']:.2f}" if t["median_s"] is not None else "-"
        lines.append(f"| {tool} | {t['solved']}/{len(subset)} | {med} | {dis} |")
    by_prop = {}
    for (n, p), (res, el) in ours.items():
        by_prop.setdefault(p, []).append(res)
    lines.append("")
    lines.append("Assay per property: " + ", ".join(
        f"{p}: {sum(r in ('sat', 'unsat') for r in v)}/{len(v)}" for p, v in sorted(by_prop.items(), key=lambda kv: int(kv[0].split('_')[1].split('.')[0]))))
    print()
    print("\n".join(lines))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"args": vars(args), "ours": {f"{k[0]},{k[1]}": v for k, v in ours.items()},
                       "table": "\n".join(lines)}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
