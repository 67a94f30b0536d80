"""Local-robustness benchmark: Assay verify vs Marabou, side by side in one run.

Instances: points sampled with a fixed seed (ACAS Xu: uniform in the normalised input box;
MNIST: the 15 VNN-COMP 2021 mnistfc test images, recovered exactly from their VNN-LIB boxes),
each at several L-infinity radii, on ACAS Xu .nnet networks (decision argmin) and Marabou's
small MNIST .nnet networks (argmax). Both tools get the same box and the same property and the
same per-instance timeout; Marabou runs in a subprocess (maraboupy, installed with pip into
the current environment if missing), Assay in-process.

    python benchmarks/verify_bench.py --timeout 60            # the run in docs/benchmarks-verify.md
    python benchmarks/verify_bench.py --instances 4 --timeout 10 --family acas
    python benchmarks/verify_bench.py --no-marabou            # Assay only
    python benchmarks/verify_bench.py --mode per-class        # one query per competing output

Prints one line per instance, then the summary table (markdown) and writes --out (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
SHARED = os.path.join(REPO, "..", "shared", "benchmarks", "verify")


MARABOU_PY = sys.executable  # --marabou-python: a Python that has maraboupy (e.g. a separate venv)


def ensure_marabou():
    r = subprocess.run([MARABOU_PY, "-c", "import maraboupy"], capture_output=True)
    if r.returncode == 0:
        return True
    if MARABOU_PY != sys.executable:
        print(f"{MARABOU_PY} cannot import maraboupy", flush=True)
        return False
    print("installing maraboupy==2.0.0 into", sys.prefix, flush=True)
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "maraboupy==2.0.0"])
    return r.returncode == 0


def mnist_points():
    from verify.vnnlib import read_vnnlib

    pts, labels = [], []
    for i in range(15):
        f = os.path.join(SHARED, "mnistfc", "vnnlib", f"prop_{i}_0.03.vnnlib")
        with open(f) as fh:
            labels.append(int(re.search(r"label: (\d+)", fh.readline()).group(1)))
        lo, hi, _ = read_vnnlib(f)[0]
        x = np.where(hi < 1, hi - 0.03, lo + 0.03)
        pts.append(np.round(x * 255) / 255)
    return np.array(pts), np.array(labels)


def instances(args):
    from verify import load_network

    rng = np.random.default_rng(args.seed)
    out = []
    if args.family in ("all", "acas"):
        nets = [f"ACASXU_experimental_v2a_{n}.nnet" for n in args.acas_nets.split(",")]
        for name in nets:
            path = os.path.join(SHARED, "acasxu", "nnet", name)
            net = load_network(path)
            pts = rng.uniform(net.input_lo, net.input_hi, size=(args.instances, net.n_inputs))
            for p in pts:
                for eps in [float(e) for e in args.acas_eps.split(",")]:
                    out.append(("acas", path, p, eps, "argmin"))
    if args.family in ("all", "mnist"):
        pts, _ = mnist_points()
        for name in args.mnist_nets.split(","):
            path = os.path.join(SHARED, "marabou-mnist", name)
            for p in pts[: args.instances]:
                for eps in [float(e) for e in args.mnist_eps.split(",")]:
                    out.append(("mnist", path, p, eps, "argmax"))
    return out


def run_marabou(path, point, eps, label, decision, timeout):
    cmd = [MARABOU_PY, os.path.join(HERE, "verify_marabou.py"), path,
           ",".join(repr(float(v)) for v in point), repr(eps), str(label), decision, str(timeout)]
    t0 = time.monotonic()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 30)
        line = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
        if not line:
            return {"result": "error", "time_s": time.monotonic() - t0, "err": r.stderr[-300:]}
        return json.loads(line[-1])
    except subprocess.TimeoutExpired:
        return {"result": "TIMEOUT", "time_s": time.monotonic() - t0}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", choices=["all", "acas", "mnist"], default="all")
    ap.add_argument("--instances", type=int, default=2, help="points per network")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per instance and tool")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--acas-nets", default="1_1,2_3,3_5,4_7,5_9")
    ap.add_argument("--acas-eps", default="0.02,0.05,0.1")
    ap.add_argument("--mnist-nets", default="mnist10x10.nnet,mnist10x20.nnet")
    ap.add_argument("--mnist-eps", default="0.002,0.005,0.01")
    ap.add_argument("--mode", choices=["combined", "per-class"], default="combined")
    ap.add_argument("--no-marabou", action="store_true")
    ap.add_argument("--marabou-python", default=None,
                    help="run Marabou with this Python (one with maraboupy installed) instead of installing it here")
    ap.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    if not os.path.isdir(SHARED):
        sys.exit(f"benchmark data not found at {SHARED}")
    global MARABOU_PY
    if args.marabou_python:
        MARABOU_PY = args.marabou_python
    use_marabou = not args.no_marabou and ensure_marabou()
    import verify

    rows = []
    insts = instances(args)
    print(f"{len(insts)} instances, timeout {args.timeout:g} s per tool, mode {args.mode}", flush=True)
    for fam, path, p, eps, decision in insts:
        net = verify.load_network(path)
        r = verify.check_robustness(net, p, eps, decision=decision, timeout=args.timeout, mode=args.mode)
        ours = {"robust": "unsat", "counterexample": "sat"}.get(r.verdict, "unknown")
        row = {"family": fam, "net": os.path.basename(path), "eps": eps, "label": r.label,
               "point": [float(v) for v in p], "assay": ours, "assay_s": r.time_s,
               "assay_method": r.stats.get("method"), "assay_domains": r.stats.get("domains")}
        if use_marabou:
            m = run_marabou(path, p, eps, r.label, decision, args.timeout)
            res = {"sat": "sat", "unsat": "unsat"}.get(m["result"], "unknown")
            row.update({"marabou": res, "marabou_s": m["time_s"], "marabou_raw": m["result"]})
            if res == "sat" and m.get("x") is not None:  # check Marabou's point with our evaluator
                x = np.asarray(m["x"])
                y = net.forward(x)
                other = np.delete(y, r.label)
                row["marabou_cex_margin"] = float(other.max() - y[r.label] if decision == "argmax"
                                                  else y[r.label] - other.min())
        rows.append(row)
        print(f"{fam:5s} {row['net']:34s} eps={eps:<6g} assay={ours:7s} {r.time_s:7.2f}s"
              + (f"  marabou={row['marabou']:7s} {row['marabou_s']:7.2f}s" if use_marabou else ""), flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"args": vars(args), "rows": rows}, fh, indent=1)
    print()
    print(summary(rows, args.timeout, use_marabou))
    return 0


def summary(rows, timeout, use_marabou):
    lines = []
    hdr = "| family | instances | Assay solved | Assay median s | Marabou solved | Marabou median s | both solved: median Assay/Marabou | Marabou-solved solved by Assay | Marabou timeouts solved by Assay | disagreements |"
    lines.append(hdr)
    lines.append("|" + "---|" * hdr.count("|")[:-1] if False else "|" + "|".join(["---"] * (hdr.count("|") - 1)) + "|")
    fams = sorted({r["family"] for r in rows}) + ["all"]
    for fam in fams:
        rs = [r for r in rows if fam == "all" or r["family"] == fam]
        a_ok = [r for r in rs if r["assay"] != "unknown"]
        a_med = np.median([r["assay_s"] for r in rs]) if rs else float("nan")
        if use_marabou:
            m_ok = [r for r in rs if r["marabou"] != "unknown"]
            m_med = np.median([r["marabou_s"] for r in rs]) if rs else float("nan")
            both = [r for r in rs if r["assay"] != "unknown" and r["marabou"] != "unknown"]
            ratio = (np.median([r["assay_s"] for r in both]) / np.median([r["marabou_s"] for r in both])) if both else float("nan")
            m_solved_a = sum(1 for r in m_ok if r["assay"] != "unknown")
            m_to = [r for r in rs if r["marabou"] == "unknown"]
            m_to_a = sum(1 for r in m_to if r["assay"] != "unknown")
            dis = sum(1 for r in both if r["assay"] != r["marabou"])
            lines.append(f"| {fam} | {len(rs)} | {len(a_ok)} | {a_med:.2f} | {len(m_ok)} | {m_med:.2f} | {ratio:.2f}x | "
                         f"{m_solved_a}/{len(m_ok)} | {m_to_a}/{len(m_to)} | {dis} |")
        else:
            lines.append(f"| {fam} | {len(rs)} | {len(a_ok)} | {a_med:.2f} | - | - | - | - | - | - |")
    lines.append("")
    lines.append("median s: over all instances of the row, a timeout counted at its full time.")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
