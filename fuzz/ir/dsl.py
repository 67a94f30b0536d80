"""The small arithmetic DSL that inferred rules are written in.

An *expression* is JSON data:

- an ``int`` constant,
- a ``str`` symbol: ``x{i}_{j}`` is dim ``j`` of tensor input ``i``, ``a{k}`` is the
  ``k``-th integer argument of the call (in argument order, list elements included),
- ``[op, lhs, rhs]`` with ``op`` one of ``+ - * // % min max``.

A *predicate* is ``[cmp, lhs, rhs]`` with ``cmp`` one of ``== != < <= > >=`` over two
expressions, or ``["or", p, q, ...]`` / ``["and", p, q, ...]`` / ``["not", p]``.
A rule's constraints are a list of predicates, all of which must hold.

Every expression and predicate has three readings: ``evaluate`` (Python integers,
floor semantics), ``to_z3`` (a Z3 term; the generator solves these) and ``render``
(readable infix text for docs and error messages).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping

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


def _floordiv(a: int, b: int) -> int:
    if b == 0:
        raise EvalError("division by zero")
    return a // b


def _mod(a: int, b: int) -> int:
    if b == 0:
        raise EvalError("modulo by zero")
    return a % b


_PY_ARITH: dict[str, Callable[[int, int], int]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "//": _floordiv,
    "%": _mod,
    "min": min,
    "max": max,
}
_PY_COMPARE: dict[str, Callable[[int, int], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


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
    op = expr[0]
    if op in _PY_ARITH:
        return _PY_ARITH[op](evaluate(expr[1], env), evaluate(expr[2], env))
    if op in _PY_COMPARE:
        return _PY_COMPARE[op](evaluate(expr[1], env), evaluate(expr[2], env))
    if op == "and":
        return all(evaluate(p, env) for p in expr[1:])
    if op == "or":
        return any(evaluate(p, env) for p in expr[1:])
    if op == "not":
        return not evaluate(expr[1], env)
    raise ValueError(f"unknown DSL operator {op!r}")


def holds(predicates: list, env: Mapping[str, int]) -> bool:
    """True when every predicate holds at ``env``; an undefined predicate (x // 0) does not hold."""
    try:
        return all(evaluate(p, env) for p in predicates)
    except EvalError:
        return False


def to_z3(expr: Expr, env: Mapping[str, Any], ctx=None):
    """The Z3 term of an expression or predicate; ``env`` maps symbols to Z3 integer terms.

    ``ctx``: the Z3 context of the terms in ``env`` when it is not the default one
    (constants are made in it); the generator uses a fresh context per model so that
    Z3's answers do not depend on what the process solved before.

    Floor division and modulo map to Z3's integer ``/`` and ``%``, which agree with
    Python's floor semantics whenever the divisor is positive (the only case the
    generator ever asks for: rules that divide also constrain the divisor > 0).
    """
    import z3

    if isinstance(expr, bool):
        return z3.BoolVal(expr, ctx)
    if isinstance(expr, int):
        return z3.IntVal(expr, ctx)
    if isinstance(expr, str):
        return env[expr]
    op = expr[0]
    if op in LOGIC:
        parts = [to_z3(p, env, ctx) for p in expr[1:]]
        return {"and": z3.And, "or": z3.Or}[op](*parts) if op != "not" else z3.Not(parts[0])
    a, b = to_z3(expr[1], env, ctx), to_z3(expr[2], env, ctx)
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "//":
        return a / b
    if op == "%":
        return a % b
    if op == "min":
        return z3.If(a <= b, a, b)
    if op == "max":
        return z3.If(a >= b, a, b)
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    if op == ">=":
        return a >= b
    raise ValueError(f"unknown DSL operator {op!r}")


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

