"""Run a ``Graph`` in this process: meta tensors for shapes, real tensors for values.

Built on the generator's node-by-node interpreter (``fuzz.gen.interpret``), so calls are made
exactly as the program source makes them. The reducer uses it for two things, neither of
which runs the compiler under test:

- ``propagate_shapes``: call every operator on meta tensors, so a changed graph (a node
  dropped, a shape shrunk, an attribute changed) is checked for validity and its tensor
  shapes/dtypes are recomputed before any child process is spent on it;
- ``eager_values``: the value of every tensor under plain eager CPU execution, so a
  dropped node's output can become a new graph input holding exactly the value the
  node produced (the consumers then see the same data they saw before).

``tensors`` everywhere is one dict: graph inputs and params by graph name, plus submodule
weights by state-dict key (``<module attr>.<name>``), the form ``fuzz.gen.program.save_program``
takes.
"""

from __future__ import annotations

import warnings

from fuzz.ir.graph import Graph
from fuzz.ir.record import dtype_name


class InvalidGraph(Exception):
    """The graph cannot be executed (an operator rejected its arguments)."""


def module_state_keys(graph: Graph, tensors: dict) -> list[str]:
    """Keys of ``tensors`` that are weights of the graph's module nodes."""
    from fuzz.gen.program import module_attr

    prefixes = tuple(module_attr(n) + "." for n in graph.nodes if n.api == "module")
    return [k for k in tensors if prefixes and k.startswith(prefixes)]


def run_graph(graph: Graph, tensors: dict, device: str = "cpu") -> dict:
    """Every tensor's value (``device="meta"``: its meta tensor) by name; ``InvalidGraph`` on failure."""
    import torch

    from fuzz.gen import interpret

    try:
        if device == "meta":
            leaves = {n: torch.empty(graph.tensors[n].shape, dtype=getattr(torch, graph.tensors[n].dtype), device="meta")
                      for n in graph.inputs + graph.params}
            with torch.device("meta"), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # zero-element init on meta is a no-op: fine
                submodules = interpret.build_submodules(graph, "meta")
        else:
            leaves = {n: tensors[n] for n in graph.inputs + graph.params}
            submodules = interpret.build_submodules(graph, device, {k: tensors[k] for k in module_state_keys(graph, tensors)})
        with torch.no_grad():
            return interpret.run_graph(graph, leaves, submodules, device, check=False)
    except interpret.NodeError as exc:
        raise InvalidGraph(str(exc)[:300]) from None
    except Exception as exc:  # building a submodule, a missing tensor, a bad structure
        raise InvalidGraph(f"{type(exc).__name__}: {str(exc)[:300]}") from None


def aten_ops(graph: Graph) -> list[str]:
    """The ATen operators the graph's calls dispatch to (run on meta tensors), sorted.

    ``torch.nn.functional.relu``, ``torch.nn.ReLU`` and ``aten::relu`` all give ``aten.relu``:
    triage uses this to see that reduced cases spelled differently are the same bug.
    Raises ``InvalidGraph`` when the graph cannot run on meta tensors.
    """
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    from fuzz.gen import interpret

    seen: set[str] = set()
    ignore = {"aten.detach", "aten.alias", "aten.empty", "aten.empty_strided", "aten.lift_fresh"}

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = str(func.overloadpacket)
            if name not in ignore:
                seen.add(name)
            return func(*args, **(kwargs or {}))

    try:
        leaves = {n: torch.empty(graph.tensors[n].shape, dtype=getattr(torch, graph.tensors[n].dtype), device="meta")
                  for n in graph.inputs + graph.params}
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            submodules = interpret.build_submodules(graph, "meta")
        with torch.no_grad(), Record():
            interpret.run_graph(graph, leaves, submodules, "meta", check=False)
    except Exception as exc:
        raise InvalidGraph(f"{type(exc).__name__}: {str(exc)[:200]}") from None
    return sorted(seen)


def propagate_shapes(graph: Graph) -> Graph:
    """Recompute every value tensor's shape and dtype in place by running the graph on meta tensors.

    Raises ``InvalidGraph`` when an operator rejects the (changed) graph.
    """
    env = run_graph(graph, {}, "meta")
    for node in graph.nodes:
        for name in node.outputs:
            value = env.get(name)
            if value is None:
                raise InvalidGraph(f"{node.id}: no value for {name}")
            info = graph.tensors[name]
            info.shape = [int(d) for d in value.shape]
            info.dtype = dtype_name(value.dtype)
    return graph


def eager_values(graph: Graph, tensors: dict) -> dict:
    """Every tensor's eager CPU value (detached clones); raises ``InvalidGraph`` on failure."""
    env = run_graph(graph, tensors, "cpu")
    return {k: v.detach().clone() for k, v in env.items() if hasattr(v, "detach")}
