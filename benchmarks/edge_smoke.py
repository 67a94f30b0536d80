"""Edge-value models under a real backend: does the oracle stay quiet on correct results?

Generates ``--models`` models of the ``edge`` value policy (dtype themes cycling through mix,
float16, bfloat16, int8, int64), runs each once eagerly (the campaign's ``Session``: eager,
float64 and perturbed references) and once compiled with ``--backend``, and prints one line per
model (operators, verdict, skipped outputs, the worst difference; ``--mode bwd`` judges gradients too) and the verdict counts. Every
mismatch it prints is to be examined by hand: a real difference or a false alarm.

    PYTHONPATH=. python benchmarks/edge_smoke.py --models 25 --seed 4 --backend inductor
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

THEMES = ("mix", "float16", "bfloat16", "int8", "int64")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=25)
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--backend", default="inductor")
    ap.add_argument("--mode", default="fwd", choices=("fwd", "bwd", "dynamic"))
    args = ap.parse_args(argv)

    from fuzz.campaign import session, worker
    from fuzz.gen import program
    from fuzz.gen.config import GenConfig, GenerationError
    from fuzz.gen.generate import generate_model_for_index
    from fuzz.gen.policy import ModelPolicy
    from fuzz.gen.ruleset import load_ruleset

    rs = load_ruleset()
    counts: collections.Counter = collections.Counter()
    for i in range(args.models):
        theme = THEMES[i % len(THEMES)]
        cfg = GenConfig(nodes=args.nodes, policy=ModelPolicy(dtype=theme, values="edge"))
        try:
            m = generate_model_for_index(rs, cfg, args.seed, i)
        except GenerationError:
            counts["genfail"] += 1
            continue
        with tempfile.TemporaryDirectory() as d:
            program.save_program(m.graph, m.tensors(), d)
            try:
                s = session.Session(worker.load_model({"source": {"program_dir": d}}))
            except Exception as exc:  # noqa: BLE001 - eager (or the oracle) fails on this model
                counts["invalid"] += 1
                print(i, theme, "invalid", str(exc)[:100], flush=True)
                continue
            v = s.run_test(args.backend, args.mode)
        counts[f"{v.kind}{':' + v.detail if v.detail else ''}"] += 1
        worst = {k: v.diff[k] for k in ("where", "index", "reference", "eager", "compiled")} if v.diff else None
        print(i, theme, [n.op for n in m.graph.nodes], v.kind, v.detail or "-",
              f"skipped {len(s.fwd_ref.skip)}/{len(s.fwd_ref.names)}", json.dumps(worst), flush=True)
    print(dict(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
