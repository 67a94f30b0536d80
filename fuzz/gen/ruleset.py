"""The rules prepared for generation: ``RuleSet`` (fit rules by operator, with the indexes the
generator's operator choice needs) and ``RuleInfo`` (one rule with its usable dtype combinations,
examples, integer ranges and SMT-LIB templates). ``load_ruleset`` reads and prepares the shipped
(or a given) rules file once per process.
"""

from __future__ import annotations

import re

from dataclasses import dataclass
from typing import Any, Sequence

from fuzz.gen.config import DEFAULT_DTYPES
from fuzz.gen.deny import HELD_BACK_FROM_RANDOM, deny_reason, without_dropout, without_unchecked_enums
from fuzz.ir.dsl import divisors_of, simplify, to_smtlib
from fuzz.ir.opnames import display_name, last_component, short_name
from fuzz.ir.rule import Rule


@dataclass
class RuleInfo:
    rule: Rule
    combos: list                    # [(in dtypes, out dtypes)] allowed
    slot_keys: set                  # {(rank, dtype)} any operand slot may take
    out_keys: set                   # {(rank, dtype)} any output may have
    examples: list                  # usable recorded calls
    int_ranges: list                # [(lo, hi)] per int placeholder
    n_out: int
    smt: Any = None                 # (constraint templates, output-dim templates), built on first use
    dim_floors: frozenset = frozenset()  # indices of constraint templates that say an operand dim >= 1

    def smt_templates(self) -> tuple[list[str], list[list[tuple[str, str | None]]]]:
        """The rule's constraints and output dims as SMT-LIB text with ``{symbol}`` holes, parsed once
        per rule: filling the holes (``str.format_map``) is far cheaper than building Z3 terms through
        its Python API at every insertion."""
        if self.smt is None:
            # Every dim the generator makes is >= 1 and every int arg >= its range's low end, so
            # terms that matter only at zero-size dims fold away (broadcast's ``* min(.., 1)``).
            def lower(sym: str):
                if sym.startswith("x"):
                    return 1
                k = int(sym[1:])
                return self.int_ranges[k][0] if k < len(self.int_ranges) else None

            cons = [to_smtlib(simplify(p, lower), _hole) for p in self.rule.constraints]
            # ``E >= 1`` over operand dims alone (a dim, the max of two broadcast dims...): what every
            # recorded call had, since no trace holds a zero-size tensor; a model that may empty a
            # dim guards these (fuzz.gen.empty_dims), and its meta checks decide
            self.dim_floors = frozenset(i for i, c in enumerate(cons) if _is_dim_floor(c))
            outs = []
            for shape in self.rule.outputs or []:
                dims = []
                for e in shape:
                    e = simplify(e, lower)
                    for d in divisors_of(e):
                        if not isinstance(d, int):
                            cons.append(f"(>= {to_smtlib(d, _hole)} 1)")
                    dims.append((to_smtlib(e, _hole), e if isinstance(e, str) else None))
                outs.append(dims)
            self.smt = (cons, outs)
        return self.smt


def _is_dim_floor(template: str) -> bool:
    """Whether a constraint template says ``E >= 1`` of an expression of operand dims only."""
    m = re.fullmatch(r"\(>= (.*) 1\)", template)
    return bool(m) and "{x" in m.group(1) and "{a" not in m.group(1) and not re.search(r"\b(div|mod)\b", m.group(1))


def _hole(symbol: str) -> str:
    """A symbol as a ``str.format_map`` hole in a rule's SMT-LIB templates."""
    return "{" + symbol + "}"


CACHE_LIMIT = 2048  # entries per RuleSet cache (operator-set unions, stem indexes)


class RuleSet:
    """Rules fit for generation, grouped by operator name."""

    def __init__(self, rules: list[Rule], dtypes: Sequence[str] | None = None, ops: set | None = None):
        allowed = set(dtypes or DEFAULT_DTYPES)
        self.allowed = frozenset(allowed)
        self.themes: dict[str, "RuleSet"] = {}  # dtype theme -> this rule set restricted to it (``themed``)
        self.denied: dict[str, str] = {}
        self.by_op: dict[str, list[RuleInfo]] = {}
        self.held_back: dict[str, list[RuleInfo]] = {}  # deny.HELD_BACK_FROM_RANDOM: for blocks only
        self.n_given = 0  # rules given, usable or not
        self.given: list[Rule] = []  # those of ``ops``: a theme with a dtype outside ``dtypes`` starts from them (``themed``)
        for rule in rules:
            self.n_given += 1
            if ops is not None and rule.op not in ops and last_component(rule.op) not in ops:
                continue
            self.given.append(rule)
            reason = deny_reason(rule)
            if reason is None and without_dropout(rule) is None:
                reason = "random: no dropout_p of 0 recorded"
            if reason is None and without_unchecked_enums(rule) is None:
                reason = "uninitialised: no valid enum value recorded"
            info = None if reason else self._prepare(without_unchecked_enums(without_dropout(rule)), allowed)
            if info is None:
                self.denied[rule.key] = reason or "no usable dtype combination or example"
                continue
            held = last_component(rule.op).lower().lstrip("_") in HELD_BACK_FROM_RANDOM
            (self.held_back if held else self.by_op).setdefault(display_name(rule.op, rule.api, rule.overload), []).append(info)
        self.ops = sorted(self.by_op)
        self.n_rules = sum(len(v) for v in self.by_op.values())
        # (rank, dtype) -> operators with a rule that can take / produce such a tensor.
        self.ops_taking: dict[tuple, set] = {}
        self.ops_making: dict[tuple, set] = {}
        for op, infos in self.by_op.items():
            for info in infos:
                for k in info.slot_keys:
                    self.ops_taking.setdefault(k, set()).add(op)
                for k in info.out_keys:
                    self.ops_making.setdefault(k, set()).add(op)
        self._unions: dict = {}
        self._stem_index: dict = {}
        self.stem = {op: op_stem(infos[0].rule) for op, infos in self.by_op.items()}
        self.stem_names: dict[str, list] = {}
        for op in self.ops:
            self.stem_names.setdefault(self.stem[op], []).append(op)
        self.stems = sorted(self.stem_names)
        self.lead_orders: dict[int, list] = {}  # seed -> stems in the order models lead with them
        self._by_key: dict | None = None

    def rule(self, key: str):
        """The rule (as prepared for generation) of a signature key, or None."""
        if self._by_key is None:
            self._by_key = {i.rule.key: i.rule for group in (self.by_op, self.held_back)
                            for infos in group.values() for i in infos}
        return self._by_key.get(key)

    def stem_index(self, ops: frozenset) -> tuple[list, dict]:
        """(sorted stems of ``ops``, stem -> sorted names in ``ops``), cached per operator set."""
        got = self._stem_index.get(ops)
        if got is None:
            if len(self._stem_index) > CACHE_LIMIT:
                self._stem_index.clear()
            by: dict[str, list] = {}
            for op in sorted(ops):
                by.setdefault(self.stem[op], []).append(op)
            got = self._stem_index[ops] = (sorted(by), by)
        return got

    def ops_for(self, keys: frozenset, index: dict) -> frozenset:
        """Operators taking (``index=ops_taking``) or making (``ops_making``) a tensor of one of ``keys``."""
        ck = (keys, id(index))
        got = self._unions.get(ck)
        if got is None:
            if len(self._unions) > CACHE_LIMIT:
                self._unions.clear()  # bounded: a long run meets many distinct tensor-kind sets
            got = self._unions[ck] = frozenset().union(*(index.get(k, ()) for k in keys))
        return got

    @staticmethod
    def _prepare(rule: Rule, allowed: set) -> RuleInfo | None:
        n_x = len(rule.ranks)
        examples = []
        for ex in rule.examples:
            outs = ex.get("out") or []
            if not outs or any(0 in o["shape"] for o in outs) or any(0 in s for s in ex["shapes"]):
                continue
            if not set(ex["dtypes"]) <= allowed or not {o["dtype"] for o in outs} <= allowed:
                continue
            examples.append(ex)
        if rule.status == "symbolic":
            if not rule.outputs:
                return None
            n_out = len(rule.outputs)
            combos = [(list(i), list(o)) for i, o in rule.dtypes
                      if len(i) == n_x and len(o) == n_out and set(i) <= allowed and set(o) <= allowed]
            if not combos:
                return None
        else:
            if not examples:
                return None
            n_out = len(examples[0]["out"])
            examples = [e for e in examples if len(e["out"]) == n_out]
            combos = sorted({(tuple(e["dtypes"]), tuple(o["dtype"] for o in e["out"])) for e in examples})
            combos = [(list(i), list(o)) for i, o in combos]
        if n_out == 0:
            return None
        slot_keys = {(rule.ranks[s], c[0][s]) for c in combos for s in range(n_x)}
        if rule.status == "symbolic":
            out_keys = {(len(rule.outputs[j]), c[1][j]) for c in combos for j in range(n_out)}
        else:
            out_keys = {(len(e["out"][j]["shape"]), e["out"][j]["dtype"]) for e in examples for j in range(n_out)}
        ranges = rule.stats.get("int_ranges", {}) if isinstance(rule.stats, dict) else {}
        int_ranges = []
        for k in range(rule.n_ints):
            lo, hi = ranges.get(f"a{k}", [None, None])
            if lo is None:
                vals = [e["ints"][k] for e in rule.examples if len(e.get("ints", [])) > k]
                lo, hi = (min(vals), max(vals)) if vals else (-1, 8)
            int_ranges.append((int(lo), int(min(hi, max(lo, 64)))))
        return RuleInfo(rule, combos, slot_keys, out_keys, examples, int_ranges, n_out)


def op_stem(rule: Rule) -> str:
    """What an operator computes, without how it is called: ``aten::relu``, ``torch.relu``,
    ``torch.nn.functional.relu`` and ``torch.nn.ReLU`` are all ``relu``; ``Tensor.__rsub__`` is ``rsub``."""
    return short_name(rule.op)


# What a model of each dtype theme (``fuzz.gen.policy``, axis ``dtype``) may hold. Float themes
# allow no other float dtype but keep every integer and bool dtype (indices, masks, counts an
# operator needs stay what its rule requires); integer themes keep int64 (indices) and bool, and
# float32 for the operators between their integer tensors. ``mix`` and ``mixed`` keep all.
INTS = {"int64", "int32", "int16", "int8", "uint8", "bool"}
THEME_DTYPES = {
    "float16": {"float16"} | INTS,
    "bfloat16": {"bfloat16"} | INTS,
    "int8": {"int8", "int64", "bool", "float32"},  # int8 via STAND_INS
    "uint8": {"uint8", "int64", "bool", "float32"},
    "int64": {"int64", "bool", "float32"},
    "int32": {"int32", "int64", "bool", "float32"},  # int32 arithmetic wraps where int64 would not
    "int16": {"int16", "int64", "bool", "float32"},  # int16 via STAND_INS
    # complex64 tensors inside the model; its inputs and outputs are float32 (re, im) pairs
    # (fuzz.gen.complex_boundary); float32 for the real parts, norms and angles between them
    "complex64": {"complex64", "float32", "int64", "bool"},
}
# Themes whose operator dtype choices prefer the theme's dtype (``Builder.pick_dtypes``); the float
# themes only restrict the rule set, since their integer and bool tensors are what an operator needs.
PREFERRING_THEMES = frozenset(THEME_DTYPES) - {"float16", "bfloat16"}
# Themes whose dtypes the default rule set leaves out: their rule set starts from every rule given.
EXTRA_THEME_DTYPES = {"complex64": {"complex64"}}


# Dtypes the tracer never recorded (``fuzz.tracing.mutate.TENSOR_DTYPES`` has no int8 or int16), and the
# recorded dtypes whose valid combinations they inherit: an operator that takes int32 or uint8
# almost always takes int8 too. The inherited combinations are a guess the generator checks like
# any rule: the meta/CPU call at insertion (``fuzz.gen.callcheck``) and the guard run, which
# drops a node whose call fails or whose output dtype differs from the predicted one.
STAND_INS = {"int8": ("int32", "uint8"), "int16": ("int32", "uint8")}


def with_stand_in(rule: Rule, dtype: str) -> Rule:
    """``rule`` with, beside its own, the dtype combinations and recorded calls of ``STAND_INS``
    where every stand-in dtype is ``dtype``."""
    import dataclasses

    subs = STAND_INS[dtype]

    def swap(dts):
        return [dtype if d in subs else d for d in dts]

    def swapped_example(ex):
        return {**ex, "dtypes": swap(ex["dtypes"]), "out": [{**o, "dtype": swap([o["dtype"]])[0]} for o in ex["out"]]}

    seen = {(tuple(i), tuple(o)) for i, o in rule.dtypes}
    extra = []
    for i, o in rule.dtypes:
        key = (tuple(swap(i)), tuple(swap(o)))
        if key not in seen:
            seen.add(key)
            extra.append([list(key[0]), list(key[1])])
    examples = [swapped_example(e) for e in rule.examples if any(d in subs for d in _example_dtypes(e))]
    if not extra and not examples:
        return rule
    return dataclasses.replace(rule, dtypes=[*rule.dtypes, *extra], examples=[*rule.examples, *examples])


def _example_dtypes(ex: dict) -> list:
    return [*ex.get("dtypes", []), *(o.get("dtype") for o in ex.get("out") or [])]


def cast_ops(ruleset: RuleSet) -> frozenset:
    """Operators with a dtype combination that turns numbers of one dtype into another (no bool
    on either side, no dtype shared by operands and outputs): ``.half()``, ``.to(int8)``,
    ``sum(dtype=...)``... The ``mixed`` theme draws from these often. Computed once per rule set."""
    got = ruleset.themes.get("casts")
    if got is None:
        found = set()
        for op, infos in ruleset.by_op.items():
            for info in infos:
                if any("bool" not in (*i, *o) and not set(i) & set(o) for i, o in info.combos):
                    found.add(op)
                    break
        got = ruleset.themes["casts"] = frozenset(found)
    return got


def themed(ruleset: RuleSet, theme: str) -> RuleSet:
    """``ruleset`` restricted to the dtypes of a dtype theme (``THEME_DTYPES``); itself for a theme
    without a restriction. Made once per rule set and theme."""
    allowed = THEME_DTYPES.get(theme)
    if allowed is None:
        return ruleset
    got = ruleset.themes.get(theme)
    if got is None:
        extra = EXTRA_THEME_DTYPES.get(theme, set())
        if extra:  # rules the default dtypes dropped (complex outputs) are this theme's own
            rules = [without_dtypes_in_modules(r, extra) for r in ruleset.given]
        else:
            rules = [info.rule for infos in ruleset.by_op.values() for info in infos]
        if theme in STAND_INS:
            rules = [with_stand_in(r, theme) for r in rules]
        got = ruleset.themes[theme] = RuleSet(rules, sorted((ruleset.allowed | extra) & allowed))
        freeze_long_lived()
    return got


GC_YOUNG_THRESHOLD = 20_000  # allocations between collections of the youngest generation


def freeze_long_lived() -> None:
    """Move every object the cyclic collector tracks now (a rule set's million-odd rules, examples
    and indexes, torch's own) out of its reach (``gc.freeze``). They live as long as the process,
    and each full collection walked all of them: 1.5 s per gen-2 collection on the shipped rules,
    one in about every 1,000 generated models (a 12% slower 1,000-model run, a stall in a worker).
    Garbage made before the call is frozen too; rule sets are built once, so that is a bounded few.

    The youngest generation is then collected every ``GC_YOUNG_THRESHOLD`` allocations instead of
    Python's 700: a model's generation allocates and frees hundreds of thousands of short-lived
    objects (SMT-LIB texts, tensors, graph nodes), and each young collection walked the survivors
    again (1.01-1.08x over 600 default-mix models, against 0.98-1.01x for a null A/B:
    ``python benchmarks/gen_profile.py ab --setting gc-young``)."""
    import gc

    gc.freeze()
    young, *older = gc.get_threshold()
    if 0 < young < GC_YOUNG_THRESHOLD:
        gc.set_threshold(GC_YOUNG_THRESHOLD, *older)


def without_dtypes_in_modules(rule: Rule, dtypes: set) -> Rule:
    """A module's rule without the dtype combinations and recorded calls that hold one of ``dtypes``:
    such a module would be built with that dtype and hold complex parameters, which neither the
    float64 reference (``Module.to(float64)`` drops their imaginary part) nor the real boundary of
    the complex64 theme (``fuzz.gen.complex_boundary``) covers. Other rules are returned as they are."""
    import dataclasses

    if rule.api != "module":
        return rule
    dtypes_ok = [[i, o] for i, o in rule.dtypes if not set(i) & dtypes and not set(o) & dtypes]
    examples = [e for e in rule.examples if not set(_example_dtypes(e)) & dtypes]
    if len(dtypes_ok) == len(rule.dtypes) and len(examples) == len(rule.examples):
        return rule
    return dataclasses.replace(rule, dtypes=dtypes_ok, examples=examples)


_LOADED: dict = {}


def load_ruleset(path=None, dtypes: Sequence[str] | None = None, ops: set | None = None) -> RuleSet:
    """The rules file at ``path`` (default: the shipped rules of the installed torch) as a
    ``RuleSet`` restricted to ``dtypes`` and ``ops`` (``RuleSet``'s arguments); read and prepared
    once per process for each combination of arguments."""
    key = (None if path is None else str(path), tuple(dtypes) if dtypes else None,
           None if ops is None else frozenset(ops))
    if key not in _LOADED:
        from fuzz.ir.rule import load_rules

        _LOADED[key] = RuleSet(load_rules(path=path), dtypes, ops)
        freeze_long_lived()
    return _LOADED[key]
