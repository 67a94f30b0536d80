"""Batched PGD falsifier in torch: many starts, each in its own box, in one tensor program.

The target is a disjunction of terms ``C_t y <= d_t`` (rows of one stacked matrix ``C``
with ``rhs``; ``term_mask`` (T, m) says which rows belong to which term). The violation
of a point is ``min_t max_{r in t} (C_r y - d_r)``: <= 0 exactly where some term holds.
Sign-gradient steps (L-infinity), projected to each start's box, step size decaying.
Candidates are only candidates: the caller validates them in float64 and float32.
So the search itself runs in float32 (``TorchNet.forward32``; about half the time of
float64 on CPU) and only its result is moved back to float64, clamped to the boxes.
"""

from __future__ import annotations


def violation(Y, C, rhs, term_mask):
    torch = __import__("torch")
    V = Y @ C.T.to(Y.dtype) - rhs  # (N, m)
    Vt = torch.where(term_mask.unsqueeze(0), V.unsqueeze(1), torch.full_like(V, float("-inf")).unsqueeze(1))
    return Vt.max(-1).values.min(-1).values  # (N,)


def pgd(tn, lo, hi, C, rhs, term_mask, starts=None, n_random=0, steps=30, gen=None, deadline=None):
    """lo, hi: (N, n) per-start boxes (or (1, n) shared). Returns (best x (N', n), violation (N',)).

    N' = number of starts: the given ``starts`` (clamped to their boxes) plus ``n_random``
    uniform points per box row when the boxes are shared.
    """
    import time

    torch = __import__("torch")
    f32 = torch.float32
    lo64, hi64 = lo, hi
    lo, hi, C, rhs = lo.to(f32), hi.to(f32), C.to(f32), rhs.to(f32)
    if starts is not None:
        starts = starts.to(f32)
    pts = []
    if starts is not None:
        pts.append(starts)
    if n_random:
        u = torch.rand(n_random, lo.shape[1], dtype=torch.float64, device=lo.device, generator=gen).to(f32)
        pts.append(lo + u * (hi - lo))
    P = torch.cat(pts).clone()
    lo_b = lo.expand(P.shape[0], -1) if lo.shape[0] == 1 else lo
    hi_b = hi.expand(P.shape[0], -1) if hi.shape[0] == 1 else hi
    P = torch.minimum(torch.maximum(P, lo_b), hi_b)
    width = hi_b - lo_b
    best_x = P.clone()
    with torch.no_grad():
        best_v = violation(tn.forward32(P), C, rhs, term_mask)
    step = width / 4.0
    for _ in range(steps):
        if deadline is not None and time.monotonic() > deadline:
            break
        P.requires_grad_(True)
        v = violation(tn.forward32(P), C, rhs, term_mask)
        (g,) = torch.autograd.grad(v.sum(), P)
        with torch.no_grad():
            better = v < best_v
            best_v = torch.where(better, v, best_v)
            best_x = torch.where(better.unsqueeze(-1), P, best_x)
            if bool((best_v <= 0).any()):
                break
            P = torch.minimum(torch.maximum(P - step * torch.sign(g), lo_b), hi_b)
            step = step * 0.85
    with torch.no_grad():
        v = violation(tn.forward32(P), C, rhs, term_mask)
        better = v < best_v
        best_v = torch.where(better, v, best_v)
        best_x = torch.where(better.unsqueeze(-1), P, best_x)
    lo_b = lo64.expand(P.shape[0], -1) if lo64.shape[0] == 1 else lo64
    hi_b = hi64.expand(P.shape[0], -1) if hi64.shape[0] == 1 else hi64
    best_x = torch.minimum(torch.maximum(best_x.detach().to(lo64.dtype), lo_b), hi_b)
    return best_x, best_v.detach().to(lo64.dtype)


def domain_pgd(tn, lo, hi, C, rhs, term_mask, signs, starts, steps=50, weight=10.0, deadline=None):
    """PGD inside ReLU-split domains: minimise the violation plus ``weight`` times how far
    each split constraint ``sign_j z_j(x) >= 0`` is from holding (float32, one start per
    domain, projected to the box). Unlike plain PGD this has a gradient towards a region that
    the splits carve out even where the network is flat around it (a planted hat's ReLUs
    split active point at its centre). Returns (best x (N, n), violation (N,)) by the plain
    violation among the iterates that meet every constraint (+inf where none does).

    lo, hi: (1, n) box; signs: per hidden layer (N, n_j) in {-1, 0, 1}; starts: (N, n).
    """
    import time

    torch = __import__("torch")
    f32 = torch.float32
    if not hasattr(tn, "W32"):
        tn.forward32(lo[:1].to(f32))
    lo_, hi_ = lo.to(f32), hi.to(f32)
    C32, rhs32 = C.to(f32), rhs.to(f32)
    sg = [s.to(f32) for s in signs]
    P = torch.minimum(torch.maximum(starts.to(f32), lo_), hi_).clone()
    best_x, best_v = P.clone(), torch.full((P.shape[0],), float("inf"), dtype=f32, device=P.device)
    step = (hi_ - lo_) / 4.0
    for _ in range(steps):
        if deadline is not None and time.monotonic() > deadline:
            break
        P.requires_grad_(True)
        a, pen = P, 0.0
        for i, (W, b) in enumerate(zip(tn.W32, tn.b32)):
            z = torch.addmm(b, a, W.T)
            if i < tn.n_hidden:
                pen = pen + torch.relu(-sg[i] * z).sum(1)
                a = torch.relu(z)
        v = violation(z, C32, rhs32, term_mask)
        (g,) = torch.autograd.grad((v + weight * pen).sum(), P)
        with torch.no_grad():
            ok = pen <= 0
            better = ok & (v < best_v)
            best_v = torch.where(better, v, best_v)
            best_x = torch.where(better.unsqueeze(-1), P, best_x)
            P = torch.minimum(torch.maximum(P - step * torch.sign(g), lo_), hi_)
            step = step * 0.75  # 0.75**50 ~ 6e-7: fine enough to land in a 1e-4 eps hat
    lo64 = lo.expand(P.shape[0], -1)
    hi64 = hi.expand(P.shape[0], -1)
    best_x = torch.minimum(torch.maximum(best_x.detach().to(lo.dtype), lo64), hi64)
    return best_x, best_v.detach().to(torch.float64)
