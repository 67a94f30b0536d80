"""Gradients summed over repeated indices in a 16-bit float: not judged.

The backward of a gather by index (``x[i]``, ``index_select``, ``gather``, ``take``,
``embedding``...) adds the incoming gradient of every position that read the same element of
``x``. With a repeated index and a float16/bfloat16 ``x`` that sum is made in the 16-bit dtype, one
rounding per addition, in eager (``index_put_(..., accumulate=True)``: 1,000 additions of 1.0 stop
at 256 in bfloat16) and in inductor (an atomic add per element, in whatever order the threads
run). Two such sums differ by up to about ``n * eps * sum|terms|`` for ``n`` repeats, not by the
single rounding the oracle's per-element rule allows, and inductor's changes from run to run: a
`bwd` campaign of the fourteenth session saved one (`x_14[i]` with 10,494 indices into 109 rows of
bfloat16: eager 0.5 from float64 at the worst element, inductor 6.5 there and elsewhere on the
next run). Like the other gradient rules (``fuzz.campaign.sensitivity.gradient_blockers``),
``accumulation_blockers`` names the node outputs whose gradients then go unjudged.
"""

from __future__ import annotations

from fuzz.campaign.sensitivity import short_op

# ops whose backward scatters-adds into the indexed operand (by ``short_op``: a node's op carries no
# overload, ``aten::index`` -> ``index``, ``torch.nn.functional.embedding`` -> ``embedding``)
GATHER_OPS = {"index", "index_select", "gather", "take", "take_along_dim", "embedding"}
LOW_PRECISION = {"float16", "bfloat16"}


def accumulation_blockers(graph, env: dict) -> dict:
    """Tensor name -> reason, for outputs of a gather by index that are float16 or bfloat16 (the
    indexed operand's dtype) where an index tensor (an integer operand, in ``env``) repeats a value."""
    import torch

    reasons = {}
    for node in graph.nodes:
        if short_op(node.op) not in GATHER_OPS:
            continue
        out = env.get(node.outputs[0]) if node.outputs else None  # a gather returns the indexed dtype
        dtype = str(out.dtype).replace("torch.", "") if isinstance(out, torch.Tensor) else None
        if dtype not in LOW_PRECISION:
            continue
        operands = [env.get(n) for n in node.inputs()]
        indices = [t for t in operands if isinstance(t, torch.Tensor) and not t.is_floating_point()
                   and t.dtype != torch.bool and t.numel() > 1]
        if any(torch.unique(t).numel() < t.numel() for t in indices):
            for o in node.outputs:
                reasons[o] = f"{node.name} sums the gradients of repeated indices in {dtype} (order-dependent rounding)"
    return reasons
