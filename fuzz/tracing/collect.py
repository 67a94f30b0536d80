"""``collect``: run every task in a process pool, then merge, dedupe, cap and write the corpus."""

from __future__ import annotations

import json
import os
import sys
import time
import zlib

from fuzz.errors import AssayError
from fuzz.ir.opnames import query_base_name
from fuzz.ir.rule import corpus_dir
from fuzz.ir.record import Record, write_records
from fuzz.tracing.stats import compute_stats

CORPUS_PREFIX = "traces"
SPLIT_BYTES = 20 * 1024 * 1024
# Per operator (kind, op, overload): at most this many mutant records, and this many
# records from each other source. Keeps common aten ops (aten::empty, aten::copy_, ...)
# that every sample reaches from swamping the corpus.
MUTATION_CAP = 300
SOURCE_CAP = 250

_SOURCE_ORDER = {"opinfo": 0, "moduleinfo": 1, "opinfo_error": 2, "dispatch": 3, "mutation": 4}


def default_out_dir() -> str:
    """``corpus/torch-<installed torch version>/`` of this checkout (``fuzz.ir.rule.corpus_dir``)."""
    return str(corpus_dir())


def _task_fn(cfg_json):
    def fn(task, deadline):
        from fuzz.tracing.sources import Config, run_task

        cfg = Config(**cfg_json)
        cfg.deadline = deadline
        return (yield from run_task(task, cfg))

    return fn


def select_tasks(ops: list[str] | None):
    from fuzz.tracing.sources import task_list, task_names

    tasks = task_list()
    if not ops:
        return tasks
    chosen, unknown = [], []
    for name in ops:
        hits = [t for t in tasks if name in task_names(t[0])]
        if not hits:  # any call level of the operator: relu, torch.relu, aten::relu, nn.ReLU
            base = query_base_name(name)
            hits = [t for t in tasks if base in {query_base_name(n) for n in task_names(t[0])}]
        if not hits:
            unknown.append(name)
        chosen.extend(h for h in hits if h not in chosen)
    if unknown:
        raise AssayError(
            f"unknown operator(s) in --ops: {', '.join(unknown)}; torch's test databases have no such operator "
            "(names like 'conv2d', 'nn.functional.conv2d', 'aten::add', 'linalg.svd' or 'nn.Conv2d' work)"
        )
    return chosen


def _call_key(d: dict) -> str:
    return json.dumps([d["kind"], d["op"], d.get("overload"), d.get("init"), d["args"], d["kwargs"]],
                      sort_keys=True, separators=(",", ":"))


def _line(d: dict) -> str:
    return json.dumps(d, sort_keys=True, separators=(",", ":"))


def merge(records: list[dict]) -> list[dict]:
    """Deterministic order, one record per distinct call, per-operator caps."""
    keyed = []
    for d in records:
        line = _line(d)
        keyed.append(((d["kind"], d["op"], d.get("overload") or ""), _SOURCE_ORDER.get(d.get("source"), 9), line, d))
    keyed.sort(key=lambda t: (t[0], t[1], t[2]))
    seen: set[str] = set()
    by_op: dict[tuple, dict[str, list]] = {}
    for op_key, _, line, d in keyed:
        ck = _call_key(d)
        if ck in seen:
            continue
        seen.add(ck)
        by_op.setdefault(op_key, {}).setdefault(d.get("source", ""), []).append((line, d))
    out = []
    for op_key in sorted(by_op):
        for source in sorted(by_op[op_key], key=lambda s: _SOURCE_ORDER.get(s, 9)):
            items = by_op[op_key][source]
            cap = MUTATION_CAP if source == "mutation" else SOURCE_CAP
            if len(items) > cap:
                items = _pick(items, cap)
            out.extend(d for _, d in items)
    return out


def _pick(items, cap):
    """A deterministic, outcome-balanced subset: half valid, half invalid where both exist."""
    ranked = sorted(items, key=lambda it: (zlib.crc32(it[0].encode()), it[0]))
    valid = [it for it in ranked if it[1]["ok"]]
    invalid = [it for it in ranked if not it[1]["ok"]]
    n_invalid = min(len(invalid), max(cap // 2, cap - len(valid)))
    keep = invalid[:n_invalid] + valid[: cap - n_invalid]
    keep_ids = {id(it) for it in keep}
    return [it for it in items if id(it) in keep_ids]


def write_corpus(out_dir: str, records: list[dict]) -> list[str]:
    """Write ``traces.jsonl.gz`` (split into ``traces-2.jsonl.gz``... if over ~20 MB). Returns the paths."""
    os.makedirs(out_dir, exist_ok=True)
    for name in os.listdir(out_dir):
        if name.startswith(CORPUS_PREFIX) and name.endswith(".jsonl.gz"):
            os.remove(os.path.join(out_dir, name))
    recs = [Record.from_json(d) for d in records]
    parts = 1
    while True:
        size = (len(recs) + parts - 1) // parts
        paths = []
        for p in range(parts):
            name = f"{CORPUS_PREFIX}.jsonl.gz" if p == 0 else f"{CORPUS_PREFIX}-{p + 1}.jsonl.gz"
            path = os.path.join(out_dir, name)
            write_records(path, recs[p * size:(p + 1) * size])
            paths.append(path)
        if max(os.path.getsize(p) for p in paths) <= SPLIT_BYTES or parts >= 16:
            return paths
        for p in paths:
            os.remove(p)
        parts += 1


def collect(out_dir: str, seed: int = 0, ops: list[str] | None = None, max_samples: int = 8,
            extra_samples: int = 2, workers: int = 2, time_budget: float = 30.0, progress=True) -> dict:
    """Collect the corpus into ``out_dir``; returns its stats (also written to traces-stats.json)."""
    import warnings

    warnings.filterwarnings("ignore")
    import torch  # noqa: F401  (imported before forking: workers start warm)

    from fuzz.tracing.sources import Config

    tasks = select_tasks(ops)
    cfg = Config(seed=seed, max_samples=max_samples, extra_samples=extra_samples).to_json()
    started = time.monotonic()
    all_records: list[dict] = []
    skipped: dict[str, str] = {}
    state = {"done": 0, "last": 0.0}
    tty = sys.stderr.isatty()

    def show(final=False):
        now = time.monotonic()
        if not progress or (not final and now - state["last"] < (0.5 if tty else 10.0)):
            return
        state["last"] = now
        line = (f"traces: {state['done']}/{len(tasks)} ops, {len(all_records)} records, "
                f"{now - started:.1f} s elapsed")
        sys.stderr.write(("\r" + line + ("\n" if final else "")) if tty else line + "\n")
        sys.stderr.flush()

    def on_result(tid, recs, problem):
        state["done"] += 1
        all_records.extend(recs)
        if problem:
            skipped[tasks[tid][1]] = problem
        show()

    from fuzz.tracing.pool import run_tasks

    run_tasks([t for t, _ in tasks], _task_fn(cfg), workers=workers, time_budget=time_budget,
              on_result=on_result, on_tick=show)
    show(final=True)
    merged = merge(all_records)
    paths = write_corpus(out_dir, merged)
    stats = compute_stats(merged)
    stats["files"] = {os.path.basename(p): os.path.getsize(p) for p in paths}
    stats["bytes"] = sum(stats["files"].values())
    stats["tasks"] = len(tasks)
    stats["skipped"] = dict(sorted(skipped.items()))
    stats["config"] = {k: v for k, v in cfg.items() if k != "deadline"}
    stats["config"].update({"time_budget": time_budget, "ops": ops or "all"})
    with open(os.path.join(out_dir, f"{CORPUS_PREFIX}-stats.json"), "w", encoding="utf-8") as fh:
        json.dump(stats, fh, indent=1, sort_keys=True)
        fh.write("\n")
    stats["wall_s"] = round(time.monotonic() - started, 1)
    return stats
