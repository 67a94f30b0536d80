"""The four readings of the rule DSL (``fuzz.ir.dsl``) agree.

Hypothesis draws well-typed expressions and predicates over every operator of
``dsl.OPERATORS`` (nested, with negative and zero values where the DSL allows them,
division and modulo by literals, symbols and whole sub-expressions) and a batch of
environments, and checks that Python evaluation, numpy vector evaluation over the
batch, the Z3 term (``to_z3``, substituted and simplified) and the SMT-LIB text (parsed
by Z3 with declarations, solved) give the same value in every environment where each
divisor is positive. Where a divisor is negative or zero the readings differ on
purpose (floor against Euclidean division); those cases are pinned separately.
"""

from __future__ import annotations

import numpy as np
import pytest
import z3
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fuzz.ir import dsl

DIMS = ("x0_0", "x0_1", "x1_0")   # tensor dims: never negative
INTS = ("a0", "a1")               # integer arguments: any sign
SYMBOLS = DIMS + INTS
BINARY = {kind: [op for op, o in dsl.OPERATORS.items() if o.kind == kind] for kind in ("arith", "compare")}
DIVIDING = [op for op in BINARY["arith"] if dsl.OPERATORS[op].divides]
PLAIN = [op for op in BINARY["arith"] if not dsl.OPERATORS[op].divides]
LOGIC = [op for op, o in dsl.OPERATORS.items() if o.kind == "logic"]

LEAVES = st.integers(-9, 9) | st.sampled_from(SYMBOLS)


def _extend(children):
    divisor = st.integers(1, 9) | st.sampled_from(SYMBOLS) | children
    return (st.tuples(st.sampled_from(PLAIN), children, children).map(list)
            | st.tuples(st.sampled_from(DIVIDING), children, divisor).map(list))


# At most 12 leaves of magnitude <= 30: every sub-expression stays far inside int64
# (|a op b| <= max(|a|, 2) * max(|b|, 2)), so numpy's wrap-around never shows.
EXPRS = st.recursive(LEAVES, _extend, max_leaves=12)
COMPARISONS = st.tuples(st.sampled_from(BINARY["compare"]), st.recursive(LEAVES, _extend, max_leaves=5),
                        st.recursive(LEAVES, _extend, max_leaves=5)).map(list)


def _extend_pred(children):
    return (st.tuples(st.sampled_from([op for op in LOGIC if op != "not"]),
                      st.lists(children, min_size=1, max_size=3)).map(lambda t: [t[0], *t[1]])
            | children.map(lambda p: ["not", p]))


PREDICATES = st.recursive(COMPARISONS | st.booleans(), _extend_pred, max_leaves=4)
ENV = st.fixed_dictionaries({**{s: st.integers(0, 30) for s in DIMS}, **{s: st.integers(-30, 30) for s in INTS}})


def defined(expr, env) -> bool:
    """Every divisor positive at ``env``: the domain on which the four readings must agree."""
    try:
        return all(dsl.evaluate(d, env) > 0 for d in dsl.divisors_of(expr))
    except dsl.EvalError:
        return False


def _z3_value(term):
    value = z3.simplify(term)
    if z3.is_bool(value):
        assert z3.is_true(value) or z3.is_false(value), value
        return z3.is_true(value)
    assert z3.is_int_value(value), value
    return value.as_long()


def by_z3(expr, env):
    term = dsl.to_z3(expr, {s: z3.Int(s) for s in SYMBOLS})
    return _z3_value(z3.substitute(term, *[(z3.Int(s), z3.IntVal(v)) for s, v in env.items()]))


def by_smtlib(expr, env, predicate: bool):
    sort = "Bool" if predicate else "Int"
    text = "".join(f"(declare-const {s} Int)(assert (= {s} {dsl.smt_int(v)}))" for s, v in env.items())
    text += f"(declare-const result {sort})(assert (= result {dsl.to_smtlib(expr)}))"
    solver = z3.Solver()
    solver.add(z3.parse_smt2_string(text))
    assert solver.check() == z3.sat
    result = z3.Bool("result") if predicate else z3.Int("result")
    return _z3_value(solver.model().eval(result, model_completion=True))


def check_agreement(expr, envs: list[dict], predicate: bool) -> None:
    columns = {s: np.array([env[s] for env in envs], dtype=np.int64) for s in SYMBOLS}
    vec = dsl.eval_vec(expr, columns, len(envs))
    assert vec is not None and vec.dtype == np.int64 and vec.shape == (len(envs),)
    for k, env in enumerate(envs):
        py = dsl.evaluate(expr, env)
        assert isinstance(py, bool) == predicate
        readings = {"python": py, "numpy": int(vec[k]), "z3": by_z3(expr, env), "smtlib": by_smtlib(expr, env, predicate)}
        assert len({int(v) for v in readings.values()}) == 1, (dsl.render(expr), env, readings)


@settings(max_examples=250, deadline=None)
@given(EXPRS.map(lambda e: (e, False)) | PREDICATES.map(lambda p: (p, True)), st.lists(ENV, min_size=1, max_size=6))
def test_expressions_and_predicates_agree_in_every_reading(drawn, envs):
    expr, predicate = drawn
    envs = [env for env in envs if defined(expr, env)]
    assume(envs)
    check_agreement(expr, envs, predicate)


def test_the_agreement_check_catches_one_broken_operator(monkeypatch):
    """The property above can fail: one operator wrong in one reading is caught."""
    expr, envs = ["max", "a0", ["//", "x0_1", 3]], [{"x0_0": 1, "x0_1": 7, "x1_0": 2, "a0": -4, "a1": 0}]
    check_agreement(expr, envs, predicate=False)
    broken = dsl.OPERATORS["max"].__class__(**{**dsl.OPERATORS["max"].__dict__, "vec": np.minimum})
    monkeypatch.setitem(dsl.OPERATORS, "max", broken)
    with pytest.raises(AssertionError):
        check_agreement(expr, envs, predicate=False)


def test_negative_divisors_floor_in_python_and_are_euclidean_in_z3():
    """The documented difference: the generator never meets it (it keeps every divisor >= 1)."""
    env = {s: 0 for s in SYMBOLS}
    for expr, floor, euclid in ((["//", 7, -2], -4, -3), (["%", 7, -2], -1, 1), (["//", -7, 2], -4, -4)):
        assert dsl.evaluate(expr, env) == floor
        assert int(dsl.eval_vec(expr, {}, 1)[0]) == floor
        assert by_z3(expr, env) == by_smtlib(expr, env, predicate=False) == euclid


def test_zero_divisors_are_undefined():
    env = {"x0_0": 0, "a0": 3}
    for op in DIVIDING:
        with pytest.raises(dsl.EvalError):
            dsl.evaluate([op, "a0", "x0_0"], env)
        assert dsl.eval_vec([op, "a0", "x0_0"], {"a0": np.array([3, 3]), "x0_0": np.array([1, 0])}, 2) is None
        assert not dsl.holds([[">=", [op, "a0", "x0_0"], 0]], env)
    # ``or`` short-circuits in Python, as the rules' guards (a0 == 0 or 5 // a0 > 1) rely on.
    assert dsl.evaluate(["or", ["==", "a0", 0], [">", ["//", 5, "a0"], 1]], {"a0": 0}) is True


def test_smtlib_text_is_stable():
    """The generator parses this exact text; a different spelling would change the models it draws."""
    expr = ["and", ["!=", ["min", ["//", "x0_1", "a0"], -3], ["max", ["%", "x0_0", 2], 1]], ["not", True]]
    assert dsl.to_smtlib(expr, lambda s: "{" + s + "}") == (
        "(and (not (= (ite (<= (div {x0_1} {a0}) (- 3)) (div {x0_1} {a0}) (- 3)) "
        "(ite (>= (mod {x0_0} 2) 1) (mod {x0_0} 2) 1))) (not true))")
    assert dsl.to_smtlib(["or", [">", "a0", 1]]) == "(> a0 1)"
    assert dsl.to_smtlib(["and"]) == "true" and dsl.to_smtlib(["or"]) == "false"


def test_unknown_operators_are_refused_in_every_reading():
    for reading in (lambda e: dsl.evaluate(e, {"a0": 1}), lambda e: dsl.eval_vec(e, {"a0": np.ones(1)}, 1),
                    lambda e: dsl.to_z3(e, {"a0": z3.Int("a0")}), dsl.to_smtlib):
        with pytest.raises(ValueError, match="unknown DSL operator"):
            reading(["**", "a0", 2])
