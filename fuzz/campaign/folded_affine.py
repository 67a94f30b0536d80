"""Normalisation with a non-finite weight, bias or running statistic: where the result is not specified.

Eager's batch and instance norm kernels fold the affine into ``alpha = weight * invstd`` and ``beta
= bias - mean * alpha`` and compute ``x * alpha + beta``; a decomposition computes ``(x - mean) *
invstd * weight + bias``. With an infinite weight the first gives ``inf - inf = NaN`` everywhere,
the second +-inf; a NaN or infinite running statistic differs the same way. Neither order is
specified, so the oracle does not judge such an output (``fuzz.campaign.sensitivity``). Found in
the eleventh session: ``instance_norm(x, weight=[inf])`` of a ``[1, 1, 3, 1]`` input, eager (and
float64) NaN, inductor ``[inf, -inf, inf]``.
"""

from __future__ import annotations


def folds_nonfinite_affine(node, env: dict) -> bool:
    """Whether ``node`` is a normalisation (its name holds ``norm``) whose tensor operands after the
    first (weight, bias, running mean and variance) hold a NaN or an infinity, on ``env``'s values."""
    import torch

    from fuzz.ir.opnames import last_component

    name = last_component(node.op).lower()
    if "norm" not in name or "normal" in name:
        return False
    for t in list(dict.fromkeys(node.inputs()))[1:]:
        v = env.get(t)
        if isinstance(v, torch.Tensor) and v.is_floating_point() and v.numel() and not bool(torch.isfinite(v).all()):
            return True
    return False
