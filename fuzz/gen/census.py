"""What generated models hold, measured on the models themselves (``model_facts``, ``census``).

``benchmarks/reach_bench.py`` and the tests read these facts to show what a policy mix reaches:
per model its policy, the dtypes of its tensors, element counts, and how many of its input
values are special (NaN, +-inf, -0.0, subnormal, a dtype's extreme); ``shares`` turns a list of
facts into the share of models with each dtype / policy choice.
"""

from __future__ import annotations

import math
from collections import Counter

from fuzz.gen.policy import LEGACY, ModelPolicy


def special_counts(t) -> dict:
    """How many elements of a tensor are NaN, +-inf, -0.0, subnormal, or its dtype's min/max."""
    import torch

    out: Counter = Counter()
    if t.numel() == 0 or t.dtype == torch.bool or t.is_complex():
        return {}
    if t.dtype.is_floating_point:
        w = t.detach().cpu().to(torch.float64)
        info = torch.finfo(t.dtype)
        out["nan"] = int(w.isnan().sum())
        out["posinf"] = int((w == math.inf).sum())
        out["neginf"] = int((w == -math.inf).sum())
        out["negzero"] = int(((w == 0) & torch.signbit(w)).sum())
        out["subnormal"] = int(((w != 0) & (w.abs() < info.tiny)).sum())
        out["extreme"] = int((w.abs() == info.max).sum())
    else:
        info = torch.iinfo(t.dtype)
        w = t.detach().cpu()
        out["extreme"] = int(((w == info.min) | (w == info.max)).sum())
    return {k: v for k, v in out.items() if v}


def model_facts(generated) -> dict:
    """Facts about one ``fuzz.gen.materialise.Generated`` model."""
    g = generated.graph
    policy = ModelPolicy.from_json(g.meta.get("policy")) if g.meta.get("policy") else LEGACY
    numels = [math.prod(info.shape) for info in g.tensors.values()]
    specials: Counter = Counter()
    for t in generated.leaves.values():
        specials.update(special_counts(t))
    return {
        "policy": policy.to_json(),
        "dtypes": sorted({info.dtype for info in g.tensors.values()}),
        "nodes": len(g.nodes),
        "ops": sorted({n.op for n in g.nodes}),
        "tensors": len(numels),
        "elements_total": sum(numels),
        "elements_max": max(numels, default=0),
        "innermost_max": max((info.shape[-1] for info in g.tensors.values() if info.shape), default=0),
        "special_values": dict(specials),
        "finite": bool(g.meta.get("finite", True)),
    }


def census(ruleset, cfg, seed: int, count: int, shares=None) -> tuple[list[dict], int]:
    """Facts of models ``0..count-1`` of a run seeded ``seed`` (``shares``: their policies), and how
    many of them the generator could not make."""
    from fuzz.gen.config import GenerationError
    from fuzz.gen.generate import generate_model_for_index

    facts, failed = [], 0
    for i in range(count):
        try:
            facts.append(model_facts(generate_model_for_index(ruleset, cfg, seed, i, shares)))
        except GenerationError:
            failed += 1
    return facts, failed


def shares(facts: list[dict]) -> dict:
    """Share of models holding each dtype (``dtype``), drawn with each policy choice (``policy``),
    and with special input values (``special_values``)."""
    n = max(1, len(facts))
    dtypes: Counter = Counter(d for f in facts for d in f["dtypes"])
    policy: Counter = Counter(f"{axis}={choice}" for f in facts for axis, choice in f["policy"].items())
    special = sum(1 for f in facts if f["special_values"])
    return {"models": len(facts),
            "dtype": {d: round(c / n, 3) for d, c in sorted(dtypes.items())},
            "policy": {k: round(c / n, 3) for k, c in sorted(policy.items())},
            "special_values": round(special / n, 3)}
