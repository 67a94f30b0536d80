"""A small VNN-LIB reader: declare-const, assert, <= / >= / and / or over X_i and Y_i.

A property is read into a disjunctive normal form: a list of *cases*, each an input
box ``(lo, hi)`` with a list of output *terms*; a term is ``(C, d)`` meaning the
conjunction of rows ``C @ y <= d``. The property is violated ("sat" in VNN-COMP
terms) iff for some case there is an x in the box and a term with
``C @ f(x) <= d``. Atoms may be linear: ``(+ ...)``, ``(- ...)``, ``(* k v)``; each
atom must mention only inputs (and then only one input, a bound) or only outputs.
"""

from __future__ import annotations

import re

import numpy as np


class VnnlibError(ValueError):
    pass


class Term(tuple):
    """A term ``(C, d)``: the conjunction of rows ``C @ y <= d`` (``< d`` where ``strict``).

    It unpacks like the plain pair ``C, d``; ``strict`` is a bool array, one per row, True
    for a VNN-LIB ``<``/``>`` atom. Proofs treat a strict row as non-strict (proving that
    no x has ``C y <= d`` also proves that none has ``C y < d``); a counterexample must
    satisfy strict rows strictly, in float64 and float32 (``solver.validate``).
    """

    strict: np.ndarray

    def __new__(cls, C, d, strict=None):
        t = tuple.__new__(cls, (C, d))
        t.strict = np.zeros(len(d), bool) if strict is None else np.asarray(strict, bool)
        return t


_TOKEN = re.compile(r"\(|\)|[^\s()]+")


def _parse_sexprs(text: str):
    text = re.sub(r";[^\n]*", "", text)
    stack, top = [], []
    for tok in _TOKEN.findall(text):
        if tok == "(":
            stack.append(top)
            top = []
        elif tok == ")":
            if not stack:
                raise VnnlibError("unbalanced ')'")
            done = top
            top = stack.pop()
            top.append(done)
        else:
            top.append(tok)
    if stack:
        raise VnnlibError("unbalanced '(' (file truncated?)")
    return top


_VAR = re.compile(r"^([XY])_(\d+)$")


def _linear(e, nx, ny):
    """Return (coef_x, coef_y, const) of a linear term."""
    cx, cy = np.zeros(nx), np.zeros(ny)
    if isinstance(e, str):
        m = _VAR.match(e)
        if m:
            i = int(m.group(2))
            if m.group(1) == "X":
                if i >= nx:
                    raise VnnlibError(f"{e} is not declared")
                cx[i] = 1.0
            else:
                if i >= ny:
                    raise VnnlibError(f"{e} is not declared")
                cy[i] = 1.0
            return cx, cy, 0.0
        try:
            v = float(e)
        except ValueError:
            raise VnnlibError(f"unknown symbol {e!r}") from None
        if not np.isfinite(v):
            raise VnnlibError(f"the number {e!r} is not finite; use finite bounds and constants")
        return cx, cy, v
    if not e:
        raise VnnlibError("empty term")
    head, args = e[0], e[1:]
    parts = [_linear(a, nx, ny) for a in args]
    if head == "+":
        return sum(p[0] for p in parts), sum(p[1] for p in parts), sum(p[2] for p in parts)
    if head == "-":
        if len(parts) == 1:
            return -parts[0][0], -parts[0][1], -parts[0][2]
        first = parts[0]
        rest = parts[1:]
        return (first[0] - sum(p[0] for p in rest), first[1] - sum(p[1] for p in rest),
                first[2] - sum(p[2] for p in rest))
    if head == "*":
        consts = [p for p in parts if not p[0].any() and not p[1].any()]
        vars_ = [p for p in parts if p[0].any() or p[1].any()]
        if len(vars_) > 1:
            raise VnnlibError("non-linear product in VNN-LIB term")
        k = float(np.prod([p[2] for p in consts]))
        if not vars_:
            return cx, cy, k
        v = vars_[0]
        return k * v[0], k * v[1], k * v[2]
    raise VnnlibError(f"unsupported operator {head!r} in a term")


class Case(tuple):
    """One input box with its output terms: unpacks as ``lo, hi, terms``.

    ``open_lo`` / ``open_hi`` mark faces excluded by a strict input bound (``X_i > c``):
    the box is closed for proofs; ``inside(x)`` is the strict membership test for
    counterexamples.
    """

    def __new__(cls, lo, hi, terms, open_lo=None, open_hi=None):
        t = tuple.__new__(cls, (lo, hi, terms))
        t.open_lo = np.zeros(len(lo), bool) if open_lo is None else open_lo
        t.open_hi = np.zeros(len(hi), bool) if open_hi is None else open_hi
        return t

    def inside(self, x):
        lo, hi, _ = self
        return bool(np.all(np.where(self.open_lo, x > lo, x >= lo)) and np.all(np.where(self.open_hi, x < hi, x <= hi)))


def _conjunction(formulas, nx, ny, what: str) -> list:
    """The disjunctive normal form of ``(and formulas...)``: every way of picking one term of each."""
    out = [[]]
    for a in formulas:
        sub = _dnf(a, nx, ny)
        out = [x + y for x in out for y in sub]
        if len(out) > 100000:
            raise VnnlibError(f"{what} too large once expanded")
    return out


def _dnf(e, nx, ny):
    """DNF of a boolean formula: list of conjunctions, each a list of atoms (cx, cy, d, strict):
    cx.x + cy.y <= d (< d when strict)."""
    if isinstance(e, str) or not e:
        raise VnnlibError(f"expected a formula, got {e!r}")
    head, args = e[0], e[1:]
    if head == "and":
        return _conjunction(args, nx, ny, "formula")
    if head == "or":
        out = []
        for a in args:
            out.extend(_dnf(a, nx, ny))
        return out
    if head in ("<=", ">=", "<", ">"):
        if len(args) != 2:
            raise VnnlibError(f"({head} ...) needs two arguments")
        lx, ly, lc = _linear(args[0], nx, ny)
        rx, ry, rc = _linear(args[1], nx, ny)
        strict = head in ("<", ">")
        if head in ("<=", "<"):  # l - r <= 0
            return [[(lx - rx, ly - ry, rc - lc, strict)]]
        return [[(rx - lx, ry - ly, lc - rc, strict)]]
    raise VnnlibError(f"unsupported formula operator {head!r}")


def parse_vnnlib(text: str, n_inputs: int | None = None, n_outputs: int | None = None):
    """Parse VNN-LIB text into a list of cases ``(lo, hi, [(C, d), ...])``."""
    exprs = _parse_sexprs(text)
    nx = ny = 0
    asserts = []
    for e in exprs:
        if not isinstance(e, list) or not e:
            raise VnnlibError(f"unexpected top-level token {e!r}")
        if e[0] == "declare-const":
            if len(e) != 3:
                raise VnnlibError("bad declare-const")
            m = _VAR.match(e[1])
            if not m:
                raise VnnlibError(f"variable {e[1]!r}: only X_i and Y_i are supported")
            if m.group(1) == "X":
                nx = max(nx, int(m.group(2)) + 1)
            else:
                ny = max(ny, int(m.group(2)) + 1)
        elif e[0] == "assert":
            asserts.append(e[1])
        else:
            raise VnnlibError(f"unsupported command {e[0]!r}")
    if n_inputs is not None and nx != n_inputs:
        raise VnnlibError(f"the property declares {nx} inputs but the network has {n_inputs}")
    if n_outputs is not None and ny != n_outputs:
        raise VnnlibError(f"the property declares {ny} outputs but the network has {n_outputs}")
    terms = _conjunction(asserts, nx, ny, "property")
    cases = {}
    for term in terms:
        lo, hi = np.full(nx, -np.inf), np.full(nx, np.inf)
        open_lo, open_hi = np.zeros(nx, bool), np.zeros(nx, bool)
        rows, rhs, strict = [], [], []
        for cx, cy, d, st in term:
            if cx.any() and cy.any():
                raise VnnlibError("atoms mixing inputs and outputs are not supported")
            if cx.any():
                nz = np.flatnonzero(cx)
                if len(nz) != 1:
                    raise VnnlibError("only bounds on single inputs are supported as input constraints")
                i, k = nz[0], cx[nz[0]]
                # a strict input bound x < c is read as x <= c for proofs (the closed box only
                # adds points, so 'unsat' stays sound); the face x = c is marked open, and a
                # counterexample on an open face is not accepted (Case.inside)
                if k > 0:
                    if d / k < hi[i] or (d / k == hi[i] and st):
                        open_hi[i] = st
                    hi[i] = min(hi[i], d / k)
                else:
                    if d / k > lo[i] or (d / k == lo[i] and st):
                        open_lo[i] = st
                    lo[i] = max(lo[i], d / k)
            elif cy.any():
                rows.append(cy)
                rhs.append(d)
                strict.append(st)
            elif d < 0 or (st and d <= 0):  # constant atom 0 <= d (0 < d) that is false: the term is void
                rows = None
                break
        if rows is None:
            continue
        if not rows:  # a truncated file keeps its input bounds and loses every (assert ... Y_i ...)
            raise VnnlibError("the property has no output constraint (no assert over Y_i): "
                              "is the file complete?")
        if not np.all(np.isfinite(lo)) or not np.all(np.isfinite(hi)):
            raise VnnlibError("every input X_i needs a lower and an upper bound")
        if np.any(lo > hi) or np.any((lo == hi) & (open_lo | open_hi)):
            continue  # empty box: this term can never hold
        key = (lo.tobytes(), hi.tobytes(), open_lo.tobytes(), open_hi.tobytes())
        C = np.array(rows).reshape(len(rows), ny)
        cases.setdefault(key, Case(lo, hi, [], open_lo, open_hi))[2].append(Term(C, np.array(rhs, dtype=np.float64), strict))
    return list(cases.values())


def read_vnnlib(path, n_inputs=None, n_outputs=None):
    with open(path, "r", encoding="utf-8", errors="replace") as fh:
        return parse_vnnlib(fh.read(), n_inputs, n_outputs)
