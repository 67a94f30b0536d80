"""``assay fuzz --executor ray`` on a real Ray cluster of two nodes on 127.0.0.1, started here:
the campaign's journal and cases equal the local executor's, and killing the second node's
processes mid-campaign loses and duplicates nothing."""

import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time

import pytest

from ray_cluster import Cluster, free_port, kill_tree, node_env
from test_campaign import make_programs

ray = pytest.importorskip("ray", reason="the Ray executor's tests need Ray: pip install -e '.[ray]' (make test does)")
psutil = pytest.importorskip("psutil")

PROGRAMS = 4


@pytest.fixture(scope="module")
def cluster():
    """A head node and a second worker node, one CPU each, started by this module, stopped after it."""
    # Ray's Unix sockets live under its temp dir and their paths must stay under 108 bytes: pytest's
    # tmp_path is too deep for them under pytest-xdist (.../popen-gw0/...), so a short one in /tmp
    short = tempfile.mkdtemp(prefix="ray-", dir="/tmp" if os.path.isdir("/tmp") else None)
    try:
        c = Cluster(short, cpus=(1, 1), env={"ASSAY_TEST_BACKENDS": "1"})
        try:
            yield {"address": c.address, "second": c.nodes[1]}
        finally:
            c.stop()
    finally:
        shutil.rmtree(short, ignore_errors=True)


def _fuzz(assay, args, extra_env=None, **kw):
    return subprocess.Popen(assay + ["fuzz", *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=node_env(dict(extra_env or {}, ASSAY_TEST_BACKENDS="1")), **kw)


def _rows(out):
    db = sqlite3.connect(str(out / "index.sqlite"))
    try:
        return (sorted(db.execute("SELECT id, kind, signature, case_id FROM tests")),
                sorted(db.execute("SELECT id, kind, signature, path FROM cases")))
    finally:
        db.close()


def _case(out, case_id):
    case = json.loads((out / case_id / "case.json").read_text())
    for volatile in ("created", "campaign"):
        case.pop(volatile)
    return case


def test_no_cluster_at_the_address_is_a_one_line_error_that_writes_nothing(assay, tmp_path):
    out = tmp_path / "camp"
    for argv, words in ((["--executor", "ray", "--address", f"127.0.0.1:{free_port()}"], "no Ray cluster answers"),
                        (["--address", "127.0.0.1:6379"], "--executor ray")):
        res = subprocess.run(assay + ["fuzz", "--out", str(out), *argv], capture_output=True, text=True, timeout=120)
        assert res.returncode == 2 and words in res.stderr, res.stderr
        assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert not out.exists()


@pytest.mark.slow
def test_a_ray_campaign_equals_the_local_one(cluster, assay, tmp_path):
    progs = make_programs(tmp_path / "progs", PROGRAMS)
    base = ["--programs", progs, "--backends", "_perturb,eager", "--time", "300", "--keep", "10", "--no-recheck",
            "--mem-limit", "4096"]
    procs = {"local": _fuzz(assay, base + ["--workers", "1", "--out", tmp_path / "local"]),
             "ray": _fuzz(assay, base + ["--workers", "2", "--executor", "ray", "--address", cluster["address"],
                                         "--out", tmp_path / "ray"])}
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=400)
        assert proc.returncode == 0, (name, err[-3000:])
    local, ray_run = _rows(tmp_path / "local"), _rows(tmp_path / "ray")
    assert local == ray_run and len(local[0]) == 2 * PROGRAMS and len(local[1]) == PROGRAMS
    for case_id, *_ in local[1]:  # the same case, byte for byte (digests cover every file)
        assert _case(tmp_path / "local", case_id) == _case(tmp_path / "ray", case_id)
    assert not (tmp_path / "ray" / "logs").exists() or not any((tmp_path / "ray" / "logs").iterdir())


def _waiting(gate):
    return sorted(int(p.name.split("-")[1]) for p in gate.glob("waiting-*"))


@pytest.mark.slow
def test_killing_the_second_node_mid_campaign_loses_and_duplicates_nothing(cluster, assay, tmp_path):
    progs = make_programs(tmp_path / "progs", PROGRAMS)
    gate = tmp_path / "gate"
    gate.mkdir()
    out = tmp_path / "run"
    # _gate blocks each worker in its compile until the test opens the gate: the two actors (one
    # per node) each hold a job when the second node dies
    proc = _fuzz(assay, ["--programs", progs, "--backends", "_gate,eager", "--time", "300", "--timeout", "300",
                         "--workers", "2", "--executor", "ray", "--address", cluster["address"], "--no-recheck",
                         "--out", out], {"ASSAY_GATE": str(gate)})
    try:
        deadline = time.time() + 300
        while len(_waiting(gate)) < 2:
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.time() < deadline, "the two actors never both reached the gate"
            time.sleep(0.2)
        second = {p.pid for p in psutil.Process(cluster["second"].pid).children(recursive=True)}
        assert second & set(_waiting(gate)), "no worker of the second node is at the gate"
        kill_tree(cluster["second"])  # the node dies: its raylet, its actor, the actor's worker
        for pid in second & set(_waiting(gate)):
            (gate / f"waiting-{pid}").unlink()
    finally:
        (gate / "open").touch()
    _, err = proc.communicate(timeout=400)
    assert proc.returncode == 0, err[-3000:]
    rows, _ = _rows(out)
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids)) == 2 * PROGRAMS, rows  # every test once: none lost, none twice
    assert f"{2 * PROGRAMS} tests this run" in err, err[-2000:]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["tests"] == 2 * PROGRAMS and stats["worker_restarts"] >= 1
