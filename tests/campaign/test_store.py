"""Crash store: atomic cases, idempotent journal, reconcile, corrupt files, failure signatures."""

import json
import subprocess

import pytest

from fuzz.errors import AssayError
from fuzz.campaign.failure import normalise_message, signature
from fuzz.campaign.store import CrashStore, read_case


def _case(cid, kind="crash", sig="crash-x-1"):
    return {"id": cid, "test_id": cid, "kind": kind, "backend": "inductor", "mode": "fwd", "signature": sig,
            "ops": ["aten::add.Tensor", "torch.relu"], "created": "2026-01-01T00:00:00Z", "reproduces": None}


def test_stage_finalize_index_and_journal(tmp_path):
    st = CrashStore(tmp_path / "c")
    st.stage_case(_case("a"), {"program.py": "print(1)\n", "inputs.safetensors": b"\x00"}, repro="import sys\n")
    assert not (tmp_path / "c" / "a").exists()           # not visible until finalized
    assert [d.name for d in st.staged()] == ["a"]
    assert st.record_test("a", 0, "inductor", "fwd", "crash", "boom", signature="crash-x-1", sig_text="t", case_id="a")
    assert not st.record_test("a", 0, "inductor", "fwd", "crash", "boom", signature="crash-x-1", case_id="a")  # once
    st.record_test("b", 0, "inductor", "fwd", "crash", "boom", signature="crash-x-1")
    st.record_test("c", 1, "aot_eager", "fwd", "pass")
    st.finalize("a", True, "ok")
    case = read_case(tmp_path / "c" / "a")
    assert case["reproduces"] is True and case["flaky"] is False
    assert sorted(p.name for p in (tmp_path / "c" / "a").iterdir()) == ["case.json", "inputs.safetensors", "program.py", "repro.py"]
    assert st.cases()[0]["id"] == "a"
    sigs = st.signatures()
    assert sigs[0]["count"] == 2 and sigs[0]["example"] == "a"
    assert st.outcome_counts()["outcomes"]["crash"] == 2 and st.test_count() == 3
    assert st.unique_signatures() == 1
    # a flaky case is kept but not counted as a bug
    st.stage_case(_case("d", sig="crash-x-2"), {})
    st.record_test("d", 2, "inductor", "fwd", "crash", signature="crash-x-2", case_id="d")
    st.finalize("d", False)
    assert read_case(tmp_path / "c" / "d")["flaky"] is True
    assert st.outcome_counts()["other"]["flaky"] == 1 and st.unique_signatures() == 1
    assert (tmp_path / "c" / "index.sqlite").exists()


def test_corrupt_and_missing_case_files_warn_in_one_line(tmp_path, capsys):
    st = CrashStore(tmp_path)
    st.stage_case(_case("good"), {})
    st.finalize("good", True)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "case.json").write_text("{not json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AssayError) as e:
        read_case(tmp_path / "broken")
    assert "corrupt case.json" in str(e.value) and "\n" not in str(e.value)
    assert [c["id"] for _, c in st.iter_cases()] == ["good"]
    err = capsys.readouterr().err
    assert err.count("assay: warning: skipping") == 2 and "Traceback" not in err
    # reconcile: a case directory missing from the index is added; a row without a directory removed
    st.db.execute("DELETE FROM cases")
    st.db.execute("INSERT INTO cases (id, kind) VALUES ('ghost', 'crash')")
    assert st.reconcile() == {"added": 1, "removed": 1}
    assert [c["id"] for c in st.cases()] == ["good"]


def test_incomplete_staging_is_discarded(tmp_path):
    st = CrashStore(tmp_path)
    (tmp_path / ".staging" / "half").mkdir()
    (tmp_path / ".staging" / "half" / "program.py").write_text("x")
    assert st.staged() == []
    assert not (tmp_path / ".staging" / "half").exists()


def test_signatures_mask_run_specific_details():
    tb1 = 'Traceback:\n  File "/x/site-packages/torch/_inductor/lowering.py", line 10, in make_pointwise\n'
    tb2 = 'Traceback:\n  File "/y/site-packages/torch/_inductor/lowering.py", line 99, in make_pointwise\n'
    e1 = {"type": "RuntimeError", "message": "buf12 at 0x7f00aa: shape [2, 3] vs (4, 5) for arg3_1 'x_0'", "traceback": tb1}
    e2 = {"type": "RuntimeError", "message": "buf7 at 0x1234: shape [8, 1] vs (1, 9) for arg0_1 'conv2d_4'", "traceback": tb2}
    s1, text = signature("crash", "inductor", error=e1)
    s2, _ = signature("crash", "inductor", error=e2)
    assert s1 == s2 and s1.startswith("crash-inductor-")
    assert "torch._inductor.lowering:make_pointwise" in text
    assert signature("crash", "aot_eager", error=e1)[0] != s1
    e3 = dict(e1, message="a different error")
    assert signature("crash", "inductor", error=e3)[0] != s1
    m1 = signature("mismatch", "inductor", "fwd", ops=["b", "a", "a"], detail="values")[0]
    assert m1 == signature("mismatch", "inductor", "fwd", ops=["a", "b"], detail="values")[0]
    assert m1 != signature("mismatch", "inductor", "bwd", ops=["a", "b"], detail="values")[0]
    assert normalise_message("\n  size 12 != 13\nmore") == "size N != N"
