"""Cheap falsification before any proof: random points, then PGD in float64 numpy.

The target is a disjunction of terms ``C @ y <= d`` (see ``vnnlib``). For a batch
of points the *violation* is ``min over terms of max over rows (C y - d)``: it is
<= 0 exactly where some term holds. PGD follows the sign of its gradient (an
L-infinity step), projected back to the box after each step.
"""

from __future__ import annotations

import numpy as np


def violation(Y, terms):
    """(B,) violation of each output row of Y (B, n_out); also the (term, row) that attains it."""
    best = np.full(Y.shape[0], np.inf)
    grad = np.zeros_like(Y)
    for C, d in terms:
        v = Y @ C.T - d  # (B, rows)
        r = v.argmax(axis=1)
        vm = v[np.arange(len(r)), r]
        better = vm < best
        best = np.where(better, vm, best)
        grad[better] = C[r[better]]
    return best, grad


def _input_grad(net, X, gY):
    """Gradient wrt X of sum(gY * f(X)) for a batch (ReLU subgradient 0 at 0)."""
    masks = []
    a = X
    for i, (W, b) in enumerate(net.layers[:-1]):
        z = a @ W.T + b
        masks.append(z > 0)
        a = np.maximum(z, 0)
    g = gY @ net.layers[-1][0]
    for i in range(len(net.layers) - 2, -1, -1):
        g = g * masks[i]
        g = g @ net.layers[i][0]
    return g


def attack(net, lo, hi, terms, rng=None, n_random=256, n_starts=16, steps=40, deadline=None,
           extra_starts=None):
    """Return (best point, its float64 violation). Violation <= 0 means a candidate was found."""
    import time

    rng = np.random.default_rng(0) if rng is None else rng
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    n = lo.shape[0]
    width = hi - lo
    X = lo + rng.random((n_random, n)) * width
    corners = lo + (rng.random((n_random // 4, n)) < 0.5) * width
    X = np.vstack([X, corners, ((lo + hi) / 2)[None]] + ([np.atleast_2d(extra_starts)] if extra_starts is not None else []))
    v, _ = violation(net.forward(X), terms)
    order = np.argsort(v)
    best_x, best_v = X[order[0]].copy(), v[order[0]]
    if best_v <= 0:
        return best_x, best_v
    P = X[order[:n_starts]].copy()
    step = width / 4.0
    for t in range(steps):
        if deadline is not None and time.monotonic() > deadline:
            break
        v, gY = violation(net.forward(P), terms)
        i = int(v.argmin())
        if v[i] < best_v:
            best_v, best_x = v[i], P[i].copy()
            if best_v <= 0:
                break
        g = _input_grad(net, P, gY)
        P = np.clip(P - step * np.sign(g), lo, hi)
        step = step * 0.85
    else:
        v, _ = violation(net.forward(P), terms)
        i = int(v.argmin())
        if v[i] < best_v:
            best_v, best_x = v[i], P[i].copy()
    return best_x, best_v
