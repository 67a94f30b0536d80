"""Minimise a failing graph while it keeps failing the same way.

The reducer knows nothing about compilers or processes: it is given a graph, the
tensors it is fed with (inputs and params, by name) and a predicate
``still_fails(graph, tensors) -> bool`` that says whether a candidate still shows the
*same* failure (the caller compares signatures, in a sandboxed child). Each step builds
candidates, keeps only those that are valid graphs (checked in-process by running the
operators on meta tensors, which costs milliseconds) and asks the predicate about them;
a candidate is kept only if the predicate says yes, twice (``confirm``): a failure that
comes and goes between runs would otherwise leave a reduced case that never reproduces.

Passes, repeated until nothing changes or the time budget runs out:

1. **nodes** — delta debugging (ddmin) over the operator calls: a candidate keeps a
   subset of the nodes. A dropped node's outputs become new graph inputs holding the
   exact values the node computed in eager mode, so its consumers see the data they saw
   before; every sink of the kept subgraph becomes a graph output.
2. **outputs** — drop graph outputs one at a time (then prune what only fed them).
3. **inputs** — rewire each input to an earlier input/param of the same shape and
   dtype (fewer inputs in the repro), and turn params into plain inputs.
4. **shapes** — shrink dimensions: a size that occurs in several tensors is shrunk in
   all of them at once (to 1, then halved), then dims one tensor at a time; tensors are
   sliced, so surviving elements keep their values; shapes downstream are recomputed on
   meta tensors and a candidate the operators reject is never run.
5. **attributes** — simplify integer and float arguments (to 0/1/smaller) and drop
   keyword arguments, where the graph stays valid.

Inputs go back to contiguous and graph breaks are dropped where the failure does not need them.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Callable

from fuzz.ir.graph import Graph, Node, refs_in, replace_refs
from fuzz.ir.record import with_value_at
from fuzz.gen.interpret import InvalidGraph, module_state_keys, propagate_shapes, shapes_from_values
from fuzz.triage.child_values import eager_values_in_child

Predicate = Callable[[Graph, dict], bool]


@dataclass
class ReduceResult:
    graph: Graph
    tensors: dict
    ops_before: int
    ops_after: int
    tests: int = 0            # predicate calls (child runs)
    cache_hits: int = 0
    invalid: int = 0          # candidates rejected in-process (meta check)
    unconfirmed: int = 0      # candidates that failed once, then passed when asked again (flaky)
    seconds: float = 0.0
    timed_out: bool = False
    steps: list[str] = field(default_factory=list)


def _random_like(shape, dtype: str, seed: int):
    import torch

    gen = torch.Generator().manual_seed(seed)
    dt = getattr(torch, dtype)
    if dt == torch.bool:
        return torch.rand(shape, generator=gen) > 0.5
    if dt.is_floating_point:
        return torch.randn(shape, generator=gen).to(dt)
    if dt.is_complex:
        return torch.randn(shape, generator=gen, dtype=dt)
    return torch.randint(-4, 5, shape, generator=gen).to(dt)


def _digest(graph: Graph, tensors: dict) -> str:
    h = hashlib.sha1(json.dumps(graph.to_json(), sort_keys=True).encode())
    for name in sorted(tensors):
        t = tensors[name]
        h.update(f"{name}:{t.dtype}:{list(t.shape)}".encode())
        try:
            h.update(t.detach().contiguous().view(-1).view(__import__("torch").uint8).numpy().tobytes())
        except Exception:  # dtypes numpy cannot view: shape and dtype are enough here
            pass
    return h.hexdigest()


def _map_ints(value, fn):
    """Apply ``fn(path_value) -> value`` to every int (not bool) inside an encoded value."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return fn(value)
    if isinstance(value, list):
        return [_map_ints(v, fn) for v in value]
    if isinstance(value, dict) and "tuple" in value:
        return {"tuple": [_map_ints(v, fn) for v in value["tuple"]]}
    return value


def _scalar_slots(value, path=()):
    """Paths of int/float scalars inside an encoded value (not refs, not bools)."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield path
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _scalar_slots(v, path + (i,))
    elif isinstance(value, dict) and "tuple" in value:
        for i, v in enumerate(value["tuple"]):
            yield from _scalar_slots(v, path + ("tuple", i))
    elif isinstance(value, dict) and not path and not any(k in value for k in ("ref", "float", "dtype", "enum", "complex")):
        for k, v in value.items():  # a kwargs dict
            yield from _scalar_slots(v, path + (k,))


def _container(node: Node, spec: tuple):
    if spec[0] == "init":
        return None if node.init is None else node.init.get(spec[1])
    return getattr(node, spec[0])


def _set_container(node: Node, spec: tuple, value) -> None:
    if spec[0] == "init":
        node.init = {**(node.init or {}), spec[1]: value}
    else:
        setattr(node, spec[0], value)


def _get(value, path):
    for p in path:
        value = value[p]
    return value




class Reducer:
    def __init__(
        self,
        graph: Graph,
        tensors: dict,
        still_fails: Predicate,
        *,
        time_budget: float | None = 120.0,
        max_tests: int | None = None,
        log: Callable[[str], None] | None = None,
        shrink: bool = True,
        attributes: bool = True,
        confirm: bool = True,
    ) -> None:
        self.graph = graph.copy()
        self.confirm = confirm  # ask the predicate again before keeping a candidate
        self.tensors = _live_tensors(self.graph, tensors)
        self.still_fails = still_fails
        self.deadline = None if time_budget is None else time.monotonic() + time_budget
        self.max_tests = max_tests
        self.log = log or (lambda msg: None)
        self.do_shrink = shrink
        self.do_attributes = attributes
        self.cache: dict[str, bool] = {}
        self.result = ReduceResult(self.graph, self.tensors, len(graph.nodes), len(graph.nodes))
        try:
            propagate_shapes(self.graph.copy())
            self.meta_ok = True
        except InvalidGraph:
            self.meta_ok = False
        self._values: dict | None = None
        self.no_empty = not any(t.numel == 0 for t in graph.tensors.values())

    # -- budget -----------------------------------------------------------------
    def out_of_budget(self) -> bool:
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.result.timed_out = True
            return True
        if self.max_tests is not None and self.result.tests >= self.max_tests:
            self.result.timed_out = True
            return True
        return False

    # -- candidates ---------------------------------------------------------------
    def _validate(self, graph: Graph, tensors: dict) -> tuple[Graph, dict] | None:
        """The candidate with shapes recomputed and unused tensors dropped, or None if invalid."""
        try:
            graph.topological_check()
        except ValueError:
            return None
        if not graph.nodes or not graph.outputs:
            return None
        graph.drop_unused_tensors()
        tensors = _live_tensors(graph, tensors)
        for name in graph.inputs + graph.params:
            if name not in tensors:
                return None
            t, info = tensors[name], graph.tensors[name]
            if list(t.shape) != info.shape:
                return None
        if self.meta_ok:
            try:
                propagate_shapes(graph)
            except InvalidGraph:
                return None
            if self.no_empty and any(t.numel == 0 for t in graph.tensors.values()):
                return None  # zero-size tensors make repros that say nothing
        tensors = _fit_module_weights(graph, tensors)
        if tensors is None:
            return None
        return graph, tensors

    def test(self, graph: Graph, tensors: dict, what: str) -> bool:
        """Validate, then ask the predicate (cached). On success the candidate becomes current."""
        checked = self._validate(graph, tensors)
        if checked is None:
            self.result.invalid += 1
            return False
        graph, tensors = checked
        key = _digest(graph, tensors)
        if key in self.cache:
            self.result.cache_hits += 1
            ok = self.cache[key]
        else:
            if self.out_of_budget():
                return False
            self.result.tests += 1
            try:
                ok = bool(self.still_fails(graph, tensors))
                if ok and self.confirm and not self.out_of_budget():
                    # a flaky failure (a compiled result that changes between runs) must fail
                    # twice to be kept: else the reduced case may never reproduce again
                    self.result.tests += 1
                    ok = bool(self.still_fails(graph, tensors))
                    self.result.unconfirmed += not ok
            except InvalidGraph:
                ok = False
            self.cache[key] = ok
        if ok:
            self.graph, self.tensors = graph, tensors
            self._values = None
            self.result.steps.append(f"{what}: {len(graph.nodes)} ops")
            self.log(f"  kept   {what} -> {len(graph.nodes)} ops")
        return ok

    def values(self) -> dict:
        """Eager values of every tensor of the current graph (for new inputs)."""
        if self._values is None:
            try:  # a run of the code under test: in a child process (fuzz.triage.child_values)
                self._values = eager_values_in_child(self.graph, self.tensors)
            except InvalidGraph:
                self._values = {}
        return self._values

    def keep_nodes(self, keep: set[str]) -> tuple[Graph, dict]:
        """The current graph restricted to the nodes in ``keep``.

        Dropped nodes' outputs that kept nodes read become graph inputs (same name, their
        eager value); every output of a kept node that was used before and has no kept
        consumer now becomes a graph output.
        """
        g = self.graph.copy()
        tensors = dict(self.tensors)
        values = self.values()
        kept_nodes = [n for n in g.nodes if n.id in keep]
        read = set()
        for n in kept_nodes:
            read.update(n.inputs())
        for i, n in enumerate(g.nodes):
            if n.id in keep:
                continue
            for out in n.outputs:
                if out in read:
                    g.tensors[out].role = "input"
                    value = values.get(out)
                    if value is None or list(value.shape) != g.tensors[out].shape:
                        value = _random_like(g.tensors[out].shape, g.tensors[out].dtype, seed=i)
                    tensors[out] = value
        used_before = set(self.graph.outputs)
        for n in self.graph.nodes:
            used_before.update(n.inputs())
        outputs = [t for t in g.outputs if any(t in n.outputs for n in kept_nodes)]
        for n in kept_nodes:
            if any(o in read for o in n.outputs):
                continue
            sinks = [o for o in n.outputs if o in used_before] or n.outputs[:1]
            outputs.extend(o for o in sinks if o not in outputs)
        g.nodes = kept_nodes
        g.outputs = outputs
        return g, tensors

    # -- passes -------------------------------------------------------------------
    def pass_nodes(self) -> bool:
        """ddmin over node ids (subsets first, then complements)."""
        items = [n.id for n in self.graph.nodes]
        changed = False
        n = 2
        while len(items) >= 2 and not self.out_of_budget():
            size = max(1, len(items) // n)
            chunks = [items[i:i + size] for i in range(0, len(items), size)]
            reduced = False
            for chunk in chunks:
                if self.test(*self.keep_nodes(set(chunk)), f"keep {len(chunk)} of {len(items)} nodes"):
                    reduced = True
                    n = 2
                    break
            if not reduced and len(chunks) > 2:
                for chunk in chunks:
                    rest = [x for x in items if x not in chunk]
                    if self.test(*self.keep_nodes(set(rest)), f"drop {len(chunk)} of {len(items)} nodes"):
                        reduced = True
                        n = max(n - 1, 2)
                        break
            if reduced:
                changed = True
                items = [nd.id for nd in self.graph.nodes]
                continue
            if n >= len(items):
                break
            n = min(len(items), 2 * n)
        # 1-minimality for the last granularity: try dropping each single node
        for node_id in [nd.id for nd in self.graph.nodes]:
            if self.out_of_budget() or len(self.graph.nodes) < 2:
                break
            if node_id not in {nd.id for nd in self.graph.nodes}:
                continue
            rest = {nd.id for nd in self.graph.nodes} - {node_id}
            changed |= self.test(*self.keep_nodes(rest), f"drop node {node_id}")
        return changed

    def pass_outputs(self) -> bool:
        changed = False
        for out in list(self.graph.outputs):
            if len(self.graph.outputs) < 2 or self.out_of_budget():
                break
            g = self.graph.copy()
            g.outputs = [o for o in g.outputs if o != out]
            g.prune()
            changed |= self.test(g, self.tensors, f"drop output {out}")
        return changed

    def pass_inputs(self) -> bool:
        changed = False
        # rewire an input to an earlier input/param of the same shape and dtype
        names = self.graph.inputs + self.graph.params
        for i, name in enumerate(names):
            if self.out_of_budget():
                break
            if name not in self.graph.tensors:
                continue
            info = self.graph.tensors[name]
            for other in names[:i]:
                o = self.graph.tensors.get(other)
                if o is None or o.shape != info.shape or o.dtype != info.dtype:
                    continue
                g = self.graph.copy()
                for node in g.nodes:
                    node.args = replace_refs(node.args, {name: other})
                    node.kwargs = replace_refs(node.kwargs, {name: other})
                g.outputs = [other if t == name else t for t in g.outputs]
                if self.test(g, self.tensors, f"rewire {name} -> {other}"):
                    changed = True
                    break
        # params become plain inputs (a repro then needs no parameter file)
        for name in list(self.graph.params):
            if self.out_of_budget():
                break
            g = self.graph.copy()
            g.tensors[name].role = "input"
            changed |= self.test(g, self.tensors, f"param {name} -> input")
        return changed

    def pass_layouts(self) -> bool:
        """Inputs back to contiguous where the failure does not need their layout (fuzz.gen.layouts)."""
        changed = False
        for name in sorted(self.graph.meta.get("layouts") or {}):
            if self.out_of_budget():
                break
            g = self.graph.copy()
            left = {k: v for k, v in (g.meta.pop("layouts", None) or {}).items() if k != name and k in g.inputs}
            if left:
                g.meta["layouts"] = left
            if name not in self.graph.inputs:  # its input is gone: nothing to test
                self.graph = g
                continue
            changed |= self.test(g, self.tensors, f"input {name} contiguous")
        return changed

    def _refresh_shapes(self) -> None:
        """Where meta tensors cannot run the graph (an autocast region, an operator without a meta
        kernel), candidates kept the original's value shapes: take them from one eager run of the
        result, so its listing and graph.json show the sizes the reduced case computes."""
        if self.meta_ok:
            return
        try:
            shapes_from_values(self.graph, eager_values_in_child(self.graph, self.tensors))
        except InvalidGraph:
            pass

    def pass_breaks(self) -> bool:
        """Drop each graph break (``fuzz.gen.forms``) the failure does not need."""
        changed = False
        for node in [n for n in self.graph.nodes if n.extra.get("graph_break")]:
            if self.out_of_budget():
                break
            g = self.graph.copy()
            g.node(node.id).extra.pop("graph_break")
            changed |= self.test(g, self.tensors, f"no graph break after {node.name}")
        return changed

    def _shrunk(self, changes: dict[tuple[str, int], int], ints: tuple[int, int] | None = None):
        """A candidate with the given (tensor, dim) -> size changes (tensors sliced)."""
        g = self.graph.copy()
        tensors = dict(self.tensors)
        for (name, dim), size in changes.items():
            g.tensors[name].shape[dim] = size
            tensors[name] = tensors[name].narrow(dim, 0, size).contiguous()
        if ints is not None:
            old, new = ints
            fix = lambda v: new if v == old else v  # noqa: E731
            for node in g.nodes:
                node.args = _map_ints(node.args, fix)
                node.kwargs = {k: _map_ints(v, fix) for k, v in node.kwargs.items()}
                if node.init:
                    node.init = {k: _map_ints(v, fix) for k, v in node.init.items()}
        return g, tensors

    def pass_shapes(self) -> bool:
        changed = False
        progress = True
        while progress and not self.out_of_budget():
            progress = False
            roots = self.graph.inputs + self.graph.params
            sizes = sorted({d for r in roots for d in self.graph.tensors[r].shape if d > 1}, reverse=True)
            # a size shared by several tensors is shrunk everywhere at once
            for size in sizes:
                for new in dict.fromkeys((1, size // 2)):
                    if new < 1 or new >= size or self.out_of_budget():
                        continue
                    roots = self.graph.inputs + self.graph.params
                    where = {(r, d): new for r in roots for d, s in enumerate(self.graph.tensors[r].shape) if s == size}
                    if not where:
                        break
                    if self.test(*self._shrunk(where), f"size {size} -> {new} in {len(where)} dims") or \
                            self.test(*self._shrunk(where, (size, new)), f"size {size} -> {new} (with int args)"):
                        progress = changed = True
                        break
            # then single dims
            for r in self.graph.inputs + self.graph.params:
                if r not in self.graph.tensors:
                    continue
                for d, size in enumerate(list(self.graph.tensors[r].shape)):
                    if size <= 1 or self.out_of_budget():
                        continue
                    for new in dict.fromkeys((1, size // 2)):
                        if new >= 1 and self.test(*self._shrunk({(r, d): new}), f"{r} dim {d}: {size} -> {new}"):
                            progress = changed = True
                            break
        return changed

    def pass_attributes(self) -> bool:
        changed = False
        for idx in range(len(self.graph.nodes)):
            if idx >= len(self.graph.nodes):
                break
            node = self.graph.nodes[idx]
            # drop keyword arguments (their defaults are usually simpler)
            for key in list(node.kwargs):
                if self.out_of_budget():
                    return changed
                if any(True for _ in refs_in(node.kwargs[key])):
                    continue
                g = self.graph.copy()
                del g.nodes[idx].kwargs[key]
                if self.test(g, self.tensors, f"{node.id}: drop kwarg {key}"):
                    changed = True
                    node = self.graph.nodes[idx]
            # simpler scalars (call arguments, then module constructor arguments)
            for spec in (("args",), ("kwargs",), ("init", "args"), ("init", "kwargs")):
                container = _container(self.graph.nodes[idx], spec)
                if container is None:
                    continue
                for path in list(_scalar_slots(container)):
                    if self.out_of_budget():
                        return changed
                    container = _container(self.graph.nodes[idx], spec)
                    try:
                        old = _get(container, path)
                    except (KeyError, IndexError, TypeError):
                        continue
                    if isinstance(old, float):
                        options = [0.0, 1.0] if old not in (0.0, 1.0) else []
                    else:
                        low = (1,) if spec[0] == "init" else (0, 1)
                        options = [v for v in dict.fromkeys(low + (old // 2,)) if abs(v) < abs(old)]
                    for new in options:
                        g = self.graph.copy()
                        _set_container(g.nodes[idx], spec, with_value_at(container, path, new))
                        if self.test(g, self.tensors, f"{node.id}: {'.'.join(spec)}{list(path)} {old} -> {new}"):
                            changed = True
                            break
        return changed

    def run(self) -> ReduceResult:
        start = time.monotonic()
        self.log(f"reducing {len(self.graph.nodes)} ops")
        rounds = 0
        while not self.out_of_budget() and rounds < 4:
            rounds += 1
            changed = self.pass_nodes()
            changed |= self.pass_outputs()
            if changed:
                self.pass_nodes()
            changed |= self.pass_inputs()
            changed |= self.pass_layouts()
            changed |= self.pass_breaks()
            if self.do_shrink:
                changed |= self.pass_shapes()
            if self.do_attributes:
                changed |= self.pass_attributes()
            if not changed:
                break
        self._refresh_shapes()
        r = self.result
        r.graph, r.tensors = self.graph, self.tensors
        r.ops_after = len(self.graph.nodes)
        r.seconds = time.monotonic() - start
        self.log(f"done: {r.ops_before} -> {r.ops_after} ops, {r.tests} runs, {r.seconds:.1f}s")
        return r


def _live_tensors(graph: Graph, tensors: dict) -> dict:
    """The entries of ``tensors`` the graph reads: its inputs/params and its submodules' weights."""
    keep = {k for k in tensors if k in graph.tensors and graph.tensors[k].role != "value"}
    keep.update(module_state_keys(graph, tensors))
    return {k: v for k, v in tensors.items() if k in keep}


def _fit_module_weights(graph: Graph, tensors: dict) -> dict | None:
    """Slice submodule weights to the shapes their (possibly shrunk) constructors make now.

    None when a weight would have to grow (the candidate is then not tried).
    """
    keys = module_state_keys(graph, tensors)
    if not keys:
        return tensors
    import torch

    from fuzz.gen import interpret
    from fuzz.gen.program import module_attr

    import warnings

    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mods = interpret.build_submodules(graph, "meta")
    except Exception:
        return None
    out = dict(tensors)
    for node in graph.nodes:
        if node.api != "module":
            continue
        prefix = module_attr(node) + "."
        for name, want in mods[node.id].state_dict().items():
            key = prefix + name
            have = out.get(key)
            if have is None or list(have.shape) == list(want.shape):
                continue
            if have.dim() != want.dim() or any(w > h for w, h in zip(want.shape, have.shape)):
                return None
            for dim, size in enumerate(want.shape):
                have = have.narrow(dim, 0, size)
            out[key] = have.contiguous()
    return out


def reduce_graph(graph: Graph, tensors: dict, still_fails: Predicate, **options) -> ReduceResult:
    """Minimise ``graph`` (fed with ``tensors``) while ``still_fails`` holds. See the module doc.

    The caller is expected to have checked that the starting case fails.
    """
    return Reducer(graph, tensors, still_fails, **options).run()
