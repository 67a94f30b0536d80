"""Shape classes of the model policy: generation speed and how many tensors reach the class's sizes.

    python benchmarks/shape_reach.py --models 40 --nodes 6 --seed 0

For each class (small = the legacy shapes, vector, large; ``fuzz.gen.shapes``) it generates the same
``--models`` model indices of ``--seed`` with only the shape axis set (dtype mix, finite values,
random form), round-robin in this process on one torch thread, and prints: models/s (generation
with the value search, as ``assay gen``), the share of concrete nodes (recorded shapes that cannot
grow), the median elements per tensor, and the share of tensors (of rank >= 1) that reach the
class's targets: an innermost dim at a SIMD width or tail (vector), >= 10^4 elements (large), over
all tensors and over the leaves (inputs and parameters: the dims the solver aims directly).
Ratios are against ``small`` in the same run.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tensor_facts(graph):
    """(elements, innermost dim, is a leaf: an input or parameter) per tensor of rank >= 1."""
    return [(math.prod(t.shape), t.shape[-1], t.role != "value") for t in graph.tensors.values() if t.shape]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=40)
    ap.add_argument("--nodes", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from fuzz.gen.config import GenConfig, GenerationError
    from fuzz.gen.generate import generate_model_for_index
    from fuzz.gen.policy import ModelPolicy
    from fuzz.gen.ruleset import load_ruleset
    from fuzz.gen.shapes import LARGE_ELEMENTS, VECTOR_WIDTHS

    rs = load_ruleset()
    widths = set(VECTOR_WIDTHS)
    classes = ("small", "vector", "large")
    facts = {c: [] for c in classes}
    secs = dict.fromkeys(classes, 0.0)
    fails = dict.fromkeys(classes, 0)
    concrete = {c: [0, 0] for c in classes}
    generate_model_for_index(rs, GenConfig(nodes=args.nodes), args.seed + 1, 0)  # warm-up: imports
    for i in range(args.models):  # round-robin: every class sees the same caches and machine load
        for cls in classes:
            cfg = GenConfig(nodes=args.nodes, policy=ModelPolicy(shape=cls))
            t0 = time.perf_counter()
            try:
                g = generate_model_for_index(rs, cfg, args.seed, i).graph
            except GenerationError:
                fails[cls] += 1
                continue
            finally:
                secs[cls] += time.perf_counter() - t0
            facts[cls] += tensor_facts(g)
            concrete[cls][0] += sum(1 for n in g.nodes if n.kind == "concrete")
            concrete[cls][1] += len(g.nodes)

    def share(fs, pred, leaves=False):
        pool = [f for f in fs if f[2] or not leaves]
        return sum(1 for f in pool if pred(f)) / len(pool) if pool else float("nan")

    vec = lambda f: f[1] in widths  # noqa: E731
    big = lambda f: f[0] >= LARGE_ELEMENTS[0]  # noqa: E731
    base = args.models / secs["small"]
    print(f"{args.models} models x {args.nodes} nodes per class, seed {args.seed}, one torch thread")
    print("| class | models/s | ratio | genfail | concrete nodes | tensors | median elements | "
          "innermost at width/tail: all (leaves) | >= 10^4 elements: all (leaves) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for c in classes:
        fs = facts[c]
        rate = args.models / secs[c]
        print(f"| {c} | {rate:.2f} | {rate / base:.2f} | {fails[c]} | {concrete[c][0] / max(1, concrete[c][1]):.1%} | "
              f"{len(fs)} | {statistics.median([f[0] for f in fs]):.0f} | "
              f"{share(fs, vec):.1%} ({share(fs, vec, True):.1%}) | {share(fs, big):.1%} ({share(fs, big, True):.1%}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
