"""Inputs laid out otherwise than contiguous (fuzz.gen.layouts): generated, saved, loaded and fenced
with their strides, and a compiler that ignores them is caught."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fuzz.campaign.fence import fenced
from fuzz.gen.config import GenConfig
from fuzz.gen.generate import generate_model_for_index
from fuzz.gen.layouts import layout_kind, strided
from fuzz.ir.graph import Graph
from fuzz.gen.policy import Shares
from fuzz.gen.program import load_program, save_program
from fuzz.gen.ruleset import load_ruleset

REPO = Path(__file__).resolve().parents[2]


def test_strided_gives_the_layout_asked_for_with_the_same_values():
    t = torch.arange(24.0).reshape(2, 3, 4)
    for order, step, pad, kind in [((0, 2, 1), 1, 0, "transposed"), ((2, 0, 1), 1, 0, "permuted"),
                                   ((0, 1, 2), 2, 0, "gapped"), ((0, 1, 2), 1, 3, "padded")]:
        s = strided(t, order, step, pad)
        assert torch.equal(s, t) and not s.is_contiguous()
        assert layout_kind({"order": list(order), "step": step, "pad": pad}) == kind
        strides = s.stride()
        assert strides[order[-1]] == step  # the innermost dim in memory is the last of order
        assert strides[order[-2]] == step * t.shape[order[-1]] + pad
    cl = strided(torch.rand(2, 3, 4, 5), (0, 2, 3, 1))
    assert cl.is_contiguous(memory_format=torch.channels_last)
    assert layout_kind({"order": [0, 2, 3, 1]}) == "channels_last"


def test_fenced_keeps_an_inputs_strides_and_fills_its_gaps_with_the_sentinel():
    t = strided(torch.arange(12.0).reshape(3, 4), (1, 0), pad=2)  # transposed, rows padded
    f = fenced(t, 16)
    assert f.stride() == t.stride() and torch.equal(f, t) and f.storage_offset() == 16
    storage = torch.empty(0).set_(f.untyped_storage())
    used = {16 + i * f.stride(0) + j * f.stride(1) for i in range(3) for j in range(4)}
    gaps = [k for k in range(storage.numel()) if k not in used]
    assert gaps and storage[gaps].isnan().all()  # the pads and the fence
    c = fenced(torch.arange(6).reshape(2, 3), 16)  # contiguous: as before
    assert c.is_contiguous() and c.storage_offset() == 16
    x = torch.rand(10).as_strided((3, 4), (2, 1))  # rows overlapping: copied contiguous
    assert fenced(x, 16).is_contiguous() and torch.equal(fenced(x, 16), x)


def _strided_models(count: int):
    rs = load_ruleset(None)
    shares = Shares().with_axis("layout", "strided")
    for i in range(count):
        m = generate_model_for_index(rs, GenConfig(nodes=4), 5, i, shares)
        if m.graph.meta.get("layouts"):
            yield i, m


def test_a_recorded_layout_always_changes_the_strides():
    """A permutation of size-1 dims (``[4, 1, 1, 4]`` in order ``[2, 0, 1, 3]``) leaves a tensor
    contiguous: no layout is recorded for it (graph.meta["layouts"] said strided, the input was not)."""
    from fuzz.gen.layouts import draw_layouts

    t = torch.rand(4, 1, 1, 4)
    assert strided(t, order=[2, 0, 1, 3]).is_contiguous()
    laid = [(m, n) for _, m in _strided_models(12) for n in m.graph.meta["layouts"]]
    assert laid and all(not m.leaves[n].is_contiguous() for m, n in laid)
    g = Graph()
    g.add_tensor([4, 1, 1, 4], "float32", "input", name="x")
    assert all(not strided(t, **lay).is_contiguous() for s in range(40) for lay in draw_layouts(g, {"x": t}, s).values())


def test_a_strided_model_is_deterministic_saved_and_loaded_with_its_layouts(tmp_path):
    i, m = next(_strided_models(12))
    again = generate_model_for_index(load_ruleset(None), GenConfig(nodes=4), 5, i, Shares().with_axis("layout", "strided"))
    assert again.graph.meta["layouts"] == m.graph.meta["layouts"]
    assert m.graph.meta["policy"]["layout"] == "strided"
    laid = m.graph.meta["layouts"]
    assert all(not m.leaves[n].is_contiguous() for n in laid)
    save_program(m.graph, m.tensors(), tmp_path / "prog")
    graph, module, inputs = load_program(tmp_path / "prog")
    for name, t in zip(graph.inputs, inputs):
        assert torch.equal(t.nan_to_num(), m.leaves[name].nan_to_num())
        assert t.stride() == m.leaves[name].stride(), name
        assert t.is_contiguous() == (name not in laid)
    src = (tmp_path / "prog" / "program.py").read_text()
    assert "def strided(" in src and "laid out in memory" in src
    run = subprocess.run([sys.executable, str(tmp_path / "prog" / "program.py")], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0 and "outputs:" in run.stdout, run.stderr[-2000:]


def test_a_contiguous_model_has_no_layout_and_its_policy_is_as_before():
    m = generate_model_for_index(load_ruleset(None), GenConfig(nodes=4), 5, 0, Shares().with_axis("layout", "contiguous"))
    assert "layouts" not in m.graph.meta and "layout" not in m.graph.meta["policy"]
    assert all(t.is_contiguous() for t in m.inputs)


def _chain_program(root: Path, layouts: dict | None) -> None:
    sys.path.insert(0, str(REPO / "tests" / "triage"))
    from triage_helpers import chain_graph

    g, t = chain_graph()
    if layouts:
        g.meta["layouts"] = layouts
    save_program(g, t, root)


def _campaign_finds_one(run_assay, tmp_path, progs, fault):
    """A campaign over ``progs`` plus a dense copy of the chain program, under ``fault``: it must
    find one signature in its two tests. (campaign folder, the fault's environment)."""
    from triage_helpers import campaign_finds_one

    _chain_program(progs / "plain", None)
    out = tmp_path / "camp"
    return out, campaign_finds_one(run_assay, progs, out, fault)


@pytest.mark.slow
def test_a_compiler_that_reads_inputs_as_contiguous_is_caught_only_where_they_are_not(tmp_path, run_assay):
    progs = tmp_path / "progs"
    _chain_program(progs / "laid", {"x": {"order": [0, 1], "step": 2, "pad": 0}, "y": {"order": [1, 0], "step": 1, "pad": 0}})
    out, _ = _campaign_finds_one(run_assay, tmp_path, progs, "contiguous_read")
    (case,) = [json.loads(p.read_text()) for p in out.glob("*/case.json")]
    assert case["kind"] == "mismatch"
    repro = next(out.glob("*/repro.py")).read_text()
    assert "strided(tensors['x'], order=(0, 1), step=2)" in repro


def test_an_expanded_input_repeats_its_first_slice_with_stride_0_fenced_too():
    t = torch.arange(12.0).reshape(3, 4)
    e = strided(t, (0, 1), expand=[0])
    assert e.stride()[0] == 0 and torch.equal(e, t[:1].expand(3, 4))
    assert layout_kind({"order": [0, 1], "expand": [0]}) == "expanded"
    f = fenced(e, 16)
    assert f.stride() == e.stride() and torch.equal(f, e)
    storage = torch.empty(0).set_(f.untyped_storage())
    assert storage.numel() == 4 + 32 and storage[16:20].tolist() == [0.0, 1.0, 2.0, 3.0]


def test_the_oracle_judges_output_strides_only_where_asked_and_only_dims_longer_than_1():
    from fuzz.campaign.oracle import Kind, Reference, judge

    e = torch.rand(4, 3).t()  # eager's output: transposed
    ref = Reference(names=["out0"], eager=[e], ref64=[e.double()])
    assert judge(ref, [e.contiguous()], strides=True).detail == "stride"
    j = judge(ref, [e.contiguous()], strides=True)
    assert j.kind == Kind.MISMATCH and j.diff == {"where": "out0", "shape": [3, 4], "expected": [1, 3], "got": [4, 1]}
    assert judge(ref, [e.contiguous()]).kind == Kind.PASS  # a backend without the contract
    assert judge(ref, [e.clone()], strides=True).kind == Kind.PASS  # clone keeps the strides
    one = torch.rand(3, 1)
    odd = torch.empty_strided((3, 1), (1, 7)).copy_(one)  # only the size-1 dim's stride differs
    assert judge(Reference(names=["out0"], eager=[one], ref64=[one.double()]), [odd], strides=True).kind == Kind.PASS
    base = torch.rand(5, 6).t()  # eager returns a view of an intermediate: only its stride order is promised
    view = base[:, :4]
    vref = Reference(names=["out0"], eager=[view], ref64=[view.double()])
    assert view._is_view() and view.stride() == (1, 6)
    assert judge(vref, [torch.empty_strided((6, 4), (1, 6)).copy_(view)], strides=True).kind == Kind.PASS
    assert judge(vref, [torch.empty_strided((6, 4), (1, 8)).copy_(view)], strides=True).kind == Kind.PASS  # same order
    assert judge(vref, [view.contiguous()], strides=True).detail == "stride"  # the order changed
    grads = Reference(names=["grad:x"], eager=[e], ref64=[e.double()])
    assert judge(grads, [e.contiguous()], strides=True).kind == Kind.PASS  # gradients: values only


@pytest.mark.slow
def test_a_compiler_returning_other_output_strides_is_caught_with_a_repro_that_says_so(tmp_path, run_assay):
    progs = tmp_path / "progs"
    # the transposed input makes eager's sigmoid/tanh/... outputs transposed too
    _chain_program(progs / "laid", {"y": {"order": [1, 0], "step": 1, "pad": 0}, "x": {"order": [1, 0], "step": 1, "pad": 0}})
    out, env = _campaign_finds_one(run_assay, tmp_path, progs, "contiguous_outputs")
    (case_dir,) = [p.parent for p in out.glob("*/case.json")]
    case = json.loads((case_dir / "case.json").read_text())
    assert case["kind"] == "mismatch" and case["detail"] == "stride"
    with_fault = subprocess.run([sys.executable, str(case_dir / "repro.py")], env=env, capture_output=True, text=True,
                                timeout=300)
    assert with_fault.returncode == 1 and "eager strides" in with_fault.stdout, with_fault.stdout[-2000:]
    clean = subprocess.run([sys.executable, str(case_dir / "repro.py")], capture_output=True, text=True, timeout=300)
    assert clean.returncode == 0, clean.stdout[-2000:]


def test_an_input_written_in_place_is_never_expanded():
    # eager may write one element of an expanded input many times (index_put_ did); a compiled
    # copy-back then raises "more than one element of the written-to tensor refers to a single
    # memory location": the tenth session's layout campaign saved that as a crash
    from fuzz.gen.layouts import draw_layouts
    from fuzz.ir.graph import Graph, Node

    def graph(op):
        g = Graph()
        x = g.add_tensor([4, 6], "float32", "input", name="x")
        out = g.add_tensor([4, 6], "float32")
        g.add_node(Node(id="n0", op=op, api="function", args=[{"ref": x}, 1.0], kwargs={}, outputs=[out]))
        g.outputs = [out]
        return g

    leaves = {"x": torch.rand(4, 6)}
    kinds = {op: {layout_kind(draw_layouts(graph(op), leaves, seed).get("x", {"order": [0, 1]})) for seed in range(300)}
             for op in ("torch.Tensor.add_", "torch.add")}
    assert "expanded" in kinds["torch.add"] and "expanded" not in kinds["torch.Tensor.add_"], kinds
    assert {"gapped", "padded", "transposed"} <= kinds["torch.Tensor.add_"]  # written inputs still get layouts


def test_a_dynamic_second_call_keeps_the_inputs_layouts_and_its_repro_too(tmp_path):
    # Found in the tenth session's validation campaign: the second call's inputs were contiguous, so an
    # AOTInductor model specialised on strided inputs failed its own stride assertion at the second call
    sys.path.insert(0, str(REPO / "tests" / "triage"))
    from test_oracle import session_for
    from triage_helpers import chain_graph, make_case

    from fuzz.triage.cases import load_case

    g, t = chain_graph()
    g.meta["layouts"] = {"x": {"order": [0, 1], "step": 2, "pad": 0}, "y": {"order": [1, 0], "step": 1, "pad": 0}}
    s = session_for(tmp_path, g, t)
    inputs, _, info = s.second_call()
    x2, y2 = inputs
    assert list(x2.shape) == info["shapes"]["x"] != [4, 6]
    assert x2.stride() == (2 * x2.shape[1], 2) and y2.stride() == (1, y2.shape[0])
    v = s.run_test("aoti", "dynamic")
    assert v.kind == "pass" and "declined" not in v.second_call, (v.kind, v.detail, v.error, v.second_call)
    # the repro builds the second call's inputs with the same layouts
    gen = torch.Generator().manual_seed(1)
    make_case(tmp_path / "cases", "dyn", g, t, backend="aot_eager", mode="dynamic",
              second_call={"from": 4, "to": 5, "key_prefix": "second_call.", "shapes": {"x": [5, 6], "y": [5, 6]}},
              second_inputs={"x": torch.randn(5, 6, generator=gen), "y": torch.randn(5, 6, generator=gen)})
    case = load_case(tmp_path / "cases", "dyn")
    src = (case.path / "repro.py").read_text()
    assert "LAYOUTS = {'x': {'order': [0, 1], 'step': 2, 'pad': 0}" in src
    run = subprocess.run([sys.executable, str(case.path / "repro.py")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "AGREE" in run.stdout, run.stdout[-2000:] + run.stderr[-2000:]
