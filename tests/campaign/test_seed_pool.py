"""The seed pool (fuzz.campaign.seeds): seeds kept on new features, mutant jobs handed out and
recorded, everything read back from the campaign folder (as --resume does)."""

import base64
import json

from fuzz.campaign.seeds import MEASURE_ENV, SeedPool


def _files(tag: str) -> dict:
    graph = {"version": 1, "tensors": {}, "nodes": [{"op": tag}], "outputs": [], "meta": {}}
    raw = {"graph.json": json.dumps(graph).encode(), "program.py": f"# {tag}\n".encode(),
           "inputs.safetensors": b"x", "params.safetensors": b"y"}
    return {k: base64.b64encode(v).decode() for k, v in raw.items()}


def _verdict(features, ms=0.2):
    return {"event": "verdict", "features": features, "feedback_ms": ms}


def test_new_features_make_seeds_and_old_ones_do_not(tmp_path):
    pool = SeedPool(tmp_path, "counters", seed=3)
    assert pool.on_verdict(_verdict(["a:1", "b:2"]), 0, _files("m0"), 10.0) == ["a:1", "b:2"]
    assert pool.on_verdict(_verdict(["a:1"]), 1, _files("m1"), 11.0) == []
    assert pool.on_verdict(_verdict(["a:1", "a:2"]), 2, _files("m2"), 12.5) == ["a:2"]  # a new bucket is new
    assert sorted(pool.seeds) == ["m000000", "m000002"]
    assert (tmp_path / "seeds" / "m000002" / "program.py").read_text() == "# m2\n"
    assert pool.seeds["m000000"]["origin"] == {"seed": 3, "index": 0, "policy": None}
    st = pool.stats()
    assert st["features"] == 3 and st["seeds"] == 2 and st["last_new_s"] == 12.5 and st["feedback_ms_mean"] == 0.2


def test_mutants_are_handed_out_recorded_credited_and_read_back(tmp_path):
    pool = SeedPool(tmp_path, "counters", seed=1)
    assert pool.job_extra(0, True) == {"feedback": "counters"}  # no seeds yet: a fresh model
    pool.on_verdict(_verdict(["a:1"]), 0, _files("m0"), 1.0)
    pool.on_verdict(_verdict(["b:1"]), 1, _files("m1"), 2.0)
    jobs = {i: pool.job_extra(i, True) for i in range(2, 42)}
    mutants = {i: j for i, j in jobs.items() if "mutation" in j}
    assert 4 <= len(mutants) <= 32  # a share of them (fresh models have done better so far here)
    for j in mutants.values():
        src = j["source"]
        assert j["mutation"]["seed"] in pool.seeds
        if j["mutation"]["mutator"] == "knobs":
            assert src["program_dir"].endswith(j["mutation"]["seed"]) and j["knobs"]
        else:
            assert src["mutant"]["mutator"] == j["mutation"]["mutator"]
    # fresh models keep the generator's numbering: none is skipped for a mutant
    fresh = [j["source"]["gen"]["index"] if "source" in j else i for i, j in jobs.items() if i not in mutants]
    assert fresh == list(range(2, 2 + len(fresh)))
    assert all(j["source"]["gen"]["seed"] == 1 for j in jobs.values() if "gen" in j.get("source", {}))
    i, job = next(iter(mutants.items()))
    pool.on_verdict(_verdict(["c:1"]), i, _files("mut"), 5.0)  # the mutant found something
    pool.on_verdict(_verdict(["c:1", "d:3"]), i, _files("mut"), 5.5)  # its second test: same model
    row = pool.credit["mutator"][job["mutation"]["mutator"]]
    assert row == {"tries": 1, "new": 1}  # per model: tries = mutant models, new = those with new features
    assert pool.seeds[job["mutation"]["seed"]]["finds"] == 1
    assert pool.seeds[f"m{i:06d}"]["from"] == job["mutation"]
    pool.save()
    again = SeedPool(tmp_path, "counters", seed=1)  # --resume
    assert again.features == pool.features and again.seeds == pool.seeds and again.credit == pool.credit
    assert again.job_extra(i, False) == job | {"feedback": "counters"}  # the same mutant again
    assert again.job_extra(i, True) == job | {"feedback": "counters"}
    assert again.knobs_of(i) == job["knobs"]
    last = max(jobs)  # a resumed campaign numbers fresh models as the first run did
    assert again.job_extra(last, False) == jobs[last] and again.gen_index(last + 1) == 2 + len(fresh)
    lines = (tmp_path / "seeds" / "jobs.jsonl").read_text().splitlines()
    assert len(lines) == len(mutants)


def test_off_collects_nothing_and_measure_counts_without_guiding(tmp_path, monkeypatch):
    off = SeedPool(tmp_path / "a", "off")
    assert off.job_extra(0, True) is None and off.on_verdict(_verdict(["a:1"]), 0, _files("m"), 1.0) == []
    assert off.stats() == {"mode": "off"} and not (tmp_path / "a" / "seeds").exists()
    monkeypatch.setenv(MEASURE_ENV, "coverage")
    blind = SeedPool(tmp_path / "b", "off")
    assert blind.job_extra(10, True) == {"feedback": "coverage", "coverage": True}
    assert blind.on_verdict(dict(_verdict(["a:1"]), coverage_lines=["torch/_inductor/x.py:3"]), 0, _files("m"), 1.0)
    assert not blind.seeds and all("source" not in (blind.job_extra(i, True) or {}) for i in range(1, 30))
    st = blind.stats()
    assert st["features"] == 1 and st["coverage_lines"] == 1 and st["measured_only"] == "coverage"


def test_campaign_knobs_are_set_for_every_job(tmp_path):
    pool = SeedPool(tmp_path, "off", knobs=["cpp_wrapper"])
    assert pool.job_extra(0, True) == {"knobs": {"cpp_wrapper": {"inductor.cpp_wrapper": True}}}
    assert pool.knobs_of(0) == {"cpp_wrapper": {"inductor.cpp_wrapper": True}}


def test_the_status_screen_shows_features_only_when_guided():
    from fuzz.campaign.status import feedback_text, render_line, render_lines

    st = {"elapsed_s": 300.0, "outcomes": {}, "workers": 1, "worker_restarts": 0, "seed": 0, "nodes": 5, "tests": 9,
          "tests_per_min": 1.8, "tests_per_min_last_minute": 2.0, "models": 5, "ops_covered": 12,
          "unique_signatures": 0, "cases_saved": 0, "rechecks_pending": 0, "flaky": 0, "invalid": 0,
          "backends": ["inductor"], "per_backend": {}}
    assert feedback_text(st) == "" and feedback_text(dict(st, feedback={"mode": "off"})) == ""
    guided = dict(st, feedback={"mode": "counters", "features": 812, "seeds": 97, "mutants": 40, "last_new_s": 288.0})
    assert feedback_text(guided) == "feedback: 812 features, 97 seeds, 40 mutants, last new 0m12s ago"
    assert feedback_text(guided) in render_lines(guided, 60) and "features=812" in render_line(guided, 60)
    assert not any("feedback" in line for line in render_lines(st, 60))


def test_a_failing_model_is_a_case_not_a_seed(tmp_path):
    pool = SeedPool(tmp_path, "counters")
    pool.on_verdict(dict(_verdict(["a:1"]), kind="pass"), 0, _files("m0"), 1.0)
    pool.on_verdict(dict(_verdict(["b:1"]), kind="crash"), 0, _files("m0"), 2.0)  # its second test fails
    pool.on_verdict(dict(_verdict(["c:1"]), kind="mismatch"), 1, _files("m1"), 3.0)
    pool.on_verdict(dict(_verdict(["d:1"]), kind="pass"), 1, _files("m1"), 4.0)
    assert pool.seeds == {} and len(pool.features) == 4  # its features still count as seen


def test_the_mutant_share_follows_new_features_per_second(tmp_path):
    pool = SeedPool(tmp_path, "counters")
    assert pool.mutant_share() == 0.5  # nothing known: even
    for m in range(10):  # fresh models: 10 s each, every one new
        pool.on_verdict(dict(_verdict([f"f{m}:1"]), elapsed_s=10.0), m, _files("m"), m)
    low = pool.mutant_share()
    assert low < 0.5
    for m in range(10, 50):  # mutants: 1 s each, every one new
        pool.jobs[m] = {"mutation": {"seed": "m000000", "mutator": "grow"}, "knobs": None}
        pool.on_verdict(dict(_verdict([f"g{m}:1"]), elapsed_s=1.0), m, _files("m"), m)
    assert pool.mutant_share() == 0.8 > low  # the upper bound
    assert pool.credit["source"]["fresh"] == {"tries": 10, "new": 10, "seconds": 100.0}
