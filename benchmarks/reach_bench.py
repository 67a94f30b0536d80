"""Reach benchmark: what the default model mix holds, whether it stays valid, and what it costs.

    python benchmarks/reach_bench.py                          # 1000 models of the default mix
    python benchmarks/reach_bench.py --models 200 --legacy-models 100
    python benchmarks/reach_bench.py --skip models --campaign NEW --baseline OLD
    python benchmarks/reach_bench.py --speed-seeds 0,1,2,3 --nnsmith-src DIR --nnsmith-python PY

Sections (each prints a table; ``--json FILE`` writes every number):

- ``models``: ``--models`` models of the default policy shares (``fuzz.gen.policy.DEFAULT_SHARES``),
  generated as a campaign generates them (``generate_model_for_index`` with the shares, model i of
  ``--seed``) and run eagerly once (the program.py code path). Per axis: the share of models drawn
  for each choice; what the models really hold (dtypes present, innermost dims at SIMD widths and
  tails, tensors of >= 10^4 elements, blocks and forms recorded in the graph's meta); the test mode
  mix a default campaign gives these models; validity (eager runs that raise nothing, or, for a
  program made to be rejected (``--calls invalid``, fuzz.gen.error_calls), eager raises; a model the
  generator could not make counts as invalid) and models/s. The same for ``--legacy-models`` models
  of the legacy mix (main d967a17's defaults) in the same run, and NNSmith's generator at the same
  size when ``--nnsmith-src`` is given (right after, so all see the same machine load).
- ``--speed-seeds``: only generation speed against NNSmith, seed by seed and pooled.
- ``campaign``: from finished campaign folders (``--campaign``, ``--baseline``): tests, tests/min,
  inductor tests whose generated C++ has a vectorised loop / an OpenMP parallel region, failure
  signatures, saved cases and reduced classes.

Everything runs on one torch thread in this process.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sqlite3
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

VECTOR_WIDTHS = {7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257}
LOW = {"float16": "fp16", "bfloat16": "bf16", "int8": "int8/uint8", "uint8": "int8/uint8", "int16": "int16",
       "int32": "int32", "int64": "int64", "complex64": "complex64"}


def model_facts(generated) -> dict:
    """``fuzz.gen.census.model_facts`` of one model, plus what this table reads: low-precision
    dtypes held, an innermost dim at a SIMD width or tail, a tensor of >= 10^4 elements, the
    blocks, forms and input layouts recorded in the graph's meta."""
    from fuzz.gen.census import model_facts as census_facts
    from fuzz.gen.layouts import layout_kind

    f = census_facts(generated)
    g = generated.graph
    f.update({
        "low": sorted({LOW[d] for d in f["dtypes"] if d in LOW}),
        "vector_inner": any(info.shape and int(info.shape[-1]) in VECTOR_WIDTHS for info in g.tensors.values()),
        "big": f["elements_max"] >= 10_000,
        "blocks": list(g.meta.get("blocks") or []),
        "forms": list(g.meta.get("forms") or []),
        "layouts": sorted({layout_kind(v) for v in (g.meta.get("layouts") or {}).values()}),
        # numbers of calls lifted into forward's inputs (fuzz.gen.scalars), kept through the guard run
        "scalars": sorted({e["kind"] for n, e in (g.meta.get("scalars") or {}).items() if n in g.inputs}),
        "size_args": int(g.meta.get("size_args") or 0),  # sizes read from tensors (fuzz.gen.size_args)
        # a zero-size input kept through the guard run (fuzz.gen.empty_dims)
        "empty_input": any(0 in g.tensors[n].shape for n in g.inputs),
    })
    return f


def generate_and_run(rs, n, nodes, seed, shares, start=0):
    """``n`` models of ``shares`` (None: legacy), indices ``start`` on, each generated then run
    eagerly once."""
    from fuzz.gen.config import GenConfig, GenerationError
    from fuzz.gen.generate import generate_model_for_index
    from fuzz.gen.program import build_module, run_eager

    facts, errors = [], collections.Counter()
    valid = gen_fail = 0
    per_model = []  # seconds of generation and the eager run; not the census (NNSmith's is not timed either)
    for i in range(start, start + n):
        t0 = time.perf_counter()
        try:
            m = generate_model_for_index(rs, GenConfig(nodes=nodes), seed, i, shares)
        except GenerationError as exc:
            per_model.append(time.perf_counter() - t0)
            gen_fail += 1
            errors[f"generate: {exc}"[:100]] += 1
            continue
        rejects = bool(m.graph.meta.get("eager_raises"))  # a program eager must reject (fuzz.gen.error_calls)
        try:
            run_eager(build_module(m.graph, m.state), m.forward_inputs())
            ok, why = not rejects, "eager runs a program made to be rejected" if rejects else None
        except Exception as exc:  # noqa: BLE001 - an invalid model is what is counted here
            ok, why = rejects, None if rejects else f"eager: {type(exc).__name__}: {exc}"[:100]
        per_model.append(time.perf_counter() - t0)
        f = model_facts(m)
        f["valid"] = ok
        valid += ok
        if why:
            errors[why] += 1
        facts.append(f)
    return _summary(n, nodes, valid, gen_fail, per_model, facts, errors)


def _summary(n, nodes, valid, gen_fail, per_model, facts, errors):
    seconds = sum(per_model)
    return {"models": n, "nodes": nodes, "valid": valid, "validity": valid / n, "generation_failures": gen_fail,
            "seconds": seconds, "models_per_s": n / seconds, "facts": facts,
            "median_ms": 1e3 * statistics.median(per_model), "p90_ms": 1e3 * sorted(per_model)[int(0.9 * n)],
            "errors": dict(errors.most_common(10)), "per_model_s": per_model}


def merge_runs(runs: list) -> dict:
    """One ``generate_and_run`` result from the results of consecutive chunks of its indices."""
    errors = collections.Counter()
    for r in runs:
        errors.update(r["errors"])
    return _summary(sum(r["models"] for r in runs), runs[0]["nodes"], sum(r["valid"] for r in runs),
                    sum(r["generation_failures"] for r in runs), [t for r in runs for t in r["per_model_s"]],
                    [f for r in runs for f in r["facts"]], errors)


def mode_mix(n: int, seed: int, nodes: int, shares) -> dict:
    """Tests per mode that a default campaign runs on models 0..n-1."""
    from fuzz.campaign.config import Config
    from fuzz.campaign.jobs import tests_for

    cfg = Config(out="-", seed=seed, nodes=nodes)
    counts = collections.Counter()
    for i in range(n):
        for t in tests_for(cfg, i):
            counts[t["mode"]] += 1
    total = sum(counts.values()) or 1
    return {m: c / total for m, c in sorted(counts.items())}


def _choice(facts: dict, axis: str) -> str:
    """The model's choice on ``axis``; a graph without a policy in its meta was made by LEGACY."""
    from fuzz.gen.policy import AXES

    return facts["policy"].get(axis) or AXES[axis][0]


def shares_table(res: dict) -> list[tuple[str, str, float]]:
    """(axis, choice, share of models) rows: the drawn policy, then what the models hold."""
    facts = res["facts"]
    n = max(1, len(facts))
    rows = []
    for axis in ("shape", "dtype", "values", "form", "layout", "scalars", "calls", "shape_args", "empty_dims"):
        c = collections.Counter(_choice(f, axis) for f in facts)
        rows += [(f"policy.{axis}", k, v / n) for k, v in sorted(c.items())]
    for low in dict.fromkeys(LOW.values()):
        rows.append(("holds dtype", low, sum(low in f["low"] for f in facts) / n))
    rows.append(("holds shape", "innermost dim at a SIMD width or tail", sum(f["vector_inner"] for f in facts) / n))
    rows.append(("holds shape", "a tensor of >= 10^4 elements", sum(f["big"] for f in facts) / n))
    rows.append(("holds values", "NaN/inf/-0/subnormal/extreme inputs", sum(bool(f["special_values"]) for f in facts) / n))
    blocks = collections.Counter(b for f in facts for b in f["blocks"])
    forms = collections.Counter(b for f in facts for b in f["forms"])
    rows += [("block", k, v / n) for k, v in blocks.most_common()]
    rows += [("form", k, v / n) for k, v in forms.most_common()]
    rows.append(("holds layout", "a non-contiguous input", sum(bool(f.get("layouts")) for f in facts) / n))
    kinds = collections.Counter(k for f in facts for k in f.get("layouts", []))
    rows += [("holds layout", k, v / n) for k, v in kinds.most_common()]
    for kind, what in (("python", "a number passed to forward as a Python scalar"),
                       ("tensor", "a number passed to forward as a 0-dim tensor")):
        rows.append(("holds scalar input", what, sum(kind in f.get("scalars", []) for f in facts) / n))
    rows.append(("holds size argument", "a call's size read from a tensor (a.size(1))",
                 sum(bool(f.get("size_args")) for f in facts) / n))
    rows.append(("holds shape", "an input with a zero-size dim", sum(bool(f.get("empty_input")) for f in facts) / n))
    for cls in ("small", "vector", "large"):
        sub = [f for f in facts if _choice(f, "shape") == cls]
        if sub:
            rows.append(("median max elements", cls, float(statistics.median(f["elements_max"] for f in sub))))
            rows.append(("validity", f"shape={cls}", sum(f["valid"] for f in sub) / len(sub)))
    for axis in ("dtype", "values", "form", "layout", "scalars", "calls", "shape_args", "empty_dims"):
        for choice in sorted({_choice(f, axis) for f in facts}):
            sub = [f for f in facts if _choice(f, axis) == choice]
            rows.append(("validity", f"{axis}={choice}", sum(f["valid"] for f in sub) / len(sub)))
    return rows


def campaign_numbers(path: str) -> dict:
    """The numbers of one finished campaign folder (stats.json and index.sqlite)."""
    out = {"dir": path}
    try:
        stats = json.loads(open(os.path.join(path, "stats.json")).read())
    except (OSError, ValueError) as exc:
        return {"dir": path, "error": f"no readable stats.json ({exc})"}
    tests = stats.get("tests") or 0
    secs = stats.get("elapsed_s") or 0
    out.update({"tests": tests, "tests_per_min": 60 * tests / secs if secs else None,
                "signatures": stats.get("unique_signatures"), "cases": stats.get("cases_saved"),
                "outcomes": stats.get("outcomes"), "modes": stats.get("modes")})
    code = stats.get("inductor_code") or {}
    out.update({"inductor_code_tests": code.get("tests"), "vectorised_share": code.get("vectorised_share"),
                "parallel_share": code.get("parallel_share"), "judged_share": stats.get("judged_share")})
    db = os.path.join(path, "index.sqlite")
    if os.path.exists(db):
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            cols = [r[1] for r in con.execute("PRAGMA table_info(signatures)")]
            if "reduced_class" in cols:
                out["reduced_classes"] = con.execute(
                    "SELECT COUNT(DISTINCT reduced_class) FROM signatures WHERE reduced_class IS NOT NULL").fetchone()[0]
        except sqlite3.Error:
            pass
        finally:
            con.close()
    return out


def _print_rows(title, rows):
    print(f"\n## {title}\n")
    print("| what | choice | value |\n|---|---|---|")
    for a, b, v in rows:
        print(f"| {a} | {b} | {v:.3f} |" if isinstance(v, float) and v <= 1 else f"| {a} | {b} | {v:g} |")


def _warm_ruleset(args, seed: int):
    """The rule set, loaded with every operator imported and the generator warmed up on other
    indices of ``seed``: one torch thread, warnings off (as gen_bench). Start-up and a first pass
    over models pay one-off costs (kernel and dispatcher caches, lazy imports: 17 models/s cold
    against 68 warm for the same 40 models), kept out of every timed run."""
    from benchmarks.gen_bench import _import_every_operator, _setup
    from fuzz.gen.policy import Shares
    from fuzz.gen.ruleset import load_ruleset

    _setup()
    rs = load_ruleset(args.rules)
    _import_every_operator(rs)
    generate_and_run(rs, min(60, args.models), args.nodes, seed + 7919, Shares())
    return rs


def _speed_over_seeds(args) -> int:
    """Default mix and NNSmith, ``--models`` each per seed of ``--speed-seeds``: a row per seed and
    the pooled ratio (models over seconds, every seed's models together)."""
    from benchmarks.gen_bench import nnsmith_speed
    from fuzz.gen.policy import Shares

    if not args.nnsmith_src:
        print("reach_bench: --speed-seeds compares with NNSmith: give --nnsmith-src DIR (see benchmarks/README.md)")
        return 2
    seeds = [int(x) for x in args.speed_seeds.split(",") if x.strip()]
    rs = _warm_ruleset(args, seeds[0])
    print("| seed | default mix models/s | median / p90 ms | validity | NNSmith models/s | median / p90 ms "
          "| ratio (mean) | ratio (median) | load |\n|---|---|---|---|---|---|---|---|---|")
    rows, ours_s, theirs_s, ours_n, theirs_n = [], 0.0, 0.0, 0, 0
    for seed in seeds:
        if args.chunk:  # the two generators take turns, chunk by chunk (nnsmith_baseline._run_taking_turns)
            chunks = []

            def own_turn(k, seed=seed, chunks=chunks):
                start = k * args.chunk
                if start < args.models:
                    chunks.append(generate_and_run(rs, min(args.chunk, args.models - start), args.nodes, seed,
                                                   Shares(), start=start))
            nn = nnsmith_speed(args.nnsmith_src, args.nnsmith_python or sys.executable, args.models, args.nodes, seed,
                               own_turn=own_turn, chunk=args.chunk)
            if "error" not in nn:
                done = sum(c["models"] for c in chunks)  # NNSmith made its last chunk: ours may be left
                if done < args.models:
                    chunks.append(generate_and_run(rs, args.models - done, args.nodes, seed, Shares(), start=done))
                new = merge_runs(chunks)
        else:
            new = generate_and_run(rs, args.models, args.nodes, seed, Shares())
            nn = nnsmith_speed(args.nnsmith_src, args.nnsmith_python or sys.executable, args.models, args.nodes, seed)
        if "error" in nn:
            print(f"reach_bench: NNSmith not available: {nn['error']}")
            return 2
        ours_n += new["models"]
        ours_s += new["models"] / new["models_per_s"]
        theirs_n += nn["generated"]  # NNSmith's mean is over the models it made
        theirs_s += nn["generated"] / nn["models_per_s_mean"]
        rows.append({"seed": seed, "default": {k: v for k, v in new.items() if k not in ("facts", "per_model_s")},
                     "nnsmith": nn})
        print(f"| {seed} | {new['models_per_s']:.2f} | {new['median_ms']:.2f} / {new['p90_ms']:.2f} | "
              f"{new['validity']:.4f} | {nn['models_per_s_mean']:.2f} | {nn['median_ms']:.2f} / {nn['p90_ms']:.2f} | "
              f"{new['models_per_s'] / nn['models_per_s_mean']:.2f}x | {nn['median_ms'] / new['median_ms']:.2f}x | "
              f"{os.getloadavg()[0]:.1f} |", flush=True)
    pooled = (ours_n / ours_s) / (theirs_n / theirs_s)
    print(f"\nover all {len(seeds)} seeds: default mix {ours_n / ours_s:.2f} models/s, NNSmith {theirs_n / theirs_s:.2f}: "
          f"**{pooled:.2f}x**")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"seeds": rows, "pooled_ratio": pooled}, fh, indent=1, default=str)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", type=int, default=1000, help="models of the default mix (default 1000)")
    ap.add_argument("--legacy-models", type=int, default=250, help="models of the legacy mix (default 250)")
    ap.add_argument("--nodes", type=int, default=5, help="operators per model (default 5, the campaign default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rules", default=None)
    ap.add_argument("--nnsmith-src", default=os.environ.get("NNSMITH_SRC"))
    ap.add_argument("--nnsmith-python", default=os.environ.get("NNSMITH_PYTHON"))
    ap.add_argument("--nnsmith-models", type=int, default=None,
                    help="NNSmith models (default: as many as --models; a model's time has a long tail "
                         "in both generators, so a smaller sample understates the mean)")
    ap.add_argument("--campaign", action="append", default=[], help="a finished campaign folder (repeatable)")
    ap.add_argument("--baseline", action="append", default=[], help="a baseline campaign folder (repeatable)")
    ap.add_argument("--skip", default="", help="comma-separated: models, legacy, nnsmith")
    ap.add_argument("--json", default=None, help="write every number to this file")
    ap.add_argument("--dtype-themes", default=None,
                    help="the default mix with these dtype-theme shares instead (e.g. int16=1: one theme's "
                         "validity and what its models hold)")
    ap.add_argument("--chunk", type=int, default=100,
                    help="--speed-seeds: the two generators take turns, this many models each (0: all of "
                         "one, then all of the other)")
    ap.add_argument("--speed-seeds", default=None,
                    help="comma-separated seeds: only the speed comparison, --models of the default mix and "
                         "of NNSmith per seed, one after the other, then the ratio over all of them (both "
                         "generators' means hinge on a few slow models, so one seed is not a measurement)")
    args = ap.parse_args(argv)
    if args.speed_seeds:
        return _speed_over_seeds(args)
    skip = set(filter(None, args.skip.split(",")))
    result = {"loadavg_start": os.getloadavg()[0]}
    if "models" not in skip:
        from fuzz.gen.policy import Shares

        shares = Shares().with_axis("dtype", args.dtype_themes) if args.dtype_themes else Shares()
        rs = _warm_ruleset(args, args.seed)
        new = generate_and_run(rs, args.models, args.nodes, args.seed, shares)
        rows = shares_table(new)
        rows += [("mode", m, s) for m, s in mode_mix(args.models, args.seed, args.nodes, shares.to_json()).items()]
        _print_rows(f"default mix: {args.models} models, {args.nodes} nodes, seed {args.seed}", rows)
        result["default"] = {k: v for k, v in new.items() if k != "facts"} | {"rows": rows}
        speed = [("default mix", new)]
        if args.legacy_models and "legacy" not in skip:
            old = generate_and_run(rs, args.legacy_models, args.nodes, args.seed, None)
            result["legacy"] = {k: v for k, v in old.items() if k != "facts"} | {"rows": shares_table(old)}
            speed.append(("legacy mix (d967a17 defaults)", old))
        print("\n## validity and speed\n")
        print("| generator | models | validity | generation failures | models/s | median ms | p90 ms |\n"
              "|---|---|---|---|---|---|---|")
        for name, r in speed:
            print(f"| {name} | {r['models']} | {r['validity']:.4f} | {r['generation_failures']} | {r['models_per_s']:.2f} "
                  f"| {r['median_ms']:.2f} | {r['p90_ms']:.2f} |")
        if args.nnsmith_src and "nnsmith" not in skip:
            from benchmarks.gen_bench import nnsmith_speed

            nn = nnsmith_speed(args.nnsmith_src, args.nnsmith_python or sys.executable, args.nnsmith_models or args.models,
                               args.nodes, args.seed)
            result["nnsmith"] = nn
            if "error" in nn:
                print(f"| NNSmith | - | - | - | unavailable: {nn['error']} |")
            else:
                print(f"| NNSmith bc0af42 | {nn.get('models')} | {nn.get('eager_valid') or float('nan'):.4f} | "
                      f"{nn.get('failed_make_testcase')} | {nn.get('models_per_s_mean') or float('nan'):.2f} "
                      f"| {nn.get('median_ms') or float('nan'):.2f} | {nn.get('p90_ms') or float('nan'):.2f} |")
                ours = dict(speed).get("default mix")
                if ours and nn.get("models_per_s_mean"):
                    print(f"\ndefault mix / NNSmith: {ours['models_per_s'] / nn['models_per_s_mean']:.2f}x on the mean, "
                          f"{nn['median_ms'] / ours['median_ms']:.2f}x on the median (models/s; "
                          f"{ours['models']} and {nn.get('models')} models)")
        for name, r in speed:
            if r["errors"]:
                print(f"\n{name}: most common errors: " + "; ".join(f"{k} (x{v})" for k, v in r["errors"].items()))
    if args.campaign or args.baseline:
        print("\n## campaigns\n")
        print("| campaign | tests | tests/min | inductor tests read | vectorised | parallel | judged | signatures "
              "| cases | reduced classes |\n|---|---|---|---|---|---|---|---|---|---|")
        rows = [("new", p) for p in args.campaign] + [("baseline", p) for p in args.baseline]
        result["campaigns"] = []
        for kind, path in rows:
            c = campaign_numbers(path)
            c["kind"] = kind
            result["campaigns"].append(c)
            if "error" in c:
                print(f"| {kind}: {path} | {c['error']} |")
                continue

            def f(x):
                return "-" if x is None else (f"{x:.3f}" if isinstance(x, float) else str(x))

            print(f"| {kind}: {os.path.basename(path.rstrip('/'))} | {f(c['tests'])} | {f(c['tests_per_min'])} | "
                  f"{f(c['inductor_code_tests'])} | {f(c['vectorised_share'])} | {f(c['parallel_share'])} | "
                  f"{f(c['judged_share'])} | {f(c['signatures'])} | {f(c['cases'])} | {f(c.get('reduced_classes'))} |")
    result["loadavg_end"] = os.getloadavg()[0]
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
