"""beta * input + alpha * (a @ b) at the edge: where its result is not specified.

With alpha 0, eager's kernels skip the product (BLAS's rule) while a decomposition computes
0 * inf = NaN wherever an operand holds a non-finite value. With another alpha, a product near
the dtype's overflow overflows or not depending on whether alpha scales an operand first (eager's
``addr`` kernel) or the product (the decomposition). Neither is specified, so the oracle does not
judge such an output (``fuzz.campaign.sensitivity``). Found in the tenth session: ``addr`` with
alpha 0 and an inf in ``vec2`` (eager -0.85, inductor NaN) and with alpha 0.4 and a product of
-4e38 (eager -1.6e38, inductor and AOTInductor -inf).

``addcmul`` (``input + value * t1 * t2``) at a product near overflow: eager's kernel fuses the
multiply and the add (one rounding, no overflow of the product on its own), a compiled kernel may
round the product first, and whether it fuses can differ between the vector body of a loop and its
tail. Neither is specified (the twenty-second session: ``FLT_MAX + 3.3e38 * -1.97``, eager
-3.08e38, inductor -inf at 2 of 4,335 elements).
"""

from __future__ import annotations

SCALED_PRODUCT_OPS = frozenset({"addr", "addmm", "addmv", "addbmm", "baddbmm", "addcmul"})
NEAR_OVERFLOW = 1 / 16  # of the dtype's largest finite value (as sensitivity.EXTREME_FRACTION)


def scaled_product_edge(node, env: dict) -> bool:
    """Whether ``node`` (one of ``SCALED_PRODUCT_OPS``) scales, by an alpha other than 1, a
    product that is infinite (alpha 0) or may overflow (any other alpha), or (``addcmul``) adds
    a product ``value * t1 * t2`` that may overflow on its own, on ``env``'s values."""
    import torch

    from fuzz.gen.interpret import call_args
    from fuzz.ir.opnames import short_name

    try:
        args, kwargs = call_args(node, env)
    except Exception:  # noqa: BLE001 - a value missing from env: cannot tell
        return False
    fused = short_name(node.op) == "addcmul"
    a, b = (kwargs.get(name, args[i] if len(args) > i else None)
            for i, name in ((1, "tensor1" if fused else "mat1"), (2, "tensor2" if fused else "mat2")))
    if not all(isinstance(t, torch.Tensor) and t.is_floating_point() and t.numel() for t in (a, b)):
        return False
    if fused:
        return _may_overflow(kwargs.get("value", args[3] if len(args) > 3 else 1), a, b)
    alpha = kwargs.get("alpha", 1)
    if alpha == 1 or isinstance(alpha, bool):
        return False
    if alpha == 0:
        return not bool(torch.isfinite(a).all() and torch.isfinite(b).all())
    return _may_overflow(1, a, b)


def _may_overflow(scale, a, b) -> bool:
    """Whether ``scale * a * b`` may reach ``NEAR_OVERFLOW`` of the dtype's max at some element
    (by the operands' largest finite magnitudes: a bound)."""
    import torch

    big = [float(t.detach().abs().double().nan_to_num(0, 0, 0).max()) for t in (a, b)]
    return abs(float(scale)) * big[0] * big[1] >= torch.finfo(a.dtype).max * NEAR_OVERFLOW
