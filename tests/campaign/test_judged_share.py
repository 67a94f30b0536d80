"""A pass that judged nothing, and an exception inside the oracle, are counted apart."""

import io
import json

import torch

from fuzz.campaign import oracle, sensitivity, worker
from fuzz.campaign.config import Config
from fuzz.campaign.progress import Progress
from fuzz.campaign.store import CrashStore
from fuzz.campaign.verdict import NOTHING_JUDGED, Kind, Verdict
from fuzz.gen import program
from fuzz.ir.graph import Graph, Node


def _graph(nondeterministic: bool) -> Graph:
    """x -> empty_like(x) + x (every output skipped: uninitialised memory) or x -> relu(x)."""
    g = Graph()
    x = g.add_tensor([3, 4], "float32", "input", name="x")
    if nondeterministic:
        e = g.add_tensor([3, 4], "float32", name="empty_like_0")
        g.add_node(Node(id="n0", op="torch.empty_like", api="function", overload=None, args=[{"ref": x}], kwargs={},
                        outputs=[e]))
        src = e
    else:
        src = x
    out = g.add_tensor([3, 4], "float32", name="relu_1")
    g.add_node(Node(id="n1", op="torch.relu", api="function", overload=None, args=[{"ref": src}], kwargs={},
                    outputs=[out]))
    g.outputs = [out]
    return g


def _run(tmp_path, nondeterministic: bool, name: str) -> dict:
    d = tmp_path / name
    program.save_program(_graph(nondeterministic), {"x": torch.randn(3, 4)}, d)
    events = []
    worker.run_job({"job": "s0-m000000", "model": 0, "source": {"program_dir": str(d)},
                    "tests": [{"test": "t", "backend": "eager", "mode": "fwd"}]}, events.append)
    return [e for e in events if e["event"] == "verdict"][0]


def test_judge_says_when_nothing_was_judged():
    e = torch.tensor([1.0, 2.0])
    r = oracle.Reference(["out0", "out1"], [e, torch.tensor([1, 2])], [e.double(), None],
                         skip={"out0": "picks among ties", "out1": "picks among ties"})
    assert oracle.judge(r, [e, torch.tensor([1, 2])]).detail == NOTHING_JUDGED
    r.skip = {"out0": "picks among ties"}
    assert oracle.judge(r, [e, torch.tensor([1, 2])]).detail == ""
    empty = oracle.Reference(["out0"], [torch.zeros(0)], [torch.zeros(0, dtype=torch.float64)])
    assert oracle.judge(empty, [torch.zeros(0)]).detail == NOTHING_JUDGED
    nan = torch.tensor([float("nan")])
    assert oracle.judge(oracle.Reference(["out0"], [nan], [nan.double()]), [nan]).detail == ""  # judged on its class


def test_stats_count_unjudged_passes_and_oracle_errors_apart(tmp_path, monkeypatch):
    unjudged = _run(tmp_path, True, "p1")
    judged = _run(tmp_path, False, "p2")
    assert unjudged["kind"] == "pass" and unjudged["detail"] == NOTHING_JUDGED
    assert judged["kind"] == "pass" and judged.get("detail", "") == ""

    def broken(*a, **k):
        raise ZeroDivisionError("planted")

    monkeypatch.setattr(sensitivity, "sensitive_tensors", broken)
    in_analysis = _run(tmp_path, False, "p3")
    monkeypatch.undo()
    monkeypatch.setattr(oracle, "judge", broken)
    in_judge = _run(tmp_path, False, "p4")
    for v in (in_analysis, in_judge):
        assert v["kind"] == "oracle_error" and "ZeroDivisionError" in v["error"]["type"] + v["detail"], v
    # the journal line names the last of Assay's frames the error passed: where to start looking
    assert in_judge["detail"].startswith("oracle raised ZeroDivisionError at fuzz/campaign/session.py:"), in_judge
    assert in_judge["detail"].endswith("(_run_test)"), in_judge

    store = CrashStore(tmp_path / "c")
    for i, v in enumerate((unjudged, judged, in_analysis, in_judge)):
        store.record_test(f"t{i}", i, Verdict.from_event(v))
    store.record_test("t9", 9, Verdict(Kind.PASS, backend="eager", mode="fwd"))
    progress = Progress(Config(out=str(tmp_path / "c"), backends=["eager"]), store, io.StringIO())
    progress.update(lambda: {"models": 5, "ops_covered": 2, "rechecks_pending": 0, "worker_restarts": 0}, force=True)
    st = json.loads((tmp_path / "c" / "stats.json").read_text())
    assert st["outcomes"]["pass"] == 3 and st["oracle_errors"] == 2
    assert st["judged_share"] == round(2 / 3, 4)
    assert not Kind.ORACLE_ERROR.failed
    store.close()
