"""The torch engine on the whole box, for networks too wide for input splitting (MNIST).

1. prove: CROWN on the whole box (soundly rounded, ``tbounds``); if every term has a row
   whose lower bound exceeds its rhs: ``unsat``;
2. falsify: batched PGD (``pgd``) from 64 random starts, then alpha-CROWN on the property
   rows, then a full-size PGD round; every candidate is validated in float64 and float32
   (``solver.validate`` via ``_Search.try_point``).

Otherwise the (sound) intermediate bounds are handed to the ReLU-split branch and bound
(``rbab``, or the numpy ``solver._relu_bab`` with ``Options.relu_engine='numpy'``) as the
root's bounds.
"""

from __future__ import annotations


from .case_result import CaseResult
from .torch_case import torch_case


def torch_root(S, device="cpu"):
    """Returns (CaseResult or None, the root's sound pre-activation bounds [(l, u)], torch (1, n_j))."""
    import torch

    from .bounds import count_unstable
    from .pgd import pgd
    from .tbounds.alpha import alpha_intermediate, alpha_rows
    from .tbounds.crown import backsub, intermediate_bounds

    opts = S.opts
    case = torch_case(S, device)
    tn, C, rhs, tm, gen, margin_rhs = case.tn, case.C, case.rhs, case.term_rows, case.gen, case.margin_rhs
    lo, hi = tn.box(S.lo[None], S.hi[None])
    with torch.no_grad():
        pre = intermediate_bounds(tn, lo, hi)
        lb, X = backsub(tn, tn.n_hidden, C.unsqueeze(0), lo, hi, pre)

    def closed(lb):
        return bool(((lb > rhs).unsqueeze(1) & tm.unsqueeze(0)).any(-1).all(-1)[0])

    # bounds first (a proof on the whole box is cheap: ~0.1 s), then falsify, then alpha
    if closed(lb):
        S.stats["method"] = f"CROWN on the whole box (torch {tn.device.type})"
        S.stats["certificate"] = "every term refuted by a soundly rounded CROWN bound"
        return CaseResult("unsat", None, S.stats), None
    for rnd in range(opts.root_pgd_rounds):
        if S.left() <= 0:
            break
        # round 1 small (64 starts x 40 steps: cheap on easy instances), later rounds full size
        n0, st = (64, 40) if rnd == 0 else (opts.root_pgd_starts, opts.root_pgd_steps)
        x, v = pgd(tn, lo, hi, C, margin_rhs, tm, n_random=n0, steps=st, gen=gen, deadline=S.deadline)
        for j in torch.argsort(v)[:4].tolist():
            if float(v[j]) <= 0:
                good = S.try_point(x[j].cpu().numpy(), S.lo, S.hi)
                if good is not None:
                    S.stats["found_by"] = f"batched PGD (round {rnd + 1})"
                    return CaseResult("sat", good, S.stats), None
        if rnd == 0:
            lb, _ = alpha_rows(tn, lo, hi, C, pre, iters=opts.root_alpha_iters, target=rhs, lb0=lb, X0=X)
            S.stats["root_alpha_term_bounds"] = [
                round(float((lb[0, torch.as_tensor(ix)] - rhs[torch.as_tensor(ix)]).max()), 6) for ix in S.idx]
            if closed(lb):
                S.stats["method"] = f"alpha-CROWN on the whole box (torch {tn.device.type})"
                S.stats["certificate"] = "every term refuted by a soundly rounded alpha-CROWN bound"
                return CaseResult("unsat", None, S.stats), None
    if S.left() <= 0:
        return CaseResult("unknown", None, S.stats), None
    if opts.root_alpha_pre_iters:
        # the split search starts from the root's bounds: optimised ones leave fewer unstable
        # ReLUs to split on (each alpha-CROWN bound is sound, intersected with CROWN's)
        S.stats["root_unstable_crown"] = int(count_unstable(pre)[0])
        pre = alpha_intermediate(tn, lo, hi, pre, iters=opts.root_alpha_pre_iters, deadline_left=S.left)
        S.stats["root_unstable_alpha"] = int(count_unstable(pre)[0])
    return None, pre

