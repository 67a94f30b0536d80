"""Measurements behind verify's design choices (docs/benchmarks-verify.md, "design measurements").

    python benchmarks/verify_ablation.py [--timeout 30] [--points 3]

1. combined query vs one query per competing output (ACAS Xu local robustness);
2. Z3 leaves on/off and backward vs forward intermediate bounds (ACAS Xu local robustness);
3. Z3 ReLU encodings (disjunction + triangle, big-M with Bool, If) with Z3 on the whole box
   (no branch-and-bound) on small-radius ACAS Xu balls with a handful of unstable ReLUs.
Each configuration runs the same instances in sequence in one process.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
SHARED = os.path.join(REPO, "..", "shared", "benchmarks", "verify")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--points", type=int, default=3)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args(argv)
    import verify
    from verify.solver import Options

    rng = np.random.default_rng(args.seed)
    nets = [verify.load_network(os.path.join(SHARED, "acasxu", "nnet", f"ACASXU_experimental_v2a_{n}.nnet"))
            for n in ("1_1", "3_3", "5_9")]
    inst = [(net, rng.uniform(net.input_lo, net.input_hi), eps) for net in nets
            for _ in range(args.points) for eps in (0.05, 0.1)]
    configs = [
        ("combined (default)", "combined", Options()),
        ("per-class", "per-class", Options()),
        ("no Z3 leaves", "combined", Options(use_z3=False)),
        ("Z3 leaves from depth 0", "combined", Options(leaf_min_depth=0)),
        ("forward symbolic bounds", "combined", Options(bounds_method="forward")),
    ]
    print(f"## ACAS Xu local robustness, {len(inst)} instances (3 nets x {args.points} points x eps 0.05, 0.1), "
          f"timeout {args.timeout:g} s\n")
    print("| configuration | solved | median s | total s | verdicts differing from default |")
    print("|---|---|---|---|---|")
    base = None
    for name, mode, opts in configs:
        ts, verdicts = [], []
        for net, p, eps in inst:
            r = verify.check_robustness(net, p, eps, decision="argmin", timeout=args.timeout, mode=mode, options=opts)
            ts.append(r.time_s)
            verdicts.append(r.verdict)
        base = verdicts if base is None else base
        diff = sum(1 for a, b in zip(base, verdicts) if a != b)
        print(f"| {name} | {sum(v != 'unknown' for v in verdicts)}/{len(inst)} | {np.median(ts):.2f} | "
              f"{sum(ts):.1f} | {diff} |", flush=True)

    print(f"\n## Z3 ReLU encodings, Z3 on the whole ball (no BaB), ACAS Xu, timeout {args.timeout:g} s\n")
    from verify.bounds import count_unstable, linear_bounds

    small = []
    for net in nets:
        for _ in range(args.points):
            p = rng.uniform(net.input_lo, net.input_hi)
            small.append((net, p, 0.02))
    print("| encoding | solved | median s | total s | unstable ReLUs (median) |")
    print("|---|---|---|---|---|")
    for style in ("disjunction", "bigm", "ite"):
        ts, solved, unst = [], 0, []
        for net, p, eps in small:
            lo, hi = np.maximum(p - eps, net.input_lo), np.minimum(p + eps, net.input_hi)
            r = linear_bounds(net, lo[None], hi[None])
            unst.append(int(count_unstable(r["pre"])[0]))
            t0 = time.monotonic()
            res = verify.check_robustness(net, p, eps, decision="argmin", timeout=args.timeout,
                                          options=Options(direct_z3=True, attack_steps=0, z3_style=style,
                                                          leaf_timeout_s=args.timeout))
            ts.append(time.monotonic() - t0)
            solved += res.verdict != "unknown"
        print(f"| {style} | {solved}/{len(small)} | {np.median(ts):.2f} | {sum(ts):.1f} | {int(np.median(unst))} |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
