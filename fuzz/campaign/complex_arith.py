"""Complex arithmetic at a NaN or infinite part: where a complex result is not specified.

``(inf + 0j) * (1 + 1j)`` is ``inf + infj`` by the schoolbook formula, but a formula that forms
``0 * inf`` gives NaN in a part, and C99's Annex G, eager's ``c10::complex`` kernels and a
compiler's decomposition into real ops each choose their own way; so do division, ``abs``
(``hypot`` or ``sqrt(re**2 + im**2)``), ``exp`` and the rest. The oracle therefore does not judge
the outputs of a call on complex numbers where an operand or an output holds a NaN or infinite
part in eager (``fuzz.campaign.sensitivity``), except calls that only move values
(``REARRANGING_OPS``), which copy a NaN or an infinity exactly. Found in the thirteenth session's
complex64 campaign: ``silu`` of a complex tensor with an infinite part, eager NaN, inductor inf.
"""

from __future__ import annotations

# Calls that move, copy or conjugate values without arithmetic (or read only a shape): a NaN or
# infinite part comes out exactly as it went in, so ``complex_nonfinite`` leaves them to be judged.
REARRANGING_OPS = frozenset({
    "view", "view_as", "reshape", "reshape_as", "expand", "expand_as", "broadcast_to", "transpose", "t",
    "permute", "movedim", "moveaxis", "swapaxes", "swapdims", "squeeze", "unsqueeze", "flatten", "unflatten",
    "select", "slice", "narrow", "diagonal", "index_select", "gather", "take", "take_along_dim", "cat",
    "concat", "concatenate", "stack", "hstack", "vstack", "dstack", "column_stack", "split", "split_with_sizes",
    "tensor_split", "chunk", "unbind", "hsplit", "vsplit", "dsplit", "clone", "contiguous", "flip", "fliplr",
    "flipud", "roll", "rot90", "repeat", "tile", "unfold", "view_as_real", "view_as_complex", "resolve_conj",
    "resolve_neg", "alias", "detach", "atleast_1d", "atleast_2d", "atleast_3d", "diag_embed", "diagflat",
    "block_diag", "tril", "triu", "zeros_like", "ones_like", "full_like", "new_zeros", "new_ones", "new_full",
    "fill", "conj", "conj_physical", "real", "imag", "constant_pad_nd", "where", "masked_fill",
})


def complex_nonfinite(node, eager_env: dict) -> bool:
    """Whether ``node`` has a complex operand or output and an operand or output holding a NaN or an
    infinite part, on ``eager_env``'s values; never for calls that only move values (``REARRANGING_OPS``)."""
    import torch

    from fuzz.ir.opnames import short_name

    if short_name(node.op) in REARRANGING_OPS:
        return False
    values = [eager_env.get(t) for t in [*node.inputs(), *node.outputs]]
    values = [v for v in values if isinstance(v, torch.Tensor)]
    if not any(v.is_complex() for v in values):
        return False
    for v in values:
        if (v.is_complex() or v.is_floating_point()) and v.numel():
            parts = torch.view_as_real(v.detach().resolve_conj()) if v.is_complex() else v.detach()
            if not bool(torch.isfinite(parts).all()):
                return True
    return False
