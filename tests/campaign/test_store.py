"""Crash store: atomic cases, idempotent journal, reconcile, corrupt files, failure signatures."""

import json

import pytest

from fuzz.errors import AssayError
from fuzz.campaign.case import Case, read_case
from fuzz.campaign.failure import FailureSignature, normalise_message, sign, signature
from fuzz.campaign.store import CrashStore
from fuzz.campaign.verdict import Kind, Verdict


def _case(cid, kind="crash", sig="crash-x-1"):
    return Case(id=cid, test_id=cid, kind=kind, backend="inductor", mode="fwd", signature=sig,
                ops=["aten::add.Tensor", "torch.relu"], created="2026-01-01T00:00:00Z", reproduces=None)


def _crash(backend="inductor", detail="boom"):
    return Verdict(Kind.CRASH, detail, backend=backend, mode="fwd")


SIG1 = FailureSignature("crash-x-1", "t", "crash", "inductor")


def test_stage_finalize_index_and_journal(tmp_path):
    st = CrashStore(tmp_path / "c")
    st.stage_case(_case("a"), {"program.py": "print(1)\n", "inputs.safetensors": b"\x00"}, repro="import sys\n")
    assert not (tmp_path / "c" / "a").exists()           # not visible until finalized
    assert [d.name for d in st.staged()] == ["a"]
    assert st.record_test("a", 0, _crash(), SIG1, case_id="a")
    assert not st.record_test("a", 0, _crash(), SIG1, case_id="a")  # once
    st.record_test("b", 0, _crash(), SIG1)
    st.record_test("c", 1, Verdict(Kind.PASS, backend="aot_eager", mode="fwd"))
    st.finalize("a", True, "ok")
    case = read_case(tmp_path / "c" / "a")
    assert case.reproduces is True and case.flaky is False and case.recheck == "ok"
    assert sorted(p.name for p in (tmp_path / "c" / "a").iterdir()) == ["case.json", "inputs.safetensors", "program.py", "repro.py"]
    assert st.cases()[0]["id"] == "a"
    sigs = st.signatures()
    assert sigs[0]["count"] == 2 and sigs[0]["example"] == "a"
    assert st.outcome_counts()["outcomes"]["crash"] == 2 and st.test_count() == 3
    assert st.unique_signatures() == 1
    # a flaky case is kept but not counted as a bug
    st.stage_case(_case("d", sig="crash-x-2"), {})
    st.record_test("d", 2, _crash(detail=""), FailureSignature("crash-x-2", "t2", "crash", "inductor"), case_id="d")
    st.finalize("d", False)
    assert read_case(tmp_path / "c" / "d").flaky is True
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
    assert [c.id for _, c in st.iter_cases()] == ["good"]
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
    sig1 = signature("crash", "inductor", error=e1)
    s1, text = sig1.id, sig1.text
    assert signature("crash", "inductor", error=e2).id == s1 and s1.startswith("crash-inductor-")
    assert "torch._inductor.lowering:make_pointwise" in text
    assert signature("crash", "aot_eager", error=e1).id != s1
    e3 = dict(e1, message="a different error")
    assert signature("crash", "inductor", error=e3).id != s1
    m1 = signature("mismatch", "inductor", "fwd", ops=["b", "a", "a"], detail="values").id
    assert m1 == signature("mismatch", "inductor", "fwd", ops=["a", "b"], detail="values").id
    assert m1 != signature("mismatch", "inductor", "bwd", ops=["a", "b"], detail="values").id
    assert normalise_message("\n  size 12 != 13\nmore") == "size N != N"


def test_a_wrapper_crash_signs_by_the_cause_it_quotes():
    """dynamo's "RuntimeError when making fake tensor call" wraps different bugs with the same first
    line and frames (the twenty-second session: histc(out=) under dynamic shapes, _make_dual under
    jacfwd, a 0-dim tensor for a float argument all signed alike, so only one was reduced). The
    quoted cause splits them; the id the case had before is kept as an alias a replay still matches,
    and the signing code a repro.py carries gives the same text."""
    import re

    from fuzz.campaign import repro

    tb = 'Traceback:\n  File "/v/site-packages/torch/_dynamo/utils.py", line 3, in get_fake_value\n'

    def wrapped(call, inner):
        return {"type": "torch._dynamo.exc.TorchRuntimeError", "traceback": tb,
                "message": "RuntimeError when making fake tensor call\n  Explanation: Dynamo failed to run FX node "
                           f"with fake tensors: call_function {call}(*(FakeTensor(..., size=(s56,)),), **{{}}): got "
                           f"{inner}\n  Hint: Your code may result in an error when running in eager."}

    histc = wrapped("<built-in method histc of type object at 0x7fae>", "RuntimeError('tried to directly modify sizes "
                    "for customized tensor')")
    histc2 = wrapped("<built-in method histc of type object at 0x7fbb>", "RuntimeError('tried to directly modify sizes "
                     "for customized tensor')")
    dual = wrapped("<function _make_dual at 0x7f3f>", "RuntimeError('Cannot call storage_offset() on tensor with "
                   "symbolic sizes\\nException raised from throw_cannot_call_with_symbolic')")
    a, b, c = (signature("crash", "inductor", "dynamic", error=e) for e in (histc, histc2, dual))
    assert a.id == b.id and a.id != c.id
    assert "<- RuntimeError: tried to directly modify sizes for customized tensor|" in a.text
    assert "Exception raised" not in c.text  # the quoted cause's first line only
    # the format before: one id for both, kept as each one's alias and accepted by same_failure
    assert a.aliases == c.aliases and len(a.aliases) == 1 and a.aliases[0] not in (a.id, c.id)
    saved = FailureSignature(a.aliases[0], "", "crash", "inductor", "dynamic")
    assert a.same_failure(saved) and c.same_failure(saved) and not c.same_failure(a)
    plain = signature("crash", "inductor", error={"type": "RuntimeError", "message": "x): got RuntimeError('y')"})
    assert plain.aliases == () and "<-" not in plain.text  # only wrapper lines take a cause
    ns = {"re": re}
    exec("\n".join(repro._crash_signing()), ns)
    assert ns["crash_text"]("inductor", dual["type"], dual["message"], tb) == c.text


def test_reduction_class_drops_only_the_operator_set():
    crash = signature("crash", "inductor", error={"type": "RuntimeError", "message": "x"})
    assert crash.reduction_class == ("crash", crash.id)
    a = signature("mismatch", "inductor", "fwd", ops=["torch.relu", "torch.add"], detail="values")
    b = signature("mismatch", "inductor", "fwd", ops=["torch.relu"], detail="values")
    assert a.id != b.id and a.reduction_class == b.reduction_class == ("mismatch", "inductor", "fwd", "values")
    assert signature("mismatch", "inductor", "fwd", detail="shape").reduction_class != a.reduction_class
    # a signal's signature names the signal only, whatever else the executor's detail says
    died = sign(Verdict(Kind.SIGNAL, "SIGSEGV (worker died)", backend="inductor", mode="fwd"), ["torch.relu"])
    assert died.text == "signal|inductor|fwd|SIGSEGV|torch.relu"
    assert sign(Verdict(Kind.PASS, backend="inductor", mode="fwd")) is None


def test_kinds_are_the_strings_the_files_hold():
    assert [k.value for k in Kind] == ["pass", "crash", "mismatch", "hang", "signal", "oom", "invalid",
                                       "unsupported", "skip", "oracle_error", "genfail"]
    assert [k for k in Kind if k.failed] == ["crash", "mismatch", "hang", "signal", "oom"]
    ev = Verdict(Kind.HANG, "no verdict", backend="inductor", mode="fwd", synthesised=True).to_event("j", "t")
    assert json.loads(json.dumps(ev)) == {"event": "verdict", "job": "j", "test": "t", "kind": "hang",
                                          "detail": "no verdict", "backend": "inductor", "mode": "fwd",
                                          "synthesised": True}
    back = Verdict.from_event(ev)
    assert back.kind is Kind.HANG and back.failed and back.synthesised


def test_case_json_round_trips_and_keeps_unknown_keys(tmp_path):
    data = {"format": 1, "id": "c1", "kind": "mismatch", "backend": "inductor", "mode": "fwd",
            "signature": "mismatch-inductor-1", "signature_text": "mismatch|inductor|fwd|values|torch.relu",
            "graph": {"tensors": {}, "nodes": [], "inputs": [], "outputs": []}, "future_field": [1, 2]}
    case = Case.from_json(data)
    assert case.kind is Kind.MISMATCH and case.extra == {"future_field": [1, 2]} and case.ops == []
    out = case.to_json()
    assert out["future_field"] == [1, 2] and out["kind"] == "mismatch" and "second_call" not in out
    assert list(out)[:5] == ["format", "id", "test_id", "kind", "outcome"]  # the order the campaign writes
    assert Case.from_json(json.loads(json.dumps(out))) == case
    assert case.failure.reduction_class == ("mismatch", "inductor", "fwd", "values")
    for bad in ({"id": "x"}, {"id": "x", "kind": "exploded"}, []):
        with pytest.raises(AssayError) as e:
            Case.from_json(bad)
        assert "\n" not in str(e.value)


def test_a_case_is_on_disk_before_the_index_names_it(tmp_path, monkeypatch):
    """Every file, the staging folder, then the campaign folder are fsynced before the index
    row is written (with synchronous=FULL); each file's digest goes into case.json."""
    import os

    from fuzz.campaign import store as store_mod

    st = CrashStore(tmp_path)
    assert st.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    events = []
    real_fsync = os.fsync

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    monkeypatch.setattr(store_mod.os, "fsync", fsync)
    real_index = st.index_case
    monkeypatch.setattr(st, "index_case", lambda case, path: (events.append(("index", str(path))), real_index(case, path)))
    st.stage_case(_case("a"), {"program.py": "print(1)\n", "inputs.safetensors": b"\x00"}, repro="import sys\n")
    st.finalize("a", True)
    synced = [p for e, p in events if e == "fsync"]
    order = [e for e, _ in events]
    root, staged = str(tmp_path.resolve()), str((tmp_path / ".staging" / "a").resolve())
    for name in ("program.py", "inputs.safetensors", "repro.py"):
        assert f"{staged}/{name}" in synced
    assert staged in synced and root in synced                 # the folders' entries
    root_synced = max(i for i, (e, p) in enumerate(events) if e == "fsync" and p == root)
    assert order.index("index") > root_synced and order[-1] == "index"  # the row comes last
    case = read_case(tmp_path / "a")
    assert sorted(case.digests) == ["inputs.safetensors", "program.py", "repro.py"] and not case.damage()
    (tmp_path / "a" / "inputs.safetensors").write_bytes(b"")  # torn by a power loss
    assert "corrupt inputs.safetensors" in case.damage()
    st.close()
