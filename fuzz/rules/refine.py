"""Counterexample-guided refinement (CEGIS) of a symbolic rule against torch.

The records alone often under-determine a rule (a signature seen on three calls, all with
5x5 inputs, and no invalid call at all). Refinement runs the validation probe
(``validate.probe_rule``: ``K`` calls drawn from the rule's own constraints with Z3, dims up to
64, int args across their observed ranges, the operator run on meta tensors) and feeds every
failure back as data:

- a call torch rejects becomes a new *invalid* record of the signature: the constraints were
  too loose, so only the constraints are inferred again (the output expressions stand);
- a call whose output shape differs from the prediction becomes a new *valid* record: the
  output expressions are synthesised again, then the constraints;

then it probes the new rule, for at most ``ROUNDS`` rounds and ``seconds`` of CPU (plus the
probes). A rule whose last probe passes is *validated* (``stats["validated"] = [K, SEED]``) and
the final validation pass does not draw the same calls again; a rule that still fails, or whose
failure is no data (unsat, timeout), is kept concrete. New calls are counted in ``Rule.stats``
(``refine_valid``, ``refine_invalid``, ``cegis_rounds``); held-out records are never used.
"""

from __future__ import annotations

import time

from fuzz.ir import dsl
from fuzz.rules import validate as V
from fuzz.rules.constraints import infer_constraints
from fuzz.rules.per_signature import Budget, concrete_rule, infer_group, infer_plain, source_group

ROUNDS = 4
FAILURES_PER_ROUND = 6


def refine(group, rule, seconds: float = 1.5, rounds: int = ROUNDS, k: int | None = None, seed=None):
    """Refine ``rule`` (inferred from ``group``) against torch; returns the final rule."""
    k = k or V.K
    seed = V.SEED if seed is None else seed
    start = time.process_time()
    added_valid = added_invalid = 0
    # Which part of its signature the rule is for: kept on every rule this returns.
    spec = {k: rule.stats[k] for k in ("specialised", "float_values") if k in rule.stats}
    why = ""
    for rnd in range(rounds):
        ok, why, found = V.probe_rule(rule, k, seed, max_failures=FAILURES_PER_ROUND)
        if ok:
            rule.stats.update({"refine_valid": added_valid, "refine_invalid": added_invalid,
                               "cegis_rounds": rnd, "validated": [k, seed]})
            rule.stats.update(spec)
            return rule
        if not found:
            break  # unsat / timeout: nothing to learn from
        new_valid = [c for outcome, c in found if outcome == "valid"]
        new_invalid = [c for outcome, c in found if outcome == "invalid"]
        group.valid.extend(new_valid)
        group.invalid.extend(new_invalid)
        added_valid += len(new_valid)
        added_invalid += len(new_invalid)
        if rnd == rounds - 1:
            break
        remaining = seconds - (time.process_time() - start)
        if remaining <= 0:
            why = f"{why} (refinement out of time)"
            break
        if new_valid:
            new_rule, reason = infer_plain(group, Budget(remaining), cheap=False, prior=True)
            if new_rule is None:
                why = f"{why} (then {reason})"
                break
            rule = new_rule
        else:
            # Only the constraints were too loose: same outputs, constraints from the larger records.
            constraints, cstats = infer_constraints(group, rule.outputs, prior=True)
            rule.constraints = constraints
            rule.stats.update({"invalid": len(group.invalid), **cstats})
        rule.stats.update(spec)
    outputs = [[dsl.render(e) for e in o] for o in rule.outputs or []]
    rule = concrete_rule(group, f"refinement: {why[:200]}")
    rule.stats.update({"refine_valid": added_valid, "refine_invalid": added_invalid,
                       "demoted": {"outputs": outputs, "why": why[:300]}})
    rule.stats.update(spec)
    return rule


def refine_rules(rules, seconds: float = 1.5) -> list:
    """Each symbolic rule from ``infer_group`` refined against torch (concrete ones as they are)."""
    out = []
    for r in rules:
        group = source_group(r)
        if r.status == "symbolic" and group is not None:
            r = refine(group, r, seconds)
        out.append(r)
    return out


def infer_refined(group, seconds: float = 1.5):
    """``infer_group`` then ``refine_rules``: what ``assay rules infer`` does for one signature."""
    rules, spec = infer_group(group, seconds)
    return refine_rules(rules, seconds), spec
