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
        assert "examples:\n  assay " in res.stdout, f"'assay {group} --help' shows no examples"


def test_bad_flag_is_one_line_and_exit_2(assay):
    bad = subprocess.run(assay + ["--no-such-flag"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_version_names_assay_torch_and_python(assay):
    res = subprocess.run(assay + ["--version"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0
    import torch

    assert res.stdout.startswith("assay ") and f"torch {torch.__version__}" in res.stdout and "python 3." in res.stdout


def test_ctrl_c_while_the_commands_load_is_one_line(monkeypatch, capsys):
    """An interrupt before any subcommand runs (while modules import) is 'interrupted', 130."""
    from fuzz import cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["rules", "stats"]) == 130
    assert capsys.readouterr().err == "assay: interrupted\n"


def test_ctrl_c_in_a_running_command_is_one_line(assay):
    import signal
    import time

    # A test run started in the background by a non-interactive shell (`make test &`) has SIGINT
    # ignored, and its children inherit that: Python then installs no KeyboardInterrupt handler and
    # the command never sees this Ctrl-C (it ran on and exited 0). A user's Ctrl-C comes with the
    # default disposition: restore it in the child, as tests/campaign/test_campaign.py does.
    proc = subprocess.Popen(assay + ["rules", "stats"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    import psutil

    child = psutil.Process(proc.pid)
    deadline = time.monotonic() + 60
    # past interpreter start-up and imports (~0.3 s of CPU), well inside the read (~3 s of CPU)
    while sum(child.cpu_times()[:2]) < 1.0 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err
    assert proc.returncode == 130 and err == "assay: interrupted\n"  # rules stats reads for seconds


def test_policy_flags_print_the_default_shares_a_campaign_draws_and_set_one_axis_each():
    import argparse

    from fuzz.commands import add_policy_flags, shares_from_args
    from fuzz.gen.policy import AXES, DEFAULT_SHARES

    p = argparse.ArgumentParser()
    add_policy_flags(p)
    text = "".join(p.format_help().split())  # argparse wraps lines anywhere
    for axis, shares in DEFAULT_SHARES.items():
        assert "default" + ",".join(f"{k}={v:g}" for k, v in shares.items()) in text, axis
    args = p.parse_args(["--forms", "forms=1", "--dtype-themes", "int8=1"])
    shares = shares_from_args(args)
    assert shares.to_json()["form"] == {"forms": 1.0} and shares.to_json()["dtype"] == {"int8": 1.0}
    assert shares.to_json()["shape"] == DEFAULT_SHARES["shape"] and set(DEFAULT_SHARES) == set(AXES)
