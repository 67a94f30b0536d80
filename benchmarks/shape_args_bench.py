"""What the shape-args policy (``--shape-args sizes``, fuzz.gen.size_args) changes, measured on
the same models: the policy axis is drawn last, so a model index gives the same model under
``constant`` and ``sizes`` but for the rewritten arguments.

For each index the model is generated both ways; over the models that got a rewrite it prints:

- how many have a second call for dynamic mode: some resize of an input size (the campaign's
  candidates, ``fuzz.campaign.second_call``: v+1, v+2, 2v, v-1) that eager accepts on fake tensors;
- what ``torch.compile(dynamic=True)`` (aot_eager) traces: graphs whose forward computes with a
  symbolic size (a ``sym_size`` call or a SymInt argument of a call), and the graphs dynamo
  compiled for two calls at two sizes (a recompile is a size that became a constant).

Usage: python benchmarks/shape_args_bench.py [--models 300] [--seed 0] [--shapes vector=1]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import types

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _resizes(graph, module, inputs, eager_out) -> list:
    """The campaign's resize candidates that eager accepts on fake tensors, at most 6 tried."""
    import collections

    import torch

    from fuzz.campaign.second_call import shape_of, shapes_ok

    session = types.SimpleNamespace(module=module, model=types.SimpleNamespace(inputs=inputs), eager_out=eager_out)
    counts = collections.Counter(d for t in inputs if isinstance(t, torch.Tensor) for d in t.shape)
    order = sorted((v for v in counts if v >= 2), key=lambda v: (-counts[v], -v))
    ok = []
    for v in order[:3]:
        for new in (v + 1, v + 2, 2 * v, v - 1):
            if shapes_ok(session, [shape_of(t, v, new) for t in inputs]):
                ok.append((v, new))
    return ok


def _compiled_sizes(module, inputs, resized) -> tuple[bool, int]:
    """(a forward graph computes with a symbolic size, graphs compiled for the two calls)."""
    import torch
    from torch._dynamo.utils import counters

    graphs = []

    def record(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    counters.clear()
    fn = torch.compile(module, backend=record, dynamic=True)
    with torch.no_grad():
        fn(*inputs)
        if resized is not None:
            fn(*resized)
    def reads_symbol(node) -> bool:
        found = []
        torch.fx.node.map_arg((node.args, node.kwargs), lambda a: found.append(a) or a)
        return any(isinstance(a.meta.get("example_value"), torch.SymInt) for a in found)

    symbolic = any(reads_symbol(n) for gm in graphs for n in gm.graph.nodes if n.op in ("call_function", "call_method"))
    return symbolic, len(graphs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", type=int, default=300)
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shapes", default=None, help="shape-policy shares (e.g. vector=1); default: the default mix")
    args = ap.parse_args(argv)
    from benchmarks.gen_bench import _setup

    _setup()
    import torch

    from fuzz.campaign.second_call import resize_inputs
    from fuzz.gen.config import GenConfig, GenerationError
    from fuzz.gen.generate import generate_model_for_index
    from fuzz.gen.policy import Shares
    from fuzz.gen.program import build_module, run_eager
    from fuzz.gen.ruleset import load_ruleset

    rs = load_ruleset(None)
    base = Shares() if args.shapes is None else Shares().with_axis("shape", args.shapes)
    policies = {"constant": base.with_axis("shape_args", "constant"), "sizes": base.with_axis("shape_args", "sizes")}
    rows = {p: {"second call": 0, "symbolic": 0, "graphs": 0, "compiled": 0} for p in policies}
    rewritten = rewrites = 0
    t0 = time.perf_counter()
    for i in range(args.models):
        try:
            made = {p: generate_model_for_index(rs, GenConfig(nodes=args.nodes), args.seed, i, s)
                    for p, s in policies.items()}
        except GenerationError:
            continue
        if not made["sizes"].graph.meta.get("size_args"):
            continue
        rewritten += 1
        rewrites += made["sizes"].graph.meta["size_args"]
        for p, m in made.items():
            module = build_module(m.graph, m.state)
            inputs = m.forward_inputs()
            try:
                eager = run_eager(module, inputs)
            except Exception:  # noqa: BLE001 - a model eager rejects (an invalid-call model) is not counted
                continue
            ok = _resizes(m.graph, module, inputs, eager)
            rows[p]["second call"] += bool(ok)
            resized = resize_inputs(inputs, *ok[0]) if ok else None
            try:
                symbolic, graphs = _compiled_sizes(build_module(m.graph, m.state), inputs, resized)
            except Exception:  # noqa: BLE001 - a compile failure is the campaign's business, not this count's
                continue
            rows[p]["compiled"] += 1
            rows[p]["symbolic"] += symbolic
            rows[p]["graphs"] += graphs
    print(f"## shape arguments: {args.models} model indices, seed {args.seed}, shapes {args.shapes or 'default mix'}; "
          f"{rewritten} models got a rewrite ({rewrites} numbers), {time.perf_counter() - t0:.0f} s\n")
    print("| policy | models with a second call (eager accepts a resize) | compiled (aot_eager, dynamic=True) "
          "| forward computes with a symbolic size | graphs compiled for the two calls |")
    print("|---|---|---|---|---|")
    for p, r in rows.items():
        print(f"| {p} | {r['second call']}/{rewritten} | {r['compiled']} | {r['symbolic']}/{r['compiled']} | {r['graphs']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
