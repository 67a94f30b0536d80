"""Numbers passed into forward (fuzz.gen.scalars): as Python numbers or 0-dim tensors, generated,
saved, run by every mode, changed by dynamic mode's second call, and a compiler that folds them in
is caught."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fuzz.campaign.session import Model, Session
from fuzz.gen import program
from fuzz.gen.config import GenConfig
from fuzz.gen.generate import generate_model_for_index
from fuzz.gen.policy import Shares
from fuzz.gen.ruleset import load_ruleset
from fuzz.gen.scalars import other_value
from fuzz.ir.graph import python_number_inputs as python_scalars
from fuzz.ir.graph import Graph, Node

REPO = Path(__file__).resolve().parents[2]
FAULT_DIR = REPO / "tests" / "fault_injection"


def _lifted(kind: str, count: int = 40, need: int = 1):
    rs = load_ruleset(None)
    shares = Shares().with_axis("scalars", kind).with_axis("shape", "small")
    found = []
    for i in range(count):
        m = generate_model_for_index(rs, GenConfig(nodes=5), 0, i, shares)
        if m.graph.meta.get("scalars") and any(n in m.graph.inputs for n in m.graph.meta["scalars"]):
            found.append((i, m))
            if len(found) >= need:
                break
    return found


def test_a_python_scalar_model_passes_numbers_to_forward_and_is_deterministic(tmp_path):
    (i, m), = _lifted("python")
    again = generate_model_for_index(load_ruleset(None), GenConfig(nodes=5), 0, i,
                                     Shares().with_axis("scalars", "python").with_axis("shape", "small"))
    assert again.graph.dumps() == m.graph.dumps()
    assert m.graph.meta["policy"]["scalars"] == "python"
    numbers = python_scalars(m.graph)
    assert numbers and set(numbers) <= set(m.graph.meta["scalars"])
    # forward's inputs: the numbers as numbers (the generator's own runs and the benchmarks use them)
    ins = dict(zip(m.graph.inputs, m.forward_inputs()))
    assert all(type(ins[n]) is {"float": float, "int": int}[t] for n, t in numbers.items())
    program.run_eager(program.build_module(m.graph, m.state), m.forward_inputs())
    for name in numbers:
        assert m.graph.tensors[name].shape == [] and m.graph.tensors[name].dtype in ("float64", "int64")
    program.save_program(m.graph, m.tensors(), tmp_path / "prog")
    src = (tmp_path / "prog" / "program.py").read_text()
    assert all(f"tensors[{n!r}].item()" in src for n in numbers)
    graph, module, inputs = program.load_program(tmp_path / "prog")
    import inspect

    by_name = dict(zip(inspect.signature(module.forward).parameters, inputs))  # forward's order
    for name, typ in numbers.items():
        assert type(by_name[name]) is {"float": float, "int": int}[typ]
    run = subprocess.run([sys.executable, str(tmp_path / "prog" / "program.py")], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0 and "outputs:" in run.stdout, run.stderr[-2000:]


def test_a_tensor_scalar_model_takes_0_dim_tensors_and_a_constant_model_is_unchanged():
    found = _lifted("tensor", need=3)
    assert found
    for _, m in found:
        lifted = [n for n in m.graph.meta["scalars"] if n in m.graph.inputs]
        assert not python_scalars(m.graph)
        assert all(m.graph.tensors[n].shape == [] and m.leaves[n].dim() == 0 for n in lifted)
    plain = generate_model_for_index(load_ruleset(None), GenConfig(nodes=5), 0, found[0][0],
                                     Shares().with_axis("scalars", "constant").with_axis("shape", "small"))
    assert "scalars" not in plain.graph.meta and "scalars" not in plain.graph.meta.get("policy", {})


def test_other_value_changes_finite_numbers_only():
    assert other_value(3) == 4 and other_value(0.0) == 0.25 and other_value(2.0) == 1.25
    assert other_value(float("inf")) == float("inf") and other_value(True) is True


def scalar_graph() -> tuple[Graph, dict]:
    """``torch.add(x, s)`` and ``torch.mul(x, k)`` with ``s`` a Python float and ``k`` a Python int."""
    g = Graph()
    x = g.add_tensor([4, 6], "float32", "input", name="x")
    s = g.add_tensor([], "float64", "input", name="s")
    k = g.add_tensor([], "int64", "input", name="k")
    a = g.add_tensor([4, 6], "float32", name="added")
    b = g.add_tensor([4, 6], "float32", name="scaled")
    g.add_node(Node(id="n0", op="torch.add", api="function", args=[{"ref": x}, {"ref": s, "scalar": "python"}],
                    kwargs={}, outputs=[a]))
    g.add_node(Node(id="n1", op="torch.mul", api="function", args=[{"ref": a}, {"ref": k, "scalar": "python"}],
                    kwargs={}, outputs=[b]))
    g.outputs = [b]
    tensors = {"x": torch.randn(4, 6, generator=torch.Generator().manual_seed(0)),
               "s": torch.tensor(2.5, dtype=torch.float64), "k": torch.tensor(3)}
    return g, tensors


def _session(tmp_path) -> Session:
    g, t = scalar_graph()
    d = program.save_program(g, t, tmp_path / "prog")
    graph, module, inputs = program.load_program(d)
    assert inputs[1:] == [2.5, 3]
    files = {n: (d / n).read_bytes() for n in program.PROGRAM_FILES}
    return Session(Model(graph, module, inputs, files))


def test_every_mode_runs_a_model_taking_numbers_and_the_second_call_changes_them(tmp_path):
    s = _session(tmp_path)
    # export's dynamic shapes are per input: a Python number has none (its AttributeError was a
    # false crash of every python-scalar model under export and aoti, thirteenth session)
    for backend, mode in [("aot_eager", "fwd"), ("aot_eager", "bwd"), ("aot_eager", "dynamic"), ("inductor", "dynamic"),
                          ("export", "dynamic")]:
        v = s.run_test(backend, mode)
        assert v.kind == "pass", (backend, mode, v)
    info = s.second_call()[2]
    assert info["numbers"] == {"s": [2.5, 1.5], "k": [3, 4]} and info["from"] is not None
    from safetensors.torch import load

    saved = load(s.inputs_file())
    assert saved["second_call.s"].item() == 1.5 and saved["second_call.k"].item() == 4
    assert saved["second_call.s"].dtype == torch.float64 and saved["second_call.k"].dtype == torch.int64


def test_export_and_aoti_decline_a_second_call_that_changes_a_python_number(tmp_path):
    # Both specialise every Python number: export's module refuses the changed value, AOTInductor's
    # runner silently keeps the first one (11 false "mismatches" in the fourteenth session's aoti
    # campaign before this rule). The first call is still judged.
    s = _session(tmp_path)
    for backend in ("export", "aoti"):
        v = s.run_test(backend, "dynamic")
        assert v.kind == "pass", (backend, v)
        assert "specialises the Python numbers" in v.second_call["declined"], (backend, v.second_call)
        assert v.second_call["numbers"] == {"s": [2.5, 1.5], "k": [3, 4]}
    assert s.run_test("aot_eager", "dynamic").second_call.get("declined") is None  # judged there


def _fault_env(fault: str) -> dict:
    return dict(os.environ, ASSAY_TEST_FAULT=fault,
                PYTHONPATH=os.pathsep.join(p for p in (str(FAULT_DIR), os.environ.get("PYTHONPATH")) if p))


def test_a_compiler_folding_the_first_calls_numbers_is_caught_by_the_second_call(tmp_path, run_assay):
    g, t = scalar_graph()
    program.save_program(g, t, tmp_path / "progs" / "numbers")
    env = _fault_env("scalar_fold")
    out = tmp_path / "camp"
    res = run_assay("fuzz", "--programs", tmp_path / "progs", "--backends", "aot_eager", "--modes", "fwd,dynamic",
                    "--workers", "1", "--out", out, "--time", "5m", "--no-recheck", env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "2 tests this run" in res.stderr and "1 signatures (1 new this run)" in res.stderr, res.stderr[-2000:]
    (case_dir,) = [p.parent for p in out.glob("*/case.json")]
    case = json.loads((case_dir / "case.json").read_text())
    assert case["kind"] == "mismatch" and case["mode"] == "dynamic"
    assert case["second_call"]["numbers"] == {"s": [2.5, 1.5], "k": [3, 4]}
    repro = case_dir / "repro.py"
    assert "the numbers forward takes changed" in repro.read_text()
    faulty = subprocess.run([sys.executable, str(repro)], capture_output=True, text=True, env=env, timeout=300)
    assert faulty.returncode == 1, faulty.stdout[-2000:] + faulty.stderr[-2000:]  # reproduced
    clean = subprocess.run([sys.executable, str(repro)], capture_output=True, text=True, timeout=300)
    assert clean.returncode == 0, clean.stdout[-2000:] + clean.stderr[-2000:]  # torch itself agrees


def test_a_model_passing_python_numbers_is_always_tested_in_dynamic_mode(tmp_path):
    from fuzz.campaign.config import Config
    from fuzz.campaign.jobs import _takes_numbers, modes_of

    cfg = Config(out=str(tmp_path))  # the default mix: one mode per model
    python = [i for i in range(200) if _takes_numbers(cfg, i)]
    assert 10 < len(python) < 60  # the python share, 0.15 of models
    assert all(modes_of(cfg, i) == ["dynamic"] for i in python)
    others = {m for i in range(200) if i not in python for m in modes_of(cfg, i)}
    assert others == {"fwd", "bwd", "dynamic", "train"}
    legacy = Config(out=str(tmp_path), shares=None)
    assert not any(_takes_numbers(legacy, i) for i in range(50))


def test_an_integer_call_on_a_python_int_is_judged_not_an_oracle_error(tmp_path):
    """The oracle's tie check re-runs integer calls: a Python int input is a 0-dim int64 tensor there
    (it once met the int itself: 'int' object has no attribute 'dtype', an oracle error)."""
    g = Graph()
    x = g.add_tensor([4, 6], "int64", "input", name="x")
    k = g.add_tensor([], "int64", "input", name="k")
    d = g.add_tensor([4, 6], "int64", name="diff")
    g.add_node(Node(id="n0", op="torch.sub", api="function", args=[{"ref": x}, {"ref": k, "scalar": "python"}],
                    kwargs={}, outputs=[d]))
    g.outputs = [d]
    dirpath = program.save_program(g, {"x": torch.arange(24).reshape(4, 6), "k": torch.tensor(-3)}, tmp_path / "p")
    graph, module, inputs = program.load_program(dirpath)
    s = Session(Model(graph, module, inputs, {n: (dirpath / n).read_bytes() for n in program.PROGRAM_FILES}))
    assert s.run_test("aot_eager", "fwd").kind == "pass"


def test_a_mutant_never_reads_a_number_forward_takes_as_a_tensor():
    import random

    from fuzz.gen.mutate import grow

    placed = 0
    for seed in range(12):
        g, _ = scalar_graph()
        before = len(g.nodes)
        placed += grow(g, random.Random(seed), 3, GenConfig(nodes=5))
        for node in g.nodes[before:]:
            assert not {"s", "k"} & set(node.inputs()), node
    assert placed >= 12


def test_a_program_whose_first_input_is_a_python_number_takes_its_device_from_a_tensor(tmp_path):
    """Mutants list their inputs by name, so a number may come first; the program's device
    expression (autocast regions, ``device=`` arguments) once read ``.device`` of that float."""
    g, t = scalar_graph()
    g.node("n0").extra["autocast"] = "bfloat16"
    g.tensors = {"s": g.tensors["s"], **{k: v for k, v in g.tensors.items() if k != "s"}}  # s first
    assert g.inputs[0] == "s"
    src = program.program_source(g)
    assert "device_type=x.device.type" in src
    program.save_program(g, t, tmp_path / "prog")
    run = subprocess.run([sys.executable, str(tmp_path / "prog" / "program.py")], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0 and "outputs:" in run.stdout, run.stderr[-2000:]
