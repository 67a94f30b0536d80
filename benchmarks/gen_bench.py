"""Generator benchmark: validity, finiteness, operator diversity, speed, memory.

    python benchmarks/gen_bench.py                 # the full run (1000 models per measurement)
    python benchmarks/gen_bench.py --models 100    # a quick run

Everything runs in this process on one CPU thread (torch.set_num_threads(1)), except the
memory measurement, which runs in a fresh child process so its peak RSS is its own.

- validity: generated 10-node models whose eager run (``fuzz.gen.program.build_module`` +
  ``run_eager``, the program.py code) raises nothing; a model the generator fails to
  produce counts as invalid;
- finite: models whose value search found inputs with every float intermediate and output finite;
- diversity: distinct aten operators that really ran (a ``TorchDispatchMode`` records every
  aten call of the eager runs), and the share of symbolic vs concrete operator calls;
- speed: per model, generation (Z3) + value search + one eager run, for 5/10/20-node graphs:
  median ms per model and models per second;
- memory: peak RSS of a process that generates ``--models`` 20-node models.

With ``--nnsmith-src DIR`` (or ``$NNSMITH_SRC``) NNSmith's generator is timed beside each speed
row, right after Assay's row of the same size so both see the same machine load, through
``benchmarks/nnsmith_baseline.py`` (its own interpreter: ``--nnsmith-python`` or
``$NNSMITH_PYTHON``; one torch thread, like this process). NNSmith's time per model covers its
Z3 model generation, weight search and one eager run; Assay's covers generation (Z3), value
search, building the program's module and one eager run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings

NNSMITH = {"ms": {5: 13, 10: 20, 20: 41}, "per_s": {5: 70, 10: 45, 20: 18}, "aten_ops": 72}


def _setup():
    import torch

    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    try:
        torch._C._set_warnAlways(False)
    except Exception:
        pass


def _ruleset(path):
    from fuzz.gen.ruleset import load_ruleset

    return load_ruleset(path or None)


def _import_every_operator(rs) -> None:
    """Resolve every operator once before any timed section: the first model to call, say,
    ``torch.signal.windows.hamming`` would otherwise pay for importing its module (up to ~2 s,
    once per process), which is start-up cost, not generation."""
    from fuzz.gen.interpret import resolve_cached

    for infos in rs.by_op.values():
        r = infos[0].rule
        try:
            resolve_cached(r.op, r.api, r.overload)
        except Exception:  # noqa: BLE001 - an operator that does not resolve fails in its model
            pass


def _counter_mode():
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.namespace == "aten":
                self.ops.add(func._schema.name)
            return func(*args, **(kwargs or {}))

    return Count()


def quality(rs, n, nodes, seed):
    from fuzz.gen.config import GenConfig, GenerationError
    from fuzz.gen.generate import generate_model_for_index
    from fuzz.gen.program import build_module, run_eager
    from fuzz.gen.values import all_finite

    ok = finite = gen_fail = 0
    sym = conc = dropped = total_nodes = 0
    aten = set()
    errors = {}
    for i in range(n):
        try:
            m = generate_model_for_index(rs, GenConfig(nodes=nodes), seed, i)
        except GenerationError as exc:
            gen_fail += 1
            errors[f"generate: {exc}"[:100]] = errors.get(f"generate: {exc}"[:100], 0) + 1
            continue
        g = m.graph
        sym += sum(1 for x in g.nodes if x.kind == "symbolic")
        conc += sum(1 for x in g.nodes if x.kind == "concrete")
        total_nodes += len(g.nodes)
        dropped += g.meta["guard"]["dropped"]
        mode = _counter_mode()
        try:
            module = build_module(g, m.state)
            with mode:
                outs = run_eager(module, m.forward_inputs())
            ok += 1
            finite += bool(m.finite and all_finite(outs))
        except Exception as exc:
            key = f"eager: {type(exc).__name__}: {exc}"[:100]
            errors[key] = errors.get(key, 0) + 1
        aten |= mode.ops
    return {"models": n, "nodes": nodes, "valid": ok, "validity": ok / n, "finite": finite, "finite_share": finite / n,
            "generation_failures": gen_fail, "distinct_aten_ops": len(aten), "symbolic_calls": sym,
            "concrete_calls": conc, "symbolic_share": sym / max(1, sym + conc), "mean_nodes": total_nodes / max(1, n - gen_fail),
            "guard_dropped": dropped, "guard_drop_rate": dropped / max(1, dropped + total_nodes),
            "errors": dict(sorted(errors.items(), key=lambda kv: -kv[1])[:10])}


def speed(rs, n, nodes, seed):
    from fuzz.gen.config import GenConfig, GenerationError
    from fuzz.gen.generate import generate_model_for_index
    from fuzz.gen.program import build_module, run_eager

    times, cpu = [], []
    t_all = time.perf_counter()
    c_all = time.process_time()
    for i in range(n):
        t = time.perf_counter()
        c = time.process_time()
        try:
            m = generate_model_for_index(rs, GenConfig(nodes=nodes), seed + 1000 * nodes, i)
            run_eager(build_module(m.graph, m.state), m.forward_inputs())
        except (GenerationError, Exception):
            pass
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    total = time.perf_counter() - t_all
    total_cpu = time.process_time() - c_all
    return {"nodes": nodes, "models": n, "median_ms": 1000 * statistics.median(times),
            "p90_cpu_ms": 1000 * statistics.quantiles(cpu, n=10)[-1] if n >= 10 else None,
            "median_cpu_ms": 1000 * statistics.median(cpu), "mean_ms": 1000 * total / n,
            "models_per_s": n / total, "models_per_cpu_s": n / total_cpu, "loadavg": os.getloadavg()[0]}


def nnsmith_speed(src, python, n, nodes, seed, warmup=60, own_turn=None, chunk=0):
    """NNSmith's generator at one size, after ``warmup`` untimed models of another seed (as
    reach_bench warms Assay's generator up), or ``{"error": ...}`` when it is not available.
    ``own_turn``, ``chunk``: alternate with another generator (``nnsmith_baseline.nnsmith_gen_stats``)."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from benchmarks.nnsmith_baseline import NNSmithUnavailable, nnsmith_gen_stats

    old = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"  # one torch thread, as in this process
    try:
        res = nnsmith_gen_stats(src, [nodes], n, seed=seed, python=python, warmup=warmup, own_turn=own_turn,
                                chunk=chunk)
    except NNSmithUnavailable as exc:
        return {"error": str(exc)}
    finally:
        if old is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = old
    row = dict(res["gen"][str(nodes)])
    row["loadavg"] = res.get("meta", {}).get("loadavg_end", [None])[0]
    return row


def memory_child(rules, n, nodes, seed):
    _setup()
    rs = _ruleset(rules)
    from fuzz.gen.config import GenConfig
    from fuzz.gen.generate import generate_model_for_index
    from fuzz.gen.program import build_module, run_eager

    for i in range(n):
        try:
            m = generate_model_for_index(rs, GenConfig(nodes=nodes), seed + 7, i)
            run_eager(build_module(m.graph, m.state), m.forward_inputs())
        except Exception:
            pass
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"models": n, "nodes": nodes, "peak_rss_mb": peak_kb / 1024}))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", type=int, default=1000, help="models per measurement (default 1000)")
    ap.add_argument("--speed-models", type=int, default=None, help="models per speed row (default: --models)")
    ap.add_argument("--sizes", default="5,10,20")
    ap.add_argument("--rules", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip", default="", help="comma-separated sections to skip: quality,speed,memory")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    ap.add_argument("--nnsmith-src", default=os.environ.get("NNSMITH_SRC"),
                    help="NNSmith checkout: time its generator beside each speed row (default $NNSMITH_SRC)")
    ap.add_argument("--nnsmith-python", default=os.environ.get("NNSMITH_PYTHON"),
                    help="interpreter with NNSmith's dependencies (default $NNSMITH_PYTHON)")
    ap.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.memory_child:
        memory_child(args.rules, args.models, 20, args.seed)
        return 0
    _setup()
    skip = set(filter(None, args.skip.split(",")))
    t0 = time.perf_counter()
    rs = _ruleset(args.rules)
    res = {"usable_ops": len(rs.ops), "usable_rules": rs.n_rules, "ruleset_s": time.perf_counter() - t0}
    # Warm up imports and caches outside the timed sections.
    _import_every_operator(rs)
    speed(rs, 3, 5, 99)
    if "quality" not in skip:
        res["quality"] = quality(rs, args.models, 10, args.seed)
    if "speed" not in skip:
        res["speed"] = []
        for k in args.sizes.split(","):
            row = speed(rs, args.speed_models or args.models, int(k), args.seed)
            if args.nnsmith_src:
                row["nnsmith"] = nnsmith_speed(args.nnsmith_src, args.nnsmith_python, args.speed_models or args.models,
                                               int(k), args.seed)
            res["speed"].append(row)
    if "memory" not in skip:
        cmd = [sys.executable, os.path.abspath(__file__), "--memory-child", "--models", str(args.models), "--seed", str(args.seed)]
        if args.rules:
            cmd += ["--rules", args.rules]
        out = subprocess.run(cmd, capture_output=True, text=True)
        res["memory"] = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else {"error": out.stderr[-300:]}
    print_table(res)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=2)
    return 0


def print_table(res):
    print(f"usable operators: {res['usable_ops']} ({res['usable_rules']} rules)")
    q = res.get("quality")
    if q:
        print(f"\n| measure ({q['models']} models x {q['nodes']} nodes) | assay | target | NNSmith |")
        print("|---|---|---|---|")
        print(f"| valid (eager run, no exception) | {q['validity']:.1%} ({q['valid']}/{q['models']}) | >= 99.5% | |")
        print(f"| finite (no NaN/Inf anywhere) | {q['finite_share']:.1%} ({q['finite']}/{q['models']}) | >= 98% | |")
        print(f"| distinct aten operators executed | {q['distinct_aten_ops']} | >= 400 | {NNSMITH['aten_ops']} |")
        print(f"| symbolic / concrete operator calls | {q['symbolic_share']:.1%} / {1 - q['symbolic_share']:.1%} | | |")
        print(f"| mean nodes per model | {q['mean_nodes']:.2f} | | |")
        print(f"| nodes dropped by the guard run | {q['guard_dropped']} ({q['guard_drop_rate']:.1%}) | | |")
        if q["errors"]:
            print("errors:", json.dumps(q["errors"], indent=1))
    if res.get("speed"):
        print("\n| nodes | median ms/model (wall) | median CPU ms/model | models/s (wall) | models/CPU-s | load avg "
              "| NNSmith median ms (wall / CPU), same run | NNSmith models/s (wall) | NNSmith ref. ms/model (issue) |")
        print("|---|---|---|---|---|---|---|---|---|")
        for s in res["speed"]:
            k = s["nodes"]
            nn = s.get("nnsmith") or {}
            if "median_ms" in nn:
                # models/s on both sides = models / total wall time (NNSmith's "models_per_s" is 1000 / its median)
                nn_ps = nn.get("models_per_s_mean", nn["models_per_s"])
                nn_ms, nn_ps = f"{nn['median_ms']:.1f} / {nn['median_cpu_ms']:.1f}", f"{nn_ps:.1f}"
            else:
                nn_ms, nn_ps = (nn.get("error", "not run")[:60], "")
            print(f"| {k} | {s['median_ms']:.1f} | {s['median_cpu_ms']:.1f} | {s['models_per_s']:.1f} | {s['models_per_cpu_s']:.1f} "
                  f"| {s['loadavg']:.1f} | {nn_ms} | {nn_ps} | {NNSMITH['ms'].get(k, '')} |")
    m = res.get("memory")
    if m:
        if "error" in m:
            print("\nmemory: failed:", m["error"])
        else:
            print(f"\npeak RSS generating {m['models']} x {m['nodes']}-node models in one process: {m['peak_rss_mb']:.0f} MB (target < 2048 MB)")


if __name__ == "__main__":
    sys.exit(main())
