"""Shape arguments written as sizes of tensors (``ModelPolicy.shape_args``, ``--shape-args``).

A generated call's sizes are constants: ``torch.reshape(a, [3, 20])``, ``torch.narrow(a, 1, 0, 4)``,
``x.new_zeros((5, 4))``. Real code computes them from the tensors it is given
(``x.reshape(x.size(0), -1)``, ``h.view(b, t, heads, -1)``), and under dynamic shapes that is
where the compiler's symbolic reasoning works: dynamo traces ``a.size(1)`` as a symbolic size,
``a.size(1) * a.size(2)`` as a product it must simplify and guard, and inductor indexes its loops
with those expressions. A program of constants, compiled with ``dynamic=True``, specialises every
size that meets a constant, and dynamic mode's second call (other input sizes) is mostly
refused by eager itself: the constants no longer fit.

``write_sizes(graph, chooser)`` rewrites, in a "sizes" model, the integer arguments (top level,
or inside a list or tuple argument) that are a size of the call's output and equal a size of a
tensor known at the call (one the call reads first, else a graph input or parameter), or the
product of two of its sizes, into that expression: ``{"call": "torch.Tensor.size", "args":
[{"ref": a}, 1]}`` (printed ``a.size(1)``), or ``{"call": "operator.mul", "args": [..., ...]}``
(printed ``a.size(1) * a.size(2)``). 0, 1 and negative numbers stay constants (``-1`` already
means "the rest"), and so does a number smaller than the rank of a tensor of the call (it may be
a dim index, which no one writes as a size) unless the call's inferred rule uses it in an output
shape (``{"A": k}`` in the rule's template, ``a<k>`` in its output expressions: a size). At the model's own sizes every value is the same number as before, so the
model, its values and its eager run are unchanged; what changes is what a compiler sees and
which other sizes eager accepts. ``graph.meta["size_args"]`` counts the rewrites.
"""

from __future__ import annotations

import json
import re

from fuzz.gen.chooser import Chooser
from fuzz.ir.graph import Graph, Node, refs_in

REWRITE_CHANCE = 0.8  # of the candidate numbers of a "sizes" model, those rewritten
# calls whose integer arguments are not sizes of the rule's kind (functions passed as arguments,
# loops' dims, data-dependent chains) keep them
_SKIP_FORMS = ("checkpoint", "cond", "transform", "vmap", "grad", "jacrev", "jacfwd", "hessian", "jvp", "custom_op")


def size_of(tensor: str, dims: tuple[int, ...]) -> dict:
    """The encoded expression ``tensor.size(d0) * tensor.size(d1) ...``."""
    terms = [{"call": "torch.Tensor.size", "args": [{"ref": tensor}, d]} for d in dims]
    out = terms[0]
    for t in terms[1:]:
        out = {"call": "operator.mul", "args": [out, t]}
    return out


def _sources(g: Graph, node: Node) -> list[str]:
    """Tensors a size may be read from: those ``node`` reads, then graph inputs and parameters."""
    first = [t for t in dict.fromkeys(refs_in([node.args, list(node.kwargs.values())])) if t in g.tensors]
    rest = [t for t in g.inputs + g.params if t not in first]
    number_inputs = set((g.meta.get("scalars") or {}))
    return [t for t in first + rest if t not in number_inputs and g.tensors[t].shape]


def _expressions(g: Graph, sources: list[str], value: int) -> list[dict]:
    """Every expression of ``value`` as one size or the product of two sizes of the first source that has one."""
    for t in sources:
        shape = g.tensors[t].shape
        found = [(d,) for d, n in enumerate(shape) if n == value]
        found += [(i, j) for i in range(len(shape)) for j in range(i + 1, len(shape))
                  if shape[i] >= 2 and shape[j] >= 2 and shape[i] * shape[j] == value]
        if found:
            return [size_of(t, dims) for dims in found]
    return []


def _size_slots(rule) -> set[int]:
    """Indices ``k`` of the integer placeholders ``{"A": k}`` that the inferred rule's output shapes use."""
    if rule is None or rule.status != "symbolic":
        return set()
    return {int(m) for m in re.findall(r'"a(\d+)"', json.dumps(rule.outputs))}


def _rewrite(value, slot, ctx, top: bool):
    """``value`` with its size integers rewritten (see the module docstring), and how many were.
    ``slot`` is the rule template's value at the same place (``{"A": k}`` for an inferred integer)."""
    g, ch, sources, sizes, small_sizes, size_slots = ctx
    if isinstance(value, bool):
        return value, 0
    if isinstance(value, int):
        is_size_slot = isinstance(slot, dict) and slot.get("A") in size_slots
        if value not in (small_sizes if is_size_slot else sizes) or not ch.chance(REWRITE_CHANCE):
            return value, 0
        options = _expressions(g, sources, value)
        return (ch.choice(options), 1) if options else (value, 0)
    if isinstance(value, list) and top:
        slots = slot if isinstance(slot, list) and len(slot) == len(value) else [None] * len(value)
        done = [_rewrite(v, sl, ctx, False) for v, sl in zip(value, slots)]
        return [v for v, _ in done], sum(n for _, n in done)
    if isinstance(value, dict) and set(value) == {"tuple"} and top:
        inner = slot.get("tuple") if isinstance(slot, dict) else None
        slots = inner if isinstance(inner, list) and len(inner) == len(value["tuple"]) else [None] * len(value["tuple"])
        done = [_rewrite(v, sl, ctx, False) for v, sl in zip(value["tuple"], slots)]
        return {"tuple": [v for v, _ in done]}, sum(n for _, n in done)
    return value, 0


def write_sizes(g: Graph, ch: Chooser, rule_of=None) -> int:
    """Rewrite the size arguments of ``g``'s calls (see the module docstring); the number rewritten.
    ``rule_of(key)`` gives a node's inferred rule: an integer its output shapes use is a size at any value."""
    count = 0
    for node in g.nodes:
        if node.api == "module" or node.extra.get("form") in _SKIP_FORMS or node.extra.get("hop") \
                or node.extra.get("data_dependent") or node.extra.get("datadep"):
            continue
        rule = rule_of(node.rule) if rule_of is not None and node.rule else None
        template = rule.template if rule is not None and isinstance(rule.template, dict) else {}
        # a number below every tensor's rank may be a dim index (torch.sum(x, 2)): it stays a
        # constant, unless the rule says it is a size
        rank = max([len(g.tensors[t].shape) for t in node.outputs + node.inputs()] or [0])
        out_sizes = {n for o in node.outputs for n in g.tensors[o].shape}
        sizes = {n for n in out_sizes if n >= max(2, rank)}
        small_sizes = {n for n in out_sizes if n >= 2}
        if not small_sizes:
            continue
        ctx = (g, ch, _sources(g, node), sizes, small_sizes, _size_slots(rule))
        targs, tkw = template.get("args", []), template.get("kwargs", {})
        args = []
        for i, a in enumerate(node.args):
            new, n = _rewrite(a, targs[i] if i < len(targs) else None, ctx, True)
            args.append(new)
            count += n
        kwargs = {}
        for k, v in node.kwargs.items():
            new, n = _rewrite(v, tkw.get(k), ctx, True)
            kwargs[k] = new
            count += n
        node.args, node.kwargs = args, kwargs
    if count:
        g.meta["size_args"] = count
    return count
