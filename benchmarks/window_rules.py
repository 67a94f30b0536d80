"""The conv/pool/unfold family in a rules file: symbolic vs concrete, and how generated models call it.

    python benchmarks/window_rules.py --rules corpus/torch-2.13.0/rules.jsonl.gz --models 150

Prints, for each ``--rules`` file given (e.g. the shipped rules before and after
``assay rules merge``): the operators with a symbolic rule (``ops_symbolic``, as ``assay rules
stats``), the family's signatures (operators matching conv/pool/unfold/im2col/col2im) symbolic and
concrete, and over ``--models`` legacy models (``--nodes`` each, seed 0, generated as ``assay gen``
does) the family's calls and the share of them that are concrete (recorded shapes that cannot
grow), beside the share of concrete calls over all operators.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FAMILY = re.compile(r"conv|pool|unfold|im2col|col2im", re.I)


def numbers(path: str, models: int, nodes: int) -> dict:
    from fuzz.gen.config import GenConfig, GenerationError
    from fuzz.gen.generate import generate_model_for_index
    from fuzz.gen.ruleset import RuleSet
    from fuzz.ir.rule import read_rules

    rules = list(read_rules(path))
    ops: dict = {}
    for r in rules:
        ops.setdefault((r.api, r.op), set()).add(r.status)
    fam = [r for r in rules if FAMILY.search(r.op)]
    rs = RuleSet(rules)
    calls = fam_calls = fam_conc = conc = 0
    for i in range(models):
        try:
            g = generate_model_for_index(rs, GenConfig(nodes=nodes), 0, i).graph
        except GenerationError:
            continue
        for n in g.nodes:
            calls += 1
            conc += n.kind == "concrete"
            if FAMILY.search(n.op):
                fam_calls += 1
                fam_conc += n.kind == "concrete"
    return {"ops_symbolic": sum("symbolic" in s for s in ops.values()), "ops": len(ops),
            "family_signatures": len(fam), "family_symbolic": sum(r.status == "symbolic" for r in fam),
            "family_ops_concrete_only": sum(1 for (a, o), s in ops.items() if FAMILY.search(o) and s == {"concrete"}),
            "calls": calls, "concrete_share": conc / max(1, calls), "family_calls": fam_calls,
            "family_concrete_share": fam_conc / max(1, fam_calls)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", action="append", required=True)
    ap.add_argument("--models", type=int, default=150)
    ap.add_argument("--nodes", type=int, default=6)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    print("| rules | ops_symbolic / ops | family signatures symbolic | family ops concrete-only | "
          "family calls (concrete) | all calls (concrete) |")
    print("|---|---|---|---|---|---|")
    for path in args.rules:
        n = numbers(path, args.models, args.nodes)
        print(f"| {path} | {n['ops_symbolic']} / {n['ops']} | {n['family_symbolic']} / {n['family_signatures']} | "
              f"{n['family_ops_concrete_only']} | {n['family_calls']} ({n['family_concrete_share']:.1%}) | "
              f"{n['calls']} ({n['concrete_share']:.1%}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
