"""Graphs for the triage tests, built directly with the Graph IR (no generator needed)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from fuzz.ir.graph import Graph, Node


def ref(name: str) -> dict:
    return {"ref": name}


def chain_graph(n_extra: int = 0) -> tuple[Graph, dict]:
    """A 9-node graph: two inputs, a param, elementwise ops, a linear, a reduction."""
    g = Graph()
    x = g.add_tensor([4, 6], "float32", "input", name="x")
    y = g.add_tensor([4, 6], "float32", "input", name="y")
    w = g.add_tensor([5, 6], "float32", "param", name="w")

    def call(op, args, shape, kwargs=None, dtype="float32"):
        out = g.add_tensor(shape, dtype)
        g.add_node(Node(id=g.new_node_id(), op=op, api="function", args=args, kwargs=kwargs or {}, outputs=[out]))
        return out

    a = call("torch.sigmoid", [ref(x)], [4, 6])
    b = call("torch.mul", [ref(a), ref(y)], [4, 6])
    c = call("torch.tanh", [ref(b)], [4, 6])
    d = call("torch.nn.functional.relu", [ref(c)], [4, 6])
    e = call("torch.add", [ref(d), ref(x)], [4, 6], {"alpha": 2})
    f = call("torch.nn.functional.linear", [ref(e), ref(w)], [4, 5])
    h = call("torch.exp", [ref(f)], [4, 5])
    i = call("torch.sum", [ref(h), 1], [4])
    j = call("torch.cos", [ref(e)], [4, 6])
    g.outputs = [i, j]
    gen = torch.Generator().manual_seed(0)
    tensors = {
        "x": torch.randn(4, 6, generator=gen),
        "y": torch.randn(4, 6, generator=gen),
        "w": torch.randn(5, 6, generator=gen),
    }
    g.topological_check()
    return g, tensors


def module_graph() -> tuple[Graph, dict]:
    """x -> tanh -> nn.Linear(6, 5) -> relu, with the Linear's weights in the tensors dict."""
    from fuzz.gen.program import module_attr

    g = Graph()
    x = g.add_tensor([3, 6], "float32", "input", name="x")
    a = g.add_tensor([3, 6], "float32")
    g.add_node(Node(id="n0", op="torch.tanh", api="function", args=[ref(x)], kwargs={}, outputs=[a]))
    b = g.add_tensor([3, 5], "float32")
    lin = Node(id="n1", op="torch.nn.Linear", api="module", args=[ref(a)], kwargs={}, outputs=[b],
               init={"args": [6, 5], "kwargs": {}})
    g.add_node(lin)
    c = g.add_tensor([3, 5], "float32")
    g.add_node(Node(id="n2", op="torch.relu", api="function", args=[ref(b)], kwargs={}, outputs=[c]))
    g.outputs = [c]
    gen = torch.Generator().manual_seed(1)
    attr = module_attr(lin)
    tensors = {"x": torch.randn(3, 6, generator=gen),
               f"{attr}.weight": torch.randn(5, 6, generator=gen), f"{attr}.bias": torch.randn(5, generator=gen)}
    return g, tensors


def relu_graph_b() -> tuple[Graph, dict]:
    """A different graph (other ops, shapes) that also goes through relu."""
    g = Graph()
    x = g.add_tensor([2, 3, 5], "float32", "input", name="inp")

    def call(op, args, shape, kwargs=None):
        out = g.add_tensor(shape, "float32")
        g.add_node(Node(id=g.new_node_id(), op=op, api="function", args=args, kwargs=kwargs or {}, outputs=[out]))
        return out

    a = call("torch.neg", [ref(x)], [2, 3, 5])
    b = call("torch.nn.functional.relu", [ref(a)], [2, 3, 5])
    c = call("torch.sin", [ref(b)], [2, 3, 5])
    d = call("torch.abs", [ref(x)], [2, 3, 5])
    e = call("torch.mul", [ref(c), ref(d)], [2, 3, 5])
    f = call("torch.mean", [ref(e), 2], [2, 3])
    g.outputs = [f]
    gen = torch.Generator().manual_seed(7)
    return g, {"inp": torch.randn(2, 3, 5, generator=gen)}


def make_case(root, case_id: str, graph: Graph, tensors: dict, backend: str = "aot_eager", mode: str = "fwd",
              kind: str = "mismatch", detail: str = "values", error: dict | None = None, created: str | None = None,
              hits: int = 1, second_call: dict | None = None, second_inputs: dict | None = None) -> str:
    """Save a case the way the campaign does (store staging + repro.py + index rows), without running it.

    A dynamic-mode case may carry ``second_call`` (sizes) and ``second_inputs`` (tensors by input
    name), saved in inputs.safetensors as ``second_call.<name>``, as a campaign saves them."""
    import json as _json
    import tempfile
    from pathlib import Path

    from fuzz.campaign import repro
    from fuzz.campaign.case import Case
    from fuzz.campaign.failure import signature
    from fuzz.campaign.store import CrashStore
    from fuzz.campaign.verdict import Verdict
    from fuzz.gen.program import PROGRAM_FILES, save_program

    ops = graph.ops()
    failure = signature(kind, backend, mode, ops=ops, error=error, detail=detail)
    sig, text = failure.id, failure.text
    with tempfile.TemporaryDirectory() as tmp:
        save_program(graph, tensors, tmp)
        files = {n: (Path(tmp) / n).read_bytes() for n in PROGRAM_FILES}
    if second_inputs:
        from safetensors.torch import load, save

        both = load(files["inputs.safetensors"])
        both.update({"second_call." + k: v.contiguous() for k, v in second_inputs.items()})
        files["inputs.safetensors"] = save(both)
    case = Case.from_json({
        "format": 1, "id": case_id, "test_id": case_id, "kind": kind, "outcome": f"{kind}: {detail}",
        "detail": detail, "backend": backend, "mode": mode, "device": "cpu", "signature": sig,
        "signature_text": text, "error": error,
        "diff": {"where": "out0", "index": [0, 1], "count": 3, "numel": 8, "max_abs": 0.5, "max_rel": 0.9,
                 "reference": 0.55, "eager": 0.55, "compiled": 1.05} if kind == "mismatch" else None,
        "check": ["out0"] if kind == "mismatch" else [], "skip": [], "ops": ops, "graph": graph.to_json(),
        "versions": repro.versions(), "seed": 0, "created": created or "2025-01-01T00:00:00+00:00",
        "reproduces": None, "flaky": False, "timeout_s": 120, "mem_limit_mb": 0, "second_call": second_call,
    })
    store = CrashStore(root)
    try:
        store.stage_case(case, files, repro.repro_source(files["program.py"].decode(), case))
        store.finalize(case_id, True)
        for i in range(hits):
            store.record_test(f"{case_id}-hit{i}", 0, Verdict(kind, detail, backend=backend, mode=mode), failure,
                              case_id=case_id if i == 0 else None)
    finally:
        store.close()
    _ = _json
    return case_id


FAULT_DIR = Path(__file__).resolve().parents[1] / "fault_injection"


def campaign_finds_one(run_assay, progs: Path, out: Path, fault: str) -> dict:
    """An aot_eager campaign over the program folders in ``progs`` (one test each) under the test fault
    ``fault`` (tests/fault_injection): it must end with one signature among them. Its environment."""
    env = dict(os.environ, ASSAY_TEST_FAULT=fault,
               PYTHONPATH=os.pathsep.join(p for p in (str(FAULT_DIR), os.environ.get("PYTHONPATH")) if p))
    res = run_assay("fuzz", "--programs", progs, "--backends", "aot_eager", "--workers", "1", "--out", out,
                    "--time", "5m", "--no-recheck", env=env, timeout=300)
    count = sum(1 for d in progs.iterdir() if d.is_dir())
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"{count} tests this run" in res.stderr and "1 signatures (1 new this run)" in res.stderr, res.stderr[-2000:]
    return env
