"""Re-check a rule against torch: solve its constraints with Z3, call the operator on meta
tensors, compare the output shapes with the rule's prediction.

``check_rule(rule)`` is what the tests use on a sample of shipped rules, and what the
generator can reuse: ``solve_call(rule, rng)`` gives one (shapes, ints, dtypes) point that
satisfies the rule's constraints, with random bounds on the dims for variety.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from fuzz import dsl


@dataclass
class CheckResult:
    ok: bool
    reason: str = ""  # "" | "unsat" | "error" | "mismatch"
    env: dict = field(default_factory=dict)
    expected: list | None = None
    got: list | None = None
    error: str = ""


def solve_call(rule, rng: random.Random, max_dim: int = 8, timeout_ms: int = 2000):
    """Values for every symbol of ``rule`` satisfying its constraints, or None (unsat/unknown).

    Dims get a random upper bound in [2, max_dim]; a few symbols are nudged towards random
    values (kept only if still satisfiable) so that repeated calls differ.
    """
    import z3

    names = rule.symbols()
    env = {n: z3.Int(n) for n in names}
    s = z3.Solver()
    s.set("timeout", timeout_ms)
    s.set("random_seed", rng.randrange(1 << 30))
    for c in rule.constraints:
        s.add(dsl.to_z3(c, env))
    for n in names:
        if n.startswith("x"):
            s.add(env[n] >= 1, env[n] <= rng.randint(2, max_dim))
        else:
            lo, hi = rule.stats.get("int_ranges", {}).get(n, [-8, 8])
            s.add(env[n] >= lo, env[n] <= hi)
    if s.check() != z3.sat:
        return None
    for n in rng.sample(names, min(len(names), 4)):
        # Nudge a few symbols to random values for variety; keep a nudge only if still satisfiable.
        if n.startswith("x"):
            want = rng.randint(1, max_dim)
        else:
            lo, hi = rule.stats.get("int_ranges", {}).get(n, [-8, 8])
            want = rng.randint(lo, hi)
        s.push()
        s.add(env[n] == want)
        if s.check() != z3.sat:
            s.pop()
    if s.check() != z3.sat:
        return None
    model = s.model()
    return {n: model.eval(env[n], model_completion=True).as_long() for n in names}


def _values_from_env(rule, env):
    shapes = [[env[f"x{i}_{j}"] for j in range(r)] for i, r in enumerate(rule.ranks)]
    ints = [env[f"a{k}"] for k in range(rule.n_ints)]
    return shapes, ints


def call_rule(rule, shapes, ints, dtypes):
    """Call the rule's operator on meta tensors; returns the output shapes (tensor outputs only)."""
    import torch

    from fuzz.signature import fill_call
    from fuzz.trace import decode_value, encode_value, iter_tensor_values, resolve_op

    def tensor(i):
        return {"T": list(shapes[i]), "dtype": dtypes[i]}

    def make(enc):
        from fuzz.trace import dtype_from_name

        return torch.empty(enc["T"], dtype=dtype_from_name(enc["dtype"]), device="meta")

    init, args, kwargs = fill_call(rule.template, tensor, ints)
    a = decode_value(args, make, device="meta")
    kw = {k: decode_value(v, make, device="meta") for k, v in kwargs.items()}
    target = resolve_op(rule.op, rule.api, rule.overload)
    if rule.api == "module":
        ia = decode_value(init["args"], make, device="meta")
        ik = {k: decode_value(v, make, device="meta") for k, v in init["kwargs"].items()}
        with torch.device("meta"):
            target = target(*ia, **ik)
    out = target(*a, **kw)
    return [t["T"] for t in iter_tensor_values(encode_value(out))]


def check_rule(rule, n_calls: int = 2, seed: int = 0, max_dim: int = 8) -> list[CheckResult]:
    """Check a symbolic rule on ``n_calls`` fresh Z3-chosen calls."""
    rng = random.Random(f"{seed}:{rule.key}:{rule.stats.get('specialised')}")
    results = []
    for _ in range(n_calls):
        env = solve_call(rule, rng, max_dim)
        if env is None:
            results.append(CheckResult(False, "unsat"))
            continue
        shapes, ints = _values_from_env(rule, env)
        dtypes = list(rng.choice(rule.dtypes)[0]) if rule.dtypes else ["float32"] * len(rule.ranks)
        try:
            expected = [[dsl.evaluate(e, env) for e in out] for out in rule.outputs]
        except dsl.EvalError as exc:
            results.append(CheckResult(False, "error", env, error=f"rule undefined: {exc}"))
            continue
        try:
            got = call_rule(rule, shapes, ints, dtypes)
        except Exception as exc:  # noqa: BLE001 - any torch error means the constraints admitted an invalid call
            results.append(CheckResult(False, "error", env, expected, error=f"{type(exc).__name__}: {str(exc)[:200]}"))
            continue
        results.append(CheckResult(got == expected, "" if got == expected else "mismatch", env, expected, got))
    return results
