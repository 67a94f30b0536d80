"""kill -9 a campaign at random moments (5 in the suite; ``ASSAY_KILLS=50`` for the full check
of docs/campaign.md), most inside case writes: after each kill no case
folder is half-written, and after the last --resume every failure has exactly one whole case
(none lost, none duplicated); a case whose files are damaged later reads as corrupt."""

import os
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from fuzz.campaign.case import read_case
from fuzz.errors import AssayError

from test_campaign import env, make_programs

FAULTS = str(Path(__file__).resolve().parents[1] / "fault_injection")
# 5 keeps the whole suite under 15 minutes on 2 cores (each kill restarts a campaign: 4-8 s)
KILLS = int(os.environ.get("ASSAY_KILLS", "5"))
PROGRAMS = 15 + KILLS  # every restart still has cases to write (a killed run writes 1-2)


def _complete_cases(out: Path) -> list[str]:
    """The case folders a triage listing would show, each checked whole (digests of every file)."""
    names = []
    for d in sorted(out.iterdir()):
        if not d.is_dir() or d.name.startswith(".") or d.name == "logs":
            continue
        case = read_case(d)  # a half-written folder has no case.json or a torn one: AssayError
        assert case.digests and not case.damage(), (d.name, case.damage())
        names.append(d.name)
    return names


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


@pytest.mark.slow
def test_kill_9_at_random_moments_loses_duplicates_and_tears_nothing(assay, tmp_path):
    progs = make_programs(tmp_path / "progs", PROGRAMS)
    out = tmp_path / "run"
    e = dict(env(), PYTHONPATH=os.pathsep.join([FAULTS, str(Path(__file__).resolve().parents[2])]),
             ASSAY_TEST_SLOW_FSYNC="0.03")
    base = ["--backends", "_perturb", "--keep", "1000", "--no-recheck", "--workers", "1", "--time", "300"]
    rng = random.Random(14)
    inside = 0
    for k in range(KILLS):
        args = ["--resume", str(out)] if out.exists() else ["--programs", str(progs), "--out", str(out)]
        proc = subprocess.Popen(assay + ["fuzz", *args, *base], env=e, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        staging = out / ".staging"
        left = set(os.listdir(staging)) if staging.is_dir() else set()  # the last kill's, re-checked first
        if rng.random() < 0.8:  # among case writes: once this run stages a new case, plus a random while
            end = time.monotonic() + 30
            while time.monotonic() < end and proc.poll() is None:
                if staging.is_dir() and set(os.listdir(staging)) - left:
                    inside += 1
                    break
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 0.6))  # staging, the move into place, the next cases
        else:  # anywhere: start-up, a worker warming up, between tests
            time.sleep(rng.uniform(0, 1.5))
        _kill_group(proc)
        try:
            _complete_cases(out) if out.exists() else None
        except AssayError as exc:
            pytest.fail(f"after kill {k}: a half-written case is visible: {exc}")
    # the last resume runs to the end
    res = subprocess.run(assay + ["fuzz", "--resume", str(out), *base], env=e, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    db = sqlite3.connect(str(out / "index.sqlite"))
    try:
        tests = db.execute("SELECT id, kind, case_id FROM tests").fetchall()
        indexed = sorted(r[0] for r in db.execute("SELECT id FROM cases"))
    finally:
        db.close()
    assert len(tests) == PROGRAMS and all(kind == "mismatch" for _, kind, _ in tests)
    cases = _complete_cases(out)
    assert cases == sorted(t[0] for t in tests) == indexed      # none lost, none duplicated
    assert all(t[2] == t[0] for t in tests)
    assert not os.listdir(out / ".staging")
    assert all(not list((out / c).glob(".*")) for c in cases)  # no stray temporary files
    print(f"kills among case writes: {inside} of {KILLS}")
    assert inside >= 0.5 * KILLS, inside  # kills that came while this run was writing cases
