#!/usr/bin/env python3
"""Where a default-mix model's generation time goes, and whether a model depends on its process.

``python benchmarks/gen_profile.py stages --models 1000`` prints wall ms per model of each stage
(a wrapper around each function; a stage's time excludes the stages it calls), the Z3 context's
cost and minor page faults, as benchmarks/reach_bench.py runs them (generation then one eager run).
``--by-shape`` gives the same table per shape class (small / vector / large); both end with the
time of Python's cyclic collections (``--no-freeze``: with the rule sets left in its reach).
``python benchmarks/gen_profile.py order --models 400`` generates models 0..N-1 in index order and
in reverse order, in two processes, and prints how many differ (graph and inputs hashed): a model
must depend only on (seed, index, shares). ``python benchmarks/gen_profile.py classes --models 400``
prints each class of model's share of the models and of the time (policy choices, program forms
held, a tensor of 10^4 elements). ``python benchmarks/gen_profile.py calls --models 1000 --seed 1``
prints the CPU time of the generator's real calls by quantile, the slowest calls and models.
``python benchmarks/gen_profile.py ab --setting gc-young --models 600 --seed 1`` generates the same
models with a process-wide setting off and on, interleaved (``--setting none``: the null A/B). The numbers in docs/generator.md ("Generation speed of
the default mix", seventh session) came from these two commands.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import resource
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def _stages(models: int, seed: int, by_shape: bool = False, no_freeze: bool = False) -> None:
    from benchmarks.gen_bench import _import_every_operator, _setup

    _setup()
    import z3

    import fuzz.gen.blocks  # noqa: F401 - imported before its functions are wrapped
    import fuzz.gen.builder as builder
    import fuzz.gen.generate as generate
    import fuzz.gen.materialise as materialise
    import fuzz.gen.program as program
    import fuzz.gen.solver as solver
    import fuzz.gen.values as values
    from benchmarks.reach_bench import generate_and_run
    from fuzz.gen.policy import Shares
    from fuzz.gen.ruleset import load_ruleset

    own, calls, stack = collections.Counter(), collections.Counter(), []

    def wrap(owner, name, label):
        fn = getattr(owner, name)

        def timed(*a, **k):
            t0 = time.perf_counter()
            stack.append(0.0)
            try:
                return fn(*a, **k)
            finally:
                dt, inner = time.perf_counter() - t0, stack.pop()
                own[label] += dt - inner
                calls[label] += 1
                if stack:
                    stack[-1] += dt
        setattr(owner, name, timed)

    for owner, name, label in [
        (generate, "generate_graph", "graph growth (rest)"), (generate, "materialise", "materialise (rest)"),
        (materialise, "_nondeterministic_node", "guard rerun"), (values, "_grad_repair", "value search: gradient repair"),
        (values, "search", "value search"), (generate, "apply_forms", "forms rewrites"),
        (program, "build_module", "build and exec of the program"), (program, "run_eager", "eager run"),
        (generate, "Builder", "builder and Z3 context"), (solver.TextSolver, "push_if_sat", "solver checks"),
        (solver.TextSolver, "model_values", "model reads"), (builder, "meta_check", "meta checks"),
    ]:
        wrap(owner, name, label)
    ctx = {"s": 0.0, "faults": 0, "n": 0}
    init = z3.Context.__init__

    def counted(self, *a, **k):
        f0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
        init(self, *a, **k)
        ctx["s"] += time.perf_counter() - t0
        ctx["faults"] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
        ctx["n"] += 1
    z3.Context.__init__ = counted

    if no_freeze:  # the rule sets left in the cyclic collector's reach, as before 18b9603
        import fuzz.gen.ruleset as ruleset
        ruleset.freeze_long_lived = lambda: None
    rs = load_ruleset(None)
    _import_every_operator(rs)
    generate_and_run(rs, 60, 5, seed + 7919, Shares())  # warm-up, as reach_bench
    own.clear(), calls.clear()
    ctx.update(s=0.0, faults=0, n=0)
    collector = _collector_timer()
    if by_shape:
        _stages_by_shape(rs, models, seed, own)
        print(collector())
        return
    res = generate_and_run(rs, models, 5, seed, Shares())
    print(f"{models} models, seed {seed}: {res['models_per_s']:.1f} models/s (with the wrappers), validity {res['validity']:.4f}\n")
    print("| stage | ms per model | calls per model |\n|---|---|---|")
    for label, s in own.most_common():
        print(f"| {label} | {s / models * 1e3:.2f} | {calls[label] / models:.1f} |")
    n = max(1, ctx["n"])
    print(f"\nZ3 context: {ctx['s'] / n * 1e3:.2f} ms and {ctx['faults'] / n:.0f} minor page faults each ({ctx['n']} made)")
    print(collector())


def _collector_timer():
    """Time Python's cyclic collections from now on; returns a function that describes them."""
    import gc

    spent, start = collections.defaultdict(list), {}

    def timed(phase, info):
        if phase == "start":
            start["t"] = time.perf_counter()
        elif "t" in start:
            spent[info["generation"]].append(time.perf_counter() - start.pop("t"))
    gc.callbacks.append(timed)

    def describe():
        every = [t for ts in spent.values() for t in ts]
        return (f"\nPython's cyclic collector: {len(every)} collections, {1e3 * sum(every):.0f} ms in all; gen-2: "
                f"{len(spent[2])}, {1e3 * sum(spent[2]):.0f} ms, the longest {1e3 * max(spent[2], default=0):.0f} ms "
                f"({gc.get_freeze_count()} objects frozen)")
    return describe


def _one_model(rs, seed: int, i: int):
    """Model ``i`` of ``seed`` (default mix) generated, then its program run eagerly once, as
    reach_bench times it: (model, generation s, eager s)."""
    from fuzz.gen.config import GenConfig
    from fuzz.gen.generate import generate_model_for_index
    from fuzz.gen.policy import Shares
    from fuzz.gen.program import build_module, run_eager

    t0 = time.perf_counter()
    m = generate_model_for_index(rs, GenConfig(nodes=5), seed, i, Shares())
    t1 = time.perf_counter()
    try:
        run_eager(build_module(m.graph, m.state), m.forward_inputs())
    except Exception:  # noqa: BLE001 - a program made to be rejected raises by design
        pass
    return m, t1 - t0, time.perf_counter() - t1


def _stages_by_shape(rs, models: int, seed: int, own: collections.Counter) -> None:
    """The stage table per shape class (``policy.shape``): ms per model of each stage, and in all."""
    by: dict = collections.defaultdict(collections.Counter)
    count: collections.Counter = collections.Counter()
    for i in range(models):
        own.clear()
        m, g, e = _one_model(rs, seed, i)
        shape = (m.graph.meta.get("policy") or {}).get("shape", "-")
        count[shape] += 1
        by[shape].update(own)
        by[shape]["in all"] += g + e
    labels = ["in all"] + sorted({k for c in by.values() for k in c} - {"in all"})
    print(f"{models} models, seed {seed}: ms per model of each stage, by shape class\n")
    print("| shape | models | " + " | ".join(labels) + " |\n|" + "---|" * (len(labels) + 2))
    for shape, c in sorted(by.items()):
        print(f"| {shape} | {count[shape]} | " + " | ".join(f"{1e3 * c[k] / count[shape]:.2f}" for k in labels) + " |")


def _hashes(start: int, stop: int, reverse: bool, out: str) -> None:
    import torch

    from fuzz.gen.config import GenConfig, GenerationError
    from fuzz.gen.generate import generate_model_for_index
    from fuzz.gen.policy import Shares
    from fuzz.gen.ruleset import load_ruleset

    rs = load_ruleset(None)
    order = range(start, stop)
    got = {}
    for i in (reversed(order) if reverse else order):
        try:
            m = generate_model_for_index(rs, GenConfig(nodes=5), 0, i, Shares())
        except GenerationError:
            got[i] = "fail"
            continue
        h = hashlib.sha256(json.dumps(m.graph.to_json(), sort_keys=True, default=str).encode())
        for t in (m.inputs.values() if isinstance(m.inputs, dict) else m.inputs):
            t = t.detach().contiguous().reshape(-1)
            h.update((t.to(torch.uint8) if t.dtype == torch.bool else t).view(torch.uint8).numpy().tobytes())
        got[i] = h.hexdigest()
    with open(out, "w") as fh:
        json.dump(got, fh)


def _order(models: int, start: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        outs = [os.path.join(tmp, f"{d}.json") for d in ("forward", "reverse")]
        procs = [subprocess.Popen([sys.executable, __file__, "_hashes", str(start), str(start + models), d, o],
                                  stderr=subprocess.DEVNULL) for d, o in zip(("forward", "reverse"), outs)]
        if any(p.wait() for p in procs):
            sys.exit("a generating process failed")
        a, b = (json.load(open(o)) for o in outs)
    differ = sorted(int(k) for k in a if a[k] != b[k])
    print(f"models {start}..{start + models - 1} of seed 0, index order vs reverse order: {len(differ)} differ"
          + (f" ({differ[:20]})" if differ else ""))


def _classes(models: int, seed: int) -> None:
    """Time per model (generation, then the eager run of its program) by class: policy choice on
    each axis, program form held, and whether a tensor reaches 10^4 elements; each class's share of
    the models and of the time."""
    from benchmarks.gen_bench import _import_every_operator, _setup

    _setup()
    from benchmarks.reach_bench import model_facts
    from fuzz.gen.ruleset import load_ruleset

    rs = load_ruleset()
    _import_every_operator(rs)

    for i in range(min(60, models)):  # warm-up on other indices, as reach_bench
        _one_model(rs, seed + 7919, i)
    rows = []
    for i in range(models):
        m, g, e = _one_model(rs, seed, i)
        f = model_facts(m)
        keys = [f"{a}={v}" for a, v in sorted((m.graph.meta.get("policy") or {}).items())]
        keys += [f"form holds {x}" for x in sorted(set(f["forms"]))] + ["a tensor >= 10^4 elements" if f["big"] else "small tensors"]
        rows.append((keys, g, e))
    total = sum(g + e for _, g, e in rows)
    print(f"{models} models, seed {seed}: mean {1000 * total / models:.1f} ms per model\n")
    print("| class | share of models | gen ms | eager ms | share of time |")
    print("|---|---|---|---|---|")
    by: dict = collections.defaultdict(list)
    for keys, g, e in rows:
        for k in keys:
            by[k].append((g, e))
    for k, v in sorted(by.items()):
        print(f"| {k} | {len(v) / models:.3f} | {1000 * sum(x[0] for x in v) / len(v):.1f} | "
              f"{1000 * sum(x[1] for x in v) / len(v):.1f} | {sum(x[0] + x[1] for x in v) / total:.2f} |")


def _calls(models: int, seed: int) -> None:
    """CPU time of every real call the generator makes (``fuzz.gen.interpret.run_node``: the value
    search, the guard rerun, the edge values) over ``models`` default-mix models of ``seed``, then
    the slowest calls and the slowest models (generation and the eager run, wall): the numbers
    behind ``fuzz.gen.cost``'s limits."""
    from benchmarks.gen_bench import _import_every_operator, _setup

    _setup()
    import fuzz.gen.interpret as interpret
    import fuzz.gen.values as values
    from fuzz.gen.config import GenerationError
    from fuzz.gen.ruleset import load_ruleset

    rs = load_ruleset(None)
    _import_every_operator(rs)
    for i in range(60):  # warm-up on other indices, as reach_bench: first calls and imports not counted
        try:
            _one_model(rs, seed + 7919, i)
        except GenerationError:
            pass
    run_node, calls, current = interpret.run_node, [], [None]

    def timed(node, env, submodules, device="cpu"):
        t0 = time.process_time()
        try:
            return run_node(node, env, submodules, device)
        finally:
            calls.append((time.process_time() - t0, node.name, current[0]))
    interpret.run_node = values.run_node = timed  # the search calls it by its own import
    per_model = []
    for i in range(models):
        current[0] = i
        t0 = time.perf_counter()
        try:
            _one_model(rs, seed, i)
        except GenerationError:
            pass
        per_model.append((time.perf_counter() - t0, i))
    interpret.run_node = values.run_node = run_node
    calls.sort(reverse=True)
    n = len(calls)
    print(f"{models} models, seed {seed}: {n} calls; CPU ms per call at quantile "
          + ", ".join(f"{q}: {1e3 * calls[int(n * (1 - q))][0]:.1f}" for q in (0.99, 0.999, 0.9999)) + "\n")
    print("| call CPU ms | operator | model |\n|---|---|---|")
    for cpu, name, i in calls[:15]:
        print(f"| {1e3 * cpu:.1f} | {name} | {i} |")
    per_model.sort(reverse=True)
    total = sum(t for t, _ in per_model)
    print(f"\nslowest models (generation and eager run, wall; {total:.1f} s in all):\n\n| model | s | share |\n|---|---|---|")
    for t, i in per_model[:10]:
        print(f"| {i} | {t:.2f} | {t / total:.3f} |")


def _ab_setting(name: str):
    """(on, off) for ``ab``: switch one process-wide setting of the generator."""
    import gc

    from fuzz.gen.ruleset import GC_YOUNG_THRESHOLD

    if name == "gc-young":  # fuzz.gen.ruleset.GC_YOUNG_THRESHOLD against Python's default
        older = gc.get_threshold()[1:]
        return (lambda: gc.set_threshold(GC_YOUNG_THRESHOLD, *older)), (lambda: gc.set_threshold(700, *older))
    if name == "shared-z3-context":  # one context for every model: the ceiling of a cheaper context, not
        import z3                    # usable (a model then depends on the process's history)

        make, shared = z3.Context, []

        def one_context(*a, **k):  # what TextSolver gets for ``z3.Context()``
            if not shared:
                shared.append(make(*a, **k))
            return shared[0]
        return (lambda: setattr(z3, "Context", one_context)), (lambda: setattr(z3, "Context", make))
    raise SystemExit(f"gen_profile ab: no setting {name!r} (gc-young, shared-z3-context)")


def _ab(setting: str, models: int, seed: int, block: int = 50) -> None:
    """The same models generated (and run eagerly once) with ``setting`` off (A) and on (B), in
    blocks of ``block`` indices, the order within a block alternating: both sides see the same
    models and the same drift of the machine's speed. ``--setting none`` is the null A/B."""
    from benchmarks.gen_bench import _import_every_operator, _setup

    _setup()
    from fuzz.gen.ruleset import load_ruleset

    rs = load_ruleset(None)
    _import_every_operator(rs)
    on, off = ((lambda: None), (lambda: None)) if setting == "none" else _ab_setting(setting)
    for i in range(60):  # warm-up on indices no side is timed on
        _one_model(rs, seed + 7919, i)
    spent = {"A": 0.0, "B": 0.0}
    for b in range(0, models, block):
        for side in ("AB" if (b // block) % 2 == 0 else "BA"):
            (on if side == "B" else off)()
            for i in range(b, min(models, b + block)):
                t0 = time.perf_counter()
                try:
                    _one_model(rs, seed, i)
                except Exception:  # noqa: BLE001 - a model that fails generation costs its time on both sides
                    pass
                spent[side] += time.perf_counter() - t0
    off()
    print(f"{setting}, seed {seed}, {models} models: A (off) {models / spent['A']:.2f} models/s, "
          f"B (on) {models / spent['B']:.2f} models/s, B/A {spent['A'] / spent['B']:.3f}x")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_hashes":
        _hashes(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "reverse", sys.argv[5])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="part", required=True)
    s = sub.add_parser("stages")
    s.add_argument("--models", type=int, default=1000)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--by-shape", action="store_true", help="one row per shape class (policy.shape)")
    s.add_argument("--no-freeze", action="store_true", help="leave the rule sets to the cyclic collector (as before 18b9603)")
    c = sub.add_parser("classes")
    c.add_argument("--models", type=int, default=400)
    c.add_argument("--seed", type=int, default=0)
    k = sub.add_parser("calls")
    k.add_argument("--models", type=int, default=1000)
    k.add_argument("--seed", type=int, default=0)
    o = sub.add_parser("order")
    o.add_argument("--models", type=int, default=400)
    o.add_argument("--start", type=int, default=0)
    a = sub.add_parser("ab", help="the same models with a generator setting off and on, interleaved")
    a.add_argument("--setting", required=True, help="gc-young, shared-z3-context, or none (a null A/B)")
    a.add_argument("--models", type=int, default=600)
    a.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if args.part == "ab":
        _ab(args.setting, args.models, args.seed)
    elif args.part == "stages":
        _stages(args.models, args.seed, args.by_shape, args.no_freeze)
    elif args.part == "classes":
        _classes(args.models, args.seed)
    elif args.part == "calls":
        _calls(args.models, args.seed)
    else:
        _order(args.models, args.start)


if __name__ == "__main__":
    main()
