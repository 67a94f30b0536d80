"""SoundnessBench-style self-check: planted counterexamples that Assay must never call robust.

    python benchmarks/verify_soundness.py                       # 40 planted + 40 twins, 20 s each
    python benchmarks/verify_soundness.py --n 10 --timeout 5    # quicker

For each seed: a random ReLU net (2 or 5 inputs, 2-3 hidden layers of 16-32), a point p and
a radius eps at which the net itself shows no flip on 20000 random points of the ball; then
a counterexample is planted (``verify.plant``): a ReLU hat of L1-radius delta = 1e-4 * eps
around a random centre in the ball raises another output above the decision (by 1 at
the centre). Its volume is ~1e-8 (2 inputs) to ~1e-20 (5 inputs) of the ball, so random
sampling does not hit it. The *twin* is the same architecture with height 0.

Checked: (1) no planted instance is answered ``robust`` (that would be a wrong verdict:
the centre is a counterexample in float64 and float32, asserted when building it);
(2) every counterexample Assay returns (planted or twin) is re-validated here in float64
and float32; (3) how many planted counterexamples are found. Twins have no known
counterexample; their verdicts are reported (a twin counterexample, validated, is not wrong).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def make_instance(seed, inputs=(2, 5)):
    from verify.network import Network
    from verify.plant import plant

    rng = np.random.default_rng(seed)
    n_in = inputs[seed % len(inputs)]
    hidden = [int(rng.choice([16, 32]))] * int(rng.choice([2, 3]))
    n_out = int(rng.choice([3, 5]))
    sizes = [n_in, *hidden, n_out]
    net = Network([(rng.normal(size=(b, a)) / np.sqrt(a), rng.normal(size=b) * 0.3)
                   for a, b in zip(sizes, sizes[1:])], name=f"rand{seed}")
    p = rng.uniform(-1, 1, n_in)
    label = int(net.forward(p).argmax())
    for eps in (0.1, 0.05, 0.02, 0.01, 0.005):
        X = p + rng.uniform(-eps, eps, (20000, n_in))
        if np.all(net.forward(X).argmax(1) == label):
            break
    else:
        return None
    delta = 1e-4 * eps
    centre = p + rng.uniform(-1, 1, n_in) * (eps - 2 * delta)
    y = net.forward(centre)
    target = int(np.argsort(y)[-2]) if int(np.argmax(y)) == label else int(np.argmax(y))
    target = target if target != label else (label + 1) % n_out
    height = float(y[label] - y[target] + 1.0)
    planted = plant(net, centre, delta, target, height)
    twin = plant(net, centre, delta, target, 0.0)
    for f in (planted.forward, lambda x: planted.forward32(x).astype(np.float64)):
        assert int(np.argmax(f(centre))) != label, "the planted centre must flip the decision"
    assert int(planted.forward(p).argmax()) == label
    return {"seed": seed, "p": p, "eps": eps, "label": label, "planted": planted, "twin": twin,
            "centre": centre, "delta": delta, "n_in": n_in, "hidden": hidden}


def check_cex(net, inst, r):
    x = np.asarray(r.counterexample)
    ok = np.max(np.abs(x - inst["p"])) <= inst["eps"]
    for y in (net.forward(x), net.forward32(x).astype(np.float64)):
        ok = ok and int(np.argmax(y)) != inst["label"] and np.max(np.delete(y, inst["label"])) > y[inst["label"]]
    return bool(ok)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=40, help="number of seeds (planted + twin each)")
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("--seed0", type=int, default=0)
    ap.add_argument("--inputs", default="2,5",
                    help="input sizes, cycled over the seeds (> 10 inputs exercises the ReLU-split path)")
    args = ap.parse_args(argv)
    import verify

    print(f"load before: {os.getloadavg()}", flush=True)
    counts = {"planted": {}, "twin": {}}
    wrong, bad_cex, times = 0, 0, []
    seed, made = args.seed0, 0
    while made < args.n:
        inst = make_instance(seed, tuple(int(v) for v in args.inputs.split(",")))
        seed += 1
        if inst is None:
            continue
        made += 1
        for kind in ("planted", "twin"):
            net = inst[kind]
            t0 = time.monotonic()
            r = verify.check_robustness(net, inst["p"], inst["eps"], timeout=args.timeout)
            times.append(time.monotonic() - t0)
            counts[kind][r.verdict] = counts[kind].get(r.verdict, 0) + 1
            if r.verdict == "counterexample" and not check_cex(net, inst, r):
                bad_cex += 1
            if kind == "planted" and r.verdict == "robust":
                wrong += 1
            print(f"seed {inst['seed']:3d} {inst['n_in']}-{'-'.join(map(str, inst['hidden']))} eps {inst['eps']:<6g} "
                  f"{kind:8s} {r.verdict:15s} {times[-1]:6.2f}s  {r.stats.get('method')}", flush=True)
    found = counts["planted"].get("counterexample", 0)
    print()
    print("| instances | robust | counterexample | unknown |")
    print("|---|---|---|---|")
    for kind in ("planted", "twin"):
        c = counts[kind]
        print(f"| {args.n} {kind} | {c.get('robust', 0)} | {c.get('counterexample', 0)} | {c.get('unknown', 0)} |")
    print(f"\nwrong verdicts (robust on a planted net): {wrong}; counterexamples failing re-validation: {bad_cex}; "
          f"planted counterexamples found: {found}/{args.n}; total {sum(times):.1f} s, "
          f"median {np.median(times):.2f} s; load after: {os.getloadavg()}")
    return 1 if wrong or bad_cex else 0


if __name__ == "__main__":
    sys.exit(main())
