"""Inductor's output code read per test: a vectorised loop and an OpenMP parallel region, on real
inductor compiles in the worker, journaled and aggregated into stats.json and the status screen."""

import io
import json

import torch

from fuzz.campaign import worker
from fuzz.campaign.config import Config
from fuzz.campaign.progress import Progress
from fuzz.campaign.status import render_line, render_lines
from fuzz.campaign.store import CrashStore
from fuzz.campaign.verdict import Kind, Verdict
from fuzz.gen import program
from fuzz.ir.graph import Graph, Node


def _sin_relu(shape):
    g = Graph()
    x = g.add_tensor(list(shape), "float32", "input", name="x")
    s = g.add_tensor(list(shape), "float32", name="s")
    g.add_node(Node(id="n0", op="torch.sin", api="function", args=[{"ref": x}], kwargs={}, outputs=[s]))
    r = g.add_tensor(list(shape), "float32", name="r")
    g.add_node(Node(id="n1", op="torch.relu", api="function", args=[{"ref": s}], kwargs={}, outputs=[r]))
    g.outputs = [r]
    return g, {"x": torch.randn(*shape, generator=torch.Generator().manual_seed(0))}


def _verdict(tmp_path, shape, backend="inductor"):
    d = tmp_path / "x".join(map(str, shape))
    program.save_program(*_sin_relu(shape), d)
    events = []
    worker.run_job({"job": "s0-m000000", "model": 0, "source": {"program_dir": str(d)},
                    "tests": [{"test": "t", "backend": backend, "mode": "fwd"}]}, events.append)
    (ev,) = [e for e in events if e["event"] == "verdict"]
    return ev


def test_inductor_output_code_shows_vector_loops_and_the_parallel_split(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a campaign's workers: the backend still compiles for 2 threads
    try:
        _check_vector_and_parallel(tmp_path)
    finally:
        torch.set_num_threads(threads)


def _check_vector_and_parallel(tmp_path):
    small = _verdict(tmp_path, (3, 64))
    assert small["kind"] == "pass"
    assert small["codegen"]["vectorised"] is True and small["codegen"]["parallel"] is False
    assert small["codegen"]["modules"] == 1 and small["codegen"]["cpp_kernels"] == 1  # sin+relu: one fused kernel
    # 256 x 128 = 32,768 elements: over two threads' minimum chunks, so the outer loop is split.
    large = _verdict(tmp_path, (256, 128))
    assert large["kind"] == "pass" and large["codegen"]["parallel"] is True
    # A backend that does not go through inductor loads no output code: nothing recorded.
    assert "codegen" not in _verdict(tmp_path, (3, 64), backend="aot_eager")


def test_codegen_shares_reach_stats_json_and_the_status_screen(tmp_path):
    store = CrashStore(tmp_path)
    feats = [(True, True), (True, False), (False, False)]
    for i, (vec, par) in enumerate(feats):
        store.record_test(f"t{i}", i, Verdict(Kind.PASS, backend="inductor", mode="fwd",
                                              codegen={"vectorised": vec, "parallel": par}))
    store.record_test("t0", 0, Verdict(Kind.PASS, backend="inductor", mode="fwd",
                                       codegen={"vectorised": False, "parallel": False}))  # a replay: ignored
    store.record_test("t9", 9, Verdict(Kind.CRASH, backend="inductor", mode="fwd"))  # did not compile
    progress = Progress(Config(out=str(tmp_path), backends=["inductor"]), store, io.StringIO())
    progress.update(lambda: {"models": 4, "ops_covered": 2, "rechecks_pending": 0, "worker_restarts": 0}, force=True)
    st = json.loads((tmp_path / "stats.json").read_text())
    assert st["inductor_code"] == {"tests": 3, "vectorised": 2, "parallel": 1,
                             "vectorised_share": 0.6667, "parallel_share": 0.3333}
    assert any("vectorised 67%, parallel 33% of 3 compiled" in line for line in render_lines(st, 10))
    assert "vectorised 67%, parallel 33% of 3 compiled" in render_line(st, 10)
    store.close()
    # The journal keeps them: a resumed campaign reads the same shares.
    assert CrashStore(tmp_path).codegen_shares()["tests"] == 3
