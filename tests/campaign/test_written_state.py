"""The oracle judges the state a model's forward writes (a buffer, a graph input) after every call:
real aot_eager/inductor runs of generated state-form models pass in fwd, bwd and dynamic mode, and a
compiled run that loses or doubles the writes (test backends ``_lose_state``, ``_double_state``:
right outputs, wrong state) is a mismatch on ``buffer:<name>`` / ``input:<name>``, whose repro.py
exits 1 in a fresh process and 0 for the real backend."""

import os
import subprocess
import sys
import warnings

import pytest
import torch

from fuzz.campaign import batch, repro, session, worker
from fuzz.campaign.case import Case
from fuzz.gen import program
from fuzz.gen.config import GenConfig
from fuzz.gen.generate import generate_model_for_index
from fuzz.gen.policy import ModelPolicy
from fuzz.gen.ruleset import load_ruleset
from fuzz.ir.graph import Graph, Node


# The written state's reference name of each fixture model: 2 -> "buffer:<name>", 4 -> "input:<name>".
WRITTEN: dict = {}


def _small_graph() -> Graph:
    """x[3, 6] -> sin -> mul(., y) -> exp: a graph for the state rewrites to write into."""
    g = Graph()
    for name in ("x_0", "y_1"):
        g.add_tensor([3, 6], "float32", "input", name=name)
    prev = "x_0"
    for k, (op, extra) in enumerate((("torch.sin", []), ("torch.mul", ["y_1"]), ("torch.exp", []))):
        out = g.add_tensor([3, 6], "float32", "value", name=f"{op.split('.')[-1]}_{k + 2}")
        g.add_node(Node(f"n{k}", op, "function", [{"ref": a} for a in [prev, *extra]], {}, [out]))
        prev = out
    g.outputs = [prev]
    return g


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Two saved models made by the state rewrites on a small graph (a generated model would bring
    whatever else its operators do: a crash or an eager backward that raises): 2 updates one
    running-mean buffer, 4 writes one graph input."""
    from fuzz.gen.chooser import RandomChooser
    from fuzz.gen.forms import REWRITES
    from fuzz.ir.graph import written_state

    warnings.filterwarnings("ignore")
    root = tmp_path_factory.mktemp("state")
    gen = torch.Generator().manual_seed(0)
    out = {}
    for label, form, kind in ((2, "buffer", "buffer"), (4, "input_write", "input")):
        for seed in range(32):
            g = _small_graph()
            # not index_put_: writing the same values twice leaves what once does (_double_state
            # could not show)
            if (REWRITES[form](g, 0, RandomChooser(seed)) and len(written_state(g)) == 1
                    and not any("index_put" in n.op for n in g.nodes)):
                break
        else:
            raise AssertionError(f"no single {form} write in 32 draws")
        tensors = {}
        for name, info in g.tensors.items():
            if info.role in ("input", "param"):
                if info.dtype == "int64":
                    tensors[name] = torch.randint(0, 4, info.shape, generator=gen)
                else:
                    tensors[name] = torch.rand(info.shape, generator=gen) + 0.5
        program.save_program(g, tensors, root / str(label))
        out[label] = root / str(label)
        WRITTEN[label] = f"{kind}:{written_state(g)[0][0]}"
    return out


@pytest.fixture(scope="module")
def sessions(saved):
    return {i: session.Session(worker.load_model({"source": {"program_dir": str(d)}})) for i, d in saved.items()}


@pytest.fixture
def test_backends(monkeypatch):
    monkeypatch.setenv("ASSAY_TEST_BACKENDS", "1")


def test_references_name_the_written_state_and_start_from_the_saved_state(saved, sessions):
    buf, inp = sessions[2], sessions[4]
    assert [n for n in buf.fwd_ref.names if ":" in n] == [WRITTEN[2]]
    assert [n for n in inp.fwd_ref.names if ":" in n] == [WRITTEN[4]]
    for i, s in sessions.items():
        k = len(s.model.graph.outputs)
        if s.fwd_ref.ref64 is not None:  # the float64 run of the state agrees with eager's
            torch.testing.assert_close(s.fwd_ref.ref64[k].to(s.fwd_ref.eager[k].dtype), s.fwd_ref.eager[k],
                                       rtol=2e-2, atol=2e-2, equal_nan=True)
        # every reference run (eager, every intermediate, float64, perturbed) ran on a copy: the
        # session's modules, which later runs copy, still hold the saved state
        start = program.load_program(saved[i])[1].state_dict()
        for module in (s.module, s.full_module):
            assert all(torch.equal(t, start[name]) for name, t in module.state_dict().items())
    assert "grad:" + WRITTEN[4].split(":")[1] not in inp.bwd_reference().names  # a written input is no gradient leaf


@pytest.mark.parametrize("mode", ["fwd", "bwd", "dynamic"])
def test_real_compile_passes_on_state_models(sessions, mode):
    for s in sessions.values():
        v = s.run_test("aot_eager", mode)
        assert v.kind == "pass", (v.detail, v.diff, v.error)
    if mode == "fwd":
        v = sessions[2].run_test("inductor", mode)
        assert v.kind == "pass", (v.detail, v.diff, v.error)


def test_a_buffer_update_is_not_judged_under_freezing(sessions):
    """Inductor's freezing inlines weights as constants and forbids updating them: a graph that
    reads a buffer another graph updates (across a graph break) keeps the value it was compiled
    with (the twenty-second session's campaign: 4 signatures, every one this). The buffer-writing
    model is a skip there, before any compile; written inputs and other backends are judged."""
    from fuzz.campaign import knobs

    with knobs.applied(knobs.settings_of(["freezing"])):
        for backend in ("inductor", "aoti"):
            for mode in ("fwd", "dynamic"):
                v = sessions[2].run_test(backend, mode)
                assert v.kind == "skip" and "freezing" in v.detail and WRITTEN[2].split(":")[1] in v.detail, v
        assert sessions[2].run_test("aot_eager", "fwd").kind == "pass"  # freezing is inductor's pass
        assert knobs.freezing_forbids([], "inductor", "fwd") is None  # no buffer written: judged
        assert knobs.freezing_forbids(["b"], "inductor", "bwd") is None  # a graph needing gradients is not frozen
    assert knobs.freezing_forbids(["b"], "inductor", "fwd") is None  # freezing off again


@pytest.mark.parametrize("backend", ["_lose_state", "_double_state"])
@pytest.mark.parametrize("mode", ["fwd", "bwd", "dynamic"])
def test_lost_or_doubled_writes_are_mismatches(sessions, test_backends, backend, mode):
    for i, where in ((2, WRITTEN[2]), (4, WRITTEN[4])):
        v = sessions[i].run_test(backend, mode)
        assert v.kind == "mismatch" and v.diff["where"] == where, (i, v.detail, v.diff, v.error)


def test_a_batched_run_judges_each_models_written_state(sessions, test_backends):
    """``--batch``: the state models compiled as one program pass on their outputs and their state
    (each read from its own part of the batched module); a batched run that loses the writes sends
    both to run alone (None), never a pass."""
    both = [sessions[2], sessions[4]]
    for backend in ("aot_eager", "inductor"):
        assert [v and v.kind.value for v in batch.run_batched(both, backend)] == ["pass", "pass"], backend
    assert batch.run_batched(both, "_lose_state") == [None, None]


def test_repro_judges_the_written_state(saved, sessions, test_backends, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ASSAY_TEST_BACKENDS")}
    src = (saved[2] / "program.py").read_text()
    codes = {}
    for backend in ("_lose_state", "aot_eager"):
        d = tmp_path / backend
        d.mkdir()
        for f in ("inputs.safetensors", "params.safetensors"):
            (d / f).write_bytes((saved[2] / f).read_bytes())
        case = Case(id=backend, kind="mismatch", detail="values", backend=backend, mode="fwd",
                    check=[WRITTEN[2]], timeout_s=120)
        (d / "repro.py").write_text(repro.repro_source(src, case))
        r = subprocess.run([sys.executable, "-I", "repro.py"], cwd=d, env=env, capture_output=True, text=True,
                           timeout=300)
        codes[backend] = (r.returncode, r.stdout[-400:] + r.stderr[-1500:])
    assert codes["_lose_state"][0] == repro.REPRODUCED, codes
    assert WRITTEN[2] in codes["_lose_state"][1]
    assert codes["aot_eager"][0] == repro.AGREE, codes


def test_unreadable_state_is_skipped_but_a_missing_output_is_not(sessions):
    from fuzz.campaign import oracle, written

    s = sessions[2]
    ref = s.fwd_ref
    state_at = ref.names.index(WRITTEN[2])
    no_state = [e.clone() if e is not None else None for e in ref.eager]
    no_state[state_at] = None  # aoti: the buffers cannot be read after the call
    judged = s._readable(ref, no_state)
    assert judged.skip[WRITTEN[2]] == written.UNREADABLE
    assert oracle.judge(judged, no_state).kind == "pass"
    no_output = [e.clone() if e is not None else None for e in ref.eager]
    no_output[0] = None
    assert oracle.judge(s._readable(ref, no_output), no_output).kind == "mismatch"
