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
from typing import List, Optional

NNSMITH_REF_COMMIT = "bc0af42"
DEFAULT_CACHE_DIR = os.path.join(tempfile.gettempdir(), "nnsmith-baseline-cache")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # nnsmith_worker, run as a script or imported
from nnsmith_worker import Nodes, NNSmithUnavailable, norm_nodes  # noqa: E402

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nnsmith_worker.py")


# --------------------------------------------------------------------------
# Parent side (no NNSmith / torch import here: safe to import from Assay).
# --------------------------------------------------------------------------


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
    own_turn=None,
    chunk: int = 0,
) -> dict:
    src = resolve_src(src)
    python = python or os.environ.get("NNSMITH_PYTHON") or sys.executable
    with tempfile.TemporaryDirectory(prefix="nnsmith-baseline-") as tmp:
        out_path = os.path.join(tmp, "result.json")
        log_path = os.path.join(tmp, "worker.log")
        cmd = [
            python,
            WORKER,
            mode,
            "--nnsmith-src",
            src,
            "--nodes",
            ",".join(str(n) for n in norm_nodes(nodes)),
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
                if own_turn is not None:
                    proc = _run_taking_turns(cmd, log if quiet else None, env, timeout, own_turn, chunk)
                else:
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


def _run_taking_turns(cmd, log, env, timeout, own_turn, chunk):
    """Run the gen worker gated (``nnsmith_worker.py --gate``): before each of its chunks of ``chunk``
    models it waits, and ``own_turn(k)`` (the other generator's chunk ``k``) runs then. The two
    generators alternate chunk by chunk, so a drift in the machine's speed (this shared machine's
    varies by 10-20% within minutes) falls on both alike; neither runs while the other does."""
    import time

    go_r, go_w = os.pipe()
    rd_r, rd_w = os.pipe()
    proc = subprocess.Popen(cmd + ["--gate", f"{go_r},{rd_w},{chunk}"], stdout=log,
                            stderr=subprocess.STDOUT if log else None, env=env, pass_fds=(go_r, rd_w))
    os.close(go_r)
    os.close(rd_w)
    end = time.monotonic() + timeout if timeout else None
    k = 0
    try:
        while os.read(rd_r, 1):  # the worker waits before its chunk k; EOF: it is done
            own_turn(k)
            k += 1
            os.write(go_w, b"g")
            if end is not None and time.monotonic() > end:
                raise subprocess.TimeoutExpired(cmd, timeout)
        proc.wait(timeout=None if end is None else max(1.0, end - time.monotonic()))
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        os.close(rd_r)
        os.close(go_w)
    return proc


def nnsmith_gen_stats(
    src: Optional[str],
    nodes: Nodes = (5, 10, 20),
    models: int = 1000,
    seed: int = 0,
    python: Optional[str] = None,
    cache_dir: Optional[str] = None,
    timeout: Optional[float] = None,
    warmup: int = 0,
    own_turn=None,
    chunk: int = 0,
) -> dict:
    """Generator speed/diversity of NNSmith (runs in a subprocess), after ``warmup`` untimed models.
    With ``own_turn`` and ``chunk`` (one size in ``nodes``), NNSmith's models are made ``chunk`` at a
    time and ``own_turn(k)`` runs before its chunk k (``_run_taking_turns``).

    Returns ``{"gen": {"<nodes>": {median_ms, models_per_s, eager_valid,
    nonfinite, op_types, aten_ops, ...}}, "meta": {...}}``.
    Raises NNSmithUnavailable if the checkout / deps are missing.
    """
    return _run_worker(
        "gen", src, nodes, seed, python, ["--models", str(models), "--warmup", str(warmup)], cache_dir, timeout,
        own_turn=own_turn, chunk=chunk,
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

    def common(sp):
        sp.add_argument("--nnsmith-src", default=os.environ.get("NNSMITH_SRC"),
                        help="NNSmith checkout (default $NNSMITH_SRC); only put on sys.path")
        sp.add_argument("--nodes", default="5,10,20" if sp.prog.endswith("gen") else "5,10")
        sp.add_argument("--seed", type=int, default=0)
        sp.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR,
                        help="where NNSmith's op/dtype topset cache goes")
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

    args = p.parse_args(argv)

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
