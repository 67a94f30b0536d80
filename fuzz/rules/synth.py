"""Enumerative synthesis of output-shape expressions.

Given the values of every symbol (``x{i}_{j}``, ``a{k}``) on N valid records, as numpy
vectors, and a target vector (one output dim on the same records), find the smallest
DSL expression whose value vector equals the target.

The search is bottom-up by size (number of DSL nodes) with *observational
equivalence*: two expressions with the same value vector on all records are the same
to the synthesiser, so only the first (smallest) one is kept in the *bank*. Stages, in
order of cost (the first stage with a hit wins, and within a stage the smallest
expression):

1. trivial: a symbol or a small constant (ties between symbols are broken towards the
   symbol at the same dim position, which generalises best for elementwise ops);
2. the bank grown level by level (sizes 3, 5, ...) until a time or size cap;
   (after size 3, the shape idioms of ``fuzz.rules.idioms`` -- sliding and transposed windows --
   are tried, before the larger sizes whose expressions fit few records by accident);
3. meet in the middle: ``T = A + B``, ``A - B``, ``A * B`` with ``A``, ``B`` in the bank
   (a hash lookup of ``T - A`` etc. for every ``A``);
4. a floor-division sketch ``T = W // V + c`` (conv/pool-like), ``c`` in {0, 1}, ``V`` a small
   positive bank entry, ``W`` in the bank or ``A - B`` / ``A + B`` with ``B`` a terminal
   (an interval check, vectorised over the whole bank).
"""

from __future__ import annotations

import time

import numpy as np

from fuzz.ir import dsl

CONSTANTS = (1, 2, 0, -1)
LIMIT = 1 << 40  # values beyond this are overflow noise: drop the expression


class Budget:
    """A CPU-time budget (process time, so a loaded machine does not change the results)."""

    def __init__(self, seconds: float):
        self.deadline = time.process_time() + seconds

    def over(self) -> bool:
        return time.process_time() > self.deadline

    def left(self) -> float:
        return self.deadline - time.process_time()


class Bank:
    """Value vectors -> smallest known expression."""

    def __init__(self, n: int):
        self.n = n
        self.exprs: list = []
        self.sizes: list[int] = []
        self.index: dict[bytes, int] = {}
        self.rows: list[np.ndarray] = []
        self._matrix = None
        self.by_size: dict[int, list[int]] = {}

    def add(self, expr, size: int, vec: np.ndarray) -> bool:
        key = vec.tobytes()
        if key in self.index:
            return False
        self.index[key] = len(self.exprs)
        self.by_size.setdefault(size, []).append(len(self.exprs))
        self.exprs.append(expr)
        self.sizes.append(size)
        self.rows.append(vec)
        self._matrix = None
        return True

    def lookup(self, vec: np.ndarray):
        i = self.index.get(vec.tobytes())
        return None if i is None else i

    def matrix(self) -> np.ndarray:
        if self._matrix is None or self._matrix.shape[0] != len(self.rows):
            self._matrix = np.vstack(self.rows) if self.rows else np.zeros((0, self.n), dtype=np.int64)
        return self._matrix

    def __len__(self):
        return len(self.exprs)


_COMMUTATIVE = {"+", "*", "min", "max"}


class Synthesizer:
    """One bank over one set of records, shared by all the targets (output dims) of a signature."""

    def __init__(self, symbols: dict[str, np.ndarray], n: int, budget: Budget, max_bank: int = 6000,
                 max_level: int = 5, sketch: bool = True):
        self.n = n
        self.symbols = symbols
        self.budget = budget
        self.max_bank = max_bank
        self.max_level = max_level
        self.sketch = sketch
        self.bank = Bank(n)
        self.level = 1
        self.terminals: list[tuple[str | int, np.ndarray]] = []
        for name, vec in symbols.items():
            self.terminals.append((name, vec.astype(np.int64)))
        for c in CONSTANTS:
            self.terminals.append((c, np.full(n, c, dtype=np.int64)))
        for expr, vec in self.terminals:
            self.bank.add(expr, 1, vec)

    # -- bank growth -------------------------------------------------------------

    def grow(self) -> bool:
        """Add the next level (size + 2). False when capped (size, time) or nothing new."""
        nxt = self.level + 2
        if nxt > self.max_level or len(self.bank) >= self.max_bank or self.budget.over():
            return False
        added = 0
        mat = self.bank.matrix()
        exprs = list(self.bank.exprs)
        for sa in range(1, nxt - 1, 2):
            sb = nxt - 1 - sa
            ia = [i for i in self.bank.by_size.get(sa, []) if i < len(exprs)]
            ib = np.array([i for i in self.bank.by_size.get(sb, []) if i < len(exprs)], dtype=np.int64)
            if not ia or len(ib) == 0:
                continue
            mb = mat[ib]
            pos_b = np.all(mb > 0, axis=1)
            for i in ia:
                va = mat[i]
                for op in dsl.ARITH:
                    if op in _COMMUTATIVE and sa > sb:
                        continue  # the mirrored pair is enumerated with sa < sb
                    sel = ib
                    sub = mb
                    if dsl.OPERATORS[op].divides:
                        if not pos_b.any():
                            continue
                        sel = ib[pos_b]
                        sub = mb[pos_b]
                        with np.errstate(all="ignore"):
                            res = dsl.OPERATORS[op].vec(va, sub)
                    else:
                        if op in _COMMUTATIVE and sa == sb:
                            keep = sel >= i
                            sel, sub = sel[keep], sub[keep]
                        res = dsl.OPERATORS[op].vec(va, sub)
                    if res.size == 0:
                        continue
                    ok = np.all(np.abs(res) < LIMIT, axis=1)
                    for r in np.nonzero(ok)[0]:
                        if self.bank.add([op, exprs[i], exprs[int(sel[r])]], nxt, res[r]):
                            added += 1
                    if len(self.bank) >= self.max_bank or self.budget.over():
                        self.level = nxt
                        return added > 0
        self.level = nxt
        return added > 0

    # -- solving -------------------------------------------------------------------

    def trivial(self, target: np.ndarray, prefer: list[str] = ()):
        """A symbol or constant equal to target; ties broken by ``prefer`` order."""
        hits = [e for e, v in self.terminals if np.array_equal(v, target)]
        if not hits:
            return None
        for p in prefer:
            if p in hits:
                return p
        return hits[0]

    def solve(self, target: np.ndarray, prefer: list[str] = ()):
        target = target.astype(np.int64)
        hit = self.trivial(target, prefer)
        if hit is not None:
            return hit
        idiom_tried = False
        while True:
            i = self.bank.lookup(target)
            if i is not None:
                return self.bank.exprs[i]
            if self.level >= 3 and not idiom_tried:
                # Before the larger levels, whose small expressions fit a few records by accident.
                from fuzz.rules import idioms

                idiom_tried = True
                found = idioms.solve(self.symbols, target, self.budget)
                if found is not None:
                    return found
            if not self.grow():
                break
        for stage in (self._middle, self._floor_sketch) if self.sketch else (self._middle,):
            if self.budget.over():
                return None
            found = stage(target)
            if found is not None:
                return found
        return None

    def _middle(self, target: np.ndarray):
        mat = self.bank.matrix()
        if len(mat) == 0:
            return None
        best = None
        sizes = self.bank.sizes
        exprs = self.bank.exprs
        for op, other in (("+", target - mat), ("-a", mat - target), ("-b", target + mat)):
            # "+":  T = A + B with B = T - A;  "-a": T = A - B with B = A - T;  "-b": T = B - A with B = T + A
            for a in range(len(mat)):
                j = self.bank.index.get(other[a].tobytes())
                if j is None:
                    continue
                s = sizes[a] + sizes[j] + 1
                if best is not None and s >= best[0]:
                    continue
                if op == "+":
                    e = ["+", exprs[a], exprs[j]]
                elif op == "-a":
                    e = ["-", exprs[a], exprs[j]]
                else:
                    e = ["-", exprs[j], exprs[a]]
                best = (s, e)
        # T = A * B
        nz = np.all(mat != 0, axis=1)
        for a in np.nonzero(nz)[0]:
            va = mat[a]
            if np.any(target % va != 0):
                continue
            j = self.bank.index.get((target // va).tobytes())
            if j is None:
                continue
            s = sizes[a] + sizes[j] + 1
            if best is None or s < best[0]:
                best = (s, ["*", exprs[a], exprs[j]])
        return None if best is None else best[1]

    def _floor_sketch(self, target: np.ndarray):
        mat = self.bank.matrix()
        sizes = np.array(self.bank.sizes)
        exprs = self.bank.exprs
        divisors = [i for i in range(len(mat)) if sizes[i] == 1 and np.all(mat[i] > 0) and not np.all(mat[i] == 1)]
        terms = [i for i in range(len(mat)) if sizes[i] == 1]
        best = None
        for c in (1, 0):
            q = target - c
            for d in divisors:
                if self.budget.over():
                    return None if best is None else best[1]
                v = mat[d]
                lo = q * v
                hi = lo + v  # exclusive
                inside = np.all((mat >= lo) & (mat < hi), axis=1)
                for w in np.nonzero(inside)[0]:
                    s = sizes[w] + sizes[d] + 1 + (2 if c else 0)
                    if best is None or s < best[0]:
                        best = (s, self._wrap(["//", exprs[w], exprs[d]], c))
                for t in terms:
                    for sign in (1, -1):
                        # W = A - B (sign 1) or A + B (sign -1): A in [lo + sign*B, hi + sign*B)
                        shift = sign * mat[t]
                        inside = np.all((mat >= lo + shift) & (mat < hi + shift), axis=1)
                        for a in np.nonzero(inside)[0]:
                            s = sizes[a] + 2 + sizes[d] + 1 + (2 if c else 0)
                            if best is None or s < best[0]:
                                w_expr = ["-" if sign == 1 else "+", exprs[a], exprs[t]]
                                best = (s, self._wrap(["//", w_expr, exprs[d]], c))
            if best is not None:
                return best[1]
        return None

    @staticmethod
    def _wrap(expr, c: int):
        return ["+", expr, c] if c else expr
