"""Counterexample-guided refinement of a symbolic rule against torch.

The records alone often under-determine a rule (a signature seen on three calls, all with
5x5 inputs). Refinement asks torch: solve the rule's constraints with Z3 for a fresh call
(the same way the generator will), run it on meta tensors, and

- if torch raises, the call is a new *invalid* record: the constraints were too loose;
- if the output shape differs from the prediction, it is a new *valid* record: the
  expression was wrong;

then infer the rule again from the augmented records, for a few rounds. A rule that still
fails after the last round is kept concrete (its recorded calls only). New calls are counted
in ``Rule.stats`` (``refine_valid``, ``refine_invalid``); held-out validation still uses only
the held-out trace records, which refinement never sees.
"""

from __future__ import annotations

import random
import time

from fuzz import dsl

ROUNDS = 4
CALLS_PER_ROUND = 3


def _probe(rule, rng, solver, max_dim=8):
    """One fresh call: (Call, outcome) with outcome 'ok' | 'invalid' | 'mismatch' | None (cannot check)."""
    from fuzz.infer.check import _values_from_env, call_rule
    from fuzz.infer.signature import Call
    from fuzz.errors import AssayError
    from fuzz.trace import Unrecordable

    env = solver.sample(rng, max_dim)
    if env is None:
        return None, None
    shapes, ints = _values_from_env(rule, env)
    combo = rng.choice(rule.dtypes) if rule.dtypes else [["float32"] * len(rule.ranks), []]
    dtypes = list(combo[0])
    shapes_t = tuple(tuple(s) for s in shapes)
    try:
        got = call_rule(rule, shapes, ints, dtypes, with_dtypes=True)
    except (Unrecordable, AssayError):
        return None, None
    except Exception:  # noqa: BLE001 - torch rejected the call
        return Call(shapes_t, tuple(dtypes), tuple(ints)), "invalid"
    call = Call(shapes_t, tuple(dtypes), tuple(ints), tuple((tuple(s), d) for s, d in got))
    try:
        expected = [[dsl.evaluate(e, env) for e in out] for out in rule.outputs]
    except dsl.EvalError:
        return call, "mismatch"
    return call, "ok" if [list(s) for s, _ in got] == expected else "mismatch"


def refine(group, rule, seconds: float = 2.0, seed: int = 0):
    """Refine ``rule`` (inferred from ``group``) against torch; returns the final rule."""
    from fuzz.infer.signature import Budget, concrete_rule, infer_plain

    start = time.process_time()
    rng = random.Random(f"{seed}:{rule.key}:{rule.stats.get('specialised')}")
    added_valid = added_invalid = 0
    spec = rule.stats.get("specialised")
    for _ in range(ROUNDS):
        new_valid, new_invalid = [], []
        checked = 0
        from fuzz.infer.check import Solver

        solver = Solver(rule, timeout_ms=300)
        for _ in range(CALLS_PER_ROUND):
            call, outcome = _probe(rule, rng, solver)
            if outcome is None:
                continue
            checked += 1
            if outcome == "invalid":
                new_invalid.append(call)
            elif outcome == "mismatch":
                new_valid.append(call)
        if not new_valid and not new_invalid:
            rule.stats.update({"refine_valid": added_valid, "refine_invalid": added_invalid,
                               "verified": checked > 0})
            return rule
        group.valid.extend(new_valid)
        group.invalid.extend(new_invalid)
        added_valid += len(new_valid)
        added_invalid += len(new_invalid)
        remaining = seconds - (time.process_time() - start)
        if remaining <= 0:
            break
        new_rule, why = infer_plain(group, Budget(remaining), cheap=False)
        if new_rule is None:
            rule = concrete_rule(group, f"refinement: {why} after fresh calls")
            break
        rule = new_rule
    else:
        rule = concrete_rule(group, "refinement: still wrong on fresh calls")
    if rule.status == "symbolic":
        # Out of time between a re-inference and its check: unverified, keep it concrete.
        rule = concrete_rule(group, "refinement: out of time")
    rule.stats.update({"refine_valid": added_valid, "refine_invalid": added_invalid})
    if spec is not None:
        rule.stats["specialised"] = spec
    return rule
