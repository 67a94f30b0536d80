"""Exact Z3 encoding of a ReLU network over a box (linear real arithmetic).

Only what bound propagation could not settle is given to Z3 as a case split: a
neuron whose pre-activation bounds are ``l >= 0`` is the identity (``a = z``), one
with ``u <= 0`` is the constant 0 and disappears from the next layer, and only an
unstable neuron (``l < 0 < u``) gets ``a >= 0, a >= z, a <= u (z - l) / (u - l)``
(the triangle, which is what the simplex core uses to prune) and the one disjunction
``a <= z or a <= 0`` that makes it exact. Weights enter as exact rationals of their
float64 values, so the real-valued network is encoded without rounding. The known
bounds are asserted too (padded outward; see ``bounds.PAD``).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np


def _q(v):
    import z3

    f = Fraction(float(v))
    return z3.RealVal(f"{f.numerator}/{f.denominator}") if f.denominator != 1 else z3.RealVal(f.numerator)


def _lin(coefs, vars_, const):
    import z3

    terms = [_q(c) * v for c, v in zip(coefs, vars_) if c != 0.0]
    if const != 0.0:
        terms.append(_q(const))
    if not terms:
        return z3.RealVal(0)
    return z3.Sum(terms) if len(terms) > 1 else terms[0]


STYLES = ("disjunction", "bigm", "ite")


def build(net, lo, hi, pre, terms, extra_margin=0.0, style="disjunction"):
    """Return (solver, input vars, n_disjunctions) for: x in [lo, hi] and some term holds.

    pre: list of (l, u) float arrays (1-D) per hidden layer. terms: [(C, d)], a term
    holds when C y <= d - extra_margin for all its rows.
    """
    import z3

    s = z3.SolverFor("QF_LRA")
    xs = [z3.Real(f"x{i}") for i in range(net.n_inputs)]
    for i, x in enumerate(xs):
        if lo[i] == hi[i]:
            s.add(x == _q(lo[i]))
        else:
            s.add(x >= _q(lo[i]), x <= _q(hi[i]))
    prev = list(xs)  # expressions (or None for a constant-zero neuron)
    n_disj = 0
    for k, (W, b) in enumerate(net.layers[:-1]):
        l, u = pre[k]
        cur = []
        keep = [i for i, p in enumerate(prev) if p is not None]
        pv = [prev[i] for i in keep]
        for j in range(W.shape[0]):
            if u[j] <= 0:
                cur.append(None)
                continue
            z = _lin(W[j, keep], pv, b[j])
            a = z3.Real(f"a{k}_{j}")
            if l[j] >= 0:
                s.add(a == z)
                s.add(a >= _q(l[j]), a <= _q(u[j]))
            else:
                zv = z3.Real(f"z{k}_{j}")
                s.add(zv == z, zv >= _q(l[j]), zv <= _q(u[j]))
                if style == "ite":  # a = If(z >= 0, z, 0), nothing else
                    s.add(a == z3.If(zv >= 0, zv, z3.RealVal(0)))
                elif style == "bigm":  # MILP-style: one Bool per ReLU, a <= u d, a <= z - l (1 - d)
                    dlt = z3.Bool(f"d{k}_{j}")
                    s.add(a >= 0, a >= zv)
                    s.add(a <= z3.If(dlt, _q(u[j]), z3.RealVal(0)))
                    s.add(a <= zv - z3.If(dlt, z3.RealVal(0), _q(l[j])))
                else:  # triangle + one disjunction
                    s.add(a >= 0, a >= zv)
                    slope = u[j] / (u[j] - l[j])
                    s.add(a <= _q(slope) * (zv - _q(l[j])) + _q(1e-9 * (1 + u[j])))
                    s.add(z3.Or(a <= zv, a <= 0))
                n_disj += 1
            cur.append(a)
        prev = cur
    W, b = net.layers[-1]
    keep = [i for i, p in enumerate(prev) if p is not None]
    pv = [prev[i] for i in keep]
    ys = [z3.Real(f"y{j}") for j in range(W.shape[0])]
    for j in range(W.shape[0]):
        s.add(ys[j] == _lin(W[j, keep], pv, b[j]))
    disj = []
    for term in terms:
        C, d = term
        strict = getattr(term, "strict", np.zeros(C.shape[0], bool))  # VNN-LIB '<' rows stay strict
        conj = [(_lin(C[r], ys, 0.0) < _q(d[r] - extra_margin)) if strict[r] else
                (_lin(C[r], ys, 0.0) <= _q(d[r] - extra_margin)) for r in range(C.shape[0])]
        disj.append(z3.And(conj) if len(conj) > 1 else conj[0])
    s.add(z3.Or(disj) if len(disj) > 1 else disj[0])
    return s, xs, n_disj


def solve(net, lo, hi, pre, terms, timeout_s, extra_margin=0.0, style="disjunction"):
    """('sat', x) / ('unsat', None) / ('unknown', None)."""
    import z3

    s, xs, _ = build(net, lo, hi, pre, terms, extra_margin, style)
    s.set("timeout", max(1, int(timeout_s * 1000)))
    r = s.check()
    if r == z3.sat:
        m = s.model()
        x = np.empty(len(xs))
        for i, v in enumerate(xs):
            val = m.eval(v, model_completion=True)
            x[i] = float(Fraction(val.numerator_as_long(), val.denominator_as_long()))
        return "sat", np.clip(x, lo, hi)
    if r == z3.unsat:
        return "unsat", None
    return "unknown", None
