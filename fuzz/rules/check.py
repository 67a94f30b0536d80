"""Re-check a rule against torch: solve its constraints with Z3, call the operator on meta
tensors, compare the output shapes with the rule's prediction.

``check_rule(rule)`` is what the tests use on a sample of shipped rules, and what the
generator can reuse: ``solve_call(rule, rng)`` gives one (shapes, ints, dtypes) point that
satisfies the rule's constraints, with random bounds on the dims for variety.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from fuzz.ir import dsl
from fuzz.ir.record import decode_value, dtype_from_name, encode_value, iter_tensor_values, resolve_op
from fuzz.ir.template import fill_call


@dataclass
class CheckResult:
    ok: bool
    reason: str = ""  # "" | "unsat" | "error" | "mismatch"
    env: dict = field(default_factory=dict)
    expected: list | None = None
    got: list | None = None
    error: str = ""


def _dims_at_least_one(symbol: str):
    return 1 if symbol.startswith("x") else None


class Solver:
    """A Z3 solver holding one rule's constraints; ``sample`` draws varied satisfying points."""

    def __init__(self, rule, timeout_ms: int = 1000):
        import z3

        self.rule = rule
        self.names = rule.symbols()
        self.env = {n: z3.Int(n) for n in self.names}
        self.solver = z3.Solver()
        self.solver.set("timeout", timeout_ms)
        # Every point drawn has dims >= 1 (``sample``), where zero-size-only terms fold away.
        for c in rule.constraints:
            self.solver.add(dsl.to_z3(dsl.simplify(c, _dims_at_least_one), self.env))
        self.ranges = {n: rule.stats.get("int_ranges", {}).get(n, [-8, 8]) for n in self.names if n.startswith("a")}
        for n, (lo, hi) in self.ranges.items():
            self.solver.add(self.env[n] >= lo, self.env[n] <= hi)

    def sample(self, rng: random.Random, max_dim: int = 8):
        """Values for every symbol satisfying the constraints, or None (unsat / unknown).

        Dims get a random upper bound in [2, max_dim]; a few symbols are nudged towards random
        values (dropped if that is unsatisfiable) so that repeated samples differ.
        """
        import z3

        s, env = self.solver, self.env
        s.push()
        try:
            s.set("random_seed", rng.randrange(1 << 30))
            bounds = {}
            for n in self.names:
                if n.startswith("x"):
                    bounds[n] = rng.randint(2, max_dim)
                    s.add(env[n] >= 1, env[n] <= bounds[n])
            nudges = []
            for n in rng.sample(self.names, min(len(self.names), 3)):
                if n.startswith("x"):
                    # Z3 likes small models: without a nudge a dim would mostly be 1 or 2.
                    nudges.append(env[n] >= rng.randint(1, bounds[n]))
                else:
                    lo, hi = self.ranges[n]
                    nudges.append(env[n] == rng.randint(lo, hi))
            result = s.check(*nudges) if nudges else s.check()
            while result != z3.sat and nudges:
                nudges.pop()  # drop nudges one at a time until the constraints allow the rest
                result = s.check(*nudges)
            if result != z3.sat:
                # The random per-dim bounds can exclude every point (a kernel needing dims >= 3
                # under a bound of 2): fall back to the plain bound max_dim before giving up.
                s.pop()
                s.push()
                for n in self.names:
                    if n.startswith("x"):
                        s.add(env[n] >= 1, env[n] <= max_dim)
                result = s.check()
            if result != z3.sat:
                return None
            model = s.model()
            return {n: model.eval(env[n], model_completion=True).as_long() for n in self.names}
        finally:
            s.pop()


def solve_call(rule, rng: random.Random, max_dim: int = 8, timeout_ms: int = 1000):
    """One point satisfying ``rule``'s constraints (see ``Solver.sample``), or None."""
    return Solver(rule, timeout_ms).sample(rng, max_dim)


def values_from_env(rule, env):
    """A Z3/solver point (symbol -> int) as the call's tensor shapes and int args."""
    shapes = [[env[f"x{i}_{j}"] for j in range(r)] for i, r in enumerate(rule.ranks)]
    ints = [env[f"a{k}"] for k in range(rule.n_ints)]
    return shapes, ints


def pick_floats(rule, rng: random.Random) -> list:
    """Float values for the rule's ``{"F": m}`` placeholders: one of the tuples seen valid."""
    return list(rng.choice(rule.floats)) if rule.floats else []


def call_rule(rule, shapes, ints, dtypes, with_dtypes: bool = False, floats=None):
    """Call the rule's operator; returns the output shapes (tensor outputs only).

    Runs on meta tensors; where an operator has no meta kernel (or fails for a meta-only
    reason) it runs again on small CPU tensors of zeros. ``with_dtypes``: (shape, dtype) pairs.
    """
    try:
        return call_on_device(rule, shapes, ints, dtypes, "meta", with_dtypes, floats)
    except Exception as exc:  # noqa: BLE001
        if not (isinstance(exc, NotImplementedError) or "meta" in str(exc).lower()):
            raise
    return call_on_device(rule, shapes, ints, dtypes, "cpu", with_dtypes, floats)


def call_on_device(rule, shapes, ints, dtypes, device, with_dtypes, floats=None):
    """Call the rule's operator once on ``device`` ("meta" or "cpu": zeros), no fallback."""
    import warnings

    import torch


    def tensor(i):
        return {"T": list(shapes[i]), "dtype": dtypes[i]}

    def make(enc):
        if device == "meta":
            return torch.empty(enc["T"], dtype=dtype_from_name(enc["dtype"]), device="meta")
        return torch.zeros(enc["T"], dtype=dtype_from_name(enc["dtype"]))

    if floats is None:
        floats = rule.floats[0] if rule.floats else []
    init, args, kwargs = fill_call(rule.template, tensor, ints, floats)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = decode_value(args, make, device=device)
        kw = {k: decode_value(v, make, device=device) for k, v in kwargs.items()}
        target = resolve_op(rule.op, rule.api, rule.overload)
        if rule.api == "module":
            ia = decode_value(init["args"], make, device=device)
            ik = {k: decode_value(v, make, device=device) for k, v in init["kwargs"].items()}
            with torch.device(device):
                target = target(*ia, **ik)
        out = target(*a, **kw)
    outs = list(iter_tensor_values(encode_value(out)))
    if with_dtypes:
        return [(t["T"], t["dtype"]) for t in outs]
    return [t["T"] for t in outs]


def check_rule(rule, n_calls: int = 2, seed: int = 0, max_dim: int = 8) -> list[CheckResult]:
    """Check a symbolic rule on ``n_calls`` fresh Z3-chosen calls."""
    rng = random.Random(f"{seed}:{rule.key}:{rule.stats.get('specialised')}")
    results = []
    solver = Solver(rule)
    for _ in range(n_calls):
        env = solver.sample(rng, max_dim)
        if env is None:
            results.append(CheckResult(False, "unsat"))
            continue
        shapes, ints = values_from_env(rule, env)
        dtypes = list(rng.choice(rule.dtypes)[0]) if rule.dtypes else ["float32"] * len(rule.ranks)
        floats = pick_floats(rule, rng)
        try:
            expected = [[dsl.evaluate(e, env) for e in out] for out in rule.outputs]
        except dsl.EvalError as exc:
            results.append(CheckResult(False, "error", env, error=f"rule undefined: {exc}"))
            continue
        try:
            got = call_rule(rule, shapes, ints, dtypes, floats=floats)
        except Exception as exc:  # noqa: BLE001 - any torch error means the constraints admitted an invalid call
            results.append(CheckResult(False, "error", env, expected, error=f"{type(exc).__name__}: {str(exc)[:200]}"))
            continue
        results.append(CheckResult(got == expected, "" if got == expected else "mismatch", env, expected, got))
    return results
