"""Corpus-level inference: read traces, split off held-out records, infer every signature
in a process pool, validate on the held-out records, write rules and stats.

Held-out split: a record is held out when ``crc32(f"{seed}:" + its canonical JSON) % 100 < 20``
(deterministic, independent of record order). Rules are inferred from the other 80 %.

Held-out numbers (all in ``rules-stats.json``):

- ``heldout_shape_accuracy``: the accuracy of the inferred shape rules -- of the held-out valid
  calls whose signature has a symbolic rule, the share whose output shapes the rule's
  expressions predict exactly (evaluated at the call, whether or not the rule's constraints
  accept it: an expression that is right only on the records it was fitted to fails here).
  ``heldout_shape_accuracy_symbolic`` is the same number (its name before it became the
  headline). Coverage is separate: ``heldout_valid_covered_symbolic`` is the share of held-out
  valid calls that have a symbolic rule at all, and ``heldout_shape_accuracy_all_calls`` counts a
  call with no matching signature, or a concrete-only one, as not predicted.
- ``heldout_invalid_rejection``: held-out invalid calls the generator could not produce:
  rejected by the constraints of their signature's symbolic rule, or of a signature with no
  rule at all or a concrete-only one whose examples do not contain them;
  ``heldout_invalid_rejection_symbolic`` counts only those that reach a symbolic rule.
"""

from __future__ import annotations

import glob
import json
import os
import sys
import time
import zlib

from fuzz.ir import dsl
from fuzz.errors import AssayError
from fuzz.ir.opnames import name_matches
from fuzz.ir.record import Record, iter_tensor_values
from fuzz.ir.rule import Rule, write_rules
from fuzz.ir.template import float_key, signature_key, split_call
from fuzz.rules import validate as V
from fuzz.rules.groups import Call, Group
from fuzz.rules.per_signature import concrete_rule, infer_group
from fuzz.rules.refine import refine_rules
from fuzz.rules.summary import order_stats, summarise

HELDOUT_PERCENT = 20


def corpus_files(corpus: str) -> list[str]:
    files = sorted(glob.glob(os.path.join(corpus, "traces*.jsonl.gz")) + glob.glob(os.path.join(corpus, "traces*.jsonl")))
    if not files:
        raise AssayError(f"no traces*.jsonl.gz in {corpus}; run 'assay traces collect' first or pass --corpus DIR")
    return files


def is_heldout(line_json: str, seed: int) -> bool:
    return zlib.crc32(f"{seed}:{line_json}".encode()) % 100 < HELDOUT_PERCENT


def _call_json(record):
    """(key, compact call) for a record: everything a worker needs, JSON-ready."""

    template, values = split_call(record)
    key = signature_key(record, template, values)
    call = {"s": [list(s) for s in values.shapes], "d": list(values.dtypes), "i": list(values.ints)}
    if values.floats:
        call["f"] = list(values.floats)
    if record.ok:
        call["o"] = [[t["T"], t["dtype"]] for t in iter_tensor_values(record.out or [])]
    return key, template, [len(s) for s in values.shapes], len(values.ints), call


def load_tasks(corpus: str, seed: int, ops: set[str] | None, progress) -> tuple[dict, dict]:
    """Read the corpus into per-operator tasks (JSON-ready) and corpus counts."""

    import gzip

    tasks: dict[tuple, dict] = {}
    counts = {"valid_records": 0, "invalid_records": 0, "heldout_valid": 0, "heldout_invalid": 0,
              "skipped_records": 0}
    ops_all: set = set()
    for path in corpus_files(corpus):
        opener = gzip.open if path.endswith(".gz") else open
        try:
            fh = opener(path, "rt", encoding="utf-8")
            lines = list(fh)
            fh.close()
        except (OSError, EOFError) as exc:
            raise AssayError(f"{path}: cannot read trace file ({exc}); rebuild with 'assay traces collect'") from None
        for lineno, line in enumerate(lines, 1):
            line = line.strip()
            if not line:
                continue
            try:
                data = json.loads(line)
                rec = Record.from_json(data)
            except ValueError as exc:
                raise AssayError(f"{path}:{lineno}: corrupt trace record ({exc}); rebuild with 'assay traces collect'") from None
            ops_all.add((rec.kind, rec.op))
            if ops and rec.name not in ops and not any(name_matches(q, rec.kind, rec.op, rec.overload) for q in ops):
                continue
            try:
                key, template, ranks, n_ints, call = _call_json(rec)
            except Exception:  # noqa: BLE001 - a record the splitter cannot handle is skipped, and counted
                counts["skipped_records"] += 1
                continue
            held = is_heldout(json.dumps(data, sort_keys=True, separators=(",", ":")), seed)
            counts["valid_records" if rec.ok else "invalid_records"] += 1
            if held:
                counts["heldout_valid" if rec.ok else "heldout_invalid"] += 1
            t = tasks.setdefault((rec.kind, rec.op, rec.overload), {"kind": rec.kind, "op": rec.op,
                                                                   "overload": rec.overload, "groups": {}})
            g = t["groups"].setdefault(key, {"template": template, "ranks": ranks, "n_ints": n_ints,
                                            "valid": [], "invalid": [], "hv": [], "hi": []})
            g[("hv" if rec.ok else "hi") if held else ("valid" if rec.ok else "invalid")].append(call)
        progress(f"read {path}")
    counts["ops_in_corpus"] = len(ops_all)
    return tasks, counts


# ---------------------------------------------------------------------------
# worker side


def _calls(items, with_outs: bool):

    out = []
    for c in items:
        outs = tuple((tuple(s), d) for s, d in c["o"]) if with_outs else ()
        out.append(Call(tuple(tuple(s) for s in c["s"]), tuple(c["d"]), tuple(c["i"]), outs, tuple(c.get("f", ()))))
    return out


def _drop_ints(ints, drop):
    """ints without the specialised positions ``drop`` (descending), or all of them."""
    ints = tuple(ints)
    for k in drop or ():
        ints = ints[:k] + ints[k + 1:]
    return ints


def _env(call, drop=None) -> dict:
    env = {}
    for i, s in enumerate(call.shapes):
        for j, d in enumerate(s):
            env[f"x{i}_{j}"] = d
    ints = _drop_ints(call.ints, drop)
    for k, v in enumerate(ints):
        env[f"a{k}"] = v
    return env


def predict(rule, env) -> list | None:
    if rule.status != "symbolic" or rule.outputs is None:
        return None
    try:
        return [[dsl.evaluate(e, env) for e in out] for out in rule.outputs]
    except (dsl.EvalError, ZeroDivisionError):
        return None


def infer_task(task_json: str) -> str:
    """Infer one operator's signatures and validate them on its held-out calls. JSON in, JSON out."""
    task = json.loads(task_json)
    seconds = task.get("seconds", 1.5)
    t0 = time.monotonic()
    c0 = time.process_time()
    rules_out = []
    st = {"heldout_valid": 0, "heldout_predicted": 0, "heldout_valid_symbolic": 0, "heldout_predicted_symbolic": 0,
          "heldout_accepted_symbolic": 0, "heldout_invalid": 0, "heldout_rejected": 0,
          "heldout_invalid_symbolic": 0, "heldout_rejected_symbolic": 0, "heldout_rejected_learned": 0,
          "heldout_invalid_no_rule": 0, "heldout_rejected_shape": 0, "heldout_rejected_symbolic_shape": 0,
          "heldout_invalid_dtypes_unseen": 0, "heldout_predicted_accepted": 0}
    for key in sorted(task["groups"]):
        gj = task["groups"][key]
        g = Group(task["kind"], task["op"], task["overload"], gj["template"], gj["ranks"], gj["n_ints"])
        g.valid = _calls(gj["valid"], True)
        g.invalid = _calls(gj["invalid"], False)
        hv = _calls(gj["hv"], True)
        hi = _calls(gj["hi"], False)
        if time.process_time() - c0 > task.get("op_seconds", 60):
            rules, spec = ([], None)
            if g.valid:
                rules = [concrete_rule(g, "operator time budget spent")]
        else:
            rules, spec = infer_group(g, seconds)
            if task.get("refine", True):
                rules = refine_rules(rules, seconds)
        for r in rules:
            r.stats.update({"heldout_valid": 0, "heldout_predicted": 0, "heldout_invalid": 0, "heldout_rejected": 0,
                            "heldout_accepted": 0, "heldout_rejected_learned": 0, "heldout_rejected_shape": 0,
                            "heldout_predicted_accepted": 0})

        def rule_for(call):
            """The rule whose part of the signature the call is in (float values, specialised int
            args), and the int positions it dropped (descending); (None, None) if none."""
            fk = float_key(call.floats)
            for r in rules:
                if r.stats.get("float_values", fk) != fk:
                    continue
                sp = r.stats.get("specialised")
                if sp is None:
                    return r, None
                if all(call.ints[k] == v for k, v in zip(sp["args"], sp["values"])):
                    return r, sp["args"]
            return None, None

        for c in hv:
            st["heldout_valid"] += 1
            rule, drop = rule_for(c)
            if rule is None:
                continue
            rule.stats["heldout_valid"] += 1
            if rule.status != "symbolic":
                continue
            st["heldout_valid_symbolic"] += 1
            env = _env(c, drop)
            pred = predict(rule, env)
            hit = pred is not None and pred == [list(s) for s, _ in c.outs]
            if hit:
                st["heldout_predicted"] += 1
                st["heldout_predicted_symbolic"] += 1
                rule.stats["heldout_predicted"] += 1
            if dsl.holds(rule.constraints, env):
                st["heldout_accepted_symbolic"] += 1
                rule.stats["heldout_accepted"] += 1
                st["heldout_predicted_accepted"] += hit
                rule.stats["heldout_predicted_accepted"] += hit
        for c in hi:
            st["heldout_invalid"] += 1
            rule, drop = rule_for(c)
            if rule is None:
                st["heldout_rejected"] += 1
                st["heldout_rejected_shape"] += 1
                st["heldout_invalid_no_rule"] += 1
                continue
            rule.stats["heldout_invalid"] += 1
            if rule.status != "symbolic":
                shapes = [list(s) for s in c.shapes]
                ints = list(_drop_ints(c.ints, drop))
                replayed = any(e["shapes"] == shapes and e["ints"] == ints and e["dtypes"] == list(c.dtypes)
                               and float_key(e.get("floats", [])) == float_key(c.floats if "float_values" not in
                                                                             rule.stats else ())
                               for e in rule.examples)
                if not replayed:
                    st["heldout_rejected"] += 1
                    st["heldout_rejected_shape"] += 1
                    rule.stats["heldout_rejected"] += 1
                    rule.stats["heldout_rejected_shape"] += 1
                continue
            st["heldout_invalid_symbolic"] += 1
            env = _env(c, drop)
            # The generator draws dtypes only from rule.dtypes (the valid combinations seen): a call
            # with another input dtype tuple cannot be produced, whatever its shapes.
            dtype_out = list(c.dtypes) not in [d[0] for d in rule.dtypes]  # (or, below, floats)
            # Likewise floats: drawn only from rule.floats, the float values seen valid.
            if rule.floats and "float_values" not in rule.stats:
                dtype_out = dtype_out or float_key(c.floats) not in {float_key(f) for f in rule.floats}
            shape_out = not dsl.holds(rule.constraints, env)
            st["heldout_invalid_dtypes_unseen"] += dtype_out
            if dtype_out or shape_out:
                st["heldout_rejected"] += 1
                st["heldout_rejected_symbolic"] += 1
                rule.stats["heldout_rejected"] += 1
            if shape_out:
                st["heldout_rejected_shape"] += 1
                st["heldout_rejected_symbolic_shape"] += 1
                rule.stats["heldout_rejected_shape"] += 1
                n_learned = rule.stats.get("learned_constraints", 0)
                if n_learned and not dsl.holds(rule.constraints[:n_learned], env):
                    st["heldout_rejected_learned"] += 1
                    rule.stats["heldout_rejected_learned"] += 1
        rules_out.extend(rules)
    return json.dumps({"kind": task["kind"], "op": task["op"], "overload": task["overload"],
                       "rules": [r.to_json() for r in rules_out], "stats": st,
                       "seconds": round(time.monotonic() - t0, 3), "cpu_seconds": round(time.process_time() - c0, 3)})


# ---------------------------------------------------------------------------
# driver


def run_inference(corpus: str, out: str, workers: int = 2, ops: set[str] | None = None, seed: int = 0,
                  seconds: float = 1.5, progress=None, refine: bool = True, validate: bool = True,
                  validate_calls: int | None = None, validate_budget: float | None = None) -> dict:

    import torch

    if progress is None:
        def progress(msg):
            sys.stderr.write(f"rules: {msg}\n")
            sys.stderr.flush()

    t0 = time.monotonic()
    tasks, counts = load_tasks(corpus, seed, ops, progress)
    if ops and not tasks:
        raise AssayError(f"none of the operators {', '.join(sorted(ops))} is in the corpus {corpus}; "
                         "use names as recorded, e.g. 'torch.nn.functional.conv2d' or 'aten::convolution'")
    # Big operators first so that the pool does not end on one long task.
    order = sorted(tasks, key=lambda k: (-sum(len(g["valid"]) + len(g["invalid"]) for g in tasks[k]["groups"].values()),
                                         str(k)))
    payloads = []
    for k in order:
        t = dict(tasks[k])
        t["seconds"] = seconds
        t["refine"] = refine
        payloads.append(json.dumps(t))
    del tasks
    results = []
    last = time.monotonic()
    if workers > 1 and len(payloads) > 1:
        from fuzz.isolation import run_tasks

        def infer_chunks(payload, deadline):  # noqa: ARG001 - no per-operator deadline
            yield [json.loads(infer_task(payload))]

        def take(index, items, problem):
            nonlocal last
            if problem:
                raise AssayError(f"rule inference failed on operator {order[index]}: {problem}")
            results.extend(items)
            if time.monotonic() - last > 5 or len(results) == len(payloads):
                last = time.monotonic()
                progress(f"{len(results)}/{len(payloads)} operators, {time.monotonic() - t0:.1f} s elapsed")

        run_tasks(payloads, infer_chunks, workers=workers, time_budget=float("inf"), on_result=take,
                  tasks_per_worker=200)
    else:
        for i, p in enumerate(payloads, 1):
            results.append(json.loads(infer_task(p)))
            if time.monotonic() - last > 5 or i == len(payloads):
                last = time.monotonic()
                progress(f"{i}/{len(payloads)} operators, {time.monotonic() - t0:.1f} s elapsed")

    rules = [Rule.from_json(r) for res in results for r in res["rules"]]
    rules.sort(key=lambda r: r.key + json.dumps(r.stats.get("specialised")))
    stats = summarise(results, counts, rules)
    vcpu = 0.0
    if validate:
        # Final validation pass (fuzz/rules/validate.py): every symbolic rule on K fresh Z3-chosen
        # calls against torch; failures become concrete and the held-out numbers follow.

        summary = V.validate_rules(rules, workers=workers, k=validate_calls or V.K, budget=validate_budget,
                                   progress=progress)
        demoted = summary.pop("demoted")
        stats = V.adjust_stats(stats, demoted, rules)
        vcpu = summary["validation_cpu_seconds"]
        # One count of wrong rules: those refinement could not repair plus the final pass's.
        summary["rules_demoted_by_final_pass"] = summary["rules_demoted_by_validation"]
        summary["rules_demoted_by_validation"] += stats.get("rules_demoted_in_refinement", 0)
        stats.update(summary)
    write_rules(out, rules)
    elapsed = time.monotonic() - t0
    cpu = sum(res.get("cpu_seconds", 0.0) for res in results) + time.process_time() + vcpu
    stats.update({"torch_version": torch.__version__.split("+")[0], "inference_seconds": round(elapsed, 1),
                  "inference_cpu_seconds": round(cpu, 1),
                  "workers": workers, "seed": seed, "seconds_per_signature": seconds, "refine": refine,
                  "heldout_percent": HELDOUT_PERCENT, "corpus": os.path.abspath(corpus),
                  "rules_file": os.path.abspath(out), "rules_bytes": os.path.getsize(out)})
    stats = order_stats(stats)
    with open(os.path.join(os.path.dirname(os.path.abspath(out)), "rules-stats.json"), "w") as fh:
        json.dump(stats, fh, indent=2)
        fh.write("\n")
    return stats
