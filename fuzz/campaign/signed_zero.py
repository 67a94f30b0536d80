"""Outputs that read the sign of a zero the model computed (a sensitivity rule of
``fuzz.campaign.sensitivity``).

``copysign(x, -0.0) < 0``, ``1 / -0.0 = -inf``, ``atan2(0.0, -0.0) = pi``. The sign of a zero a
model *computes* is not fixed: ``-x + x`` and ``x - x``, a sum's order, a fused multiply-add, a
reduction over one element (eager's ``mean`` of ``[-0.0]`` is ``+0.0``, starting from ``+0.0``;
inductor's is ``-0.0``, the element itself) may give either sign (IEEE 754), so a compiler that
evaluates the same expression another way may flip it. An input's or parameter's zero is the same
bits in every run, and stays judged.
"""

from __future__ import annotations

# By ``short_op`` name: the functions, and the Tensor operators that call them (``x.__rdiv__(y)``
# is ``y / x``; ``__rtruediv__``, ``__rfloordiv__``, ``__rmod__``, ``__rpow__``...).
SIGN_OF_ZERO_OPS = {"copysign", "signbit", "atan2", "arctan2", "div", "divide", "true_divide", "reciprocal",
                    "rsqrt", "floor_divide", "remainder", "fmod", "pow", "float_power", "xdivy",
                    "truediv", "rdiv", "rtruediv", "itruediv", "idiv", "floordiv", "rfloordiv", "ifloordiv",
                    "mod", "rmod", "imod", "rpow", "ipow"}


def computed_zero(node, eager_env: dict, leaves: set) -> bool:
    """Whether a float operand the model computed (not an input or parameter: those are the same
    bits in every run) holds an exact zero."""
    for name in dict.fromkeys(node.inputs()):
        t = eager_env.get(name)
        if name in leaves or t is None or not hasattr(t, "is_floating_point") or not t.is_floating_point():
            continue
        if t.numel() and bool((t == 0).any()):
            return True
    return False


def reads_sign_of_computed_zero(node, short: str, eager_env: dict, leaves: set) -> bool:
    """Whether ``node`` (its op's ``short_op`` name ``short``) reads the sign of a computed zero."""
    return short in SIGN_OF_ZERO_OPS and computed_zero(node, eager_env, leaves)
