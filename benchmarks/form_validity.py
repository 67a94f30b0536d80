"""Validity and mix of the model forms (``--forms``): random, blocks, forms.

    python benchmarks/form_validity.py --form blocks --models 300 --seed 1
    python benchmarks/form_validity.py --form forms --models 200 --seed 7

For each generated model (10 nodes) the program runs eagerly (``fuzz.gen.program.build_module``
+ ``run_eager``, the program.py code); a model the generator fails to produce counts as invalid.
Prints one line: models, validity, nodes, guard-dropped nodes, seconds; then the block/form mix
(``graph.meta["blocks"]`` / ``graph.meta["forms"]``) and the first failures.
"""

from __future__ import annotations

import argparse
import collections
import time
import warnings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--form", default="blocks", choices=["random", "blocks", "forms"])
    ap.add_argument("--models", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--nodes", type=int, default=10)
    a = ap.parse_args()
    warnings.filterwarnings("ignore")
    import torch

    from fuzz.gen import program
    from fuzz.gen.config import GenConfig
    from fuzz.gen.generate import generate_model_for_index
    from fuzz.gen.policy import ModelPolicy
    from fuzz.gen.ruleset import load_ruleset

    torch.set_num_threads(1)
    rs = load_ruleset()
    cfg = GenConfig(nodes=a.nodes, policy=ModelPolicy(form=a.form))
    t0 = time.time()
    mix: collections.Counter = collections.Counter()
    ok = nodes = dropped = 0
    bad = []
    for i in range(a.models):
        try:
            m = generate_model_for_index(rs, cfg, a.seed, i)
            mix.update(m.graph.meta.get("blocks", []))
            mix.update(m.graph.meta.get("forms", []))
            nodes += len(m.graph.nodes)
            dropped += m.graph.meta["guard"]["dropped"]
            program.run_eager(program.build_module(m.graph, m.state), [t.clone() if hasattr(t, 'clone') else t for t in m.forward_inputs()])
            ok += 1
        except Exception as exc:  # noqa: BLE001 (any failure is an invalid model)
            bad.append((i, repr(exc)[:200]))
    print(f"form={a.form} seed={a.seed}: {a.models} models, validity {ok / a.models:.4f} ({ok} ran eagerly); "
          f"nodes {nodes}, guard-dropped {dropped}; {time.time() - t0:.1f} s")
    print("mix:", dict(mix.most_common()))
    for i, why in bad[:10]:
        print("invalid", i, why)


if __name__ == "__main__":
    main()
