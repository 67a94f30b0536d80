"""``assay fuzz`` as a user drives it: flags checked before anything is written, the budget kept
across --resume, a closing summary, --fail-on-find for CI, and exit codes that say what happened."""

import json
import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FAULT_DIR = REPO / "tests" / "fault_injection"


def _programs(tmp_path) -> Path:
    """Two tiny saved programs with a relu in each (the injected fault changes relu under aot_eager)."""
    import sys

    sys.path.insert(0, str(REPO / "tests" / "triage"))
    from triage_helpers import chain_graph, relu_graph_b

    from fuzz.gen.program import save_program

    progs = tmp_path / "progs"
    for name, (g, t) in (("chain", chain_graph()), ("relu_b", relu_graph_b())):
        save_program(g, t, progs / name)
    return progs


def _fuzz(run_assay, *argv, fault=None, timeout=300):
    env = dict(os.environ)
    env.pop("ASSAY_TEST_FAULT", None)
    if fault:
        env["ASSAY_TEST_FAULT"] = fault
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(FAULT_DIR), env.get("PYTHONPATH")) if p)
    return run_assay("fuzz", *argv, env=env, timeout=timeout)


def test_every_bad_flag_is_one_line_and_writes_nothing(tmp_path, run_assay):
    afile = tmp_path / "afile"
    afile.write_text("keep")
    out = tmp_path / "camp"
    cases = [
        (["--out", afile], "is a file"), (["--out", afile / "sub"], "is a file"),
        (["--out", out, "--programs", tmp_path / "typo"], "--programs"),
        (["--out", out, "--time", "0"], "--time"), (["--out", out, "--time", "5 minutes"], "--time"),
        (["--out", out, "--timeout", "0"], "--timeout"), (["--out", out, "--mem-limit", "-5"], "--mem-limit"),
        (["--out", out, "--mem-limit", "0"], "--mem-limit"), (["--out", out, "--mem-limit", "100"], "--mem-limit"),
        (["--out", out, "--keep", "0"], "--keep"), (["--out", out, "--progress-every", "0"], "--progress-every"),
        (["--out", out, "--workers", "0"], "--workers"), (["--out", out, "--nodes", "0"], "--nodes"),
        (["--resume", tmp_path / "none"], "no campaign to resume"), (["--out", out, "--backends", "nope"], "nope"),
        (["--out", out, "--modes-per-model", "0"], "--modes-per-model"), (["--out", out, "--modes", "trian"], "trian"),
        (["--out", out, "--feedback", "nope"], "--feedback"), (["--out", out, "--knobs", "fast"], "knob 'fast'"),
    ]
    import torch

    if not torch.cuda.is_available():
        cases.append((["--out", out, "--device", "cuda"], "CUDA"))
    for argv, words in cases:
        res = _fuzz(run_assay, *argv, timeout=120)
        assert res.returncode == 2, (argv, res.stderr)
        assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, (argv, res.stderr)
        assert words in res.stderr, (argv, res.stderr)
        assert not out.exists() and not (tmp_path / "none").exists(), f"{argv} wrote {out} before failing"
    assert afile.read_text() == "keep"


def test_fail_on_find_exits_1_on_a_new_signature_and_0_when_nothing_is_new(tmp_path, run_assay):
    progs, out = _programs(tmp_path), tmp_path / "camp"
    argv = ["--programs", progs, "--backends", "aot_eager", "--workers", "1", "--out", out, "--time", "5m",
            "--no-recheck", "--fail-on-find"]
    res = _fuzz(run_assay, *argv, fault="relu")
    assert res.returncode == 1, res.stderr[-2000:]
    summary = res.stderr.strip().splitlines()[-2:]
    assert summary[0].startswith("assay fuzz: 2 tests this run") and "(2 new this run)" in summary[0], summary
    assert f"next: assay triage list --dir {out}" in summary[1]
    res = _fuzz(run_assay, "--resume", out, "--fail-on-find", fault="relu")  # every program already tested
    assert res.returncode == 0 and "(0 new this run)" in res.stderr, res.stderr[-2000:]
    shutil.rmtree(out)
    res = _fuzz(run_assay, *argv)  # without the fault: nothing fails, nothing found
    assert res.returncode == 0 and "0 signatures (0 new this run)" in res.stderr, res.stderr[-2000:]


def test_the_budget_is_saved_and_resume_runs_what_is_left(tmp_path, run_assay):
    progs, out = _programs(tmp_path), tmp_path / "camp"
    # 0.2 s: no worker even starts (python + torch take longer); the exit code says no test ran.
    res = _fuzz(run_assay, "--programs", progs, "--backends", "eager", "--workers", "1", "--out", out,
                "--time", "0.2")
    assert res.returncode == 3 and "no test finished in" in res.stderr, res.stderr[-2000:]
    saved = json.loads((out / "campaign.json").read_text())
    assert saved["time_s"] == pytest.approx(0.2)
    res = _fuzz(run_assay, "--resume", out)
    assert res.returncode == 0 and "has spent its budget" in res.stderr, res.stderr[-2000:]
    res = _fuzz(run_assay, "--resume", out, "--time", "5m")  # 5 minutes more: runs every program
    assert res.returncode == 0, res.stderr[-2000:]
    assert "2 tests this run" in res.stderr
    budget = json.loads((out / "campaign.json").read_text())["time_s"]
    assert 300 < budget < 300 + 60  # what had run before, plus the 5 minutes given


def test_old_campaign_without_a_saved_budget_resumes_with_the_old_default(tmp_path):
    from fuzz.campaign.config import Config, load_or_create, session_seconds

    out = tmp_path / "camp"
    out.mkdir()
    (out / "campaign.json").write_text(json.dumps({"backends": ["eager"], "modes": ["fwd"], "seed": 0, "nodes": 5,
                                                   "device": "cpu", "programs": None}))
    cfg = Config(out=str(out), time_s=600)
    load_or_create(cfg, resume=True, stream=open(os.devnull, "w"))
    assert session_seconds(cfg, elapsed_before=100.0) == 500.0
    assert json.loads((out / "campaign.json").read_text())["time_s"] == 600.0
