"""Inference for one signature: output-shape expressions, input constraints, dtypes, examples.

A *group* (``fuzz.rules.groups.Group``) is the training records of one signature.
``infer_group`` returns one ``Rule`` per signature variant: normally one, several when
the signature was *specialised* on a categorical integer argument (``dim`` of a
reduction, ...) because no single expression fits all its records. Refinement against torch
comes after, in ``fuzz.rules.refine`` (``fuzz.rules.run`` calls both).
"""

from __future__ import annotations

import numpy as np

from fuzz.rules.constraints import infer_constraints
from fuzz.rules.synth import Budget, Synthesizer
from fuzz.ir.rule import Rule
from fuzz.ir.template import float_key, n_float_slots
from fuzz.rules.groups import Call, Group, symbol_matrix

MAX_EXAMPLES = 8
MAX_CONCRETE_EXAMPLES = 16
MAX_SPECIALISE_VALUES = 8
MAX_FLOAT_TUPLES = 32
MAX_FLOAT_PARTS = 16


# ---------------------------------------------------------------------------
# specialisation


def specialise_template(template, k: int, value: int):
    """Make int placeholder ``k`` the literal ``value``; later placeholders shift down by one."""

    def walk(t):
        if isinstance(t, list):
            return [walk(v) for v in t]
        if isinstance(t, dict):
            if "A" in t and len(t) == 1:
                a = t["A"]
                if a == k:
                    return value
                return {"A": a - 1 if a > k else a}
            if "X" in t and len(t) == 1:
                return t
            return {kk: walk(vv) for kk, vv in t.items()}
        return t

    return walk(template)


def _drop(ints: tuple, k: int) -> tuple:
    return ints[:k] + ints[k + 1:]


# ---------------------------------------------------------------------------


def _prefer(ranks, out_rank: int, j: int) -> list[str]:
    """Symbols most likely to be output dim j: same position in same-rank inputs, then from the end."""
    same = [f"x{i}_{j}" for i, r in enumerate(ranks) if r == out_rank and j < r]
    tail = [f"x{i}_{j - out_rank + r}" for i, r in enumerate(ranks) if r != out_rank and 0 <= j - out_rank + r < r]
    return same + tail


def _broadcast(syms, ranks, out_rank: int, j: int, target):
    """Broadcast of the input dims aligned with output dim ``j`` from the end (``broadcast_expr``),
    when it is the target on every call and those dims differ on some call (broadcasting seen).
    The synthesiser would pick a single dim that happens to be the larger one on these records;
    torch's broadcasting rule is the max, 0 if a dim is 0 (with the compatibility constraint
    refinement adds)."""
    aligned = [f"x{i}_{j - out_rank + r}" for i, r in enumerate(ranks) if 0 <= j - out_rank + r < r]
    if len(aligned) < 2:
        return None
    vals = np.vstack([syms[a] for a in aligned])
    if (vals == vals[0]).all() or not (vals.max(axis=0) * np.minimum(vals.min(axis=0), 1) == target).all():
        return None
    if not ((vals == target) | (vals == 1)).all():
        return None  # not broadcasting: some aligned dim is neither the output dim nor 1
    used = [a for a, v in zip(aligned, vals) if not (v == 1).all()]
    if len(used) < 2:
        return None
    return broadcast_expr(used)


def broadcast_expr(dims: list[str]):
    """torch's broadcast of compatible dims: their max, or 0 when one is 0 (``[1, 0] -> 0``):
    ``max(...) * min(min(...), 1)``. Where every dim is >= 1 (the generator) this is ``max(...)``,
    and ``fuzz.ir.dsl.simplify`` reduces it to that."""
    hi, lo = dims[0], dims[0]
    for a in dims[1:]:
        hi, lo = ["max", hi, a], ["min", lo, a]
    return ["*", hi, ["min", lo, 1]]


def synthesize_outputs(calls: list[Call], ranks, n_ints, budget: Budget, cheap: bool = False):
    """Expressions for every output dim that match every call, or None."""
    out_ranks = [len(s) for s, _ in calls[0].outs]
    syms = symbol_matrix(calls, ranks, n_ints)
    synth = Synthesizer(syms, len(calls), budget, max_level=3 if cheap else 5, sketch=not cheap)
    outputs = []
    for o, r in enumerate(out_ranks):
        exprs = []
        for j in range(r):
            target = np.array([c.outs[o][0][j] for c in calls], dtype=np.int64)
            e = _broadcast(syms, ranks, r, j, target)
            if e is None:
                e = synth.solve(target, _prefer(ranks, r, j))
            if e is None:
                return None
            exprs.append(e)
        outputs.append(exprs)
    return outputs


def _dedupe(calls: list[Call]) -> list[Call]:
    seen = {}
    for c in calls:
        seen.setdefault((c.shapes, c.ints, tuple(s for s, _ in c.outs)), c)
    return [seen[k] for k in sorted(seen, key=repr)]


def _examples(calls: list[Call], cap: int) -> list[dict]:
    uniq = {}
    for c in calls:
        uniq.setdefault((c.shapes, c.dtypes, c.ints, float_key(c.floats)), c)
    keys = sorted(uniq, key=repr)
    if len(keys) > cap:
        step = len(keys) / cap
        keys = [keys[int(i * step)] for i in range(cap)]
    return [
        {
            "shapes": [list(s) for s in uniq[k].shapes],
            "dtypes": list(uniq[k].dtypes),
            "ints": list(uniq[k].ints),
            "floats": list(uniq[k].floats),
            "out": [{"shape": list(s), "dtype": d} for s, d in uniq[k].outs],
        }
        for k in keys
    ]


def _floats(calls: list[Call]) -> list[list]:
    """The distinct float tuples of the valid calls (at most MAX_FLOAT_TUPLES, spread)."""
    uniq = {}
    for c in calls:
        uniq.setdefault(float_key(c.floats), list(c.floats))
    keys = sorted(uniq)
    if len(keys) > MAX_FLOAT_TUPLES:
        step = len(keys) / MAX_FLOAT_TUPLES
        keys = [keys[int(i * step)] for i in range(MAX_FLOAT_TUPLES)]
    return [uniq[k] for k in keys] if any(uniq[k] for k in keys) else []


def _dtypes(calls: list[Call]) -> list:
    combos = sorted({(c.dtypes, tuple(d for _, d in c.outs)) for c in calls})
    return [[list(i), list(o)] for i, o in combos]


def _int_ranges(calls: list[Call], n_ints: int) -> dict:
    return {f"a{k}": [min(c.ints[k] for c in calls), max(c.ints[k] for c in calls)] for k in range(n_ints)} if calls else {}


def _base_rule(g: Group, status: str) -> Rule:
    return Rule(key=g.key, op=g.op, api=g.kind, overload=g.overload, template=g.template, ranks=list(g.ranks),
                n_ints=g.n_ints, status=status)


def concrete_rule(g: Group, reason: str) -> Rule:
    rule = _base_rule(g, "concrete")
    rule.dtypes = _dtypes(g.valid)
    rule.floats = _floats(g.valid)
    rule.examples = _examples(g.valid, MAX_CONCRETE_EXAMPLES)
    rule.stats = {"valid": len(g.valid), "invalid": len(g.invalid), "reason": reason,
                  "int_ranges": _int_ranges(g.valid, g.n_ints)}
    return rule


def infer_plain(g: Group, budget: Budget, cheap: bool = False, prior: bool = False):
    """A symbolic rule for the group as it is, or (None, reason)."""
    if not g.valid:
        return None, "no valid records"
    structures = {tuple(len(s) for s, _ in c.outs) for c in g.valid}
    if len(structures) > 1:
        return None, "output ranks vary"
    calls = _dedupe(g.valid)
    outputs = synthesize_outputs(calls, g.ranks, g.n_ints, budget, cheap)
    domain = [c for c in calls if all(d >= 1 for s in c.shapes for d in s)]
    if outputs is None and 0 < len(domain) < len(calls) and not budget.over():
        # Zero-size inputs often follow their own rule; the generator only makes dims >= 1.
        outputs = synthesize_outputs(domain, g.ranks, g.n_ints, budget, cheap)
    if outputs is None:
        return None, "timeout" if budget.over() else "no expression found"
    constraints, cstats = infer_constraints(g, outputs, prior=prior)
    rule = _base_rule(g, "symbolic")
    rule.outputs = outputs
    rule.constraints = constraints
    rule.dtypes = _dtypes(g.valid)
    rule.floats = _floats(g.valid)
    rule.examples = _examples(g.valid, MAX_EXAMPLES)
    rule.stats = {"valid": len(g.valid), "invalid": len(g.invalid), "unique_valid": len(calls),
                  "int_ranges": _int_ranges(g.valid, g.n_ints), **cstats}
    rule._group = g  # for refinement; not serialised
    return rule, None


def split_group(g: Group, ks: list[int]) -> dict:
    """Partition a group by the values of int args ``ks``: values tuple -> specialised Group."""
    ks = sorted(ks, reverse=True)  # specialise from the last so earlier indices stay valid

    def spec(template, values):
        for k, v in zip(ks, values):
            template = specialise_template(template, k, v)
        return template

    def drop(ints):
        for k in ks:
            ints = _drop(ints, k)
        return ints

    parts: dict[tuple, Group] = {}
    for c in g.valid:
        vals = tuple(c.ints[k] for k in ks)
        if vals not in parts:
            parts[vals] = Group(g.kind, g.op, g.overload, spec(g.template, vals), g.ranks, g.n_ints - len(ks))
        parts[vals].valid.append(Call(c.shapes, c.dtypes, drop(c.ints), c.outs, c.floats))
    for c in g.invalid:
        part = parts.get(tuple(c.ints[k] for k in ks))
        if part is not None:
            part.invalid.append(Call(c.shapes, c.dtypes, drop(c.ints), (), c.floats))
    return parts


def literal_floats(template, floats):
    """The template with every ``{"F": m}`` placeholder replaced by ``floats[m]``."""
    if isinstance(template, list):
        return [literal_floats(v, floats) for v in template]
    if isinstance(template, dict):
        if "F" in template and len(template) == 1:
            return floats[template["F"]]
        return {k: literal_floats(v, floats) for k, v in template.items()}
    return template


def split_by_floats(g: Group) -> dict:
    """Partition a group by its calls' float values: float key -> Group with the floats literal."""
    parts: dict[str, Group] = {}
    for c in g.valid:
        fk = float_key(c.floats)
        if fk not in parts:
            parts[fk] = Group(g.kind, g.op, g.overload, literal_floats(g.template, c.floats), g.ranks, g.n_ints)
        parts[fk].valid.append(Call(c.shapes, c.dtypes, c.ints, c.outs))
    for c in g.invalid:
        part = parts.get(float_key(c.floats))
        if part is not None:
            part.invalid.append(Call(c.shapes, c.dtypes, c.ints))
    return parts


def _specialise(g: Group, ks: list[int], cheap: bool, seconds: float, previous=None):
    """Rules for each part of the partition by ``ks``; failed parts concrete. (n_symbolic, rules)."""
    parts = split_group(g, ks)
    rules = []
    n_sym = 0
    per_part = seconds / max(1, len(parts))
    order = sorted(ks, reverse=True)
    for vals in sorted(parts):
        part = parts[vals]
        r = previous.get(vals) if previous else None
        if r is None or r.status != "symbolic":
            r2, why = infer_plain(part, Budget(per_part), cheap=cheap)
            r = r2 if r2 is not None else concrete_rule(part, why)
        if r.status == "symbolic":
            n_sym += 1
        r.stats["specialised"] = {"args": order, "values": list(vals)}
        rules.append(r)
    return n_sym, rules


def _split_floats(g: Group, seconds: float):
    """Rules for each float-value part of ``g`` (floats literal in each), or None when the group
    has no float placeholder, one float tuple, or too many. Each rule's ``stats["float_values"]``
    names its part (``float_key``). The shape of ``interpolate(x, scale_factor=f)`` depends on
    ``f``: one integer rule cannot hold for every ``f``, one per ``f`` can."""
    if not n_float_slots(g.template):
        return None
    parts = split_by_floats(g)
    if not 1 < len(parts) <= MAX_FLOAT_PARTS:
        return None
    rules = []
    for fk in sorted(parts):
        for r in _infer_group(parts[fk], max(0.2, seconds / len(parts)))[0]:
            r.stats["float_values"] = fk
            rules.append(r)
    return rules


def infer_group(g: Group, seconds: float = 1.5) -> tuple[list[Rule], list[int] | None]:
    """Rules for one signature (see ``_infer_group``), not yet refined against torch
    (``fuzz.rules.refine.refine_rules`` does that)."""
    return _infer_group(g, seconds)


def source_group(rule: Rule) -> Group | None:
    """The records a rule from ``infer_group`` was inferred from (its specialised or
    float-split part of the signature); refinement adds calls to it."""
    return getattr(rule, "_group", None)


def _infer_group(g: Group, seconds: float = 1.5) -> tuple[list[Rule], list[int] | None]:
    """Rules for one signature; the second value is the specialised int args (None if not).

    Cheap attempts first (bank to size 3, meet in the middle), on the whole signature and on
    its specialisations; then the full search (bank to size 5, floor sketch) within ``seconds``.
    """
    if not g.valid:
        return [], None
    # An int arg with one value on every valid call (a reduction's dim always 1, groups always 1)
    # is a literal of the rule: the records say nothing about other values, so the rule must not
    # claim them (an expression that ignores it would be wrong at the next value).
    pinned = [k for k in range(g.n_ints) if len({c.ints[k] for c in g.valid}) == 1]

    def plain(cheap: bool, budget_s: float):
        if not pinned:
            rule, reason = infer_plain(g, Budget(budget_s), cheap=cheap)
            return ([rule], None, None) if rule is not None else (None, None, reason)
        _n, rules = _specialise(g, pinned, cheap, budget_s)
        if rules[0].status == "symbolic":
            return rules, sorted(pinned, reverse=True), None
        return None, None, rules[0].stats.get("reason")

    rules, spec, reason = plain(True, seconds / 4)
    if rules is not None:
        return rules, spec
    # Categorical int args: few distinct values (dim of a reduction, transpose's dims, ...).
    singles = []
    for k in range(g.n_ints):
        values = {c.ints[k] for c in g.valid}
        if 2 <= len(values) <= MAX_SPECIALISE_VALUES:
            singles.append((len(values), k))
    options = [sorted([k] + pinned) for _, k in sorted(singles)[:3]]
    joint = sorted(k for _, k in singles)
    if len(joint) > 1 and len({tuple(c.ints[k] for k in joint) for c in g.valid}) <= 4 * MAX_SPECIALISE_VALUES:
        options.append(sorted(joint + pinned))
    best = None
    for ks in options:
        n_sym, rules = _specialise(g, ks, True, seconds / 4)
        if n_sym == len(rules):
            return rules, sorted(ks, reverse=True)
        if n_sym and (best is None or n_sym > best[0]):
            best = (n_sym, ks, rules)
    rules, spec, reason = plain(False, seconds)
    if rules is not None:
        return rules, spec
    by_floats = _split_floats(g, seconds)
    if by_floats is not None:
        n_sym = sum(r.status == "symbolic" for r in by_floats)
        if best is None or n_sym / len(by_floats) > best[0] / len(best[2]):
            return by_floats, None
    if best is not None:
        prev = {tuple(r.stats["specialised"]["values"]): r for r in best[2]}
        n_sym, rules = _specialise(g, best[1], False, seconds, prev)
        return rules, sorted(best[1], reverse=True)
    return [concrete_rule(g, reason)], None
