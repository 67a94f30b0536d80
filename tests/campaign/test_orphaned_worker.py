"""A campaign worker whose parent dies (a driver killed with kill -9, a Ray actor killed with its
node) exits at once, even in the middle of a test that hangs."""

import json
import os
import signal
import subprocess
import sys
import time

import psutil

from test_campaign import env, make_programs

PARENT = r"""
import json, os, subprocess, sys, time
from fuzz.campaign import sandbox
r, w = os.pipe()
proc = sandbox.spawn([sys.executable, "-m", "fuzz.campaign.worker", "--result-fd", str(w), "--backends", "eager"],
                     2048, stdin=subprocess.PIPE, pass_fds=(w,))
os.close(w)
events = os.fdopen(r)
json.loads(events.readline())  # ready
job = {"job": "s0-m000000", "model": 0, "source": {"program_dir": sys.argv[1]},
       "tests": [{"test": "s0-m000000-_hang-fwd", "backend": "_hang", "mode": "fwd"}]}
proc.stdin.write((json.dumps(job) + "\n").encode()); proc.stdin.flush()
for line in events:
    if json.loads(line).get("phase") == "test":
        print(proc.pid, flush=True)  # the worker is inside the hanging compile now
        time.sleep(600)
"""


def test_a_worker_whose_parent_is_killed_exits_even_inside_a_hanging_test(tmp_path):
    progs = make_programs(tmp_path / "progs", 1)
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(progs / "p0")], stdout=subprocess.PIPE, text=True,
                              env=env())
    worker = None
    try:
        worker = psutil.Process(int(parent.stdout.readline()))
        assert worker.is_running()
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        gone, alive = psutil.wait_procs([worker], timeout=15)
        assert gone and not alive, "the orphaned worker is still running its hanging test"
    finally:
        parent.kill()
        if worker is not None and worker.is_running():
            worker.kill()
