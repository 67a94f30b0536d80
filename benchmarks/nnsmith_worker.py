#!/usr/bin/env python3
"""The NNSmith side of the baseline harness: runs under NNSmith's interpreter.

``benchmarks/nnsmith_baseline.py`` starts this file as a subprocess
(``python nnsmith_worker.py gen|fuzz --nnsmith-src DIR --out RESULT.json ...``) with the
interpreter that has NNSmith's dependencies, so that nothing of NNSmith or its torch is
imported into Assay's process. It writes one JSON result (``{"unavailable": why}`` when the
checkout or its dependencies are missing, exit status 3). Nothing here imports Assay.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import List, Sequence, Union

Nodes = Union[int, str, Sequence[int]]


class NNSmithUnavailable(RuntimeError):
    """NNSmith checkout or its Python dependencies are not available."""


def norm_nodes(nodes: Nodes) -> List[int]:
    """``5``, ``"5,10"`` or ``[5, 10]`` as a list of node counts."""
    if isinstance(nodes, int):
        return [nodes]
    if isinstance(nodes, str):
        return [int(x) for x in nodes.replace(" ", "").split(",") if x]
    return [int(x) for x in nodes]


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


def _wait_turn(gate, i: int) -> None:
    """With a gate (``--gate IN,OUT,K``): before model ``i`` of every K, say so on OUT and wait for a
    byte on IN, so that the parent can time its own generator between NNSmith's chunks."""
    if gate and i % gate[2] == 0:
        os.write(gate[1], b"r")
        if not os.read(gate[0], 1):
            raise SystemExit("the parent closed the gate")


def _worker_gen(env: _Env, nodes: List[int], models: int, seed: int, warmup: int = 0, gate=None) -> dict:
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
    # Untimed warm-up models of another seed, as Assay's side of the benchmark has: first calls of
    # torch operators and NNSmith's own lazy set-up are then not counted against either.
    env.set_seed(seed + 7919)
    for _ in range(warmup):
        try:
            env.make_testcase(opset, max(nodes), random.getrandbits(32))
        except Exception:  # noqa: BLE001 - a failed warm-up model is not counted anywhere
            pass
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
        for i in range(models):
            _wait_turn(gate if n == nodes[0] else None, i)
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
    nodes = norm_nodes(args.nodes)
    t0 = time.time()
    load0 = _loadavg()
    if args.mode == "gen":
        gate = tuple(int(x) for x in args.gate.split(",")) if args.gate else None
        res = _worker_gen(env, nodes, args.models, args.seed, args.warmup, gate)
        if gate:
            os.close(gate[1])  # the parent reads the end of the chunks
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["gen", "fuzz"])
    p.add_argument("--nnsmith-src", required=True)
    p.add_argument("--nodes", default="5,10")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--warmup", type=int, default=0, help="gen: untimed models of another seed first")
    p.add_argument("--gate", default=None,
                   help="gen: IN,OUT,K: file descriptors from the parent; before every K models write a "
                        "byte to OUT and wait for one on IN (the parent's generator runs in between)")
    p.add_argument("--cache-dir", required=True)
    p.add_argument("--models", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=120)
    p.add_argument("--opset", choices=["backend", "eager"], default="backend")
    p.add_argument("--out", required=True)
    return _worker_main(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
