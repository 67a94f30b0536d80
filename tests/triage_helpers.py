"""Graphs for the triage tests, built directly with the Graph IR (no generator needed)."""

from __future__ import annotations

import torch

from fuzz.graph import Graph, Node


def ref(name: str) -> dict:
    return {"ref": name}


def chain_graph(n_extra: int = 0) -> tuple[Graph, dict]:
    """A 9-node graph: two inputs, a param, elementwise ops, a linear, a reduction."""
    g = Graph()
    x = g.add_tensor([4, 6], "float32", "input", name="x")
    y = g.add_tensor([4, 6], "float32", "input", name="y")
    w = g.add_tensor([5, 6], "float32", "param", name="w")

    def call(op, args, shape, kwargs=None, dtype="float32"):
        out = g.add_tensor(shape, dtype)
        g.add_node(Node(id=g.new_node_id(), op=op, api="function", args=args, kwargs=kwargs or {}, outputs=[out]))
        return out

    a = call("torch.sigmoid", [ref(x)], [4, 6])
    b = call("torch.mul", [ref(a), ref(y)], [4, 6])
    c = call("torch.tanh", [ref(b)], [4, 6])
    d = call("torch.nn.functional.relu", [ref(c)], [4, 6])
    e = call("torch.add", [ref(d), ref(x)], [4, 6], {"alpha": 2})
    f = call("torch.nn.functional.linear", [ref(e), ref(w)], [4, 5])
    h = call("torch.exp", [ref(f)], [4, 5])
    i = call("torch.sum", [ref(h), 1], [4])
    j = call("torch.cos", [ref(e)], [4, 6])
    g.outputs = [i, j]
    gen = torch.Generator().manual_seed(0)
    tensors = {
        "x": torch.randn(4, 6, generator=gen),
        "y": torch.randn(4, 6, generator=gen),
        "w": torch.randn(5, 6, generator=gen),
    }
    g.topological_check()
    return g, tensors
