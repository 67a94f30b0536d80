"""alpha-CROWN (and beta-CROWN) for the property rows: the lower ReLU slopes (and the split
constraints' multipliers) are optimised per row and box.

Every evaluation of ``crown.backsub`` is a sound bound for any slopes in [0, 1], so the
optimisation needs no care for soundness: the best bound seen per (box, row) is kept,
together with the input coefficients that produced it. Intermediate bounds are CROWN's.
"""

from __future__ import annotations

from .crown import backsub, relu_relaxation


def alpha_rows(tn, lo, hi, C, pre, iters=20, lr=0.25, target=None, lb0=None, X0=None, signs=None, lr_beta=0.05,
               layer=None, alpha0=None, beta0=None, want_params=False, per_row=False):
    """Return (lb (B, m), X (B, m, n_in)): best sound bounds over ``iters`` Adam steps.

    layer: the rows are of hidden layer ``layer``'s pre-activation (C: (m, n_layer); ``pre``
    then needs only layers 0..layer-1); default the output (C: (m, n_out)).

    target: optional (m,) thresholds; rows whose bound already exceeds them stop counting
    in the objective (they are refuted), boxes whose rows all are drop out of the batch
    (the rest go on smaller), and the loop ends once every row is.
    per_row (with target): each (box, row) pair is its own item, so that a refuted row drops
    out of the batch on its own (each row has its own slopes and multipliers anyway: the
    items are independent problems); worth it when most boxes' rows are refuted at different
    steps, e.g. split domains warm-started from their parent, where the rows the parent
    refuted usually stay refuted at the first step.
    signs: optional per hidden layer (B, n_j) split constraints (``crown.backsub``); then the
    multipliers beta >= 0 of those constraints are optimised with the slopes (beta-CROWN),
    and the bound holds over the box intersected with the constraints.
    alpha0, beta0: optional starting slopes / multipliers per hidden layer (B, m, n_j) (e.g.
    a parent domain's: a warm start; any values are sound, they are clamped in ``backsub``);
    default CROWN's adaptive slopes and zero multipliers.
    want_params: also return, per hidden layer, the slopes and multipliers (B, m, n_j) of
    the best bound seen per (box, row) (None for a layer without multipliers).
    """
    torch = __import__("torch")
    B, m = lo.shape[0], C.shape[0]
    k = tn.n_hidden if layer is None else layer
    pre = pre[:k]
    if lb0 is None:
        with torch.no_grad():
            lb0, X0 = backsub(tn, k, C.unsqueeze(0), lo, hi, pre)
    if not (per_row and target is not None and m > 1):
        return _optimise(tn, k, C.unsqueeze(0), lo, hi, pre, iters, lr, lr_beta, target, lb0, X0, signs,
                         alpha0, beta0, want_params)
    # items: the (box, row) pairs not refuted yet, box-major
    item = torch.nonzero(~(lb0 > target).reshape(-1)).flatten()
    dom, row = item // m, item % m
    lb, X = lb0.clone(), X0.clone()
    a_out = b_out = None
    if want_params:
        a_out = [(alpha0[j].to(lo.dtype).clone() if alpha0 is not None
                  else relu_relaxation(l, u)[4].unsqueeze(1).expand(B, m, -1).clone()) for j, (l, u) in enumerate(pre)]
        if signs is not None:
            b_out = [None if not bool((sg != 0).any()) else
                     (beta0[j].to(lo.dtype).clone() if beta0 is not None and beta0[j] is not None
                      else torch.zeros(B, m, sg.shape[1], dtype=lo.dtype, device=lo.device))
                     for j, sg in enumerate(signs)]
    if item.numel() == 0:
        return (lb, X, a_out, b_out) if want_params else (lb, X)
    got = _optimise(tn, k, C[row].unsqueeze(1), lo[dom], hi[dom], [(l[dom], u[dom]) for l, u in pre], iters, lr,
                    lr_beta, target[row].unsqueeze(1), lb0.reshape(-1)[item].unsqueeze(1),
                    X0.reshape(B * m, 1, -1)[item], None if signs is None else [sg[dom] for sg in signs],
                    None if alpha0 is None else [a[dom, row].unsqueeze(1) for a in alpha0],
                    None if beta0 is None else [None if b is None else b[dom, row].unsqueeze(1) for b in beta0],
                    want_params)
    lb[dom, row], X[dom, row] = got[0][:, 0], got[1][:, 0]
    if want_params:
        for a, g in zip(a_out, got[2]):
            a[dom, row] = g[:, 0]
        if b_out is not None:
            for b, g in zip(b_out, got[3]):
                if b is not None and g is not None:
                    b[dom, row] = g[:, 0]
        return lb, X, a_out, b_out
    return lb, X


def _optimise(tn, k, Lam, lo, hi, pre, iters, lr, lr_beta, target, lb0, X0, signs, alpha0, beta0, want_params):
    """alpha_rows' Adam loop. Lam: (1 or B, m, n_k) rows; target: None or broadcastable to (B, m)."""
    torch = __import__("torch")
    B, m = lo.shape[0], Lam.shape[1]
    relax = [relu_relaxation(l, u) for l, u in pre]
    best, bestX = lb0.clone(), X0.clone()
    alphas = [(alpha0[j].to(lo.dtype) if alpha0 is not None else r[4].unsqueeze(1).expand(B, m, -1)).clone()
              .requires_grad_(True) for j, r in enumerate(relax)]
    betas = None
    if signs is not None:
        betas = [((beta0[j].to(lo.dtype).clone() if beta0 is not None and beta0[j] is not None
                   else torch.zeros(B, m, sg.shape[1], dtype=lo.dtype, device=lo.device)).requires_grad_(True)
                  if bool((sg != 0).any()) else None) for j, sg in enumerate(signs)]
    n_a = len(alphas)
    params = alphas + [b for b in (betas or []) if b is not None]
    best_p = [a.detach().clone() for a in params] if want_params else None
    rates = [lr] * n_a + [lr_beta] * (len(params) - n_a)
    # Adam written out (torch.optim imports torch._dynamo: 2.3 s per process, measured)
    m1 = [torch.zeros_like(a) for a in params]
    m2 = [torch.zeros_like(a) for a in params]
    b1, b2 = 0.9, 0.999
    tgt = target
    idx = None  # the boxes still in the batch (None: all of them)
    for it in range(1, iters + 1):
        if target is not None:
            live = ~(best > tgt).all(1) if idx is None else ~(best[idx] > tgt).all(1)
            n_live = int(live.sum())
            if n_live == 0:
                break
            if n_live <= 0.75 * live.shape[0]:
                # drop the boxes whose rows are all refuted: the next steps cost their share less
                keep = torch.nonzero(live).flatten()
                idx = keep if idx is None else idx[keep]
                lo, hi = lo[keep], hi[keep]
                pre = [(l[keep], u[keep]) for l, u in pre]
                relax = [tuple(t[keep] for t in r) for r in relax]
                if signs is not None:
                    signs = [sg[keep] for sg in signs]
                if Lam.shape[0] > 1:
                    Lam = Lam[keep]
                if tgt.dim() == 2 and tgt.shape[0] > 1:
                    tgt = tgt[keep]
                params = [a.detach()[keep].requires_grad_(True) for a in params]
                m1, m2 = [p[keep] for p in m1], [p[keep] for p in m2]
                alphas = params[:n_a]
                if betas is not None:
                    it_b = iter(params[n_a:])
                    betas = [None if b is None else next(it_b) for b in betas]
        lb, X = backsub(tn, k, Lam, lo, hi, pre, alphas=alphas, relax=relax, betas=betas, signs=signs)
        with torch.no_grad():
            cur = best if idx is None else best[idx]
            better = lb > cur
            if idx is None:
                best = torch.where(better, lb, best)
                bestX = torch.where(better.unsqueeze(-1), X, bestX)
            else:
                best[idx] = torch.where(better, lb, cur)
                bestX[idx] = torch.where(better.unsqueeze(-1), X, bestX[idx])
            if want_params:
                for bp, a in zip(best_p, params):
                    if idx is None:
                        bp.copy_(torch.where(better.unsqueeze(-1), a, bp))
                    else:
                        bp[idx] = torch.where(better.unsqueeze(-1), a, bp[idx])
        obj = lb if target is None else (lb - tgt).clamp(max=1e-6)
        grads = torch.autograd.grad(obj.sum(), params, allow_unused=True)
        with torch.no_grad():
            for i, (a, g, p1, p2) in enumerate(zip(params, grads, m1, m2)):
                if g is None:
                    continue
                p1.mul_(b1).add_(g, alpha=1 - b1)
                p2.mul_(b2).addcmul_(g, g, value=1 - b2)
                step = rates[i] * (p1 / (1 - b1 ** it)) / ((p2 / (1 - b2 ** it)).sqrt() + 1e-8)
                a.add_(step)  # ascent on the bound
                if i < n_a:
                    a.clamp_(0.0, 1.0)
                else:
                    a.clamp_(min=0.0)
    if not want_params:
        return best.detach(), bestX.detach()
    it_b = iter(best_p[n_a:])
    beta_out = [None if b is None else next(it_b) for b in betas] if betas is not None else None
    return best.detach(), bestX.detach(), best_p[:n_a], beta_out


def alpha_intermediate(tn, lo, hi, pre, iters=20, lr=0.25, deadline_left=None):
    """Tighter sound pre-activation bounds (alpha-CROWN per hidden layer), layer by layer.

    For each hidden layer k >= 1, the neurons unstable under ``pre`` (in some box of the
    batch) get rows +e_j and -e_j whose slopes are optimised (``alpha_rows`` with
    ``layer=k``) on the already tightened bounds of the layers before k; the results are
    intersected with ``pre``. Every bound is sound whatever the slopes, so the result is
    sound and never looser than ``pre``. ``deadline_left``: optional callable returning the
    seconds left; once it is <= 0 the remaining layers keep ``pre``.
    """
    torch = __import__("torch")
    out = [pre[0]]
    for k in range(1, tn.n_hidden):
        l, u = pre[k]
        unst = torch.nonzero(((l < 0) & (u > 0)).any(0)).flatten()
        if unst.numel() == 0 or (deadline_left is not None and deadline_left() <= 0):
            out.append((l, u))
            continue
        R = unst.numel()
        E = torch.zeros(R, l.shape[1], dtype=l.dtype, device=l.device)
        E[torch.arange(R, device=l.device), unst] = 1.0
        lb, _ = alpha_rows(tn, lo, hi, torch.cat([E, -E]), out, iters=iters, lr=lr, layer=k)
        nl, nu = l.clone(), u.clone()
        nl[:, unst] = torch.maximum(l[:, unst], lb[:, :R])
        nu[:, unst] = torch.minimum(u[:, unst], -lb[:, R:])
        out.append((nl, nu))
    return out
