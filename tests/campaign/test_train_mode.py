"""Train mode: one training step (batch norm in training mode, SGD with momentum) compiled vs
eager, on real torch.compile. A planted fault in the compiled step (a wrong relu; a wrong running
statistic that changes nothing but a buffer) is caught by a real campaign and saved as a case whose
repro.py exits 1 with the fault and 0 without it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fuzz.campaign.session import Model, Session
from fuzz.campaign.verdict import Kind
from fuzz.gen.program import build_module, module_attr, save_program
from fuzz.ir.graph import Graph, Node

REPO = Path(__file__).resolve().parents[2]
FAULT_DIR = REPO / "tests" / "fault_injection"


def ref(name):
    return {"ref": name}


def norm_graph(module: str = "torch.nn.BatchNorm1d", init=(3,)) -> tuple[Graph, dict]:
    """x[4, 3, 5] -> module (BatchNorm1d(3) by default) -> relu -> tanh."""
    g = Graph()
    x = g.add_tensor([4, 3, 5], "float32", "input", name="x")
    a = g.add_tensor([4, 3, 5], "float32")
    g.add_node(Node(id="n0", op=module, api="module", args=[ref(x)], kwargs={}, outputs=[a],
                    init={"args": list(init), "kwargs": {}}))
    b = g.add_tensor([4, 3, 5], "float32")
    g.add_node(Node(id="n1", op="torch.nn.functional.relu", api="function", args=[ref(a)], kwargs={}, outputs=[b]))
    c = g.add_tensor([4, 3, 5], "float32")
    g.add_node(Node(id="n2", op="torch.tanh", api="function", args=[ref(b)], kwargs={}, outputs=[c]))
    g.outputs = [c]
    gen = torch.Generator().manual_seed(1)
    attr = module_attr(g.nodes[0])
    return g, {"x": torch.randn(4, 3, 5, generator=gen), f"{attr}.weight": torch.rand(3, generator=gen) + 0.5,
               f"{attr}.bias": torch.randn(3, generator=gen), f"{attr}.running_mean": torch.zeros(3),
               f"{attr}.running_var": torch.ones(3)}


def session_of(graph, tensors) -> Session:
    module = build_module(graph, {k: v for k, v in tensors.items() if k not in graph.inputs})
    return Session(Model(graph, module, [tensors[i] for i in graph.inputs], {}))


def test_inductor_train_step_passes_and_running_stats_are_judged():
    graph, tensors = norm_graph()
    session = session_of(graph, tensors)
    verdict = session.run_test("inductor", "train")
    assert verdict.kind == Kind.PASS, (verdict.detail, verdict.diff, verdict.error)
    reference, why = session.train_reference()
    assert why is None and reference.ref64 is not None and not reference.skip
    attr = module_attr(graph.nodes[0])
    values = dict(zip(reference.names, reference.eager))
    # the step really trained: the buffers moved off their initial values, the parameters too
    assert not torch.equal(values[f"buffer:{attr}.running_mean"], torch.zeros(3))
    assert int(values[f"buffer:{attr}.num_batches_tracked"]) == 1
    assert not torch.equal(values[f"param:{attr}.weight"], tensors[f"{attr}.weight"])
    assert {"loss", f"grad:{attr}.weight", f"buffer:{attr}.running_var"} <= set(values)


def test_no_float_parameters_is_unsupported_and_dropout_is_skipped():
    sys.path.insert(0, str(REPO / "tests" / "triage"))
    from triage_helpers import relu_graph_b

    graph, tensors = relu_graph_b()
    verdict = session_of(graph, tensors).run_test("aot_eager", "train")
    assert verdict.kind == Kind.UNSUPPORTED and "no trainable float parameters" in verdict.detail
    # Linear then Dropout: random in training mode (only there), no compiled RNG can match it
    g = Graph()
    x = g.add_tensor([4, 6], "float32", "input", name="x")
    a = g.add_tensor([4, 5], "float32")
    g.add_node(Node(id="n0", op="torch.nn.Linear", api="module", args=[ref(x)], kwargs={}, outputs=[a],
                    init={"args": [6, 5], "kwargs": {}}))
    b = g.add_tensor([4, 5], "float32")
    g.add_node(Node(id="n1", op="torch.nn.Dropout", api="module", args=[ref(a)], kwargs={}, outputs=[b],
                    init={"args": [0.5], "kwargs": {}}))
    g.outputs = [b]
    session = session_of(g, {"x": torch.randn(4, 6)})
    assert session.run_test("aot_eager", "fwd").kind == Kind.PASS  # eval mode: dropout is the identity
    verdict = session.run_test("aot_eager", "train")
    assert verdict.kind == Kind.SKIP, verdict.detail  # never a pass: dropout's values are not comparable


def _campaign(tmp_path, fault: str, backend: str) -> list[Path]:
    graph, tensors = norm_graph()
    save_program(graph, tensors, tmp_path / "progs" / "bn")
    out = tmp_path / f"camp-{fault}"
    env = dict(os.environ, ASSAY_TEST_FAULT=fault,
               PYTHONPATH=os.pathsep.join(p for p in (str(FAULT_DIR), str(REPO), os.environ.get("PYTHONPATH")) if p))
    res = subprocess.run([sys.executable, "-m", "fuzz.cli", "fuzz", "--programs", tmp_path / "progs",
                          "--backends", backend, "--modes", "train", "--workers", "1", "--time", "5m",
                          "--no-recheck", "--out", out], capture_output=True, text=True, env=env, timeout=400, cwd=REPO)
    assert res.returncode == 0, res.stderr[-3000:]
    return sorted(d for d in out.iterdir() if (d / "case.json").is_file())


def _repro(case_dir: Path, fault: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ASSAY_TEST_FAULT")}
    if fault:
        env.update(ASSAY_TEST_FAULT=fault, PYTHONPATH=str(FAULT_DIR))
    return subprocess.run([sys.executable, "repro.py"], cwd=case_dir, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("fault,backend,where", [
    # only a buffer is wrong: the running stats are judged (aot_eager's functional graph returns
    # them; inductor's copies them back in place, the same fault's other path, which cost this
    # test 110 s of C++ builds for no other check)
    ("running_stats", "aot_eager", "buffer:"),
    ("relu", "aot_eager", ""),                  # the forward, hence loss, gradients and update are wrong
])
def test_planted_fault_in_the_compiled_step_is_saved_and_its_repro_reproduces(tmp_path, fault, backend, where):
    cases = _campaign(tmp_path, fault, backend)
    assert len(cases) == 1, cases
    case = json.loads((cases[0] / "case.json").read_text())
    assert case["kind"] == "mismatch" and case["mode"] == "train" and case["backend"] == backend
    assert case["diff"]["where"].startswith(where), case["diff"]
    if fault == "running_stats":
        assert case["diff"]["where"].endswith(("running_mean", "running_var")), case["diff"]
    with_fault, without = _repro(cases[0], fault), _repro(cases[0], None)
    assert with_fault.returncode == 1 and "REPRODUCED" in with_fault.stdout, with_fault.stdout + with_fault.stderr[-2000:]
    assert without.returncode == 0 and "AGREE" in without.stdout, without.stdout + without.stderr[-2000:]


def test_values_a_rounding_level_perturbation_moves_are_not_judged():
    from fuzz.campaign.oracle import Reference
    from fuzz.campaign.train import ill_conditioned

    ref64 = [torch.tensor([1.0, 2.0], dtype=torch.float64), torch.tensor([3.0], dtype=torch.float64),
             torch.tensor([4, 5])]
    eager = [ref64[0].float(), ref64[1].float(), torch.tensor([4, 5])]
    reference = Reference(["out0", "buffer:bn.running_var", "out1"], eager, ref64)
    steady = [ref64[0] * (1 + 1e-9), ref64[1] + 1e-9, torch.tensor([4, 5])]
    assert ill_conditioned(reference, [steady]) == {}
    moved = [ref64[0], ref64[1] + 0.01, torch.tensor([4, 6])]  # fp32 tolerance is 1e-4 + 1e-4 * 3
    assert set(ill_conditioned(reference, [steady, moved])) == {"buffer:bn.running_var", "out1"}
