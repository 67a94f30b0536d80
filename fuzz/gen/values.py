"""Value search: inputs and weights that keep every intermediate finite.

Differential testing drowns in noise when a model computes NaN or Inf (``log`` of
a negative, ``x / 0``, ``exp`` overflow in float16): backends legitimately differ
there. So before a model is saved, its float inputs and parameters are searched:

1. *Sample* every leaf (graph input or parameter): floats uniformly from a range,
   integers small and non-negative (below the smallest dim of the other tensors their
   consumers take, so they are valid indices for gather/index/embedding-like ops
   whenever we can tell), bools at random.
2. *Run* the graph node by node (``fuzz.gen.interpret``) and stop at the first node whose
   float outputs hold a NaN/Inf.
3. *Repair* that node's inputs, NNSmith-style: leaves it reads directly are resampled
   into a safe range; intermediate inputs are pushed there by a few signed-gradient
   steps on the leaves, with the loss ``relu(lo - v) + relu(v - hi)`` summed over the
   node's float inputs ``v`` (most domain errors, log/sqrt/pow of negatives, division
   by zero, exp overflow, need inputs that are positive and moderate).
4. If that does not converge, *resample* with a narrower (then positive) range and
   start again; a handful of rounds in all.

A call that raises on real values (an index out of range) gets other samples too; a
call whose outputs disagree with the graph's predicted shapes, or that costs too much CPU
(``fuzz.gen.cost``), is structural and is reported at once (the generator then drops that node).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from fuzz.ir.graph import Graph
from fuzz.gen.cost import SLOW_MESSAGE, CallTimer, predicted_too_slow
from fuzz.gen.interpret import NodeError, build_submodules, check_outputs, run_node

# (low, high) ranges tried in turn for float leaves.
FLOAT_RANGES = [(-2.0, 2.0), (-1.0, 1.0), (0.5, 1.5), (0.1, 0.9), (1.1, 2.0)]
# The interval pushed towards by the gradient step, per round.
TARGETS = [(0.1, 0.9), (0.5, 2.0), (1.1, 2.0)]
GRAD_STEPS = 8
GRAD_BUDGET = 24   # gradient steps per search, all rounds together (then rounds only resample)
# ... and at most this many element-steps (a step runs the graph twice: elements summed over its
# tensors): a model of 10^5 elements keeps all 24 steps, one of 2.5 * 10^6 gets 3. Before this
# bound, 4% of searches (the largest models) took two thirds of the value search's time, one
# 840 ms for 16 steps on a 2.5 * 10^6-element model.
GRAD_WORK = 1 << 23
MAX_ROUNDS = 6
MAX_INT_HIGH = 8


@dataclass
class SearchResult:
    leaves: dict                      # graph input/param name -> tensor
    submodules: dict                  # node id -> nn.Module
    finite: bool                      # every float intermediate and output finite
    error: NodeError | None = None    # a node that fails on every sample (or disagrees with its shape)
    structural: bool = False          # error is a shape/dtype disagreement or a call failing everywhere
    rounds: int = 0
    grad_steps: int = 0
    first_bad: str | None = None      # node id of the first non-finite node in the kept sample
    env: dict = field(default_factory=dict, repr=False)


def _is_float(t) -> bool:
    return t.dtype.is_floating_point


def _nonfinite(t) -> bool:
    import torch

    if t.is_complex():  # the complex64 theme's intermediates: a NaN or Inf in either part
        t = torch.view_as_real(t.resolve_conj())
    if not _is_float(t) or t.numel() == 0:
        return False
    # A finite sum means every element is finite (a NaN or Inf anywhere makes the sum NaN/Inf), and
    # one reduction is several times cheaper than isfinite().all(); only a sum that overflowed or is
    # NaN needs the element-wise check.
    if math.isfinite(float(t.sum())):
        return False
    return not bool(torch.isfinite(t).all())


def int_high(graph: Graph, name: str) -> int:
    """Exclusive upper bound for an integer leaf: the smallest dim of the other tensors its consumers read."""
    best = None
    for node in graph.consumers(name):
        for other in node.inputs():
            if other == name:
                continue
            info = graph.tensors[other]
            if info.dtype.startswith(("int", "uint", "bool")):
                continue
            for d in info.shape:
                best = d if best is None else min(best, d)
    if best is None:
        return 4
    return max(1, min(MAX_INT_HIGH, best))


def sample_leaf(info, gen, float_range, int_hi: int, int_low: int = 0):
    import torch

    from fuzz.ir.record import dtype_from_name

    dtype = dtype_from_name(info.dtype)
    shape = list(info.shape)
    if dtype.is_floating_point:
        lo, hi = float_range
        work = torch.float64 if dtype == torch.float64 else torch.float32
        return (torch.rand(shape, generator=gen, dtype=work) * (hi - lo) + lo).to(dtype)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=gen).to(torch.bool)
    low = min(int_low, int_hi - 1) if int_hi > 1 else 0
    return torch.randint(low, max(int_hi, low + 1), shape, generator=gen).to(dtype)


def _forward(graph: Graph, leaves: dict, submodules: dict, check: bool = True):
    """Run until the first node with a non-finite float output. Returns (env, bad node or None)."""
    env = dict(leaves)
    for node in graph.nodes:
        slow = predicted_too_slow(node, env)
        if slow:
            raise NodeError(node, slow)
        with CallTimer() as timer:
            outs = run_node(node, env, submodules)
        slow = timer.too_slow()
        if slow:
            raise NodeError(node, slow)
        if check:
            check_outputs(graph, node, outs)
        env.update(outs)
        if any(_nonfinite(t) for t in outs.values()):
            return env, node
    return env, None


def _grad_repair(graph, leaves, submodules, bad, target, gen, env, max_steps: int = GRAD_STEPS):
    """Signed-gradient steps pushing ``bad``'s float inputs into ``target``. Returns (leaves, env, bad, steps).

    Stops early when a step changes nothing, or when the loss of the same bad node has not gone
    down by 1% in two steps (a node no input range keeps finite would otherwise take every step)."""
    import torch

    lo, hi = target
    steps = 0
    float_leaves = [n for n, t in leaves.items() if _is_float(t)]
    last_loss, stalled = None, 0
    for _ in range(max_steps):
        changed = stop = False
        # Leaves read directly by the bad node: put them straight into the target range.
        # (not a zero-element out= buffer the call resized in place: no range to put it in)
        direct = [t for t in dict.fromkeys(bad.inputs()) if t in leaves and _is_float(leaves[t])
                  and list(leaves[t].shape) == list(graph.tensors[t].shape)]
        for name in direct:
            cur = leaves[name]
            outside = (cur < lo) | (cur > hi)
            if bool(outside.any()):
                fresh = sample_leaf(graph.tensors[name], gen, target, 1)
                leaves[name] = torch.where(outside, fresh, cur)
                changed = True
        inner = [t for t in bad.inputs() if t not in leaves]
        if inner:
            work = {n: (t.detach().clone().requires_grad_(True) if n in float_leaves else t) for n, t in leaves.items()}
            genv = dict(work)
            try:
                with torch.enable_grad():
                    for node in graph.nodes:
                        if node is bad:
                            break
                        genv.update(run_node(node, genv, submodules))
                    loss = None
                    for name in inner:
                        v = genv.get(name)
                        if v is None or not _is_float(v) or not v.requires_grad:
                            continue
                        v = v.float()
                        term = (torch.relu(lo - v) + torch.relu(v - hi)).sum()
                        loss = term if loss is None else loss + term
                    value = float(loss.detach()) if loss is not None else 0.0
                    if last_loss is not None and last_loss[0] is bad and value > 0.99 * last_loss[1]:
                        stalled += 1
                    else:
                        stalled = 0
                    last_loss = (bad, value)
                    stop = stalled >= 2
                    if not stop and loss is not None and value > 0:
                        grads = torch.autograd.grad(loss, [work[n] for n in float_leaves], allow_unused=True)
                        with torch.no_grad():
                            for n, g in zip(float_leaves, grads):
                                if g is not None:
                                    scale = 0.1 * max(1.0, float(work[n].detach().abs().max()) if work[n].numel() else 1.0)
                                    leaves[n] = (work[n] - scale * torch.sign(g.nan_to_num(0.0)).to(work[n].dtype)).detach()
                                    changed = True
            except Exception:
                pass  # not differentiable here: the resampling rounds take over
        if not changed:
            # The bad node's inputs are already in range (or cannot be moved): more steps would
            # rerun the same values. Leave it to the resampling rounds.
            break
        steps += 1
        with torch.no_grad():
            try:
                env, bad2 = _forward(graph, leaves, submodules)
            except NodeError:
                return leaves, None, bad, steps
        if bad2 is None:
            return leaves, env, None, steps
        bad = bad2
        if stop:
            break
    return leaves, env, bad, steps


def search(graph: Graph, seed: int = 0, submodules: dict | None = None, max_rounds: int = MAX_ROUNDS) -> SearchResult:
    """Leaves that make every float intermediate of ``graph`` finite (see the module docstring)."""
    import torch

    gen = torch.Generator().manual_seed(int(seed) & 0x7FFFFFFFFFFFFFFF)
    if submodules is None:
        submodules = build_submodules(graph)
    leaf_names = graph.inputs + graph.params
    int_hi = {n: int_high(graph, n) for n in leaf_names if not graph.tensors[n].dtype.startswith(("float", "bfloat"))}
    best: SearchResult | None = None
    last_error: NodeError | None = None
    call_failures = 0
    total_steps = 0
    elements = sum(math.prod(info.shape) for info in graph.tensors.values())
    grad_budget = min(GRAD_BUDGET, max(2, GRAD_WORK // max(1, elements)))
    for rnd in range(max_rounds):
        frange = FLOAT_RANGES[min(rnd, len(FLOAT_RANGES) - 1)]
        int_low = 1 if call_failures % 2 == 1 else 0
        leaves = {n: sample_leaf(graph.tensors[n], gen, frange, int_hi.get(n, 1), int_low) for n in leaf_names}
        if rnd < 2:  # a number lifted into an input (fuzz.gen.scalars) first holds the value its call had
            leaves.update(_pinned(graph))
        try:
            with torch.no_grad():
                env, bad = _forward(graph, leaves, submodules)
        except NodeError as exc:
            if _structural(exc):
                return SearchResult(leaves, submodules, False, exc, True, rnd + 1, total_steps)
            call_failures += 1
            last_error = exc
            if call_failures >= 3 and best is None:
                break
            continue
        if bad is None:
            return SearchResult(leaves, submodules, True, None, False, rnd + 1, total_steps, None, env)
        target = TARGETS[min(rnd, len(TARGETS) - 1)]
        budget = min(GRAD_STEPS, grad_budget - total_steps)
        if budget > 0:
            leaves, env2, bad2, steps = _grad_repair(graph, leaves, submodules, bad, target, gen, env, budget)
        else:
            env2, bad2, steps = env, bad, 0
        total_steps += steps
        if env2 is not None and bad2 is None:
            return SearchResult(leaves, submodules, True, None, False, rnd + 1, total_steps, None, env2)
        if env2 is None:
            continue  # the repaired values made a call fail: not a candidate
        candidate = SearchResult(leaves, submodules, False, None, False, rnd + 1, total_steps,
                                 bad2.id if bad2 is not None else bad.id, env2)
        if best is None or _later(graph, candidate.first_bad, best.first_bad):
            best = candidate
    if best is None:
        # Every sample made some call raise: the generator drops that node.
        return SearchResult({}, submodules, False, last_error, True, max_rounds, total_steps)
    best.grad_steps = total_steps
    return best


def _pinned(graph: Graph) -> dict:
    import torch

    from fuzz.gen.scalars import pinned_value
    from fuzz.ir.record import dtype_from_name

    out = {}
    for name in graph.meta.get("scalars") or {}:
        v = pinned_value(graph, name)
        if v is not None and name in graph.tensors:
            out[name] = torch.tensor(v, dtype=dtype_from_name(graph.tensors[name].dtype))
    return out


def _structural(exc: NodeError) -> bool:
    return ("predicted" in exc.message or "structure" in exc.message or "expected a tensor" in exc.message
            or exc.message.startswith(SLOW_MESSAGE))


def _later(graph: Graph, a: str | None, b: str | None) -> bool:
    if b is None:
        return False
    if a is None:
        return True
    order = {n.id: i for i, n in enumerate(graph.nodes)}
    return order.get(a, math.inf) > order.get(b, math.inf)


def all_finite(tensors) -> bool:
    return not any(_nonfinite(t) for t in tensors)
