"""alpha-CROWN for the property rows: the lower ReLU slopes are optimised per row and box.

Every evaluation of ``crown.backsub`` is a sound bound for any slopes in [0, 1], so the
optimisation needs no care for soundness: the best bound seen per (box, row) is kept,
together with the input coefficients that produced it. Intermediate bounds are CROWN's.
"""

from __future__ import annotations

from .crown import backsub, relu_relaxation


def alpha_rows(tn, lo, hi, C, pre, iters=20, lr=0.25, target=None, lb0=None, X0=None):
    """Return (lb (B, m), X (B, m, n_in)): best sound bounds over ``iters`` Adam steps.

    target: optional (m,) thresholds; rows whose bound already exceeds them stop counting
    in the objective (they are refuted), and the loop ends once every row is.
    """
    torch = __import__("torch")
    B, m = lo.shape[0], C.shape[0]
    relax = [relu_relaxation(l, u) for l, u in pre]
    with torch.no_grad():
        if lb0 is None:
            lb0, X0 = backsub(tn, tn.n_hidden, C.unsqueeze(0), lo, hi, pre, relax=relax)
    best, bestX = lb0.clone(), X0.clone()
    alphas = [r[4].unsqueeze(1).expand(B, m, -1).clone().requires_grad_(True) for r in relax]
    opt = torch.optim.Adam(alphas, lr=lr)
    Cb = C.unsqueeze(0)
    for _ in range(iters):
        if target is not None and bool((best > target).all()):
            break
        lb, X = backsub(tn, tn.n_hidden, Cb, lo, hi, pre, alphas=alphas, relax=relax)
        with torch.no_grad():
            better = lb > best
            best = torch.where(better, lb, best)
            bestX = torch.where(better.unsqueeze(-1), X, bestX)
        obj = lb if target is None else (lb - target).clamp(max=1e-6)
        opt.zero_grad()
        (-obj.sum()).backward()
        opt.step()
        with torch.no_grad():
            for a in alphas:
                a.clamp_(0.0, 1.0)
    return best.detach(), bestX.detach()
