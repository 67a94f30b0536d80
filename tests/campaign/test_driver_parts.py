"""The campaign loop's parts on their own: the job stream, re-checks in real processes, progress files."""

import csv
import io
import json

from fuzz.campaign.case import Case
from fuzz.campaign.config import Config
from fuzz.campaign import jobs
from fuzz.campaign.jobs import job_stream, model_of, modes_of
from fuzz.campaign.progress import PLOT_COLUMNS, Progress
from fuzz.campaign.rechecks import Rechecker
from fuzz.campaign.store import CrashStore
from fuzz.campaign.verdict import Kind, Verdict


def test_job_stream_skips_journaled_tests_and_names_them_deterministically(tmp_path):
    cfg = Config(out=str(tmp_path), backends=["inductor", "aot_eager"], modes=["fwd", "bwd"], seed=4, modes_per_model=0)
    done = {"s4-m000000-inductor-fwd", "s4-m000000-inductor-bwd", "s4-m000000-aot_eager-fwd",
            "s4-m000000-aot_eager-bwd", "s4-m000001-aot_eager-bwd"}
    jobs = job_stream(cfg, done, last_model=1)
    first = next(jobs)
    assert first["job"] == "s4-m000001" and first["source"] == {"gen": {"seed": 4, "index": 1, "shares": cfg.shares}}
    assert [t["test"] for t in first["tests"]] == ["s4-m000001-inductor-fwd", "s4-m000001-inductor-bwd",
                                                   "s4-m000001-aot_eager-fwd"]
    assert len(next(jobs)["tests"]) == 4  # past the journal: every test
    assert model_of("s4-m000042+") == 42 and model_of("triage") == -1


def test_default_campaign_mixes_modes_one_per_model_drawn_by_seed_and_index(tmp_path):
    cfg = Config(out=str(tmp_path), seed=21)
    assert cfg.modes == ["fwd", "bwd", "dynamic", "train"] and cfg.modes_per_model == 1
    drawn = [modes_of(cfg, i) for i in range(400)]
    assert all(len(m) == 1 for m in drawn) and drawn == [modes_of(cfg, i) for i in range(400)]
    numbers = [jobs._takes_numbers(cfg, i) for i in range(400)]  # python-scalar models: always dynamic
    assert all(m == ["dynamic"] for m, n in zip(drawn, numbers) if n)
    counts = {mode: sum(m == [mode] for m, n in zip(drawn, numbers) if not n) for mode in cfg.modes}
    assert all(60 <= n <= 110 for n in counts.values()), counts  # the other models: each mode about a quarter
    assert drawn != [modes_of(Config(out=str(tmp_path), seed=22), i) for i in range(400)]
    tests = jobs.tests_for(cfg, 3)
    assert [t["backend"] for t in tests] == ["inductor", "aot_eager"] and len({t["mode"] for t in tests}) == 1
    two = Config(out=str(tmp_path), seed=21, modes_per_model=2)
    assert all(len(modes_of(two, i)) == 2 for i in range(50))
    assert modes_of(Config(out=str(tmp_path), programs=str(tmp_path)), 0) == cfg.modes  # saved programs: all


def test_campaign_saved_before_the_mode_draw_keeps_every_mode_per_model(tmp_path):
    import io
    import json

    from fuzz.campaign.config import load_or_create

    (tmp_path / "campaign.json").write_text(json.dumps({"backends": ["inductor"], "modes": ["fwd", "bwd"], "seed": 3,
                                                        "nodes": 5, "device": "cpu", "programs": None}))
    cfg = Config(out=str(tmp_path))
    load_or_create(cfg, resume=True, stream=io.StringIO())
    assert cfg.modes == ["fwd", "bwd"] and cfg.modes_per_model == 0
    assert [t["test"] for t in jobs.tests_for(cfg, 7)] == ["s3-m000007-inductor-fwd", "s3-m000007-inductor-bwd"]


def _staged(store, cid, script, kind=Kind.CRASH):
    case = Case(id=cid, test_id=cid, kind=kind, backend="inductor", timeout_s=30, created="2026-01-01T00:00:00Z")
    store.stage_case(case, {}, repro=script)


def test_rechecks_run_each_repro_alone_and_mark_flaky_ones(tmp_path):
    store = CrashStore(tmp_path)
    _staged(store, "real", "import sys\nprint('REPRODUCED')\nsys.exit(1)\n")
    _staged(store, "flaky", "print('AGREE: eager and the backend agree')\n")
    _staged(store, "broken", "import sys\nsys.exit(1)\n")  # exit 1 without its REPRODUCED line: cannot run
    rc = Rechecker(store, threads=1)
    assert rc.recheck("real")[0] is True and rc.recheck("flaky")[0] is False and rc.recheck("broken")[0] is None
    rc.start()
    rc.queue("real")
    rc.queue("flaky")
    rc.finish(grace=60)
    assert rc.pending == 0
    real, flaky = (json.loads((tmp_path / c / "case.json").read_text()) for c in ("real", "flaky"))
    assert real["reproduces"] is True and not real["flaky"] and "REPRODUCED" in real["recheck"]
    assert flaky["reproduces"] is False and flaky["flaky"] is True
    store.close()


def test_progress_writes_stats_and_the_plot_series(tmp_path):
    cfg = Config(out=str(tmp_path), backends=["inductor"])
    store = CrashStore(tmp_path)
    store.record_test("t1", 0, Verdict(Kind.PASS, backend="inductor", mode="fwd"))
    store.record_test("t2", 0, Verdict(Kind.INVALID, "eager raised", backend="inductor", mode="fwd"))
    out = io.StringIO()
    progress = Progress(cfg, store, out)
    progress.count_test()
    progress.update(lambda: {"models": 1, "ops_covered": 3, "rechecks_pending": 0, "worker_restarts": 0}, force=True)
    progress.show(final=True)
    st = json.loads((tmp_path / "stats.json").read_text())
    assert st["tests"] == 2 and st["outcomes"]["pass"] == 1 and st["invalid"] == 1 and st["ops_covered"] == 3
    assert list(st["outcomes"]) == ["pass", "crash", "mismatch", "hang", "signal", "oom"]
    rows = list(csv.DictReader(open(tmp_path / "plot_data.csv")))
    assert list(rows[0]) == PLOT_COLUMNS and rows[0]["pass"] == "1" and rows[0]["invalid"] == "1"
    assert "2 tests" in out.getvalue() and "pass=1" in out.getvalue()
    store.close()
