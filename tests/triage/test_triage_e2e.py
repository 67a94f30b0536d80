"""Triage end to end on cases with a fault injected into the compiled path.

The fault lives in ``tests/fault_injection/sitecustomize.py``: child processes started with
that directory on ``PYTHONPATH`` and ``ASSAY_TEST_FAULT=relu`` (or ``add``) compute a wrong
``relu`` (``add``) under ``aot_eager`` — eager is untouched. Nothing in the product knows
about it. One crashes directory is shared by the tests of this module, in order:

1. ``assay triage reduce`` (CLI, JSON contract) shrinks a 9-op relu case to <= 3 ops; the
   reduced repro.py exits 1 with the fault and 0 without it;
2. dedup: a second relu case from another graph reduces to the same signature; an ``add``
   fault in the *same* 9-op graph as case 1 starts with case 1's signature and ends apart;
3. ``triage list --json``, ``repro``, ``recheck``, ``show``, ``report``; one-line errors.
"""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import assay_cmd  # noqa: E402
from triage_helpers import chain_graph, make_case, relu_graph_b  # noqa: E402

FAULT_DIR = Path(__file__).parent.parent / "fault_injection"
pytestmark = pytest.mark.slow


def fault_env(fault: str | None) -> dict:
    env = dict(os.environ)
    env.pop("ASSAY_TEST_FAULT", None)
    if fault:
        env["ASSAY_TEST_FAULT"] = fault
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(FAULT_DIR), env.get("PYTHONPATH")) if p)
    return env


def run_assay(args, fault=None, timeout=600):
    return subprocess.run(assay_cmd() + args, env=fault_env(fault), capture_output=True, text=True, timeout=timeout)


def run_script(path: Path, fault=None, cwd=None):
    return subprocess.run([sys.executable, str(path)], env=fault_env(fault), capture_output=True, text=True,
                          timeout=300, cwd=cwd or "/")


def run_scripts(*runs):
    """Run several (path, fault, cwd) scripts at once; their CompletedProcess-like results, in order."""
    procs = [subprocess.Popen([sys.executable, str(p)], env=fault_env(f), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=c or "/") for p, f, c in runs]
    out = []
    for p in procs:
        so, se = p.communicate(timeout=300)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, so, se))
    return out


@pytest.fixture(scope="module")
def crashes(tmp_path_factory):
    root = tmp_path_factory.mktemp("crashes")
    g, t = chain_graph()
    make_case(root, "relu-a", g, t, created="2025-01-01T01:00:00+00:00", hits=4)
    g, t = relu_graph_b()
    make_case(root, "relu-b", g, t, created="2025-01-01T02:00:00+00:00", hits=2)
    g, t = chain_graph()
    make_case(root, "add-c", g, t, created="2025-01-01T03:00:00+00:00", hits=1)
    return root


@pytest.fixture(scope="module")
def reduced(crashes):
    """The three reductions, run at the same time (each in its own sandboxed worker).

    relu-a through the CLI (the JSON contract), relu-b and add-c through the Python API.
    """
    from fuzz.triage.actions import reduce_case
    from fuzz.triage.cases import load_case

    before = {c: load_case(crashes, c).signature for c in ("relu-a", "relu-b", "add-c")}
    cli = subprocess.Popen(assay_cmd() + ["triage", "reduce", "relu-a", "--dir", str(crashes), "--json", "--quiet"],
                           env=fault_env("relu"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results, errors = {}, []

    def work(cid, fault):
        try:
            results[cid] = reduce_case(load_case(crashes, cid), env=fault_env(fault), time_budget=120)
        except Exception as exc:  # surfaced by the tests
            errors.append(f"{cid}: {exc!r}")

    threads = [threading.Thread(target=work, args=("relu-b", "relu")), threading.Thread(target=work, args=("add-c", "add"))]
    for th in threads:
        th.start()
    out, err = cli.communicate(timeout=900)
    for th in threads:
        th.join()
    return {"cli": subprocess.CompletedProcess(cli.args, cli.returncode, out, err), "api": results,
            "errors": errors, "before": before}


def test_reduce_cli_shrinks_to_the_faulty_op_and_repro_tracks_the_fault(crashes, reduced):
    res = reduced["cli"]
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout)
    assert out["ops_before"] == 9
    assert 1 <= out["ops_after"] <= 3
    assert "torch.nn.functional.relu" in out["ops"]
    reduced_dir = Path(out["reduced_case"])
    assert reduced_dir.is_dir() and reduced_dir.parent == crashes
    case = json.loads((reduced_dir / "case.json").read_text())
    assert case["triage"]["reduced_from"] == "relu-a" and case["kind"] == "mismatch" and case["reproduces"] is True
    assert case["recheck"].startswith("reduced from relu-a; its repro.py: reproduced (REPRODUCED:"), case["recheck"]
    assert len(case["graph"]["nodes"]) == out["ops_after"]
    repro = reduced_dir / "repro.py"
    assert repro.exists()
    with_fault, without = run_scripts((repro, "relu", str(reduced_dir)), (repro, None, str(reduced_dir)))
    assert with_fault.returncode == 1, with_fault.stdout + with_fault.stderr[-2000:]
    assert "REPRODUCED" in with_fault.stdout
    assert without.returncode == 0, without.stdout + without.stderr[-2000:]


def test_same_fault_collapses_and_different_faults_stay_apart(crashes, reduced):
    from fuzz.triage.listing import signature_rows

    before = reduced["before"]
    # same graph, different faults: the campaign's signature cannot tell them apart yet
    assert before["relu-a"] == before["add-c"] != before["relu-b"]
    assert not reduced["errors"], reduced["errors"]
    assert reduced["cli"].returncode == 0
    results = reduced["api"]
    assert results["relu-b"]["ops_after"] <= 3 and results["add-c"]["ops_after"] <= 3
    assert "torch.add" in results["add-c"]["ops"]

    rows = signature_rows(crashes)
    by_case = {cid: r for r in rows for cid in r.case_ids}
    assert by_case["relu-a"] is by_case["relu-b"], "one fault, two graphs: one signature after reduction"
    assert by_case["add-c"] is not by_case["relu-a"], "two faults: two signatures"
    assert len(rows) == 2
    assert by_case["relu-a"].count >= 2 and sorted(by_case["relu-a"].case_ids) == ["relu-a", "relu-b"]


def test_list_json_contract_and_filters(crashes, reduced):
    res = run_assay(["triage", "list", "--json", "--dir", str(crashes)])
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert isinstance(rows, list) and rows
    for r in rows:
        assert {"signature", "kind", "backend", "count", "case_ids"} <= set(r)
        assert not any(c.endswith("-reduced") for c in r["case_ids"])
    # counts come from the store's index (hits whose cases were not all saved)
    relu = next(r for r in rows if "relu-a" in r["case_ids"])
    # relu-a shares its campaign signature with add-c (same graph): only its saved case counts;
    # relu-b's signature is wholly in this row: all its 2 hits count
    assert relu["count"] == 3 and relu["reduced_case"]
    res = run_assay(["triage", "list", "--dir", str(crashes), "--op", "relu", "--sort", "first"])
    assert res.returncode == 0 and "relu-a" in res.stdout and "add-c" not in res.stdout


def test_repro_prints_a_self_contained_script(crashes, reduced, tmp_path):
    res = run_assay(["triage", "repro", "relu-a-reduced", "--dir", str(crashes)])
    assert res.returncode == 0, res.stderr
    script = res.stdout
    assert "import torch" in script and "TOLERANCE" in script and "# Found with: torch" in script
    assert "_INLINE" in script  # tiny tensors inlined: the script needs no files
    imports = {line.split()[1].split(".")[0] for line in script.splitlines() if line.startswith(("import ", "from "))}
    assert imports <= {"torch", "json", "os", "sys"}
    path = tmp_path / "elsewhere.py"
    path.write_text(script)
    assert run_script(path, "relu", cwd=str(tmp_path)).returncode == 1


def test_recheck_marks_fixed_when_the_fault_is_gone(crashes, reduced):
    res = run_assay(["triage", "recheck", "relu-a-reduced", "relu-b", "--dir", str(crashes), "--json"])
    assert res.returncode == 0, res.stderr[-3000:]
    results = {r["case_id"]: r for r in json.loads(res.stdout)}
    assert results["relu-a-reduced"]["status"] == "fixed" and results["relu-b"]["status"] == "fixed"
    case = json.loads((crashes / "relu-b" / "case.json").read_text())
    assert case["reproduces"] is False and case["triage"]["recheck"]["status"] == "fixed"
    rows = json.loads(run_assay(["triage", "list", "--json", "--dir", str(crashes)]).stdout)
    assert next(r for r in rows if "relu-b" in r["case_ids"])["reproduces"] is False


def test_show_and_report(crashes, reduced, tmp_path):
    res = run_assay(["triage", "show", "relu", "--dir", str(crashes)])
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "ambiguous" in res.stderr
    res = run_assay(["triage", "show", "relu-a", "--dir", str(crashes)])
    assert res.returncode == 0, res.stderr
    assert "max abs error" in res.stdout and "class Model" in res.stdout and "reduced case" in res.stdout
    out = tmp_path / "report.html"
    res = run_assay(["triage", "report", "--dir", str(crashes), "--out", str(out)])
    assert res.returncode == 0, res.stderr
    html = out.read_text()
    assert html.count("data:image/png;base64,") >= 2 and "relu-a-reduced/repro.py" in html
    md = tmp_path / "report.md"
    assert run_assay(["triage", "report", "--dir", str(crashes), "--out", str(md)]).returncode == 0
    assert "## Bugs (2 distinct)" in md.read_text()


def test_missing_and_corrupt_cases_are_one_line_errors(tmp_path):
    from fuzz.campaign.store import CrashStore

    CrashStore(tmp_path).close()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "case.json").write_text("{not json")
    for args in (["show", "nope"], ["reduce", "nope"], ["repro", "broken"], ["show", "broken"], ["recheck", "broken"]):
        res = run_assay(["triage", *args, "--dir", str(tmp_path)])
        assert res.returncode == 2, (args, res.stderr)
        assert res.stderr.startswith("assay: error: ") and res.stderr.count("\n") == 1, res.stderr
        assert "Traceback" not in res.stderr
    res = run_assay(["triage", "list", "--dir", str(tmp_path / "missing")])
    assert res.returncode == 2 and res.stderr.count("\n") == 1
