"""Triage pieces that need no child process: listing, dedup bookkeeping, show, repro inlining, report."""

import csv
import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from triage_helpers import chain_graph, make_case, relu_graph_b  # noqa: E402

from fuzz.errors import AssayError  # noqa: E402
from fuzz.triage.cases import load_case  # noqa: E402
from fuzz.triage.listing import filter_rows, render_table, sort_rows  # noqa: E402
from fuzz.triage.listing import listing_rows as signature_rows  # noqa: E402  (cases + index counts)


@pytest.fixture
def crashes(tmp_path):
    g, t = chain_graph()
    make_case(tmp_path, "a1", g, t, created="2025-01-01T01:00:00Z", hits=3)
    make_case(tmp_path, "a2", g, t, created="2025-01-02T01:00:00Z", hits=0)  # same graph, same signature
    g, t = relu_graph_b()
    make_case(tmp_path, "b1", g, t, created="2025-01-03T01:00:00Z", hits=2)
    make_case(tmp_path, "c1", g, t, kind="crash", detail="inductor raised during compile", backend="inductor",
              error={"type": "torch._inductor.exc.LoweringException", "message": "bad lowering for buf3 of [2, 3]",
                     "traceback": 'File "/x/torch/_inductor/lowering.py", line 9, in make\n'},
              created="2025-01-04T01:00:00Z")
    return tmp_path


def test_rows_group_by_signature_and_count_index_hits(crashes):
    rows = {tuple(r.case_ids): r for r in signature_rows(crashes)}
    assert set(rows) == {("a1", "a2"), ("b1",), ("c1",)}
    a = rows[("a1", "a2")]
    assert a.count == 3 and a.kind == "mismatch" and a.first_seen.startswith("2025-01-01")
    assert rows[("c1",)].backend == "inductor" and rows[("c1",)].kind == "crash"
    assert "LoweringException" in rows[("c1",)].error
    assert [r.case_ids[0] for r in sort_rows(list(rows.values()), "first")] == ["a1", "b1", "c1"]
    assert [r.case_ids[0] for r in filter_rows(list(rows.values()), kind="crash")] == ["c1"]
    assert [r.case_ids[0] for r in filter_rows(list(rows.values()), op="sigmoid")] == ["a1"]
    text = render_table(sort_rows(list(rows.values())))
    assert "3 distinct failures" in text


def test_a_reduced_case_moves_its_original_under_the_reduced_signature(crashes):
    # Simulate what `reduce` leaves behind: b1 reduced to the same op set as a reduced a1.
    from fuzz.campaign.failure import signature

    failure = signature("mismatch", "aot_eager", "fwd", ops=["torch.nn.functional.relu"], detail="values")
    sig, text = failure.id, failure.text
    for orig in ("a1", "b1"):
        d = crashes / f"{orig}-reduced"
        d.mkdir()
        data = dict(load_case(crashes, orig).to_json(), id=f"{orig}-reduced", signature=sig, signature_text=text,
                    ops=["torch.nn.functional.relu"], triage={"reduced_from": orig, "aten_ops": ["aten.relu"]})
        (d / "case.json").write_text(json.dumps(data))
    rows = signature_rows(crashes)
    merged = next(r for r in rows if "a1" in r.case_ids)
    assert sorted(merged.case_ids) == ["a1", "b1"] and merged.ops == ["torch.nn.functional.relu"]
    assert merged.reduced_case in ("a1-reduced", "b1-reduced") and merged.ops_after == 1
    # a2 was not reduced: it keeps the campaign signature it shares with a1; a1's signature is now
    # split over two rows, so neither adds the index's hits of it (a2's row counts its own case)
    a2 = next(r for r in rows if "a2" in r.case_ids)
    assert a2.count == 1
    assert merged.count == 1 + 2  # a1's own case + all of b1's hits (b1's signature is wholly here)


def test_reduced_cases_spelled_differently_are_one_bug(crashes):
    """F.relu, nn.ReLU and aten::relu all dispatch to aten.relu: one row once reduced."""
    from fuzz.ir.graph import Graph, Node
    from fuzz.campaign.failure import signature
    from fuzz.gen.interpret import aten_ops

    spellings = {"a1": ("torch.nn.functional.relu", "function", None),
                 "b1": ("torch.nn.ReLU", "module", {"args": [], "kwargs": {}}),
                 "a2": ("aten::relu", "aten", None)}
    for orig, (op, api, init) in spellings.items():
        g = Graph()
        x = g.add_tensor([2], "float32", "input", name="x")
        y = g.add_tensor([2], "float32")
        g.add_node(Node(id="n0", op=op, api=api, overload="default" if api == "aten" else None, args=[{"ref": x}],
                        kwargs={}, outputs=[y], init=init))
        g.outputs = [y]
        assert aten_ops(g) == ["aten.relu"]
        failure = signature("mismatch", "aot_eager", "fwd", ops=g.ops(), detail="values")
        sig, text = failure.id, failure.text
        d = crashes / f"{orig}-reduced"
        d.mkdir()
        data = dict(load_case(crashes, orig).to_json(), id=f"{orig}-reduced", signature=sig, signature_text=text,
                    ops=g.ops(), graph=g.to_json(), backend="aot_eager", triage={"reduced_from": orig})
        (d / "case.json").write_text(json.dumps(data))
    rows = signature_rows(crashes)
    row = next(r for r in rows if "a1" in r.case_ids)
    assert sorted(row.case_ids) == ["a1", "a2", "b1"] and len(row.signatures) == 2


def test_missing_or_corrupt_cases_raise_one_line_errors(tmp_path, crashes):
    with pytest.raises(AssayError, match="no case 'zzz'"):
        load_case(crashes, "zzz")
    with pytest.raises(AssayError, match="does not exist"):
        load_case(tmp_path / "nowhere", "a1")
    (crashes / "bad").mkdir()
    (crashes / "bad" / "case.json").write_text("[1, 2")
    with pytest.raises(AssayError, match="corrupt"):
        load_case(crashes, "bad")
    assert load_case(crashes, "c").id == "c1"  # unique prefix
    case = load_case(crashes, "a1")
    (case.path / "inputs.safetensors").write_bytes(b"garbage")
    with pytest.raises(AssayError, match="corrupt inputs.safetensors"):
        case.tensors()
    for m in (str(e) for e in [AssayError("x")]):
        assert "\n" not in m


def test_show_renders_diff_and_program(crashes):
    from fuzz.triage.show import render_case

    text = render_case(load_case(crashes, "a1"))
    assert "3 of 8 elements off" in text and "max abs error 0.5" in text
    assert "class Model" in text and "torch.nn.functional.relu" in text
    assert "LoweringException" in render_case(load_case(crashes, "c1"))


def test_printed_repro_inlines_exact_tensor_values(crashes):
    from fuzz.triage.show import printed_repro

    case = load_case(crashes, "a1")
    src = printed_repro(case)
    assert "_INLINE = {" in src and "tensors are inlined" in src
    ns = {"__name__": "not_main", "__file__": "/nonexistent/repro.py"}  # no files beside it
    exec(compile(src, "repro", "exec"), ns)
    inputs = ns["load_inputs"]()
    saved = case.tensors()
    assert torch.equal(inputs[0], saved["x"]) and torch.equal(inputs[1], saved["y"])
    model = ns["load_model"]()
    assert torch.equal(model.w, saved["w"])
    # too many values to inline: the printed script reads the case directory's files instead
    from fuzz.campaign import repro

    src = repro.repro_source((case.path / "program.py").read_text(), case, inline_tensors=case.tensor_files(),
                             inline_limit=1, tensor_dir=str(case.path.resolve()))
    assert "_INLINE" not in src and f"HERE = {str(case.path.resolve())!r}" in src
    ns = {"__name__": "not_main", "__file__": "/nonexistent/repro.py"}
    exec(compile(src, "repro", "exec"), ns)
    assert torch.equal(ns["load_inputs"]()[0], saved["x"])


def _campaign_files(root: Path) -> None:
    (root / "stats.json").write_text(json.dumps({
        "tests": 400, "tests_per_min": 40.0, "elapsed_s": 600, "models": 200, "ops_covered": 37,
        "unique_signatures": 3, "outcomes": {"pass": 380, "crash": 5, "mismatch": 12, "hang": 1, "signal": 0, "oom": 0},
        "per_backend": {"inductor": {"pass": 190, "crash": 5, "mismatch": 4, "invalid": 1},
                        "aot_eager": {"pass": 190, "mismatch": 8, "hang": 1, "invalid": 1}}}))
    cols = ["unix_time", "elapsed_s", "tests", "tests_per_min", "pass", "crash", "mismatch", "hang", "signal", "oom",
            "invalid", "unsupported", "unique_signatures", "ops_covered", "models"]
    with open(root / "plot_data.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for i in range(61):
            w.writerow([1.7e9 + 10 * i, 10 * i, 7 * i, 42, 6 * i, i // 12, i // 5, i // 60, 0, 0, 0, 0, min(3, i // 15),
                        min(37, i), 3 * i])


def test_report_html_and_markdown(crashes, tmp_path):
    from fuzz.triage.report import build, write_report

    _campaign_files(crashes)
    data = build(crashes)
    pngs = [p for _, p, _ in data["plots"] if p]
    assert len(pngs) == 4 and all(p[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    summary = dict(data["summary"])
    assert summary["tests run"] == "400" and summary["distinct failures"] == "3"
    html = write_report(crashes, tmp_path / "r.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and "a1/repro.py" in html
    md = write_report(crashes, tmp_path / "r.md").read_text()
    assert "## Bugs (3 distinct)" in md and (tmp_path / "r_files" / "tests_over_time.png").exists()
    assert "![Tests over time](r_files/tests_over_time.png)" in md


def test_a_campaign_recheck_that_saw_another_failure_lists_as_changed_not_flaky(crashes):
    from fuzz.triage.actions import update_case

    def recheck_said(note):
        def change(case):
            case.reproduces, case.flaky, case.recheck = False, True, note
        return change

    update_case(crashes / "b1", recheck_said("different: fresh process: exit 3 after 2.0 s; DIFFERENT: ..."))
    update_case(crashes / "c1", recheck_said("agree: fresh process: exit 0 after 2.0 s; AGREE: ..."))
    rows = {r.case_ids[0]: r for r in signature_rows(crashes)}
    assert (rows["b1"].status, rows["b1"].reproduces) == ("changed", False)
    assert (rows["c1"].status, rows["c1"].reproduces) == ("flaky", False)


def test_a_dynamic_case_replays_without_its_second_call_inputs(tmp_path):
    """A dynamic-mode case keeps its second call's inputs in inputs.safetensors (``second_call.*``);
    replaying it (reduce, recheck) must save a program of the graph's own tensors only: they once
    went into params.safetensors and every replay failed to load ('genfail')."""
    from safetensors.torch import load_file, save_file

    from fuzz.gen.program import load_program, save_program

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "campaign"))
    from case_helpers import write_case

    d = write_case(tmp_path, "s0-m000001-inductor-dynamic", "inductor", "crash",
                   error={"type": "RuntimeError", "message": "boom", "traceback": ""})
    inputs = load_file(str(d / "inputs.safetensors"))
    save_file({**inputs, "second_call.x": torch.randn(5, 3)}, str(d / "inputs.safetensors"))
    case = load_case(tmp_path, "s0-m000001-inductor-dynamic")
    graph = case.program_graph()
    tensors = case.tensors(graph)
    assert "second_call.x" not in tensors and set(graph.inputs) <= set(tensors)
    save_program(graph, tensors, tmp_path / "replay")
    _, module, ins = load_program(tmp_path / "replay")
    assert torch.equal(ins[0], inputs["x"])


def test_report_plots_a_guided_campaigns_features(crashes, tmp_path):
    from fuzz.triage.report import build

    _campaign_files(crashes)
    data = build(crashes)
    assert "Compiler features over time" not in [name for name, _, _ in data["plots"]]  # a blind campaign
    rows = list(csv.reader(open(crashes / "plot_data.csv")))
    rows[0] += ["features", "seeds", "coverage_lines"]
    for i, r in enumerate(rows[1:]):
        r += [str(20 * i), str(i), ""] if i >= 3 else ["", "", ""]  # rows written before --feedback: empty
    with open(crashes / "plot_data.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    plots = {name: png for name, png, _ in build(crashes)["plots"]}
    assert plots["Compiler features over time"][:8] == b"\x89PNG\r\n\x1a\n"


def test_knob_ablation_of_a_case_that_does_not_reproduce_says_unknown_and_runs_nothing(tmp_path):
    # Twenty-second session: a reduced freezing case agreed in a fresh process with its knob set,
    # and the ablation's run without the knob (which agreed too) read "freezing -> needed"
    from fuzz.campaign.case import Case
    from fuzz.triage.knob_ablation import ablate, knob_lines

    case = Case(id="k1", kind="mismatch", knobs={"freezing": {"inductor.freezing": True}}, reproduces=False,
                path=tmp_path / "absent")  # no repro.py: a run would be 'cannot run', not this
    found = ablate(case)
    assert found["knobs"]["freezing"]["needed"] is None and "does not reproduce" in found["knobs"]["freezing"]["said"]
    case.triage = {"knobs": found}
    assert any("freezing" in ln and "unknown" in ln for ln in knob_lines(case))
