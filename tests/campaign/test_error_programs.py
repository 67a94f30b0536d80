"""Programs eager rejects (fuzz.gen.error_calls): made from the corpus's invalid calls, and every
backend must reject them too; a compiled program that returns values instead is caught."""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from fuzz.campaign.error_session import DETAIL, ErrorSession, is_error_program
from fuzz.campaign.session import Model
from fuzz.gen import program
from fuzz.gen.config import GenConfig
from fuzz.gen.error_calls import ERROR_TYPES, NOT_A_CHECK, error_model, error_records
from fuzz.gen.generate import generate_model_for_index
from fuzz.gen.policy import Shares
from fuzz.gen.ruleset import load_ruleset
from fuzz.ir.graph import Graph, Node

REPO = Path(__file__).resolve().parents[2]
FAULT_DIR = REPO / "tests" / "fault_injection"


def test_the_records_are_argument_checks_of_eager_not_missing_kernels():
    records = error_records()
    assert len(records) > 1000
    for r in records[:: max(1, len(records) // 500)]:
        assert not r.ok and r.error["type"] in ERROR_TYPES
        assert not any(m in r.error["message"].lower() for m in NOT_A_CHECK), r.error["message"]
        assert "out" not in r.kwargs
    # eager failing inside its own kernel (logsumexp of no dims), private operators (what
    # _softmax_backward_data checks is internal): both were the first campaign's false alarms
    assert not any("doesn't match the broadcast shape" in r.error["message"] for r in records)
    assert not any("TensorAccessor expected" in r.error["message"] for r in records)  # 29 records before
    assert not any(r.op.rsplit(".", 1)[-1].rsplit("::", 1)[-1].startswith("_") for r in records)


def test_an_error_program_is_deterministic_and_eager_rejects_it_in_its_own_program(tmp_path):
    g, inputs, state = error_model(3, 7)
    again, inputs2, _ = error_model(3, 7)
    assert g.dumps() == again.dumps() and all(torch.equal(inputs[k], inputs2[k]) for k in inputs)
    assert is_error_program(g) and g.meta["eager_raises"]["type"] in ERROR_TYPES
    program.save_program(g, {**inputs, **state}, tmp_path / "prog")
    run = subprocess.run([sys.executable, str(tmp_path / "prog" / "program.py")], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode != 0 and g.meta["eager_raises"]["type"] in run.stderr


def test_the_calls_axis_makes_error_programs_and_valid_models_as_before():
    rs = load_ruleset(None)
    made = generate_model_for_index(rs, GenConfig(nodes=4), 0, 2, Shares().with_axis("calls", "invalid"))
    assert is_error_program(made.graph) and made.graph.meta["policy"]["calls"] == "invalid"
    valid = generate_model_for_index(rs, GenConfig(nodes=4), 0, 2, Shares().with_axis("calls", "valid"))
    assert not is_error_program(valid.graph) and "calls" not in valid.graph.meta["policy"]


def index_graph() -> tuple[Graph, dict]:
    """``torch.index_select(x, 0, idx)`` with an index past the end: eager raises IndexError when it
    runs (no shape check can see it: the bound is on the index's values)."""
    g = Graph()
    x = g.add_tensor([3, 4], "float32", "input", name="x")
    idx = g.add_tensor([2], "int64", "input", name="idx")
    g.add_tensor([2, 4], "float32", name="picked")
    g.add_node(Node(id="n0", op="torch.index_select", api="function", args=[{"ref": x}, 0, {"ref": idx}],
                    kwargs={}, outputs=["picked"], kind="concrete"))
    g.outputs = ["picked"]
    g.meta["eager_raises"] = {"type": "IndexError", "message": "index out of range in self"}
    return g, {"x": torch.rand(3, 4, generator=torch.Generator().manual_seed(0)), "idx": torch.tensor([0, 7])}


def test_a_backend_that_rejects_the_call_passes_every_mode(tmp_path):
    g, t = index_graph()
    d = program.save_program(g, t, tmp_path / "prog")
    graph, module, inputs = program.load_program(d)
    s = ErrorSession(Model(graph, module, inputs, {}))
    assert "IndexError" in s.eager_error["type"]
    for backend, mode in [("aot_eager", "fwd"), ("aot_eager", "dynamic"), ("aot_eager", "bwd"), ("inductor", "fwd")]:
        v = s.run_test(backend, mode)
        assert v.kind == "pass", (backend, mode, v)


def test_a_compiler_that_swallows_a_kernels_error_is_caught_and_its_repro_reproduces(tmp_path, run_assay):
    g, t = index_graph()
    program.save_program(g, t, tmp_path / "progs" / "index")
    env = dict(os.environ, ASSAY_TEST_FAULT="swallow_errors",
               PYTHONPATH=os.pathsep.join(p for p in (str(FAULT_DIR), os.environ.get("PYTHONPATH")) if p))
    out = tmp_path / "camp"
    res = run_assay("fuzz", "--programs", tmp_path / "progs", "--backends", "aot_eager", "--workers", "1",
                    "--out", out, "--time", "5m", "--no-recheck", env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "1 signatures (1 new this run)" in res.stderr, res.stderr[-2000:]
    (case_dir,) = [p.parent for p in out.glob("*/case.json")]
    case = json.loads((case_dir / "case.json").read_text())
    assert case["kind"] == "mismatch" and case["detail"] == DETAIL
    assert "eager raises IndexError" in case["diff"]["expected"] and "returned float32[2, 4]" in case["diff"]["got"]
    repro = case_dir / "repro.py"
    faulty = subprocess.run([sys.executable, str(repro)], capture_output=True, text=True, env=env, timeout=300)
    assert faulty.returncode == 1 and "REPRODUCED" in faulty.stdout, faulty.stdout[-2000:] + faulty.stderr[-2000:]
    clean = subprocess.run([sys.executable, str(repro)], capture_output=True, text=True, timeout=300)
    assert clean.returncode == 0 and "rejects the call as eager does" in clean.stdout, clean.stdout[-2000:]


def test_under_inference_mode_the_compiled_side_runs_there_and_a_call_eager_takes_there_is_not_judged(tmp_path, monkeypatch):
    """Under the ``inference_mode`` knob an error program's compiled side runs under
    torch.inference_mode(), as a session's does; a call eager rejects under no_grad but takes under
    inference mode gives values there, which are no finding (a skip); without the knob it raises."""
    from fuzz.campaign import knobs

    monkeypatch.setenv("ASSAY_TEST_BACKENDS", "1")
    g, t = index_graph()
    graph, module, inputs = program.load_program(program.save_program(g, t, tmp_path / "prog"))
    s = ErrorSession(Model(graph, module, inputs, {}))

    class RejectsOutsideInference(type(s.module)):
        def forward(self, *args):
            if not torch.is_inference_mode_enabled():
                raise IndexError("index out of range in self")
            return args[0] * 2

    s.module.__class__ = RejectsOutsideInference
    assert s.run_test("_perturb_inference", "fwd").kind == "pass"  # no_grad: it raises, as eager does
    with knobs.applied(knobs.settings_of(["inference_mode"])):
        v = s.run_test("_perturb_inference", "fwd")
        assert v.kind == "skip" and "eager accepts the call under torch.inference_mode() too" in v.detail, v
        s.module.__class__ = type(s.module).__mro__[1]  # the index program: rejected in both grad modes
        assert s.run_test("_perturb_inference", "fwd").kind == "pass"
