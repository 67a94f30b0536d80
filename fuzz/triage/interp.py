"""Run a ``Graph`` in this process: meta tensors for shapes, real tensors for values.

The reducer uses it for two things, neither of which runs the code under test:

- ``propagate_shapes``: call every operator on meta tensors, so a changed graph (a node
  dropped, a shape shrunk, an attribute changed) is checked for validity and its tensor
  shapes/dtypes are recomputed before any child process is spent on it;
- ``eager_values``: the value of every tensor under plain eager CPU execution, so a
  dropped node's output can become a new graph input holding exactly the value the
  node produced (the consumers then see the same data they saw before).
"""

from __future__ import annotations

from typing import Any

from fuzz.graph import Graph, Node
from fuzz.trace import decode_value, dtype_name, resolve_op


class InvalidGraph(Exception):
    """The graph cannot be executed (an operator rejected its arguments)."""


def _flatten(result: Any) -> list:
    import torch

    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, (list, tuple)):
        out = []
        for r in result:
            out.extend(_flatten(r))
        return out
    return []


def _module_state(node: Node, tensors: dict) -> dict:
    prefix = f"{node.id}."
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def call_node(node: Node, env: dict, device: str, tensors: dict | None = None) -> list:
    """Call one node with its inputs taken from ``env``; returns its tensor results in order."""
    import torch

    make = lambda d: env[d["ref"]]  # noqa: E731
    args = decode_value(node.args, make, device)
    kwargs = {k: decode_value(v, make, device) for k, v in node.kwargs.items()}
    target = resolve_op(node.op, node.api, node.overload)
    if node.api == "module":
        init = node.init or {"args": [], "kwargs": {}}
        iargs = decode_value(init.get("args", []), make, device)
        ikwargs = {k: decode_value(v, make, device) for k, v in init.get("kwargs", {}).items()}
        with torch.device(device):
            module = target(*iargs, **ikwargs)
        state = _module_state(node, tensors or {})
        if state and device != "meta":
            module.load_state_dict(state, strict=False)
        module.eval()
        result = module(*args, **kwargs)
    else:
        result = target(*args, **kwargs)
    return _flatten(result)


def run_graph(graph: Graph, tensors: dict, device: str = "cpu") -> dict:
    """Every tensor's value (``device="meta"``: its meta tensor) by name."""
    import torch

    env: dict = {}
    for name in graph.inputs + graph.params:
        info = graph.tensors[name]
        if device == "meta":
            env[name] = torch.empty(info.shape, dtype=getattr(torch, info.dtype), device="meta")
        else:
            env[name] = tensors[name]
    for node in graph.nodes:
        try:
            with torch.no_grad():
                results = call_node(node, env, device, tensors)
        except Exception as exc:  # any rejection by an operator makes the graph invalid
            raise InvalidGraph(f"{node.id} {node.name}: {type(exc).__name__}: {str(exc)[:200]}") from None
        if len(results) < len(node.outputs):
            raise InvalidGraph(f"{node.id} {node.name}: {len(results)} tensor results for {len(node.outputs)} outputs")
        for name, value in zip(node.outputs, results):
            env[name] = value
    return env


def propagate_shapes(graph: Graph) -> Graph:
    """Recompute every value tensor's shape and dtype in place by running the graph on meta tensors.

    Raises ``InvalidGraph`` when an operator rejects the (changed) graph.
    """
    env = run_graph(graph, {}, "meta")
    for node in graph.nodes:
        for name in node.outputs:
            value = env[name]
            info = graph.tensors[name]
            info.shape = [int(d) for d in value.shape]
            info.dtype = dtype_name(value.dtype)
    return graph


def eager_values(graph: Graph, tensors: dict) -> dict:
    """Every tensor's eager CPU value (detached clones); raises ``InvalidGraph`` on failure."""
    env = run_graph(graph, tensors, "cpu")
    return {k: v.detach().clone() for k, v in env.items()}
