"""Custom operators as program forms (fuzz.gen.custom_op_forms, fuzz.gen.custom_ops): the writes
show where the program reads them, compiled programs wrap the mutating calls in
auto_functionalized, and a saved program registers the operators itself."""

import json
import warnings

import pytest
import torch

from fuzz.gen import interpret, program
from fuzz.gen.chooser import RandomChooser
from fuzz.gen.custom_op_forms import OPS, place_custom_op
from fuzz.ir.graph import Graph, Node
from saved_programs import run_saved_program


def _graph(shape) -> Graph:
    """x -> tanh -> mul(2): the custom call goes after tanh, mul reads what it wrote."""
    g = Graph()
    x = g.add_tensor(shape, "float32", "input", name="x_0")
    y = g.add_tensor(shape, "float32", name="tanh_1")
    z = g.add_tensor(shape, "float32", name="mul_2")
    g.add_node(Node(id="n0", op="torch.tanh", api="function", args=[{"ref": x}], kwargs={}, outputs=[y]))
    g.add_node(Node(id="n1", op="torch.mul", api="function", args=[{"ref": y}, 2.0], kwargs={}, outputs=[z]))
    g.outputs = [z]
    return g


def _inputs(g: Graph, seed: int) -> list:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(g.tensors[i].shape, generator=gen) for i in g.inputs]


def _call(g: Graph) -> Node:
    return next(n for n in g.nodes if "custom_op" in n.extra)


def test_scale_shift_through_a_view_shows_in_the_later_reader():
    """``scale_shift_`` writes into a view of the clone; ``mul`` reads the clone and sees the write."""
    for seed in range(20):
        g = _graph([3, 4, 5])
        assert place_custom_op(g, 0, "scale_shift_", RandomChooser(seed))
        call = _call(g)
        if g.tensors[call.inputs()[0]].shape != [3, 4, 5]:
            break
    else:
        pytest.fail("no seed wrote through a view")
    x = _inputs(g, 0)
    outs = dict(zip(g.outputs, program.run_eager(program.build_module(g, {}), x)))
    view_node = next(n for n in g.nodes if n.outputs == call.inputs()[:1])
    clone = view_node.inputs()[0]
    expected = torch.tanh(x[0]).clone()
    view = interpret.target(view_node)(expected, *view_node.args[1:])
    view.mul_(call.args[1]).add_(call.args[2])
    torch.testing.assert_close(outs[clone], expected)
    torch.testing.assert_close(outs["mul_2"], expected * 2)
    assert not torch.equal(expected, torch.tanh(x[0]))  # the write changed something


def test_mix_writes_two_disjoint_views_of_one_tensor():
    for seed in range(8):
        g = _graph([4, 6])
        assert place_custom_op(g, 0, "mix_", RandomChooser(seed))
        call = _call(g)
        assert call.outputs == []
        parts = [n for n in g.nodes if n.outputs and n.outputs[0] in call.inputs()]
        base = torch.arange(24.0).reshape(4, 6)
        views = [interpret.target(p)(base, *p.args[1:]) for p in parts]
        touched = [set(v.flatten().tolist()) for v in views]
        assert touched[0] and not touched[0] & touched[1]


@pytest.mark.parametrize("kind", OPS)
def test_each_operator_compiles_to_what_eager_computes(kind):
    """aot_eager and inductor agree with the eager program; the mutating operators reach the
    compiled graph wrapped in auto_functionalized (the functionalization under test)."""
    warnings.filterwarnings("ignore")
    graphs = []

    def record(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    for seed in range(3):
        g = _graph([3, 4, 5])
        assert place_custom_op(g, 0, kind, RandomChooser(seed))
        module = program.build_module(g, {})
        ins = _inputs(g, seed)
        eager = program.run_eager(module, ins)
        for backend in ("aot_eager", "inductor"):
            torch._dynamo.reset()
            compiled = torch.compile(module, backend=backend, fullgraph=True)(*ins)
            for a, b in zip(eager, compiled):
                torch.testing.assert_close(b, a)
        torch._dynamo.reset()
        from torch._functorch.aot_autograd import aot_module_simplified

        def aot(gm, example_inputs):
            def fw(gm2, _):
                graphs.append(gm2)
                return gm2.forward
            return aot_module_simplified(gm, example_inputs, fw_compiler=fw)

        with torch.no_grad():
            torch.compile(module, backend=aot, fullgraph=True)(*ins)
    code = "\n".join(gm.code for gm in graphs)
    assert f"assay.{kind}" in code, code
    assert ("auto_functionalized" in code) == (kind != "soft_threshold"), code


def test_soft_threshold_has_a_gradient():
    g = _graph([3, 4])
    assert place_custom_op(g, 0, "soft_threshold", RandomChooser(0))
    x = _inputs(g, 1)[0].requires_grad_(True)
    outs = program.build_module(g, {})(x)
    (grad,) = torch.autograd.grad(sum(o.sum() for o in outs), x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_prune_keeps_a_call_made_for_its_writes():
    g = _graph([3, 4])
    assert place_custom_op(g, 0, "scale_shift_", RandomChooser(0))
    call = _call(g)
    assert call.outputs == []
    g.prune()
    assert call in g.nodes
    again = Graph.from_json(json.loads(json.dumps(g.to_json())))
    again.prune()
    assert [n.op for n in again.nodes] == [n.op for n in g.nodes]


def test_saved_program_registers_the_operators_and_runs_alone(tmp_path):
    g = _graph([2, 3, 4])
    assert place_custom_op(g, 0, "mix_", RandomChooser(1))
    assert place_custom_op(g, 0, "accumulate", RandomChooser(2))
    source = program.program_source(g)
    assert source.count("def define_assay_ops(") == 1 and "\ndefine_assay_ops()\n" in source
    assert "fuzz" not in source
    run_saved_program(g, _inputs(g, 3), tmp_path)
    # a second program in the same process (a campaign worker) finds the operators registered
    program.build_module(g, {})
    program.build_module(_graph([2, 3]), {})


@pytest.mark.parametrize("kind", OPS)
def test_every_operator_runs_on_meta_tensors(kind):
    """Triage's shape propagation and aten_ops run graphs on meta tensors (the fake implementations)."""
    g = _graph([2, 6, 4])
    assert place_custom_op(g, 0, kind, RandomChooser(0))
    assert f"assay.{kind}" in interpret.aten_ops(g)


def test_a_custom_operator_writes_an_input_through_a_view_on_its_line(monkeypatch):
    """The input_write form's custom-operator writer: ``torch.narrow(x_0, ...)`` on the call's line,
    the input named after the write on the next; the interpreter (on a copy of the leaf) and the
    program agree on the written input and on what later calls read."""
    from fuzz.gen import state_forms

    monkeypatch.setattr(state_forms, "INPUT_WRITES", ("custom_op",))
    seen_view = False
    for seed in range(10):
        g = Graph()
        x = g.add_tensor([4, 6], "float32", "input", name="x_0")
        y = g.add_tensor([4, 6], "float32", name="tanh_1")
        z = g.add_tensor([4, 6], "float32", name="mul_2")
        g.add_node(Node(id="n0", op="torch.tanh", api="function", args=[{"ref": x}], kwargs={}, outputs=[y]))
        g.add_node(Node(id="n1", op="torch.mul", api="function", args=[{"ref": x}, {"ref": y}], kwargs={}, outputs=[z]))
        g.outputs = [z]
        assert state_forms.rewrite_input_write(g, 0, RandomChooser(seed))
        write = g.nodes[1]
        assert write.extra["written_result"] and write.extra["writes"] == "x_0"
        src = program.program_source(g)
        assert f"        _ = torch.ops.assay.{write.extra['custom_op']}.default(" in src
        assert f"        {write.outputs[0]} = x_0\n" in src
        seen_view |= "torch.narrow(x_0, " in src
        leaf = torch.randn(4, 6)
        env = interpret.run_graph(g, {"x_0": leaf.clone()}, {})
        given = leaf.clone()
        outs = program.build_module(g, {})(given)
        torch.testing.assert_close(outs[0], env["mul_2"])
        torch.testing.assert_close(given, env[write.outputs[0]])  # the program wrote the input as predicted
        assert not torch.equal(given, leaf)
        assert g.meta["writes"] == [{"state": "x_0", "value": write.outputs[0]}]
    assert seen_view
