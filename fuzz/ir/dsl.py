"""The small arithmetic DSL that inferred rules are written in.

An *expression* is JSON data:

- an ``int`` constant,
- a ``str`` symbol: ``x{i}_{j}`` is dim ``j`` of tensor input ``i``, ``a{k}`` is the
  ``k``-th integer argument of the call (in argument order, list elements included),
- ``[op, lhs, rhs]`` with ``op`` one of ``+ - * // % min max``.

A *predicate* is ``[cmp, lhs, rhs]`` with ``cmp`` one of ``== != < <= > >=`` over two
expressions, or ``["or", p, q, ...]`` / ``["and", p, q, ...]`` / ``["not", p]``.
A rule's constraints are a list of predicates, all of which must hold.

Every operator is one row of ``OPERATORS``, which gives it four readings:

- ``evaluate``: Python integers (-> int or bool), floor ``//`` and ``%`` as in Python;
- ``eval_vec``: numpy int64 vectors, one entry per environment (the rule synthesiser and the
  constraint miner evaluate a candidate on every record at once), the same floor semantics;
- ``to_z3``: a Z3 term (rule checks);
- ``to_smtlib``: SMT-LIB text (the generator feeds its solver text, far cheaper than terms).

Division: the Python and numpy readings floor, the two Z3 readings are SMT-LIB's ``div`` and
``mod``, which are Euclidean. They agree whenever the divisor is positive, the only case that
matters: every rule that divides also constrains its divisor to be positive, and the generator
adds ``divisor >= 1`` for every symbolic divisor. At a negative divisor they differ
(``7 // -2`` is -4 in Python, ``(div 7 (- 2))`` is -3); at a zero divisor ``evaluate`` raises
``EvalError``, ``eval_vec`` answers None, and Z3 leaves the value unconstrained.
``render`` is a fifth, readable reading (infix text for docs and error messages).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

import numpy as np

Expr = Any  # int | str | list
ARITH = ("+", "-", "*", "//", "%", "min", "max")
COMPARE = ("==", "!=", "<", "<=", ">", ">=")
LOGIC = ("and", "or", "not")


class EvalError(ArithmeticError):
    """An expression is undefined at a point (division or modulo by zero, unknown symbol)."""


def tensor_dim(i: int, j: int) -> str:
    return f"x{i}_{j}"


def int_arg(k: int) -> str:
    return f"a{k}"


def symbols(expr: Expr) -> set[str]:
    """The symbols an expression or predicate mentions."""
    found: set[str] = set()

    def walk(e):
        if isinstance(e, str):
            found.add(e)
        elif isinstance(e, list):
            for sub in e[1:]:
                walk(sub)

    walk(expr)
    return found


# ---------------------------------------------------------------------------
# the operator table


def _floordiv(a: int, b: int) -> int:
    if b == 0:
        raise EvalError("division by zero")
    return a // b


def _mod(a: int, b: int) -> int:
    if b == 0:
        raise EvalError("modulo by zero")
    return a % b


def _z3_min(a, b):
    import z3

    return z3.If(a <= b, a, b)


def _z3_max(a, b):
    import z3

    return z3.If(a >= b, a, b)


def _z3_and(parts):
    import z3

    return z3.And(*parts)


def _z3_or(parts):
    import z3

    return z3.Or(*parts)


def _z3_not(parts):
    import z3

    return z3.Not(parts[0])


def _vec_all(parts):
    acc = parts[0].astype(bool)
    for p in parts[1:]:
        acc = acc & p.astype(bool)
    return acc


def _vec_any(parts):
    acc = parts[0].astype(bool)
    for p in parts[1:]:
        acc = acc | p.astype(bool)
    return acc


def _smt_apply(name: str) -> Callable[[str, str], str]:
    return lambda a, b: f"({name} {a} {b})"


def _smt_junction(name: str, empty: str) -> Callable[[list], str]:
    def text(parts: list) -> str:
        if not parts:
            return empty
        return parts[0] if len(parts) == 1 else f"({name} {' '.join(parts)})"

    return text


@dataclass(frozen=True)
class Operator:
    """One DSL operator in each reading. Binary operators (``arith``, ``compare``) take two
    operands; ``logic`` ones take the list of their operands (``python`` an iterator of lazily
    evaluated ones, so ``or``/``and`` short-circuit as Python does)."""

    kind: str                  # "arith" | "compare" | "logic"
    python: Callable           # on Python ints / bools
    vec: Callable              # on numpy int64 vectors (compare/logic give bool vectors)
    z3: Callable               # on Z3 terms
    smt: Callable              # on SMT-LIB texts of the operands
    divides: bool = False      # undefined at a zero right operand


OPERATORS: dict[str, Operator] = {
    "+": Operator("arith", operator.add, operator.add, operator.add, _smt_apply("+")),
    "-": Operator("arith", operator.sub, operator.sub, operator.sub, _smt_apply("-")),
    "*": Operator("arith", operator.mul, operator.mul, operator.mul, _smt_apply("*")),
    # Z3's ``/`` and ``%`` on integers are SMT-LIB ``div`` and ``mod`` (see the module docstring).
    "//": Operator("arith", _floordiv, operator.floordiv, operator.truediv, _smt_apply("div"), divides=True),
    "%": Operator("arith", _mod, operator.mod, operator.mod, _smt_apply("mod"), divides=True),
    "min": Operator("arith", min, np.minimum, _z3_min, lambda a, b: f"(ite (<= {a} {b}) {a} {b})"),
    "max": Operator("arith", max, np.maximum, _z3_max, lambda a, b: f"(ite (>= {a} {b}) {a} {b})"),
    "==": Operator("compare", operator.eq, operator.eq, operator.eq, _smt_apply("=")),
    "!=": Operator("compare", operator.ne, operator.ne, operator.ne, lambda a, b: f"(not (= {a} {b}))"),
    "<": Operator("compare", operator.lt, operator.lt, operator.lt, _smt_apply("<")),
    "<=": Operator("compare", operator.le, operator.le, operator.le, _smt_apply("<=")),
    ">": Operator("compare", operator.gt, operator.gt, operator.gt, _smt_apply(">")),
    ">=": Operator("compare", operator.ge, operator.ge, operator.ge, _smt_apply(">=")),
    "and": Operator("logic", all, _vec_all, _z3_and, _smt_junction("and", "true")),
    "or": Operator("logic", any, _vec_any, _z3_or, _smt_junction("or", "false")),
    "not": Operator("logic", lambda parts: not next(iter(parts)), lambda parts: parts[0] == 0, _z3_not,
                    lambda parts: f"(not {parts[0]})"),
}
assert tuple(o for o, d in OPERATORS.items() if d.kind == "arith") == ARITH
assert tuple(o for o, d in OPERATORS.items() if d.kind == "compare") == COMPARE
assert tuple(o for o, d in OPERATORS.items() if d.kind == "logic") == LOGIC


def _operator(op) -> Operator:
    try:
        return OPERATORS[op]
    except (KeyError, TypeError):
        raise ValueError(f"unknown DSL operator {op!r}") from None


# ---------------------------------------------------------------------------
# the four readings


def evaluate(expr: Expr, env: Mapping[str, int]) -> Any:
    """Evaluate an expression (-> int) or predicate (-> bool) at integer values of its symbols."""
    if isinstance(expr, bool):
        return expr
    if isinstance(expr, int):
        return expr
    if isinstance(expr, str):
        try:
            return env[expr]
        except KeyError:
            raise EvalError(f"symbol {expr} has no value") from None
    op = _operator(expr[0])
    if op.kind == "logic":
        return op.python(evaluate(p, env) for p in expr[1:])
    return op.python(evaluate(expr[1], env), evaluate(expr[2], env))


def holds(predicates: list, env: Mapping[str, int]) -> bool:
    """True when every predicate holds at ``env``; an undefined predicate (x // 0) does not hold."""
    try:
        return all(evaluate(p, env) for p in predicates)
    except EvalError:
        return False


def eval_vec(expr: Expr, symbols: Mapping[str, np.ndarray], n: int) -> np.ndarray | None:
    """Vectorised ``evaluate`` over ``n`` environments (``symbols``: symbol -> its ``n`` values):
    an int64 vector (predicates: 1 where they hold, 0 elsewhere), or None when a division or
    modulo meets a zero divisor in any of them. Values wrap at int64 (Python's do not): callers
    drop vectors beyond a bound (``fuzz.rules.synth.LIMIT``)."""
    if isinstance(expr, bool):
        return np.full(n, int(expr), dtype=np.int64)
    if isinstance(expr, int):
        return np.full(n, expr, dtype=np.int64)
    if isinstance(expr, str):
        return symbols[expr].astype(np.int64)
    op = _operator(expr[0])
    if op.kind == "logic":
        parts = [eval_vec(p, symbols, n) for p in expr[1:]]
        if any(p is None for p in parts):
            return None
        return op.vec(parts).astype(np.int64)
    a = eval_vec(expr[1], symbols, n)
    b = eval_vec(expr[2], symbols, n)
    if a is None or b is None:
        return None
    if op.divides and np.any(b == 0):
        return None
    result = op.vec(a, b)
    return result.astype(np.int64) if op.kind == "compare" else result


def to_z3(expr: Expr, env: Mapping[str, Any], ctx=None):
    """The Z3 term of an expression or predicate; ``env`` maps symbols to Z3 integer terms.

    ``ctx``: the Z3 context of the terms in ``env`` when it is not the default one
    (constants are made in it); the generator uses a fresh context per model so that
    Z3's answers do not depend on what the process solved before.
    """
    import z3

    if isinstance(expr, bool):
        return z3.BoolVal(expr, ctx)
    if isinstance(expr, int):
        return z3.IntVal(expr, ctx)
    if isinstance(expr, str):
        return env[expr]
    op = _operator(expr[0])
    if op.kind == "logic":
        return op.z3([to_z3(p, env, ctx) for p in expr[1:]])
    return op.z3(to_z3(expr[1], env, ctx), to_z3(expr[2], env, ctx))


def smt_int(v: int) -> str:
    """An integer as SMT-LIB text (negative numbers are ``(- n)``)."""
    return str(v) if v >= 0 else f"(- {-v})"


def to_smtlib(expr: Expr, symbol: Callable[[str], str] = str) -> str:
    """SMT-LIB text of an expression or predicate; ``symbol`` writes each symbol (default: its
    name; the generator writes ``{x0_1}`` holes that it fills per insertion)."""
    if isinstance(expr, bool):
        return "true" if expr else "false"
    if isinstance(expr, int):
        return smt_int(expr)
    if isinstance(expr, str):
        return symbol(expr)
    op = _operator(expr[0])
    parts = [to_smtlib(p, symbol) for p in expr[1:]]
    if op.kind == "logic":
        return op.smt(parts)
    return op.smt(*parts)


_PRECEDENCE = {"or": 1, "and": 2, "not": 3, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4,
               "+": 5, "-": 5, "*": 6, "//": 6, "%": 6}


def render(expr: Expr, parent: int = 0) -> str:
    """Readable infix text: ``(x0_2 + 2*a1 - 3) // a0 + 1``."""
    if isinstance(expr, (bool, int, str)):
        return str(expr)
    op = expr[0]
    if op in ("min", "max"):
        return f"{op}({render(expr[1])}, {render(expr[2])})"
    if op == "not":
        return f"not {render(expr[1], _PRECEDENCE['not'])}"
    prec = _PRECEDENCE[op]
    if op in ("and", "or"):
        text = f" {op} ".join(render(p, prec) for p in expr[1:])
    else:
        # Left-associative: the right operand of - // % needs brackets at equal precedence.
        text = f"{render(expr[1], prec)} {op} {render(expr[2], prec + (op in ('-', '//', '%', '*')))}"
    return f"({text})" if prec < parent else text


def walk(expr: Expr) -> Iterator[Expr]:
    """Every sub-expression, root first."""
    yield expr
    if isinstance(expr, list):
        for sub in expr[1:]:
            yield from walk(sub)


def divisors_of(expr: Expr) -> list:
    """Every divisor sub-expression (right operand of // and %) in an expression or predicate,
    root first."""
    return [sub[2] for sub in walk(expr) if isinstance(sub, list) and sub[0] in OPERATORS and OPERATORS[sub[0]].divides]


def size(expr: Expr) -> int:
    """Number of nodes (the synthesiser's measure of an expression's complexity)."""
    return sum(1 for _ in walk(expr))


def lower_bound(expr: Expr, lower: Callable[[str], int | None]) -> int | None:
    """A lower bound of an expression from lower bounds of its symbols (``None``: unknown)."""
    if isinstance(expr, bool):
        return int(expr)
    if isinstance(expr, int):
        return expr
    if isinstance(expr, str):
        return lower(expr)
    op = expr[0]
    if op not in ("+", "*", "min", "max"):
        return None
    a, b = lower_bound(expr[1], lower), lower_bound(expr[2], lower)
    if op == "max":
        return a if b is None else b if a is None else max(a, b)
    if a is None or b is None:
        return None
    if op == "+":
        return a + b
    if op == "min":
        return min(a, b)
    return a * b if a >= 0 and b >= 0 else None


def simplify(expr: Expr, lower: Callable[[str], int | None]) -> Expr:
    """The same expression with ``min(e, c)`` folded to ``c`` where ``e >= c`` is known from the
    symbols' lower bounds, and ``e * 1`` to ``e``. The generator uses it with every dim >= 1, where
    e.g. the broadcast rule ``max(a, b) * min(min(a, b), 1)`` becomes ``max(a, b)`` (linear)."""
    if not isinstance(expr, list):
        return expr
    op = expr[0]
    args = [simplify(e, lower) for e in expr[1:]]
    if op == "min" and len(args) == 2:
        for e, c in ((args[0], args[1]), (args[1], args[0])):
            if isinstance(c, int) and not isinstance(c, bool):
                lb = lower_bound(e, lower)
                if lb is not None and lb >= c:
                    return c
    if op == "*" and len(args) == 2:
        if args[1] == 1 and not isinstance(args[1], bool):
            return args[0]
        if args[0] == 1 and not isinstance(args[0], bool):
            return args[1]
    return [op, *args]

