"""VNN-COMP ACAS Xu (186 instances) and MNIST-FC (90): Assay verify against the competition's results.

    python benchmarks/verify_vnncomp.py                                  # all 186 ACAS Xu at the official 116 s
    python benchmarks/verify_vnncomp.py --cap 30 --every 5               # 42 of them (props 1-4 every 5th + props 5-10)
    python benchmarks/verify_vnncomp.py --family mnistfc --cap 30 --every 3
    python benchmarks/verify_vnncomp.py --only 15,25,180                 # chosen instance rows

--cap S lowers every instance's timeout to S seconds (the competition tools' times are
capped the same way); --every K keeps instances 0, K, 2K, ... (ACAS Xu: of props 1-4, plus
all 6 of props 5-10). Each tool's row is computed on the same instances from
results/vnncomp2021/TOOL.csv (run_s includes the tool's own start-up overhead, measured on
the competition's machines, not ours). Disagreements are counted against every tool's
answer in every year's results present (ACAS Xu: 2021-2025; MNIST-FC: 2021 only, since
its instances were regenerated under the same names in 2022) and against the majority
answer; a tool's wrong answer (e.g. NV.jl 2021, cgdtest 2022, RPM 2021) shows up as a
disagreement with that tool. The load average of this machine is printed before and after the run.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
SHARED = os.path.join(REPO, "..", "shared", "benchmarks", "verify")
CAT = {"acasxu": ("acasxu",), "mnistfc": ("mnistfc", "mnist_fc")}


def _answer(r):
    r = r.strip().lower()
    return "unsat" if r in ("holds", "unsat") else "sat" if r in ("violated", "sat") else None


def tool_results(family, subset, cap):
    """2021 table rows (solved within cap) and every year's answers per instance (for disagreements)."""
    table, all_answers = {}, {}
    for f in sorted(glob.glob(os.path.join(SHARED, "results", "vnncomp20*", "*.csv"))):
        year = os.path.basename(os.path.dirname(f))[-4:]
        tool = os.path.basename(f)[:-4].split("__")[0]
        res = {}
        with open(f) as fh:
            for row in csv.reader(fh):
                if len(row) < 6 or row[0] not in CAT[family]:
                    continue
                key = (os.path.basename(row[1]), os.path.basename(row[2]))
                try:
                    t = float(row[5])
                except ValueError:
                    t = float("inf")
                res[key] = (_answer(row[4]), t)
        # MNIST-FC was regenerated for 2022 (new random images under the same file names:
        # 2021's tools all say 256x6/prop_6_0.03 holds, 2022's say it is violated), so only
        # 2021's answers are about the instances in shared/; ACAS Xu's are the same every year
        if family == "mnistfc" and year != "2021":
            continue
        for key, (a, _) in res.items():
            if a is not None:
                all_answers.setdefault(key, []).append((f"{tool} {year}", a))
        if year != "2021" or not res:
            continue
        solved, times, answers = 0, [], {}
        for key in subset:
            a, t = res.get(key, (None, float("inf")))
            if a is not None and t <= cap:
                solved += 1
                times.append(t)
                answers[key] = a
        table[tool] = {"solved": solved, "median_s": float(np.median(times)) if times else None,
                       "total_s": float(np.sum(times)) if times else 0.0, "answers": answers}
    return table, all_answers


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", choices=["acasxu", "mnistfc"], default="acasxu")
    ap.add_argument("--cap", type=float, default=None, help="per-instance timeout (default: the official one)")
    ap.add_argument("--every", type=int, default=1, help="keep every K-th instance")
    ap.add_argument("--only", default=None, help="comma-separated instance rows (0-based) instead of --every")
    ap.add_argument("--cpu-clock", action="store_true",
                    help="deadlines count this process's CPU time, not wall time (for a shared, overloaded "
                         "machine: every deadline in verify reads time.monotonic, which this replaces)")
    ap.add_argument("--random", type=int, default=None, help="a random subset of this many instances (with --seed)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--options", default="{}",
                    help='JSON object of verify.solver.Options fields, e.g. \'{"split_portfolio": []}\'')
    ap.add_argument("--out", default=None, help="also write the results as JSON here")
    ap.add_argument("--from-json", default=None,
                    help="re-tabulate previous --out files instead of running (comma-separated: shards of one "
                         "run, e.g. made with --only; an instance in several takes the first file's result)")
    args = ap.parse_args(argv)
    if args.from_json:
        prevs = []
        for f in args.from_json.split(","):
            with open(f) as fh:
                prevs.append(json.load(fh))
        prev = {"args": prevs[0]["args"], "ours": {}}
        for pr in prevs:
            for k, v in pr["ours"].items():
                prev["ours"].setdefault(k, v)
        for k in ("family", "cap", "every", "only"):
            setattr(args, k, prev["args"].get(k, getattr(args, k)))
    if args.cpu_clock:
        time.monotonic = time.process_time  # before verify is imported; the table says so
    import verify
    from verify.solver import Options

    try:
        opts = Options(**json.loads(args.options))
    except (TypeError, ValueError) as e:
        ap.error(f"--options: {e}")
    fam = args.family
    base = os.path.join(SHARED, fam)
    with open(os.path.join(base, f"{fam}_instances.csv")) as fh:
        rows = [r for r in csv.reader(fh) if r]
    if args.random:
        keep = set(np.random.default_rng(args.seed).choice(len(rows), args.random, replace=False).tolist())
        sel = [(i, r) for i, r in enumerate(rows) if i in keep]
    elif args.only:
        keep = {int(v) for v in args.only.split(",")}
        sel = [(i, r) for i, r in enumerate(rows) if i in keep]
    elif fam == "acasxu":
        sel = [(i, r) for i, r in enumerate(rows) if i >= 180 or i % args.every == 0]
    else:
        sel = [(i, r) for i, r in enumerate(rows) if i % args.every == 0]
    cap = args.cap if args.cap is not None else float("inf")
    print(f"{fam}: {len(sel)} of {len(rows)} instances, cap {cap:g} s"
          f"{' of CPU time (--cpu-clock)' if args.cpu_clock else ''}; load before: {os.getloadavg()}", flush=True)
    ours = {}
    t_all = time.perf_counter()  # wall clock even with --cpu-clock
    if args.from_json:
        ours = {tuple(k.split(",")): tuple(v) for k, v in prev["ours"].items()}
        sel = []
    for i, (onnx_name, prop, to) in sel:
        timeout = min(float(to), cap)
        net = verify.load_network(os.path.join(base, "onnx", onnx_name))
        t0, c0 = time.monotonic(), time.process_time()
        r = verify.check_vnnlib(net, os.path.join(base, "vnnlib", prop), timeout=timeout, options=opts)
        el = time.monotonic() - t0
        ours[(onnx_name, prop)] = (r.result, el, time.process_time() - c0)
        st = r.stats["cases"][-1] if r.stats.get("cases") else {}
        if args.out:  # after every instance, so that a stopped run keeps what it measured
            with open(args.out, "w") as fh:
                json.dump({"args": vars(args), "ours": {f"{k[0]},{k[1]}": v for k, v in ours.items()},
                           "table": "(partial: the run was still going)"}, fh, indent=1)
        print(f"{i:3d} {onnx_name:36s} {prop:20s} {r.result:8s} {el:7.2f}s  cpu {ours[(onnx_name, prop)][2]:6.2f}s  domains {st.get('domains')}  "
              f"{st.get('certificate') or st.get('found_by') or st.get('method', '')}", flush=True)
    wall = time.perf_counter() - t_all
    subset = list(ours)
    eff_cap = min(cap, max(float(r[2]) for r in rows))
    table, all_answers = tool_results(fam, subset, eff_cap)
    solved = {k: v for k, v in ours.items() if v[0] in ("sat", "unsat")}
    dis = [(k, ours[k][0], who, a) for k in solved for who, a in all_answers.get(k, []) if a != ours[k][0]]
    # the consensus answer of an instance: the majority of all tools' answers over all years
    def consensus(k):
        a = [b for _, b in all_answers.get(k, [])]
        return max(set(a), key=a.count) if a else None
    dis_cons = [k for k in solved if consensus(k) is not None and consensus(k) != ours[k][0]]
    times = [v[1] for v in ours.values()]
    cpu = [v[2] for v in ours.values() if len(v) > 2]  # this process's CPU time (the machine is shared)
    cpu_line = (f"; CPU time of this process: total {sum(cpu):.1f} s, median {np.median(cpu):.2f} s"
                if len(cpu) == len(times) and cpu else "")
    lines = [f"Assay: answered {len(solved)}/{len(subset)}, total {sum(times):.1f} s, median {np.median(times):.2f} s "
             f"(all instances, timeouts counted at their time){cpu_line}, wall {wall:.0f} s, load after: {os.getloadavg()}",
             f"disagreements with the consensus (majority answer of all tools, "
             f"{'2021-2025' if fam == 'acasxu' else '2021 (later years used other instances)'}): {len(dis_cons)}; "
             f"with individual tool answers: {len(dis)} (listed below)", "",
             "| tool | solved | median s (solved) | total s (solved) | disagreements with Assay |", "|---|---|---|---|---|"]
    med = np.median([v[1] for v in solved.values()]) if solved else float("nan")
    lines.append(f"| **Assay (this run, this machine)** | {len(solved)}/{len(subset)} | {med:.2f} | "
                 f"{sum(v[1] for v in solved.values()):.1f} | - |")
    for tool, t in sorted(table.items(), key=lambda kv: -kv[1]["solved"]):
        d = sum(1 for k, a in t["answers"].items() if k in solved and solved[k][0] != a)
        m = f"{t['median_s']:.2f}" if t["median_s"] is not None else "-"
        lines.append(f"| {tool} (2021, competition hardware) | {t['solved']}/{len(subset)} | {m} | {t['total_s']:.1f} | {d} |")
    by_prop = {}
    for (n, p), (res, *_) in ours.items():
        key = int(p.split("_")[1].split(".")[0]) if fam == "acasxu" else n
        by_prop.setdefault(key, []).append(res)
    lines.append("")
    lines.append("Assay per " + ("property" if fam == "acasxu" else "network") + ": " + ", ".join(
        f"{'prop ' if fam == 'acasxu' else ''}{p}: {sum(r in ('sat', 'unsat') for r in v)}/{len(v)}" for p, v in sorted(by_prop.items())))
    for k, a, who, b in dis:
        lines.append(f"DISAGREEMENT {k}: Assay {a}, {who} {b}")
    print()
    print("\n".join(lines))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"args": vars(args), "ours": {f"{k[0]},{k[1]}": v for k, v in ours.items()},
                       "table": "\n".join(lines)}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
