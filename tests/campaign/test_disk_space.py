"""A campaign stops before the disk fills (fuzz.campaign.diskspace): on a full disk a compile fails
with a C++ error that would be saved as a compiler crash (the eighteenth session's test run met
one: 81 MB free, AOTInductor's precompiled header could not be written)."""

import json
import os

from fuzz.campaign.diskspace import MIN_FREE_MB, min_free_mb, short_of_space


def test_the_floor_is_read_from_the_environment_and_names_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_MIN_FREE_MB", "0")
    assert short_of_space(tmp_path) is None
    monkeypatch.setenv("ASSAY_MIN_FREE_MB", str(10**12))  # more than any disk has
    why = short_of_space(tmp_path)
    assert why and "MB free on the campaign folder" in why and str(tmp_path) in why and "ASSAY_MIN_FREE_MB" in why
    monkeypatch.setenv("ASSAY_MIN_FREE_MB", "lots")  # not a number: the default floor
    assert min_free_mb() == MIN_FREE_MB == 1024


def test_a_campaign_short_of_space_stops_with_one_line_and_keeps_its_folder(tmp_path, run_assay):
    out = tmp_path / "camp"
    env = dict(os.environ, ASSAY_MIN_FREE_MB=str(10**12))
    res = run_assay("fuzz", "--time", "2m", "--workers", "1", "--backends", "aot_eager", "--out", out, env=env,
                    timeout=300)
    assert res.returncode == 4, res.stderr[-2000:]
    assert "stopped: only" in res.stderr and f"--resume {out}" in res.stderr and "Traceback" not in res.stderr
    assert json.loads((out / "campaign.json").read_text())["seed"] is not None  # the folder is a campaign
    res = run_assay("fuzz", "--resume", out, "--time", "20s", env=dict(os.environ, ASSAY_MIN_FREE_MB="0"), timeout=300)
    assert res.returncode in (0, 1), res.stderr[-2000:]  # with space again it resumes and runs
