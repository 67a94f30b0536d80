"""Models with data-dependent calls (fuzz.gen.datadep) under real torch.compile: the session sets
dynamo's capture flags for them only (no graph break at the data-dependent call, flags restored
after), the oracle passes them, batching leaves them alone, and a saved case's repro.py sets the
flags itself and runs standalone."""

import runpy
import warnings
from pathlib import Path

import pytest
import torch
from torch._dynamo.utils import counters

from case_helpers import run_repros
from fuzz.campaign import knobs, repro
from fuzz.campaign.case import Case
from fuzz.campaign.session import Session
from fuzz.campaign.store import CrashStore
from fuzz.campaign.verdict import Kind
from fuzz.campaign.worker import load_model
from fuzz.gen.datadep import CAPTURE_SETTINGS, KINDS, META_KEY
from fuzz.gen.policy import Shares

# What dynamo says when it breaks the graph at a data-dependent call (torch 2.13).
DATADEP_BREAKS = ("dynamic shape operator", "capture_scalar_outputs")
SHARES = Shares().with_axis("form", "forms").with_axis("dtype", "mix").with_axis("shape", "small").to_json()


def datadep_breaks() -> list[str]:
    return [k.splitlines()[0] for k in counters["graph_break"] if any(m in k.lower() for m in DATADEP_BREAKS)]


@pytest.fixture(scope="module")
def models():
    """The first generated forms models (seed 5, 6 operators) that hold data-dependent chains."""
    warnings.filterwarnings("ignore")
    found = []
    for i in range(40):
        m = load_model({"source": {"gen": {"seed": 5, "index": i, "shares": SHARES}}, "nodes": 6})
        if set(m.graph.meta.get("forms") or []) & set(KINDS):  # compile_settings alone: a scan may set it too
            found.append(m)
        if len(found) == 2:
            return found
    raise AssertionError("no forms model of seed 5 holds a data-dependent chain")


def test_compiled_datadep_models_pass_without_a_break_at_the_call(models):
    seen = set()
    for m in models:
        seen.update(set(m.graph.meta["forms"]) & set(KINDS))
        session = Session(m, "cpu")
        counters.clear()
        verdict = session.run_test("aot_eager", "fwd")
        assert verdict.kind == Kind.PASS, (verdict.detail, verdict.error)
        assert not datadep_breaks()
        assert not torch._dynamo.config.capture_scalar_outputs  # restored after the test
        assert not torch._dynamo.config.capture_dynamic_output_shape_ops
    assert seen


def test_without_the_settings_dynamo_breaks_the_graph_there(models):
    """The check above can fail: the same model without its recorded settings breaks at the call."""
    m = models[0]
    needs = m.graph.meta.pop(META_KEY)
    try:
        counters.clear()
        verdict = Session(m, "cpu").run_test("aot_eager", "fwd")
        assert verdict.kind == Kind.PASS
        assert datadep_breaks()
    finally:
        m.graph.meta[META_KEY] = needs


def test_inductor_compiles_the_unbacked_sizes(models):
    counters.clear()
    verdict = Session(models[0], "cpu").run_test("inductor", "fwd")
    assert verdict.kind == Kind.PASS, (verdict.detail, verdict.error)
    assert not datadep_breaks()


def test_model_knobs_read_only_what_the_graph_records():
    assert knobs.model_knobs({META_KEY: dict(CAPTURE_SETTINGS)}) == {knobs.MODEL_KNOB: CAPTURE_SETTINGS}
    assert knobs.model_knobs({}) == {} and knobs.model_knobs(None) == {}
    assert knobs.model_knobs({META_KEY: {"os.system": "x", "dynamo.x": [1]}}) == {}  # a corrupt graph.json


def _case_dir(root: Path, m, case_id: str) -> Path:
    """A mismatch case of ``m`` (aot_eager, fwd) written through the crash store as a campaign does."""
    files = dict(m.files)  # the program files the worker saved and ran
    case = Case(id=case_id, test_id=case_id, kind="mismatch", detail="values", backend="aot_eager", mode="fwd",
                signature="s", graph=m.graph.to_json(), timeout_s=120, mem_limit_mb=0,
                created="2026-01-01T00:00:00Z", files=sorted(list(files) + ["repro.py", "case.json"]))
    store = CrashStore(root)
    try:
        store.stage_case(case, files, repro.repro_source(files["program.py"].decode(), case))
        return store.finalize(case_id, None)
    finally:
        store.close()


def test_repro_sets_the_flags_and_runs_standalone(models, tmp_path):
    m = models[0]
    with_flags = _case_dir(tmp_path, m, "c-datadep")
    text = (with_flags / "repro.py").read_text()
    assert "MODEL_SETTINGS = " in text and "set_knobs(MODEL_SETTINGS)" in text
    # the script's own module code sets them (what runs before main() compiles anything)
    flags = ("capture_dynamic_output_shape_ops", "capture_scalar_outputs")
    old = {f: getattr(torch._dynamo.config, f) for f in flags}
    try:
        runpy.run_path(str(with_flags / "repro.py"), run_name="not_main")
        assert all(getattr(torch._dynamo.config, f) is True for f in flags)
    finally:
        for f, v in old.items():
            setattr(torch._dynamo.config, f, v)
    (r,) = run_repros([with_flags])
    assert r.returncode == repro.AGREE and "AGREE" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
    m.graph.meta.pop(META_KEY)
    try:
        plain = _case_dir(tmp_path, m, "c-plain")
    finally:
        m.graph.meta[META_KEY] = dict(CAPTURE_SETTINGS)
    assert "MODEL_SETTINGS" not in (plain / "repro.py").read_text()
    # an upstream issue body says what the repro sets
    from fuzz.triage.issue import issue_markdown

    body = issue_markdown(tmp_path, "c-datadep", run_ablation=False)
    assert "`torch._dynamo.config.capture_dynamic_output_shape_ops = True`" in body
    assert "no `torch._dynamo.config`" in issue_markdown(tmp_path, "c-plain", run_ablation=False)


@pytest.mark.parametrize("dtype,sorted_,judged", [("int64", True, True), ("bool", None, True),
                                                   ("int64", False, False), ("float32", True, False)])
def test_sorted_unique_of_integers_is_judged(dtype, sorted_, judged):
    """Sorted unique of integers or bools has one right answer; unsorted or of floats, not always."""
    from fuzz.campaign.sensitivity import sensitive_tensors
    from fuzz.gen.interpret import run_graph
    from fuzz.ir.graph import Graph, Node

    g = Graph()
    g.add_tensor([6], dtype, "input", name="k")
    g.add_tensor([3], dtype, "value", name="u")
    g.add_tensor([3], "int64", "value", name="c")
    kwargs = {"return_counts": True} | ({} if sorted_ is None else {"sorted": sorted_})
    g.add_node(Node("n0", "torch.unique", "function", [{"ref": "k"}], kwargs, ["u", "c"]))
    g.outputs = ["u", "c"]
    k = torch.tensor([3, 1, 3, 0, 1, 3]).to(getattr(torch, dtype)) if dtype != "bool" else torch.tensor([1, 0, 1, 1, 0, 1]).bool()
    env = run_graph(g, {"k": k}, {}, check=False)
    reasons = sensitive_tensors(g, env, env, [env])
    assert ("c" not in reasons) == judged, reasons
