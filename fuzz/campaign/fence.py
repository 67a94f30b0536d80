"""Fenced inputs: every tensor a test hands to a model sits inside a larger buffer whose other
elements are NaN (float, complex), the dtype's max (integers) or True (bool).

Why: a kernel that reads past its input otherwise reads whatever the allocator put beside it:
the next tensor, freed memory, another test's leftovers. Its result then changes from run to
run and with the process's history, so a campaign sees it only sometimes, the reducer cannot
keep it, and a fresh ``repro.py`` may not fail at all (the seventh session's LPPool3d case:
inductor, under dynamic shapes, evaluated pooling windows past the end of its input). Fenced,
the same bad read gives NaN (or an extreme integer) on every run, which the oracle flags like
any other difference, and the reduced case and its repro fail the same way.

The fenced tensor is not a view (``_base`` is None; no autograd or functionalisation view
handling): a plain tensor at storage offset ``FENCE`` with the input's strides (contiguous, or the
layout ``fuzz.gen.layouts`` gave the input, whose gaps hold the sentinel too), like a slice of a
preallocated pool. ``FENCE`` elements are a multiple of 16 bytes in every dtype, so
inductor's alignment check still passes and no compiled code path changes for a correct kernel.

One exception (``fence_for``): a model calling an op whose meaning depends on its input's
storage offset (``as_strided(x, size, stride, storage_offset)`` counts the offset from the start
of the storage, not of ``x``) gets no fence: fenced, eager would read the sentinels there and
those values could not be judged at all.

``fenced`` is plain torch: it is copied verbatim into every ``repro.py``, whose runs fence their
inputs the same way (its ``FENCE`` is the model's ``fence_for``).
"""

from __future__ import annotations

from fuzz.gen.layouts import STRIDE_READING_OPS

FENCE = 64  # elements on each side of the input
STORAGE_OFFSET_OPS = STRIDE_READING_OPS  # read the storage offset


def fence_for(graph) -> int:
    """The fence for ``graph``'s inputs: ``FENCE``, or 0 when an op reads the storage offset."""
    from fuzz.campaign.sensitivity import short_op

    short = {short_op(n.op) for n in graph.nodes}
    return 0 if short & STORAGE_OFFSET_OPS else FENCE


def fenced(t, fence=FENCE):
    """A copy of ``t`` at offset ``fence`` in a buffer whose other elements are NaN (float, complex),
    the dtype's max (integers) or True (bool): a kernel reading past its input reads those, every run.
    The copy has ``t``'s strides (contiguous when ``t``'s overlap). A Python number is returned as it is."""
    import torch

    if not isinstance(t, torch.Tensor):  # a Python number forward takes (fuzz.gen.scalars)
        return t
    t = t.detach()
    floating, boolean = t.dtype.is_floating_point or t.dtype.is_complex, t.dtype == torch.bool
    fill = float("nan") if floating else True if boolean else torch.iinfo(t.dtype).max
    stride, span = t.new_empty(t.shape).stride(), t.numel()  # contiguous, unless t is laid out otherwise:
    dims = sorted((s, n) for s, n in zip(t.stride(), t.shape) if n > 1 and s != 0)  # then its strides are kept,
    if not t.is_contiguous() and all(s > 0 for s, _ in dims) and all(b[0] >= a[0] * a[1] for a, b in zip(dims, dims[1:])):
        stride, span = t.stride(), 1 + sum((n - 1) * s for s, n in dims)  # gaps filled and stride-0 dims kept
    buffer = torch.full((span + 2 * fence,), fill, dtype=t.dtype, device=t.device)
    out = torch.empty(0, dtype=t.dtype, device=t.device)
    out.set_(buffer.untyped_storage(), fence, t.shape, stride)  # no _base
    one = tuple(slice(0, 1) if s == 0 else slice(None) for s in stride)  # a stride-0 dim is written once
    out[one].copy_(t[one])
    return out
