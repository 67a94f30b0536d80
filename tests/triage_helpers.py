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


def module_graph() -> tuple[Graph, dict]:
    """x -> tanh -> nn.Linear(6, 5) -> relu, with the Linear's weights in the tensors dict."""
    from fuzz.program import module_attr

    g = Graph()
    x = g.add_tensor([3, 6], "float32", "input", name="x")
    a = g.add_tensor([3, 6], "float32")
    g.add_node(Node(id="n0", op="torch.tanh", api="function", args=[ref(x)], kwargs={}, outputs=[a]))
    b = g.add_tensor([3, 5], "float32")
    lin = Node(id="n1", op="torch.nn.Linear", api="module", args=[ref(a)], kwargs={}, outputs=[b],
               init={"args": [6, 5], "kwargs": {}})
    g.add_node(lin)
    c = g.add_tensor([3, 5], "float32")
    g.add_node(Node(id="n2", op="torch.relu", api="function", args=[ref(b)], kwargs={}, outputs=[c]))
    g.outputs = [c]
    gen = torch.Generator().manual_seed(1)
    attr = module_attr(lin)
    tensors = {"x": torch.randn(3, 6, generator=gen),
               f"{attr}.weight": torch.randn(5, 6, generator=gen), f"{attr}.bias": torch.randn(5, generator=gen)}
    return g, tensors
