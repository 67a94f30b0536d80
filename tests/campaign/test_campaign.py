"""Campaigns in real subprocesses: faults become cases, kill -9 + --resume loses and duplicates nothing."""

import json
import os
import signal
import sqlite3
import subprocess
import time

import pytest
import torch

from fuzz.gen import program
from fuzz.campaign.config import parse_duration
from fuzz.errors import AssayError
from fuzz.ir.graph import Graph, Node


def ref(n):
    return {"ref": n}


def make_programs(root, count):
    """``count`` small distinct programs (linear -> tanh -> sum, sizes vary)."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        g = Graph()
        n = 3 + i
        x = g.add_tensor([2, n], "float32", "input", name="x")
        w = g.add_tensor([4, n], "float32", "param", name="w")
        h = g.add_tensor([2, 4], "float32", name="h")
        g.add_node(Node(id="n0", op="torch.nn.functional.linear", api="function", args=[ref(x), ref(w)], kwargs={}, outputs=[h]))
        t = g.add_tensor([2, 4], "float32", name="t")
        g.add_node(Node(id="n1", op="torch.tanh", api="function", args=[ref(h)], kwargs={}, outputs=[t]))
        g.outputs = [t]
        gen = torch.Generator().manual_seed(i)
        program.save_program(g, {"x": torch.randn(2, n, generator=gen), "w": torch.randn(4, n, generator=gen)}, root / f"p{i}")
    return root


def env():
    e = dict(os.environ, ASSAY_TEST_BACKENDS="1", PYTHONWARNINGS="ignore")
    return e


def journal(out):
    db = sqlite3.connect(str(out / "index.sqlite"))
    try:
        return db.execute("SELECT id, kind, case_id FROM tests").fetchall()
    finally:
        db.close()


def case_dirs(out):
    return sorted(p.name for p in out.iterdir() if p.is_dir() and (p / "case.json").exists())


def test_parse_duration():
    assert parse_duration("90") == 90 and parse_duration("30m") == 1800 and parse_duration("8h") == 28800
    assert parse_duration("1h30m") == 5400 and parse_duration("45s") == 45
    with pytest.raises(AssayError):
        parse_duration("soon")


def test_bad_arguments_are_one_line_errors(assay, tmp_path):
    for args in (["--backends", "nope"], ["--time", "soon"], ["--resume", str(tmp_path / "none")],
                 ["--modes", "fwd,up"]):
        res = subprocess.run(assay + ["fuzz", "--out", str(tmp_path / "o"), *args], capture_output=True, text=True, timeout=120)
        assert res.returncode == 2, res.stderr
        assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr


@pytest.mark.slow
def test_segfault_hang_and_10gb_allocation_become_cases(assay, tmp_path):
    progs = make_programs(tmp_path / "progs", 1)
    out = tmp_path / "run"
    cmd = assay + ["fuzz", "--programs", str(progs), "--backends", "_segfault,_hang,_oom,_raise,eager",
                   "--workers", "1", "--time", "300", "--timeout", "10", "--mem-limit", "4096",
                   "--out", str(out), "--progress-every", "5"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=env())
    assert res.returncode == 0, res.stderr[-3000:]
    rows = journal(out)
    kinds = {tid.split("-", 2)[2]: k for tid, k, _ in rows if tid.startswith("s0-m000000")}
    assert kinds == {"_segfault-fwd": "signal", "_hang-fwd": "hang", "_oom-fwd": "oom", "_raise-fwd": "crash",
                     "eager-fwd": "pass"}, rows
    # every backend ran: the campaign kept going after the segfault and the hang (worker replaced)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["tests"] == 5 and stats["outcomes"]["pass"] == 1 and stats["unique_signatures"] == 4
    assert stats["outcomes"]["signal"] == 1 and stats["outcomes"]["hang"] == 1 and stats["outcomes"]["oom"] == 1
    assert stats["worker_restarts"] == 2
    saved = case_dirs(out)
    by_kind = {json.loads((out / d / "case.json").read_text())["kind"]: d for d in saved}
    assert set(by_kind) == {"signal", "hang", "oom", "crash"} and len(saved) == 4
    for kind, d in by_kind.items():
        case = json.loads((out / d / "case.json").read_text())
        assert case["reproduces"] is True, (kind, case.get("recheck"))
        assert case["signature"] and case["versions"]["torch"] == torch.__version__
        assert {"program.py", "repro.py", "inputs.safetensors", "params.safetensors", "graph.json"} <= set(os.listdir(out / d))
    seg = json.loads((out / by_kind["signal"] / "case.json").read_text())
    assert seg["detail"] == "SIGSEGV" and "Segmentation fault" in seg["error"]["traceback"]
    assert "plot_data.csv" in os.listdir(out) and (out / "plot_data.csv").read_text().startswith("unix_time,")


def _default_sigint():
    # A job started in the background by a non-interactive shell (`pytest ... &`) inherits SIGINT
    # ignored, and Python then installs no KeyboardInterrupt handler: the campaign would never
    # see the Ctrl-C this test sends. Restore the default in the child.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(cmd, gate):
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(env(), ASSAY_GATE=str(gate)),
                            text=True, preexec_fn=_default_sigint)


def _cmdline(proc):
    import psutil

    try:
        return proc.cmdline()
    except psutil.Error:
        return []


def _waiting(gate):
    return len(list(gate.glob("waiting-*")))


def _wait_until(proc, out, gate, rows, workers, timeout=180):
    """Wait until the journal holds ``rows`` tests and all ``workers`` are blocked at the gate.

    Nothing can finish while they all wait, so the state is fixed, whatever the machine's load.
    """
    deadline = time.time() + timeout
    errors = []
    n = -1
    while time.time() < deadline:
        assert proc.poll() is None, f"campaign exited {proc.returncode} early: {proc.stderr.read()[-3000:]}"
        try:
            n = len(journal(out)) if (out / "index.sqlite").exists() else 0
        except sqlite3.Error as exc:  # e.g. the schema is not created yet; say so if it never ends
            errors.append(f"{type(exc).__name__}: {exc}")
        if n >= rows and _waiting(gate) == workers:
            return
        time.sleep(0.05)
    pytest.fail(f"journal has {n} rows (want {rows}), {_waiting(gate)} workers at the gate (want {workers}); "
                f"sqlite errors: {errors[-5:]}")


@pytest.mark.slow
def test_ctrl_c_then_kill_9_then_resume_loses_and_duplicates_nothing(assay, tmp_path):
    psutil = pytest.importorskip("psutil")
    progs = make_programs(tmp_path / "progs", 4)
    out = tmp_path / "run"
    gate = tmp_path / "gate"
    gate.mkdir()
    # Per program: _perturb (a mismatch, saved as a case), then _gate, which blocks until the test
    # lets it through. So the campaign stops at fixed points, however fast or slow the machine is.
    base = assay + ["fuzz", "--programs", str(progs), "--backends", "_perturb,_gate", "--keep", "20", "--time", "300",
                    "--timeout", "300"]
    try:
        # 1. Ctrl-C with both workers blocked on their first program's _gate: clean stop, workers
        #    gone, stats flushed, exit 130; journaled: the two _perturb tests
        proc = _start(base + ["--out", str(out), "--workers", "2"], gate)
        _wait_until(proc, out, gate, 2, workers=2)
        workers = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err[-2000:]
        assert "--resume" in err and "Traceback" not in err
        assert workers and not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)
        first = journal(out)
        assert sorted((r[0].rsplit("-", 2)[1], r[1]) for r in first) == [("_perturb", "mismatch")] * 2, first
        assert json.loads((out / "stats.json").read_text())["tests"] == 2
        for f in gate.glob("waiting-*"):
            f.unlink()
        # 2. resume (one worker) with one ticket: program 0's _gate test passes, program 1's blocks;
        #    kill -9 the driver there (the two staged cases may be being re-checked)
        (gate / "ticket-0").touch()
        proc = _start(base + ["--resume", str(out), "--workers", "1"], gate)
        _wait_until(proc, out, gate, len(first) + 1, workers=1)
        workers = [w for w in psutil.Process(proc.pid).children(recursive=True)
                   if "fuzz.campaign.worker" in " ".join(_cmdline(w))]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        before = journal(out)
        assert len(before) == len(first) + 1 and set(first) <= set(before), before
        assert sorted(r[1] for r in before if "_gate" in r[0]) == ["pass"]
        # the workers blocked at the gate see their driver gone and exit (re-checks it started finish alone)
        assert len(workers) == 1 and not psutil.wait_procs(workers, timeout=30)[1]
        # 3. open the gate and resume to the end
        (gate / "open").touch()
        res = subprocess.run(assay + ["fuzz", "--resume", str(out), "--time", "300", "--workers", "1"], capture_output=True,
                             text=True, timeout=400, env=dict(env(), ASSAY_GATE=str(gate)))
        assert res.returncode == 0, res.stderr[-3000:]
    finally:
        (gate / "open").touch()  # never leave a worker blocked
    rows = journal(out)
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids)) == 8  # 4 programs x 2 backends, each exactly once
    assert set(before) <= set(rows)
    failing = sorted(r[0] for r in rows if r[1] != "pass")
    assert len(failing) == 4 and all("_perturb" in f for f in failing)
    assert case_dirs(out) == failing  # every failure saved exactly once
    assert not os.listdir(out / ".staging")
    db = sqlite3.connect(str(out / "index.sqlite"))
    assert sorted(r[0] for r in db.execute("SELECT id FROM cases")) == failing
    for d in failing:
        assert json.loads((out / d / "case.json").read_text())["reproduces"] is True


def test_status_screen_and_progress_line():
    from fuzz.campaign.status import render_line, render_lines

    st = {"elapsed_s": 75, "workers": 2, "worker_restarts": 1, "seed": 0, "nodes": 5, "tests": 120,
          "tests_per_min": 96.0, "tests_per_min_last_minute": 101.5, "models": 60, "ops_covered": 140,
          "outcomes": {"pass": 117, "crash": 1, "mismatch": 1, "hang": 0, "signal": 1, "oom": 0},
          "unique_signatures": 3, "cases_saved": 3, "rechecks_pending": 1, "flaky": 0, "invalid": 4,
          "backends": ["inductor", "aot_eager"], "per_backend": {"inductor": {"pass": 57, "crash": 1}}}
    lines = render_lines(st, 525)
    assert "1m15s elapsed, 8m45s left" in lines[0] and "96.0/min" in lines[1]
    assert lines[-2].startswith("inductor") and " 57 " in lines[-2]
    line = render_line(st, 525)
    assert "120 tests" in line and "crash=1" in line and "\n" not in line


def test_the_closing_line_counts_a_flaky_failure_apart_and_says_so():
    """A failure that passed its recheck is not in the outcome counts (s24d: 15 cases, "14 failing
    tests"): the closing line says how many were counted apart, and says nothing when none were."""
    from fuzz.campaign.status import render_summary

    st = {"tests": 972, "elapsed_s": 1210, "outcomes": {"pass": 778, "crash": 12, "mismatch": 2},
          "unique_signatures": 12, "cases_saved": 15, "flaky": 1}
    text = render_summary(st, 972, 12, "/tmp/camp")
    assert "14 failing tests in all (+1 flaky: failed once, passed its recheck; counted apart), 12 signatures" in text
    assert "next: assay triage list --dir /tmp/camp" in text
    assert "flaky" not in render_summary(dict(st, flaky=0), 972, 12, "/tmp/camp")


@pytest.mark.slow
def test_a_test_that_spoils_the_process_restarts_the_worker_and_nothing_after_it_is_spoiled(assay, tmp_path):
    # _leak raises inside a vmap level it never leaves: every later tensor of that process would be
    # a functorch wrapper (a real AOTInductor failure did this and a campaign then made only genfails)
    progs = make_programs(tmp_path / "progs", 2)
    out = tmp_path / "run"
    cmd = assay + ["fuzz", "--programs", str(progs), "--backends", "_leak,eager,aot_eager", "--workers", "1",
                   "--time", "300", "--no-recheck", "--out", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=env())
    assert res.returncode == 0, res.stderr[-3000:]
    kinds = {tid: k for tid, k, _ in journal(out)}
    assert len(kinds) == 6, kinds
    for tid, k in kinds.items():  # every test after a leak ran in a fresh worker: eager and aot_eager pass
        assert k == ("crash" if "_leak" in tid else "pass"), kinds
    stats = json.loads((out / "stats.json").read_text())
    assert stats["worker_restarts"] == 2
    log = "".join(p.read_text() for p in (out / "logs").glob("worker-*.log"))
    assert log.count("torch.func's transform stack at depth 1; restarting") == 2
