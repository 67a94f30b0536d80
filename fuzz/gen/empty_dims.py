"""Zero-size tensors through a model (``--empty-dims one``).

Eager PyTorch defines every call on tensors with a zero-size dim (a sum over nothing is 0, a
product 1, a mean NaN; ``amax`` raises), and compilers special-case them: dynamo specialises
sizes 0 and 1, inductor's loops and reductions must run zero times and still write their
identities, kernels index nothing. Fresh dims are >= 1 everywhere else in the generator, so none
of that is ever reached.

In a model of this policy every dim's lower bound is 1 only while the solver assumes
``NONZERO`` (``Builder.lower_bound``): growing and solving the model is exactly as before. Then
``zero_one_dim`` lifts the assumption and asks for one input dim at 0, the model's other free
dims at the values just solved or at 0 (dims tied to it) and its integers at theirs (so the model
is the same one with one dim emptied), or, when that is unsatisfiable, only the integers. The rules were inferred from calls on
non-empty tensors and their formulas are simplified for dims >= 1
(``fuzz.gen.ruleset.RuleInfo.smt_templates``), so every call is checked again at the new shapes
(``Builder.call_agrees``: a meta call that raises or disagrees), and a call on an emptied operand
must also pass the checks eager skips for an empty tensor (a kernel for its dtypes, shapes that
broadcast) at the same shapes with the zeros at 1; the first input dim (in a random
order) whose model passes is kept, and ``graph.meta["empty_dims"]`` names it. When none does, the
model keeps its solution (``empty_dims.placed`` is false). The value search and guard run then
run the model eagerly as for any other, so a call eager rejects at size 0 is dropped there.
"""

from __future__ import annotations

import math

from fuzz.ir.dsl import smt_int

TRIES = 5  # input dims tried at 0, in a random order


def zero_one_dim(b, shapes: dict) -> dict:
    """``shapes`` with one input dim at 0 where the model's calls agree (``b``: the ``Builder``,
    its solver at the grown model); ``shapes`` unchanged otherwise. Records the outcome in
    ``b.zero_result`` ({"placed": bool})."""
    cands = [(t.name, j, d) for t in b.tensors.values() if t.role == "input"
             for j, d in enumerate(t.dims) if isinstance(d, str)]
    b.zero_result = {"placed": False}
    if not cands:
        return shapes
    order = []
    while cands and len(order) < TRIES:  # a random order (the chooser draws one at a time)
        order.append(cands.pop(cands.index(b.ch.choice(cands))))
    solved_ints = [list(p.solved) for p in b.nodes]
    assumed, b.assumptions = b.assumptions, []
    try:
        for _, _, d in order:
            values = _solve_with_zero(b, shapes, d)
            if values is not None and all(b.call_agrees(p, values) and _defined_when_filled(b, p, values)
                                          for p in b.nodes):
                b.zero_result = {"placed": True}
                return values
        for p, ints in zip(b.nodes, solved_ints):  # values_at wrote the last try's
            p.solved = ints
        return shapes
    finally:
        b.assumptions = assumed


def _solve_with_zero(b, shapes: dict, d: str) -> dict | None:
    """The model with dim ``d`` at 0: first with every other free dim at its value in ``shapes``
    or at 0 too (a dim tied to ``d``: the other operand of an elementwise call) and every integer
    at its solved value; then with the integers only."""
    free, pinned = set(b.dim_vars), {}
    for t in b.tensors.values():
        for dim, v in zip(t.dims, shapes[t.name]):
            if isinstance(dim, str) and dim != d and dim in free:
                pinned[dim] = v
    ints = [f"(= {a} {smt_int(int(v))})" for p in b.nodes for a, v in zip(p.ints, p.solved) if isinstance(a, str)]
    dims = [f"(or (= {v} {int(x)}) (= {v} 0))" for v, x in pinned.items()]
    for extra in (dims + ints, ints):
        if b.push_if_sat([f"(= {d} 0)", *extra]):
            values = b.values_at(b.model_values())
            b.solver.pop()
            return values
    return None


def _defined_when_filled(b, p, values: dict) -> bool:
    """False when ``p``'s call, with its zero dims at 1 instead, fails a check on CPU that eager
    skips for an empty tensor (``skipped_check``): an integer ``softmax`` (which no non-empty input
    may take) runs on an empty one (c182, model 78), and so does ``_unsafe_masked_index_put_accumulate``
    with values of shape ``[0, 2]`` for an indexing result of ``[0, 1]`` (c183, model 31); a compiler
    rejecting either is right."""
    from fuzz.gen.callcheck import META_CPU_LIMIT, call_check

    rule = p.info.rule
    ins = [[max(d, 1) for d in values[o]] for o in p.operands]
    if rule.status == "concrete" or not any(0 in values[o] for o in p.operands) \
            or sum(math.prod(s) for s in ins) > META_CPU_LIMIT:
        return True
    _, error = call_check(rule, ins, [b.tensors[o].dtype for o in p.operands], list(p.solved),
                           [values[o] for o in p.outputs], [b.tensors[o].dtype for o in p.outputs], "cpu", p.floats)
    return error is None or not skipped_check(error)


# What eager checks only when there is something to compute: a kernel for the dtypes, and shapes
# that broadcast (a zero dim against 1 or 0 broadcasts; filled, they are 1 against 1).
SKIPPED_CHECKS = ("not implemented for", "cannot be broadcast", "must match the size of tensor")


def skipped_check(error: str) -> bool:
    """Whether ``error`` (of a call with its zero dims at 1) is a check eager skips when the call is
    empty: a missing dtype kernel, or shapes that do not broadcast."""
    return any(p in error for p in SKIPPED_CHECKS)


def record(g, placed: bool) -> None:
    """``graph.meta["empty_dims"]``: whether a dim was emptied, and the inputs holding a 0 dim."""
    g.meta["empty_dims"] = {"placed": placed,
                            "inputs": [n for n in g.inputs if 0 in g.tensors[n].shape]}
