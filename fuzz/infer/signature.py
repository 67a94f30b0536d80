"""Inference for one signature: output-shape expressions, input constraints, dtypes, examples.

A *group* is the training records of one signature (``fuzz.signature.signature_key``):
the valid ones (values + output shapes/dtypes) and the invalid ones (values only).
``infer_group`` returns one ``Rule`` per signature variant: normally one, several when
the signature was *specialised* on a categorical integer argument (``dim`` of a
reduction, ...) because no single expression fits all its records.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import numpy as np

from fuzz.infer.constraints import infer_constraints
from fuzz.infer.synth import Budget, Synthesizer
from fuzz.rules import Rule

MAX_EXAMPLES = 8
MAX_CONCRETE_EXAMPLES = 16
MAX_SPECIALISE_VALUES = 8


@dataclass
class Call:
    shapes: tuple
    dtypes: tuple
    ints: tuple
    outs: tuple = ()  # ((shape tuple, dtype), ...) tensor outputs, valid calls only


@dataclass
class Group:
    kind: str
    op: str
    overload: str | None
    template: dict
    ranks: list
    n_ints: int
    valid: list = field(default_factory=list)
    invalid: list = field(default_factory=list)

    @property
    def key(self) -> str:
        return make_key(self.kind, self.op, self.overload, self.template, self.ranks)


def make_key(kind, op, overload, template, ranks) -> str:
    """The same string ``fuzz.signature.signature_key`` makes (kept in step with it)."""
    return json.dumps([kind, op, overload, template, list(ranks)], sort_keys=True, separators=(",", ":"))


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


def symbol_names(ranks, n_ints) -> list[str]:
    return [f"x{i}_{j}" for i, r in enumerate(ranks) for j in range(r)] + [f"a{k}" for k in range(n_ints)]


def symbol_matrix(calls: list[Call], ranks, n_ints) -> dict[str, np.ndarray]:
    cols: dict[str, list[int]] = {name: [] for name in symbol_names(ranks, n_ints)}
    for c in calls:
        for i, shape in enumerate(c.shapes):
            for j, d in enumerate(shape):
                cols[f"x{i}_{j}"].append(d)
        for k, v in enumerate(c.ints):
            cols[f"a{k}"].append(v)
    return {name: np.array(v, dtype=np.int64) for name, v in cols.items()}


def _prefer(ranks, out_rank: int, j: int) -> list[str]:
    """Symbols most likely to be output dim j: same position in same-rank inputs, then from the end."""
    same = [f"x{i}_{j}" for i, r in enumerate(ranks) if r == out_rank and j < r]
    tail = [f"x{i}_{j - out_rank + r}" for i, r in enumerate(ranks) if r != out_rank and 0 <= j - out_rank + r < r]
    return same + tail


def _broadcast(syms, ranks, out_rank: int, j: int, target):
    """``max`` of the input dims aligned with output dim ``j`` from the end, when it is the target
    on every call and those dims differ on some call (broadcasting seen). The synthesiser would
    pick a single dim that happens to be the larger one on these records; torch's broadcasting
    rule is the max (with the compatibility constraint refinement adds)."""
    aligned = [f"x{i}_{j - out_rank + r}" for i, r in enumerate(ranks) if 0 <= j - out_rank + r < r]
    if len(aligned) < 2:
        return None
    vals = np.vstack([syms[a] for a in aligned])
    if (vals == vals[0]).all() or not (vals.max(axis=0) == target).all():
        return None
    if not ((vals == target) | (vals == 1)).all():
        return None  # not broadcasting: some aligned dim is neither the output dim nor 1
    used = [a for a, v in zip(aligned, vals) if not (v == 1).all()]
    if len(used) < 2:
        return None
    expr = used[0]
    for a in used[1:]:
        expr = ["max", expr, a]
    return expr


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
        uniq.setdefault((c.shapes, c.dtypes, c.ints), c)
    keys = sorted(uniq, key=repr)
    if len(keys) > cap:
        step = len(keys) / cap
        keys = [keys[int(i * step)] for i in range(cap)]
    return [
        {
            "shapes": [list(s) for s in uniq[k].shapes],
            "dtypes": list(uniq[k].dtypes),
            "ints": list(uniq[k].ints),
            "out": [{"shape": list(s), "dtype": d} for s, d in uniq[k].outs],
        }
        for k in keys
    ]


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
        parts[vals].valid.append(Call(c.shapes, c.dtypes, drop(c.ints), c.outs))
    for c in g.invalid:
        part = parts.get(tuple(c.ints[k] for k in ks))
        if part is not None:
            part.invalid.append(Call(c.shapes, c.dtypes, drop(c.ints)))
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


def infer_group(g: Group, seconds: float = 1.5, refine: bool = True) -> tuple[list[Rule], list[int] | None]:
    """Rules for one signature (see ``_infer_group``), each symbolic one refined against torch."""
    rules, spec = _infer_group(g, seconds)
    if refine:
        from fuzz.infer.refine import refine as refine_rule

        out = []
        for r in rules:
            group = getattr(r, "_group", None)
            if r.status == "symbolic" and group is not None:
                r = refine_rule(group, r, seconds)
            out.append(r)
        rules = out
    return rules, spec


def _infer_group(g: Group, seconds: float = 1.5) -> tuple[list[Rule], list[int] | None]:
    """Rules for one signature; the second value is the specialised int args (None if not).

    Cheap attempts first (bank to size 3, meet in the middle), on the whole signature and on
    its specialisations; then the full search (bank to size 5, floor sketch) within ``seconds``.
    """
    rule, reason = infer_plain(g, Budget(seconds / 4), cheap=True)
    if rule is not None:
        return [rule], None
    if not g.valid:
        return [], None
    # Categorical int args: few distinct values (dim of a reduction, transpose's dims, ...).
    singles = []
    for k in range(g.n_ints):
        values = {c.ints[k] for c in g.valid}
        if 2 <= len(values) <= MAX_SPECIALISE_VALUES:
            singles.append((len(values), k))
    options = [[k] for _, k in sorted(singles)[:3]]
    joint = sorted(k for _, k in singles)
    if len(joint) > 1 and len({tuple(c.ints[k] for k in joint) for c in g.valid}) <= 4 * MAX_SPECIALISE_VALUES:
        options.append(joint)
    best = None
    for ks in options:
        n_sym, rules = _specialise(g, ks, True, seconds / 4)
        if n_sym == len(rules):
            return rules, sorted(ks, reverse=True)
        if n_sym and (best is None or n_sym > best[0]):
            best = (n_sym, ks, rules)
    rule, reason = infer_plain(g, Budget(seconds), cheap=False)
    if rule is not None:
        return [rule], None
    if best is not None:
        prev = {tuple(r.stats["specialised"]["values"]): r for r in best[2]}
        n_sym, rules = _specialise(g, best[1], False, seconds, prev)
        return rules, sorted(best[1], reverse=True)
    return [concrete_rule(g, reason)], None
