"""The decision procedure for one case: is there an x in a box where some output term holds?

Order of work, cheapest first:

1. falsify: random points + PGD (``attack``); a point is only accepted after
   ``validate`` (inside the box, the term holds in float64 *and* float32);
2. bound: symbolic linear bounds over the whole box; a term is refuted when one of
   its rows ``C_r y <= d_r`` has a lower bound of ``C_r y`` above ``d_r``;
3. branch and bound: for few inputs (ACAS Xu: 5) split the input box along the
   dimension with the largest influence on the open rows; otherwise split unstable
   ReLUs (earliest layer first, largest triangle area). A domain with few unstable
   ReLUs left is a *leaf* and goes to Z3's exact encoding (``encode``).

The result is 'sat' (with a validated point), 'unsat' (every domain refuted by
bounds or by Z3) or 'unknown' (deadline, or a Z3 leaf that gave up), with stats.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass

import numpy as np

from . import encode
from .attack import attack, violation
from .bounds import count_unstable, linear_bounds
from .case_result import CaseResult
from .errors import VerifyInputError


@dataclass
class Options:
    input_split_max_dims: int = 10   # input-space branching when n_inputs <= this
    leaf_unstable: int = 8           # Z3 leaf once a domain has at most this many unstable ReLUs ...
    leaf_min_depth: int = 18         # ... and (input splitting) has been split this often already
    relu_leaf_unstable: int = 12     # the same for ReLU-space branching ...
    z3_max_inputs: int = 40          # ... only if the network has at most this many inputs: Z3's exact
                                     # simplex takes seconds on one dense 784-input row (measured), so
                                     # high-dimensional leaves are closed by bounds alone
    leaf_timeout_s: float = 2.0      # cap for one Z3 leaf (then the box is split further)
    batch: int = 64                  # domains bounded per numpy call
    attack_steps: int = 60
    pgd_boxes: int = 2               # per BaB batch: short PGD runs in the most promising boxes
    use_z3: bool = True              # False: pure bound-based BaB (for measurements)
    direct_z3: bool = False          # True: skip BaB, hand the whole box to Z3 (for measurements)
    z3_style: str = "disjunction"    # ReLU encoding for Z3: 'disjunction', 'bigm' or 'ite' (encode.STYLES)
    branching: str = "intercept"     # ReLU BaB: 'intercept' (bound loss) or 'area' (earliest layer)
    reuse_parent_bounds: bool = True # input BaB: children start from the parent's bounds
    bounds_method: str = "backward"  # intermediate bounds: 'backward' (DeepPoly/CROWN) or 'forward' (symbolic intervals)
    engine: str = "torch"            # input-split BaB: 'torch' (batched, soundly rounded CROWN + alpha-CROWN,
                                     # verify/ibab.py) or 'numpy' (the earlier engine, bounds.py)
    device: str = "cpu"              # torch device: 'cpu' or 'cuda' (same code path)
    torch_batch: int = 1024          # boxes bounded per torch call
    bound_dtype: str = "float32"     # torch bounds in float32 where the net's weights are exact float32s
                                     # (tbounds.net; about 2x faster on CPU), else float64
    alpha_iters: int = 4             # alpha-CROWN steps for boxes CROWN leaves open (0: CROWN only)
    pgd_boxes_torch: int = 16        # per round: short PGD in this many of the most promising boxes
    pgd_steps_bab: int = 8
    split_coefs: str = "sum"         # input split dimension from the 'crown' or the 'alpha' bound's coefficients,
                                     # or 'both' (each normalised, summed), or 'sum' (unnormalised), or
                                     # 'lookahead': the dimension whose halves bound best (verify/isplit.py;
                                     # 'sum' breaks ties)
    split_portfolio: tuple = ()      # input BaB: split rules taking turns in CPU-time slices, each
                                     # restarting from the root (empty: split_coefs only). Off since the
                                     # sliver guard: 'sum' alone answers the same 185 of 186 ACAS Xu
                                     # instances in 244 s of CPU, the ('lookahead', 'sum') turns in 432 s
    portfolio_slice_s: float = 3.0   # ... each for this long, doubled after every full turn
    sliver_ratio: float = 32.0       # input split rules: a dimension this much narrower (relative to the
                                     # root box) than the box's widest is not split (verify/isplit.py)
    torch_threads: int = 1           # torch CPU threads (0: leave torch's default)
    ibab_pgd_starts: int = 2048      # few-input nets: batched PGD starts on the whole box before BaB
    root_pgd_rounds: int = 2         # many-input nets: rounds of batched PGD on the whole box ...
    root_pgd_starts: int = 256       # ... from this many random starts ...
    root_pgd_steps: int = 100        # ... of this many steps
    root_alpha_iters: int = 60       # alpha-CROWN steps on the whole box
    root_alpha_pre_iters: int = 20   # ... and per hidden layer for its pre-activation bounds (0: CROWN's)
    relu_engine: str = "torch"       # wide nets' ReLU-split BaB: 'torch' (beta-CROWN, verify/rbab.py, soundly
                                     # rounded) or 'numpy' (solver._relu_bab: Z3 leaves, 1e-9 padding)
    relu_batch: int = 256            # ReLU-split domains bounded per torch call
    relu_beta_iters: int = 20        # alpha/beta optimisation steps per batch of domains
    relu_domain_pgd: int = 32        # ... and PGD inside this many of the most promising split domains per round
    relu_refresh_bounds: bool = True # ... and intermediate bounds recomputed under the splits' clamps
    relu_warm_start: bool = True     # ... split domains start from their parent's bounds, slopes and
                                     # multipliers (rbab.DomainPool); False: from the root's, CROWN's, zero
    relu_per_row: bool = True        # ... each (domain, property row) optimised as its own item, refuted
                                     # rows leaving the batch (tbounds.alpha.alpha_rows per_row)
    recheck_leaves: bool = False     # after 'unsat': bound every closed leaf again from scratch




def validate(net, x, lo, hi, terms, strict=False):
    """True iff x is in [lo, hi] and some term holds for the float64 and the float32 network."""
    if x is None:
        return False
    x = np.asarray(x, dtype=np.float64)
    if x.shape != lo.shape or not np.all(np.isfinite(x)) or np.any(x < lo) or np.any(x > hi):
        return False
    for y in (net.forward(x), net.forward32(x).astype(np.float64)):
        ok = False
        for term in terms:
            C, d = term
            v = C @ y - d
            row_strict = strict | getattr(term, "strict", False)  # VNN-LIB '<' rows (vnnlib.Term)
            if np.all(np.where(row_strict, v < 0, v <= 0)):
                ok = True
                break
        if not ok:
            return False
    return True


def _stack(terms):
    if not terms:
        return np.zeros((0, 0)), np.zeros(0), []
    rows = np.vstack([C for C, _ in terms])
    rhs = np.concatenate([d for _, d in terms])
    idx, k = [], 0
    for C, _ in terms:
        idx.append(np.arange(k, k + C.shape[0]))
        k += C.shape[0]
    return rows, rhs, idx


def _open_terms(lower, rhs, idx):
    """(B, T) bool: term t not refuted on box b."""
    refuted_rows = lower > rhs[None, :]
    return np.stack([~refuted_rows[:, ix].any(axis=1) for ix in idx], axis=1)


class _Search:
    def __init__(self, net, lo, hi, terms, deadline, strict, opts, rng):
        self.net, self.lo, self.hi, self.terms = net, lo, hi, terms
        self.deadline, self.strict, self.opts, self.rng = deadline, strict, opts, rng
        self.rows, self.rhs, self.idx = _stack(terms)
        self.stats = {"domains": 0, "z3_leaves": 0, "z3_unknown": 0, "max_depth": 0}
        self.out_scale = 1.0
        self.t_start = time.monotonic()
        self.pgd_rounds_done = set()  # input BaB: whole-box PGD rounds already run for this case

    def left(self):
        return self.deadline - time.monotonic()

    def try_point(self, x, lo, hi):
        """Validate a candidate; if it is only a boundary point, polish it with PGD."""
        if validate(self.net, x, self.lo, self.hi, self.terms, self.strict):
            return x
        terms = self._margin_terms()
        bx, bv = attack(self.net, lo, hi, terms, rng=self.rng, n_random=32, n_starts=4,
                        steps=30, extra_starts=x[None] if x is not None else None,
                        deadline=self.deadline)
        if validate(self.net, bx, self.lo, self.hi, self.terms, self.strict):
            return bx
        return None

    def _margin_terms(self, tau=None):
        tau = 1e-7 * self.out_scale if tau is None else tau
        return [(C, d - tau) for C, d in self.terms]

    def z3_leaf(self, lo, hi, pre):
        """Exact check of one domain. Returns 'sat' with point, 'unsat' or 'unknown'."""
        self.stats["z3_leaves"] += 1
        budget = min(self.opts.leaf_timeout_s, max(0.05, self.left()))
        pre1 = [(l, u) for l, u in pre]
        st, x = encode.solve(self.net, lo, hi, pre1, self.terms, budget, style=self.opts.z3_style)
        if st == "sat":
            good = self.try_point(x, lo, hi)
            if good is not None:
                return "sat", good
            # only a tie / sub-float violation was found here: ask for a real margin
            st2, x2 = encode.solve(self.net, lo, hi, pre1, self.terms, max(0.05, min(budget, self.left())),
                                   extra_margin=1e-7 * self.out_scale, style=self.opts.z3_style)
            if st2 == "sat":
                good = self.try_point(x2, lo, hi)
                if good is not None:
                    return "sat", good
            self.stats["boundary_only"] = self.stats.get("boundary_only", 0) + 1
            return "unknown", None
        if st == "unknown":
            self.stats["z3_unknown"] += 1
        return st, None


def solve_case(net, lo, hi, terms, timeout_s=60.0, strict=False, opts=None, rng=None, deadline=None):
    opts = opts or Options()
    rng = np.random.default_rng(0) if rng is None else rng
    t0 = time.monotonic()
    deadline = t0 + timeout_s if deadline is None else deadline
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    if lo.shape != (net.n_inputs,) or hi.shape != lo.shape:
        raise VerifyInputError(f"the box has {lo.shape} / {hi.shape} bounds but the network takes {net.n_inputs} inputs")
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise VerifyInputError("the input box contains NaN or infinite bounds; give finite bounds")
    if np.any(lo > hi):
        raise VerifyInputError("the input box is empty (a lower bound is above its upper bound)")
    if not terms:  # no output term can hold (e.g. one output: the decision cannot change)
        return CaseResult("unsat", None, {"method": "no output term", "domains": 0})
    S = _Search(net, lo, hi, terms, deadline, strict, opts, rng)
    y0 = net.forward((lo + hi) / 2)
    S.out_scale = 1.0 + float(np.abs(y0).max())
    # 1. falsify
    # (wide nets with the torch engine: a light numpy attack; the batched torch PGD follows the root bound)
    light = net.n_inputs > 16 and opts.engine == "torch"
    x, v = attack(net, lo, hi, S._margin_terms() if strict else terms, rng=rng,
                  n_random=1024 if net.n_inputs <= 16 else (64 if light else 256),
                  n_starts=32 if net.n_inputs <= 16 else (8 if light else 16),
                  steps=opts.attack_steps // 3 if light else opts.attack_steps, deadline=deadline)
    S.stats["attack_violation"] = float(v)
    if validate(net, x, lo, hi, terms, strict):
        S.stats["method"] = "attack"
        return CaseResult("sat", x, S.stats)
    # what the bounds say about the whole box (reported with an unknown verdict): per term,
    # the largest lower bound of (C_r y - d_r) over its rows; > 0 means the term is refuted
    r0 = linear_bounds(net, lo[None], hi[None], C=S.rows, method=opts.bounds_method)
    S.stats["root_term_bounds"] = [round(float((r0["lower"][0, ix] - S.rhs[ix]).max()), 6) for ix in S.idx]
    S.stats["root_unstable_relus"] = int(count_unstable(r0["pre"])[0])
    if opts.direct_z3:
        r = linear_bounds(net, lo[None], hi[None], C=S.rows)
        pre = [(l[0], u[0]) for l, u in r["pre"]]
        S.stats["unstable"] = int(count_unstable(r["pre"])[0])
        st, xx = S.z3_leaf(lo, hi, pre)
        S.stats["method"] = "z3"
        return CaseResult(st, xx, S.stats)
    if net.n_inputs <= opts.input_split_max_dims and opts.engine == "torch":
        from .ibab import input_bab_portfolio

        res = input_bab_portfolio(S, opts.device)
    elif net.n_inputs <= opts.input_split_max_dims:
        res = _input_bab(S)
    else:
        root_pre = None
        res = None
        if opts.engine == "torch":
            from .troot import torch_root

            res, root_pre = torch_root(S, opts.device)
            if res is None and opts.relu_engine == "torch":
                from .rbab import relu_bab_torch

                res = relu_bab_torch(S, root_pre, opts.device)
            elif res is None:
                root_pre = [(l[0].double().cpu().numpy(), u[0].double().cpu().numpy()) for l, u in root_pre]
        if res is None:
            res = _relu_bab(S, root_pre)
    res.stats = S.stats
    return res


def _input_bab(S):
    net, opts = S.net, S.opts
    S.stats["method"] = "input-split BaB" + (" + Z3 leaves" if opts.use_z3 else "")
    # best-first: boxes whose bounds are closest to allowing a violation are bounded first
    # (finds counterexamples early; every box must be closed anyway for a proof)
    heap = [(0.0, 0, S.lo, S.hi, 0, None)]  # (score, tie, lo, hi, depth, parent pre-bounds)
    tie = 1
    T = len(S.terms)
    nh = len(net.layers) - 1
    while heap:
        if S.left() <= 0:
            S.stats["open_domains_at_timeout"] = len(heap)
            S.stats["worst_open_gap"] = round(float(heap[0][0]), 6)
            return CaseResult("unknown", None, S.stats)
        batch = [heapq.heappop(heap) for _ in range(min(opts.batch, len(heap)))]
        L = np.stack([b[2] for b in batch])
        H = np.stack([b[3] for b in batch])
        depth = [b[4] for b in batch]
        S.stats["domains"] += len(L)
        pre_par = None
        if opts.reuse_parent_bounds and all(b[5] is not None for b in batch):
            pre_par = [(np.stack([b[5][k][0] for b in batch]), np.stack([b[5][k][1] for b in batch]))
                       for k in range(nh)]
        r = linear_bounds(net, L, H, C=S.rows, method=opts.bounds_method, pre=pre_par)
        open_ = _open_terms(r["lower"], S.rhs, S.idx)
        alive = np.flatnonzero(open_.any(axis=1))
        if alive.size == 0:
            continue
        LL = r["LL"]
        gap = r["lower"] - S.rhs[None, :]
        # candidate points, all boxes at once: centres and, per open term, the minimiser of
        # the lower bound of its hardest row
        cands = [(L[alive] + H[alive]) / 2]
        for t in range(T):
            rows = S.idx[t]
            rr = rows[np.argmax(gap[alive][:, rows], axis=1)]
            coef = LL[alive, rr]
            cands.append(np.where(coef > 0, L[alive], H[alive]))
        P = np.concatenate(cands)
        vv, _ = violation(net.forward(P), S.terms)
        for j in np.flatnonzero(vv <= 0)[:8]:
            bi = alive[j % alive.size]
            good = S.try_point(P[j], L[bi], H[bi])
            if good is not None:
                return CaseResult("sat", good, S.stats)
        # a short PGD inside the few most promising boxes (finds violations the bounds point at)
        for j in np.argsort(vv)[: opts.pgd_boxes]:
            bi = alive[j % alive.size]
            x, v = attack(net, L[bi], H[bi], S._margin_terms() if S.strict else S.terms, rng=S.rng,
                          n_random=16, n_starts=2, steps=12, extra_starts=P[j][None])
            if v <= 0:
                good = S.try_point(x, L[bi], H[bi])
                if good is not None:
                    S.stats["found_by"] = "PGD in a BaB box"
                    return CaseResult("sat", good, S.stats)
        unstable = count_unstable(r["pre"], len(L))
        for bi in alive:
            lo, hi = L[bi], H[bi]
            if opts.use_z3 and unstable[bi] <= opts.leaf_unstable and depth[bi] >= opts.leaf_min_depth:
                pre = [(l[bi], u[bi]) for l, u in r["pre"]]
                st, x = S.z3_leaf(lo, hi, pre)
                if st == "sat":
                    return CaseResult("sat", x, S.stats)
                if st == "unsat":
                    continue
            # split the input dimension with the largest influence on the open rows
            open_rows = np.concatenate([S.idx[t] for t in np.flatnonzero(open_[bi])])
            w = hi - lo
            score = np.abs(LL[bi, open_rows]).sum(axis=0) * w
            if not np.any(score > 0):
                score = w
            d = int(np.argmax(score))
            if w[d] <= 1e-12 * (1 + abs(lo[d])):
                S.stats["too_small"] = S.stats.get("too_small", 0) + 1
                return CaseResult("unknown", None, S.stats)
            mid = lo[d] + w[d] / 2
            h1 = hi.copy(); h1[d] = mid
            l2 = lo.copy(); l2[d] = mid
            S.stats["max_depth"] = max(S.stats["max_depth"], depth[bi] + 1)
            # score: for the most promising open term, how far its hardest row is from holding
            score = min(float(gap[bi, S.idx[t]].max()) for t in np.flatnonzero(open_[bi]))
            par = [(l_[bi], u_[bi]) for l_, u_ in r["pre"]]
            heapq.heappush(heap, (score, tie, lo, h1, depth[bi] + 1, par))
            heapq.heappush(heap, (score, tie + 1, l2, hi, depth[bi] + 1, par))
            tie += 2
    return CaseResult("unsat", None, S.stats)


def _relu_bab(S, root_pre=None):
    net, opts = S.net, S.opts
    use_z3 = opts.use_z3 and net.n_inputs <= opts.z3_max_inputs
    S.stats["method"] = "ReLU-split BaB" + (" + Z3 leaves" if use_z3 else "")
    unresolved = 0
    nh = len(net.layers) - 1
    sizes = [W.shape[0] for W, _ in net.layers[:-1]]
    root = tuple(np.zeros(n, dtype=np.int8) for n in sizes)
    # (priority, tie, splits, parent pre-bounds, layer of newest split); root_pre: sound bounds
    # from the torch engine, intersected into every domain's bounds
    heap = [(0.0, 0, root, root_pre, 0)]
    tie = 1
    lo1, hi1 = S.lo[None], S.hi[None]
    while heap:
        if S.left() <= 0:
            S.stats["open_domains_at_timeout"] = len(heap)
            return CaseResult("unknown", None, S.stats)
        batch = [heapq.heappop(heap) for _ in range(min(opts.batch, len(heap)))]
        B = len(batch)
        S.stats["domains"] += B
        splits = [np.stack([b[2][k] for b in batch]) for k in range(nh)]
        pre_par = None
        if all(b[3] is not None for b in batch):
            pre_par = [(np.stack([b[3][k][0] for b in batch]), np.stack([b[3][k][1] for b in batch]))
                       for k in range(nh)]
        # layers below the newest split of every domain in the batch keep the parents' bounds
        reuse = min(b[4] for b in batch) if pre_par is not None else 0
        r = linear_bounds(net, np.repeat(lo1, B, 0), np.repeat(hi1, B, 0), C=S.rows, method=opts.bounds_method,
                          splits=splits, pre=pre_par, reuse_upto=reuse)
        open_ = _open_terms(r["lower"], S.rhs, S.idx)
        unstable = count_unstable(r["pre"], B)
        gap = r["lower"] - S.rhs[None, :]
        for bi in np.flatnonzero(open_.any(axis=1)):
            pre = [(l[bi], u[bi]) for l, u in r["pre"]]
            # a point that the lower bound points at may already be a counterexample
            for t in np.flatnonzero(open_[bi]):
                rows = S.idx[t]
                rr = rows[int(np.argmax(gap[bi, rows]))]
                cand = np.where(r["LL"][bi, rr] > 0, S.lo, S.hi)
                if validate(net, cand, S.lo, S.hi, S.terms, S.strict):
                    return CaseResult("sat", cand, S.stats)
            if use_z3 and unstable[bi] <= opts.relu_leaf_unstable:
                st, x = S.z3_leaf(S.lo, S.hi, pre)
                if st == "sat":
                    return CaseResult("sat", x, S.stats)
                if st == "unsat":
                    continue
            # choose a neuron: the unstable ReLU whose triangle costs the spec's lower bounds most
            # (intercept score, in the spirit of BaBSR), else earliest layer / largest triangle
            choice = None
            if opts.branching == "intercept":
                best = 0.0
                for k, (l, u) in enumerate(pre):
                    unst = (l < 0) & (u > 0)
                    if unst.any():
                        sc = np.where(unst, r["relu_loss"][k][bi], -1.0)
                        j = int(np.argmax(sc))
                        if sc[j] > best:
                            best, choice = sc[j], (k, j)
            if choice is None:
                for k, (l, u) in enumerate(pre):
                    unst = (l < 0) & (u > 0)
                    if unst.any():
                        area = np.where(unst, u * (-l) / np.where(unst, u - l, 1.0), -1.0)
                        choice = (k, int(np.argmax(area)))
                        break
            if choice is None:
                # every ReLU is fixed here but the bounds (which ignore the split constraints)
                # cannot refute the domain: it needs an LP that only Z3 can give exactly
                if use_z3:
                    st, x = S.z3_leaf(S.lo, S.hi, pre)
                    if st == "sat":
                        return CaseResult("sat", x, S.stats)
                    if st == "unsat":
                        continue
                unresolved += 1
                S.stats["unresolved_domains"] = unresolved
                continue
            k, j = choice
            depth = int(sum(np.count_nonzero(s[bi]) for s in splits)) + 1
            S.stats["max_depth"] = max(S.stats["max_depth"], depth)
            prio = float(gap[bi].max())  # least refuted (most likely to hide a counterexample) first
            for sign in (1, -1):
                child = tuple(s[bi].copy() for s in splits)
                child[k][j] = sign
                heapq.heappush(heap, (prio, tie, child, pre, k + 1))
                tie += 1
    return CaseResult("unknown" if unresolved else "unsat", None, S.stats)
