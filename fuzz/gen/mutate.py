"""Mutants of saved models (a guided campaign's seeds), kept valid through the inferred rules.

Every mutator works on a seed's ``graph.json`` and ends in ``materialise`` (the guard run and
the value search of a generated model), so a mutant is exactly as valid as a generated model:
a node whose call fails is dropped, values are searched to stay finite.

- ``values``: the same graph, values searched from another seed;
- ``delete``: one operator removed (``drop_node``: its outputs that others read become inputs);
- ``grow``: one to three operators added by the generator's ``Builder`` on the seed's tensors
  (their dims fixed), each placed by its rule exactly as in generation: it may read any tensor
  of the seed, intermediate values included;
- ``replace``: ``delete`` then ``grow`` by one;
- ``splice``: a second seed joined in: each of its inputs that matches an output of the first
  in shape and dtype reads that output instead (disjoint otherwise);
- ``regen``: the seed's origin (campaign seed, index) generated again with one policy axis
  (``fuzz.gen.policy.AXES``) changed: other sizes, dtypes, values or form, same random draws
  (when that changes nothing, as with a generator that ignores the axis: ``values``).

``mutant_model(spec, nodes)`` is what a worker runs for a job whose source is
``{"mutant": spec}``; spec: ``{"mutator", "seed_dir", "rng", "other_dir"?, "origin"?, "axis"?}``.
A mutator that cannot apply (one node left to delete, no origin to regenerate) falls back to
``values``; the graph's ``meta["mutation"]`` says what was done.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

from fuzz.gen.builder import Builder, SymbolicTensor
from fuzz.gen.chooser import RandomChooser
from fuzz.gen.config import GenConfig, GenerationError
from fuzz.gen.generate import generate, lead_stem, model_rng
from fuzz.gen.complex_boundary import has_complex, real_boundary
from fuzz.gen.materialise import Generated, drop_node, materialise
from fuzz.gen.policy import AXES, ModelPolicy
from fuzz.gen.ruleset import load_ruleset
from fuzz.ir.graph import Graph, Node, python_number_inputs, replace_refs
from fuzz.ir.opnames import identifier_stem
from fuzz.ir.template import fill_call

MUTATORS = ("values", "delete", "grow", "replace", "splice", "regen")


def _unconsumed_outputs(g: Graph) -> None:
    """Graph outputs: every value no node reads (as the generator makes them)."""
    consumed = {t for n in g.nodes for t in n.inputs()}
    g.outputs = [t for n in g.nodes for t in n.outputs if t not in consumed]


def delete(g: Graph, rng: random.Random) -> bool:
    if len(g.nodes) < 2:
        return False
    drop_node(g, rng.choice(g.nodes).id)
    g.prune()
    return bool(g.nodes)


def grow(g: Graph, rng: random.Random, count: int, cfg: GenConfig) -> int:
    """Add up to ``count`` operators to ``g`` through the rules (forward only); how many were added."""
    rs = load_ruleset()
    b = Builder(rs, dataclasses.replace(cfg, forward_prob=1.0), RandomChooser(rng))
    # a size the values decide (fuzz.gen.datadep) is no dim a rule can be solved on: not read
    data_sized = {o for n in g.nodes if n.extra.get("data_dependent") == "shape" for o in n.outputs}
    numbers = python_number_inputs(g)  # forward takes them as Python numbers: no tensor operand
    for name, t in g.tensors.items():
        if name not in data_sized and name not in numbers:
            b.tensors[name] = SymbolicTensor(name, [int(d) for d in t.shape], t.dtype, t.role)
    for n in g.nodes:
        if n.name in rs.stem:
            b.used_ops.add(n.name)
            b.used_stems.add(rs.stem[n.name])
    misses = 0
    while len(b.nodes) < count and misses < 3:
        if b.insert_one():
            misses = 0
        else:
            misses += 1
    if not b.nodes or any(o in g.tensors for p in b.nodes for o in p.outputs):
        return 0  # nothing placed, or placed backward (it would replace a seed input)
    shapes = b.solve()
    rename: dict[str, str] = {}
    for p in b.nodes:
        for o in p.operands:
            t = b.tensors[o]
            if o not in g.tensors and o not in rename:
                rename[o] = g.add_tensor(shapes[o], t.dtype, t.role)
        rule = p.info.rule
        outs = []
        for o in p.outputs:
            rename[o] = g.add_tensor(shapes[o], b.tensors[o].dtype, "value", name=g.fresh_name(identifier_stem(rule.op)))
            outs.append(rename[o])
        init, args, kwargs = fill_call(rule.template, lambda k: {"ref": rename.get(p.operands[k], p.operands[k])},
                                       p.solved, p.floats)
        g.add_node(Node(id=g.new_node_id(), op=rule.op, api=rule.api, overload=rule.overload, args=args,
                        kwargs=kwargs, outputs=outs, kind=p.kind, init=init, rule=rule.key))
    _unconsumed_outputs(g)
    return len(b.nodes)


def splice(a: Graph, b: Graph, rng: random.Random) -> int:
    """Join ``b`` into ``a`` (in place); ``b``'s inputs read matching outputs of ``a``. How many joined."""
    rename: dict[str, str] = {}
    offers = {}
    for o in a.outputs:
        t = a.tensors[o]
        offers.setdefault((tuple(t.shape), t.dtype), []).append(o)
    joined = 0
    numbers = python_number_inputs(b)  # stay numbers forward takes, not tensors of the first seed
    for name in rng.sample(b.inputs, len(b.inputs)):
        t = b.tensors[name]
        if name in numbers:
            continue
        cands = offers.get((tuple(t.shape), t.dtype))
        if cands:
            rename[name] = rng.choice(cands)
            joined += 1
    for name, t in b.tensors.items():
        if name in rename:
            continue
        stem = name.rsplit("_", 1)[0] if "_" in name else name
        rename[name] = a.add_tensor(t.shape, t.dtype, t.role, name=name if name not in a.tensors else a.fresh_name(stem))
    for n in b.nodes:
        extra = dict(n.extra)
        if "writes" in extra:  # a state form's write into a leaf, by name
            extra["writes"] = rename.get(extra["writes"], extra["writes"])
        a.add_node(Node(id=a.new_node_id(), op=n.op, api=n.api, overload=n.overload,
                        args=replace_refs(n.args, rename), kwargs=replace_refs(n.kwargs, rename),
                        outputs=[rename[o] for o in n.outputs], kind=n.kind, init=n.init, rule=n.rule,
                        extra=extra))
    _join_meta(a, b, rename)
    _unconsumed_outputs(a)
    return joined


def _join_meta(a: Graph, b: Graph, rename: dict) -> None:
    """What ``b``'s meta says about its own tensors, renamed into ``a``: the buffers and the state it
    writes (the campaign judges and restores them; lost, a spliced model's state update looked like a
    compiler's fault), the compiler settings it needs, the layouts of the inputs it keeps."""
    kept = set(a.inputs) | set(a.params)
    buffers = [rename[x] for x in b.meta.get("buffers") or [] if rename.get(x) in kept]
    writes = [{"state": rename[w["state"]], "value": rename[w["value"]]} for w in b.meta.get("writes") or []
              if rename.get(w.get("state")) in kept and w.get("value") in rename]
    layouts = {rename[x]: v for x, v in (b.meta.get("layouts") or {}).items() if rename.get(x) in a.inputs}
    settings = b.meta.get("compile_settings")
    for key, more in (("buffers", buffers), ("writes", writes)):
        if more:
            a.meta[key] = list(a.meta.get(key) or []) + more
    if layouts:
        a.meta["layouts"] = {**(a.meta.get("layouts") or {}), **layouts}
    if settings:
        a.meta["compile_settings"] = {**(a.meta.get("compile_settings") or {}), **settings}


def regen(origin: dict, axis: str, rng: random.Random, cfg: GenConfig) -> Generated | None:
    """The origin model generated again with another choice on ``axis``; None without an origin."""
    if not origin or "index" not in origin or axis not in AXES:
        return None
    policy = ModelPolicy.from_json(origin.get("policy"))
    others = [c for c in AXES[axis] if c != getattr(policy, axis)]
    policy = dataclasses.replace(policy, **{axis: rng.choice(others)})
    seed, index = int(origin["seed"]), int(origin["index"])
    made = generate(load_ruleset(), dataclasses.replace(cfg, policy=policy), RandomChooser(model_rng(seed, index)),
                    lead=lead_stem(load_ruleset(), seed, index))
    made.graph.meta["origin"] = {"seed": seed, "index": index, "policy": policy.to_json()}
    return made


def load_graph(seed_dir) -> Graph:
    return Graph.loads((Path(seed_dir) / "graph.json").read_text())


def mutate(spec: dict, nodes: int) -> Generated:
    """The mutant ``spec`` describes (see the module docstring)."""
    rng = random.Random(f"assay-mutant:{spec.get('rng', 0)}")
    cfg = GenConfig(nodes=nodes)
    g = load_graph(spec["seed_dir"])
    origin = spec.get("origin") or g.meta.get("origin")
    done = spec.get("mutator", "values")
    note: dict = {}
    if done == "regen":
        made = regen(origin, spec.get("axis") or rng.choice(list(AXES)), rng, cfg)
        if made is not None and made.graph.ops() == g.ops() and made.graph.to_json()["tensors"] == g.to_json()["tensors"]:
            made = None  # the policy changed nothing here (a generator that ignores that axis): new values instead
        if made is not None:
            made.graph.meta["mutation"] = {"mutator": "regen", "axis": spec.get("axis")}
            return made
        done = "values"
    if done == "delete" and not delete(g, rng):
        done = "values"
    if done == "replace":
        if delete(g, rng):
            note["grown"] = grow(g, rng, 1, cfg)
        else:
            done = "values"
    if done == "grow":
        note["grown"] = grow(g, rng, rng.randint(1, 3), cfg)
        if not note["grown"]:
            done = "values"
    if done == "splice":
        other = spec.get("other_dir")
        if other:
            note["joined"] = splice(g, load_graph(other), rng)
        else:
            done = "values"
    if has_complex(g):  # a complex tensor a mutator left as an input or output goes behind the boundary again
        real_boundary(g)
    g.meta.pop("guard", None)
    g.meta["mutation"] = {"mutator": done, **note}
    if origin is not None:
        g.meta["origin"] = origin
    model = materialise(g, rng.randint(0, (1 << 31) - 1), cfg)
    if not model.graph.nodes:
        raise GenerationError("the mutant has no operators left")
    return model


def mutant_model(spec: dict, nodes: int):
    """(graph, tensors) of a mutant, as ``fuzz.campaign.worker`` saves and runs a model."""
    made = mutate(spec, nodes)
    return made.graph, made.tensors()
