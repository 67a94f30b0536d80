"""Input memory layouts: a share of models gets inputs that are not contiguous in memory.

Why: a compiler specialises its code on the strides of the tensors it is given. Inductor writes
each input's strides into its index expressions, picks loop orders from them (channels-last
convolutions, transposed matmul operands), loads gapped rows with strided or gathered vector
loads, and must copy results back into a strided input that the program writes in place;
dynamo guards on them. With contiguous inputs only, none of that code is compiled. Operators
inside a model make strided intermediates, but the inputs the compiled function receives were
always dense and row-major.

A layout is independent of the tensor's sizes, so it still applies after the reducer shrinks an
input or dynamic mode resizes it: ``{"order": [dims, outermost first], "step": k, "pad": p}``
lays the dims out in ``order``, the innermost one every ``k`` elements, and each row of the
innermost dim followed by ``p`` unused elements. ``order`` is ``[0, 1, ..., r-1]`` for row-major;
``[0, 2, 3, 1]`` is channels-last. The kinds drawn (``LAYOUT_KINDS``): the last two dims
transposed, a random permutation, channels-last (rank 4 and 5), gapped (step 2), padded rows,
and expanded: ``"expand": [d]`` gives dim ``d`` stride 0, every slice along it the first one (the
input's values then repeat along ``d``, as when a program passes ``x.expand(...)``; a model that
writes into such an input fails eagerly and keeps contiguous inputs).

The layout is part of the model: ``graph.meta["layouts"]`` maps input names to layouts, and the
program's ``load_inputs`` (``fuzz.gen.program``) returns each such input through ``strided``, so
every run (eager, compiled, references, reducer replays, ``repro.py``) sees the same strides;
the campaign's fence (``fuzz.campaign.fence.fenced``) keeps them, and fills the gaps with its
sentinel, so a kernel that reads an input as if it were contiguous reads NaN. A model whose eager
run fails with its layouts (``view`` of a transposed input, say) keeps contiguous inputs.
"""

from __future__ import annotations

LAYOUT_KINDS = ("transposed", "permuted", "channels_last", "gapped", "padded", "expanded")
# Operators whose result depends on their input's strides or storage offset, not only its values:
# a model calling one gets neither layouts nor a fence (fuzz.campaign.fence).
STRIDE_READING_OPS = frozenset({"as_strided", "as_strided_copy", "as_strided_scatter"})
STRIDED_SHARE = 0.75  # of a strided model's inputs of rank >= 1, those that get a layout
EXPANDED_SHARE = 0.12  # of those layouts, the expanded ones (they change the values: repeats)


def strided(t, order, step=1, pad=0, expand=()):
    """A copy of ``t`` whose memory holds its dims in ``order`` (outermost first), the innermost
    one every ``step`` elements and each of its rows followed by ``pad`` unused elements; each dim
    in ``expand`` repeats its first slice (stride 0, as ``x.expand`` makes)."""
    import torch

    base = t[tuple(slice(0, 1) if d in expand else slice(None) for d in range(t.dim()))]
    stride, unit = [0] * t.dim(), step
    for i, d in enumerate(reversed(order)):
        stride[d] = unit
        unit = unit * max(base.shape[d], 1) + (pad if i == 0 else 0)
    return torch.empty_strided(base.shape, stride, dtype=t.dtype, device=t.device).copy_(base).expand(t.shape)


def strided_source() -> str:
    """``strided``'s source, as ``fuzz.gen.program`` prints it into a program that needs it."""
    global _STRIDED_SOURCE
    if _STRIDED_SOURCE is None:
        import inspect

        _STRIDED_SOURCE = inspect.getsource(strided).rstrip()
    return _STRIDED_SOURCE


_STRIDED_SOURCE = None


def layout_kind(layout: dict) -> str:
    """Which of ``LAYOUT_KINDS`` a layout is (the first that applies; ``contiguous`` for none)."""
    order = list(layout.get("order", []))
    if layout.get("expand"):
        return "expanded"
    if order != sorted(order):
        if len(order) >= 4 and order == [0] + list(range(2, len(order))) + [1]:
            return "channels_last"
        if order[:-2] == sorted(order)[:-2]:
            return "transposed"
        return "permuted"
    if layout.get("step", 1) > 1:
        return "gapped"
    return "padded" if layout.get("pad", 0) else "contiguous"


def usable(layout, rank: int) -> bool:
    """Whether ``layout`` is well formed for a tensor of ``rank`` dims."""
    return (isinstance(layout, dict) and sorted(layout.get("order", [])) == list(range(rank)) and rank >= 1
            and isinstance(layout.get("step", 1), int) and layout.get("step", 1) >= 1
            and isinstance(layout.get("pad", 0), int) and layout.get("pad", 0) >= 0
            and isinstance(layout.get("expand", []), list) and all(d in range(rank) for d in layout.get("expand", [])))


def draw_layout(shape, rng, written: bool = False) -> dict:
    """One non-contiguous layout for a tensor of ``shape`` (rank >= 1); not expanded if ``written``
    (an in-place write into an expanded tensor is undefined: eager may write one element many times
    where a compiled copy-back raises)."""
    rank = len(shape)
    wide = [d for d, n in enumerate(shape) if n > 1]
    if wide and rng.random() < EXPANDED_SHARE and not written:
        return {"order": list(range(rank)), "step": 1, "pad": 0, "expand": [rng.choice(wide)]}
    kinds = ["gapped", "padded"] if rank >= 2 else ["gapped"]
    kinds += ["transposed"] if rank >= 2 else []
    kinds += ["permuted"] if rank >= 3 else []
    kinds += ["channels_last"] if rank in (4, 5) else []
    kind = rng.choice(kinds)
    order, step, pad = list(range(rank)), 1, 0
    if kind == "gapped":
        step = 2
    elif kind == "padded":
        pad = rng.choice([1, 3, 8])
    elif kind == "transposed":
        order[-2:] = order[-1], order[-2]
    elif kind == "permuted":
        while order == sorted(order):
            rng.shuffle(order)
    else:
        order = [0] + list(range(2, rank)) + [1]
    if kind in ("transposed", "permuted", "channels_last") and rng.random() < 0.25:
        pad = rng.choice([1, 3])  # a permuted layout with padded rows too
    return {"order": order, "step": step, "pad": pad}


def draw_layouts(graph, leaves: dict, seed: int) -> dict:
    """Layouts for some of ``graph``'s inputs of rank >= 1 (none for a model that reads strides)."""
    import random

    import torch

    from fuzz.ir.opnames import short_name

    if any(short_name(n.op) in STRIDE_READING_OPS for n in graph.nodes):
        return {}
    # Private aten kernels may assume what their public wrapper ensures: aten::_embedding_bag reads
    # non-contiguous indices or offsets as if contiguous (garbage, or a segfault in eager).
    private = {i for n in graph.nodes if n.op.startswith("aten::_") for i in n.inputs()}
    written = written_inputs(graph)
    rng = random.Random(f"assay-layout:{seed}")
    out = {}
    for name in graph.inputs:
        t = leaves.get(name)
        if t is None or t.dim() == 0 or t.numel() <= 1 or rng.random() >= STRIDED_SHARE or name in private:
            continue
        layout = draw_layout(list(t.shape), rng, written=name in written)
        shape_only = torch.empty(t.shape, dtype=t.dtype, device="meta")  # strides without a copy
        if not strided(shape_only, **layout).is_contiguous():  # a permutation of size-1 dims changes nothing
            out[name] = layout
    return out


def written_inputs(graph) -> set:
    """Inputs the program writes in place: state writes (``meta.writes``, ``extra.writes``), the
    first operand of an in-place call (``add_``) and an ``out=`` argument."""
    from fuzz.ir.graph import refs_in

    out = {w.get("state") for w in graph.meta.get("writes") or [] if isinstance(w, dict)}
    for n in graph.nodes:
        out.add(n.extra.get("writes"))
        if n.op.endswith("_") and not n.op.endswith("__") and n.args:
            out.update(refs_in([n.args[0]]))
        if "out" in n.kwargs:
            out.update(refs_in([n.kwargs["out"]]))
    return out & set(graph.inputs)


def with_layouts(leaves: dict, layouts: dict) -> dict:
    """``leaves`` with each input named in ``layouts`` laid out as it says."""
    return {k: strided(v, **layouts[k]) if k in layouts and usable(layouts[k], v.dim()) else v
            for k, v in leaves.items()}
