"""From a solved graph to a model with values (``materialise``).

Every node is run once on real CPU values (``fuzz.gen.values.search``, which also looks for
finite values). A node whose call fails, whose outputs disagree with the predicted shape, that
no values keep finite, or that is not deterministic is dropped (``drop_node``): its outputs
become graph inputs. How often that happens is recorded in ``graph.meta["guard"]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fuzz.gen.complex_boundary import has_complex, real_boundary
from fuzz.gen.config import GenConfig, GenerationError
from fuzz.ir.graph import Graph, Node


@dataclass
class Generated:
    """One generated model: its graph and the tensors it runs on."""

    graph: Graph
    leaves: dict = field(default_factory=dict)       # input/param name -> tensor
    state: dict = field(default_factory=dict)        # state-dict for build_module (params + submodule weights)
    finite: bool = True
    stats: dict = field(default_factory=dict)

    @property
    def inputs(self) -> list:
        return [self.leaves[i] for i in self.graph.inputs]

    def forward_inputs(self, leaves: dict | None = None) -> list:
        """The inputs as ``forward`` takes them (from ``leaves``, default the model's): a number
        lifted into a Python scalar (``fuzz.gen.scalars``) as that number, every other input as is."""
        from fuzz.ir.graph import python_number_inputs

        leaves = self.leaves if leaves is None else leaves
        numbers = python_number_inputs(self.graph)
        return [leaves[i].item() if i in numbers else leaves[i] for i in self.graph.inputs]

    def tensors(self) -> dict:
        """All tensors for ``fuzz.gen.program.save_program``."""
        return {**{i: self.leaves[i] for i in self.graph.inputs}, **self.state}


def drop_node(g: Graph, node_id: str) -> None:
    """Remove a node; its outputs that others read become graph inputs; prune what is left unused."""
    node = g.node(node_id)
    g.nodes.remove(node)
    consumed = set()
    for n in g.nodes:
        consumed.update(n.inputs())
    for o in node.outputs:
        if o in consumed:
            g.tensors[o].role = "input"
        elif o in g.tensors:
            del g.tensors[o]
    g.outputs = [o for o in g.outputs if o not in node.outputs]
    # Leaves only this node read.
    for t in node.inputs():
        if t in g.tensors and t not in consumed and g.tensors[t].role in ("input", "param"):
            del g.tensors[t]
        elif t in g.tensors and t not in consumed and g.tensors[t].role == "value" and t not in g.outputs:
            g.outputs.append(t)  # its producer now feeds nothing: keep it as an output
    # Graph inputs must come before values in tensors order only for readability; order inputs by first use.
    _order_outputs(g)
    if has_complex(g):  # a complex tensor left as an input or output goes behind the real boundary again
        real_boundary(g)


def _order_outputs(g: Graph) -> None:
    order = {t: i for i, t in enumerate(o for n in g.nodes for o in n.outputs)}
    g.outputs = sorted(set(g.outputs), key=lambda t: order.get(t, -1))


def materialise(g: Graph, seed: int, cfg: GenConfig, max_repairs: int = 4) -> Generated:
    """Run the guard and the value search; drop nodes that fail. Returns the model with its values.
    Every call of the search and the guard runs under one address-space headroom, the one
    ``run_node`` sets per call (a call asking for far more memory fails instead of swapping)."""
    from fuzz.gen.interpret import CALL_HEADROOM_BYTES
    from fuzz.isolation import address_space_headroom

    with address_space_headroom(CALL_HEADROOM_BYTES):
        return _materialise(g, seed, cfg, max_repairs)


def _materialise(g: Graph, seed: int, cfg: GenConfig, max_repairs: int) -> Generated:
    import torch

    from fuzz.gen.edge import edge_leaves
    from fuzz.gen.interpret import build_submodules, submodule_state
    from fuzz.gen.values import search

    guard = {"dropped": 0, "reasons": []}
    nonfinite_drops = 0

    def drop(node: Node, reason: str) -> None:
        guard["dropped"] += 1
        guard["reasons"].append(f"{node.name}: {reason}")
        drop_node(g, node.id)

    for _ in range(max_repairs + len(g.nodes)):
        try:
            submodules = build_submodules(g)
        except Exception as exc:  # a constructor the rule did not foresee
            bad = next(n for n in g.nodes if n.api == "module")
            for n in g.nodes:
                if n.api == "module":
                    try:
                        build_submodules(_only(g, n))
                    except Exception:
                        bad = n
                        break
            drop(bad, f"constructor: {type(exc).__name__}")
            continue
        res = search(g, seed=seed, submodules=submodules, max_rounds=6 if cfg.value_search else 1)
        if res.error is not None and res.structural:
            drop(res.error.node, res.error.message[:120])
            if not g.nodes:
                raise GenerationError("every operator failed its guard run")
            continue
        if res.error is not None:
            raise GenerationError(str(res.error))
        if not res.finite and res.error is None and res.first_bad and nonfinite_drops < 2 and len(g.nodes) > 1:
            # No values keep this node finite (var over one element, fmod(x, x)...): drop it.
            nonfinite_drops += 1
            guard["nonfinite_dropped"] = guard.get("nonfinite_dropped", 0) + 1
            guard["reasons"].append(f"{g.node(res.first_bad).name}: no finite values found")
            drop_node(g, res.first_bad)
            continue
        if not res.finite:
            failing = _first_failing_after_nan(g, res)
            if failing is not None:
                drop(failing, "fails after a non-finite value")
                continue
        culprit = _nondeterministic_node(g, res)
        if culprit is not None:
            drop(culprit, "not deterministic or mutates its inputs")
            continue
        params = {p: res.leaves[p] for p in g.params}
        state = {**params, **submodule_state(g, submodules)}
        g.meta["guard"] = guard
        finite = res.finite
        found = res.leaves
        if cfg.policy.values == "edge":
            found, g.meta["edge"] = edge_leaves(g, res.leaves, submodules, seed)
            finite = finite and not g.meta["edge"]["edged"]
        with torch.no_grad():
            leaves = {k: v.detach() for k, v in found.items()}
        return Generated(g, leaves, state, finite, {"value_rounds": res.rounds, "grad_steps": res.grad_steps})
    raise GenerationError("too many failing operators")


def _only(g: Graph, node: Node) -> Graph:
    h = Graph()
    h.nodes = [node]
    return h


def _first_failing_after_nan(g: Graph, res) -> Node | None:
    """The search stops at the first non-finite node; run the rest too, to catch calls that raise."""
    import torch

    from fuzz.gen.interpret import NodeError, check_outputs, run_node

    env = dict(res.leaves)
    try:
        with torch.no_grad():
            for node in g.nodes:
                outs = run_node(node, env, res.submodules)
                check_outputs(g, node, outs)
                env.update(outs)
    except NodeError as exc:
        return exc.node
    return None


POISON_BYTES = 64 << 20  # at most this much freed memory is overwritten before the rerun
POISON_COPIES = 8


def _poison_freed_memory(tensors) -> None:
    """Allocate, fill with a byte pattern and free one buffer per size the first run made, so the
    rerun's outputs land on memory that differs from what the first run's landed on: an output
    the kernel never wrote (an unchecked enum falling through its switch) then differs between
    the runs whatever the process allocated before (without this the two runs could find the
    same stale bytes: model 288 of seed 0 passed after 287 models and failed in a fresh process)."""
    import torch

    budget = POISON_BYTES
    sizes = sorted({t.untyped_storage().nbytes() for t in tensors
                    if isinstance(t, torch.Tensor) and t.device.type == "cpu"})
    held = []
    for n in sizes:
        # several of each size below 1 MB: malloc hands out any free chunk that fits, and each
        # buffer takes (and poisons) one of them
        for _ in range(POISON_COPIES if n <= 1 << 20 else 1):
            if n == 0 or n > budget:
                break
            budget -= n
            held.append(torch.full((n,), 0xA5, dtype=torch.uint8))
    del held


def _nondeterministic_node(g: Graph, res) -> Node | None:
    """Run the graph again from the found leaves; the first node whose outputs differ (a random op,
    or one that wrote to its inputs during the first run) is returned. Outputs are compared after
    the whole run, as the first run's are: a program form may write into a value after it is made
    (``fuzz.gen.forms``)."""
    import torch

    from fuzz.gen.interpret import NodeError, run_node

    env = dict(res.leaves)
    made = []
    failed = None
    _poison_freed_memory(res.env.values())
    with torch.no_grad():
        for node in g.nodes:
            try:
                outs = run_node(node, env, res.submodules)
            except NodeError as exc:
                failed = exc.node
                break
            env.update(outs)
            made.append((node, outs))
    for node, outs in made:
        for k, v in outs.items():
            if k not in res.env:
                return None  # the search stopped at a non-finite node: nothing more to compare
            before = res.env[k]
            if before.shape != v.shape or before.dtype != v.dtype:
                return node
            if v.dtype.is_floating_point:
                same = torch.equal(before.nan_to_num(), v.nan_to_num())
            else:
                same = torch.equal(before, v)
            if not same:
                return node
    return failed
