"""Shape idioms: parametrised expression families the generic search is too small to reach.

The bottom-up search (``fuzz.rules.synth``) finds expressions of up to about 11 nodes. The
output size of a sliding window,

    out = (x + P - D*(K - 1) - 1 + C) // S + 1        (conv, pooling, unfold; C = S - 1 in ceil mode)

is 13 nodes and more, so on a handful of records the search settles for a smaller expression
that happens to agree with them (``x - x // a2``) and is wrong on the next call. The idioms here
are tried after the cheapest search level and before the larger ones: each is a family with
holes, the holes range over the signature's symbols (``P`` over ``0``, ``a``, ``2*a``; ``D``
over ``1`` and the int args; ``K`` over the int args and the dims of other inputs; ``S`` over
``1``, the int args and ``K``), and an instance is kept only if it equals the target on every
record. Holes are filled by vectorised interval tests (floor division turns the equation into
``lo <= Q < hi`` on the unknown part ``Q = P - D*(K-1)``), never by a loop over instances.

- ``window``: the forward rule above.
- ``transposed``: ``out = (x - 1)*S - P + D*(K - 1) + O + 1`` (transposed convolution; ``O`` the
  output padding, over ``0`` and the int args) -- a hash look-up of the residual.

Holes for ``P``, ``D``, ``K``, ``S`` take only values that are non-negative (``P``) or positive
(the others) on every record, which keeps reductions' ``dim`` arguments (often negative) out.
"""

from __future__ import annotations

import numpy as np

from fuzz.ir.dsl import eval_vec, size

MAX_ROWS = 200_000   # instances of the unknown part held at once
# Constants the holes also range over: a call's padding, dilation, kernel size or stride is often
# a literal of the template (an int the trace never varied, specialised away), not an int arg.
CONST_PADS = (1, 2, 3, 4, 5, 6, 8)   # P = 2 * padding (or one side's padding)
CONST_FACTORS = (2, 3, 4, 5)          # D, K, S


def _terms(symbols: dict[str, np.ndarray], names: list[str], positive: bool):
    out = []
    seen = set()
    for name in names:
        v = symbols[name]
        if (v >= 1).all() if positive else (v >= 0).all():
            key = v.tobytes()
            if key not in seen:
                seen.add(key)
                out.append((name, v))
    return out


def _padding(ints, n):
    """(expr, vector) for P: 0, a, 2*a, then the constants ``CONST_PADS``."""
    out = [(0, np.zeros(n, dtype=np.int64))]
    for name, v in ints:
        out.append((name, v))
        out.append((["*", 2, name], 2 * v))
    return out + _constants(CONST_PADS, n)


def _constants(values, n):
    return [(c, np.full(n, c, dtype=np.int64)) for c in values]


def _plus(a, b):
    if b == 0:
        return a
    if a == 0:
        return b
    return ["+", a, b]


def _minus(a, b):
    return a if b == 0 else ["-", a, b]


def _kernel_term(d, k):
    """D*(K-1) as an expression (``K - 1`` when D is 1)."""
    km1 = ["-", k, 1]
    return km1 if d == 1 else ["*", d, km1]


def window(symbols: dict[str, np.ndarray], target: np.ndarray, budget):
    """The smallest ``(x + P - D*(K-1) - 1 + C) // S + 1`` equal to target, or None."""
    n = len(target)
    dims = [s for s in symbols if s.startswith("x")]
    ints = _terms(symbols, [s for s in symbols if s.startswith("a")], positive=False)
    pos_ints = [(a, v) for a, v in ints if (v >= 1).all()]
    if (target < 0).any() or not (pos_ints or dims):
        return None
    pads = _padding(ints, n)
    dils = [(1, np.ones(n, dtype=np.int64))] + pos_ints + _constants(CONST_FACTORS, n)
    kernels = pos_ints + [(name, v) for name, v in _terms(symbols, dims, positive=True)] + _constants(CONST_FACTORS, n)
    strides = [(1, np.ones(n, dtype=np.int64))] + pos_ints + _constants(CONST_FACTORS, n)
    # Q = P - D*(K-1), one row per (P, D, K).
    rows, labels = [], []
    for ki, (k, kv) in enumerate(kernels):
        for d, dv in dils:
            kt = dv * (kv - 1)
            for p, pv in pads:
                rows.append(pv - kt)
                labels.append((p, d, k, ki))
    if not rows or len(rows) > MAX_ROWS:
        return None
    q = np.vstack(rows)
    kidx = np.array([lab[3] for lab in labels])
    best = None
    tm1 = target - 1
    for xname, xv in _terms(symbols, dims, positive=True):
        for s_tied in (False, True):
            for s, sv in ([(None, None)] if s_tied else strides):
                if budget.over():
                    return best[1] if best else None
                if s_tied:
                    # S = K: the stride defaults to the kernel size (pooling without a stride)
                    svec = np.vstack([kernels[i][1] for i in kidx])
                else:
                    svec = sv
                for ceil in (False, True):
                    c = (svec - 1) if ceil else 0
                    lo = tm1 * svec - xv + 1 - c
                    hi = lo + svec  # exclusive
                    ok = np.all((q >= lo) & (q < hi), axis=1)
                    for r in np.nonzero(ok)[0]:
                        p, d, k, _ = labels[r]
                        sname = k if s_tied else s
                        if sname == 1 and ceil:
                            continue
                        w = _minus(_plus(xname, p), _kernel_term(d, k))
                        w = _plus(w, ["-", sname, 1]) if ceil else w
                        w = ["-", w, 1]
                        e = ["+", w, 1] if sname == 1 else ["+", ["//", w, sname], 1]
                        e = _tidy(e)
                        sz = size(e)
                        if best is None or sz < best[0]:
                            best = (sz, e)
    return best[1] if best else None


def transposed(symbols: dict[str, np.ndarray], target: np.ndarray, budget):
    """The smallest ``(x - 1)*S - P + D*(K-1) + O + 1`` equal to target, or None."""
    n = len(target)
    dims = [s for s in symbols if s.startswith("x")]
    ints = _terms(symbols, [s for s in symbols if s.startswith("a")], positive=False)
    pos_ints = [(a, v) for a, v in ints if (v >= 1).all()]
    if not (pos_ints or dims):
        return None
    pads = _padding(ints, n)
    dils = [(1, np.ones(n, dtype=np.int64))] + pos_ints + _constants(CONST_FACTORS, n)
    kernels = pos_ints + _terms(symbols, dims, positive=True) + _constants(CONST_FACTORS, n)
    outpads = [(0, np.zeros(n, dtype=np.int64))] + ints + _constants((1, 2), n)
    strides = [(1, np.ones(n, dtype=np.int64))] + pos_ints + _constants(CONST_FACTORS, n)
    if len(pads) * len(dils) * len(kernels) * len(outpads) > MAX_ROWS:
        return None
    table: dict[bytes, tuple] = {}
    for k, kv in kernels:
        for d, dv in dils:
            kt = dv * (kv - 1)
            for p, pv in pads:
                for o, ov in outpads:
                    key = (kt - pv + ov).tobytes()
                    cand = (p, d, k, o)
                    if key not in table or _hole_cost(cand) < _hole_cost(table[key]):
                        table[key] = cand
        if budget.over():
            return None
    best = None
    for xname, xv in _terms(symbols, dims, positive=True):
        for s, sv in strides:
            resid = target - 1 - (xv - 1) * sv
            cand = table.get(resid.astype(np.int64).tobytes())
            if cand is None:
                continue
            e = _tidy(_transposed_expr(xname, s, *cand))
            sz = size(e)
            if best is None or sz < best[0]:
                best = (sz, e)
    return best[1] if best else None


def _hole_cost(cand) -> int:
    """Nodes the filled holes add to the transposed template (for ties: the smaller wins)."""
    p, d, _k, o = cand
    return (0 if p == 0 else 2 if isinstance(p, str) else 4) + (0 if d == 1 else 2) + (0 if o == 0 else 2)


def _transposed_expr(x, s, p, d, k, o):
    base = ["-", x, 1] if s == 1 else ["*", ["-", x, 1], s]
    e = _minus(base, p)
    e = _plus(e, _kernel_term(d, k))
    e = _plus(e, o)
    return ["+", e, 1]


def _tidy(e):
    """Fold ``(w - 1) + 1`` and ``- 1 + 1`` pairs left by the templates."""
    if isinstance(e, list):
        e = [e[0]] + [_tidy(x) for x in e[1:]]
        if e[0] == "+" and e[2] == 1 and isinstance(e[1], list) and e[1][0] == "-" and e[1][2] == 1:
            return e[1][1]
        if e[0] == "-" and e[2] == 1 and isinstance(e[1], list) and e[1][0] == "-" and isinstance(e[1][2], list) \
                and e[1][2][0] == "-" and e[1][2][2] == 1:
            # (w - (K - 1)) - 1  ->  w - K
            return ["-", e[1][1], e[1][2][1]]
    return e


IDIOMS = (window, transposed)


def solve(symbols: dict[str, np.ndarray], target: np.ndarray, budget):
    """The smallest idiom instance equal to target (checked by evaluation), or None."""
    best = None
    for idiom in IDIOMS:
        e = idiom(symbols, target.astype(np.int64), budget)
        if e is None:
            continue
        v = eval_vec(e, symbols, len(target))
        if v is None or not np.array_equal(v, target):
            continue  # the template and its check disagree: never ship it
        if best is None or size(e) < size(best):
            best = e
    return best
