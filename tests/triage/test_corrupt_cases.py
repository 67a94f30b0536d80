"""Damaged campaign folders never crash triage: list / show / repro / recheck answer with one-line
errors or list the case as corrupt, never hang, never delete anything. Plus the folder messages
of ``triage list`` and exact case ids winning over prefixes."""

import shutil
import zlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from triage_helpers import chain_graph, make_case, relu_graph_b  # noqa: E402

from conftest import mutated_files, run_assay_cli  # noqa: E402
from fuzz.cli import main  # noqa: E402

CASE_FILES = ("case.json", "graph.json", "inputs.safetensors", "params.safetensors")
FOLDER_FILES = ("index.sqlite", "campaign.json", "stats.json")
RAISE = {"type": "RuntimeError", "message": "injected failure in buf3 at 0x7f00deadbeef for shape [2, 3]",
         "traceback": ""}


def _cli(capsys, *argv):
    """``assay ARGV`` in this process: any exception but the one-line error is a test failure."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, (argv, err[-2000:])
    if code == 2:
        assert len(err.strip().splitlines()) == 1 and err.startswith("assay: error: "), (argv, err)
    else:
        assert code == 0, (argv, code, err)
    return code, out, err


def _snapshot(root: Path) -> set:
    return {p.relative_to(root) for p in root.rglob("*") if p.is_file() and "-wal" not in p.name and "-shm" not in p.name}


@pytest.fixture
def campaign(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_TEST_BACKENDS", "1")
    root = tmp_path / "run"
    g, t = chain_graph()
    make_case(root, "a1", g, t, backend="_perturb")
    g, t = relu_graph_b()
    make_case(root, "c1", g, t, backend="_raise", kind="crash", detail="_raise raised during run", error=RAISE)
    (root / "campaign.json").write_text('{"created": "2025-01-01T00:00:00+00:00", "seed": 0}\n')
    (root / "stats.json").write_text('{"tests": 3, "outcomes": {"pass": 1}}\n')
    return root


def _damage_cases(root: Path, per_file: int) -> list[str]:
    """Copies of a1 and c1, each with one file damaged one way; returns their ids."""
    ids = []
    for base in ("a1", "c1"):
        for name in CASE_FILES:
            data = (root / base / name).read_bytes()
            for i, (how, bad) in enumerate(mutated_files(data, per_file, seed=zlib.crc32(name.encode()) % 1000)):
                cid = f"{base}-{name.split('.')[0]}-{i}-{how}"
                shutil.copytree(root / base, root / cid)
                # its own id first, so the copy is a case of its own (case.json is not in the digests)
                own = (root / cid / "case.json").read_bytes().replace(f'"id": "{base}"'.encode(), f'"id": "{cid}"'.encode(), 1)
                (root / cid / "case.json").write_bytes(own)
                if name == "case.json":
                    bad = bad.replace(f'"id": "{base}"'.encode(), f'"id": "{cid}"'.encode(), 1)
                (root / cid / name).write_bytes(bad)
                ids.append(cid)
    return ids


def test_damaged_case_folders_give_one_line_errors_or_corrupt_rows_and_lose_nothing(campaign, capsys):
    ids = _damage_cases(campaign, per_file=6)
    (campaign / "empty-case").mkdir()
    (campaign / "blank-case").mkdir()
    (campaign / "blank-case" / "case.json").write_text("{}")
    (campaign / "no-backend").mkdir()
    (campaign / "no-backend" / "case.json").write_text('{"id": "no-backend", "kind": "crash"}')
    ids += ["empty-case", "blank-case", "no-backend"]
    before = _snapshot(campaign)
    _, out, err = _cli(capsys, "triage", "list", "--dir", campaign)
    assert "corrupt a1-graph-" in out and "corrupt c1-params-" in out
    _cli(capsys, "triage", "list", "--json", "--dir", campaign)
    failed = 0
    for cid in ids + ["a1", "c1"]:
        code, out, _ = _cli(capsys, "triage", "show", cid, "--dir", campaign)
        code2, out2, err2 = _cli(capsys, "triage", "repro", cid, "--dir", campaign)
        failed += code2 == 2
        if "-graph-" in cid or "-inputs-" in cid or "-params-" in cid:
            # a changed tensor or graph file: never a repro printed from it
            assert code2 == 2 and "corrupt" in err2 and not out2, (cid, err2)
    assert failed >= 3 * 6 * 2
    for cid in ("blank-case", "no-backend"):
        assert _cli(capsys, "triage", "repro", cid, "--dir", campaign)[0] == 2
    # recheck: one real run over every damaged case (a child process: no hang, no traceback)
    res = run_assay_cli("triage", "recheck", "--all", "--json", "--timeout", "60", "--dir", campaign,
                        env=_env(), timeout=400)
    assert res.returncode in (0, 2) and "Traceback" not in res.stderr, res.stderr[-3000:]
    if res.returncode == 0:
        import json

        results = {r["case_id"]: r for r in json.loads(res.stdout)}
        for cid, r in results.items():
            if "-graph-" in cid or "-inputs-" in cid or "-params-" in cid:
                assert r["status"] == "unreadable" and r["reproduces"] is None, r
    assert before <= _snapshot(campaign)  # nothing deleted


@pytest.mark.parametrize("name", FOLDER_FILES)
def test_damaged_campaign_files_never_crash_list_show_or_repro(campaign, capsys, name):
    for i, (how, bad) in enumerate(mutated_files((campaign / name).read_bytes(), 5, seed=7)):
        (campaign / name).write_bytes(bad)
        before = _snapshot(campaign)
        code, out, _ = _cli(capsys, "triage", "list", "--dir", campaign)
        assert code == 2 or "a1" in out, (how, out)
        _cli(capsys, "triage", "show", "a1", "--dir", campaign)
        _cli(capsys, "triage", "repro", "c1", "--dir", campaign)
        assert before <= _snapshot(campaign), how


def test_list_says_what_a_folder_is(tmp_path, capsys):
    from fuzz.campaign.store import CrashStore

    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _cli(capsys, "triage", "list", "--dir", empty)
    assert code == 2 and "not a campaign folder" in err and "empty folder" in err
    (tmp_path / "other" / "src").mkdir(parents=True)
    code, _, err = _cli(capsys, "triage", "list", "--dir", tmp_path / "other")
    assert code == 2 and "not a campaign folder" in err and "src" in err
    CrashStore(tmp_path / "fresh").close()
    code, out, _ = _cli(capsys, "triage", "list", "--dir", tmp_path / "fresh")
    assert code == 0 and out.strip() == f"no saved cases yet in {tmp_path / 'fresh'}"


def test_an_exact_case_id_wins_over_a_longer_one(campaign, capsys):
    shutil.copytree(campaign / "a1", campaign / "a1-reduced")
    text = (campaign / "a1-reduced" / "case.json").read_text().replace('"id": "a1"', '"id": "a1-reduced"', 1)
    (campaign / "a1-reduced" / "case.json").write_text(text)
    for cmd in ("show", "repro"):
        code, out, _ = _cli(capsys, "triage", cmd, "a1", "--dir", campaign)
        assert code == 0 and "case a1:" in out.replace("Assay case a1:", "case a1:").replace("case a1 ", "case a1:")
        assert "a1-reduced" not in out.splitlines()[0]
    code, out, _ = _cli(capsys, "triage", "show", "a1-red", "--dir", campaign)
    assert code == 0 and out.startswith("case a1-reduced")
    (campaign / "a1" / "case.json").write_text("{torn")  # a damaged exact match is reported, not swapped
    code, _, err = _cli(capsys, "triage", "show", "a1", "--dir", campaign)
    assert code == 2 and "corrupt case.json" in err
    (campaign / "a1" / "case.json").unlink()  # not the one longer id that starts with it either
    for cmd in ("show", "repro"):
        code, out, err = _cli(capsys, "triage", cmd, "a1", "--dir", campaign)
        assert code == 2 and "no case.json" in err and not out


def _env():
    import os

    repo = str(Path(__file__).resolve().parents[2])
    return dict(os.environ, ASSAY_TEST_BACKENDS="1", PYTHONPATH=repo, PYTHONWARNINGS="ignore")



@pytest.mark.parametrize("field,text", [("mem_limit_mb", "Infinity"), ("mem_limit_mb", "1e999"),
                                        ("timeout_s", "NaN"), ("seed", "-Infinity"), ("nodes", '"7"'),
                                        ("flaky", '"yes"')])
def test_a_non_finite_or_mistyped_number_in_case_json_is_a_corrupt_case(campaign, capsys, field, text):
    import json

    data = json.loads((campaign / "c1" / "case.json").read_text())
    data[field] = "@@"
    (campaign / "c1" / "case.json").write_text(json.dumps(data).replace('"@@"', text))
    before = _snapshot(campaign)
    code, out, err = _cli(capsys, "triage", "list", "--dir", campaign)
    assert code == 0 and "a1" in out and "skipping c1" in err and field in err, (out, err)
    for cmd in ("show", "repro"):
        code, out, err = _cli(capsys, "triage", cmd, "c1", "--dir", campaign)
        assert code == 2 and field in err and not out, (cmd, err)
    assert before == _snapshot(campaign)
