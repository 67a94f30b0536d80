#!/usr/bin/env python3
"""How many forms models break dynamo's graph, and into how many graphs (docs/generator.md, graph_break).

``python benchmarks/graph_breaks.py --models 60`` generates forms models (seed 0, 5 nodes, valid
calls only), runs each one with a break eagerly, then compiles it with a plain
``torch.compile(backend="aot_eager")`` (gradients on, as a user's module) and counts dynamo's graphs.
Prints one line of counts.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch
    from torch._dynamo.utils import counters

    from fuzz.gen.config import GenConfig, GenerationError
    from fuzz.gen.generate import generate_model_for_index
    from fuzz.gen.policy import Shares
    from fuzz.gen.program import build_module, run_eager
    from fuzz.gen.ruleset import load_ruleset

    rs = load_ruleset()
    shares = Shares().with_axis("form", "forms=1").with_axis("calls", "valid=1")
    c = collections.Counter()
    for i in range(args.models):
        try:
            m = generate_model_for_index(rs, GenConfig(nodes=5), args.seed, i, shares)
        except GenerationError:
            c["generation failed"] += 1
            continue
        c["models"] += 1
        if not any(n.extra.get("graph_break") for n in m.graph.nodes):
            continue
        c["with a break"] += 1
        try:
            run_eager(build_module(m.graph, m.state), m.forward_inputs())
            c["eager runs"] += 1
        except Exception:  # noqa: BLE001
            c["eager raises"] += 1
        torch._dynamo.reset()
        counters.clear()
        try:
            torch.compile(build_module(m.graph, m.state), backend="aot_eager")(*m.forward_inputs())
            c[f"{counters['stats']['unique_graphs']} graphs"] += 1
        except Exception:  # noqa: BLE001 - e.g. a missing derivative, as without the break
            c["compile raises"] += 1
    print(", ".join(f"{k}: {v}" for k, v in sorted(c.items())))


if __name__ == "__main__":
    main()
