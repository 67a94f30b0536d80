"""``assay gen``: write random valid models as standalone programs."""

from __future__ import annotations

import os
import sys
import time

from fuzz.commands import ExamplesFormatter, add_policy_flags, output_dir, positive_int, shares_from_args
from fuzz.errors import AssayError

DESCRIPTION = """\
Generate random valid PyTorch models from the inferred operator rules (Z3-solved
shapes, NNSmith/NeuRI-style) and write each as DIR/<i>/ with graph.json, program.py
(needs only torch; 'python DIR/<i>/program.py' runs it on the saved inputs),
inputs.safetensors and params.safetensors. Same --seed, same models. DIR must be new or
empty: models of another run are never mixed in or overwritten."""

EXAMPLES = """\
examples:
  assay gen --count 10 --nodes 6 --out models/        ten 6-operator models; python models/0/program.py runs one
  assay gen --count 100 --seed 3 --dtypes float16,bfloat16 --out half/
                                                     low-precision models only
  assay gen --count 50 --shapes vector --values edge --out edge/
                                                     vector-width shapes holding inf/nan/ties
  assay gen --count 10 --legacy-mix --out old/        models as before policies (small, finite)
  assay fuzz --programs models/ --out crashes/        test them against the compilers
"""


def register(sub) -> None:
    p = sub.add_parser("gen", help="generate random valid models as standalone programs", description=DESCRIPTION,
                       epilog=EXAMPLES, formatter_class=ExamplesFormatter)
    p.add_argument("--count", type=positive_int, default=10, help="number of models (default 10)")
    p.add_argument("--nodes", type=positive_int, default=10, help="operator calls per model (default 10)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", default="models", help="output directory (default ./models)")
    p.add_argument("--rules", default=None, help="rules file (default: the shipped corpus/torch-<version>/rules.jsonl.gz)")
    p.add_argument("--max-elements", type=positive_int, default=None,
                   help="bound on the total elements of all tensors of one model (default 4194304)")
    p.add_argument("--max-dim", type=positive_int, default=None, help="largest dim of a generated input (default 16)")
    p.add_argument("--dtypes", default=None,
                   help="comma-separated dtypes allowed (default: float32,float64,float16,bfloat16,int64,int32,int16,int8,uint8,bool)")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    add_policy_flags(p)
    p.set_defaults(func=handler)


def _check_out(path: str) -> None:
    """--out must be new or empty: a folder of earlier models would end up mixed with these."""
    if os.path.isdir(path) and os.listdir(path):
        models = sum(os.path.isfile(os.path.join(path, d, "graph.json")) for d in os.listdir(path))
        what = f"{models} models of an earlier run" if models else "other files"
        raise AssayError(f"--out {path} already holds {what}; give a new or empty folder")


def handler(args) -> int:
    from fuzz.gen.config import DEFAULT_DTYPES, GenConfig, GenerationError
    from fuzz.gen.generate import generate_model_for_index

    dtypes = None
    if args.dtypes is not None:  # --dtypes "" is a mistake, not "all"
        dtypes = tuple(d.strip() for d in args.dtypes.split(",") if d.strip())
        bad = [d for d in dtypes if d not in DEFAULT_DTYPES]
        if bad or not dtypes:
            raise AssayError(f"--dtypes: unknown dtype(s) {', '.join(bad) or '(none)'}; choose from {','.join(DEFAULT_DTYPES)}")
    from fuzz.gen.policy import Shares

    shares = shares_from_args(args) or Shares()
    _check_out(args.out)
    output_dir(args.out)
    import torch

    from fuzz.gen.program import save_program
    from fuzz.gen.ruleset import load_ruleset

    torch.set_num_threads(1)
    if args.rules and not os.path.isfile(args.rules):
        raise AssayError(f"--rules {args.rules}: no such file; pass a rules.jsonl.gz written by 'assay rules infer'")
    ruleset = load_ruleset(args.rules or None, dtypes)
    if not ruleset.ops:
        raise AssayError("no usable rules (all filtered out); check --rules and --dtypes")
    cfg = GenConfig(nodes=args.nodes)
    if args.max_elements:
        cfg.max_elements = args.max_elements
    if args.max_dim:
        cfg.max_dim = args.max_dim
    if dtypes:
        cfg.dtypes = dtypes
    summary = {"out": os.path.abspath(args.out), "count": args.count, "seed": args.seed, "nodes": args.nodes,
               "rules": ruleset.n_given, "usable_rules": ruleset.n_rules, "usable_ops": len(ruleset.ops), "models": []}
    t0 = time.perf_counter()
    for i in range(args.count):
        try:
            model = generate_model_for_index(ruleset, cfg, args.seed, i, shares)
        except GenerationError as exc:
            raise AssayError(f"model {i}: {exc}; try another --seed or looser --max-elements") from None
        d = os.path.join(args.out, str(i))
        save_program(model.graph, model.tensors(), d)
        g = model.graph
        summary["models"].append({"dir": d, "nodes": len(g.nodes), "symbolic": g.meta.get("symbolic"),
                                  "concrete": g.meta.get("concrete"), "finite": model.finite,
                                  "dropped": g.meta.get("guard", {}).get("dropped", 0), "ops": g.ops(),
                                  "policy": g.meta.get("policy")})
        if not args.json:
            sys.stderr.write(f"{d}: {len(g.nodes)} ops, {'finite' if model.finite else 'NOT finite'}\n")
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    if args.json:
        from fuzz.commands import print_json

        print_json(summary)
    else:
        print(f"wrote {args.count} models to {args.out} in {summary['seconds']} s")
    return 0
