"""Random valid models from inferred operator rules (NNSmith/NeuRI-style).

Generation keeps every tensor's dims as Z3 integers and grows the graph one
operator at a time:

- *pick an operator*: uniformly among operator names not yet in this graph (all
  names once every one is used), then one of its signatures (rules) and one of the
  dtype combinations the rule saw valid;
- *insert it forward* (its tensor operands are existing tensors whose rank and
  dtype fit, at least one of them; the rest are new graph inputs or parameters)
  or *backward* (it produces a tensor that replaces an existing graph input; all
  its operands are new inputs);
- add the rule's constraints and output-shape expressions (SMT-LIB text,
  ``RuleInfo.smt_templates``) under a solver ``push``; keep the operator if the
  solver stays satisfiable, ``pop`` otherwise. Integer arguments are first tried fixed (from a recorded
  valid call or drawn from the recorded range), which keeps the problem linear
  and fast; only if that fails are they left to Z3.

Rules with ``status="concrete"`` enter as concrete operators: shapes, integers
and dtypes of one recorded valid call. An existing tensor is used as an operand
only if it can be made exactly that shape; otherwise the operands are new inputs.

Finally the dims are solved for concrete values with randomised lower bounds
(diverse shapes), and the total number of elements of all tensors (inputs,
parameters, activations) is checked against ``max_elements``; if it is over, the
dim cap is lowered and the model re-solved.

Every node is then run once on real CPU values (``fuzz.gen.values.search``, which
also looks for finite values). A node whose call fails or whose outputs disagree
with the predicted shape is dropped: its outputs become graph inputs. How often
that happens is recorded in ``graph.meta["guard"]``; it measures rule quality.

All choices go through a *chooser* (``RandomChooser`` from a seed in the CLI,
Hypothesis's data in ``fuzz.strategies``), so one code path serves both.

The modules, in the order a model passes through them: ``ruleset`` (the rules fit for
generation; ``deny`` says which are not), ``builder`` (the graph grown on a text-fed Z3
``solver``; ``callcheck`` calls each inserted operator on meta/CPU tensors), ``materialise``
(values, the guard run), and this one (the entry points: ``generate``,
``generate_model_for_index``). ``config`` holds ``GenConfig`` and ``GenerationError``.
"""

from __future__ import annotations

import dataclasses
import random

from fuzz.gen import layouts
from fuzz.gen.blocks import grow_blocks
from fuzz.gen.builder import Builder
from fuzz.gen.chooser import Chooser, RandomChooser
from fuzz.gen.complex_boundary import real_boundary
from fuzz.gen.config import GenConfig, GenerationError
from fuzz.gen.empty_dims import record as record_empty_dims
from fuzz.gen.empty_dims import zero_one_dim
from fuzz.gen.forms import apply_forms
from fuzz.gen.size_args import write_sizes
from fuzz.gen.materialise import Generated, materialise
from fuzz.gen.policy import Shares, draw_policy
from fuzz.gen.scalars import lift_scalars
from fuzz.gen.ruleset import THEME_DTYPES, RuleSet, themed
from fuzz.ir.dsl import smt_int
from fuzz.ir.graph import Graph, Node
from fuzz.ir.opnames import identifier_stem
from fuzz.ir.template import fill_call


def _to_graph(b: Builder, shapes: dict) -> Graph:
    """The concrete Graph, tensors renamed to say what they are (x_0, w_1, conv2d_2...)."""
    g = Graph()
    rename: dict[str, str] = {}
    counter = [0]

    def name(old: str, stem: str) -> str:
        if old not in rename:
            rename[old] = f"{stem}_{counter[0]}"
            counter[0] += 1
        return rename[old]

    # Leaves first (inputs then params in order of first use), then values in node order.
    for p in b.nodes:
        for o in p.operands:
            t = b.tensors[o]
            if t.role in ("input", "param") and o not in rename:
                g.add_tensor(shapes[o], t.dtype, t.role, name=name(o, "x" if t.role == "input" else "w"))
    for i, p in enumerate(b.nodes):
        rule = p.info.rule
        outs = []
        for o in p.outputs:
            outs.append(name(o, identifier_stem(rule.op)))
            g.add_tensor(shapes[o], b.tensors[o].dtype, "value", name=rename[o])
        init, args, kwargs = fill_call(rule.template, lambda k: {"ref": rename[p.operands[k]]}, p.solved, p.floats)
        g.add_node(Node(id=f"n{i}", op=rule.op, api=rule.api, overload=rule.overload, args=args, kwargs=kwargs,
                        outputs=outs, kind=p.kind, init=init, rule=rule.key))
    consumed = set()
    for n in g.nodes:
        consumed.update(n.inputs())
    g.outputs = [t for n in g.nodes for t in n.outputs if t not in consumed]
    return g


# ---------------------------------------------------------------------------
# the public entry points


def _first_tensor(b: Builder) -> None:
    """The seed of every graph: one input of a rank and dtype some rule can consume (under a dtype
    theme, of the theme's dtype; under ``mixed``, of any dtype)."""
    keys = sorted(b.rs.ops_taking)
    theme = b.cfg.policy.dtype
    if theme != "mix":
        by_dtype: dict = {}
        for k in keys:
            if k[0] <= 5:
                by_dtype.setdefault(k[1], []).append(k)
        if not by_dtype:
            pool = keys
        else:
            pool = by_dtype.get(theme) or by_dtype[b.ch.choice(sorted(by_dtype))]
        rank, dtype = b.ch.choice(pool)
        t, c = b.new_tensor(rank, dtype, "input")
        b.add(c)
        b.tensors[t.name] = t
        return
    float_keys = [k for k in keys if k[1] == "float32" and 1 <= k[0] <= 5] or keys
    pool = float_keys if b.ch.chance(0.7) else ([k for k in keys if k[0] <= 5] or keys)
    rank, dtype = b.ch.choice(pool)
    t, c = b.new_tensor(rank, dtype, "input")
    b.add(c)
    b.tensors[t.name] = t


def _place_lead(b: Builder, stem: str) -> bool:
    """Start the graph with an operator of ``stem``: the first tensor is one its rule takes (or,
    for an operator without tensor operands, one it makes, replaced backward), so even operators
    that rarely fit a grown graph get a fresh input whose dims are still free."""
    names = b.rs.stem_names.get(stem)
    if not names:
        return False
    name = b.ch.choice(names)
    info = b.ch.choice(b.rs.by_op[name])
    forward = bool(info.slot_keys)
    keys = sorted(info.slot_keys if forward else info.out_keys)
    theme = b.cfg.policy.dtype
    if theme in THEME_DTYPES:
        keys = [k for k in keys if k[1] == theme]
        if not keys:
            return False  # the lead takes no tensor of the theme's dtype: seed with one instead
    rank, dtype = b.ch.choice(keys)
    t, c = b.new_tensor(rank, dtype, "input")
    b.add(c)
    b.tensors[t.name] = t
    for _ in range(3):
        if b.insert_forward(info) if forward else b.insert_backward(info):
            b.used_ops.add(name)
            b.used_stems.add(stem)
            b.stats["forward" if forward else "backward"] += 1
            b.stats["lead"] = name
            return True
    return True  # the first tensor is in place either way


def lead_stem(ruleset: RuleSet, seed: int, index: int) -> str | None:
    """The stem model ``index`` of a run seeded ``seed`` starts with: every stem in turn, in an
    order the seed shuffles, so a run of N models starts from min(N, stems) different operators
    (and its first models are not an alphabetical slice of them)."""
    if not ruleset.stems:
        return None
    order = ruleset.lead_orders.get(seed)
    if order is None:
        order = list(ruleset.stems)
        random.Random(f"assay-lead:{seed}").shuffle(order)
        if len(ruleset.lead_orders) > 64:
            ruleset.lead_orders.clear()
        ruleset.lead_orders[seed] = order
    return order[index % len(order)]


class _NeedsWitnesses(Exception):
    """A call placed without a meta check disagrees with its rule at the final solution."""


def generate_graph(ruleset: RuleSet, cfg: GenConfig, chooser: Chooser, lead: str | None = None) -> tuple[Graph, dict]:
    """A graph of up to ``cfg.nodes`` operators, solved (no values yet); ``lead``: the stem of
    the first operator (``lead_stem``).

    The graph is grown first without a meta check of each call as it is placed (a model read and
    a meta-device call per placement, which reject about one placement in forty; in a profile of
    400 default-mix models they were two thirds of the model reads and two fifths of the meta
    checks): every call is checked at the final solution anyway. Only when one fails there (about
    one graph in twenty) is the graph grown again from the same draws (``Chooser.snapshot``) with
    the checks on, which reject such a call when it is placed or pin it to where it held
    (``_pin_failing``): the same graph as if they had been on throughout. A chooser that cannot
    replay its draws (Hypothesis's) grows with the checks on."""
    replay = chooser.snapshot()
    if replay is not None:
        try:
            return _grow_graph(ruleset, cfg, chooser, lead, check_on_insert=False)
        except _NeedsWitnesses:
            chooser.restore(replay)
    g, stats = _grow_graph(ruleset, cfg, chooser, lead, check_on_insert=True)
    if replay is not None:
        stats["regrown"] = 1
    return g, stats


def _grow_graph(ruleset: RuleSet, cfg: GenConfig, chooser: Chooser, lead: str | None,
                check_on_insert: bool) -> tuple[Graph, dict]:
    theme_rules = themed(ruleset, cfg.policy.dtype)
    if theme_rules.ops:  # a small rules file may hold no rule of the theme's dtypes: then all rules
        ruleset = theme_rules
    if not ruleset.ops:
        raise GenerationError("no usable rules")
    b = Builder(ruleset, cfg, chooser)
    b.check_on_insert = check_on_insert
    placed_blocks = grow_blocks(b) if cfg.policy.form == "blocks" else None
    if placed_blocks is None and (lead is None or not _place_lead(b, lead)):
        _first_tensor(b)
    misses = 0
    while len(b.nodes) < cfg.nodes and misses < 3:
        if b.insert_one():
            misses = 0
        else:
            misses += 1
    if not b.nodes:
        raise GenerationError("could not place any operator")
    shapes = b.solve()
    shapes = _pin_failing(b, shapes)
    if b.zero_dims:
        shapes = zero_one_dim(b, shapes)
    g = _to_graph(b, shapes)
    if b.zero_dims:
        record_empty_dims(g, b.zero_result["placed"])
    if cfg.policy.dtype == "complex64":
        real_boundary(g)  # float32 (re, im) pairs in and out: fuzz.gen.complex_boundary
    if placed_blocks is not None:
        g.meta["blocks"] = placed_blocks
    if cfg.policy.form == "forms":
        apply_forms(g, b.ch)
    if cfg.policy.scalars != "constant":
        lift_scalars(g, b.ch, cfg.policy.scalars, ruleset.rule)
    if cfg.policy.shape_args == "sizes":
        write_sizes(g, b.ch, ruleset.rule)
    stats = dict(b.stats)
    return g, stats


def _pin_failing(b: Builder, shapes: dict) -> dict:
    """Meta-check every node at the final solution; pin a failing node's operands and ints to the
    values it was checked at when inserted (its witness), and re-solve. A failing node placed
    without a check has no witness: ``_NeedsWitnesses``."""
    failing = [p for p in b.nodes if (p.witness or p.unchecked) and not b.call_agrees(p, shapes)]
    if not failing:
        return shapes
    if any(p.unchecked for p in failing):
        raise _NeedsWitnesses()
    pins = []
    for p in failing:
        wshapes, wints = p.witness
        for o, ws in zip(p.operands, wshapes):
            pins += [f"(= {d} {smt_int(int(v))})" for d, v in zip(b.tensors[o].dims, ws) if not isinstance(d, int)]
        pins += [f"(= {a} {smt_int(int(v))})" for a, v in zip(p.ints, wints) if not isinstance(a, int)]
    b.solver.push()
    b.add(pins)
    if b.sat():
        values = b.values_at(b.model_values())
        b.solver.pop()
        if b.total_elements(values) <= b.shape.max_elements:
            b.stats["pinned"] += len(failing)
            return values
    else:
        b.solver.pop()
    return shapes


def generate(ruleset: RuleSet, cfg: GenConfig, chooser: Chooser, attempts: int = 4, lead: str | None = None) -> Generated:
    """One model: graph, values and stats (``lead``: see ``generate_graph``)."""
    import time

    last = None
    for _ in range(attempts):
        t0 = time.perf_counter()
        try:
            g, stats = generate_graph(ruleset, cfg, chooser, lead)
        except GenerationError as exc:
            last = exc
            continue
        t1 = time.perf_counter()
        seed = chooser.integer(0, (1 << 31) - 1)
        try:
            model = materialise(g, seed, cfg)
        except GenerationError as exc:
            last = exc
            continue
        model.stats.update(stats)
        model.stats.update({"solve_s": t1 - t0, "values_s": time.perf_counter() - t1, "seed": seed})
        n_sym = sum(1 for n in g.nodes if n.kind == "symbolic")
        g.meta.update({"generator": "assay", "symbolic": n_sym, "concrete": len(g.nodes) - n_sym,
                       "finite": model.finite, "value_seed": seed})
        if not cfg.policy.legacy:
            g.meta["policy"] = cfg.policy.to_json()
        if cfg.policy.layout == "strided":
            lay_out(model, seed)
        return model
    raise GenerationError(f"could not generate a model: {last}")


def lay_out(model: Generated, seed: int) -> None:
    """Give some of ``model``'s inputs a non-contiguous layout (``fuzz.gen.layouts``), recorded in
    ``graph.meta["layouts"]``; none when the program's eager run fails with them."""
    from fuzz.gen.program import build_module, run_eager

    g = model.graph
    chosen = layouts.draw_layouts(g, model.leaves, seed)
    if not chosen:
        return
    laid = layouts.with_layouts(model.leaves, chosen)
    g.meta["layouts"] = chosen
    try:
        run_eager(build_module(g, model.state), model.forward_inputs(laid))
    except Exception as exc:  # noqa: BLE001 - e.g. view() of a transposed input: kept contiguous
        del g.meta["layouts"]
        g.meta["layouts_dropped"] = f"{type(exc).__name__}: {exc}"[:200]
        return
    model.leaves = layouts.with_layouts(model.leaves, chosen)  # fresh copies: the run may have written into laid


def model_rng(seed: int, index: int) -> random.Random:
    """The chooser's random source for model ``index`` of a run seeded ``seed`` (stable across processes)."""
    return random.Random(f"assay-gen:{seed}:{index}")


def generate_model_for_index(ruleset: RuleSet, cfg: GenConfig, seed: int, index: int,
                             shares: Shares | None = None) -> Generated:
    """Model ``index`` of a run seeded ``seed``: it depends on nothing else (any process, any order),
    and consecutive indices start from different operators (``lead_stem``). With ``shares``, its
    policy is drawn from them (``fuzz.gen.policy.draw_policy``); without, ``cfg.policy`` holds."""
    if shares is not None:
        cfg = dataclasses.replace(cfg, policy=draw_policy(shares, seed, index))
    if cfg.policy.calls == "invalid":  # a call eager rejects (fuzz.gen.error_calls)
        from fuzz.gen.error_calls import error_model

        graph, inputs, state = error_model(seed, index)
        graph.meta["policy"] = cfg.policy.to_json()
        return Generated(graph, inputs, state, True, {"error_program": True})
    return generate(ruleset, cfg, RandomChooser(model_rng(seed, index)), lead=lead_stem(ruleset, seed, index))
