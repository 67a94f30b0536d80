"""The numbers of an inference run (``rules-stats.json``): what was traced, what became
symbolic, and how the rules do on the held-out records.

``summarise`` builds them from the per-operator results of ``fuzz.rules.run``;
``fuzz.rules.validate.adjust_stats`` moves them after the final validation pass demotes rules.
"""

from __future__ import annotations

from collections import defaultdict

from fuzz.ir.opnames import base_name


STATS_ORDER = ["torch_version", "ops_traced", "ops_symbolic", "ops_concrete_only", "signatures", "signatures_symbolic",
               "signatures_symbolic_share", "valid_records", "invalid_records", "heldout_shape_accuracy",
               "heldout_invalid_rejection", "inference_seconds", "inference_cpu_seconds",
               "rules_demoted_by_validation"]


def share(a, b) -> float:
    """``a / b`` to 4 places; 1.0 when there is nothing to count (``b == 0``)."""
    return round(a / b, 4) if b else 1.0


def order_stats(stats: dict) -> dict:
    """``stats`` with the headline keys first, in ``STATS_ORDER``, then the rest as they came."""
    return {k: stats[k] for k in STATS_ORDER if k in stats} | {k: v for k, v in stats.items() if k not in STATS_ORDER}


def summarise(results, counts, rules) -> dict:
    tot = defaultdict(int)
    per_op = {}
    for res in results:
        for k, v in res["stats"].items():
            tot[k] += v
    op_rules = defaultdict(list)
    for r in rules:
        op_rules[(r.api, r.op)].append(r)
    traced = {(res["kind"], res["op"]) for res in results}
    sym_ops = {k for k, rs in op_rules.items() if any(r.status == "symbolic" for r in rs)}
    conc_ops = {k for k, rs in op_rules.items() if rs and k not in sym_ops}
    for res in results:
        k = (res["kind"], res["op"])
        rs = op_rules.get(k, [])
        e = per_op.setdefault(f"{res['op']}" if res["kind"] != "aten" else res["op"],
                              {"kind": res["kind"], "signatures": 0, "symbolic": 0, "heldout_valid": 0,
                               "heldout_predicted": 0, "heldout_invalid": 0, "heldout_rejected": 0, "seconds": 0.0})
        e["seconds"] = round(e["seconds"] + res["seconds"], 3)
        for name in ("heldout_valid", "heldout_predicted", "heldout_invalid", "heldout_rejected"):
            e[name] += res["stats"][name]
    for k, rs in op_rules.items():
        e = per_op[k[1]]
        e["signatures"] = len(rs)
        e["symbolic"] = sum(r.status == "symbolic" for r in rs)
    n_sig = len(rules)
    n_sym = sum(r.status == "symbolic" for r in rules)
    refine_demoted = [r for r in rules if "demoted" in r.stats and str(r.stats.get("reason", "")).startswith("refinement")]
    refine_reasons = defaultdict(int)
    for r in refine_demoted:
        refine_reasons[r.stats["demoted"]["why"].split(" ", 1)[0].rstrip(":")] += 1
    specialised = [r for r in rules if "specialised" in r.stats]
    by_kind = defaultdict(lambda: [0, 0])
    for k in traced:
        by_kind[k[0]][0] += 1
        by_kind[k[0]][1] += k in sym_ops
    return {
        "ops_traced": len(traced),
        "ops_symbolic": len(sym_ops),
        "ops_concrete_only": len(conc_ops),
        "ops_without_valid_records": len(traced - sym_ops - conc_ops),
        "ops_by_kind": {k: {"traced": v[0], "symbolic": v[1]} for k, v in sorted(by_kind.items())},
        "ops_traced_union": len({base_name(*k) for k in traced}),
        "ops_symbolic_union": len({base_name(*k) for k in sym_ops}),
        "signatures": n_sig,
        "signatures_symbolic": n_sym,
        "signatures_symbolic_share": share(n_sym, n_sig),
        "rules_repaired_by_refinement": sum(r.status == "symbolic" and r.stats.get("cegis_rounds", 0) > 0
                                            for r in rules),
        "rules_demoted_in_refinement": len(refine_demoted),
        "refinement_demoted_reasons": dict(sorted(refine_reasons.items())),
        "refinement_added_calls": {"valid": sum(r.stats.get("refine_valid", 0) for r in rules),
                                   "invalid": sum(r.stats.get("refine_invalid", 0) for r in rules)},
        "signatures_specialised_variants": len(specialised),
        "signatures_specialised_symbolic": sum(r.status == "symbolic" for r in specialised),
        "valid_records": counts["valid_records"],
        "invalid_records": counts["invalid_records"],
        "skipped_records": counts["skipped_records"],
        "heldout_valid": tot["heldout_valid"],
        "heldout_invalid": tot["heldout_invalid"],
        "heldout_shape_accuracy": share(tot["heldout_predicted_symbolic"], tot["heldout_valid_symbolic"]),
        "heldout_shape_accuracy_symbolic": share(tot["heldout_predicted_symbolic"], tot["heldout_valid_symbolic"]),
        "heldout_shape_accuracy_all_calls": share(tot["heldout_predicted"], tot["heldout_valid"]),
        "heldout_valid_reaching_symbolic": tot["heldout_valid_symbolic"],
        "heldout_valid_covered_symbolic": share(tot["heldout_valid_symbolic"], tot["heldout_valid"]),
        "heldout_valid_accepted_symbolic": share(tot["heldout_accepted_symbolic"], tot["heldout_valid_symbolic"]),
        "heldout_shape_accuracy_accepted": share(tot["heldout_predicted_accepted"], tot["heldout_accepted_symbolic"]),
        "heldout_invalid_rejection": share(tot["heldout_rejected"], tot["heldout_invalid"]),
        "heldout_invalid_rejection_shape_only": share(tot["heldout_rejected_shape"], tot["heldout_invalid"]),
        "heldout_invalid_rejection_symbolic": share(tot["heldout_rejected_symbolic"], tot["heldout_invalid_symbolic"]),
        "heldout_invalid_rejection_symbolic_shape_only": share(tot["heldout_rejected_symbolic_shape"],
                                                               tot["heldout_invalid_symbolic"]),
        "heldout_invalid_dtypes_unseen_symbolic": tot["heldout_invalid_dtypes_unseen"],
        "heldout_invalid_reaching_symbolic": tot["heldout_invalid_symbolic"],
        "heldout_invalid_rejection_learned_only": share(tot["heldout_rejected_learned"], tot["heldout_invalid_symbolic"]),
        "heldout_invalid_without_rule": tot["heldout_invalid_no_rule"],
        "per_op": dict(sorted(per_op.items())),
    }
