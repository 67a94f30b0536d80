"""Interval bounds, soundly rounded: pre-activation bounds (l, u) of every layer for boxes (B, n_in)."""

from __future__ import annotations

from .rounding import gamma, unit


def affine_interval(W, Wabs, b, babs, hl, hu):
    """Sound bounds of W h + b for hl <= h <= hu (batched rows)."""
    torch = __import__("torch")
    Wp, Wn = W.clamp(min=0), W.clamp(max=0)
    zl = hl @ Wp.T + hu @ Wn.T + b
    zu = hu @ Wp.T + hl @ Wn.T + b
    mag = torch.maximum(hl.abs(), hu.abs()) @ Wabs.T + babs
    u, tiny = unit(W.dtype)
    err = gamma(W.shape[1] + 1, u) * mag + tiny
    return zl - err, zu + err


def interval_bounds(tn, lo, hi):
    """List of (l, u) per layer (hidden layers and the output layer), each (B, n_k)."""
    out = []
    hl, hu = lo, hi
    for k in range(len(tn.W)):
        zl, zu = affine_interval(tn.W[k], tn.Wabs[k], tn.b[k], tn.babs[k], hl, hu)
        out.append((zl, zu))
        hl, hu = zl.clamp(min=0), zu.clamp(min=0)
    return out


def refined_intervals(tn, lo, hi, known):
    """Hidden layers' (l, u) for boxes (B, n_in): interval steps, each intersected with bounds
    ``known`` to hold on these boxes (e.g. a parent box's), before the next layer's step."""
    torch = __import__("torch")
    out = []
    hl, hu = lo, hi
    for k in range(tn.n_hidden):
        zl, zu = affine_interval(tn.W[k], tn.Wabs[k], tn.b[k], tn.babs[k], hl, hu)
        zl, zu = torch.maximum(zl, known[k][0]), torch.minimum(zu, known[k][1])
        out.append((zl, zu))
        hl, hu = zl.clamp(min=0), zu.clamp(min=0)
    return out
