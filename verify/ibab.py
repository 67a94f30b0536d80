"""Input-split branch and bound on batches of boxes with the torch bound engine.

For networks with few inputs (ACAS Xu: 5). Each round takes up to ``batch`` open boxes
(most promising first: smallest worst-case gap), bounds them all at once with
CROWN and, for the boxes CROWN leaves open, alpha-CROWN (``tbounds``); closes every box in
which each term has a row whose sound lower bound exceeds its right-hand side; tries
the points the bounds point at (minimisers of the linear lower bounds, box centres) and a
short batched PGD in the most promising open boxes; and bisects each open box along the
input dimension with the largest ``|coefficient| x width`` summed over its open rows
(the coefficients of the linear lower bounds: the dimension that moves the bound most;
by default the CROWN and the alpha-CROWN bound's, unnormalised, summed: ``split_coefs``
"sum"), among the dimensions not already much narrower than the box's widest relative to the
root box (``isplit.candidate_dims``: else boxes are cut into slivers, see docs/verify.md).

Certificate check (``unsat``): the boxes closed by bounds are leaves of a bisection tree
of the root box; a box of depth k has tree weight 2**-k, and the sum of the weights of
the closed leaves is computed exactly (integers). It must be exactly 1: then the closed
leaves are all the leaves of the tree, so they cover the root box (each bisection covers
its parent: [lo, mid] and [mid, hi] with lo <= mid <= hi). Optionally
(``Options.recheck_leaves``) every closed leaf is bounded again, from scratch, and must
be closed again.
"""

from __future__ import annotations

import numpy as np

from .case_result import CaseResult
from .torch_case import torch_case


def input_bab(S, device="cpu"):
    import time

    import torch

    from .isplit import coefficient_dims, lookahead_dims
    from .pgd import pgd, violation
    from .tbounds.alpha import alpha_rows
    from .tbounds.crown import backsub, intermediate_bounds

    opts = S.opts
    case = torch_case(S, device)
    tn, C, rhs, tm, gen, margin_rhs = case.tn, case.C, case.rhs, case.term_rows, case.gen, case.margin_rhs
    S.stats["method"] = f"input-split BaB (torch {tn.device.type}, CROWN + alpha-CROWN)"

    LO, HI = tn.box(S.lo[None], S.hi[None])
    LO0, HI0 = LO[0], HI[0]
    DEPTH = torch.zeros(1, dtype=torch.int64, device=tn.device)
    SCORE = torch.zeros(1, dtype=torch.float64, device=tn.device)
    PRE = None  # parents' intermediate bounds (valid for the children: subsets), list of (l, u)
    closed_weight = {}  # depth -> number of closed leaves
    leaves = []
    n_dom = 0
    Cb = C.unsqueeze(0)
    batch_size = opts.torch_batch

    def refuted(lb):  # (B, m) -> (B, T) term refuted, (B,) box closed
        row_ok = lb > rhs
        term_ref = (row_ok.unsqueeze(1) & tm.unsqueeze(0)).any(-1)
        return term_ref, term_ref.all(-1)

    rounds = 0
    while True:
        rounds += 1
        # whole-box PGD from many random starts, once per case (not again in each split rule's
        # turn): a small one once the root box stays open, a large one (8x the starts) once the
        # case has run 4 s (ACAS 1_9/prop 7's counterexample needed ~20000 starts x 60 steps;
        # most proofs are done by then and never pay for it)
        # (repeated with fresh starts when the case has run 12 s and 36 s)
        el = time.monotonic() - S.t_start
        stage = 1 if rounds >= 2 and 1 not in S.pgd_rounds_done else 0
        for thr in (4.0, 12.0, 36.0):
            if not stage and el > thr and thr not in S.pgd_rounds_done:
                stage = thr
        if stage and LO.shape[0] > 0:
            S.pgd_rounds_done.add(stage)
            t_pgd, c_pgd = time.monotonic(), time.process_time()
            x0, v0 = pgd(tn, tn.tensor(S.lo)[None], tn.tensor(S.hi)[None], C, margin_rhs, tm,
                         n_random=opts.ibab_pgd_starts * (1 if stage == 1 else 8),
                         steps=opts.root_pgd_steps // 2 + (0 if stage == 1 else 10), gen=gen,
                         deadline=getattr(S, "final_deadline", S.deadline))  # not cut short by the slice's end
            # the PGD's time does not count against the split rule's time slice
            S.deadline = min(getattr(S, "final_deadline", S.deadline), S.deadline + time.monotonic() - t_pgd)
            if getattr(S, "slice_cpu_end", None) is not None:
                S.slice_cpu_end += time.process_time() - c_pgd
            for j in torch.argsort(v0)[:4].tolist():
                if float(v0[j]) <= 0:
                    good = S.try_point(x0[j].cpu().numpy(), S.lo, S.hi)
                    if good is not None:
                        S.stats["found_by"] = "batched PGD on the whole box"
                        S.stats["domains"] = n_dom
                        return CaseResult("sat", good, S.stats)
        if LO.shape[0] == 0:
            break
        if S.left() <= 0 or time.process_time() > (getattr(S, "slice_cpu_end", None) or float("inf")):
            S.stats["open_domains_at_timeout"] = int(LO.shape[0])
            S.stats["domains"] = n_dom
            return CaseResult("unknown", None, S.stats)
        N = LO.shape[0]
        if N > batch_size:
            sel = torch.topk(SCORE, batch_size, largest=False).indices
            keep = torch.ones(N, dtype=torch.bool, device=tn.device)
            keep[sel] = False
            lo, hi, depth = LO[sel], HI[sel], DEPTH[sel]
            LO, HI, DEPTH, SCORE = LO[keep], HI[keep], DEPTH[keep], SCORE[keep]
            pre_par = None if PRE is None else [(l[sel], u[sel]) for l, u in PRE]
            PRE = None if PRE is None else [(l[keep], u[keep]) for l, u in PRE]
        else:
            lo, hi, depth = LO, HI, DEPTH
            LO, HI = LO[:0], HI[:0]
            DEPTH, SCORE = DEPTH[:0], SCORE[:0]
            pre_par = PRE
            PRE = None if PRE is None else [(l[:0], u[:0]) for l, u in PRE]
        B = lo.shape[0]
        n_dom += B
        with torch.no_grad():
            pre = intermediate_bounds(tn, lo, hi, pre_known=pre_par if opts.reuse_parent_bounds else None)
            lb, X = backsub(tn, tn.n_hidden, Cb, lo, hi, pre)
        term_ref, done = refuted(lb)
        Xs = None  # split scores per (box, row, input) when they differ from |X|
        if opts.alpha_iters and not bool(done.all()) and S.left() > 0:
            op = torch.nonzero(~done).flatten()
            pre_o = [(l[op], u[op]) for l, u in pre]
            la, Xa = alpha_rows(tn, lo[op], hi[op], C, pre_o, iters=opts.alpha_iters, target=rhs,
                                lb0=lb[op], X0=X[op])
            lb = lb.clone()
            lb[op] = la
            if opts.split_coefs == "alpha":
                X = X.clone()
                X[op] = Xa
            elif opts.split_coefs in ("sum", "lookahead"):  # the two bounds' coefficients, unnormalised
                Xs = X.abs()
                Xs[op] = X[op].abs() + Xa.abs()
            elif opts.split_coefs == "both":  # each box's two linear bounds, each normalised, vote
                Xc = X[op]
                nc = Xc.abs().sum(-1, keepdim=True).clamp(min=1e-300)
                na = Xa.abs().sum(-1, keepdim=True).clamp(min=1e-300)
                Xs = X.abs()
                Xs[op] = Xc.abs() / nc + Xa.abs() / na
            term_ref, done = refuted(lb)
        # closed leaves: count their tree weight; keep them for the optional recheck
        if bool(done.any()):
            dd = depth[done]
            for dv, cnt in zip(*np.unique(dd.cpu().numpy(), return_counts=True)):
                closed_weight[int(dv)] = closed_weight.get(int(dv), 0) + int(cnt)
            if opts.recheck_leaves:
                leaves.append((lo[done], hi[done]))
        op = torch.nonzero(~done).flatten()
        if op.numel() == 0:
            continue
        lo, hi, depth, lb, X, term_ref = lo[op], hi[op], depth[op], lb[op], X[op], term_ref[op]
        Xs = X.abs() if Xs is None else Xs[op]
        pre = [(l[op], u[op]) for l, u in pre]
        B = lo.shape[0]
        # rows that matter: rows of terms not refuted yet, whose own bound is not above rhs
        gap = lb - rhs  # (B, m)
        open_row = (~(gap > 0)) & (tm.unsqueeze(0) & ~term_ref.unsqueeze(-1)).any(1)
        # candidates: minimiser of each open row's linear lower bound, and the centre
        hard = torch.where(open_row, gap, torch.full_like(gap, float("inf"))).argmin(1)
        coef = X[torch.arange(B, device=tn.device), hard]  # (B, n)
        vert = torch.where(coef > 0, lo, hi)
        cand = torch.cat([vert, (lo + hi) / 2])
        cand_lo, cand_hi = torch.cat([lo, lo]), torch.cat([hi, hi])
        # every 8th round a wider PGD: many of the most promising boxes, more steps
        k = min(B, opts.pgd_boxes_torch * (16 if rounds % 8 == 0 else 1))
        if k and S.left() > 0:
            # the k most promising boxes (worst gap) get a short PGD from their vertex point
            order = torch.topk(torch.where(open_row, gap, torch.full_like(gap, float("inf"))).min(1).values,
                               k, largest=False).indices
            px, pv = pgd(tn, lo[order], hi[order], C, margin_rhs, tm, starts=vert[order],
                         steps=opts.pgd_steps_bab * (4 if rounds % 8 == 0 else 1),
                         gen=gen, deadline=S.deadline)
            cand = torch.cat([cand, px])
            cand_lo, cand_hi = torch.cat([cand_lo, lo[order]]), torch.cat([cand_hi, hi[order]])
        with torch.no_grad():
            vv = violation(tn.forward(cand), C, rhs, tm)
        bad = torch.nonzero(vv <= 0).flatten()[:8]
        for j in bad.tolist():
            good = S.try_point(cand[j].double().cpu().numpy(), cand_lo[j].double().cpu().numpy(), cand_hi[j].double().cpu().numpy())
            if good is not None:
                S.stats["found_by"] = "bound minimiser / PGD in a BaB box"
                S.stats["domains"] = n_dom
                return CaseResult("sat", good, S.stats)
        # split: the dimension with the largest |coefficient| x width over the open rows
        w = hi - lo
        score = (Xs * open_row.unsqueeze(-1)).sum(1) * w
        score = torch.where(score.sum(1, keepdim=True) > 0, score, w)
        if opts.split_coefs == "lookahead":
            d = lookahead_dims(tn, lo, hi, pre, C, rhs, tm, score, HI0 - LO0, opts.sliver_ratio)
        else:
            d = coefficient_dims(score, w, HI0 - LO0, opts.sliver_ratio)
        ar = torch.arange(B, device=tn.device)
        wd = w[ar, d]
        tiny = wd <= (1e-12 if tn.dtype == torch.float64 else 1e-5) * (1 + lo[ar, d].abs())
        if bool(tiny.any()):
            # a box too small to split that bounds cannot close: Z3 decides it exactly
            for j in torch.nonzero(tiny).flatten().tolist():
                pj = [(l[j].double().cpu().numpy(), u[j].double().cpu().numpy()) for l, u in pre]
                st, x = S.z3_leaf(lo[j].double().cpu().numpy(), hi[j].double().cpu().numpy(), pj) if opts.use_z3 else ("unknown", None)
                if st == "sat":
                    S.stats["domains"] = n_dom
                    return CaseResult("sat", x, S.stats)
                if st == "unsat":
                    closed_weight[int(depth[j])] = closed_weight.get(int(depth[j]), 0) + 1
                    continue
                S.stats["too_small"] = S.stats.get("too_small", 0) + 1
                S.stats["domains"] = n_dom
                return CaseResult("unknown", None, S.stats)
            keep = ~tiny
            lo, hi, d, depth, gap, open_row, ar = lo[keep], hi[keep], d[keep], depth[keep], gap[keep], open_row[keep], None
            pre = [(l[keep], u[keep]) for l, u in pre]
            B = lo.shape[0]
            ar = torch.arange(B, device=tn.device)
            if B == 0:
                continue
        mid = lo[ar, d] + (hi[ar, d] - lo[ar, d]) / 2
        mid = torch.minimum(torch.maximum(mid, lo[ar, d]), hi[ar, d])
        h1 = hi.clone()
        h1[ar, d] = mid
        l2 = lo.clone()
        l2[ar, d] = mid
        sc = torch.where(open_row, gap, torch.full_like(gap, float("inf"))).min(1).values
        LO = torch.cat([LO, lo, l2])
        HI = torch.cat([HI, h1, hi])
        DEPTH = torch.cat([DEPTH, depth + 1, depth + 1])
        SCORE = torch.cat([SCORE, sc, sc])
        if opts.reuse_parent_bounds:
            kids = [(torch.cat([l, l]), torch.cat([u, u])) for l, u in pre]
            PRE = kids if PRE is None else [(torch.cat([a, l]), torch.cat([b, u])) for (a, b), (l, u) in zip(PRE, kids)]
        S.stats["max_depth"] = max(S.stats.get("max_depth", 0), int(depth.max()) + 1)
    S.stats["domains"] = n_dom
    # certificate check: the closed leaves' tree weights sum to exactly 1
    if closed_weight:
        dmax = max(closed_weight)
        total = sum(cnt << (dmax - dv) for dv, cnt in closed_weight.items())
        covered = total == (1 << dmax)
    else:
        covered = False
    S.stats["leaves"] = int(sum(closed_weight.values()))
    S.stats["certificate"] = "leaf weights sum to 1" if covered else "leaf weights do not sum to 1"
    if not covered:
        return CaseResult("unknown", None, S.stats)
    if opts.recheck_leaves and leaves:
        lo = torch.cat([a for a, _ in leaves])
        hi = torch.cat([b for _, b in leaves])
        ok = torch.ones(lo.shape[0], dtype=torch.bool, device=tn.device)
        for s in range(0, lo.shape[0], batch_size):
            l_, h_ = lo[s:s + batch_size], hi[s:s + batch_size]
            with torch.no_grad():
                pre = intermediate_bounds(tn, l_, h_)
                lb, X = backsub(tn, tn.n_hidden, Cb, l_, h_, pre)
            _, done = refuted(lb)
            if not bool(done.all()) and opts.alpha_iters:
                op = torch.nonzero(~done).flatten()
                la, _ = alpha_rows(tn, l_[op], h_[op], C, [(a[op], b[op]) for a, b in pre],
                                   iters=opts.alpha_iters, target=rhs, lb0=lb[op], X0=X[op])
                lb = lb.clone()
                lb[op] = la
                _, done = refuted(lb)
            ok[s:s + batch_size] = done
        S.stats["leaves_rechecked"] = int(ok.sum())
        if not bool(ok.all()):
            S.stats["certificate"] += f"; {int((~ok).sum())} leaves failed the recheck"
            return CaseResult("unknown", None, S.stats)
        S.stats["certificate"] += "; every leaf closed again by a fresh bound"
    return CaseResult("unsat", None, S.stats)


def input_bab_portfolio(S, device="cpu"):
    """``input_bab`` with the split heuristics of ``Options.split_portfolio`` taking turns.

    No split rule was best on every ACAS Xu instance (measured: each of 'sum', 'both' and
    'crown' needs 10-30x more boxes than another one on some instance; 'lookahead' closes
    2_7/prop 1 in 963 boxes where 'sum' is open after 14137, and 'sum' closes 3_6/prop 1 in
    2361 where 'lookahead' is open after 33819), so each runs for a slice of CPU time
    (``Options.portfolio_slice_s``, doubled after every full turn) and the search restarts
    from the root with the next one. Each run is a complete, independent search
    with its own certificate check; the first decisive answer is returned.
    """
    import dataclasses
    import time

    order = list(S.opts.split_portfolio) or [S.opts.split_coefs]
    if len(order) == 1:
        S.opts = dataclasses.replace(S.opts, split_coefs=order[0])
        return input_bab(S, device)
    final, base_opts = S.deadline, S.opts
    S.final_deadline = final
    slice_s, i, tried, total_domains = base_opts.portfolio_slice_s, 0, [], 0
    res = None
    try:
        while True:
            h = order[i % len(order)]
            S.opts = dataclasses.replace(base_opts, split_coefs=h)
            # a slice is CPU time of this process (on a loaded machine a wall-clock slice
            # can be nearly no work); the case's own deadline stays wall clock
            S.slice_cpu_end = time.process_time() + slice_s
            res = input_bab(S, device)
            total_domains += res.stats.get("domains", 0)
            tried.append(h)
            if res.status != "unknown" or time.monotonic() >= final:
                break
            i += 1
            if i % len(order) == 0:
                slice_s *= 2
    finally:
        S.deadline, S.opts, S.slice_cpu_end = final, base_opts, None
    res.stats["split_rules_tried"] = tried
    res.stats["domains"] = total_domains
    return res
