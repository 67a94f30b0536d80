"""Final validation pass: every symbolic rule against torch, on fresh Z3-chosen calls.

Refinement (``refine.py``) already probes each rule on a few calls with small dims; rules
still slip through (pooling modules, broadcasting, splits, complex views, unsatisfiable
constraints). This pass is the last word before a rule ships as symbolic: for each symbolic
rule it draws ``k`` calls from the rule's own constraints with ``check.Solver`` (the sampler the
tests and the generator use), with the dim bound varied per call (small *and* up to 64) and int
args across their observed ranges, runs the operator (meta tensors, small CPU tensors where
meta is unsupported) and compares output shapes with the prediction. Any failure -- torch
rejects the call, a wrong shape, an undefined expression, constraints Z3 cannot satisfy --
demotes the rule to ``status="concrete"`` (its recorded examples stay, so the generator can
still replay it). ``validate_rules`` runs in a process pool and within a wall-clock budget;
rules it does not reach in time are left as they are and counted (``rules_unvalidated``).

``adjust_stats`` moves the held-out numbers of a stats dict to what they are after the
demotions, from the per-rule held-out counts that inference stores in ``Rule.stats``: a
demoted rule predicts none of its held-out valid calls and (its examples being valid calls)
rejects all of its held-out invalid ones.
"""

from __future__ import annotations

import json
import random
import time

from fuzz.ir import dsl
from fuzz.ir.opnames import base_name
from fuzz.ir.rule import Rule
from fuzz.rules.check import Solver, call_on_device, pick_floats, values_from_env
from fuzz.rules.groups import Call
from fuzz.rules.summary import share

K = 24                      # calls per rule
SEED = "validate-0"         # the tests sample with other seeds
DIM_BOUNDS = (8, 64, 4, 16, 64, 8, 32, 64, 2, 24)   # max dim of call i (cycled)
# One call in UNIFORM_EVERY is a uniform draw, the others come from the Z3 sampler: its models sit
# on corners (dims of 1, an int at the end of its range) where most residual wrong rules fail; with
# every other call uniform, 0.2-0.85 % of the rules that passed were still wrong on such calls.
UNIFORM_EVERY = 4
RULE_SECONDS = 4.0          # CPU seconds per rule before it counts as a failure ("timeout")
CPU_NUMEL_CAP = 1 << 18     # elements over all inputs when the CPU fallback is needed


def _numel(shapes) -> int:
    n = 0
    for s in shapes:
        p = 1
        for d in s:
            p *= max(d, 0)
        n += p
    return n


class _Timeout(Exception):
    pass


def _alarm(signum, frame):  # noqa: ARG001
    raise _Timeout()


def random_point(rule, rng, max_dim: int, ranges: dict, tries: int = 12):
    """A uniformly drawn point that satisfies the rule's constraints, or None (then Z3 draws).

    Every other call of a probe comes from here: cheaper than a Z3 check, and spread over the
    whole box (Z3's models sit at its corners). Dims are 1 a fifth of the time (broadcasting),
    else uniform in [1, max_dim]; int args uniform in their observed range; equalities between
    two symbols are applied before the test so that they do not reject nearly every draw."""
    names = rule.symbols()
    eqs = [(c[1], c[2]) for c in rule.constraints
           if isinstance(c, list) and c[0] == "==" and isinstance(c[1], str) and isinstance(c[2], str)]
    for _ in range(tries):
        env = {}
        for n in names:
            if n.startswith("x"):
                env[n] = 1 if rng.random() < 0.2 else rng.randint(1, max_dim)
            else:
                lo, hi = ranges[n]
                env[n] = rng.randint(lo, hi)
        for a, b in eqs:
            env[b] = env[a]
        if dsl.holds(rule.constraints, env):
            return env
    return None


def validate_rule(rule, k: int = K, seed=SEED, seconds: float = RULE_SECONDS, uniform: bool = True) -> tuple[bool, str]:
    """(ok, why) for one symbolic rule: ``k`` fresh calls must all match torch."""
    ok, why, _ = probe_rule(rule, k, seed, seconds, max_failures=1, uniform=uniform)
    return ok, why


def probe_rule(rule, k: int = K, seed=SEED, seconds: float = RULE_SECONDS, max_failures: int = 1,
               uniform: bool = True):
    """(ok, why, counterexamples): draw ``k`` calls from the rule's constraints and run them.

    Stops at the ``max_failures``-th failing call. ``counterexamples`` holds the failing calls
    that are data for re-inference, as ``(outcome, Call)``: ``"invalid"`` (torch rejected a call
    the constraints admit; a ``Call`` without outputs) or ``"valid"`` (a wrong or undefined
    predicted shape; the ``Call`` carries torch's output shapes and dtypes). ``why`` describes
    the first failure; failures that are no data (unsat, timeout) end the probe. ``uniform``:
    every ``UNIFORM_EVERY``-th call is a uniform draw (``random_point``); False: every call comes
    from Z3.
    """
    import torch  # noqa: F401 - imported before the clock starts (slow on a loaded machine)

    rng = random.Random(f"{seed}:{rule.key}:{json.dumps(rule.stats.get('specialised'))}")
    # CPU seconds, so that a loaded machine does not turn right rules into timeouts.
    t0 = time.process_time()
    found: list = []
    first = ""

    def fail(why, outcome=None, call=None):
        nonlocal first
        first = first or why
        if outcome is not None:
            found.append((outcome, call))
        return len(found) >= max_failures or outcome is None

    try:
        try:
            solver = Solver(rule, timeout_ms=2000)
        except Exception as exc:  # noqa: BLE001
            return False, f"constraints: {type(exc).__name__}: {str(exc)[:120]}", []
        done = 0
        attempts = 0
        while done < k:
            attempts += 1
            if time.process_time() - t0 > seconds:
                fail(f"timeout after {done} of {k} calls")
                break
            if attempts > 3 * k:
                fail(f"only {done} of {k} calls checked")
                break
            max_dim = DIM_BOUNDS[(attempts - 1) % len(DIM_BOUNDS)]
            env = random_point(rule, rng, max_dim, solver.ranges) if uniform and attempts % UNIFORM_EVERY == 0 else None
            if env is None:
                env = solver.sample(rng, max_dim)
            if env is None:
                if max_dim >= 8:
                    # No point with dims <= max_dim (or Z3 gave up): the generator and the tests
                    # could not use the rule either.
                    fail(f"unsat (max dim {max_dim})")
                    break
                continue
            shapes, ints = values_from_env(rule, env)
            dtypes = list(rng.choice(rule.dtypes)[0]) if rule.dtypes else ["float32"] * len(rule.ranks)
            floats = pick_floats(rule, rng)
            key = (tuple(tuple(s) for s in shapes), tuple(dtypes), tuple(ints))
            try:
                expected = [[dsl.evaluate(e, env) for e in out] for out in rule.outputs]
            except (dsl.EvalError, ZeroDivisionError) as exc:
                expected = None
                undefined = f"undefined at {env}: {exc}"
            try:
                try:
                    got = call_on_device(rule, shapes, ints, dtypes, "meta", True, floats)
                except _Timeout:
                    raise
                except Exception as exc:  # noqa: BLE001
                    if not (isinstance(exc, NotImplementedError) or "meta" in str(exc).lower()):
                        raise
                    if _numel(shapes) > CPU_NUMEL_CAP:
                        continue  # too big for the CPU fallback: draw again (smaller bound next)
                    got = call_on_device(rule, shapes, ints, dtypes, "cpu", True, floats)
            except _Timeout:
                raise
            except Exception as exc:  # noqa: BLE001 - torch rejected a call the constraints admit
                if fail(f"error at {env}: {type(exc).__name__}: {str(exc)[:160]}", "invalid",
                        Call(*key, (), tuple(floats))):
                    break
                done += 1
                continue
            if expected is None or [list(s) for s, _ in got] != expected:
                why = undefined if expected is None else \
                    f"mismatch at {env}: expected {expected} got {[list(s) for s, _ in got]}"
                if fail(why, "valid", Call(*key, tuple((tuple(s), d) for s, d in got), tuple(floats))):
                    break
            done += 1
        return not first, first, found
    except _Timeout:
        return False, "timeout", found


def _worker(payload: str) -> str:

    items = json.loads(payload)
    out = []
    c0 = time.process_time()
    for idx, rj, k, seed, seconds, uniform in items:
        rule = Rule.from_json(rj)
        try:
            ok, why = validate_rule(rule, k, seed, seconds, uniform)
        except Exception as exc:  # noqa: BLE001
            ok, why = False, f"validator: {type(exc).__name__}: {str(exc)[:120]}"
        out.append([idx, ok, why])
    return json.dumps({"results": out, "cpu": time.process_time() - c0})


def demote(rule, why: str) -> None:
    """Make a symbolic rule concrete in place; its examples stay for replay."""
    rule.stats["demoted"] = {"outputs": [[dsl.render(e) for e in o] for o in rule.outputs or []],
                             "why": why[:300]}
    rule.stats["reason"] = "validation: " + why[:160]
    rule.status = "concrete"
    rule.outputs = None
    rule.constraints = []


def validate_rules(rules, workers: int = 2, k: int = K, seed=SEED, seconds: float = RULE_SECONDS,
                   budget: float | None = None, progress=None, uniform: bool = True) -> dict:
    """Validate every symbolic rule of ``rules`` (demoting failures in place); returns a summary."""
    import torch  # noqa: F401 - once, before the workers fork

    t0 = time.monotonic()
    c0 = time.process_time()
    todo = [i for i, r in enumerate(rules) if r.status == "symbolic" and r.outputs is not None]
    # Rules that refinement (refine.py) already probed with the same calls as the last step of
    # their inference need no second run: the draws are a function of (rule, k, seed).
    done_before = [i for i in todo if rules[i].stats.get("validated") == [k, seed]]
    todo = [i for i in todo if rules[i].stats.get("validated") != [k, seed]]
    # Spread operators over chunks (an expensive operator's signatures are adjacent in the file).
    rng = random.Random(0)
    rng.shuffle(todo)
    chunk = 16
    payloads = [json.dumps([[i, rules[i].to_json(), k, seed, seconds, uniform] for i in todo[j:j + chunk]])
                for j in range(0, len(todo), chunk)]
    failed: dict[int, str] = {}
    checked = 0
    cpu = 0.0
    last = time.monotonic()
    timed_out = False

    def take(res):
        nonlocal checked, cpu
        data = json.loads(res)
        cpu += data["cpu"]
        for idx, ok, why in data["results"]:
            checked += 1
            if not ok:
                failed[idx] = why

    def report(force=False):
        nonlocal last
        if progress and (force or time.monotonic() - last > 10):
            last = time.monotonic()
            progress(f"validated {checked}/{len(todo)} symbolic rules, {len(failed)} failed, "
                     f"{time.monotonic() - t0:.0f} s")

    if workers > 1 and len(payloads) > 1:
        from fuzz.isolation import run_tasks

        def validate_chunk(payload, deadline):  # noqa: ARG001 - each rule has its own CPU-time alarm
            yield [_worker(payload)]

        def taken(index, items, problem):  # noqa: ARG001
            for res in items:
                take(res)
            report()

        stop_at = None if budget is None else t0 + budget
        timed_out = not run_tasks(payloads, validate_chunk, workers=workers, time_budget=float("inf"),
                                  on_result=taken, stop_at=stop_at, tasks_per_worker=50)
    else:
        for p in payloads:
            if budget is not None and time.monotonic() - t0 > budget:
                timed_out = True
                break
            take(_worker(p))
            report()
    report(force=True)
    demoted = []
    for idx, why in sorted(failed.items()):
        demote(rules[idx], why)
        demoted.append(rules[idx])
    reasons = {}
    for why in failed.values():
        kind = why.split(" ", 1)[0].rstrip(":")
        reasons[kind] = reasons.get(kind, 0) + 1
    return {"rules_validated": checked + len(done_before), "rules_validated_in_inference": len(done_before),
            "rules_demoted_by_validation": len(demoted),
            "rules_unvalidated": len(todo) - checked, "validation_timed_out": timed_out,
            "validation_demoted_reasons": dict(sorted(reasons.items())),
            "validation_calls_per_rule": k, "validation_seed": seed, "validation_uniform_draws": uniform,
            "validation_seconds": round(time.monotonic() - t0, 1),
            "validation_cpu_seconds": round(cpu + time.process_time() - c0, 1),
            "demoted": demoted}


def adjust_stats(stats: dict, demoted, rules) -> dict:
    """Held-out numbers and rule counts of ``stats`` after the rules in ``demoted`` became concrete.

    ``stats`` holds the numbers computed with those rules still symbolic (``summarise`` output or a
    shipped rules-stats.json). Exact for the headline numbers; the two secondary ones that need
    per-call data (``heldout_valid_accepted_symbolic``, ``heldout_invalid_rejection_learned_only``)
    are adjusted from per-rule counts where inference stored them, else set to None.
    """
    s = dict(stats)
    hv, hi = s.get("heldout_valid", 0), s.get("heldout_invalid", 0)

    def count(frac, denom):
        return round((frac or 0.0) * denom)

    # Files written before the headline became the symbolic-rule accuracy held the all-calls figure
    # under "heldout_shape_accuracy".
    pred = count(s.get("heldout_shape_accuracy_all_calls", s.get("heldout_shape_accuracy")), hv)
    rej = count(s.get("heldout_invalid_rejection"), hi)
    hv_sym = s.get("heldout_valid_reaching_symbolic", 0)
    hi_sym = s.get("heldout_invalid_reaching_symbolic", 0)
    pred_sym = count(s.get("heldout_shape_accuracy_symbolic"), hv_sym)
    rej_sym = count(s.get("heldout_invalid_rejection_symbolic"), hi_sym)
    acc_sym = count(s.get("heldout_valid_accepted_symbolic"), hv_sym)
    pred_acc = count(s.get("heldout_shape_accuracy_accepted"), acc_sym)
    acc_keys = s.get("heldout_shape_accuracy_accepted") is not None
    learned = count(s.get("heldout_invalid_rejection_learned_only"), hi_sym)
    shape_keys = s.get("heldout_invalid_rejection_shape_only") is not None
    rej_shape = count(s.get("heldout_invalid_rejection_shape_only"), hi)
    rej_sym_shape = count(s.get("heldout_invalid_rejection_symbolic_shape_only"), hi_sym)
    exact_secondary = True
    per_op = s.get("per_op") or {}
    for r in demoted:
        st = r.stats
        v, p = st.get("heldout_valid", 0), st.get("heldout_predicted", 0)
        i, j = st.get("heldout_invalid", 0), st.get("heldout_rejected", 0)
        pred -= p
        rej += i - j
        hv_sym -= v
        pred_sym -= p
        hi_sym -= i
        rej_sym -= j
        if "heldout_rejected_shape" in st:
            rej_shape += i - st["heldout_rejected_shape"]
            rej_sym_shape -= st["heldout_rejected_shape"]
        elif i:
            shape_keys = False
        if "heldout_predicted_accepted" in st:
            pred_acc -= st["heldout_predicted_accepted"]
        elif v:
            acc_keys = False
        if "heldout_accepted" in st and "heldout_rejected_learned" in st:
            acc_sym -= st["heldout_accepted"]
            learned -= st["heldout_rejected_learned"]
        elif v or i:
            exact_secondary = False
        e = per_op.get(r.op)
        if e is not None:
            e["heldout_predicted"] = e.get("heldout_predicted", 0) - p
            e["heldout_rejected"] = e.get("heldout_rejected", 0) + i - j
            e["symbolic"] = e.get("symbolic", 0) - 1
    by_op = {}
    for r in rules:
        by_op.setdefault((r.api, r.op), []).append(r)
    sym_ops = {key for key, rs in by_op.items() if any(r.status == "symbolic" for r in rs)}
    n_sym = sum(r.status == "symbolic" for r in rules)
    traced = s.get("ops_traced", len(by_op))
    s.update({
        "ops_symbolic": len(sym_ops),
        "ops_concrete_only": len(by_op) - len(sym_ops),
        "ops_symbolic_union": len({base_name(*key) for key in sym_ops}),
        "signatures": len(rules),
        "signatures_symbolic": n_sym,
        "signatures_symbolic_share": share(n_sym, len(rules)),
        "signatures_specialised_symbolic": sum(r.status == "symbolic" for r in rules if "specialised" in r.stats),
        "heldout_shape_accuracy": share(pred_sym, hv_sym),
        "heldout_invalid_rejection": share(rej, hi),
        "heldout_shape_accuracy_symbolic": share(pred_sym, hv_sym),
        "heldout_shape_accuracy_all_calls": share(pred, hv),
        "heldout_valid_reaching_symbolic": hv_sym,
        "heldout_valid_covered_symbolic": share(hv_sym, hv),
        "heldout_invalid_rejection_symbolic": share(rej_sym, hi_sym),
        "heldout_invalid_reaching_symbolic": hi_sym,
        "heldout_invalid_rejection_shape_only": share(rej_shape, hi) if shape_keys else None,
        "heldout_invalid_rejection_symbolic_shape_only": share(rej_sym_shape, hi_sym) if shape_keys else None,
        "heldout_valid_accepted_symbolic": share(acc_sym, hv_sym) if exact_secondary else None,
        "heldout_shape_accuracy_accepted": share(pred_acc, acc_sym) if acc_keys and exact_secondary else None,
        "heldout_invalid_rejection_learned_only": share(learned, hi_sym) if exact_secondary else None,
    })
    if "ops_by_kind" in s:
        kinds = {}
        for (api, _op), rs in by_op.items():
            kinds.setdefault(api, 0)
            kinds[api] += (api, _op) in sym_ops
        for kind, e in s["ops_by_kind"].items():
            e["symbolic"] = kinds.get(kind, 0)
    s["ops_traced"] = traced
    return s
