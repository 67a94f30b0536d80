"""Edge values: the inputs of a ``values=edge`` model (``fuzz.gen.policy``).

After the finite value search (``fuzz.gen.values``) has found inputs every call accepts, a
share of the elements of each graph input is replaced by values where kernels are most often
wrong: NaN, +-inf, +-0.0, subnormals, the dtype's largest and smallest normal values, values
at integer boundaries for floor / round / remainder / division (x.5, just below an integer,
decimal fractions whose quotients land just off an integer: 0.3 / 0.1), and repeated values
(ties) copied from other positions. Integer inputs get their dtype's extremes, values whose
products overflow int32 (46341^2 > 2^31), 0, -1 and ties. (int32/int64 get ``min + 1``, not
``min``: eager itself dies of SIGFPE on ``min // -1``, which is no compiler bug.)

The graph is run once with every input's edge values (``run_graph`` with the generator's per-call
memory headroom); if a call fails, each input is changed on its own and the graph is run after
each change, in input order; an input whose edge values make a call raise
(an index out of range) or change an output's shape or dtype keeps its finite values. Parameters
keep theirs (a NaN weight would make every output NaN). All draws come from the model's value
seed, so an edge model is still a function of ``(seed, index, shares)``.
"""

from __future__ import annotations

from fuzz.gen.interpret import NodeError, run_graph
from fuzz.ir.graph import Graph

# Operators whose integer operands size an allocation (bincount of 2^31 values is 16 GB), or
# that do not check their indices (``_unsafe_index``, ``_unsafe_masked_index``: an index out of
# range reads any memory in eager, undefined behaviour, while inductor asserts): integer inputs
# they read keep their finite values.
SIZES_FROM_VALUES = ("bincount", "one_hot", "repeat_interleave", "histc", "ctc_loss", "embedding_bag",
                     "unflatten", "narrow", "nll_loss", "multi_margin", "unsafe")
DENSITIES = (0.05, 0.2, 0.5)   # share of an input's elements that get edge values (one per input)
TIES = 0.15                    # and the share copied from other positions


def float_specials(dtype) -> list[float]:
    import torch

    fi = torch.finfo(dtype)
    below3 = float(torch.nextafter(torch.tensor(3.0, dtype=dtype), torch.tensor(0.0, dtype=dtype)))
    return [float("nan"), float("inf"), -float("inf"), 0.0, -0.0, fi.tiny / 4, -fi.tiny / 4, fi.tiny, fi.max,
            -fi.max, 0.5, 1.5, 2.5, -0.5, -2.5, below3, -below3, 0.1, 0.3, 0.7, 1.0, -1.0, 2.0, 3.0]


def int_specials(dtype) -> list[int]:
    import torch

    ii = torch.iinfo(dtype)
    low = ii.min + 1 if ii.bits >= 32 else ii.min
    vals = [ii.max, low, 0, -1, 1, 46341, -46341, 65536, 2**31 - 1, 255, 127, -128]
    return sorted({v for v in vals if ii.min <= v <= ii.max})


def with_edges(t, gen, density: float):
    """A copy of ``t`` with about ``density`` of its elements edge values and ``TIES`` ties."""
    import torch

    if t.numel() == 0 or t.dtype == torch.bool or t.is_complex():
        return t
    flat = t.detach().clone().reshape(-1)
    n = flat.numel()
    specials = float_specials(t.dtype) if t.dtype.is_floating_point else int_specials(t.dtype)
    pick = torch.rand(n, generator=gen) < density
    pick[int(torch.randint(0, n, (1,), generator=gen))] = True  # at least one, even in a tiny tensor
    which = torch.randint(0, len(specials), (n,), generator=gen)
    values = torch.tensor(specials, dtype=torch.float64 if t.dtype.is_floating_point else torch.int64)[which]
    flat = torch.where(pick, values.to(t.dtype), flat)
    if n > 1:
        tie = torch.rand(n, generator=gen) < TIES
        src = torch.randint(0, n, (n,), generator=gen)
        flat = torch.where(tie, flat[src], flat)
    return flat.reshape(t.shape)


def _sizes_from_values(graph: Graph, name: str) -> bool:
    return any(any(s in node.op.lower() for s in SIZES_FROM_VALUES) for node in graph.consumers(name))


def edge_leaves(graph: Graph, leaves: dict, submodules: dict, seed: int) -> tuple[dict, dict]:
    """``(leaves, report)``: graph inputs with edge values where every call still accepts them;
    ``report`` lists the inputs changed (``edged``) and those that kept finite values (``kept``,
    with why)."""
    import torch

    gen = torch.Generator().manual_seed((int(seed) * 7919 + 13) & 0x7FFFFFFFFFFFFFFF)
    report: dict = {"edged": [], "kept": {}}
    edged: dict = {}  # drawn first, in input order: the same draws whichever trials pass
    for name in graph.inputs:
        t = leaves.get(name)
        if t is None or t.dtype == torch.bool or t.is_complex() or t.numel() == 0:
            continue
        if not t.dtype.is_floating_point and _sizes_from_values(graph, name):
            report["kept"][name] = "an operator sizes an allocation by its values or does not check them"
            continue
        density = DENSITIES[int(torch.randint(0, len(DENSITIES), (1,), generator=gen))]
        edged[name] = with_edges(t, gen, density)
    # Most models take every input's edges: one run says so. Otherwise each input is tried on
    # its own, in order, on top of the ones already kept.
    if len(edged) > 1 and _runs(graph, dict(leaves, **edged), submodules) is None:
        report["edged"] = list(edged)
        return dict(leaves, **edged), report
    out = dict(leaves)
    for name, t in edged.items():
        trial = dict(out, **{name: t})
        error = _runs(graph, trial, submodules)
        if error is not None:
            report["kept"][name] = error
            continue
        out = trial
        report["edged"].append(name)
    return out, report


def _runs(graph: Graph, leaves: dict, submodules: dict) -> str | None:
    """None when the graph runs on ``leaves`` (every output as the graph says), else why not."""
    import torch

    try:
        with torch.no_grad():
            run_graph(graph, leaves, submodules)
    except NodeError as exc:
        return exc.message[:120]
    return None
