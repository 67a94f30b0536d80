"""The complex64 dtype theme (fuzz.gen.complex_boundary): complex tensors inside a model, float32
(re, im) pairs at its boundary, judged by the real oracle against a complex128 reference."""

import pytest
import torch

from fuzz.campaign.copies import clone_inputs, to64
from fuzz.campaign.oracle import Kind, Reference, judge
from fuzz.gen.complex_boundary import real_boundary
from fuzz.gen.config import GenConfig
from fuzz.gen.generate import generate_model_for_index
from fuzz.gen.policy import DEFAULT_SHARES, ModelPolicy, Shares
from fuzz.gen.program import build_module, program_source, run_eager
from fuzz.gen.ruleset import load_ruleset, themed
from fuzz.ir.graph import Graph, Node


@pytest.fixture(scope="module")
def ruleset():
    return load_ruleset()


def _models(ruleset, n, seed=3):
    cfg = GenConfig(nodes=5, policy=ModelPolicy(dtype="complex64"))
    return [generate_model_for_index(ruleset, cfg, seed, i) for i in range(n)]


def test_complex_rules_are_the_themes_own_and_no_other_model_holds_a_complex_tensor(ruleset):
    cx = themed(ruleset, "complex64")
    assert "complex64" in cx.allowed and "complex64" not in ruleset.allowed
    makers = {op for (rank, dt), ops in cx.ops_making.items() if dt == "complex64" for op in ops}
    assert {"torch.view_as_complex", "torch.fft.fft", "torch.polar"} <= makers
    assert not any(dt.startswith("complex") for _, dt in ruleset.ops_making)
    # a module built with a complex dtype would hold complex parameters: none is kept
    assert not [op for op, infos in cx.by_op.items() for info in infos
                if info.rule.api == "module" and any("complex64" in (*i, *o) for i, o in info.combos)]
    mix = Shares().with_axis("dtype", "mix")
    for i in range(8):
        m = generate_model_for_index(ruleset, GenConfig(nodes=5), 3, i, mix)
        assert not any(t.dtype.startswith("complex") for t in m.graph.tensors.values())
    assert DEFAULT_SHARES["dtype"]["complex64"] > 0


def test_complex_models_hold_complex_tensors_inside_and_take_and_return_real_ones(ruleset):
    models = _models(ruleset, 10)
    inside = [m for m in models if any(t.dtype == "complex64" for t in m.graph.tensors.values())]
    assert len(inside) >= 6
    for m in inside:
        g = m.graph
        for name in g.inputs:
            assert not g.tensors[name].dtype.startswith("complex")
        for o in g.outputs:
            assert not g.tensors[o].dtype.startswith("complex")
        made = g.meta["complex_boundary"]
        assert made["inputs"] or made["outputs"]
        src = program_source(g)
        for n in g.nodes:
            if n.op == "torch.view_as_complex" and n.inputs()[0] in g.inputs:
                assert f"{n.outputs[0]} = torch.view_as_complex({n.inputs()[0]})" in src
                assert n.inputs()[0].startswith(n.outputs[0] + "_re_im")
        outs = run_eager(build_module(g, m.state), m.forward_inputs())
        assert all(not o.is_complex() for o in outs if isinstance(o, torch.Tensor))


def test_the_float64_reference_of_a_complex_model_computes_in_complex128(ruleset):
    from torch.utils._python_dispatch import TorchDispatchMode

    class Dtypes(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.seen = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in (out if isinstance(out, (tuple, list)) else [out]):
                if isinstance(t, torch.Tensor):
                    self.seen.add(t.dtype)
            return out

    # a model that names no dtype itself (an explicit cast stays what it says in the reference, as
    # for real models: fuzz.campaign.lowprec)
    m = next(m for m in _models(ruleset, 10) if m.graph.meta.get("complex_boundary", {}).get("inputs")
             and not any(w in program_source(m.graph).split("class Model")[1] for w in ("torch.complex64", "torch.float32", ".float(")))
    m64 = to64(build_module(m.graph, m.state))
    inputs = clone_inputs(m.forward_inputs(), "cpu", dtype64=True)
    mode = Dtypes()
    with torch.no_grad(), mode:
        m64(*inputs)
    assert torch.complex128 in mode.seen and torch.complex64 not in mode.seen


def test_real_boundary_keeps_what_the_graph_computes():
    g = Graph()
    g.add_tensor([3, 4], "complex64", "input", name="z")
    g.add_tensor([3, 4], "complex64", "value", name="conj_1")
    g.add_tensor([3, 4], "complex64", "value", name="mul_2")
    g.add_node(Node("n0", "torch.conj", "function", [{"ref": "z"}], {}, ["conj_1"]))
    g.add_node(Node("n1", "torch.mul", "function", [{"ref": "conj_1"}, {"ref": "z"}], {}, ["mul_2"]))
    g.outputs = ["conj_1", "mul_2"]
    assert real_boundary(g)
    assert g.inputs == ["z_re_im"] and g.tensors["z_re_im"].shape == [3, 4, 2]
    assert [g.tensors[o].dtype for o in g.outputs] == ["float32", "float32"]
    g.topological_check()
    pair = torch.randn(3, 4, 2)
    z = torch.view_as_complex(pair)
    got = run_eager(build_module(g, {}), [pair])
    # conj_1 is a lazily conjugated view: returned resolved, as real (re, im) pairs
    assert torch.equal(got[0], torch.view_as_real(z.conj().resolve_conj()))
    assert torch.allclose(got[1], torch.view_as_real(z.conj() * z))
    assert not real_boundary(g)  # nothing complex left at the boundary


def test_the_oracle_judges_both_parts_of_a_complex_output_and_reads_a_lazy_conjugate():
    z = torch.randn(5, dtype=torch.complex64)
    ref = Reference(["out0"], [z.conj()], [z.to(torch.complex128).conj()])
    assert judge(ref, [z.conj().resolve_conj()]).kind == Kind.PASS
    wrong = z.clone()  # the imaginary part's sign lost: what a missed conjugation gives
    assert judge(ref, [wrong]).kind == Kind.MISMATCH


def test_complex_arithmetic_on_an_infinite_part_is_not_judged_but_moving_it_is():
    from fuzz.campaign.sensitivity import sensitive_tensors

    g = Graph()
    for name in ("z", "w"):
        g.add_tensor([2, 2], "complex64", "input", name=name)
    for name in ("mul_1", "shape_2", "t_3"):
        g.add_tensor([2, 2], "complex64", name=name)
    g.add_node(Node("n0", "torch.mul", "function", [{"ref": "z"}, {"ref": "w"}], {}, ["mul_1"]))
    g.add_node(Node("n1", "torch.Tensor.view_as", "function", [{"ref": "z"}, {"ref": "w"}], {}, ["shape_2"]))
    g.add_node(Node("n2", "torch.t", "function", [{"ref": "w"}], {}, ["t_3"]))
    g.outputs = ["mul_1", "shape_2", "t_3"]
    z = torch.randn(2, 2, dtype=torch.complex64)
    w = torch.randn(2, 2, dtype=torch.complex64)

    def env(w):
        return {"z": z, "w": w, "mul_1": z * w, "shape_2": z.view_as(w), "t_3": w.t()}

    assert sensitive_tensors(g, env(w), None) == {}
    w_inf = w.clone()
    w_inf[0, 0] = complex(float("inf"), 0.0)
    got = sensitive_tensors(g, env(w_inf), None)
    # (inf + 0j) * (a + bj): (inf*a, inf*b) by the schoolbook formula, but 0 * inf = nan in a part
    # once a compiler forms it another way
    assert "complex arithmetic on a NaN or infinite part" in got["mul_1"]
    # a shape donor and a transpose move no value through arithmetic: still judged
    assert "shape_2" not in got and "t_3" not in got


@pytest.mark.parametrize("mutator", ["delete", "splice"])
def test_a_mutant_of_a_complex_model_still_takes_and_returns_real_tensors(ruleset, mutator, tmp_path):
    from fuzz.gen.mutate import mutate
    from fuzz.gen.program import save_program

    made = [m for m in _models(ruleset, 10) if m.graph.meta["complex_boundary"]["inputs"]][:2]
    dirs = [save_program(m.graph, m.tensors(), tmp_path / f"s{i}") for i, m in enumerate(made)]
    for k in range(4):
        m = mutate({"mutator": mutator, "seed_dir": str(dirs[0]), "other_dir": str(dirs[1]), "rng": k}, nodes=5)
        g = m.graph
        assert not any(g.tensors[t].dtype.startswith("complex") for t in [*g.inputs, *g.outputs])
        run_eager(build_module(g, m.state), m.forward_inputs())


def test_model_shaped_complex_models_start_from_a_complex_input(ruleset):
    cfg = GenConfig(nodes=5, policy=ModelPolicy(dtype="complex64", form="blocks"))
    models = [generate_model_for_index(ruleset, cfg, 0, i) for i in range(6)]
    for m in models:
        assert m.graph.meta["blocks"]
        first = next(n for n in m.graph.nodes if n.op == "torch.view_as_complex")
        assert m.graph.tensors[first.outputs[0]].dtype == "complex64"
        run_eager(build_module(m.graph, m.state), m.forward_inputs())
