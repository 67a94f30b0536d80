"""Shape arguments written as sizes of tensors (fuzz.gen.size_args, ``--shape-args sizes``): the
program reads its sizes from its tensors, so it runs at other sizes and compiles them as symbols."""

import json

import torch

from fuzz.gen import interpret, program
from fuzz.gen.chooser import RandomChooser
from fuzz.gen.policy import AXES, ModelPolicy, Shares, draw_policy
from fuzz.gen.size_args import write_sizes
from fuzz.ir.graph import Graph, Node, replace_refs


def _reshape_graph() -> Graph:
    """x [3, 4, 5] -> reshape [3, 20] -> sum over dim 1 (a dim that is no size) -> new_zeros (3, 20) added."""
    g = Graph()
    x = g.add_tensor([3, 4, 5], "float32", "input", name="x_0")
    r = g.add_tensor([3, 20], "float32", name="reshape_1")
    s = g.add_tensor([3], "float32", name="sum_2")
    z = g.add_tensor([3, 20], "float32", name="add_3")
    g.add_node(Node(id="n0", op="torch.reshape", api="function", args=[{"ref": x}, [3, 20]], kwargs={}, outputs=[r]))
    g.add_node(Node(id="n1", op="torch.sum", api="function", args=[{"ref": r}, 1], kwargs={}, outputs=[s]))
    g.add_node(Node(id="n2", op="torch.add", api="function", args=[{"ref": r}, 3], kwargs={}, outputs=[z]))
    g.outputs = [s, z]
    return g


def _rewritten(seed: int = 0) -> Graph:
    for s in range(seed, seed + 50):  # REWRITE_CHANCE: find a seed that rewrote both sizes of the reshape
        g = _reshape_graph()
        write_sizes(g, RandomChooser(s))
        if all(isinstance(v, dict) for v in g.nodes[0].args[1]):
            return g
    raise AssertionError("no seed rewrote the reshape's sizes")


def test_sizes_are_read_from_the_tensors_and_dims_stay_constants():
    g = _rewritten()
    src = program.program_source(g)
    assert "torch.reshape(x_0, [x_0.size(0), x_0.size(1) * x_0.size(2)])" in src
    assert "torch.sum(reshape_1, 1)" in src  # 1 < rank: a dim index, never a size
    assert g.meta["size_args"] >= 2
    assert set(g.nodes[0].inputs()) == {"x_0"}  # a size read is a read of the tensor (liveness, renames)


def test_the_model_is_unchanged_at_its_sizes_and_runs_at_others():
    g, before = _rewritten(), _reshape_graph()
    x = torch.randn(3, 4, 5)
    new = program.run_eager(program.build_module(g, {}), [x])
    old = program.run_eager(program.build_module(before, {}), [x])
    for a, b in zip(new, old):
        assert torch.equal(a, b)
    bigger = program.run_eager(program.build_module(g, {}), [torch.randn(6, 4, 7)])
    assert bigger[0].shape == (6,)
    try:
        program.run_eager(program.build_module(before, {}), [torch.randn(6, 4, 7)])
        raise AssertionError("the constant reshape accepted other sizes")
    except RuntimeError:
        pass


def test_dynamic_compile_traces_the_sizes_as_symbols():
    """Compiled with dynamic=True, one graph serves both sizes and gives eager's values."""
    from torch._dynamo.utils import counters

    g = _rewritten()
    module = program.build_module(g, {})
    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(module, backend="aot_eager", dynamic=True)
    for shape in ((3, 4, 5), (6, 4, 7)):
        x = torch.randn(*shape)
        for a, b in zip(compiled(x), program.run_eager(module, [x])):
            torch.testing.assert_close(a, b)
    assert counters["stats"]["unique_graphs"] == 1


def test_size_expressions_survive_json_renames_and_meta_runs():
    g = _rewritten()
    again = Graph.from_json(json.loads(json.dumps(g.to_json())))
    assert program.program_source(again) == program.program_source(g)
    assert "aten.view" in interpret.aten_ops(again) or "aten.reshape" in interpret.aten_ops(again) \
        or "aten._unsafe_view" in interpret.aten_ops(again)
    renamed = replace_refs(g.nodes[0].args, {"x_0": "y_9"})
    assert "x_0" not in json.dumps(renamed) and json.dumps(renamed).count("y_9") == 4


def test_policy_axis_is_drawn_after_the_older_ones_and_saved_only_when_not_constant():
    assert list(AXES).index("shape_args") == list(AXES).index("calls") + 1
    assert "shape_args" not in ModelPolicy().to_json()
    assert ModelPolicy.from_json({"shape_args": "sizes"}).shape_args == "sizes"
    # the axes drawn before it keep their draws: same choices as a draw that ignores it
    shares = Shares()
    only = Shares().with_axis("shape_args", "constant")
    for i in range(20):
        a, b = draw_policy(shares, 3, i), draw_policy(only, 3, i)
        assert {k: v for k, v in a.to_json().items() if k not in ("shape_args", "empty_dims")} \
            == {k: v for k, v in b.to_json().items() if k != "empty_dims"}


def test_the_graph_listing_writes_sizes_as_code_does():
    """``Graph.render`` (triage show, the reducer's log) prints a size read as ``x_0.size(1)``, not
    as the encoded call."""
    listing = _rewritten().render()
    assert "torch.reshape(x_0, [x_0.size(0), x_0.size(1) * x_0.size(2)])" in listing
    assert "'call'" not in listing
