"""The generator's Z3 solver, fed SMT-LIB text.

The solver is fed SMT-LIB text (one parse per insertion) rather than terms built through Z3's
Python API, which spends most of its time in per-term wrappers. Declarations made inside a
popped scope stay known to the solver's parser, so every constant is declared exactly once.

The solver is Z3's SMT kernel itself (``SimpleSolver``), not the default solver that wraps it
and, once scopes are pushed, hands every check to that same kernel: creating, pushing and freeing
it is cheaper (in a profile of 400 default-mix models the Z3 calls took a sixth less time; 7 of
150 models came out different, none invalid).

Each model gets a fresh Z3 context (~0.5 ms with ``fuzz.gen.heap``'s setting, 4-5 ms without): Z3's answers then depend only on this model's
choices, not on what the process solved before (same seed, same graph; Hypothesis replay).
"""

from __future__ import annotations

import re

from fuzz.gen.heap import keep_freed_memory
from fuzz.ir.dsl import smt_int

# One integer constant of a Z3 model printed by ``Model.sexpr()``: ``(define-fun d3 () Int\n  7)``.
_MODEL_RE = re.compile(r"\(define-fun (\S+) \(\) Int\s+(\(- \d+\)|\d+)\)")


def smt_term(x) -> str:
    """A dim or integer of the generator (a Z3 constant's name, or a Python int) as SMT-LIB text."""
    return x if isinstance(x, str) else smt_int(int(x))


class TextSolver:
    """A Z3 solver in its own context, with named integer constants and text constraints.

    ``fresh`` names are numbered by one counter per model (constants, tensors and nodes alike),
    so a model's names, and with them Z3's answers, are the same in every run of one seed."""

    def __init__(self, seed: int, rlimit: int):
        import z3

        keep_freed_memory()  # else each context is paged in anew (fuzz.gen.heap)
        self.z3 = z3
        self.ctx = z3.Context()
        self.solver = z3.SimpleSolver(ctx=self.ctx)
        self.solver.set("random_seed", seed)
        self.solver.set("rlimit", rlimit)  # per check: "unknown" counts as unsat
        self._undeclared: list = []   # constants to declare with the next SMT-LIB text
        self.assumptions: list = []   # Boolean constants every check assumes (``assume``)
        self.counter = 0

    def fresh(self, stem: str) -> str:
        """A new name: ``stem`` and the next number of this model."""
        self.counter += 1
        return f"{stem}{self.counter}"

    def var(self, stem: str) -> str:
        """A new Z3 integer constant, by name (declared with the next text given to the solver)."""
        v = self.fresh(stem)
        self._undeclared.append(v)
        return v

    def _text(self, constraints: list) -> str:
        decls = "".join(f"(declare-const {v} Int)" for v in self._undeclared)
        self._undeclared = []
        return decls + "".join(f"(assert {c})" for c in constraints)

    def assume(self, name: str):
        """Declare the Boolean constant ``name`` and assume it in every check from now on (until
        ``assumptions`` is changed): constraints guarded by it, ``(=> name c)``, then hold in every
        check but can be lifted for one. Returns the constant."""
        self.solver.from_string(f"(declare-const {name} Bool)")
        b = self.z3.Bool(name, self.ctx)
        self.assumptions.append(b)
        return b

    def check(self, extra=()) -> int:
        """Z3's verdict on the current scopes under ``assumptions`` and the Boolean constants ``extra``:
        ``Z3_L_TRUE`` satisfiable, ``Z3_L_FALSE`` unsatisfiable, ``Z3_L_UNDEF`` unknown (its resource
        limit). The C call itself: z3py's ``Solver.check`` makes the Bool sort and casts every
        assumption anew at each call, a fifth of a check's time in a profile of 500 default-mix models."""
        from z3.z3core import Z3_solver_check_assumptions
        from z3.z3types import Ast

        flags = [*self.assumptions, *extra] if extra else self.assumptions
        arr = (Ast * len(flags))(*[f.as_ast() for f in flags])
        return Z3_solver_check_assumptions(self.ctx.ref(), self.solver.solver, len(flags), arr)

    def sat(self) -> bool:
        """Check the current scopes under ``assumptions``: True when satisfiable."""
        from z3.z3consts import Z3_L_TRUE

        return self.check() == Z3_L_TRUE

    def add(self, constraints: list) -> None:
        """Assert SMT-LIB ``constraints`` (texts over the constants) in the current scope."""
        self.solver.from_string(self._text(constraints))

    def push_if_sat(self, constraints: list) -> bool:
        """Assert ``constraints`` in a new scope and keep it if satisfiable; else pop it, False.
        A check that runs out of its resource limit counts as unsatisfiable."""
        self.solver.push()
        try:
            self.add(constraints)
            sat = self.sat()
        except self.z3.Z3Exception:
            sat = False
        if sat:
            return True
        self.solver.pop()
        return False

    def model_values(self) -> dict:
        """Constant name -> value in the solver's current model (one ``sexpr`` call, parsed)."""
        model = self.solver.model()
        vals = {}
        for m in _MODEL_RE.finditer(model.sexpr()):
            v = m.group(2)
            vals[m.group(1)] = int(v) if v[0] != "(" else -int(v[3:-1])
        vals[None] = model
        return vals

    def value(self, vals: dict, d) -> int:
        """The value of ``d`` (a constant's name or an int) in ``vals`` (``model_values``)."""
        if isinstance(d, int):
            return d
        if d in vals:
            return vals[d]
        # A constant the printed model leaves out (Z3 eliminated it): ask the model.
        v = vals[d] = vals[None].eval(self.z3.Int(d, self.ctx), model_completion=True).as_long()
        return v
