"""Trace collection: real collection of a few ops, round-trips, real errors, real shapes, determinism."""

from __future__ import annotations

import gzip
import json

import pytest

from fuzz.errors import AssayError
from fuzz.ir.record import Record, iter_tensor_values, write_records

OPS = ["nn.functional.conv2d", "add", "sum"]




@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from fuzz.tracing import collect

    out = tmp_path_factory.mktemp("corpus")
    stats = collect(str(out), seed=0, ops=OPS, max_samples=4, workers=2, progress=False)
    return out, stats


def _records(out):
    from fuzz.tracing import load_corpus

    return list(load_corpus(str(out)))


def test_api_collects_all_kinds(corpus):
    out, stats = corpus
    recs = _records(out)
    assert stats["records"] == len(recs) > 50
    kinds = {r.kind for r in recs}
    assert kinds == {"function", "aten"}
    ops = {r.op for r in recs if r.kind == "function"}
    assert ops == {"torch.nn.functional.conv2d", "torch.add", "torch.sum"}
    assert any(r.op == "aten::convolution" for r in recs)
    sources = {r.source for r in recs}
    assert {"opinfo", "dispatch", "mutation"} <= sources
    dtypes = {t["dtype"] for r in recs for t in r.inputs()}
    assert {"float32", "float64", "int64"} <= dtypes
    assert json.load(open(out / "traces-stats.json"))["records"] == len(recs)


def test_records_round_trip(corpus, tmp_path):
    out, _ = corpus
    recs = _records(out)
    for r in recs:
        assert Record.from_json(json.loads(json.dumps(r.to_json()))) == r
    # Writing the read records back gives the very same bytes.
    copy = tmp_path / "traces.jsonl.gz"
    write_records(copy, recs)
    assert copy.read_bytes() == (out / "traces.jsonl.gz").read_bytes()


def _call(rec: Record) -> dict:
    d = rec.to_json()
    return {k: d[k] for k in ("op", "kind", "overload", "init", "args", "kwargs") if k in d}


def test_invalid_records_exist_and_errors_are_real(corpus):
    from fuzz.tracing.calls import run_encoded

    out, _ = corpus
    invalid = [r for r in _records(out) if not r.ok]
    assert len(invalid) >= 10
    per_op = {}
    for r in invalid:
        per_op[r.op] = per_op.get(r.op, 0) + 1
        assert r.error["type"] and r.error["message"]
        assert len(r.error["message"]) <= 300
    assert per_op.get("torch.nn.functional.conv2d", 0) >= 3
    for r in invalid:
        device = r.extra.get("device", "cpu")
        ok, err = run_encoded(_call(r), device)
        assert not ok, f"{r.name} {r.args} {r.kwargs} did not raise again on {device}"
        assert err["type"] == r.error["type"]


def test_valid_records_match_a_fresh_real_call(corpus):
    from fuzz.tracing.calls import run_encoded

    out, _ = corpus
    valid = [r for r in _records(out) if r.ok]
    assert len(valid) >= 30
    for r in valid:
        ok, outcome = run_encoded(_call(r), "cpu")
        assert ok, f"{r.name} {r.args} failed on a fresh call: {outcome}"
        fresh = [(t["T"], t["dtype"]) for t in iter_tensor_values(outcome)]
        recorded = [(t["T"], t["dtype"]) for t in r.outputs()]
        assert fresh == recorded, r.name


def test_cli_collect_and_stats(tmp_path, run_assay):
    out = tmp_path / "c"
    res = run_assay("traces", "collect", "--ops", ",".join(OPS), "--out", str(out), "--max-samples", "3", "--quiet")
    assert res.returncode == 0, res.stderr
    assert (out / "traces.jsonl.gz").exists()
    assert "records:" in res.stdout
    res = run_assay("traces", "stats", "--json", "--corpus", str(out))
    assert res.returncode == 0, res.stderr
    stats = json.loads(res.stdout)
    assert stats["ops_by_kind"]["function"] == 3
    assert stats["invalid"] > 0 and stats["valid"] > 0


def test_deterministic_same_seed_same_bytes(tmp_path):
    from fuzz.tracing import collect

    a, b = tmp_path / "a", tmp_path / "b"
    collect(str(a), seed=3, ops=["add", "nn.functional.conv2d"], max_samples=3, workers=2, progress=False)
    collect(str(b), seed=3, ops=["add", "nn.functional.conv2d"], max_samples=3, workers=1, progress=False)
    assert (a / "traces.jsonl.gz").read_bytes() == (b / "traces.jsonl.gz").read_bytes()
    assert (a / "traces-stats.json").read_bytes() == (b / "traces-stats.json").read_bytes()


def test_module_records(tmp_path):
    from fuzz.tracing import collect
    from fuzz.tracing.calls import run_encoded

    collect(str(tmp_path), ops=["nn.Conv2d"], max_samples=2, extra_samples=0, workers=1, progress=False)
    recs = [r for r in _records(tmp_path) if r.kind == "module"]
    assert recs and all(r.op == "torch.nn.Conv2d" and r.init is not None for r in recs)
    for r in recs:
        ok, outcome = run_encoded(_call(r), "cpu")
        assert ok == r.ok


@pytest.mark.parametrize("payload", [b"not gzip at all", gzip.compress(b'{"op": "x"\n'),
                                     gzip.compress(b'{"op": "x", "kind": "aten"}\n'),
                                     gzip.compress(b"hello")[:12]],
                         ids=["not-gzip", "bad-json", "missing-fields", "truncated-gzip"])
def test_corrupt_corpus_is_one_line_error(tmp_path, payload, run_assay):
    (tmp_path / "traces.jsonl.gz").write_bytes(payload)
    res = run_assay("traces", "stats", "--corpus", str(tmp_path))
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert res.stderr.strip().count("\n") == 0 and res.stderr.startswith("assay: error:")


def test_bad_input_is_one_line_error(tmp_path, run_assay):
    res = run_assay("traces", "collect", "--ops", "no_such_op", "--out", str(tmp_path))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "no_such_op" in res.stderr and res.stderr.strip().count("\n") == 0
    res = run_assay("traces", "collect", "--workers", "0", "--out", str(tmp_path))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    res = run_assay("traces", "stats", "--corpus", str(tmp_path / "missing"))
    assert res.returncode == 2 and "Traceback" not in res.stderr


def test_select_unknown_op_raises():
    from fuzz.tracing import select_tasks

    with pytest.raises(AssayError):
        select_tasks(["definitely_not_an_op"])


def test_select_takes_any_call_level_of_an_operator():
    """'relu', 'aten::relu' and 'torch.nn.functional.relu' all pick relu's OpInfo and ModuleInfo
    entries; a name torch's databases spell exactly picks that entry alone."""
    from fuzz.tracing import select_tasks
    from fuzz.tracing.sources import task_names

    def names(query):
        return {n for t in select_tasks([query]) for n in task_names(t[0])}

    for query in ("relu", "aten::relu", "torch.nn.functional.relu", "torch.relu"):
        assert {"nn.functional.relu", "nn.ReLU"} <= names(query), query
    assert "nn.functional.relu" not in names("nn.ReLU")
    assert names("add") == {"add"}
