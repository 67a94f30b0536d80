"""Backends: the registry, every CPU backend on small models and modes, real inductor, repro scripts."""

import json
import subprocess
import sys

import pytest
import torch

from fuzz import backends, program, repro, worker
from fuzz.errors import AssayError
from fuzz.graph import Graph, Node


def ref(n):
    return {"ref": n}


def conv_graph():
    """conv2d (weight param) -> relu -> flatten -> linear (param) -> softmax, plus a matmul output."""
    g = Graph()
    x = g.add_tensor([2, 3, 8, 8], "float32", "input", name="x")
    w = g.add_tensor([4, 3, 3, 3], "float32", "param", name="w")
    lw = g.add_tensor([5, 144], "float32", "param", name="lw")
    m = g.add_tensor([8, 8], "float32", "input", name="m")

    def node(nid, op, args, shape, kwargs=None):
        out = g.add_tensor(shape, "float32", name=f"t_{nid}")
        g.add_node(Node(id=nid, op=op, api="function", args=args, kwargs=kwargs or {}, outputs=[out]))
        return out

    c = node("n0", "torch.nn.functional.conv2d", [ref(x), ref(w)], [2, 4, 6, 6], {"stride": [1, 1]})
    r = node("n1", "torch.relu", [ref(c)], [2, 4, 6, 6])
    f = node("n2", "torch.flatten", [ref(r), 1], [2, 144])
    l = node("n3", "torch.nn.functional.linear", [ref(f), ref(lw)], [2, 5])
    s = node("n4", "torch.softmax", [ref(l), 1], [2, 5])
    mm = node("n5", "torch.matmul", [ref(m), ref(m)], [8, 8])
    g.outputs = [s, mm]
    gen = torch.Generator().manual_seed(0)
    t = {"x": torch.randn(2, 3, 8, 8, generator=gen), "w": torch.randn(4, 3, 3, 3, generator=gen) / 3,
         "lw": torch.randn(5, 144, generator=gen) / 12, "m": torch.randn(8, 8, generator=gen)}
    return g, t


@pytest.fixture(scope="module")
def conv_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("prog") / "conv"
    g, t = conv_graph()
    program.save_program(g, t, d)
    return d


def run(d, tests, device="cpu"):
    events = []
    worker.run_job({"job": "s0-m000000", "model": 0, "source": {"program_dir": str(d)}, "tests": tests,
                    "device": device}, events.append)
    return {e["test"]: e for e in events if e["event"] == "verdict"}


def test_registry_names_and_errors(monkeypatch):
    monkeypatch.delenv("ASSAY_TEST_BACKENDS", raising=False)
    names = set(backends.available())
    assert {"inductor", "aot_eager", "aot_eager_decomp_partition", "eager", "export", "aoti"} <= names
    assert not any(n.startswith("_") for n in names)  # fault injection only in tests
    with pytest.raises(AssayError):
        backends.parse_backends("inductor,nope")
    with pytest.raises(AssayError):
        backends.parse_modes("fwd,sideways")
    assert backends.parse_modes("fwd, bwd,dynamic") == ["fwd", "bwd", "dynamic"]
    # adding a backend is one registration of a snippet
    b = backends.register(backends.Backend("_identity_test", '''
        def compile_model(model, inputs, dynamic=False):
            return model
    ''', test_only=True))
    assert b.compile_function()(torch.nn.ReLU(), [])(torch.tensor([-1.0])).item() == 0.0
    backends.REGISTRY.pop("_identity_test")


def test_cpu_backends_pass_in_every_mode(conv_dir):
    pairs = [("aot_eager", "fwd"), ("aot_eager", "bwd"), ("aot_eager", "dynamic"), ("eager", "fwd"),
             ("aot_eager_decomp_partition", "fwd"), ("export", "fwd"), ("export", "bwd"), ("export", "dynamic")]
    tests = [{"test": f"{b}-{m}", "backend": b, "mode": m} for b, m in pairs]
    verdicts = run(conv_dir, tests)
    kinds = {k: v["kind"] for k, v in verdicts.items()}
    assert all(k == "pass" for k in kinds.values()), {k: (v["kind"], v.get("detail"), (v.get("error") or {}).get("message", "")[:200]) for k, v in verdicts.items() if v["kind"] != "pass"}


@pytest.mark.slow
def test_real_inductor_forward(conv_dir):
    verdicts = run(conv_dir, [{"test": "i-fwd", "backend": "inductor", "mode": "fwd"}])
    assert verdicts["i-fwd"]["kind"] == "pass", verdicts["i-fwd"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_device(conv_dir):
    verdicts = run(conv_dir, [{"test": "c", "backend": "inductor", "mode": "fwd"}], device="cuda")
    assert verdicts["c"]["kind"] == "pass", verdicts["c"]


def test_repro_exits_1_when_it_reproduces_and_0_when_not(conv_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_TEST_BACKENDS", "1")
    graph = json.loads((conv_dir / "graph.json").read_text())
    verdicts = run(conv_dir, [{"test": "p", "backend": "_perturb", "mode": "fwd"},
                              {"test": "r", "backend": "_raise", "mode": "fwd"}])
    assert verdicts["p"]["kind"] == "mismatch" and verdicts["r"]["kind"] == "crash"
    src = (conv_dir / "program.py").read_text()
    cases = {
        "mismatch": dict(verdicts["p"], id="p", graph=graph),
        "crash": dict(verdicts["r"], id="r", graph=graph),
        "pass": {"id": "ok", "kind": "mismatch", "backend": "eager", "mode": "fwd", "check": ["out0", "out1"], "graph": graph},
    }
    for name, spec in cases.items():
        d = tmp_path / name
        d.mkdir()
        for f in ("inputs.safetensors", "params.safetensors"):
            (d / f).write_bytes((conv_dir / f).read_bytes())
        text = repro.repro_source(src, spec)
        assert "import fuzz" not in text and "from fuzz" not in text
        (d / "repro.py").write_text(text)
        res = subprocess.run([sys.executable, "repro.py"], cwd=d, capture_output=True, text=True, timeout=300,
                             env={"PATH": "/usr/bin:/bin", "PYTHONWARNINGS": "ignore"})
        expected = 0 if name == "pass" else 1
        assert res.returncode == expected, (name, res.stdout[-2000:], res.stderr[-2000:])
        assert ("REPRODUCED" in res.stdout) == (expected == 1)
    assert "# Found with: torch" in (tmp_path / "mismatch" / "repro.py").read_text()
