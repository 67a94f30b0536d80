"""A campaign folder written by older code (main at d967a17) still works with today's triage.

``data/campaign-d967a17/`` is what ``assay fuzz`` wrote then: six ``mismatch`` cases of a
``relu`` fault injected into the compiled path (``tests/fault_injection``, via PYTHONPATH +
``ASSAY_TEST_FAULT=relu``), its ``index.sqlite``, ``stats.json`` and ``plot_data.csv``. Every
command runs the real CLI in a subprocess; reduce and recheck replay the cases with real
torch.compile in the sandboxed worker. The three replaying commands run at once, each on its
own copy of the folder.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import assay_cmd  # noqa: E402
from test_triage_e2e import fault_env, run_assay  # noqa: E402

DATA = Path(__file__).parent / "data" / "campaign-d967a17"
CASES = ["s7-m000000-aot_eager-fwd", "s7-m000000-inductor-fwd", "s7-m000001-aot_eager-fwd",
         "s7-m000001-inductor-fwd", "s7-m000002-aot_eager-fwd", "s7-m000002-inductor-fwd"]
SMALL = "s7-m000001-aot_eager-fwd"  # 4 operators, one of them torch.nn.ReLU


@pytest.fixture
def folders(tmp_path):
    out = {}
    for name in ("read", "reduce", "fault", "fixed"):
        out[name] = tmp_path / name
        shutil.copytree(DATA, out[name])
    return out


def test_old_campaign_lists_shows_reduces_and_rechecks(folders):
    # the replaying commands first, at the same time (each starts its own worker)
    runs = {
        "reduce": (["triage", "reduce", SMALL, "--json", "--quiet", "--time-budget", "40"], "relu"),
        "fault": (["triage", "recheck", SMALL, "--json"], "relu"),
        "fixed": (["triage", "recheck", SMALL, "--json"], None),
    }
    procs = {name: subprocess.Popen(assay_cmd() + args + ["--dir", str(folders[name])], env=fault_env(fault),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, (args, fault) in runs.items()}
    try:
        _check(folders, procs)
    finally:
        for p in procs.values():  # on a failed assertion: stop them (their workers exit when stdin closes)
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=60)


def _check(folders, procs):

    read = str(folders["read"])
    res = run_assay(["triage", "list", "--dir", read, "--json"])
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert sorted(c for r in rows for c in r["case_ids"]) == CASES
    assert {r["kind"] for r in rows} == {"mismatch"} and all(r["reproduces"] is True for r in rows)
    assert {r["backend"] for r in rows} == {"aot_eager", "inductor"}
    res = run_assay(["triage", "list", "--dir", read])
    assert res.returncode == 0 and "6 distinct failures" in res.stdout, res.stderr
    res = run_assay(["triage", "show", SMALL, "--dir", read])
    assert res.returncode == 0, res.stderr
    assert "mismatch-aot_eager-35224a1cc6f4" in res.stdout and "torch.nn.ReLU" in res.stdout
    assert "56 of 56 elements off" in res.stdout and "class Model" in res.stdout
    res = run_assay(["triage", "show", SMALL, "--dir", read, "--json"])
    assert json.loads(res.stdout) == json.loads((DATA / SMALL / "case.json").read_text())  # read back unchanged

    out = {name: p.communicate(timeout=240) for name, p in procs.items()}
    for name, p in procs.items():
        assert p.returncode == 0, (name, out[name][1][-3000:])
    reduced = json.loads(out["reduce"][0])
    assert reduced["ops_before"] == 4 and 1 <= reduced["ops_after"] < 4
    assert "torch.nn.ReLU" in reduced["ops"]
    red = Path(reduced["reduced_case"])
    assert red.name == SMALL + "-reduced" and (red / "repro.py").exists()
    original = json.loads((folders["reduce"] / SMALL / "case.json").read_text())
    assert original["triage"]["reduced_case"] == red.name and original["signature"] == "mismatch-aot_eager-35224a1cc6f4"
    with_fault, = json.loads(out["fault"][0])
    assert with_fault["case_id"] == SMALL and with_fault["status"] == "open" and with_fault["reproduces"] is True
    assert with_fault["signature"] == "mismatch-aot_eager-35224a1cc6f4"
    without, = json.loads(out["fixed"][0])
    assert without["status"] == "fixed" and without["reproduces"] is False and without["kind"] == "pass"
    # the recheck is recorded in the old case.json, which keeps everything it had
    saved = json.loads((folders["fixed"] / SMALL / "case.json").read_text())
    old = json.loads((DATA / SMALL / "case.json").read_text())
    assert saved["triage"]["recheck"]["status"] == "fixed" and saved["reproduces"] is False
    assert {k: v for k, v in saved.items() if k not in ("triage", "reproduces")} == \
        {k: v for k, v in old.items() if k != "reproduces"}


def test_old_case_files_read_and_write_back_unchanged(tmp_path):
    from fuzz.campaign.case import read_case
    from fuzz.campaign.store import CrashStore

    for cid in CASES:
        case = read_case(DATA / cid)
        assert case.kind == "mismatch" and case.failure.id == case.signature and case.reproduces is True
        assert case.to_json() == json.loads((DATA / cid / "case.json").read_text())
        assert list(case.to_json()) == list(json.loads((DATA / cid / "case.json").read_text()))
        assert case.tensors(case.program_graph())  # its tensors load by graph name
    # the old index opens with today's store and agrees with the case files
    root = tmp_path / "camp"
    shutil.copytree(DATA, root)
    store = CrashStore(root, create=False)
    try:
        assert store.reconcile() == {"added": 0, "removed": 0}
        assert sorted(c["id"] for c in store.cases()) == CASES
        assert store.outcome_counts()["outcomes"]["mismatch"] == 6
    finally:
        store.close()
