"""``assay fuzz --shard I/N`` and ``assay triage merge``: real campaigns split into shards run
disjoint tests, and their merged store equals the unsplit campaign's (journal, signatures and hit
counts, cases); bad or conflicting inputs are one-line errors that write nothing."""

import json
import shutil
import sqlite3
import subprocess

import pytest

from test_campaign import env, journal, make_programs

from fuzz.campaign.config import parse_shard
from fuzz.errors import AssayError

PROGRAMS = 5
FUZZ = ["fuzz", "--backends", "_perturb,eager", "--workers", "1", "--time", "300", "--keep", "20", "--no-recheck"]


def rows(out):
    db = sqlite3.connect(str(out / "index.sqlite"))
    try:
        tests = sorted(db.execute("SELECT id, kind, signature, case_id FROM tests"))
        sigs = sorted(db.execute("SELECT signature, kind, backend, text, count FROM signatures"))
        cases = sorted(db.execute("SELECT id, kind, signature, path FROM cases"))
        return tests, sigs, cases
    finally:
        db.close()


def case_files(out, case_id):
    case = json.loads((out / case_id / "case.json").read_text())
    return {k: v for k, v in case["digests"].items() if k != "repro.py"}


def test_parse_shard():
    assert parse_shard("1/1") == [1, 1] and parse_shard(" 3 / 8 ") == [3, 8]
    for bad in ("0/2", "3/2", "1/0", "1", "a/b", "-1/2", "1/2/3"):
        with pytest.raises(AssayError):
            parse_shard(bad)


@pytest.fixture(scope="module")
def campaigns(tmp_path_factory, assay):
    """One campaign over PROGRAMS saved programs, run whole and as shards 1/2 and 2/2 (all at once)."""
    root = tmp_path_factory.mktemp("shards")
    progs = make_programs(root / "progs", PROGRAMS)
    runs = {"whole": [], "a": ["--shard", "1/2"], "b": ["--shard", "2/2"]}
    procs = {name: subprocess.Popen(assay + FUZZ + ["--programs", str(progs), "--out", str(root / name), *extra],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
             for name, extra in runs.items()}
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=400)
        assert proc.returncode == 0, (name, err[-3000:])
    return root


@pytest.fixture(scope="module")
def assay():
    from conftest import assay_cmd

    return assay_cmd()


@pytest.mark.slow
def test_shards_are_disjoint_and_merge_into_the_whole_campaign(campaigns, assay, tmp_path):
    whole, a, b = (campaigns / n for n in ("whole", "a", "b"))
    ids = {n: {r[0] for r in journal(campaigns / n)} for n in ("whole", "a", "b")}
    assert len(ids["whole"]) == 2 * PROGRAMS
    assert ids["a"] and ids["b"] and not ids["a"] & ids["b"] and ids["a"] | ids["b"] == ids["whole"]
    assert {t.split("-")[1] for t in ids["a"]} == {"m000000", "m000002", "m000004"}  # index % 2 == 0
    assert json.loads((a / "campaign.json").read_text())["shard"] == [1, 2]
    # the shard is a setting of the campaign: resuming it as another shard is refused
    res = subprocess.run(assay + ["fuzz", "--resume", str(a), "--shard", "2/2"], capture_output=True, text=True,
                         timeout=120, env=env())
    assert res.returncode == 2 and "shard" in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr

    merged = tmp_path / "merged"
    res = subprocess.run(assay + ["triage", "merge", str(a), str(b), "--out", str(merged), "--json"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["tests"] == 2 * PROGRAMS and summary["duplicate_tests"] == 0 and summary["cases"] == PROGRAMS
    assert rows(merged) == rows(whole)  # journal, signatures with summed hit counts, case index
    [(sig, *_rest, count)] = rows(merged)[1]
    assert count == PROGRAMS  # 3 hits in shard 1/2 + 2 in shard 2/2
    for case_id in (r[0] for r in rows(merged)[2]):
        assert case_files(merged, case_id) == case_files(whole, case_id)
    settings = json.loads((merged / "campaign.json").read_text())
    assert "shard" not in settings and len(settings["merged_from"]) == 2
    stats = json.loads((merged / "stats.json").read_text())
    assert stats["tests"] == 2 * PROGRAMS and stats["unique_signatures"] == 1 and stats["cases_saved"] == PROGRAMS
    listing = subprocess.run(assay + ["triage", "list", "--dir", str(merged), "--json"], capture_output=True,
                             text=True, timeout=120)
    assert listing.returncode == 0 and [r["count"] for r in json.loads(listing.stdout)] == [PROGRAMS], listing.stdout

    # merging a part again with the merged store: each test counts once
    again = tmp_path / "again"
    res = subprocess.run(assay + ["triage", "merge", str(merged), str(a), "--out", str(again), "--json"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["duplicate_tests"] == len(ids["a"]) and rows(again) == rows(whole)


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


@pytest.mark.slow
def test_conflicting_or_corrupt_inputs_are_one_line_errors_and_write_nothing(campaigns, assay, tmp_path):
    a, b = campaigns / "a", campaigns / "b"

    def merge_fails(*dirs, words):
        out = tmp_path / "out"
        res = subprocess.run(assay + ["triage", "merge", *map(str, dirs), "--out", str(out)], capture_output=True,
                             text=True, timeout=120)
        assert res.returncode == 2, res.stdout + res.stderr
        err = res.stderr.strip()
        assert "Traceback" not in err and len(err.splitlines()) == 1 and words in err, err
        assert not out.exists() and not list(tmp_path.glob(".out.merging-*"))

    # another campaign's folder (another seed: the same test ids would mean other models)
    other = _copy(b, tmp_path / "other-seed")
    settings = json.loads((other / "campaign.json").read_text())
    (other / "campaign.json").write_text(json.dumps(dict(settings, seed=1)))
    merge_fails(a, other, words="seed")
    # the same test with another outcome
    flipped = _copy(a, tmp_path / "flipped")
    db = sqlite3.connect(str(flipped / "index.sqlite"))
    with db:
        db.execute("UPDATE tests SET kind='pass', signature=NULL WHERE id LIKE '%-_perturb-fwd'")
    db.close()
    merge_fails(a, flipped, words="conflicts")
    # a case whose tensors changed after it was written
    damaged = _copy(b, tmp_path / "damaged")
    case_dir = next(p for p in damaged.iterdir() if (p / "case.json").exists())
    (case_dir / "inputs.safetensors").write_bytes(b"garbage")
    merge_fails(a, damaged, words="corrupt inputs.safetensors")
    # a corrupt index, a folder that is no campaign, the same folder twice, an --out that holds files
    broken = _copy(b, tmp_path / "broken")
    (broken / "index.sqlite").write_bytes(b"not a database" * 100)
    for name in ("index.sqlite-wal", "index.sqlite-shm"):
        (broken / name).unlink(missing_ok=True)
    merge_fails(a, broken, words="corrupt index")
    merge_fails(a, tmp_path, words="not a campaign folder")
    merge_fails(a, a, words="twice")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("keep")
    res = subprocess.run(assay + ["triage", "merge", str(a), "--out", str(tmp_path / "out")], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 2 and "not empty" in res.stderr and (tmp_path / "out" / "x").read_text() == "keep"
