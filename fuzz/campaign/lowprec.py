"""The float32-intermediate reference of a low-precision model: what inductor computes.

Inductor computes float16/bfloat16 operations in float32 and rounds only where it stores a
value (``torch._inductor.config.emulate_precision_casts`` is off by default), so where eager's
rounding of an intermediate decides an element's class, e.g. ``acos(cosh(x))`` with ``cosh(x)``
just above 1 (eager rounds it to 1.0 and gets 0, inductor gets NaN), both are right.
``float32_outputs`` runs the model with every float16/bfloat16 tensor, dtype argument and cast
made float32; the oracle (``oracle.value_mismatch``'s ``alt``) does not judge an element's class
where that run's class differs from eager's. Values are judged as before.
"""

from __future__ import annotations

LOW = ("float16", "bfloat16")
LOW_CASTS = {"torch.Tensor.half": "torch.Tensor.float", "torch.Tensor.bfloat16": "torch.Tensor.float"}


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


def upcast_graph(graph):
    """A copy of ``graph`` computing in float32 where it computes in float16/bfloat16, or None
    when it holds no such tensor."""
    if not holds_low_precision(graph):
        return None
    g = graph.copy()
    for info in g.tensors.values():
        if info.dtype in LOW:
            info.dtype = "float32"
    for node in g.nodes:
        node.args, node.kwargs = _upcast(node.args), _upcast(node.kwargs)
        node.op = LOW_CASTS.get(node.op, node.op)
        if node.extra.get("autocast") in LOW:  # an autocast region computes in its low dtype
            node.extra.pop("autocast")
    return g


def float32_outputs(graph, state: dict, inputs: list) -> list | None:
    """The model's outputs computed with float32 intermediates (None: no low-precision tensor,
    or the upcast model does not run)."""
    import torch

    from fuzz.gen import program

    g = upcast_graph(graph)
    if g is None:
        return None

    def up(t):
        return t.detach().float() if isinstance(t, torch.Tensor) and t.dtype in (torch.float16, torch.bfloat16) else t

    try:
        module = program.build_module(g, {k: up(v).cpu() for k, v in state.items()})
        with torch.no_grad():
            out = module(*[up(t).clone() if isinstance(t, torch.Tensor) else t for t in inputs])
    except Exception:  # noqa: BLE001 - no float32 reference: classes judged as before
        return None
    out = list(out) if isinstance(out, (tuple, list)) else [out]
    return out if len(out) == len(graph.outputs) else None


def deferred_float32_outputs(graph, state: dict, inputs: list, pad: int):
    """A function making ``float32_outputs`` (then ``pad`` Nones, for the written state) from
    copies of ``state`` and ``inputs`` taken now, to be called only when needed
    (``oracle.Reference.low32_fn``); None when the graph holds no low-precision tensor."""
    import torch

    if not holds_low_precision(graph):
        return None
    state = {k: v.detach().clone() for k, v in state.items()}
    inputs = [t.detach().clone() if isinstance(t, torch.Tensor) else t for t in inputs]

    def make():
        out = float32_outputs(graph, state, inputs)
        return None if out is None else out + [None] * pad

    return make
