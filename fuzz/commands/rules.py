"""``assay rules``: infer operator rules from a trace corpus, summarise and show them."""

from __future__ import annotations

import json
import os
import sys

from fuzz.errors import AssayError
from fuzz.commands import command_group, output_file, positive_int, positive_seconds


def register(sub) -> None:
    rsub = command_group(
        sub, "rules", help="infer and inspect operator rules",
        description="Infer per-signature output-shape rules and input constraints from the trace corpus "
        "(enumerative synthesis + greedy constraint cover); see docs/inference.md.",
        examples="""\
  assay rules stats                                  what the shipped rules cover
  assay rules show conv2d                            every rule of conv2d, at any call level
  assay rules infer --ops relu,conv2d --out /tmp/rules.jsonl.gz
                                                     infer two operators' rules from the corpus
  assay rules infer                                  rebuild the shipped rules (about 11 minutes on 2 cores)
  assay rules merge /tmp/rules.jsonl.gz              put those operators' new rules into the shipped file
""")

    i = rsub.add_parser("infer", help="infer rules from a trace corpus",
                        description="Read corpus/torch-<v>/traces*.jsonl.gz, hold out 20%% of the records, infer "
                        "rules from the rest, validate on the held-out records, write rules.jsonl.gz and "
                        "rules-stats.json.")
    i.add_argument("--corpus", metavar="DIR", default=None,
                   help="trace corpus directory (default: corpus/torch-<installed torch version>/)")
    i.add_argument("--out", metavar="FILE", default=None,
                   help="rules file to write (default: rules.jsonl.gz in the corpus directory)")
    i.add_argument("--workers", type=positive_int, default=2, help="worker processes (default 2)")
    i.add_argument("--ops", metavar="OP[,OP]", default=None,
                   help="only these operators, as recorded (torch.nn.functional.conv2d, aten::convolution, "
                   "torch.nn.Conv2d) or by base name (conv2d)")
    i.add_argument("--seed", type=int, default=0, help="seed of the held-out split (default 0)")
    i.add_argument("--time-budget", type=positive_seconds, default=1.5,
                   help="seconds of synthesis per signature before it is kept concrete (default 1.5)")
    i.add_argument("--no-refine", action="store_true",
                   help="no counterexample-guided refinement: symbolic rules are not probed against torch "
                   "during inference, and the final validation pass demotes failures without repair")
    i.add_argument("--no-validate", action="store_true",
                   help="skip the final validation pass (every symbolic rule on K fresh calls against torch; "
                   "failures become concrete); see 'assay rules validate'")
    i.add_argument("--validate-calls", type=positive_int, default=None,
                   help="calls per rule in the validation pass (default 16)")
    i.add_argument("--validate-budget", type=positive_seconds, default=None,
                   help="wall seconds for the validation pass; rules not reached stay unvalidated (default: none)")
    i.add_argument("--quiet", action="store_true", help="no progress on stderr")
    i.set_defaults(func=_infer)

    v = rsub.add_parser("validate", help="re-check symbolic rules against torch, demote failures",
                        description="For every symbolic rule, draw K calls from its constraints with Z3 (dims up "
                        "to 64, int args across their observed ranges), run the operator on meta tensors and "
                        "compare output shapes; a rule with any failure becomes concrete. Writes the rules and "
                        "rules-stats.json with the held-out numbers after demotion. 'rules infer' runs this "
                        "pass itself.")
    v.add_argument("--rules", metavar="FILE", default=None, help="rules file (default: the shipped one)")
    v.add_argument("--out", metavar="FILE", default=None,
                   help="rules file to write (default: overwrite --rules); rules-stats.json goes next to it")
    v.add_argument("--workers", type=positive_int, default=2, help="worker processes (default 2)")
    v.add_argument("--calls", type=positive_int, default=None, help="calls per rule (default 16)")
    v.add_argument("--budget", type=positive_seconds, default=None,
                   help="wall seconds for the whole pass; rules not reached stay as they are (default: none)")
    v.add_argument("--seed", default=None,
                   help="seed of the draws (default validate-0, the seed inference's own probes use: rules that "
                   "passed those with the same --calls are not drawn again)")
    v.add_argument("--z3-only", action="store_true",
                   help="draw every call with the Z3 sampler (the tests' sampler) instead of every other call "
                   "uniformly")
    v.add_argument("--quiet", action="store_true", help="no progress on stderr")
    v.set_defaults(func=_validate)

    s = rsub.add_parser("stats", help="summarise the inferred rules",
                        description="Operators traced/symbolic/concrete-only, signatures, held-out accuracy.")
    s.add_argument("--rules", metavar="FILE", default=None,
                   help="rules file (default: corpus/torch-<installed torch version>/rules.jsonl.gz); "
                   "its rules-stats.json is read from the same directory")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument("--per-op", action="store_true", help="include per-operator numbers")
    s.set_defaults(func=_stats)

    m = rsub.add_parser("merge", help="replace some operators' rules in a rules file by newly inferred ones",
                        description="Every rule of an operator that NEW has (same api and name) replaces that "
                        "operator's rules in the target file; the other operators' rules stay as they are. "
                        "For re-inferring a few operators ('rules infer --ops') without rebuilding everything.")
    m.add_argument("new", metavar="NEW", help="rules file with the operators' new rules")
    m.add_argument("--into", metavar="FILE", default=None, help="rules file to update (default: the shipped one)")
    m.set_defaults(func=_merge)

    w = rsub.add_parser("show", help="print an operator's rules",
                        description="Print every signature of an operator: template, constraints, output shapes.")
    w.add_argument("op", help="operator as recorded: aten::convolution, torch.nn.functional.conv2d, torch.nn.Conv2d")
    w.add_argument("--rules", metavar="FILE", default=None, help="rules file (default: the shipped one)")
    w.add_argument("--limit", type=positive_int, default=50, help="at most this many signatures (default 50)")
    w.set_defaults(func=_show)


def _default_corpus() -> str:
    from fuzz.ir.rule import corpus_dir

    return str(corpus_dir())


def _infer(args) -> int:
    from fuzz.rules.run import run_inference

    corpus = args.corpus or _default_corpus()
    if not os.path.isdir(corpus):
        raise AssayError(f"corpus directory {corpus} does not exist; run 'assay traces collect' or pass --corpus DIR")
    out = output_file(args.out or os.path.join(corpus, "rules.jsonl.gz"))
    ops = {o.strip() for o in args.ops.split(",") if o.strip()} if args.ops else None

    def progress(msg):
        if not args.quiet:
            sys.stderr.write(f"rules: {msg}\n")
            sys.stderr.flush()

    stats = run_inference(corpus, out, workers=args.workers, ops=ops, seed=args.seed,
                          seconds=args.time_budget, progress=progress, refine=not args.no_refine,
                          validate=not args.no_validate, validate_calls=args.validate_calls,
                          validate_budget=args.validate_budget)
    stats.pop("per_op", None)
    sys.stdout.write(f"wrote {out}\n")
    _print_stats(stats)
    return 0


def _validate(args) -> int:
    from fuzz.rules import validate as V
    from fuzz.ir.rule import write_rules

    path, rules = _load_rules(args.rules)
    out = args.out or path
    stored = _read_stats(_stats_path(path))

    def progress(msg):
        if not args.quiet:
            sys.stderr.write(f"rules: {msg}\n")
            sys.stderr.flush()

    summary = V.validate_rules(rules, workers=args.workers, k=args.calls or V.K, budget=args.budget,
                               progress=progress, seed=args.seed or V.SEED, uniform=not args.z3_only)
    demoted = summary.pop("demoted")
    stats = V.adjust_stats(stored, demoted, rules)
    prev = stored.get("rules_demoted_by_validation", 0) or 0
    summary["rules_demoted_by_validation"] += prev
    # Keep what earlier passes recorded (the pass inside inference, an earlier 'rules validate').
    earlier = {k: stored[k] for k in summary if k.startswith("validation_") or k.startswith("rules_validated")
               if k in stored}
    if earlier:
        stats.setdefault("earlier_validation", []).append(earlier)
    stats.update(summary)
    stats["validation_applied_to"] = "existing rules file (assay rules validate)"
    write_rules(out, rules)
    stats["rules_file"] = os.path.abspath(out)
    stats["rules_bytes"] = os.path.getsize(out)
    stats = recount(rules, stats)
    with open(_stats_path(out), "w") as fh:
        json.dump(stats, fh, indent=2)
        fh.write("\n")
    stats.pop("per_op", None)
    sys.stdout.write(f"wrote {out}: {len(demoted)} rules demoted, {summary['rules_unvalidated']} not reached\n")
    _print_stats(stats)
    return 0


def _merge(args) -> int:
    from fuzz.ir.rule import read_rules, write_rules

    path, rules = _load_rules(args.into)
    new = list(read_rules(args.new))
    ops = {(r.api, r.op) for r in new}
    kept = [r for r in rules if (r.api, r.op) not in ops]
    n = write_rules(path, kept + new)
    # The per-operator numbers follow the rules (the totals stay those of the last full inference).
    stats_new, stats_into = _read_stats(_stats_path(args.new)), _stats_path(path)
    stored = _read_stats(stats_into)
    if isinstance(stats_new.get("per_op"), dict) and isinstance(stored.get("per_op"), dict):
        names = {op for _, op in ops}
        stored["per_op"].update({k: v for k, v in stats_new["per_op"].items() if k in names})
        with open(stats_into, "w") as fh:
            json.dump(stored, fh, indent=1)
    print(f"merged {len(new)} rules of {len(ops)} operators into {path} ({len(rules) - len(kept)} replaced; {n} rules)")
    return 0


def _load_rules(path):
    from fuzz.ir.rule import read_rules, rules_path

    p = path or str(rules_path())
    return p, list(read_rules(p))


def _stats_path(rules_file: str) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(rules_file)), "rules-stats.json")


def _read_stats(sp: str) -> dict:
    """The stored rules-stats.json next to a rules file ({} when there is none)."""
    if not os.path.exists(sp):
        return {}
    try:
        with open(sp) as fh:
            stored = json.load(fh)
    except (OSError, ValueError) as exc:
        raise AssayError(f"{sp}: corrupt stats file ({exc}); rebuild with 'assay rules infer'") from None
    if not isinstance(stored, dict):
        raise AssayError(f"{sp}: corrupt stats file (not a JSON object); rebuild with 'assay rules infer'")
    return stored


def _stats(args) -> int:
    path, rules = _load_rules(args.rules)
    stored = _read_stats(_stats_path(path))
    stats = recount(rules, stored)
    if not args.per_op:
        stats.pop("per_op", None)
    if args.json:
        from fuzz.commands import print_json

        print_json(stats)
    else:
        _print_stats(stats)
    return 0


def recount(rules, stored: dict) -> dict:
    """The stats of a rules file: counts from the rules themselves, held-out numbers from the
    rules-stats.json that inference wrote (None where it is missing)."""
    ops = {}
    for r in rules:
        ops.setdefault((r.api, r.op), []).append(r)
    sym = {k for k, rs in ops.items() if any(r.status == "symbolic" for r in rs)}
    n_sym = sum(r.status == "symbolic" for r in rules)
    stats = dict(stored)
    stats.update({
        "torch_version": stored.get("torch_version"),
        "ops_traced": stored.get("ops_traced", len(ops)),
        "ops_symbolic": len(sym),
        "ops_concrete_only": len(ops) - len(sym),
        "signatures": len(rules),
        "signatures_symbolic": n_sym,
        "signatures_symbolic_share": round(n_sym / len(rules), 4) if rules else 0.0,
    })
    for key in ("valid_records", "invalid_records", "heldout_shape_accuracy", "heldout_invalid_rejection",
                "inference_seconds"):
        stats.setdefault(key, None)
    from fuzz.rules.summary import order_stats

    return order_stats(stats)


def _print_stats(stats: dict, out=sys.stdout) -> None:
    w = out.write

    def pct(x):
        return "n/a" if x is None else f"{100 * x:.2f}%"

    w(f"torch {stats.get('torch_version')}: {stats.get('ops_traced')} operators traced, "
      f"{stats.get('ops_symbolic')} with a symbolic rule, {stats.get('ops_concrete_only')} concrete-only\n")
    w(f"signatures: {stats.get('signatures')} ({stats.get('signatures_symbolic')} symbolic, "
      f"{pct(stats.get('signatures_symbolic_share'))})\n")
    w(f"records: {stats.get('valid_records')} valid, {stats.get('invalid_records')} invalid\n")
    if stats.get("heldout_shape_accuracy_all_calls") is not None:
        w(f"held-out shape accuracy: {pct(stats.get('heldout_shape_accuracy'))} of the held-out valid calls that"
          f" have a symbolic rule ({pct(stats.get('heldout_valid_covered_symbolic'))} of them do);"
          f" {pct(stats.get('heldout_shape_accuracy_all_calls'))} of all held-out valid calls\n")
    else:  # a stats file from before the headline changed: heldout_shape_accuracy was over all calls
        w(f"held-out shape accuracy: {pct(stats.get('heldout_shape_accuracy'))} of all held-out valid calls"
          f" ({pct(stats.get('heldout_shape_accuracy_symbolic'))} of those reaching a symbolic rule)\n")
    w(f"held-out invalid rejection: {pct(stats.get('heldout_invalid_rejection'))}"
      f" ({pct(stats.get('heldout_invalid_rejection_symbolic'))} of those reaching a symbolic rule;"
      f" by shape constraints alone {pct(stats.get('heldout_invalid_rejection_shape_only'))} and"
      f" {pct(stats.get('heldout_invalid_rejection_symbolic_shape_only'))})\n")
    if stats.get("rules_demoted_by_validation") is not None:
        w(f"validation: {stats.get('rules_demoted_by_validation')} symbolic rules demoted to concrete, "
          f"{stats.get('rules_unvalidated', 0)} not reached\n")
    w(f"inference: {stats.get('inference_seconds')} s wall, {stats.get('inference_cpu_seconds')} s CPU\n")


def _show(args) -> int:
    from fuzz.ir import dsl

    from fuzz.ir.opnames import name_matches

    path, rules = _load_rules(args.rules)
    # The exact name when it is recorded, else every call level of the same operator.
    mine = [r for r in rules if name_matches(args.op, r.api, r.op, r.overload, exact_only=True)] or \
           [r for r in rules if name_matches(args.op, r.api, r.op, r.overload)]
    if not mine:
        near = sorted({r.op for r in rules if args.op.split("::")[-1].split(".")[-1].lower() in r.op.lower()})[:5]
        hint = f" (similar: {', '.join(near)})" if near else ""
        raise AssayError(f"no rules for operator {args.op!r} in {path}{hint}; give any call level of it, "
                         "e.g. 'conv2d', 'torch.nn.functional.conv2d', 'aten::convolution' or 'nn.Conv2d'")
    w = sys.stdout.write
    n_sym = sum(r.status == "symbolic" for r in mine)
    w(f"{args.op}: {len(mine)} signatures, {n_sym} symbolic\n")
    for r in mine[: args.limit]:
        w("\n")
        name = f"{r.op}.{r.overload}" if r.overload and r.overload != "default" else r.op
        w(f"{name} [{r.status}] ranks {r.ranks}, {r.n_ints} int args\n")
        w(f"  template: {json.dumps(r.template)}\n")
        sp = r.stats.get("specialised")
        if sp:
            w(f"  specialised: int args {sp['args']} = {sp['values']} (literal in the template)\n")
        if r.stats.get("float_values"):
            w(f"  specialised: floats {r.stats['float_values']} (literal in the template)\n")
        if r.floats:
            shown = ", ".join(json.dumps(f) for f in r.floats[:6])
            w(f"  floats seen valid ({len(r.floats)}): {shown}{', ...' if len(r.floats) > 6 else ''}\n")
        if r.status == "symbolic":
            for o, out in enumerate(r.outputs or []):
                w(f"  out{o}: [{', '.join(dsl.render(e) for e in out)}]\n")
            if r.constraints:
                w("  constraints:\n")
                for c in r.constraints:
                    w(f"    {dsl.render(c)}\n")
        else:
            w(f"  reason: {r.stats.get('reason')}\n")
        w(f"  examples: {len(r.examples)}, dtype combinations: {len(r.dtypes)}, "
          f"train valid/invalid {r.stats.get('valid')}/{r.stats.get('invalid')}, held-out predicted "
          f"{r.stats.get('heldout_predicted')}/{r.stats.get('heldout_valid')}, rejected "
          f"{r.stats.get('heldout_rejected')}/{r.stats.get('heldout_invalid')}\n")
    if len(mine) > args.limit:
        w(f"\n... {len(mine) - args.limit} more (use --limit)\n")
    return 0
