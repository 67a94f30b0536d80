"""Real case folders for the campaign tests: a tiny graph saved as a program, a ``Case``, its
``repro.py``, written through the crash store exactly as a campaign writes them."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from fuzz.campaign import repro
from fuzz.campaign.case import Case
from fuzz.campaign.failure import signature
from fuzz.campaign.store import CrashStore
from fuzz.gen.program import PROGRAM_FILES, save_program
from fuzz.ir.graph import Graph, Node

RAISE_ERROR = {"type": "RuntimeError", "message": "injected failure in buf3 at 0x7f00deadbeef for shape [2, 3]",
               "traceback": ""}


def tiny_graph(n: int = 3) -> tuple[Graph, dict]:
    """x -> linear(w) -> tanh: two operators, a param, small enough to inline."""
    g = Graph()
    x = g.add_tensor([2, n], "float32", "input", name="x")
    w = g.add_tensor([4, n], "float32", "param", name="w")
    h = g.add_tensor([2, 4], "float32", name="h")
    g.add_node(Node(id="n0", op="torch.nn.functional.linear", api="function", args=[{"ref": x}, {"ref": w}],
                    kwargs={}, outputs=[h]))
    t = g.add_tensor([2, 4], "float32", name="t")
    g.add_node(Node(id="n1", op="torch.tanh", api="function", args=[{"ref": h}], kwargs={}, outputs=[t]))
    g.outputs = [t]
    gen = torch.Generator().manual_seed(n)
    return g, {"x": torch.randn(2, n, generator=gen), "w": torch.randn(4, n, generator=gen)}


def write_case(root, case_id: str, backend: str, kind: str, *, detail: str = "", error: dict | None = None,
               check=("out0",), finalize: bool = True, mode: str = "fwd", program=None) -> Path:
    """A complete case folder ``root/case_id`` (staged only, with ``finalize=False``);
    ``program``: ``(graph, tensors)`` instead of ``tiny_graph()``."""
    graph, tensors = program or tiny_graph()
    with tempfile.TemporaryDirectory() as tmp:
        save_program(graph, tensors, tmp)
        files = {name: (Path(tmp) / name).read_bytes() for name in PROGRAM_FILES}
    sig = signature(kind, backend, mode, ops=graph.ops(), error=error, detail=detail)
    case = Case(id=case_id, test_id=case_id, kind=kind, detail=detail, backend=backend, mode=mode, signature=sig.id,
                signature_text=sig.text, error=error, check=list(check) if kind == "mismatch" else [],
                ops=graph.ops(), graph=graph.to_json(), timeout_s=120, mem_limit_mb=4096,
                created="2026-01-01T00:00:00Z", files=sorted(list(files) + ["repro.py", "case.json"]))
    store = CrashStore(root)
    try:
        store.stage_case(case, files, repro.repro_source(files["program.py"].decode(), case))
        return store.finalize(case_id, None) if finalize else store.staging_dir(case_id)
    finally:
        store.close()


def run_repros(dirs) -> list[subprocess.CompletedProcess]:
    """Run each folder's repro.py at once (in parallel), isolated from this checkout (``-I``)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ASSAY_TEST_BACKENDS")}
    procs = [subprocess.Popen([sys.executable, "-I", "repro.py"], cwd=str(d), env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for d in dirs]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=240)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out
