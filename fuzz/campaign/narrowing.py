"""Casts to float16/bfloat16 of values beyond the narrower dtype's range: where the result is not specified.

Eager rounds such a value to inf; inductor may skip the round trip of a cast followed by an
upcast and keep the float32 value (maintainers call it intended, pytorch/pytorch#183761;
``inductor.emulate_precision_casts`` restores eager's rounding). The float32-intermediate run
(``fuzz.campaign.lowprec``) keeps explicit casts, because inductor usually emits them, so it does
not clear this one; the oracle does not judge the cast's output instead (``fuzz.campaign.sensitivity``).
Found in the tenth session: ``x.bfloat16() + w`` with ``x`` at float32's max (eager inf, inductor
3.4e38).
"""

from __future__ import annotations

CAST_OPS = ("torch.Tensor.half", "torch.Tensor.bfloat16", "torch.Tensor.to", "aten::_to_copy", "torch.Tensor.type")


def narrows_past_range(node, env: dict, out_dtype: str | None) -> bool:
    """Whether ``node`` casts a float operand holding a finite value beyond ``out_dtype``'s range
    (float16 or bfloat16) to it, on ``env``'s values."""
    import torch

    if node.op not in CAST_OPS or out_dtype not in ("float16", "bfloat16") or not node.inputs():
        return False
    t = env.get(node.inputs()[0])
    if not isinstance(t, torch.Tensor) or not t.is_floating_point() or not t.numel():
        return False
    limit = torch.finfo(getattr(torch, out_dtype)).max
    finite = t[torch.isfinite(t)]
    return bool(finite.numel()) and float(finite.abs().max()) > limit
