"""Input-split dimension by lookahead: bound both halves of every candidate split, cheaply.

For each open box and each input dimension d, the two halves [lo, mid_d] and [mid_d, hi]
are bounded with CROWN on the property rows only, using the parent's intermediate bounds
intersected with interval bounds of the half (``crown.intermediate_bounds`` without its
back-substitution step: ``interval.refined_intervals``). The first layer's bounds are exact
for a half, so its ReLUs that the split stabilises change the relaxation, and so do the
deeper neurons that interval propagation through the tightened layers stabilises. The
dimension whose worse half has the best bound wins (ties: the |coefficient| x width score).

Cost: 2 n_in CROWN passes of the m property rows per box, against ~2 x (unstable neurons)
rows per layer for the box's own intermediate bounds: a few percent on ACAS Xu (5 inputs).
These bounds only choose a dimension; no verdict rests on them.
"""

from __future__ import annotations


def box_gap(lb, rhs, term_rows):
    """(B, m) row bounds -> (B,) how far the box is from closed: min over terms of the best row's
    margin (> 0: every term refuted, the box is closed)."""
    torch = __import__("torch")
    g = (lb - rhs).unsqueeze(1)  # (B, 1, m)
    per_term = torch.where(term_rows.unsqueeze(0), g, torch.full_like(g, -float("inf"))).max(-1).values
    return per_term.min(-1).values


def candidate_dims(w, root_width, ratio=32.0):
    """(B, n_in) True where a dimension may be split: not already ``ratio`` times narrower (relative to the
    root box) than the box's widest. Bisecting one dimension forever never closes a box: a
    coefficient score can keep pointing at a dimension whose linear coefficient is large while
    the looseness comes from another one's width (measured: ACAS Xu 3_9/prop 1 with the 'sum'
    rule cut dimensions 0, 1 and 4 down to 1e-5 of the root while dimension 3 kept its full
    width, then stopped at a box too small to split)."""
    return _candidates(relative_width(w, root_width), ratio)


def _candidates(rel, ratio):
    return rel * ratio >= rel.amax(1, keepdim=True)


def relative_width(w, root_width):
    """(B, n_in) each dimension's width as a share of the root box's; 0 where the root box is flat
    (a fixed input, e.g. ACAS Xu's heading in property 4). A clamp of the root width does not do:
    a float32 box's 1e-300 is 0, and the 0/0 made every comparison false and dimension 0 the
    only one ever split."""
    torch = __import__("torch")
    return torch.where(root_width > 0, w / torch.where(root_width > 0, root_width, torch.ones_like(root_width)),
                       torch.zeros_like(w))


def coefficient_dims(score, w, root_width, ratio=32.0):
    """(B,) split dimension per box: the best ``score`` (|coefficient| x width, >= 0) among the
    ``candidate_dims``; where every candidate scores 0, the relatively widest dimension."""
    torch = __import__("torch")
    rel = relative_width(w, root_width)
    ok = _candidates(rel, ratio)
    masked = torch.where(ok, score, torch.full_like(score, -1.0))
    use_width = masked.amax(1, keepdim=True) <= 0
    return torch.where(use_width, torch.where(ok, rel, torch.full_like(rel, -1.0)), masked).argmax(1)


def lookahead_dims(tn, lo, hi, pre, C, rhs, term_rows, fallback, root_width, ratio=32.0):
    """(B,) split dimension per box. fallback: (B, n_in) score used to break ties.

    Score of a dimension: the sum of its two halves' gaps, each capped at 0 (a half that
    closes counts as 0), so a split that helps both halves beats one that helps one a
    little. Dimensions already ``ratio`` (32) times narrower (relative to the root box) than the box's
    widest are not candidates: bisecting one dimension forever never closes a box.
    """
    torch = __import__("torch")
    from .tbounds.crown import backsub
    from .tbounds.interval import refined_intervals

    B, n = lo.shape
    mid = lo + (hi - lo) / 2
    mid = torch.minimum(torch.maximum(mid, lo), hi)
    eye = torch.eye(n, dtype=torch.bool, device=lo.device)  # (n, n): row d = dimension d
    # children: (B, n, 2) -> flattened (B*n*2, n_in)
    lo_c = lo[:, None, None, :].expand(B, n, 2, n).clone()
    hi_c = hi[:, None, None, :].expand(B, n, 2, n).clone()
    midx = mid[:, None, :].expand(B, n, n)
    hi_c[:, :, 0] = torch.where(eye, midx, hi_c[:, :, 0])
    lo_c[:, :, 1] = torch.where(eye, midx, lo_c[:, :, 1])
    lo_c, hi_c = lo_c.reshape(-1, n), hi_c.reshape(-1, n)
    rep = 2 * n
    known = [(l.repeat_interleave(rep, 0), u.repeat_interleave(rep, 0)) for l, u in pre]
    with torch.no_grad():
        pre_c = refined_intervals(tn, lo_c, hi_c, known)
        lb, _ = backsub(tn, tn.n_hidden, C.unsqueeze(0), lo_c, hi_c, pre_c)
    gap = box_gap(lb, rhs, term_rows).reshape(B, n, 2).clamp(max=0).sum(-1)  # (B, n)
    ok = candidate_dims(hi - lo, root_width, ratio)
    gap = torch.where(ok & ~torch.isnan(gap), gap, torch.full_like(gap, -float("inf")))
    # the best dimension; among (near-)equal ones the fallback score decides
    fb = fallback / fallback.amax(1, keepdim=True).clamp(min=1e-300)
    best = gap.amax(1, keepdim=True)
    close = ok & (gap >= best - 1e-6 * best.abs())
    return torch.where(close, fb, torch.full_like(fb, -1.0)).argmax(1)
