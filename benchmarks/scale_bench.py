#!/usr/bin/env python3
"""Scale: tests/min with batched compilation, and where one campaign driver saturates.

``batch`` part: inductor-only, fwd, one worker process. For each node count it runs the
same generated models (same seed) through the real worker (``fuzz.campaign.executor``'s
``LocalExecutor``, sandboxed, as a campaign does) once unbatched and once with ``--batch K``,
one after the other, each with its own empty inductor cache, and reports steady-state
tests/min (after the worker is ready and has run one warm-up model, which loads the rules,
to the last verdict: generation, references, compile and judging included) and the ratio
batched/unbatched.

``builds`` part: where a batched compile's time goes. In one process with the worker's
settings, the inductor compiles of the same models alone and batched by K: CPU seconds, and how
many of them are C++ builds (inductor builds each CPU kernel with its own ``g++`` run).

``driver`` part: what the driver itself spends per test (journal row, case staging and
finalising into the store, bytes of a case) measured on a real store, and from it the
tests/s one driver can take and the workers a 100-node campaign keeps busy.

``ray`` part (needs ``pip install assay[ray]``): tests/min of the same programs through
the local executor, a 1-node Ray cluster and a 2-node Ray cluster on this machine (same
total cores). See docs/distributed.md for the numbers and the exact commands.

    python benchmarks/scale_bench.py batch --nodes 5,10 --models 16 --batch 4,8
    python benchmarks/scale_bench.py builds --nodes 5,10 --models 16 --batch 2,4,8
    python benchmarks/scale_bench.py driver
    python benchmarks/scale_bench.py ray --models 24 --backends aot_eager
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _load() -> float:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # pragma: no cover
        return -1.0


def _cpu_s(pids) -> float | None:
    """CPU seconds (user + system) of the processes ``pids`` and their waited-for children (the
    ``g++`` runs of inductor's C++ builds), from /proc; None where /proc cannot tell."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return None
        total += sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime
    return total


def run_jobs(executor, jobs: list, expected: int, timeout: float = 3600, workers: int = 1, warm: list = ()) -> dict:
    """Start ``executor``, wait for ``workers`` ready workers and the ``warm`` jobs (one per worker:
    the generator loads its rules on a worker's first job), then submit ``jobs`` and time until
    ``expected`` verdicts: the steady state of a long campaign. Also the workers' CPU seconds over
    the same span (with their C++ builds): tests per CPU-minute, which other load on the machine
    changes far less than the wall time."""
    executor.start()
    kinds: dict = {}
    pids = []
    deadline = time.monotonic() + timeout
    try:
        while len(pids) < workers:
            for ev in executor.poll(0.5):
                if ev.get("event") == "worker" and ev.get("state") == "ready":
                    pids.append(ev.get("pid"))
            if time.monotonic() > deadline:
                raise RuntimeError("no worker became ready")
        for job in warm:
            executor.submit(job)
        while executor.in_flight() and time.monotonic() < deadline:
            executor.poll(0.5)
        cpu0 = _cpu_s(pids)
        t0 = time.monotonic()
        for job in jobs:
            executor.submit(job)
        got = 0
        while got < expected and time.monotonic() < deadline:
            for ev in executor.poll(0.5):
                if ev.get("event") == "verdict":
                    got += 1
                    kinds[ev["kind"]] = kinds.get(ev["kind"], 0) + 1
        elapsed = time.monotonic() - t0
        cpu1 = _cpu_s(pids)
    finally:
        executor.shutdown()
    tests = sum(n for k, n in kinds.items() if k != "genfail")
    cpu = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
    return {"tests": tests, "seconds": round(elapsed, 1), "tests_per_min": round(60 * tests / elapsed, 1),
            "cpu_s": cpu and round(cpu, 1), "tests_per_cpu_min": cpu and round(60 * tests / cpu, 1), "kinds": kinds}


def batch_part(args) -> list[dict]:
    from fuzz.campaign.batch import batch_jobs
    from fuzz.campaign.config import Config
    from fuzz.campaign.executor import LocalExecutor
    from fuzz.campaign.jobs import job_stream

    rows = []
    for nodes in args.nodes:
        row = {"nodes": nodes, "models": args.models}
        for k in (1, *args.batch):
            with tempfile.TemporaryDirectory(prefix="assay-scale-") as tmp:
                cfg = Config(out=tmp, backends=["inductor"], modes=["fwd"], seed=args.seed, nodes=nodes)
                stream = job_stream(cfg, set(), -1)
                warm = [next(stream)]  # model 0 warms the worker up; the measured models follow
                jobs = list(batch_jobs(itertools.islice(stream, args.models), k))
                env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(Path(tmp) / "inductor-cache"))
                ex = LocalExecutor(1, ["inductor"], timeout_s=600, mem_limit_mb=6144, threads=1, env=env,
                                   log_dir=Path(tmp) / "logs")
                load0 = _load()
                res = run_jobs(ex, jobs, args.models, warm=warm)
                batched_log = "".join(p.read_text(errors="replace") for p in (Path(tmp) / "logs").glob("*.log"))
            key = "unbatched" if k == 1 else f"batch{k}"
            row[key] = dict(res, load=[load0, _load()])
            if k != 1:
                row[key]["batch_lines"] = [ln for ln in batched_log.splitlines() if ln.startswith("assay batch")]
                row[key]["ratio"] = round(res["tests_per_min"] / max(row["unbatched"]["tests_per_min"], 1e-9), 2)
                if res["tests_per_cpu_min"] and row["unbatched"]["tests_per_cpu_min"]:
                    row[key]["cpu_ratio"] = round(res["tests_per_cpu_min"] / row["unbatched"]["tests_per_cpu_min"], 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def builds_one(args) -> dict:
    """In this process (the worker's settings: one thread, no compile pool): the inductor ``fwd``
    compiles of the measured models, alone (K=1) or batched by K, with the CPU seconds they take
    and how many of them are inductor's C++ builds (one ``g++`` run per kernel)."""
    import resource

    import torch
    import torch._inductor.config as inductor_config
    from torch._inductor import cpp_builder

    from fuzz.campaign import knobs
    from fuzz.campaign.batch import run_batched
    from fuzz.campaign.config import Config
    from fuzz.campaign.jobs import job_stream
    from fuzz.campaign.session import Session
    from fuzz.campaign.worker import load_model

    torch.set_num_threads(1)
    inductor_config.compile_threads = 1
    builds = {"n": 0, "cpu_s": 0.0}
    real_run = cpp_builder._run_compile_cmd

    def children_cpu():
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    def counted_run(cmd_line, *a, **kw):
        c0 = children_cpu()
        try:
            return real_run(cmd_line, *a, **kw)
        finally:
            if " -E " not in cmd_line:  # not the header preprocessing run
                builds["n"] += 1
                builds["cpu_s"] += children_cpu() - c0

    cpp_builder._run_compile_cmd = counted_run
    with tempfile.TemporaryDirectory(prefix="assay-builds-") as tmp:
        cfg = Config(out=tmp, backends=["inductor"], modes=["fwd"], seed=args.seed, nodes=args.nodes[0])
        stream = job_stream(cfg, set(), -1)
        Session(load_model(next(stream))).run_test("inductor", "fwd")  # warm-up model
        sessions = [Session(load_model(job)) for job in itertools.islice(stream, args.models)]
    plain = [s for s in sessions if not knobs.model_knobs(s.model.graph.meta)]  # as run_batch batches
    k = args.batch[0]
    builds.update(n=0, cpu_s=0.0)
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage0.ru_utime + usage0.ru_stime + children_cpu()
    passed = 0
    if k == 1:
        passed = sum(s.run_test("inductor", "fwd").kind == "pass" for s in plain)
    else:
        for g in range(0, len(plain), k):
            passed += sum(v is not None for v in run_batched(plain[g:g + k], "inductor"))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime + children_cpu() - cpu0
    return {"nodes": args.nodes[0], "K": k, "models": len(plain), "passed": passed, "compile_cpu_s": round(cpu, 1),
            "cpp_builds": builds["n"], "cpp_build_cpu_s": round(builds["cpu_s"], 1),
            "other_cpu_s": round(cpu - builds["cpu_s"], 1)}


def builds_part(args) -> list[dict]:
    """``builds_one`` for each node count and K, each in a fresh process with its own empty
    inductor cache (a process reuses the kernels it built before)."""
    import subprocess

    rows = []
    for nodes in args.nodes:
        for k in (1, *args.batch):
            with tempfile.TemporaryDirectory(prefix="assay-builds-cache-") as cache:
                cmd = [sys.executable, __file__, "builds", "--one", "--nodes", str(nodes), "--batch", str(k),
                       "--models", str(args.models), "--seed", str(args.seed)]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                                     env=dict(os.environ, TORCHINDUCTOR_CACHE_DIR=cache, PYTHONWARNINGS="ignore"))
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    return rows


def driver_part(args) -> dict:
    """Per-test costs of the campaign driver itself, on a real store (fsync'd SQLite, case folders)."""
    import base64

    from fuzz.campaign.config import Config
    from fuzz.campaign.driver import Campaign
    from fuzz.campaign.verdict import Kind, Verdict
    from fuzz.campaign.worker import load_model

    with tempfile.TemporaryDirectory(prefix="assay-driver-") as tmp:
        cfg = Config(out=str(Path(tmp) / "camp"), backends=["inductor"], recheck=False, keep_per_signature=10**6)
        camp = Campaign(cfg, stream=open(os.devnull, "w"))
        model = load_model({"source": {"gen": {"seed": 0, "index": 0, "shares": cfg.shares}}, "nodes": 5})
        files = {k: base64.b64encode(v).decode() for k, v in model.files.items()}
        model_event = {"event": "model", "job": "s0-m000000", "model": 0, "ok": True, "ops": model.graph.ops(),
                       "nodes": len(model.graph.nodes), "files": files}
        timings = {}

        def timed(name, n, make):
            t0 = time.perf_counter()
            for i in range(n):
                camp.on_event(make(i))
                camp.rechecks.drain()
            timings[name] = round(1000 * (time.perf_counter() - t0) / n, 3)

        def verdict(i, kind, detail="", diff=None):
            ev = Verdict(kind, detail, diff=diff, backend="inductor", mode="fwd", elapsed_s=1.0).to_event(
                "s0-m000000", f"s0-m{i:06d}-inductor-fwd-{kind.value}")
            return json.loads(json.dumps(ev))  # as it arrives: decoded from the worker's JSON line

        model_bytes = len(json.dumps(model_event))
        # a model's files arrive once per model (its ops may be new: one meta row)
        timed("model_event_ms", 20, lambda i: json.loads(json.dumps(dict(model_event, model=i))))
        timed("pass_ms", args.tests, lambda i: verdict(i, Kind.PASS))
        diff = {"where": "out0", "index": [0], "max_abs": 1.0}
        timed("failure_with_case_ms", args.cases, lambda i: verdict(i, Kind.MISMATCH, "values", diff))
        camp.cfg.keep_per_signature = 0
        timed("failure_counted_only_ms", args.tests, lambda i: verdict(args.cases + i, Kind.MISMATCH, "values", diff))
        case_dirs = [d for d in Path(cfg.out).iterdir() if (d / "case.json").exists()]
        case_bytes = sum(f.stat().st_size for d in case_dirs for f in d.iterdir()) / max(1, len(case_dirs))
        camp.store.close()
    per_test_ms = timings["pass_ms"] + timings["model_event_ms"] / 2  # a model event per 2 tests (2 backends)
    result = {"timings_ms": timings, "model_event_bytes": model_bytes, "case_bytes": round(case_bytes),
              "driver_tests_per_s_all_pass": round(1000 / per_test_ms, 1),
              "driver_tests_per_s_1pct_cases": round(1000 / (0.99 * per_test_ms + 0.01 * timings["failure_with_case_ms"]), 1)}
    print(json.dumps(result, indent=1))
    return result


def ray_part(args) -> list[dict]:
    """tests/min: the local executor (2 workers), Ray with one 2-CPU node, Ray with two 1-CPU nodes."""
    sys.path.insert(0, str(REPO / "tests" / "campaign"))
    from ray_cluster import Cluster

    from fuzz.campaign.config import Config
    from fuzz.campaign.executor import LocalExecutor
    from fuzz.campaign.jobs import job_stream
    from fuzz.campaign.ray_executor import RayExecutor

    backends = args.backends.split(",")
    rows = []
    for setup in ("local", "ray-1-node", "ray-2-nodes"):
        with tempfile.TemporaryDirectory(prefix="assay-raybench-") as tmp:
            cfg = Config(out=tmp, backends=backends, modes=["fwd"], seed=args.seed, nodes=args.nodes)
            stream = job_stream(cfg, set(), -1)
            # two per worker: a Ray actor takes two jobs at a time, so each one surely gets one (the
            # generator loads its rules on a worker's first job: ~10 s, not steady state)
            warm = list(itertools.islice(stream, 4))
            jobs = list(itertools.islice(stream, args.models))
            cluster = None
            load0 = _load()
            cache = {"TORCHINDUCTOR_CACHE_DIR": str(Path(tmp) / "inductor-cache")}  # every compile a real one
            if setup == "local":
                ex = LocalExecutor(2, backends, timeout_s=600, mem_limit_mb=4096, threads=1,
                                   log_dir=Path(tmp) / "logs", env=dict(os.environ, **cache))
            else:
                cluster = Cluster(Path(tmp) / "ray", cpus=(2,) if setup == "ray-1-node" else (1, 1), env=cache)
                ex = RayExecutor(2, backends, address=cluster.address, timeout_s=600, mem_limit_mb=4096)
            try:
                res = run_jobs(ex, jobs, args.models * len(backends), workers=2, warm=warm)
            finally:
                if cluster:
                    cluster.stop()
        row = dict(res, setup=setup, load=[load0, _load()])
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="part", required=True)
    b = sub.add_parser("batch", help="tests/min unbatched vs --batch K (inductor, fwd, one worker)")
    b.add_argument("--nodes", type=lambda s: [int(x) for x in s.split(",")], default=[5, 10])
    b.add_argument("--models", type=int, default=16)
    b.add_argument("--batch", type=lambda s: [int(x) for x in s.split(",")], default=[4, 8])
    b.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("builds", help="in one process: compile CPU seconds and C++ builds, alone vs batched by K")
    c.add_argument("--nodes", type=lambda s: [int(x) for x in s.split(",")], default=[10])
    c.add_argument("--models", type=int, default=16)
    c.add_argument("--batch", type=lambda s: [int(x) for x in s.split(",")], default=[2, 4, 8])
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # builds_part's child process
    d = sub.add_parser("driver", help="per-test driver costs on a real store; saturation estimate")
    d.add_argument("--tests", type=int, default=300)
    d.add_argument("--cases", type=int, default=30)
    r = sub.add_parser("ray", help="tests/min: local executor vs Ray with 1 and 2 local nodes (2 workers each)")
    r.add_argument("--models", type=int, default=24)
    r.add_argument("--nodes", type=int, default=5)
    r.add_argument("--backends", default="aot_eager")
    r.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.part == "batch":
        rows = batch_part(args)
        print("\n| nodes | models | K | unbatched tests/min | batched tests/min | ratio | unbatched tests/CPU-min "
              "| batched tests/CPU-min | CPU ratio | load (1-min avg) |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for row in rows:
            one = row["unbatched"]
            for k in args.batch:
                b = row[f"batch{k}"]
                print(f"| {row['nodes']} | {row['models']} | {k} | {one['tests_per_min']} | {b['tests_per_min']} | "
                      f"{b['ratio']}x | {one['tests_per_cpu_min']} | {b['tests_per_cpu_min']} | {b.get('cpu_ratio')}x | "
                      f"{one['load'][0]}-{b['load'][1]} |")
    elif args.part == "builds" and args.one:
        print(json.dumps(builds_one(args)))
    elif args.part == "builds":
        rows = builds_part(args)
        print("\n| nodes | K | models | passed | compile CPU s | C++ builds | their CPU s | other CPU s |")
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['nodes']} | {r['K']} | {r['models']} | {r['passed']} | {r['compile_cpu_s']} | "
                  f"{r['cpp_builds']} | {r['cpp_build_cpu_s']} | {r['other_cpu_s']} |")
    elif args.part == "driver":
        driver_part(args)
    else:
        rows = ray_part(args)
        base = rows[0]["tests_per_min"]
        print("\n| executor | tests | seconds | tests/min | vs local | load (1-min avg) |")
        print("|---|---|---|---|---|---|")
        for row in rows:
            print(f"| {row['setup']} | {row['tests']} | {row['seconds']} | {row['tests_per_min']} | "
                  f"{round(row['tests_per_min'] / max(base, 1e-9), 2)}x | {row['load'][0]}-{row['load'][1]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
