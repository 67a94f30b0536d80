"""Backends: the registry, every CPU backend on small models and modes, real inductor, repro scripts."""

import json
import subprocess
import sys

import pytest
import torch

from fuzz.campaign import backends

from fuzz.gen import program

from fuzz.campaign import repro
from fuzz.campaign.case import Case

from fuzz.campaign import worker
from fuzz.errors import AssayError
from fuzz.ir.graph import Graph, Node


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
    assert backends.parse_modes("fwd, bwd,dynamic,train") == ["fwd", "bwd", "dynamic", "train"]
    # adding a backend is one registration of a snippet
    b = backends.register(backends.Backend("_identity_test", '''
        def compile_model(model, inputs, dynamic=False):
            return model
    ''', test_only=True))
    assert b.compile_function()(torch.nn.ReLU(), [])(torch.tensor([-1.0])).item() == 0.0
    backends.REGISTRY.pop("_identity_test")


def test_cpu_backends_pass_in_every_mode(conv_dir):
    pairs = [("aot_eager", "fwd"), ("aot_eager", "bwd"), ("aot_eager", "dynamic"), ("eager", "fwd"),
             ("aot_eager_decomp_partition", "fwd"), ("export", "fwd"), ("export", "bwd"), ("export", "dynamic"),
             ("aot_eager", "train")]
    tests = [{"test": f"{b}-{m}", "backend": b, "mode": m} for b, m in pairs + [("export", "train")]]
    verdicts = run(conv_dir, tests)
    # an exported program holds its own parameter copies: it cannot be trained through
    assert verdicts.pop("export-train")["kind"] == "unsupported"
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
        text = repro.repro_source(src, Case.from_json(spec))
        assert "import fuzz" not in text and "from fuzz" not in text
        (d / "repro.py").write_text(text)
        res = subprocess.run([sys.executable, "repro.py"], cwd=d, capture_output=True, text=True, timeout=300,
                             env={"PATH": "/usr/bin:/bin", "PYTHONWARNINGS": "ignore"})
        expected = 0 if name == "pass" else 1
        assert res.returncode == expected, (name, res.stdout[-2000:], res.stderr[-2000:])
        assert ("REPRODUCED" in res.stdout) == (expected == 1)
    assert "# Found with: torch" in (tmp_path / "mismatch" / "repro.py").read_text()


def _linear_graph(reshape=False):
    """x[2,3] -> linear(w[4,3]) -> tanh; with ``reshape``, x is first flattened to a fixed [6]
    (and w is [4,6]), so no other input size can run."""
    g = Graph()
    x = g.add_tensor([2, 3], "float32", "input", name="x")
    src = x
    if reshape:
        src = g.add_tensor([6], "float32", name="flat")
        g.add_node(Node(id="n_r", op="torch.reshape", api="function", args=[ref(x), [6]], kwargs={}, outputs=[src]))
    w = g.add_tensor([4, 6 if reshape else 3], "float32", "param", name="w")
    shape = [4] if reshape else [2, 4]
    h = g.add_tensor(shape, "float32", name="h")
    g.add_node(Node(id="n0", op="torch.nn.functional.linear", api="function", args=[ref(src), ref(w)], kwargs={},
                    outputs=[h]))
    t = g.add_tensor(shape, "float32", name="t")
    g.add_node(Node(id="n1", op="torch.tanh", api="function", args=[ref(h)], kwargs={}, outputs=[t]))
    g.outputs = [t]
    gen = torch.Generator().manual_seed(3)
    return g, {"x": torch.randn(2, 3, generator=gen), "w": torch.randn(4, 6 if reshape else 3, generator=gen)}


def _recording(monkeypatch, name):
    """Make backend ``name`` record the input shapes its compiled function is called with."""
    calls = []
    real = backends.REGISTRY[name].compile_function

    def compile_function():
        compile_model = real()

        def recording(model, inputs, dynamic=False):
            fn = compile_model(model, inputs, dynamic=dynamic)

            def run(*args):
                calls.append([list(a.shape) for a in args])
                return fn(*args)
            return run
        return recording
    monkeypatch.setattr(backends.REGISTRY[name], "compile_function", compile_function)
    return calls


@pytest.mark.slow
def test_dynamic_mode_calls_the_compiled_model_again_at_other_sizes(tmp_path, monkeypatch):
    g, t = _linear_graph()
    program.save_program(g, t, tmp_path / "p")
    calls = _recording(monkeypatch, "inductor")
    events = []
    worker.run_job({"job": "s0-m000000", "model": 0, "source": {"program_dir": str(tmp_path / "p")},
                    "tests": [{"test": "d", "backend": "inductor", "mode": "dynamic"}]}, events.append)
    model = next(e for e in events if e["event"] == "model")
    v = next(e for e in events if e["event"] == "verdict")
    # x's dim of size 3 cannot change (w is [4, 3]); its 2 can: the second call is x[3, 3]
    assert v["kind"] == "pass", v
    assert v["second_call"] == {"from": 2, "to": 3, "key_prefix": "second_call.", "shapes": {"x": [3, 3]}}
    assert model["second_call"] == v["second_call"] and "inputs.safetensors" in model["files_dynamic"]
    assert calls == [[[2, 3]], [[3, 3]]]  # the compiled (inductor) function ran at both sizes


def test_dynamic_mode_without_an_accepted_resize_is_the_first_call_alone(tmp_path, monkeypatch):
    g, t = _linear_graph(reshape=True)
    program.save_program(g, t, tmp_path / "p")
    calls = _recording(monkeypatch, "aot_eager")
    verdicts = run(tmp_path / "p", [{"test": "d", "backend": "aot_eager", "mode": "dynamic"}])
    v = verdicts["d"]
    assert v["kind"] == "pass", v
    assert v["second_call"]["none"] == "no other input sizes accepted by eager"
    assert "2->3: eager rejects the shapes" in v["second_call"]["tried"]
    assert calls == [[[2, 3]]]


def test_second_call_mismatch_is_judged_saved_and_replayed(tmp_path, monkeypatch):
    """A backend wrong only at other sizes: the second call finds it, the case and repro.py replay it."""
    from fuzz.campaign.config import Config
    from fuzz.campaign.driver import Campaign

    monkeypatch.setenv("ASSAY_TEST_BACKENDS", "1")
    g, t = _linear_graph()
    program.save_program(g, t, tmp_path / "progs" / "p0")
    camp = Campaign(Config(out=str(tmp_path / "run"), backends=["_perturb_resized"], modes=["fwd", "dynamic"],
                           programs=str(tmp_path / "progs")), stream=open("/dev/null", "w"))
    job = next(camp.jobs())
    events = []
    worker.run_job(job, events.append)
    for ev in events:
        camp.on_event(json.loads(json.dumps(ev)))
    verdicts = {e["mode"]: e for e in events if e["event"] == "verdict"}
    assert verdicts["fwd"]["kind"] == "pass" and "second_call" not in verdicts["fwd"]
    v = verdicts["dynamic"]
    assert v["kind"] == "mismatch" and v["diff"]["where"] == "call2:out0" and v["check"] == ["call2:out0"], v
    case_dir = camp.store.staging_dir(v["test"])
    case = json.loads((case_dir / "case.json").read_text())
    assert case["second_call"]["shapes"] == {"x": [3, 3]} and case["check"] == ["call2:out0"]
    from safetensors.torch import load_file

    saved = load_file(str(case_dir / "inputs.safetensors"))
    assert saved["x"].shape == (2, 3) and saved["second_call.x"].shape == (3, 3)
    assert torch.equal(saved["second_call.x"][:2], saved["x"])  # old positions keep their values
    env = {"PATH": "/usr/bin:/bin", "PYTHONWARNINGS": "ignore", "ASSAY_TEST_BACKENDS": "1"}
    res = subprocess.run([sys.executable, "repro.py"], cwd=case_dir, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 1 and "call2:out0" in res.stdout, (res.stdout[-2000:], res.stderr[-2000:])
    # A case written before second calls existed (no second_call): the repro replays the first call
    # alone, which this backend gets right.
    old = {k: v for k, v in case.items() if k != "second_call"}
    old["check"] = ["out0"]
    (case_dir / "repro.py").write_text(repro.repro_source((case_dir / "program.py").read_text(), Case.from_json(old)))
    assert "SECOND_CALL" not in (case_dir / "repro.py").read_text()  # no second call in the script at all
    res = subprocess.run([sys.executable, "repro.py"], cwd=case_dir, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, (res.stdout[-2000:], res.stderr[-2000:])
    camp.store.close()


def _camp_events(tmp_path, name, backend, knob_names):
    from fuzz.campaign.config import Config
    from fuzz.campaign.driver import Campaign

    camp = Campaign(Config(out=str(tmp_path / name), backends=[backend], modes=["fwd", "dynamic"],
                           programs=str(tmp_path / "progs"), knobs=knob_names), stream=open("/dev/null", "w"))
    job = next(camp.jobs())
    events = []
    worker.run_job(job, events.append)
    for ev in events:
        camp.on_event(json.loads(json.dumps(ev)))
    return camp, {e["mode"]: e for e in events if e["event"] == "verdict"}


def _knob_needed_by_repro(case_dir, knob):
    """The case's repro.py reproduces with its knobs, then agrees with ``knob`` left out (run after
    the first, so state the first run left behind, such as a filled cache, would show)."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONWARNINGS": "ignore", "ASSAY_TEST_BACKENDS": "1"}
    res = subprocess.run([sys.executable, "repro.py"], cwd=case_dir, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 1 and "REPRODUCED" in res.stdout, (res.stdout[-2000:], res.stderr[-2000:])
    res = subprocess.run([sys.executable, "repro.py"], cwd=case_dir, capture_output=True, text=True, timeout=300,
                         env=dict(env, ASSAY_REPRO_WITHOUT=knob))
    assert res.returncode == 0 and "AGREE" in res.stdout, (res.stdout[-2000:], res.stderr[-2000:])


def _a_knob_alone_makes_the_mismatch(tmp_path, monkeypatch, backend, knob):
    """A fwd and a dynamic test of ``backend`` pass without ``knob`` and are mismatches under it (each
    campaign in an inductor cache of its own); the knob's global is restored after the job, the
    verdict records the knob, and the case's repro.py needs it."""
    from fuzz.campaign import knobs

    monkeypatch.setenv("ASSAY_TEST_BACKENDS", "1")
    g, t = _linear_graph()
    program.save_program(g, t, tmp_path / "progs" / "p0")
    events = {}
    for name, chosen in (("plain", []), ("under", [knob])):
        monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / f"cache-{name}"))
        camp, events[name] = _camp_events(tmp_path, name, backend, chosen)
        if name == "plain":
            camp.store.close()
    plain, under = events["plain"], events["under"]
    assert plain["fwd"]["kind"] == plain["dynamic"]["kind"] == "pass", plain
    (setting, _), = knobs.KNOBS[knob].items()
    assert getattr(knobs, setting.removeprefix("assay.")) is False  # restored after the job
    assert under["fwd"]["kind"] == under["dynamic"]["kind"] == "mismatch", under
    assert under["fwd"]["knobs"] == {knob: {setting: True}}
    _knob_needed_by_repro(camp.store.staging_dir(under["fwd"]["test"]), knob)
    camp.store.close()


def test_the_inference_mode_knob_runs_the_compiled_side_on_inference_tensors_and_its_repro_does_too(tmp_path, monkeypatch):
    """``_perturb_inference`` is wrong only when it runs under torch.inference_mode() on inference
    tensors: the plain fwd and dynamic tests pass, under the knob both first and second calls are
    mismatches, and the case's repro.py reproduces with the knob and agrees without it."""
    _a_knob_alone_makes_the_mismatch(tmp_path, monkeypatch, "_perturb_inference", "inference_mode")


def test_the_warm_cache_knob_tests_the_compile_served_from_torchs_caches_and_its_repro_does_too(tmp_path, monkeypatch):
    """``_perturb_cached`` (real inductor) is wrong only when the FX graph cache served its compile:
    in a cold cache the plain fwd and dynamic tests pass; under ``warm_cache`` both are mismatches
    (a twin compiled and run first fills the cache); the case's repro.py reproduces with the knob
    and agrees without it (it compiles in a cache of its own, so a second run is cold again)."""
    _a_knob_alone_makes_the_mismatch(tmp_path, monkeypatch, "_perturb_cached", "warm_cache")


def test_under_warm_cache_a_backward_test_is_served_from_the_fx_graph_and_aot_autograd_caches(tmp_path, monkeypatch):
    """The real inductor backend under the knob: the tested compile of a bwd test hits both caches
    (forward and backward graphs from the FX graph cache, the joint from the AOTAutograd cache),
    and still agrees with eager; without the knob nothing is served from them."""
    from torch._dynamo.utils import counters

    from fuzz.campaign import knobs
    from fuzz.campaign.session import Model, Session

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "cache"))
    g, t = _linear_graph()
    d = program.save_program(g, t, tmp_path / "p")
    graph, module, inputs = program.load_program(d)
    session = Session(Model(graph, module, inputs, {n: (d / n).read_bytes() for n in program.PROGRAM_FILES}))
    counters.clear()
    assert session.run_test("inductor", "bwd").kind.value == "pass"
    assert counters["inductor"]["fxgraph_cache_hit"] == 0 and counters["aot_autograd"]["autograd_cache_hit"] == 0
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "cache2"))
    with knobs.applied(knobs.settings_of(["warm_cache"])):
        v = session.run_test("inductor", "bwd")
    assert v.kind.value == "pass", v
    assert counters["aot_autograd"]["autograd_cache_hit"] == 1, dict(counters["aot_autograd"])
    assert counters["inductor"]["fxgraph_cache_hit"] == 2, dict(counters["inductor"])


def test_under_inference_mode_a_crash_eager_shares_there_is_not_judged(tmp_path, monkeypatch):
    """A model that reads a version counter (inference tensors have none) raises under
    torch.inference_mode() in eager too: the compiled side's crash there is a skip, not a finding;
    the same backend on a model eager runs there is judged (a mismatch)."""
    from fuzz.campaign import knobs
    from fuzz.campaign.session import Model, Session

    monkeypatch.setenv("ASSAY_TEST_BACKENDS", "1")
    g, t = _linear_graph()
    d = program.save_program(g, t, tmp_path / "p")
    graph, module, inputs = program.load_program(d)
    session = Session(Model(graph, module, inputs, {n: (d / n).read_bytes() for n in program.PROGRAM_FILES}))
    backend = "_perturb_inference"
    with knobs.applied(knobs.settings_of(["inference_mode"])):
        assert session.run_test(backend, "fwd").kind.value == "mismatch"

        class Versioned(type(session.module)):
            def forward(self, x):
                assert x._version >= 0  # "Inference tensors do not track version counter"
                return super().forward(x)

        session.module.__class__ = Versioned
        v = session.run_test(backend, "fwd")
    assert v.kind.value == "skip" and "eager raises under torch.inference_mode() too" in v.detail, v
    assert "version counter" in v.detail
