"""``assay fuzz --batch K``: K models compiled as one program with one torch.compile call, each
judged on its own outputs; failures attributed by running the model alone, so a batched campaign
finds (and saves, with standalone repros) what the unbatched one does."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from test_campaign import env, make_programs

from fuzz.campaign import backends
from fuzz.campaign.batch import batch_jobs, batched_module, run_batched, solo_jobs
from fuzz.campaign.session import Model, Session
from fuzz.gen import program

REPO = Path(__file__).resolve().parents[2]
FAULT_DIR = REPO / "tests" / "fault_injection"


def _relu_programs(root):
    """Four saved programs: two go through relu (the planted fault's target), two do not."""
    sys.path.insert(0, str(REPO / "tests" / "triage"))
    from triage_helpers import chain_graph, relu_graph_b

    make_programs(root, 2)
    for name, (g, t) in (("r_chain", chain_graph()), ("r_b", relu_graph_b())):
        program.save_program(g, t, root / name)
    return root


def _sessions(root):
    out = []
    for d in sorted(root.iterdir()):
        graph, module, inputs = program.load_program(d)
        out.append(Session(Model(graph, module, inputs, {})))
    return out


def test_batch_jobs_group_models_and_split_back_into_solo_jobs():
    jobs = [{"job": f"s0-m{i:06d}", "model": i, "tests": [{"test": f"s0-m{i:06d}-inductor-fwd"}]} for i in range(5)]
    batches = list(batch_jobs(iter(jobs), 2))
    assert [len(b.get("batch", [b])) for b in batches] == [2, 2, 1] and batches[2] is jobs[4]
    assert [t["test"] for t in batches[0]["tests"]] == ["s0-m000000-inductor-fwd", "s0-m000001-inductor-fwd"]
    assert [j["job"] for j in solo_jobs(batches[0], batches[0]["tests"][1:])] == ["s0-m000001+"]
    assert list(batch_jobs(iter(jobs), 1)) == jobs


def test_one_compile_for_the_whole_batch_and_each_model_judged_alone(tmp_path):
    sessions = _sessions(make_programs(tmp_path / "progs", 3))
    graphs = []

    def counting_backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    modules = [s.module for s in sessions]
    inputs = [list(s.model.inputs) for s in sessions]
    batched = batched_module(modules, [len(i) for i in inputs])
    with torch.no_grad():
        outs = torch.compile(batched, backend=counting_backend)(*[t for i in inputs for t in i])
        for m, i, out in zip(modules, inputs, outs):
            assert all(torch.equal(a, b) for a, b in zip(m(*i), out, strict=True))
    assert len(graphs) == 1  # one program for the three models
    verdicts = run_batched(sessions, "aot_eager")
    assert [v.kind.value for v in verdicts] == ["pass"] * 3
    # a backend whose batched run fails sends every model to run alone (None), never a verdict
    # (bisected: the three, then their first two; a batch of one is the model alone)
    os.environ["ASSAY_TEST_BACKENDS"] = "1"
    try:
        compiles = []
        assert run_batched(sessions, "_raise", compiles) == [None] * 3
        assert compiles == [3, 2]
    finally:
        os.environ.pop("ASSAY_TEST_BACKENDS")


@pytest.fixture
def raise_on_relu():
    """A backend whose compile raises on a graph with aten.relu (a lowering crash on one operator):
    aot_autograd, its forward compiler refusing relu."""
    name = "raise_on_relu_for_test"
    backends.register(backends.Backend(name, '''
    def compile_model(model, inputs, dynamic=False):
        from torch._dynamo.backends.common import aot_autograd
        def forward_compiler(gm, example_inputs):
            if any(n.target is torch.ops.aten.relu.default for n in gm.graph.nodes):
                raise RuntimeError("injected: a graph with relu does not compile")
            return gm
        torch._dynamo.reset()
        return torch.compile(model, backend=aot_autograd(fw_compiler=forward_compiler))
    '''))
    yield name
    backends.REGISTRY.pop(name)


def test_a_batch_that_raises_is_bisected_so_only_the_raising_model_runs_alone(tmp_path, raise_on_relu):
    progs = make_programs(tmp_path / "progs", 5)
    sys.path.insert(0, str(REPO / "tests" / "triage"))
    from triage_helpers import relu_graph_b

    program.save_program(*relu_graph_b(), progs / "p2_relu")  # sorts third: p0 p1 p2 p2_relu p3 p4
    sessions = _sessions(progs)
    assert sessions[3].run_test(raise_on_relu, "fwd").kind == "crash"  # alone: a finding with its repro
    compiles = []
    verdicts = run_batched(sessions, raise_on_relu, compiles)
    # 6 raises -> [p0 p1 p2] passes, [p2_relu p3 p4] raises -> [p2_relu p3] raises, [p4] is alone
    assert [v and v.kind.value for v in verdicts] == ["pass", "pass", "pass", None, None, None]
    assert compiles == [6, 3, 3, 2]
    verdicts = run_batched(sessions[:3] + sessions[4:], raise_on_relu)  # without it: one compile, all pass
    assert [v.kind.value for v in verdicts] == ["pass"] * 5


def _campaign(assay, progs, out, batch, backends, extra_env=None, fault=None, recheck=True):
    e = dict(env(), **(extra_env or {}))
    if fault:
        e["ASSAY_TEST_FAULT"] = fault
        e["PYTHONPATH"] = os.pathsep.join(p for p in (str(FAULT_DIR), e.get("PYTHONPATH")) if p)
    return subprocess.Popen(assay + ["fuzz", "--programs", str(progs), "--backends", backends, "--workers", "1",
                                     "--time", "600", "--timeout", "60", "--keep", "10", "--batch", str(batch),
                                     "--out", str(out)] + ([] if recheck else ["--no-recheck"]),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e)


def _finish(proc):
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]


def _journal(out):
    db = sqlite3.connect(str(out / "index.sqlite"))
    try:
        return sorted(db.execute("SELECT id, kind, signature, case_id FROM tests"))
    finally:
        db.close()


@pytest.mark.slow
@pytest.mark.parametrize("fault, kind, line", [
    ("relu", "mismatch", "aot_eager: 2/4 passed in one compile"),
    # the batch's compile raises: bisected, the half without relu passes in one compile, the other
    # half raises again and its two models run alone
    ("relu_raise", "crash", "aot_eager: 2/4 passed in 3 batched compiles (sizes [4, 2, 2])")])
def test_batched_campaign_finds_the_planted_fault_like_the_unbatched_one(assay, tmp_path, fault, kind, line):
    progs = _relu_programs(tmp_path / "progs")
    # the unbatched run is the yardstick for the journal; only the batched run's cases are rechecked
    runs = {b: _campaign(assay, progs, tmp_path / f"batch{b}", b, "aot_eager", fault=fault, recheck=b > 1) for b in (1, 4)}
    for proc in runs.values():
        _finish(proc)
    one, four = _journal(tmp_path / "batch1"), _journal(tmp_path / "batch4")
    assert one == four
    failing = sorted(r[0] for r in four if r[1] == kind)
    assert failing == ["s0-m000002-aot_eager-fwd", "s0-m000003-aot_eager-fwd"], four  # the two relu programs
    for case_id in failing:  # one model per case, and its repro reproduces alone
        case = json.loads((tmp_path / "batch4" / case_id / "case.json").read_text())
        assert case["reproduces"] is True and case["model"] == int(case_id.split("-m")[1][:6]), case.get("recheck")
        assert "relu" in " ".join(case["ops"])
    log = (tmp_path / "batch4" / "logs" / "worker-0.log").read_text(errors="replace")
    assert line in log and "Traceback" not in log


@pytest.mark.slow
def test_a_batch_that_kills_its_worker_is_attributed_by_running_each_model_alone(assay, tmp_path):
    progs = make_programs(tmp_path / "progs", 2)
    out = tmp_path / "run"
    _finish(_campaign(assay, progs, out, 2, "_segfault,eager", {"ASSAY_TEST_BACKENDS": "1"}))
    rows = _journal(out)
    assert [(r[0], r[1]) for r in rows] == [("s0-m000000-_segfault-fwd", "signal"), ("s0-m000000-eager-fwd", "pass"),
                                            ("s0-m000001-_segfault-fwd", "signal"), ("s0-m000001-eager-fwd", "pass")]
    stats = json.loads((out / "stats.json").read_text())
    # the batched compile killed one worker; each model alone killed one more: no test blamed twice
    assert stats["worker_restarts"] == 3 and stats["tests"] == 4
