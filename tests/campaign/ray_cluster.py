"""A real Ray cluster on 127.0.0.1 for the Ray executor's tests and ``benchmarks/scale_bench.py``:
a head and worker nodes, each a ``ray start --block`` process of the caller, so stopping a node
is killing its process tree (never a machine-wide ``ray stop``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]
RAY = Path(sys.executable).parent / "ray"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_env(extra: dict | None = None) -> dict:
    """Environment of the nodes (their actors inherit it): Assay importable, quick node-death checks."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
                PYTHONWARNINGS="ignore", RAY_health_check_period_ms="500", RAY_health_check_timeout_ms="1000",
                RAY_health_check_failure_threshold="4", RAY_USAGE_STATS_ENABLED="0", **(extra or {}))


def nodes_alive(address: str, env: dict) -> int:
    code = (f"import ray; ray.init(address={address!r}, logging_level='ERROR', log_to_driver=False); "
            "print(sum(n['Alive'] for n in ray.nodes()))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    return int(res.stdout.strip() or 0) if res.returncode == 0 else 0


def kill_tree(proc) -> None:
    try:
        procs = psutil.Process(proc.pid).children(recursive=True) + [psutil.Process(proc.pid)]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=30)


class Cluster:
    """``Cluster(temp_dir, cpus=[1, 1], env=...)``: a head with ``cpus[0]`` CPUs, then one worker
    node per further entry; ``address``, ``nodes`` (the ``ray start`` processes), ``stop()``."""

    def __init__(self, temp_dir, cpus=(1, 1), env: dict | None = None, timeout: float = 180):
        self.env = node_env(env)
        self.address = f"127.0.0.1:{free_port()}"
        self.nodes: list = []
        common = ["--node-ip-address", "127.0.0.1", "--block", "--disable-usage-stats"]
        try:
            deadline = time.time() + timeout
            for i, n in enumerate(cpus):
                where = (["--head", "--port", self.address.split(":")[1], "--include-dashboard", "false",
                          "--temp-dir", str(temp_dir)] if i == 0 else ["--address", self.address])
                proc = subprocess.Popen([str(RAY), "start", *where, "--num-cpus", str(n), *common], env=self.env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
                self.nodes.append(proc)
                while nodes_alive(self.address, self.env) < i + 1:
                    if proc.poll() is not None or time.time() > deadline:
                        raise RuntimeError(f"Ray node {i} did not start")
                    time.sleep(1)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for proc in reversed(self.nodes):
            kill_tree(proc)
