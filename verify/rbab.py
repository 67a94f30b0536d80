"""ReLU-split branch and bound with beta-CROWN bounds, batched over domains (torch).

For networks too wide for input splitting (MNIST-FC). A domain is the input box plus split
constraints ``z_j >= 0`` / ``z_j <= 0`` on some hidden neurons (``signs``: +1 / -1 / 0 per
neuron). Each round takes up to ``Options.relu_batch`` open domains (smallest gap first)
and bounds them all at once:

* intermediate bounds: the parent domain's sound bounds (the root's from ``troot``), clamped
  by the domain's splits (``l = max(l, 0)`` where ``z >= 0`` is imposed, ``u = min(u, 0)``
  where ``z <= 0``), and (``Options.relu_refresh_bounds``) CROWN again on the layers after
  the newest split's (``tbounds.crown.refresh_after_split``; the layers up to it cannot
  change), intersected;
* property rows: CROWN, then, for the domains it leaves open, alpha-CROWN with the splits'
  multipliers beta optimised alongside the slopes (``tbounds.alpha.alpha_rows`` with
  ``signs``; the Lagrangian terms are in ``tbounds.crown.backsub``), starting from the
  parent's best slopes and multipliers (``Options.relu_warm_start``). Every iterate is a
  sound bound of the box intersected with the domain's constraints, with outward rounding.

The open domains and their state live in a ``DomainPool``.

A domain is closed when every term has a row whose bound exceeds its right-hand side. An
open one is split on its unsplit unstable neuron whose upper-line intercept costs the bound
most (the ``scores`` of ``backsub``); the minimisers of the open rows' linear bounds, and
the results of a short PGD inside the most promising split domains that is pulled towards
their split constraints (``pgd.domain_pgd``: it finds points that a region carved out by
the splits contains even where plain PGD sees a flat network), are tried as
counterexamples (validated in float64 and float32). A domain with no unstable
neuron left that the bound cannot close ends the search with ``unknown``.

Certificate (``unsat``): each split makes two children, [z <= 0] and [z >= 0], that cover
their parent; a closed domain of depth k has weight 2**-k and the closed weights must sum
to exactly 1 (integers), as in ``ibab``.
"""

from __future__ import annotations

import numpy as np

from .case_result import CaseResult
from .torch_case import torch_case


class DomainPool:
    """The open domains' state in preallocated tensors (rows reused once their domain is
    taken): a round gathers its batch and writes the children into free rows, without the
    copy of every open domain that concatenating would cost each round.

    Per domain: split signs (int8), depth, priority (``inf`` marks a free row), the domain's
    sound pre-activation bounds, the first layer they need recomputing from, and warm-start
    slopes / multipliers (stored in half precision: any value is sound, they only seed the
    optimisation)."""

    def __init__(self, torch, n_total, m, dtype, device, cap=1024):
        self.torch = torch
        self.cols = {"sig": ((n_total,), torch.int8), "depth": ((), torch.int64),
                     "first": ((), torch.int64), "pl": ((n_total,), dtype), "pu": ((n_total,), dtype),
                     "alpha": ((m, n_total), torch.float16), "beta": ((m, n_total), torch.float16)}
        self.device = device
        self.t = {k: torch.zeros((cap,) + shp, dtype=dt, device=device) for k, (shp, dt) in self.cols.items()}
        self.score = torch.full((cap,), float("inf"), dtype=torch.float64, device=device)
        self.n = 0

    def put(self, score, **vals):
        torch = self.torch
        k = score.shape[0]
        free = torch.nonzero(torch.isinf(self.score)).flatten()
        if free.numel() < k:
            cap = self.score.shape[0]
            grow = max(cap, k)
            for key, (shp, dt) in self.cols.items():
                self.t[key] = torch.cat([self.t[key], torch.zeros((grow,) + shp, dtype=dt, device=self.device)])
            self.score = torch.cat([self.score, torch.full((grow,), float("inf"), dtype=torch.float64,
                                                           device=self.device)])
            free = torch.nonzero(torch.isinf(self.score)).flatten()
        rows = free[:k]
        self.score[rows] = score
        for key, v in vals.items():
            self.t[key][rows] = v.to(self.t[key].dtype)
        self.n += k

    def take(self, b):
        """The (up to) b open domains of smallest priority, removed from the pool."""
        torch = self.torch
        rows = torch.topk(self.score, min(self.n, b), largest=False).indices
        self.score[rows] = float("inf")
        self.n -= rows.numel()
        return {key: t[rows] for key, t in self.t.items()}


def relu_bab_torch(S, root_pre, device="cpu"):
    """root_pre: the root's sound pre-activation bounds, list of torch (l, u) each (1, n_j)."""
    import torch

    from .pgd import domain_pgd
    from .tbounds.alpha import alpha_rows
    from .tbounds.crown import backsub, intermediate_bounds, refresh_after_split, relu_relaxation

    opts = S.opts
    case = torch_case(S, device)
    tn, C, rhs, tm = case.tn, case.C, case.rhs, case.term_rows
    S.stats["method"] = f"ReLU-split BaB (torch {tn.device.type}, beta-CROWN)"
    lo, hi = tn.box(S.lo[None], S.hi[None])
    if any(l.dtype != tn.dtype for l, _ in root_pre):  # never round bounds: recompute them
        with torch.no_grad():
            root_pre = intermediate_bounds(tn, lo, hi)
    sizes = [l.shape[1] for l, _ in root_pre]
    off = np.concatenate([[0], np.cumsum(sizes)])
    layer_of = torch.repeat_interleave(torch.arange(len(sizes), device=tn.device),
                                       torch.as_tensor(sizes, device=tn.device))
    m = C.shape[0]
    pool = DomainPool(torch, int(off[-1]), m, tn.dtype, tn.device)
    a_root = torch.cat([relu_relaxation(l, u)[4] for l, u in root_pre], 1)
    pool.put(torch.zeros(1, dtype=torch.float64, device=tn.device),
             sig=torch.zeros(1, int(off[-1]), dtype=torch.int8, device=tn.device),
             depth=torch.zeros(1, dtype=torch.int64, device=tn.device),
             first=torch.full((1,), tn.n_hidden, dtype=torch.int64, device=tn.device),
             pl=torch.cat([l for l, _ in root_pre], 1), pu=torch.cat([u for _, u in root_pre], 1),
             alpha=a_root.unsqueeze(1).expand(1, m, -1), beta=torch.zeros(1, m, int(off[-1])))
    closed_weight = {}
    n_dom = 0
    Cb = C.unsqueeze(0)
    warm = opts.relu_warm_start

    def refuted(lb):
        term_ref = ((lb > rhs).unsqueeze(1) & tm.unsqueeze(0)).any(-1)
        return term_ref, term_ref.all(-1)

    def per_layer(t):
        return [t[..., off[k]:off[k + 1]] for k in range(len(sizes))]

    while pool.n > 0:
        if S.left() <= 0:
            S.stats["open_domains_at_timeout"] = int(pool.n)
            S.stats["domains"] = n_dom
            S.stats["closed_fraction"] = closed_fraction(closed_weight)
            return CaseResult("unknown", None, S.stats)
        d = pool.take(opts.relu_batch)
        sig, depth = d["sig"], d["depth"]
        B = sig.shape[0]
        n_dom += B
        signs = [s_.to(tn.dtype) for s_ in per_layer(sig)]
        if warm:
            pre = [(torch.where(sg > 0, l.clamp(min=0), l), torch.where(sg < 0, u.clamp(max=0), u))
                   for sg, l, u in zip(signs, per_layer(d["pl"]), per_layer(d["pu"]))]
        else:
            pre = [(torch.where(sg > 0, l.clamp(min=0), l), torch.where(sg < 0, u.clamp(max=0), u))
                   for sg, (l, u) in zip(signs, root_pre)]
        loB, hiB = lo.expand(B, -1), hi.expand(B, -1)
        if opts.relu_refresh_bounds:
            # the splits' clamps tighten the layers after them: CROWN again (sound, intersected);
            # a domain that holds its parent's bounds needs it only after its newest split's layer
            with torch.no_grad():
                if warm:
                    pre = refresh_after_split(tn, loB, hiB, pre, d["first"])
                else:
                    pre = intermediate_bounds(tn, loB, hiB, pre_known=pre)
        sc = []
        with torch.no_grad():
            lb, X = backsub(tn, tn.n_hidden, Cb, loB, hiB, pre, scores=sc)
        term_ref, done = refuted(lb)
        alpha_b, beta_b = per_layer(d["alpha"]), per_layer(d["beta"])
        if not bool(done.all()) and S.left() > 0:
            op = torch.nonzero(~done).flatten()
            got = alpha_rows(tn, loB[op], hiB[op], C, [(a[op], b[op]) for a, b in pre],
                             iters=opts.relu_beta_iters, lr=0.1, target=rhs, lb0=lb[op], X0=X[op],
                             signs=[s_[op] for s_ in signs], want_params=warm, per_row=opts.relu_per_row,
                             alpha0=[a[op] for a in alpha_b] if warm else None,
                             beta0=[b[op] for b in beta_b] if warm else None)
            la, Xa = got[0], got[1]
            lb, X = lb.clone(), X.clone()
            lb[op], X[op] = la, Xa
            if warm:
                a_new = torch.cat(got[2], -1).to(d["alpha"].dtype)
                b_new = torch.cat([torch.zeros_like(a) if b is None else b.clamp(max=6e4)
                                   for a, b in zip(got[2], got[3])], -1).to(d["beta"].dtype)
                d["alpha"][op], d["beta"][op] = a_new, b_new
            term_ref, done = refuted(lb)
        if bool(done.any()):
            for dv, cnt in zip(*np.unique(depth[done].cpu().numpy(), return_counts=True)):
                closed_weight[int(dv)] = closed_weight.get(int(dv), 0) + int(cnt)
        op = torch.nonzero(~done).flatten()
        if op.numel() == 0:
            continue
        sig, depth, lb, X, term_ref = sig[op], depth[op], lb[op], X[op], term_ref[op]
        pre = [(l[op], u[op]) for l, u in pre]
        B = sig.shape[0]
        gap = lb - rhs
        open_row = (~(gap > 0)) & (tm.unsqueeze(0) & ~term_ref.unsqueeze(-1)).any(1)
        # candidates: the minimiser of every open row's linear lower bound
        Xo = X[open_row]  # (K, n_in)
        if Xo.shape[0]:
            cand = torch.where(Xo > 0, lo.expand_as(Xo), hi.expand_as(Xo))
            found = first_valid(S, cand, case_violation(tn, cand, C, rhs, tm), n_dom,
                                "bound minimiser in a ReLU-split domain")
            if found is not None:
                return found
        # leaf candidates: PGD inside the most promising split domains, towards their constraints
        k = min(B, opts.relu_domain_pgd)
        if k and S.left() > 0 and bool((sig != 0).any()):
            order = torch.topk(torch.where(open_row, gap, torch.full_like(gap, float("inf"))).min(1).values,
                               k, largest=False).indices
            Xw = X[order, torch.where(open_row[order], gap[order], torch.full_like(gap[order], float("inf"))).argmin(1)]
            st = torch.where(Xw > 0, lo.expand_as(Xw), hi.expand_as(Xw))
            px, pv = domain_pgd(tn, lo, hi, C, case.margin_rhs, tm, [s_[order] for s_ in signs_open(sig, off)], st,
                                deadline=S.deadline)
            found = first_valid(S, px, pv, n_dom, "PGD inside a ReLU-split domain")
            if found is not None:
                return found
        # branch: the unsplit unstable neuron whose intercept costs most (scores: last layer first)
        score = torch.cat([s_[op] for s_ in reversed(sc)], 1)
        unst = torch.cat([(l < 0) & (u > 0) for l, u in pre], 1) & (sig == 0)
        score = torch.where(unst, score.to(torch.float64) + 1e-30, torch.full_like(score, -1.0, dtype=torch.float64))
        best = score.argmax(1)
        stuck = ~unst.any(1)
        if bool(stuck.any()):
            S.stats["unsplittable_open_domains"] = int(stuck.sum())
            S.stats["domains"] = n_dom
            return CaseResult("unknown", None, S.stats)
        ar = torch.arange(B, device=tn.device)
        s1, s2 = sig.clone(), sig.clone()
        s1[ar, best] = -1
        s2[ar, best] = 1
        pri = torch.where(open_row, gap, torch.full_like(gap, float("inf"))).min(1).values
        two = lambda t: torch.cat([t, t])  # noqa: E731
        pool.put(two(pri), sig=torch.cat([s1, s2]), depth=two(depth + 1), first=two(layer_of[best] + 1),
                 pl=two(torch.cat([l for l, _ in pre], 1)), pu=two(torch.cat([u for _, u in pre], 1)),
                 alpha=two(d["alpha"][op]), beta=two(d["beta"][op]))
        S.stats["max_depth"] = max(S.stats.get("max_depth", 0), int(depth.max()) + 1)
    S.stats["domains"] = n_dom
    dmax = max(closed_weight) if closed_weight else 0
    total = sum(cnt << (dmax - dv) for dv, cnt in closed_weight.items())
    S.stats["leaves"] = int(sum(closed_weight.values()))
    if total != (1 << dmax) or not closed_weight:
        S.stats["certificate"] = "leaf weights do not sum to 1"
        return CaseResult("unknown", None, S.stats)
    S.stats["certificate"] = "leaf weights sum to 1; every leaf closed by a soundly rounded beta-CROWN bound"
    return CaseResult("unsat", None, S.stats)


def closed_fraction(closed_weight):
    """The share of the root's split measure that closed leaves cover (sum of 2**-depth; 1.0
    means proved): how far a search that timed out got."""
    return round(sum(cnt * 2.0 ** -dv for dv, cnt in closed_weight.items()), 6)


def first_valid(S, pts, vals, n_dom, how):
    """A 'sat' CaseResult for the first of (up to 4) candidates with violation <= 0 that
    validates (``S.try_point``: float64 and float32), else None."""
    torch = __import__("torch")
    for j in torch.nonzero(vals <= 0).flatten()[:4].tolist():
        good = S.try_point(pts[j].double().cpu().numpy(), S.lo, S.hi)
        if good is not None:
            S.stats["found_by"] = how
            S.stats["domains"] = n_dom
            return CaseResult("sat", good, S.stats)
    return None


def signs_open(sig, off):
    """(N, total hidden) int8 split signs -> per hidden layer (N, n_j) float."""
    return [sig[:, off[k]:off[k + 1]].float() for k in range(len(off) - 1)]


def case_violation(tn, x, C, rhs, tm):
    from .pgd import violation

    torch = __import__("torch")
    with torch.no_grad():
        return violation(tn.forward(x), C, rhs, tm)
