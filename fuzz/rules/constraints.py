"""Input constraints: predicates that hold on every valid call and reject the invalid ones.

Candidates are small comparisons over the signature's symbols (``s == t``, ``s <= t``,
``s < t``, ``s != t``, ``s % t == 0``, broadcast compatibility ``s == t or s == 1 or t == 1``,
``s * t == u``, ``s == t + u``, comparisons with constants, and ``e >= 1`` for each
output expression ``e``). Those true on every valid (training) call of the signature
are kept; then a greedy set cover picks, one at a time, the candidate that rejects the
most not-yet-rejected invalid calls (ties: relations between symbols before
comparisons with constants, then the smaller predicate).

Finally the *domain* is added so that the generator's solver is well-posed: every dim
>= 1, every integer argument within its observed valid range, every divisor >= 1,
every output dim >= 1 (each only where it holds on the valid calls).
"""

from __future__ import annotations

import json
from itertools import combinations

import numpy as np

from fuzz.ir import dsl
from fuzz.ir.dsl import divisors_of, eval_vec
from fuzz.rules.groups import symbol_matrix, symbol_names

MAX_PAIR_SYMBOLS = 40
MAX_TRIPLE_SYMBOLS = 10
MAX_INT_TRIPLE = 8


def _holds(pred, syms, n) -> np.ndarray | None:
    if n == 0:
        return np.zeros(0, dtype=bool)
    with np.errstate(all="ignore"):
        v = eval_vec(pred, syms, n)
    if v is None:
        # undefined somewhere (x // 0): evaluate row by row, undefined = does not hold
        out = np.zeros(n, dtype=bool)
        for r in range(n):
            env = {k: int(a[r]) for k, a in syms.items()}
            out[r] = dsl.holds([pred], env)
        return out
    return v.astype(bool)


def _candidates(names, dims, ints, vsyms, isyms, outputs):
    """Yield (predicate, uses_constant) candidates."""
    for s in ints:
        vals = vsyms[s]
        bad = sorted(set(isyms[s].tolist()) - set(vals.tolist())) if s in isyms else []
        for c in bad[:4]:
            yield ["!=", s, c], True
        yield [">=", s, 0], True
        yield [">=", s, 1], True
        yield [">=", s, -1], True
        yield [">=", s, int(vals.min())], True
        yield ["<=", s, int(vals.max())], True
        yield ["!=", s, 0], True
    for s in dims:
        vals = vsyms[s]
        yield [">=", s, 2], True
        yield [">=", s, int(vals.min())], True
        yield ["<=", s, int(vals.max())], True
        yield ["==", s, 1], True
    pair_names = names[:MAX_PAIR_SYMBOLS]
    for s, t in combinations(pair_names, 2):
        yield ["==", s, t], False
        yield ["<=", s, t], False
        yield ["<", s, t], False
        yield [">=", s, t], False
        yield [">", s, t], False
        yield ["!=", s, t], False
        yield ["==", ["%", s, t], 0], False
        yield ["==", ["%", t, s], 0], False
        if s in dims and t in dims:
            yield ["or", ["==", s, t], ["==", s, 1], ["==", t, 1]], False
    trip = names[:MAX_TRIPLE_SYMBOLS]
    for s, t in combinations(trip, 2):
        for u in trip:
            if u in (s, t):
                continue
            yield ["==", ["*", s, t], u], False
            yield ["==", ["+", s, t], u], False
    # An int argument relating two dims (conv groups: in channels == weight channels * groups) or
    # bounding one (an index below a dim, a negative index at least -dim, a padding at most half a
    # dim), and dims scaled or shifted against each other. Filtered here on the valid calls
    # (cheap vector tests) so that the candidate count stays small.
    V = vsyms
    small_dims = dims[:2 * MAX_TRIPLE_SYMBOLS]
    for a in ints[:MAX_INT_TRIPLE]:
        va = V[a]
        for s in dims[:MAX_PAIR_SYMBOLS]:
            vs = V[s]
            if (va < vs).all():
                yield ["<", a, s], False
            if (2 * va <= vs).all():
                yield ["<=", ["*", 2, a], s], False
            if (vs + va >= 0).all():
                yield [">=", ["+", s, a], 0], False
            if (vs + va > 0).all():
                yield [">", ["+", s, a], 0], False
            if s in small_dims:
                for u in small_dims:
                    if u != s and (vs * va == V[u]).all():
                        yield ["==", ["*", s, a], u], False
    for s, t in combinations(small_dims, 2):
        for x, y in ((s, t), (t, s)):
            if (2 * V[x] <= V[y]).all():
                yield ["<=", ["*", 2, x], y], False
            if (V[x] <= V[y] + 1).all():
                yield ["<=", x, ["+", y, 1]], False
    for out in outputs:
        for e in out:
            if isinstance(e, list):
                yield [">=", e, 1], False
                yield [">=", e, 0], False
    # numel relations (reshape/view/expand-like): products of whole shapes.
    ranks = {}
    for d in dims:
        i, j = d[1:].split("_")
        ranks[int(i)] = max(ranks.get(int(i), 0), int(j) + 1)
    numels = [product([f"x{i}_{j}" for j in range(r)]) for i, r in sorted(ranks.items()) if r >= 1]
    for a, b in combinations(numels, 2):
        yield ["==", a, b], False
    if ints and len(ints) <= 8:
        all_ints = product(ints)
        for a in numels:
            yield ["==", a, all_ints], False
            for s in ints:
                yield ["==", ["%", a, s], 0], False
    for out in outputs:
        if out:
            for a in numels:
                yield ["==", a, product(out)], False


def product(factors):
    expr = factors[0]
    for f in factors[1:]:
        expr = ["*", expr, f]
    return expr


def _prior(dims, ranks, vsyms, nv):
    """Relations between dims of different tensors that every valid call satisfies and that are
    rarely a coincidence: broadcast compatibility of dims aligned from the end, and equality of
    other dims where the dim took at least two values. Refinement adds them once torch has shown that the
    cover left the constraints too loose (see refine.py); alone they reject no recorded call."""
    out = []
    by_tensor = {}
    for d in dims:
        i, j = (int(v) for v in d[1:].split("_"))
        by_tensor.setdefault(i, []).append(j)
    tensors = sorted(by_tensor)
    parent = {d: d for d in dims}

    def root(d):
        while parent[d] != d:
            d = parent[d]
        return d

    for a, b in combinations(tensors, 2):
        ra, rb = ranks[a], ranks[b]
        for ja in range(ra):
            for jb in range(rb):
                s, t = f"x{a}_{ja}", f"x{b}_{jb}"
                if ra - ja == rb - jb:
                    pred = ["or", ["==", s, t], ["==", s, 1], ["==", t, 1]]
                    if _holds(pred, vsyms, nv).all():
                        out.append(pred)
                    continue
                if len(set(vsyms[s].tolist())) >= 2 and (vsyms[s] == vsyms[t]).all() and root(s) != root(t):
                    parent[root(s)] = root(t)  # equalities implied by earlier ones are left out
                    out.append(["==", s, t])
    return out


def infer_constraints(group, outputs, prior: bool = False):
    """(constraints, stats) for a group whose output expressions are known.

    ``prior``: also keep ``_prior``'s relations (refinement's second and later rounds)."""

    names = symbol_names(group.ranks, group.n_ints)
    dims = [n for n in names if n.startswith("x")]
    ints = [n for n in names if n.startswith("a")]
    valid = [c for c in group.valid if all(d >= 1 for s in c.shapes for d in s)]
    dims_positive = bool(valid)
    if not valid:
        valid = list(group.valid)
    vsyms = symbol_matrix(valid, group.ranks, group.n_ints)
    invalid = list(group.invalid)
    isyms = symbol_matrix(invalid, group.ranks, group.n_ints)
    nv, ni = len(valid), len(invalid)

    chosen: list = _prior(dims, group.ranks, vsyms, nv) if prior and nv else []
    if ni:
        cands = []
        seen = set()
        for pred, const in _candidates(names, dims, ints, vsyms, isyms, outputs):
            text = json.dumps(pred)
            if text in seen:
                continue
            seen.add(text)
            if not _holds(pred, vsyms, nv).all():
                continue
            rej = ~_holds(pred, isyms, ni)
            if rej.any():
                cands.append((pred, const, rej))
        covered = np.zeros(ni, dtype=bool)
        for pred in chosen:
            covered |= ~_holds(pred, isyms, ni)
        cands = [c for c in cands if (c[2] & ~covered).any()]
        while cands:
            best = None
            for pred, const, rej in cands:
                gain = int((rej & ~covered).sum())
                if gain == 0:
                    continue
                score = (gain, not const, -dsl.size(pred))
                if best is None or score > best[0]:
                    best = (score, pred)
            if best is None:
                break
            chosen.append(best[1])
            covered |= _holds(best[1], isyms, ni) == False  # noqa: E712
            cands = [c for c in cands if (c[2] & ~covered).any()]

    domain: list = []
    if dims_positive:
        domain += [[">=", d, 1] for d in dims]
    else:
        domain += [[">=", d, 0] for d in dims]
    for s in ints:
        domain.append([">=", s, int(vsyms[s].min())])
        domain.append(["<=", s, int(vsyms[s].max())])
    for out in outputs:
        for e in out:
            for div in divisors_of(e):
                if not isinstance(div, int):  # a literal divisor (// 2) needs no guard
                    domain.append([">=", div, 1])
            if isinstance(e, list):
                domain.append([">=", e, 1])
    result = []
    seen = set()
    for pred in chosen + domain:
        text = json.dumps(pred)
        if text in seen:
            continue
        if pred in domain and pred not in chosen and not _holds(pred, vsyms, nv).all():
            continue
        seen.add(text)
        result.append(pred)
    stats = {"learned_constraints": len(chosen)}
    if ni:
        rej_all = ~np.ones(ni, dtype=bool)
        for pred in result:
            rej_all |= ~_holds(pred, isyms, ni)
        stats["train_invalid_rejected"] = int(rej_all.sum())
    return result, stats
