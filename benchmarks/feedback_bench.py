"""Guided (compiler feedback) vs blind campaigns, and what feedback costs per test.

Part 1, the cost (``--cost-models N``, in this process): N generated models compiled with
inductor (FX graph cache off, so every compile is a real one) with and without
``fuzz.campaign.feedback.observe("counters")``, in alternating order; the table gives the mean
compile-and-run time of each, the overhead in ms and %, the time spent reading and reducing the
counters (``feedback_ms``), and the same for ``coverage`` (line tracing) on a few models.

Part 2, the campaigns (``--minutes M``): ``assay fuzz --feedback coverage`` (guided; one test in
10 traced for line coverage) then ``assay fuzz --feedback off`` with the benchmark-only
``ASSAY_FEEDBACK_MEASURE=coverage`` (blind: every model fresh; features and coverage counted by
the same code, never used), one after the other (or, with ``--together``, at the same time, so
that on a shared machine both see the same background load), same seed, workers, backends and
wall time, each with an empty inductor cache of its own.
The table gives distinct features and compiler lines covered at each minute, ratios guided /
blind, unique failure signatures and saved cases with their re-check result, and which mutators
and knobs led to new features (``seeds/pool.json``). A PNG of features over time is written.

    python benchmarks/feedback_bench.py --minutes 15 --workers 1 --seed 5 --out /tmp/fbbench
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cost(models: int, seed: int, nodes: int, coverage_models: int) -> dict:
    import torch
    import torch._inductor.config as icfg

    from fuzz.campaign import feedback
    from fuzz.campaign.worker import generate_model
    from fuzz.gen import program

    torch.set_num_threads(1)
    icfg.compile_threads = 1
    feedback.HOOKS.install()  # once per worker, as in a campaign
    rows = {"plain": [], "counters": [], "coverage": [], "coverage_plain": [], "read_ms": []}
    made = 0
    index = 0
    while made < models and index < models * 4:
        index += 1
        try:
            graph, tensors = generate_model(seed, index, nodes)
        except Exception:
            continue
        tmp = Path(f"/tmp/assay-fbcost-{os.getpid()}-{index}")
        program.save_program(graph, tensors, tmp)
        _, module, inputs = program.load_program(tmp)

        def once(mode=None, lines=False):
            torch._dynamo.reset()
            t0 = time.perf_counter()
            try:
                with icfg.patch(fx_graph_cache=False), torch.no_grad():
                    if mode is None:
                        torch.compile(module)(*inputs)
                        return time.perf_counter() - t0, None
                    with feedback.observe(mode, lines=lines) as obs:
                        torch.compile(module)(*inputs)
                    return time.perf_counter() - t0, obs
            except Exception:
                return None, None

        order = ("plain", "counters") if made % 2 == 0 else ("counters", "plain")
        got = {}
        for which in order:
            got[which] = once(None if which == "plain" else "counters")
        if got["plain"][0] is None or got["counters"][0] is None:
            continue
        rows["plain"].append(got["plain"][0])
        rows["counters"].append(got["counters"][0])
        rows["read_ms"].append(got["counters"][1].feedback_ms)
        if made < coverage_models:
            c, _ = once("coverage", lines=True)
            p, _ = once(None)
            if c is not None and p is not None:
                rows["coverage"].append(c)
                rows["coverage_plain"].append(p)
        made += 1

    def mean(v):
        return sum(v) / len(v) if v else float("nan")

    out = {"models": made, "plain_ms": 1000 * mean(rows["plain"]), "counters_ms": 1000 * mean(rows["counters"]),
           "read_ms": mean(rows["read_ms"]), "coverage_models": len(rows["coverage"]),
           "coverage_ms": 1000 * mean(rows["coverage"]), "coverage_plain_ms": 1000 * mean(rows["coverage_plain"])}
    out["counters_overhead_pct"] = 100 * (out["counters_ms"] / out["plain_ms"] - 1)
    out["coverage_overhead_pct"] = 100 * (out["coverage_ms"] / out["coverage_plain_ms"] - 1)
    return out


def campaign_command(out: Path, minutes: float, workers: int, seed: int, nodes: int, backends: str,
                     guided: bool) -> tuple[list, dict]:
    # Each campaign gets an empty inductor cache of its own: both make the same fresh models (same
    # seed), and the second would otherwise compile them from the first one's FX graph cache (a
    # first run measured inductor tests of the same models at 4.2 s guided vs 0.46 s blind).
    cache = out.parent / f"{out.name}-inductor-cache"
    if cache.exists():
        import shutil

        shutil.rmtree(cache)
    env = dict(os.environ, PYTHONPATH=str(REPO), TORCHINDUCTOR_CACHE_DIR=str(cache))
    mode = "coverage" if guided else "off"
    if not guided:
        env["ASSAY_FEEDBACK_MEASURE"] = "coverage"
    cmd = [sys.executable, "-m", "fuzz.cli", "fuzz", "--out", str(out), "--time", f"{minutes}m", "--workers",
           str(workers), "--seed", str(seed), "--nodes", str(nodes), "--backends", backends, "--feedback", mode,
           "--progress-every", "60"]
    return cmd, env


def run_campaigns(runs: dict, together: bool) -> dict:
    """Run the campaigns of ``runs`` (name -> (cmd, env)) one after the other, or all at once
    (``together``: on a shared machine whose background load changes, both then see the same
    load); name -> wall seconds."""
    walls, procs = {}, {}
    for name, (cmd, env) in runs.items():
        t0 = time.monotonic()
        if together:
            procs[name] = (subprocess.Popen(cmd, env=env, cwd=REPO), t0)
        else:
            subprocess.run(cmd, env=env, cwd=REPO, check=False)
            walls[name] = time.monotonic() - t0
    for name, (proc, t0) in procs.items():
        proc.wait()
        walls[name] = time.monotonic() - t0
    return walls


def series(out: Path) -> list[dict]:
    with open(out / "plot_data.csv", newline="") as fh:
        return [r for r in csv.DictReader(fh)]


def at_minute(rows: list[dict], minute: float, key: str, by: str = "elapsed_s", scale: float = 60):
    """``key`` in the last row at or before ``minute`` (or, ``by="tests"``, ``scale=1``: N tests)."""
    best = None
    for r in rows:
        if r.get(key) not in (None, "") and float(r[by]) <= minute * scale + (5 if by == "elapsed_s" else 0):
            best = float(r[key])
    return best


def load_check(out: Path) -> str:
    """Mean test seconds of the fresh models both campaigns ran: how different their machine load was."""
    import statistics

    mutants = set()
    jobs = out / "guided" / "seeds" / "jobs.jsonl"
    if jobs.exists():
        mutants = {json.loads(line)["model"] for line in jobs.read_text().splitlines() if line.strip()}

    def times(name):
        db = sqlite3.connect(out / name / "index.sqlite")
        return {(m, b): e for m, b, e in db.execute("SELECT model, backend, elapsed_s FROM tests") if e is not None}

    g, b = times("guided"), times("blind")
    lines = []
    for backend in sorted({k[1] for k in g}):
        keys = [k for k in g if k in b and k[0] not in mutants and k[1] == backend]
        if keys:
            lines.append(f"{backend}: {len(keys)} tests, {statistics.mean(g[k] for k in keys):.2f} s guided, "
                         f"{statistics.mean(b[k] for k in keys):.2f} s blind")
    return "same fresh models, mean test time (machine load): " + "; ".join(lines)


def cases(out: Path) -> list[dict]:
    db = sqlite3.connect(out / "index.sqlite")
    sigs = [dict(zip(("signature", "kind", "backend", "text", "count"), r))
            for r in db.execute("SELECT signature, kind, backend, text, count FROM signatures")]
    found = []
    for d in sorted(out.iterdir()):
        if (d / "case.json").is_file():
            c = json.loads((d / "case.json").read_text())
            found.append({"id": c["id"], "kind": c["kind"], "signature": c.get("signature"),
                          "reproduces": c.get("reproduces"), "knobs": sorted(c.get("knobs") or {}),
                          "ops": c.get("ops", [])[:6], "detail": (c.get("detail") or "")[:80]})
    return [{"signatures": sigs, "cases": found}]


def plot(guided: list[dict], blind: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.2))
    for rows, name, color in ((guided, "guided", "#e15759"), (blind, "blind", "#4e79a7")):
        pts = [(float(r["elapsed_s"]) / 60, float(r["features"])) for r in rows if r.get("features") not in (None, "")]
        a.plot([p[0] for p in pts], [p[1] for p in pts], label=name, color=color)
        pts = [(float(r["elapsed_s"]) / 60, float(r["coverage_lines"])) for r in rows
               if r.get("coverage_lines") not in (None, "")]
        b.plot([p[0] for p in pts], [p[1] for p in pts], label=name, color=color)
    a.set_title("distinct compiler features")
    b.set_title("compiler lines covered (1 test in 10)")
    for ax in (a, b):
        ax.set_xlabel("minutes")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--backends", default="inductor,aot_eager")
    ap.add_argument("--cost-models", type=int, default=12)
    ap.add_argument("--coverage-models", type=int, default=3)
    ap.add_argument("--skip-campaigns", action="store_true")
    ap.add_argument("--together", action="store_true",
                    help="run guided and blind at the same time (each with --workers), not one after the other")
    ap.add_argument("--out", default="/tmp/assay-feedback-bench")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {"args": vars(args)}
    if args.cost_models:
        c = cost(args.cost_models, args.seed, args.nodes, args.coverage_models)
        result["cost"] = c
        print(f"cost of feedback per test over {c['models']} models (inductor compile + first call, cache off):")
        print("| | mean ms per test | overhead |")
        print("|---|---:|---:|")
        print(f"| no feedback | {c['plain_ms']:.0f} | (baseline) |")
        print(f"| counters (hooks + read) | {c['counters_ms']:.0f} | {c['counters_ms'] - c['plain_ms']:+.0f} ms "
              f"({c['counters_overhead_pct']:+.1f}%) |")
        print(f"| of which reset + read + reduce | {c['read_ms']:.2f} | |")
        print(f"| coverage (line tracing), {c['coverage_models']} models | {c['coverage_ms']:.0f} vs "
              f"{c['coverage_plain_ms']:.0f} | {c['coverage_overhead_pct']:+.0f}% |")
    if not args.skip_campaigns:
        runs = {}
        for name, guided in (("guided", True), ("blind", False)):
            d = out / name
            if d.exists():
                import shutil

                shutil.rmtree(d)
            runs[name] = campaign_command(d, args.minutes, args.workers, args.seed, args.nodes, args.backends, guided)
        walls = run_campaigns(runs, args.together)
        for name in runs:
            d = out / name
            result[name] = {"wall_s": round(walls[name], 1), "stats": json.loads((d / "stats.json").read_text()),
                            "found": cases(d)}
        g, b = series(out / "guided"), series(out / "blind")
        print(f"\nguided vs blind, {args.minutes} min each ({'at the same time' if args.together else 'one after the other'}), "
              f"seed {args.seed}, {args.workers} worker(s), {args.backends}:")
        print("| minute | features guided | features blind | ratio | lines guided | lines blind | ratio |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        step = max(1, int(args.minutes // 8))
        for m in list(range(step, int(args.minutes) + 1, step)):
            fg, fb = at_minute(g, m, "features"), at_minute(b, m, "features")
            lg, lb = at_minute(g, m, "coverage_lines"), at_minute(b, m, "coverage_lines")
            r1 = f"{fg / fb:.2f}" if fg and fb else "-"
            r2 = f"{lg / lb:.2f}" if lg and lb else "-"
            print(f"| {m} | {fg or '-'} | {fb or '-'} | {r1} | {lg or '-'} | {lb or '-'} | {r2} |")
        print("\nat equal numbers of tests:")
        print("| tests | features guided | features blind | ratio | lines guided | lines blind | ratio |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        most = min(float(g[-1]["tests"]), float(b[-1]["tests"]))
        for n in (50, 100, 150, 200, 300, 400, 600, 800, 1200, 1600, 2400, 3200):
            if n > most:
                break
            fg, fb = at_minute(g, n, "features", "tests", 1), at_minute(b, n, "features", "tests", 1)
            lg, lb = at_minute(g, n, "coverage_lines", "tests", 1), at_minute(b, n, "coverage_lines", "tests", 1)
            r1 = f"{fg / fb:.2f}" if fg and fb else "-"
            r2 = f"{lg / lb:.2f}" if lg and lb else "-"
            print(f"| {n} | {fg or '-'} | {fb or '-'} | {r1} | {lg or '-'} | {lb or '-'} | {r2} |")
        print(load_check(out))
        for name in ("guided", "blind"):
            st = result[name]["stats"]
            found = result[name]["found"][0]
            print(f"\n{name}: {st['tests']} tests, {st['models']} models, {st['unique_signatures']} signatures, "
                  f"{st['cases_saved']} cases; feedback {json.dumps(st.get('feedback'))}")
            for s in found["signatures"]:
                print(f"  signature {s['signature'][:12]} {s['kind']} {s['backend']} x{s['count']}: {s['text'][:110]}")
            for c in found["cases"]:
                print(f"  case {c['id']} {c['kind']} reproduces={c['reproduces']} knobs={c['knobs']} "
                      f"ops={c['ops']} {c['detail']}")
        pool = json.loads((out / "guided" / "seeds" / "pool.json").read_text())
        print("\nguided: per mutator and knob, mutant models that brought new features (new) of those made (tries):")
        for kind in ("mutator", "knob"):
            for name, row in sorted(pool["credit"].get(kind, {}).items(), key=lambda kv: -kv[1]["new"]):
                print(f"  {kind} {name}: {row['new']} new in {row['tries']} tries")
        plot(g, b, out / "features.png")
        print(f"\nplot: {out / 'features.png'}")
    (out / "result.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
