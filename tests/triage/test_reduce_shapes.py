"""A reduced graph lists the sizes it computes, also where meta tensors cannot run it."""

import torch

from fuzz.gen.interpret import InvalidGraph, propagate_shapes
from fuzz.ir.graph import Graph, Node
from fuzz.triage.reduce import reduce_graph


def test_a_graph_meta_tensors_cannot_run_gets_its_value_shapes_from_an_eager_run():
    g = Graph()
    x = g.add_tensor([4, 6], "float32", "input", name="x")
    w = g.add_tensor([6, 5], "float32", "input", name="w")
    y = g.add_tensor([4, 5], "bfloat16", name="prod")
    g.add_node(Node(id="n0", op="torch.mm", api="function", args=[{"ref": x}, {"ref": w}], kwargs={}, outputs=[y],
                    extra={"autocast": "bfloat16"}))  # autocast has no meta device: propagate_shapes fails
    g.outputs = [y]
    try:
        propagate_shapes(g.copy())
        raise AssertionError("meta tensors ran an autocast region: this test no longer covers the fallback")
    except InvalidGraph:
        pass
    tensors = {"x": torch.randn(4, 6), "w": torch.randn(6, 5)}
    r = reduce_graph(g, tensors, lambda graph, t: True, time_budget=60)
    (node,) = r.graph.nodes
    a, b = (r.graph.tensors[t].shape for t in node.inputs())
    shrunk = [a[0], b[1]]
    assert shrunk != [4, 5]  # the sizes were shrunk...
    assert r.graph.tensors["prod"].shape == shrunk and r.graph.tensors["prod"].dtype == "bfloat16"  # ...and listed
