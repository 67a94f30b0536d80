"""Guided campaigns end to end (real workers, real torch.compile, real campaign folders): the seed
pool survives --resume, and a compiler knob recorded in a case is set by its repro.py and found
needed by ``assay triage show`` (a planted fault that appears only under that knob)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FAULT_DIR = REPO / "tests" / "fault_injection"


def _env(fault=None):
    env = dict(os.environ)
    env.pop("ASSAY_TEST_FAULT", None)
    env.pop("ASSAY_REPRO_WITHOUT", None)
    if fault:
        env["ASSAY_TEST_FAULT"] = fault
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(FAULT_DIR), str(REPO), env.get("PYTHONPATH")) if p)
    return env


@pytest.mark.slow
def test_the_seed_pool_is_kept_and_used_across_resume(tmp_path, run_assay):
    out = tmp_path / "camp"
    res = run_assay("fuzz", "--out", out, "--time", "20s", "--workers", "1", "--backends", "aot_eager",
                    "--nodes", "3", "--no-recheck", env=_env(), timeout=400)
    assert res.returncode == 0, res.stderr[-2000:]
    pool = json.loads((out / "seeds" / "pool.json").read_text())
    stats = json.loads((out / "stats.json").read_text())
    assert stats["feedback"]["features"] == len(pool["features"]) > 0
    assert stats["feedback"]["seeds"] == len(pool["seeds"]) > 0
    assert stats["feedback"]["last_new_s"] is not None and stats["feedback"]["feedback_ms_mean"] > 0
    for sid in pool["seeds"]:  # every seed is a loadable program
        assert (out / "seeds" / sid / "graph.json").is_file() and (out / "seeds" / sid / "program.py").is_file()
    assert "features" in (out / "plot_data.csv").read_text().splitlines()[0]
    # the resumed run restarts its worker and pays its first compile again: under a loaded CI
    # machine that took more than 15 s, so the run gets room for a few tests after it
    res = run_assay("fuzz", "--resume", out, "--time", "40s", env=_env(), timeout=400)
    assert res.returncode == 0, res.stderr[-2000:]
    after = json.loads((out / "seeds" / "pool.json").read_text())
    assert set(pool["features"]) <= set(after["features"])
    assert {k: v for k, v in after["features"].items() if k in pool["features"]} == pool["features"]
    assert set(pool["seeds"]) <= set(after["seeds"])
    jobs = [json.loads(line) for line in (out / "seeds" / "jobs.jsonl").read_text().splitlines()]
    assert len(jobs) == len({j["model"] for j in jobs})  # a model handed out twice is the same mutant
    assert jobs and all(j["job"]["mutation"]["seed"] in after["seeds"] for j in jobs)
    # mutants ran: their tests are journaled under their model numbers
    import sqlite3

    db = sqlite3.connect(out / "index.sqlite")
    ran = {r[0] for r in db.execute("SELECT DISTINCT model FROM tests")}
    assert {j["model"] for j in jobs} & ran
    stats = json.loads((out / "stats.json").read_text())
    assert stats["feedback"]["features"] == len(after["features"]) and stats["feedback"]["mutants"] == len({j["model"] for j in jobs})


def _relu_program(tmp_path) -> Path:
    sys.path.insert(0, str(REPO / "tests" / "triage"))
    from triage_helpers import chain_graph

    from fuzz.gen.program import save_program

    progs = tmp_path / "progs"
    g, t = chain_graph()
    save_program(g, t, progs / "chain")
    return progs


@pytest.mark.slow
def test_a_knob_in_a_case_is_set_by_its_repro_and_triage_finds_it_needed(tmp_path, run_assay):
    progs = _relu_program(tmp_path)
    # wrong relu, only while inductor's max_fusion_size is 1; the compiler is aot_eager (the fault
    # reads the same config there), so the test pays no C++ builds: the knob machinery is the same
    fault = "relu@no_fusion"
    out = tmp_path / "camp"
    res = run_assay("fuzz", "--programs", progs, "--backends", "aot_eager", "--workers", "1", "--out", out,
                    "--time", "5m", "--knobs", "no_fusion", "--no-recheck", env=_env(fault), timeout=600)
    assert res.returncode == 0 and "1 cases saved" in res.stderr, res.stderr[-2000:]
    case_dir = next(d for d in out.iterdir() if (d / "case.json").is_file())
    case = json.loads((case_dir / "case.json").read_text())
    assert case["kind"] == "mismatch" and case["knobs"] == {"no_fusion": {"inductor.max_fusion_size": 1}}
    repro = case_dir / "repro.py"
    assert "set_knobs(KNOBS)" in repro.read_text()
    with_knob = subprocess.run([sys.executable, str(repro)], cwd=case_dir, env=_env(fault), capture_output=True,
                               text=True, timeout=300)
    assert with_knob.returncode == 1 and "REPRODUCED" in with_knob.stdout, with_knob.stdout[-1000:]
    # triage re-runs the repro with the knob left at torch's default: the planted fault is gone, so
    # the knob is needed (had repro.py not set it, the first run above would have agreed)
    shown = run_assay("triage", "show", case_dir.name, "--dir", out, env=_env(fault), timeout=400)
    assert shown.returncode == 0, shown.stderr[-2000:]
    line = next(ln for ln in shown.stdout.splitlines() if ln.strip().startswith("no_fusion"))
    assert "max_fusion_size=1" in line and line.rstrip().endswith("-> needed"), line
    saved = json.loads((case_dir / "case.json").read_text())
    assert saved["triage"]["knobs"]["knobs"]["no_fusion"]["needed"] is True
    # a recheck replays the case under its knobs: still failing (without them the fault is gone and
    # it read FIXED, as a cpp_wrapper case of the twenty-first session's campaign did)
    rechecked = run_assay("triage", "recheck", case_dir.name, "--dir", out, env=_env(fault), timeout=400)
    assert rechecked.returncode == 0 and "still fails" in rechecked.stdout, rechecked.stdout[-2000:]


@pytest.mark.slow
def test_a_fault_only_in_compiled_autograds_backward_is_found_under_its_knob(tmp_path, run_assay):
    """``relu_grad`` corrupts relu's gradient only in a backward dynamo captures at backward time
    (compiled autograd): a bwd campaign under the ``compiled_autograd`` knob saves a mismatch in a
    gradient; its repro reproduces it, and with the knob left out (triage's ablation) agrees, as the
    plain AOTAutograd backward has no fault."""
    progs = _relu_program(tmp_path)
    out = tmp_path / "camp"
    res = run_assay("fuzz", "--programs", progs, "--backends", "aot_eager", "--modes", "bwd", "--workers", "1",
                    "--out", out, "--time", "5m", "--no-recheck", "--knobs", "compiled_autograd",
                    env=_env("relu_grad"), timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    (case_dir,) = [d for d in out.iterdir() if (d / "case.json").is_file()]
    case = json.loads((case_dir / "case.json").read_text())
    assert case["kind"] == "mismatch" and case["knobs"] == {"compiled_autograd": {"assay.COMPILED_AUTOGRAD": True}}
    assert case["diff"]["where"].startswith("grad:"), case["diff"]
    repro = case_dir / "repro.py"
    faulty = subprocess.run([sys.executable, str(repro)], cwd=case_dir, env=_env("relu_grad"), capture_output=True,
                            text=True, timeout=300)
    assert faulty.returncode == 1 and "REPRODUCED" in faulty.stdout, faulty.stdout[-1500:] + faulty.stderr[-1500:]
    env = dict(_env("relu_grad"), ASSAY_REPRO_WITHOUT="compiled_autograd")
    plain = subprocess.run([sys.executable, str(repro)], cwd=case_dir, env=env, capture_output=True, text=True,
                           timeout=300)
    assert plain.returncode == 0 and "AGREE" in plain.stdout, plain.stdout[-1500:] + plain.stderr[-1500:]


def _session_for_chain(tmp_path):
    sys.path.insert(0, str(REPO / "tests" / "triage"))
    from triage_helpers import chain_graph

    from fuzz.campaign.session import Model, Session
    from fuzz.gen.program import PROGRAM_FILES, load_program, save_program

    g, t = chain_graph()
    d = save_program(g, t, tmp_path / "prog")
    graph, module, inputs = load_program(d)
    return Session(Model(graph, module, inputs, {n: (d / n).read_bytes() for n in PROGRAM_FILES}))


def test_automatic_dynamic_compiles_static_then_recompiles_at_the_second_calls_sizes(tmp_path):
    """The dynamic mode compiles with dynamic=True (one graph, every size symbolic); under the
    automatic_dynamic knob with torch.compile's default dynamic=None: a static graph for the first
    call, a second one (automatic dynamic shapes) for the second call's sizes; both judged."""
    import torch._dynamo.utils

    from fuzz.campaign import knobs

    s = _session_for_chain(tmp_path)
    graphs = {}
    for name, chosen in (("dynamic=True", None), ("automatic", {"automatic_dynamic": knobs.KNOBS["automatic_dynamic"]})):
        torch._dynamo.utils.counters.clear()
        with knobs.applied(chosen):
            assert knobs.dynamic_argument("dynamic") is (None if chosen else True)
            v = s.run_test("aot_eager", "dynamic")
        assert v.kind == "pass" and v.second_call and "none" not in v.second_call, (name, v)
        graphs[name] = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    assert knobs.COMPILE_DYNAMIC is True  # restored
    assert graphs == {"dynamic=True": 1, "automatic": 2}, graphs


def test_a_fault_only_in_the_recompiled_graph_is_found_under_automatic_dynamic(tmp_path, run_assay):
    """``after_break`` corrupts relu in every graph but the first compiled since a reset: with
    dynamic=True the dynamic mode compiles one graph and passes; under automatic_dynamic the second
    call's recompile has the fault, a mismatch at call 2 whose repro (which sets the knob) fails
    under the fault and passes without it."""
    progs = _relu_program(tmp_path)
    runs = {}
    for name, extra in (("plain", []), ("automatic", ["--knobs", "automatic_dynamic"])):
        out = tmp_path / name
        res = run_assay("fuzz", "--programs", progs, "--backends", "aot_eager", "--modes", "dynamic", "--workers", "1",
                        "--out", out, "--time", "5m", "--no-recheck", *extra, env=_env("after_break"), timeout=600)
        assert res.returncode == 0, res.stderr[-2000:]
        runs[name] = [d for d in out.iterdir() if (d / "case.json").is_file()]
    assert runs["plain"] == []
    (case_dir,) = runs["automatic"]
    case = json.loads((case_dir / "case.json").read_text())
    assert case["kind"] == "mismatch" and case["knobs"] == {"automatic_dynamic": {"assay.COMPILE_DYNAMIC": None}}
    assert case["diff"]["where"].startswith("call2:"), case["diff"]
    repro = case_dir / "repro.py"
    assert "COMPILE_DYNAMIC = True" in repro.read_text()
    faulty = subprocess.run([sys.executable, str(repro)], cwd=case_dir, env=_env("after_break"), capture_output=True,
                            text=True, timeout=300)
    assert faulty.returncode == 1 and "REPRODUCED" in faulty.stdout, faulty.stdout[-1500:] + faulty.stderr[-1500:]
    clean = subprocess.run([sys.executable, str(repro)], cwd=case_dir, capture_output=True, text=True, timeout=300)
    assert clean.returncode == 0, clean.stdout[-1500:]
