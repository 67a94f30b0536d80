"""Bound propagation in float64 numpy: interval arithmetic and symbolic linear bounds.

``linear_bounds`` is a DeepPoly/CROWN-style back-substitution: every hidden
pre-activation is bounded by substituting the layers below it back to the input
box, relaxing each unstable ReLU ``a = max(z, 0)`` (``l < 0 < u``) by the triangle
upper line ``a <= u (z - l) / (u - l)`` and the lower line ``a >= s z`` with
``s = 1`` if ``u > -l`` else ``0``. Everything is batched over a leading axis of
``B`` boxes so input-space branch-and-bound can bound many boxes per numpy call.

Splits (for ReLU branch-and-bound) are given per hidden layer as int arrays of
shape (B, n): +1 forces a neuron active (its lower pre-bound becomes >= 0), -1
forces it inactive (upper pre-bound <= 0). The bounds are then bounds on the part
of the box where the split holds, which is what branch-and-bound needs.

Floating-point rounding: bounds (intermediate and final) are padded outward by a
fixed 1e-9 (relative and absolute). That is far above float64 round-off on the
networks this handles, but it is a heuristic margin, not a proof: for rigorously
rounded bounds use ``verify.tbounds`` (the default engine for input splitting and
for the whole-box check of wide networks). This module remains the engine of the
ReLU-split branch and bound and of ``Options(engine="numpy")``.
"""

from __future__ import annotations

import numpy as np

PAD = 1e-9


def _pad(l, u):
    return l - PAD * (1.0 + np.abs(l)), u + PAD * (1.0 + np.abs(u))


def interval_bounds(net, lo, hi):
    """Interval bounds of every layer's pre-activation, for boxes (B, n). Returns [(l, u)]."""
    l, u = np.atleast_2d(lo), np.atleast_2d(hi)
    out = []
    for i, (W, b) in enumerate(net.layers):
        Wp, Wn = np.maximum(W, 0), np.minimum(W, 0)
        zl = l @ Wp.T + u @ Wn.T + b
        zu = u @ Wp.T + l @ Wn.T + b
        zl, zu = _pad(zl, zu)
        out.append((zl, zu))
        l, u = np.maximum(zl, 0), np.maximum(zu, 0)
    return out


def _mv(M, v):
    """Batched matrix-vector product (B, m, n) x (B, n) -> (B, m)."""
    return np.matmul(M, v[:, :, None])[:, :, 0]


def _restrict(l, u, known, split):
    """Layer bounds ``l, u`` narrowed by bounds already known for the layer (``known``: (l, u) or
    None) and by branch-and-bound's ReLU splits (``split``: +1 active / -1 inactive / 0, or None)."""
    if known is not None:
        l, u = np.maximum(l, known[0]), np.minimum(u, known[1])
    if split is not None:
        l = np.where(split > 0, np.maximum(l, 0.0), l)
        u = np.where(split < 0, np.minimum(u, 0.0), u)
    return l, u


def _relax(l, u):
    """Slopes/offsets of the ReLU relaxation for pre-bounds (B, n)."""
    active = l >= 0
    inactive = u <= 0
    unstable = ~(active | inactive)
    denom = np.where(unstable, u - l, 1.0)
    su = np.where(active, 1.0, np.where(unstable, u / denom, 0.0))
    tu = np.where(unstable, -su * l, 0.0)
    sl = np.where(active, 1.0, np.where(unstable, (u > -l).astype(np.float64), 0.0))
    return su, tu, sl


def _backsub(net, k, Lam, lo, hi, relax, record=False):
    """Lower and upper bounds of Lam @ z_k over the boxes; Lam (B, m, n_k).

    Returns (lower (B,m), upper (B,m), LL (B,m,n_in)) where LL is the lower linear
    bound's coefficients on the input (used to pick split dimensions and candidate
    points). The upper and lower coefficient matrices are stacked into one array so
    each layer costs one matrix product.
    """
    B, m, _ = Lam.shape
    X = np.concatenate([Lam, Lam], axis=1)  # rows [0:m] upper, [m:2m] lower
    c = np.zeros((B, 2 * m))
    loss = [None] * k if record else None
    for j in range(k, -1, -1):
        W, b = net.layers[j]
        c = c + X @ b
        X = (X.reshape(-1, X.shape[-1]) @ W).reshape(B, 2 * m, W.shape[1])
        if j == 0:
            break
        su, tu, sl = relax[j - 1]  # (B, n_{j-1})
        if record:  # what each neuron's triangle costs the lower bounds: -min(coef, 0) * intercept
            loss[j - 1] = (np.minimum(X[:, m:], 0.0) * -tu[:, None, :]).sum(axis=1)
        # upper rows: positive coef -> upper line, negative -> lower line; lower rows: reverse.
        # Stable neurons have su == sl and tu == 0, so only unstable columns need the choice.
        unst = (su != sl).any(axis=0)
        uc = np.flatnonzero(unst)
        Xn = X * sl[:, None, :]
        if uc.size > X.shape[-1] // 3:  # dense path: no fancy indexing
            dd = (su - sl)[:, None, :]
            up_part = np.maximum(X[:, :m], 0.0)
            lo_part = np.minimum(X[:, m:], 0.0)
            Xn[:, :m] += up_part * dd
            Xn[:, m:] += lo_part * dd
            c[:, :m] += _mv(up_part, tu)
            c[:, m:] += _mv(lo_part, tu)
        elif uc.size:
            Xu = X[:, :, uc]
            dd = (su - sl)[:, None, uc]
            t = tu[:, None, uc]
            up_part = np.maximum(Xu[:, :m], 0.0)
            lo_part = np.minimum(Xu[:, m:], 0.0)
            Xn[:, :m, uc] += up_part * dd
            Xn[:, m:, uc] += lo_part * dd
            c[:, :m] += (up_part * t).sum(-1)
            c[:, m:] += (lo_part * t).sum(-1)
        X = Xn
    mid, rad = (hi + lo) / 2, (hi - lo) / 2
    centre = _mv(X, mid)
    spread = _mv(np.abs(X), rad)
    upper = c[:, :m] + centre[:, :m] + spread[:, :m]
    lower = c[:, m:] + centre[:, m:] - spread[:, m:]
    if record:
        return lower, upper, X[:, m:], loss
    return lower, upper, X[:, m:]


def _forward_symbolic(net, lo, hi, splits=None, pre=None):
    """Intermediate bounds by forward symbolic propagation (cheap when there are few inputs).

    Each neuron carries a lower and an upper linear function of the input, shape
    (B, n, n_in + 1) (last column: constant). The same ReLU relaxation as the
    backward pass is applied to the functions and they are concretised on the box.
    """
    B, d = lo.shape
    mid, rad = (hi + lo) / 2, (hi - lo) / 2
    eye = np.concatenate([np.eye(d), np.zeros((d, 1))], axis=1)
    Lo = np.broadcast_to(eye, (B, d, d + 1))
    Up = Lo
    bounds, relax = [], []
    nl = len(net.layers)
    for k in range(nl - 1):
        W, b = net.layers[k]
        Wp, Wn = np.maximum(W, 0), np.minimum(W, 0)
        if k == 0:
            zl = np.broadcast_to(np.concatenate([W, b[:, None]], axis=1), (B,) + (W.shape[0], d + 1))
            zu = zl
        else:
            zu = np.matmul(Wp, Up) + np.matmul(Wn, Lo)
            zl = np.matmul(Wp, Lo) + np.matmul(Wn, Up)
            zu = zu.copy(); zl = zl.copy()
            zu[:, :, -1] += b
            zl[:, :, -1] += b
        # concretise
        cl = np.matmul(zl[:, :, :-1], mid[:, :, None])[:, :, 0] - np.matmul(np.abs(zl[:, :, :-1]), rad[:, :, None])[:, :, 0] + zl[:, :, -1]
        cu = np.matmul(zu[:, :, :-1], mid[:, :, None])[:, :, 0] + np.matmul(np.abs(zu[:, :, :-1]), rad[:, :, None])[:, :, 0] + zu[:, :, -1]
        l, u = _pad(cl, cu)
        if k > 0:  # never looser than the interval step
            pl, pu = bounds[-1]
            al, au = np.maximum(pl, 0), np.maximum(pu, 0)
            il, iu = _pad(al @ Wp.T + au @ Wn.T + b, au @ Wp.T + al @ Wn.T + b)
            l, u = np.maximum(l, il), np.minimum(u, iu)
        l, u = _restrict(l, u, pre[k] if pre is not None else None, splits[k] if splits is not None else None)
        bounds.append((l, u))
        su, tu, sl = _relax(l, u)
        relax.append((su, tu, sl))
        Up = zu * su[:, :, None]
        Up[:, :, -1] += tu
        Lo = zl * sl[:, :, None]
    return bounds, relax


def _backward_intermediate(net, lo, hi, splits=None, pre=None, reuse_upto=0):
    B = lo.shape[0]
    nl = len(net.layers)
    bounds, relax = [], []
    for k in range(nl - 1):
        W, b = net.layers[k]
        n = W.shape[0]
        if k < reuse_upto and pre is not None:  # unchanged by the newest split: the parent's bounds
            l, u = pre[k]
            if splits is not None and splits[k] is not None:
                s = splits[k]
                l = np.where(s > 0, np.maximum(l, 0.0), l)
                u = np.where(s < 0, np.minimum(u, 0.0), u)
            bounds.append((l, u))
            relax.append(_relax(l, u))
            continue
        if k == 0:
            Wp, Wn = np.maximum(W, 0), np.minimum(W, 0)
            l = lo @ Wp.T + hi @ Wn.T + b
            u = hi @ Wp.T + lo @ Wn.T + b
        else:
            # interval step from the previous layer's relaxation first: rows that are
            # already stable need no back-substitution
            pl, pu = bounds[-1]
            al, au = np.maximum(pl, 0), np.maximum(pu, 0)
            Wp, Wn = np.maximum(W, 0), np.minimum(W, 0)
            il = al @ Wp.T + au @ Wn.T + b
            iu = au @ Wp.T + al @ Wn.T + b
            il, iu = _pad(il, iu)
            if pre is not None and pre[k] is not None:
                # bounds known for a superset of these boxes (the parent domain) stay valid, and a
                # neuron stable there is stable here: its bounds do not affect its relaxation, so it
                # needs no back-substitution
                il, iu = np.maximum(il, pre[k][0]), np.minimum(iu, pre[k][1])
            l, u = il, iu
            rows = np.flatnonzero(((il < 0) & (iu > 0)).any(axis=0))
            if rows.size:  # only rows unstable under the interval step need back-substitution
                Lam = np.broadcast_to(np.eye(n)[rows], (B, rows.size, n))
                bl_, bu_, _ = _backsub(net, k, Lam, lo, hi, relax)
                l, u = il.copy(), iu.copy()
                l[:, rows] = np.maximum(bl_, il[:, rows])
                u[:, rows] = np.minimum(bu_, iu[:, rows])
        l, u = _pad(l, u)
        l, u = _restrict(l, u, pre[k] if pre is not None else None, splits[k] if splits is not None else None)
        bounds.append((l, u))
        relax.append(_relax(l, u))
    return bounds, relax


def linear_bounds(net, lo, hi, C=None, splits=None, pre=None, method="backward", reuse_upto=0):
    """Symbolic (back-substitution) bounds.

    lo, hi: (B, n_in). C: (m, n_out) or (B, m, n_out) rows whose lower bounds are
    wanted on the outputs (default: identity). splits: list per hidden layer of
    (B, n) int arrays or None. pre: optional list of known (l, u) per hidden layer
    (e.g. from a parent domain) intersected with the new ones.

    Returns dict with 'pre' (list of (l, u) per hidden layer, padded and with splits
    applied), 'lower'/'upper' (B, m) bounds of C y, and 'LL' (B, m, n_in) the lower
    linear coefficients on the input for C y.
    """
    lo = np.atleast_2d(np.asarray(lo, dtype=np.float64))
    hi = np.atleast_2d(np.asarray(hi, dtype=np.float64))
    B = lo.shape[0]
    nl = len(net.layers)
    if method == "auto":
        method = "backward"
    if method == "forward":
        bounds, relax = _forward_symbolic(net, lo, hi, splits, pre)
    else:
        bounds, relax = _backward_intermediate(net, lo, hi, splits, pre, reuse_upto)
    Wl, bl = net.layers[-1]
    if C is None:
        C = np.eye(Wl.shape[0])
    C = np.asarray(C, dtype=np.float64)
    if C.ndim == 2:
        C = np.broadcast_to(C, (B,) + C.shape)
    lower, upper, LL, loss = _backsub(net, nl - 1, C, lo, hi, relax, record=True)
    lower, upper = _pad(lower, upper)  # the property rows' bounds are padded like every other bound
    return {"pre": bounds, "lower": lower, "upper": upper, "LL": LL, "relu_loss": loss}


def count_unstable(pre, n_boxes=1):
    """Number of unstable neurons per box, shape (B,) (a network without ReLUs: zeros(n_boxes))."""
    if not pre:
        return np.zeros(n_boxes, dtype=np.int64)
    return sum(((l < 0) & (u > 0)).sum(axis=1) for l, u in pre)
