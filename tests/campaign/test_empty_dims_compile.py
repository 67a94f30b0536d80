"""Zero-size tensors (``--empty-dims one``, fuzz.gen.empty_dims) through the campaign's modes: a
model whose input has a dim of 0 is saved, loaded, compiled and judged like any other; its empty
outputs and the values computed from nothing (a sum's 0, a mean's NaN, ``addmm``'s ``beta * bias``
over an inner dim of 0) agree between eager and the compiled backends."""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from fuzz.campaign.session import Model, Session
from fuzz.gen import program
from fuzz.gen.config import GenConfig
from fuzz.gen.generate import generate_model_for_index
from fuzz.gen.policy import Shares
from fuzz.gen.ruleset import load_ruleset
from fuzz.ir.graph import Graph, Node

FAULT_DIR = Path(__file__).resolve().parents[2] / "tests" / "fault_injection"


def empty_graph() -> tuple[Graph, dict]:
    """x [4, 0] and w [0, 3]: addmm(b, x, w) = beta * b broadcast, sum(x, 1) = 0, mean(x, 1) = NaN,
    x * 2 an empty output."""
    g = Graph()
    x = g.add_tensor([4, 0], "float32", "input", name="x_0")
    w = g.add_tensor([0, 3], "float32", "input", name="x_1")
    b = g.add_tensor([3], "float32", "input", name="x_2")
    outs = {name: g.add_tensor(shape, "float32", name=name)
            for name, shape in (("addmm_3", [4, 3]), ("sum_4", [4]), ("mean_5", [4]), ("mul_6", [4, 0]))}
    g.add_node(Node(id="n0", op="torch.addmm", api="function", args=[{"ref": b}, {"ref": x}, {"ref": w}],
                    kwargs={"beta": 0.5}, outputs=[outs["addmm_3"]]))
    g.add_node(Node(id="n1", op="torch.sum", api="function", args=[{"ref": x}, 1], kwargs={}, outputs=[outs["sum_4"]]))
    g.add_node(Node(id="n2", op="torch.mean", api="function", args=[{"ref": x}, 1], kwargs={}, outputs=[outs["mean_5"]]))
    g.add_node(Node(id="n3", op="torch.mul", api="function", args=[{"ref": x}, 2.0], kwargs={}, outputs=[outs["mul_6"]]))
    g.outputs = list(outs.values())
    gen = torch.Generator().manual_seed(0)
    tensors = {"x_0": torch.empty(4, 0), "x_1": torch.empty(0, 3), "x_2": torch.randn(3, generator=gen)}
    return g, tensors


def _session(g, tensors, tmp_path) -> Session:
    d = program.save_program(g, tensors, tmp_path / "prog")
    graph, module, inputs = program.load_program(d)
    return Session(Model(graph, module, inputs, {n: (d / n).read_bytes() for n in program.PROGRAM_FILES}))


def test_a_hand_built_empty_model_passes_every_mode(tmp_path):
    g, tensors = empty_graph()
    s = _session(g, tensors, tmp_path)
    eager = program.run_eager(program.build_module(g, {}), [tensors[n] for n in g.inputs])
    assert torch.equal(eager[0], 0.5 * tensors["x_2"].expand(4, 3)) and torch.equal(eager[1], torch.zeros(4))
    assert eager[2].isnan().all() and eager[3].shape == (4, 0)
    for backend, mode in [("aot_eager", "fwd"), ("inductor", "fwd"), ("aot_eager", "bwd"), ("aot_eager", "dynamic")]:
        v = s.run_test(backend, mode)
        assert v.kind == "pass", (backend, mode, v)


def test_a_fault_on_values_computed_from_nothing_is_caught_by_a_campaign(tmp_path, run_assay):
    """A campaign over the saved model with a planted compiler fault (``add`` computes ``a + b +
    0.5``: ``tests/fault_injection``) on ``sum(x, 1) + sum(x, 1)`` of the empty ``x``: a mismatch,
    saved as one case with a repro that fails under the fault and passes without it."""
    g, tensors = empty_graph()
    doubled = g.add_tensor([4], "float32", name="add_7")
    g.add_node(Node(id="n4", op="torch.add", api="function", args=[{"ref": "sum_4"}, {"ref": "sum_4"}], kwargs={},
                    outputs=[doubled]))
    g.outputs = [o for o in g.outputs if o != "sum_4"] + [doubled]
    program.save_program(g, tensors, tmp_path / "progs" / "empty")
    env = dict(os.environ, ASSAY_TEST_FAULT="add",
               PYTHONPATH=os.pathsep.join(p for p in (str(FAULT_DIR), os.environ.get("PYTHONPATH")) if p))
    out = tmp_path / "camp"
    res = run_assay("fuzz", "--programs", tmp_path / "progs", "--backends", "aot_eager", "--modes", "fwd",
                    "--workers", "1", "--out", out, "--time", "5m", "--no-recheck", env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    (case_dir,) = [p.parent for p in out.glob("*/case.json")]
    case = json.loads((case_dir / "case.json").read_text())
    assert case["kind"] == "mismatch" and case["backend"] == "aot_eager", case
    repro = case_dir / "repro.py"
    faulty = subprocess.run([sys.executable, str(repro)], capture_output=True, text=True, env=env, timeout=300)
    assert faulty.returncode == 1, faulty.stdout[-2000:] + faulty.stderr[-2000:]
    clean = subprocess.run([sys.executable, str(repro)], capture_output=True, text=True, timeout=300)
    assert clean.returncode == 0, clean.stdout[-2000:] + clean.stderr[-2000:]


def test_a_generated_empty_model_is_judged_by_aot_eager(tmp_path):
    rs = load_ruleset(None)
    shares = Shares().with_axis("empty_dims", "one").with_axis("shape", "small").with_axis("form", "random") \
        .with_axis("calls", "valid").with_axis("layout", "contiguous")
    for i in range(30):
        m = generate_model_for_index(rs, GenConfig(nodes=4), 5, i, shares)
        if any(0 in m.graph.tensors[n].shape for n in m.graph.inputs):
            break
    else:
        raise AssertionError("no model of 30 kept a zero-size input")
    s = _session(m.graph, m.tensors(), tmp_path)
    v = s.run_test("aot_eager", "fwd")
    assert v.kind == "pass", v
