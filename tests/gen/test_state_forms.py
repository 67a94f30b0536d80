"""State forms (fuzz.gen.state_forms): a buffer updated in forward and a write into a graph input.
The program writes the real buffer or input, the generator's interpreter a copy of it (its leaves
stay as drawn) and both compute the same values; generated models of each form run eagerly and
standalone, and their saved program names what it writes (WRITES)."""

import subprocess
import sys
import warnings

import pytest
import torch

from fuzz.gen import interpret, program
from fuzz.gen.chooser import RandomChooser
from fuzz.gen.config import GenConfig
from fuzz.gen.forms import FORMS, REWRITES
from fuzz.gen.generate import generate_model_for_index
from fuzz.gen.policy import ModelPolicy
from fuzz.gen.ruleset import load_ruleset
from fuzz.gen.state_forms import MOMENTUM
from fuzz.ir.graph import written_state
from fuzz.ir.graph import Graph, Node


def _chain() -> Graph:
    """x[4, 5] -> exp -> add(., y) -> tanh."""
    g = Graph()
    for name, role in (("x_0", "input"), ("y_1", "input"), ("exp_2", "value"), ("add_3", "value"), ("tanh_4", "value")):
        g.add_tensor([4, 5], "float32", role, name=name)
    for k, (op, args, out) in enumerate((("torch.exp", ["x_0"], "exp_2"), ("torch.add", ["exp_2", "y_1"], "add_3"),
                                          ("torch.tanh", ["add_3"], "tanh_4"))):
        g.add_node(Node(f"n{k}", op, "function", [{"ref": a} for a in args], {}, [out]))
    g.outputs = ["tanh_4"]
    return g


X, Y = torch.rand(4, 5), torch.rand(4, 5)


def test_state_forms_are_forms_values():
    assert {"buffer", "input_write"} <= set(FORMS) and {"buffer", "input_write"} <= set(REWRITES)


@pytest.mark.parametrize("seed", range(4))
def test_buffer_is_a_running_mean_updated_in_forward(seed):
    g = _chain()
    assert REWRITES["buffer"](g, 0, RandomChooser(seed))
    (running, value), *counter = written_state(g)
    assert running in g.meta["buffers"] and g.tensors[running].shape == [5]
    src = program.program_source(g)
    assert f"self.register_buffer({running!r}" in src and f"torch.Tensor.lerp_(self.{running}," in src
    assert "torch.nn.Parameter" not in src  # a buffer: no gradient, in the state dict
    start = torch.randn(5)
    tensors = {running: start.clone()}
    if counter:
        steps = counter[0][0]
        tensors[steps] = torch.tensor(7)
    module = program.build_module(g, tensors)
    first = program.run_eager(module, [X, Y])
    after = start + MOMENTUM * (X.mean(0) - start)
    assert torch.allclose(module.get_buffer(running), after)
    assert torch.allclose(first[0], torch.tanh(torch.exp(X - after) + Y))  # later readers read x centred
    second = program.run_eager(module, [X, Y])
    assert torch.allclose(module.get_buffer(running), after + MOMENTUM * (X.mean(0) - after))
    assert not torch.allclose(first[0], second[0])  # the state carries over between calls
    if counter:
        assert int(module.get_buffer(steps)) == 9 and int(second[-1]) == 9
    # The interpreter writes into a copy: the leaves stay as given, the values are the program's.
    leaves = {"x_0": X, "y_1": Y, **tensors}
    kept = {k: v.clone() for k, v in leaves.items()}
    env = interpret.run_graph(g, leaves, {})
    assert all(torch.equal(leaves[k], kept[k]) for k in kept)
    assert torch.allclose(env[value], after) and torch.allclose(env["tanh_4"], first[0])


@pytest.mark.parametrize("seed", range(8))
def test_input_write_shows_in_later_readers(seed):
    g = _chain()
    if not REWRITES["input_write"](g, 0, RandomChooser(seed)):
        pytest.skip("no write fits this draw")  # seeds below cover each kind (asserted in the next test)
    (x, value), = written_state(g)
    write = next(n for n in g.nodes if n.extra.get("writes") == x)
    assert write.op.startswith("torch.Tensor.") and write.op.endswith("_") or write.op.startswith("assay::")
    later = g.nodes[g.nodes.index(write) + 1:]
    assert all(x not in n.inputs() for n in later) and any(value in n.inputs() for n in later)
    ins = {"x_0": X, "y_1": Y}
    for name in g.inputs:
        if name not in ins:  # index_put_'s index and value
            ins[name] = torch.tensor([1, 0]) if g.tensors[name].dtype == "int64" else torch.tensor(3.0)
    given = [ins[n].clone() for n in g.inputs]
    out = program.run_eager(program.build_module(g), given)
    env = interpret.run_graph(g, {k: v.clone() for k, v in ins.items()}, {})
    assert torch.equal(given[g.inputs.index(x)], env[value])  # the program wrote the input itself
    assert not torch.equal(env[value], ins[x])
    assert torch.allclose(out[0], env["tanh_4"])


def test_input_write_kinds_and_aliasing():
    kinds = set()
    for seed in range(12):
        g = _chain()
        if REWRITES["input_write"](g, 0, RandomChooser(seed)):
            kinds.add(next(n.op for n in g.nodes if n.extra.get("writes")).split(".")[-1].partition("::")[0])
    assert {"add_", "mul_", "index_put_", "assay"} <= kinds
    # A value made before the write that shares x's storage (a view) would see the write: refused.
    g = Graph()
    g.add_tensor([4, 5], "float32", "input", name="x_0")
    g.add_tensor([5, 4], "float32", "value", name="t_1")
    g.add_tensor([5, 4], "float32", "value", name="e_2")
    g.add_tensor([4, 5], "float32", "value", name="s_3")
    g.add_node(Node("n0", "torch.transpose", "function", [{"ref": "x_0"}, 0, 1], {}, ["t_1"]))
    g.add_node(Node("n1", "torch.exp", "function", [{"ref": "t_1"}], {}, ["e_2"]))
    g.add_node(Node("n2", "torch.sin", "function", [{"ref": "x_0"}], {}, ["s_3"]))
    g.outputs = ["e_2", "s_3"]
    assert not any(REWRITES["input_write"](g, 0, RandomChooser(s)) for s in range(6))
    assert "writes" not in g.meta and len(g.nodes) == 3


@pytest.fixture(scope="module")
def state_models():
    """The first generated forms models (seed 13, 8 nodes) holding a buffer ("buffer"), an input
    write ("input") and a second buffer ("buffer2"), found by index (which index holds which form
    moves whenever a form is added to the draw)."""
    warnings.filterwarnings("ignore")
    cfg = GenConfig(nodes=8, policy=ModelPolicy(form="forms"))
    rules = load_ruleset()
    found = {}
    for i in range(60):
        m = generate_model_for_index(rules, cfg, 13, i)
        forms = m.graph.meta.get("forms", [])
        if "input_write" in forms and "input" not in found:
            found["input"] = m
        elif "buffer" in forms:
            found.setdefault("buffer2" if "buffer" in found else "buffer", m)
        if len(found) == 3:
            return found
    raise AssertionError(f"60 forms models hold only {sorted(found)}")


def test_generated_state_models_run_eagerly_and_standalone(state_models, tmp_path):
    forms = {i: m.graph.meta["forms"] for i, m in state_models.items()}
    assert "buffer" in forms["buffer"] and "input_write" in forms["input"] and "buffer" in forms["buffer2"]
    for i, m in state_models.items():
        writes = written_state(m.graph)
        assert writes
        module = program.build_module(m.graph, m.state)
        before = {k: v.clone() for k, v in module.state_dict().items()}
        given = [t.clone() for t in m.inputs]
        program.run_eager(module, given)
        changed = [k for k, v in module.state_dict().items() if not torch.equal(v, before[k])]
        changed += [n for n, a, b in zip(m.graph.inputs, given, m.inputs) if not torch.equal(a.nan_to_num(), b.nan_to_num())]
        assert sorted(changed) == sorted(s for s, _ in writes), i
        program.save_program(m.graph, m.tensors(), tmp_path / str(i))
        assert "\nWRITES = [" in (tmp_path / str(i) / "program.py").read_text()
    r = subprocess.run([sys.executable, str(tmp_path / "buffer2" / "program.py")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]


def test_state_models_compile_and_write_the_same_state(state_models):
    for i in ("buffer", "input"):
        m = state_models[i]
        torch._dynamo.reset()
        eager_module = program.build_module(m.graph, m.state)
        compiled_module = program.build_module(m.graph, m.state)
        eager_in, compiled_in = [t.clone() for t in m.inputs], [t.clone() for t in m.inputs]
        expected = program.run_eager(eager_module, eager_in)
        with torch.no_grad():
            got = torch.compile(compiled_module, backend="aot_eager")(*compiled_in)
        for e, g in zip(expected, got):
            torch.testing.assert_close(g, e, rtol=1e-3, atol=1e-3, equal_nan=True)
        for a, b in zip(list(eager_module.buffers()) + eager_in, list(compiled_module.buffers()) + compiled_in):
            torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-3, equal_nan=True)
