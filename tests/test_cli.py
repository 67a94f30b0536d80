"""The ``assay`` command itself: every subcommand group is there, a bad flag is one line."""

import subprocess

GROUPS = ("traces", "rules", "gen", "fuzz", "triage", "verify")


def test_help_lists_every_group_and_each_group_has_help(assay):
    out = subprocess.run(assay + ["--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "COMMAND" in out.stdout
    listed = [line.split()[0] for line in out.stdout.splitlines() if line.startswith("    ") and line.split()]
    assert [g for g in listed if g in GROUPS] == list(GROUPS)
    for group in GROUPS:
        res = subprocess.run(assay + [group, "--help"], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0 and f"assay {group}" in res.stdout, res.stderr


def test_bad_flag_is_one_line_and_exit_2(assay):
    bad = subprocess.run(assay + ["--no-such-flag"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
