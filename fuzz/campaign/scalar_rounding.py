"""A Python number dividing a float16/bfloat16 tensor in a discontinuous op: where the result depends
on whether the number is first rounded to the tensor's dtype.

Eager wraps the number as a 0-dim tensor that takes the tensor's dtype, so ``torch.fmod(v, s)``
for a bfloat16 ``v`` divides by ``bfloat16(s)``; inductor computes in float32 and may divide by
``s`` itself. For a continuous op the two differ by rounding, which the tolerance rule absorbs; for
``fmod``, ``remainder`` and floor or truncating division they differ by a whole period where ``v``
is a multiple of one divisor and not of the other. Found in the seventeenth session (``v =
-1.828125``, ``s = -1.8304532``: eager ``-0.0``, inductor ``-1.828125``, which is the exact
``fmod(v, s)``): with no float64 reference the oracle judged against eager and called it a bug.
Such an output is not judged where the two conventions give different results on the model's own
values (``fuzz.campaign.sensitivity``).
"""

from __future__ import annotations

DISCONTINUOUS_OPS = {"fmod", "remainder", "floor_divide", "div", "true_divide", "rmod", "mod", "floordiv",
                     "rfloordiv"}
LOW = ("float16", "bfloat16")


def scalar_rounding_decides(node, short: str, env: dict) -> bool:
    """Whether ``node`` (op ``short``) divides a float16/bfloat16 tensor by a Python number in a
    discontinuous way and its result on ``env``'s values changes when the number is rounded to
    the tensor's dtype first (computed in float32 both ways)."""
    import torch

    from fuzz.gen.interpret import call_args

    if short not in DISCONTINUOUS_OPS:
        return False
    if short in ("div", "true_divide") and node.kwargs.get("rounding_mode") not in ("floor", "trunc"):
        return False
    try:
        args, kwargs = call_args(node, env)
    except Exception:  # noqa: BLE001 - a value missing from env: nothing to tell
        return False
    if len(args) < 2:
        return False
    a, b = args[0], args[1]
    if short.startswith("r"):  # reflected: the number is on the left (s % v), the tensor the operand
        a, b = b, a
    tensor, number = (a, b) if isinstance(a, torch.Tensor) else (b, a)
    if not isinstance(tensor, torch.Tensor) or str(tensor.dtype)[6:] not in LOW or isinstance(number, torch.Tensor):
        return False
    if not isinstance(number, (int, float)) or isinstance(number, bool):
        return False
    wide = tensor.float()
    narrow_number = float(torch.tensor(number, dtype=tensor.dtype))
    ops = {"fmod": torch.fmod, "remainder": torch.remainder, "mod": torch.remainder, "rmod": torch.remainder,
           "floor_divide": torch.floor_divide, "floordiv": torch.floor_divide, "rfloordiv": torch.floor_divide}
    if short in ("div", "true_divide"):
        mode = node.kwargs.get("rounding_mode")
        fn = lambda x, y: torch.div(x, y, rounding_mode=mode)  # noqa: E731
    else:
        fn = ops[short]
    first = isinstance(a, torch.Tensor)
    try:
        both = [fn(wide, n) if first else fn(n, wide) for n in (float(number), narrow_number)]
    except (RuntimeError, TypeError):  # a form torch does not take with the number first
        return False
    # a jump, not a rounding: half a period of the remainder, half a unit of the quotient
    jump = 0.5 * abs(float(number)) if short in ("fmod", "remainder", "mod", "rmod") else 0.5
    gap = (both[0] - both[1]).abs()
    return bool((gap[~torch.isnan(gap)] >= jump).any())
