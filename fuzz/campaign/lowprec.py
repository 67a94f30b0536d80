"""The float32-intermediate reference of a low-precision model: what inductor computes.

Inductor computes float16/bfloat16 operations in float32 and rounds only where it stores a
value (``torch._inductor.config.emulate_precision_casts`` is off by default), so where eager's
rounding of an intermediate decides an element's class, e.g. ``acos(cosh(x))`` with ``cosh(x)``
just above 1 (eager rounds it to 1.0 and gets 0, inductor gets NaN), both are right.
``float32_outputs`` runs the model with every float16/bfloat16 tensor, dtype argument and cast
made float32; the oracle (``oracle.value_mismatch``'s ``alt``) does not judge an element's class
where that run's class differs from eager's, and it is a second eager for values too
(``oracle.judge``): an element stays flagged only if the compiled error is also beyond the
tolerance rule against that run's error; an integer or bool output (a comparison, a cast) is cleared
where the compiled value equals that run's. So where eager's rounding of an intermediate decides a
value, e.g. which side of ``softplus(x, threshold=0)``'s jump a bfloat16 product lands on, the
compiled result may land on the other side. Gradients get the same run (``deferred_float32_grads``),
in bwd tests and in train tests (the training step of the float32-intermediate model).

An explicit cast to a low dtype (``x.half()``) is rounded where inductor stores its result, but not
where the same kernel reads it back for a low-precision op, which computes in float32: the pair of
conversions is dropped (``fmod(a.half(), s)`` with a float32 ``a`` computes ``fmod(a, s)``; just
above a multiple of ``s`` that is 0.0001 where eager's rounded ``a`` gives 0.47). So a model with
such casts gets a second float32 run with its casts made float32 too (``keep_casts=False``:
``Reference.low32_bare``); an element either run explains is not flagged.
"""

from __future__ import annotations

LOW = ("float16", "bfloat16")
# Explicit casts to a low dtype do round in inductor's code (a ``convert_element_type``): they
# stay, followed by a cast back to float32, so only the implicit roundings are left out.
CAST_OPS = ("torch.Tensor.half", "torch.Tensor.bfloat16", "torch.Tensor.to")


def _upcast(value):
    if isinstance(value, list):
        return [_upcast(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"dtype"} and value["dtype"] in LOW:
            return {"dtype": "float32"}
        return {k: _upcast(v) for k, v in value.items()}
    return value


def holds_low_precision(graph) -> bool:
    return any(info.dtype in LOW for info in graph.tensors.values())


def has_low_casts(graph) -> bool:
    """Whether ``graph`` casts a value to float16/bfloat16 explicitly (``CAST_OPS``)."""
    return any(n.op in CAST_OPS and len(n.outputs) == 1 and graph.tensors[n.outputs[0]].dtype in LOW
               for n in graph.nodes)


def upcast_graph(graph, order=None, keep_casts: bool = True):
    """A copy of ``graph`` computing in float32 where it computes in float16/bfloat16, or None
    when it holds no such tensor. ``order``: the graph's input names in the order its program's
    ``forward`` takes them (a graph read from graph.json lists its tensors sorted by name, which
    need not be that order), so the copy's program takes its inputs in the same order."""
    if not holds_low_precision(graph):
        return None
    from fuzz.ir.graph import Node

    g = graph.copy()
    if order and sorted(order) == sorted(g.inputs):
        g.tensors = {**{n: g.tensors[n] for n in order}, **{n: t for n, t in g.tensors.items() if n not in order}}
    casts = [n for n in g.nodes if keep_casts and n.op in CAST_OPS and len(n.outputs) == 1
             and g.tensors[n.outputs[0]].dtype in LOW]
    for info in g.tensors.values():
        if info.dtype in LOW:
            info.dtype = "float32"
    for node in g.nodes:
        if not keep_casts and node.op in ("torch.Tensor.half", "torch.Tensor.bfloat16"):
            node.op = "torch.Tensor.float"  # the cast dropped, as where inductor fuses it away
        if node not in casts:
            node.args, node.kwargs = _upcast(node.args), _upcast(node.kwargs)
        if node.extra.get("autocast") in LOW:  # an autocast region computes in its low dtype
            node.extra.pop("autocast")
    for node in casts:  # y = x.bfloat16()  ->  y_low = x.bfloat16(); y = y_low.float()
        out = node.outputs[0]
        low = g.add_tensor(g.tensors[out].shape, graph.tensors[out].dtype, name=g.fresh_name(out + "_low"))
        node.outputs = [low]
        g.add_node(Node(id=g.new_node_id(), op="torch.Tensor.float", api="function", args=[{"ref": low}], kwargs={},
                        outputs=[out]), index=g.nodes.index(node) + 1)
    return g


def _up(t):
    import torch

    return t.detach().float() if isinstance(t, torch.Tensor) and t.dtype in (torch.float16, torch.bfloat16) else t


def float32_outputs(graph, state: dict, inputs: list, order=None, keep_casts: bool = True) -> list | None:
    """The model's outputs computed with float32 intermediates (None: no low-precision tensor,
    or the upcast model does not run); ``inputs`` in ``order`` (``upcast_graph``)."""
    import torch

    from fuzz.gen import program

    g = upcast_graph(graph, order, keep_casts)
    if g is None:
        return None
    try:
        module = program.build_module(g, {k: _up(v).cpu() for k, v in state.items()})
        with torch.no_grad():
            out = module(*[_up(t).clone() if isinstance(t, torch.Tensor) else t for t in inputs])
    except Exception:  # noqa: BLE001 - no float32 reference: classes judged as before
        return None
    out = list(out) if isinstance(out, (tuple, list)) else [out]
    return out if len(out) == len(graph.outputs) else None


def deferred_float32_outputs(graph, state: dict, inputs: list, pad: int, order=None, keep_casts: bool = True):
    """A function making ``float32_outputs`` (then ``pad`` Nones, for the written state) from
    copies of ``state`` and ``inputs`` taken now, to be called only when needed
    (``oracle.Reference.low32_fn``); None when the graph holds no low-precision tensor."""
    import torch

    if not holds_low_precision(graph) or (not keep_casts and not has_low_casts(graph)):
        return None
    state = {k: v.detach().clone() for k, v in state.items()}
    inputs = [t.detach().clone() if isinstance(t, torch.Tensor) else t for t in inputs]

    def make():
        out = float32_outputs(graph, state, inputs, order, keep_casts)
        return None if out is None else out + [None] * pad

    return make


def deferred_float32_grads(graph, state: dict, inputs: list, grads, names: list, pad: int, order=None,
                           keep_casts: bool = True):
    """Like ``deferred_float32_outputs`` for a backward reference: ``grads(module, inputs)`` (the
    session's ``grads``: ``(outputs + gradients, gradient names)``) of the float32-intermediate
    model, on float32 copies of ``inputs`` (their ``requires_grad`` kept), then ``pad`` Nones;
    None when the graph holds no low-precision tensor, or (from the function) when the run fails
    or names other gradients."""
    import torch

    from fuzz.gen import program

    g = upcast_graph(graph, order, keep_casts)
    if g is None or (not keep_casts and not has_low_casts(graph)):
        return None
    state = {k: _up(v).cpu().clone() for k, v in state.items()}
    inputs = [_up(t).clone().requires_grad_(t.requires_grad) if isinstance(t, torch.Tensor) else t for t in inputs]

    def make():
        try:
            module = program.build_module(g, state)
            r = grads(module, inputs)
        except Exception:  # noqa: BLE001 - no float32 reference: judged as before
            return None
        return r[0] + [None] * pad if r is not None and r[1] == names else None

    return make
