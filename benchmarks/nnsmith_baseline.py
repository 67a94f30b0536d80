#!/usr/bin/env python3
"""NNSmith baseline harness for Assay's benchmarks.

Measures NNSmith (https://github.com/ise-uiuc/nnsmith, reference commit
bc0af42) on this machine, the way NNSmith's own API does it:

* ``gen``  -- generator speed: ``nnsmith.graph_gen.model_gen`` (Z3 solving,
  method ``symbolic-cinit``) + ``make_concrete`` + ``TorchModelCPU.from_gir``
  + ``refine_weights`` (NNSmith's gradient-guided value search,
  ``PracticalHybridSearch``, 20 ms / 2 samples, on by default) +
  ``make_oracle`` (one eager run).  This is exactly the body of
  ``nnsmith.cli.model_gen`` / ``FuzzingLoop.make_testcase``.
* ``fuzz`` -- single-process fuzz loop against ``torch.compile`` (inductor)
  through NNSmith's ``pt2`` backend: make_testcase, then
  ``checked_compile`` / ``checked_exec`` / ``verify_results`` (what
  ``verify_testcase`` -> ``checked_compile_and_exec`` does with the default
  ``fuzz.crash_safe=false``), for a fixed wall time.

NNSmith is *not* installed or built by this script.  Pass a checkout with
``--nnsmith-src DIR`` (default: ``$NNSMITH_SRC``); the directory is only put on
``sys.path`` of a worker subprocess.  The worker runs under ``--python``
(default: ``$NNSMITH_PYTHON`` or ``sys.executable``), which must have NNSmith's
runtime deps (torch, z3-solver, numpy, omegaconf, appdirs, multipledispatch).

CLI::

    python benchmarks/nnsmith_baseline.py gen  --nnsmith-src DIR --nodes 5,10,20 --models 1000 --json
    python benchmarks/nnsmith_baseline.py fuzz --nnsmith-src DIR --nodes 5,10 --seconds 120 --json

Library (used by benchmarks/gen_bench.py and benchmarks/fuzz_bench.py)::

    from benchmarks.nnsmith_baseline import nnsmith_gen_stats, nnsmith_fuzz_stats, NNSmithUnavailable
    nnsmith_gen_stats(src, [5, 10, 20], 1000, seed=0)  # -> {"gen": {"5": {...}, ...}, "meta": {...}}
    nnsmith_fuzz_stats(src, [5, 10], 120, seed=0)      # -> {"fuzz": {"5": {...}, ...}, "meta": {...}}

Both raise ``NNSmithUnavailable`` (one-line message) when the checkout or its
Python deps are missing.  See docs/benchmarks-nnsmith.md for measured numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Iterable, List, Optional, Sequence, Union

NNSMITH_REF_COMMIT = "bc0af42"
DEFAULT_CACHE_DIR = os.path.join(tempfile.gettempdir(), "nnsmith-baseline-cache")

Nodes = Union[int, str, Sequence[int]]


class NNSmithUnavailable(RuntimeError):
    """NNSmith checkout or its Python dependencies are not available."""


# --------------------------------------------------------------------------
# Parent side (no NNSmith / torch import here: safe to import from Assay).
# --------------------------------------------------------------------------


def _norm_nodes(nodes: Nodes) -> List[int]:
    if isinstance(nodes, int):
        return [nodes]
    if isinstance(nodes, str):
        return [int(x) for x in nodes.replace(" ", "").split(",") if x]
    return [int(x) for x in nodes]


def resolve_src(src: Optional[str]) -> str:
    """Return an absolute NNSmith checkout path or raise NNSmithUnavailable."""
    src = src or os.environ.get("NNSMITH_SRC")
    if not src:
        raise NNSmithUnavailable(
            "no NNSmith checkout given (pass --nnsmith-src DIR or set NNSMITH_SRC; "
            "see benchmarks/README.md)"
        )
    src = os.path.abspath(os.path.expanduser(src))
    if not os.path.isfile(os.path.join(src, "nnsmith", "graph_gen.py")):
        raise NNSmithUnavailable(
            f"{src} is not an NNSmith checkout (no nnsmith/graph_gen.py)"
        )
    if not os.path.isfile(os.path.join(src, "nnsmith", "backends", "pt2.py")):
        raise NNSmithUnavailable(
            f"{src}: NNSmith checkout lacks the torch.compile backend "
            f"(nnsmith/backends/pt2.py); use commit {NNSMITH_REF_COMMIT}"
        )
    return src


def _src_commit(src: str) -> Optional[str]:
    try:
        out = subprocess.run(
            ["git", "-C", src, "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if out.returncode == 0:
            return out.stdout.strip()
    except Exception:
        pass
    return None


def _run_worker(
    mode: str,
    src: Optional[str],
    nodes: Nodes,
    seed: int,
    python: Optional[str],
    extra: List[str],
    cache_dir: Optional[str],
    timeout: Optional[float],
    quiet: bool = True,
) -> dict:
    src = resolve_src(src)
    python = python or os.environ.get("NNSMITH_PYTHON") or sys.executable
    with tempfile.TemporaryDirectory(prefix="nnsmith-baseline-") as tmp:
        out_path = os.path.join(tmp, "result.json")
        log_path = os.path.join(tmp, "worker.log")
        cmd = [
            python,
            os.path.abspath(__file__),
            "_worker",
            mode,
            "--nnsmith-src",
            src,
            "--nodes",
            ",".join(str(n) for n in _norm_nodes(nodes)),
            "--seed",
            str(seed),
            "--cache-dir",
            cache_dir or DEFAULT_CACHE_DIR,
            "--out",
            out_path,
        ] + extra
        env = dict(os.environ)
        env.setdefault("PYTHONWARNINGS", "ignore")
        with open(log_path, "w") as log:
            try:
                proc = subprocess.run(
                    cmd,
                    stdout=log if quiet else None,
                    stderr=subprocess.STDOUT if quiet else None,
                    env=env,
                    timeout=timeout,
                )
            except FileNotFoundError:
                raise NNSmithUnavailable(f"python interpreter not found: {python}")
            except subprocess.TimeoutExpired:
                raise RuntimeError(f"NNSmith {mode} worker timed out after {timeout}s")
        result = None
        if os.path.exists(out_path):
            with open(out_path) as f:
                result = json.load(f)
        if result is not None and result.get("unavailable"):
            raise NNSmithUnavailable(result["unavailable"])
        if proc.returncode != 0 or result is None:
            tail = ""
            if os.path.exists(log_path):
                with open(log_path, errors="replace") as f:
                    tail = f.read()[-3000:]
            raise RuntimeError(
                f"NNSmith {mode} worker failed (rc={proc.returncode}); log tail:\n{tail}"
            )
        commit = _src_commit(src)
        result.setdefault("meta", {})["nnsmith_commit"] = commit
        result["meta"]["nnsmith_src"] = src
        result["meta"]["python"] = python
        return result


def nnsmith_gen_stats(
    src: Optional[str],
    nodes: Nodes = (5, 10, 20),
    models: int = 1000,
    seed: int = 0,
    python: Optional[str] = None,
    cache_dir: Optional[str] = None,
    timeout: Optional[float] = None,
) -> dict:
    """Generator speed/diversity of NNSmith (runs in a subprocess).

    Returns ``{"gen": {"<nodes>": {median_ms, models_per_s, eager_valid,
    nonfinite, op_types, aten_ops, ...}}, "meta": {...}}``.
    Raises NNSmithUnavailable if the checkout / deps are missing.
    """
    return _run_worker(
        "gen", src, nodes, seed, python, ["--models", str(models)], cache_dir, timeout
    )


def nnsmith_fuzz_stats(
    src: Optional[str],
    nodes: Nodes = (5, 10),
    seconds: float = 120,
    seed: int = 0,
    python: Optional[str] = None,
    cache_dir: Optional[str] = None,
    opset: str = "backend",
    timeout: Optional[float] = None,
) -> dict:
    """Single-process NNSmith fuzz loop vs torch.compile/inductor (subprocess).

    ``opset="backend"`` (NNSmith's default) derives the op/dtype set by
    compiling every single-op model with inductor once (slow, cached in
    ``cache_dir``); ``opset="eager"`` uses the eager-only (exportable) op set.
    Returns ``{"fuzz": {"<nodes>": {tests, tests_per_min, reports, ...}}, "meta": {...}}``.
    """
    return _run_worker(
        "fuzz",
        src,
        nodes,
        seed,
        python,
        ["--seconds", str(seconds), "--opset", opset],
        cache_dir,
        timeout,
    )


# --------------------------------------------------------------------------
# Worker side (runs under the NNSmith interpreter).
# --------------------------------------------------------------------------


def _median(xs):
    xs = sorted(xs)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def _pct(xs, q):
    xs = sorted(xs)
    if not xs:
        return None
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def _loadavg():
    try:
        return list(os.getloadavg())
    except OSError:
        return None


class _Env:
    """Imports NNSmith from a checkout and sets up its torch model type."""

    def __init__(self, src: str, cache_dir: str):
        import logging
        import warnings

        warnings.filterwarnings("ignore")
        sys.path.insert(0, src)
        try:
            import nnsmith  # noqa: F401
            import nnsmith.narrow_spec as narrow_spec
            from nnsmith.graph_gen import model_gen
            from nnsmith.materialize import BugReport, Model, TestCase
            from nnsmith.util import set_seed
        except ImportError as e:  # missing dep of NNSmith
            raise NNSmithUnavailable(
                f"cannot import NNSmith from {src} with {sys.executable}: {e} "
                "(NNSmith needs torch, z3-solver, numpy, omegaconf, appdirs, multipledispatch; "
                "use --python / NNSMITH_PYTHON to pick an interpreter that has them)"
            )
        import torch

        for name in ("dtest", "mgen", "fuzz", "exec", "core", "smt", "gen|torch"):
            logging.getLogger(name).setLevel(logging.ERROR)
        # NNSmith caches its op/dtype "topset" under appdirs' user cache dir;
        # keep it under cache_dir instead (runtime patch, checkout untouched).
        os.makedirs(cache_dir, exist_ok=True)
        narrow_spec.NNSMITH_CACHE_DIR = cache_dir
        self.narrow_spec = narrow_spec
        self.model_gen = model_gen
        self.BugReport = BugReport
        self.TestCase = TestCase
        self.set_seed = set_seed
        self.torch = torch
        self.ModelType = Model.init("torch", backend_target="cpu")
        self.ModelType.add_seed_setter()
        self.src = src

    def opset(self, factory):
        t0 = time.perf_counter()
        name = self.narrow_spec.get_cache_name(self.ModelType, factory, False)
        cached = os.path.exists(
            os.path.join(self.narrow_spec.NNSMITH_CACHE_DIR, name + ".yaml")
        )
        ops = self.narrow_spec.auto_opset(self.ModelType, factory, vulops=False)
        return ops, {
            "topset": name,
            "topset_cached": cached,
            "topset_s": round(time.perf_counter() - t0, 2),
            "opset_size": len(ops),
        }

    def make_testcase(self, opset, nodes, seed):
        """FuzzingLoop.make_testcase with the default mgen config."""
        gen = self.model_gen(
            opset=opset,
            method="symbolic-cinit",
            seed=seed,
            max_elem_per_tensor=65536,
            max_nodes=nodes,
            timeout_ms=10000,
            rank_choices=None,
            dtype_choices=None,
        )
        ir = gen.make_concrete()
        model = self.ModelType.from_gir(ir)
        model.refine_weights()
        model.set_grad_check(False)
        oracle = model.make_oracle()
        return ir, model, oracle


def _op_names(ir):
    from nnsmith.abstract.op import Constant, Input, Placeholder

    names = []
    for inst in ir.insts:
        op = inst.iexpr.op
        if isinstance(op, (Input, Constant, Placeholder)):
            continue
        names.append(type(op).name())
    return names


def _worker_gen(env: _Env, nodes: List[int], models: int, seed: int) -> dict:
    import random

    import numpy as np
    from torch.utils._python_dispatch import TorchDispatchMode

    torch = env.torch

    class AtenCounter(TorchDispatchMode):
        def __init__(self, sink):
            super().__init__()
            self.sink = sink

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.sink.add(func._schema.name)
            return func(*args, **(kwargs or {}))

    opset, setup = env.opset(None)  # as `nnsmith.model_gen` without backend
    out = {}
    all_ops, all_aten = set(), set()
    for n in nodes:
        env.set_seed(seed)
        wall, cpu, t_gen, t_refine, t_eager = [], [], [], [], []
        ok = nonfinite = failed = 0
        op_types, aten_ops = set(), set()
        actual_nodes = []
        errors = {}
        t_size = time.perf_counter()
        for _ in range(models):
            mseed = random.getrandbits(32)
            w0, c0 = time.perf_counter(), time.process_time()
            try:
                gen = env.model_gen(
                    opset=opset,
                    method="symbolic-cinit",
                    seed=mseed,
                    max_elem_per_tensor=65536,
                    max_nodes=n,
                    timeout_ms=10000,
                    rank_choices=None,
                    dtype_choices=None,
                )
                w1 = time.perf_counter()
                ir = gen.make_concrete()
                model = env.ModelType.from_gir(ir)
                w2 = time.perf_counter()
                model.refine_weights()
                w3 = time.perf_counter()
                model.set_grad_check(False)
                oracle = model.make_oracle()  # the one eager run
                w4, c4 = time.perf_counter(), time.process_time()
            except Exception as e:  # NNSmith counts these as n_fail_make_test
                failed += 1
                k = type(e).__name__
                errors[k] = errors.get(k, 0) + 1
                continue
            ok += 1
            wall.append((w4 - w0) * 1e3)
            cpu.append((c4 - c0) * 1e3)
            t_gen.append((w2 - w0) * 1e3)
            t_refine.append((w3 - w2) * 1e3)
            t_eager.append((w4 - w3) * 1e3)
            names = _op_names(ir)
            actual_nodes.append(len(names))
            op_types.update(names)
            outs = [v for v in oracle.output.values() if v is not None]
            if any(
                (np.issubdtype(v.dtype, np.floating) or np.issubdtype(v.dtype, np.complexfloating))
                and not np.isfinite(v).all()
                for v in outs
            ):
                nonfinite += 1
            # aten ops of the eager run: re-run the same forward under a
            # counting dispatch mode, outside the timed region.
            sink = set()
            try:
                with torch.no_grad(), AtenCounter(sink):
                    model.torch_model.eval()
                    model.torch_model.forward(
                        *[torch.from_numpy(v) for v in oracle.input.values()]
                    )
            except Exception:
                pass
            aten_ops.update(sink)
        total_s = time.perf_counter() - t_size
        print(f"[nnsmith_baseline] gen nodes={n}: {ok}/{models} in {total_s:.1f}s", file=sys.stderr, flush=True)
        all_ops |= op_types
        all_aten |= aten_ops
        med = _median(wall)
        out[str(n)] = {
            "models": models,
            "generated": ok,
            "failed_make_testcase": failed,
            "failure_kinds": errors,
            "median_ms": round(med, 2) if med else None,
            "p90_ms": round(_pct(wall, 0.9), 2) if wall else None,
            "mean_ms": round(sum(wall) / len(wall), 2) if wall else None,
            "models_per_s": round(1e3 / med, 2) if med else None,
            "models_per_s_mean": round(len(wall) / (sum(wall) / 1e3), 2) if wall else None,
            "median_cpu_ms": round(_median(cpu), 2) if cpu else None,
            "median_gen_ms": round(_median(t_gen), 2) if t_gen else None,
            "median_refine_ms": round(_median(t_refine), 2) if t_refine else None,
            "median_eager_ms": round(_median(t_eager), 2) if t_eager else None,
            "median_nodes": _median(actual_nodes),
            "eager_valid": round(ok / models, 4) if models else None,
            "nonfinite": round(nonfinite / ok, 4) if ok else None,
            "op_types": len(op_types),
            "aten_ops": len(aten_ops),
            "wall_s": round(total_s, 1),
        }
    return {
        "gen": out,
        "gen_all_sizes": {"op_types": len(all_ops), "aten_ops": len(all_aten)},
        "setup": setup,
    }


def _worker_fuzz(
    env: _Env, nodes: List[int], seconds: float, seed: int, opset_kind: str
) -> dict:
    import random

    from nnsmith.backends.factory import BackendFactory

    torch = env.torch
    # `nnsmith.fuzz backend.type=pt2 backend.target=cpu` -> inductor by default
    factory = BackendFactory.init(
        "pt2", target="cpu", optmax=True, parse_name=True
    )
    opset, setup = env.opset(factory if opset_kind == "backend" else None)
    setup["opset_kind"] = opset_kind
    setup["backend"] = f"pt2 backend={factory.backend} mode={factory.mode}"

    # Warm-up: one compile outside the timed window (inductor's one-off
    # start-up: C++ toolchain probing, header precompile, worker pools).
    env.set_seed(seed)
    w0 = time.perf_counter()
    try:
        ir, model, oracle = env.make_testcase(opset, 2, random.getrandbits(32))
        fn = factory.checked_compile(env.TestCase(model, oracle))
        if not isinstance(fn, env.BugReport):
            factory.checked_exec(fn, env.TestCase(model, oracle))
    except Exception:
        pass
    setup["warmup_s"] = round(time.perf_counter() - w0, 2)

    out = {}
    for n in nodes:
        env.set_seed(seed)
        t_gen = t_compile = t_exec = t_verify = 0.0
        tests = failed_make = 0
        reports = {}
        samples = []
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            mseed = random.getrandbits(32)
            g0 = time.perf_counter()
            try:
                ir, model, oracle = env.make_testcase(opset, n, mseed)
            except Exception:
                failed_make += 1
                t_gen += time.perf_counter() - g0
                continue
            g1 = time.perf_counter()
            t_gen += g1 - g0
            tc = env.TestCase(model, oracle)
            # == verify_testcase(cmp.with=None, crash_safe=False, equal_nan=True)
            rep = factory.checked_compile(tc)
            g2 = time.perf_counter()
            t_compile += g2 - g1
            if not isinstance(rep, env.BugReport):
                res = factory.checked_exec(rep, tc)
                g3 = time.perf_counter()
                t_exec += g3 - g2
                rep = res
                if not isinstance(res, env.BugReport) and oracle.output is not None:
                    rep = factory.verify_results(res, tc, equal_nan=True)
                    t_verify += time.perf_counter() - g3
            tests += 1
            print(f"[nnsmith_baseline] fuzz nodes={n}: test {tests} "
                  f"{type(rep).__name__ if rep is not None else 'pass'}", file=sys.stderr, flush=True)
            if isinstance(rep, env.BugReport):
                key = f"{rep.symptom.value}-{rep.stage.value}"
                reports[key] = reports.get(key, 0) + 1
                if len(samples) < 5:
                    last = [l for l in (rep.log or "").strip().splitlines() if l.strip()]
                    samples.append(
                        {"kind": key, "seed": mseed, "ops": _op_names(ir),
                         "msg": (last[-1] if last else "")[:300]}
                    )
        elapsed = time.perf_counter() - start
        busy = t_gen + t_compile + t_exec + t_verify
        out[str(n)] = {
            "seconds": round(elapsed, 1),
            "tests": tests,
            "tests_per_min": round(tests * 60 / elapsed, 1),
            "failed_make_testcase": failed_make,
            "reports": sum(reports.values()),
            "report_kinds": reports,
            "report_samples": samples,
            # torch.compile is lazy: make_backend only wraps the fx graph;
            # dynamo + inductor compile on the first call, i.e. in "run".
            "time_share": {
                "gen": round(t_gen / busy, 3) if busy else None,
                "make_backend": round(t_compile / busy, 3) if busy else None,
                "run_incl_compile": round(t_exec / busy, 3) if busy else None,
                "verify": round(t_verify / busy, 3) if busy else None,
                "compile": round((t_compile + t_exec) / busy, 3) if busy else None,
            },
            "mean_gen_s": round(t_gen / max(1, tests + failed_make), 3),
            "mean_compile_run_s": round((t_compile + t_exec) / tests, 3) if tests else None,
        }
        try:
            torch._dynamo.reset()
        except Exception:
            pass
    return {"fuzz": out, "setup": setup}


def _worker_main(args) -> int:
    def dump(obj):
        with open(args.out, "w") as f:
            json.dump(obj, f)

    try:
        env = _Env(args.nnsmith_src, args.cache_dir)
    except NNSmithUnavailable as e:
        dump({"unavailable": str(e)})
        return 3
    nodes = _norm_nodes(args.nodes)
    t0 = time.time()
    load0 = _loadavg()
    if args.mode == "gen":
        res = _worker_gen(env, nodes, args.models, args.seed)
    else:
        res = _worker_fuzz(env, nodes, args.seconds, args.seed, args.opset)
    import platform

    res["meta"] = {
        "torch": env.torch.__version__,
        "python_version": platform.python_version(),
        "z3": __import__("z3").get_version_string(),
        "seed": args.seed,
        "cpu_count": os.cpu_count(),
        "torch_threads": env.torch.get_num_threads(),
        "loadavg_start": load0,
        "loadavg_end": _loadavg(),
        "wall_s": round(time.time() - t0, 1),
        "cache_dir": args.cache_dir,
    }
    dump(res)
    return 0


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------


def _print_gen(res: dict) -> None:
    cols = [
        ("nodes", None), ("models", "generated"), ("median_ms", "median_ms"),
        ("models/s", "models_per_s"), ("cpu_ms", "median_cpu_ms"),
        ("gen_ms", "median_gen_ms"), ("refine_ms", "median_refine_ms"),
        ("eager_ms", "median_eager_ms"), ("eager_ok", "eager_valid"),
        ("nan/inf", "nonfinite"), ("op_types", "op_types"), ("aten_ops", "aten_ops"),
    ]
    print("NNSmith generator (model_gen + refine_weights + one eager run)")
    print("  ".join(f"{c:>9}" for c, _ in cols))
    for n, row in res["gen"].items():
        vals = [n] + [row.get(k) for _, k in cols[1:]]
        print("  ".join(f"{('-' if v is None else v)!s:>9}" for v in vals))
    a = res.get("gen_all_sizes", {})
    print(f"all sizes: {a.get('op_types')} op types, {a.get('aten_ops')} aten ops")
    _print_meta(res)


def _print_fuzz(res: dict) -> None:
    print("NNSmith fuzz loop vs torch.compile(inductor), single process")
    print(f"{'nodes':>6} {'tests':>6} {'tests/min':>9} {'reports':>7} {'compile%':>8} {'gen%':>5}  kinds   (compile% = make_backend + first call, torch.compile is lazy)")
    for n, row in res["fuzz"].items():
        sh = row["time_share"]
        comp = "-" if sh["compile"] is None else f"{100 * sh['compile']:.1f}"
        gen = "-" if sh["gen"] is None else f"{100 * sh['gen']:.1f}"
        print(
            f"{n:>6} {row['tests']:>6} {row['tests_per_min']:>9} {row['reports']:>7} "
            f"{comp:>8} {gen:>5}  {row['report_kinds']}"
        )
    _print_meta(res)


def _print_meta(res: dict) -> None:
    m, s = res.get("meta", {}), res.get("setup", {})
    print(
        f"NNSmith {m.get('nnsmith_commit') or '?'} | torch {m.get('torch')} | z3 {m.get('z3')} | "
        f"opset {s.get('opset_size')} ({s.get('topset')}, cached={s.get('topset_cached')}, "
        f"{s.get('topset_s')}s) | loadavg {m.get('loadavg_start')} -> {m.get('loadavg_end')}"
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(sp, worker=False):
        sp.add_argument("--nnsmith-src", default=os.environ.get("NNSMITH_SRC"),
                        help="NNSmith checkout (default $NNSMITH_SRC); only put on sys.path")
        sp.add_argument("--nodes", default="5,10,20" if sp.prog.endswith("gen") else "5,10")
        sp.add_argument("--seed", type=int, default=0)
        sp.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR,
                        help="where NNSmith's op/dtype topset cache goes")
        if not worker:
            sp.add_argument("--python", default=os.environ.get("NNSMITH_PYTHON") or sys.executable,
                            help="interpreter with NNSmith's deps (default $NNSMITH_PYTHON or this one)")
            sp.add_argument("--json", action="store_true", help="also print one JSON object")
            sp.add_argument("--verbose", action="store_true", help="show the worker's output")

    g = sub.add_parser("gen", help="generator speed / diversity")
    common(g)
    g.add_argument("--models", type=int, default=1000)
    f = sub.add_parser("fuzz", help="fuzz-loop throughput vs torch.compile inductor")
    common(f)
    f.add_argument("--seconds", type=float, default=120)
    f.add_argument("--opset", choices=["backend", "eager"], default="backend")

    w = sub.add_parser("_worker")
    w.add_argument("mode", choices=["gen", "fuzz"])
    common(w, worker=True)
    w.add_argument("--models", type=int, default=1000)
    w.add_argument("--seconds", type=float, default=120)
    w.add_argument("--opset", choices=["backend", "eager"], default="backend")
    w.add_argument("--out", required=True)

    args = p.parse_args(argv)
    if args.cmd == "_worker":
        return _worker_main(args)

    try:
        if args.cmd == "gen":
            res = _run_worker("gen", args.nnsmith_src, args.nodes, args.seed, args.python,
                              ["--models", str(args.models)], args.cache_dir, None,
                              quiet=not args.verbose)
        else:
            res = _run_worker("fuzz", args.nnsmith_src, args.nodes, args.seed, args.python,
                              ["--seconds", str(args.seconds), "--opset", args.opset],
                              args.cache_dir, None, quiet=not args.verbose)
    except NNSmithUnavailable as e:
        print(f"nnsmith_baseline: NNSmith not available: {e}", file=sys.stderr)
        if args.json:
            print(json.dumps({"available": False, "error": str(e)}))
        return 2
    except RuntimeError as e:
        print(f"nnsmith_baseline: {e}", file=sys.stderr)
        return 1
    res["available"] = True
    (_print_gen if args.cmd == "gen" else _print_fuzz)(res)
    if args.json:
        print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
