"""Exact equality of computed floats that are equal up to rounding (a sensitivity rule of
``fuzz.campaign.sensitivity``).

``eq``, ``ne`` and ``isin`` ask whether two floats are the same number. Where both sides are
within rounding error of each other, which of them the rounding makes equal depends on where a run
rounds: eager rounds every float16 op, inductor computes in float32 and rounds where it stores a
value, so it may round a sum once where eager rounded each term. Found in the twenty-seventh
session (s27b): ``isin(rad2deg(x), x1 - running.lerp_(mean(x1), 0.1))`` on float16, the element
``2.0717...`` of the right-hand side: eager rounds the running value first and gets
``2.0712890625``; inductor subtracts the unrounded value and rounds once, ``2.072265625``, which is
exactly ``rad2deg(x)`` in float16, so ``True`` where eager says ``False``. The float64 reference
and its perturbed runs agree with eager there (a float64 run never lands on an exact tie), and the
float32-intermediate run rounds nowhere, so none of the other probes explains it.

The rule: an equality of operands some of which the model computed (an input's or parameter's
value is the same bits in every run, so ``x == y`` on them stays judged), with a pair of elements
whose float64 values are within the rounding noise of the least precise operand dtype
(``sensitivity.PERTURB``) of each other, is not judged. Ordered comparisons (``lt``, ``gt``...)
need no such rule: a perturbed run moves a near tie to either side, and the oracle already does not
judge an output a perturbation changes.
"""

from __future__ import annotations

EQUALITY_OPS = {"eq", "ne", "equal", "not_equal", "isin"}


def _operands(node, env):
    """The two compared values of ``node`` (tensors or Python numbers), or None."""
    from fuzz.gen.interpret import call_args

    try:
        args, kwargs = call_args(node, env)
    except Exception:  # noqa: BLE001 - a value missing from env: nothing to tell
        return None
    names = ("elements", "test_elements") if len(args) < 2 else ()
    values = list(args[:2]) + [kwargs[n] for n in names if n in kwargs]
    return values[:2] if len(values) >= 2 else None


def _least_precise(values) -> str | None:
    import torch

    order = ["bfloat16", "float16", "float32", "float64"]  # least precise first
    dtypes = [str(v.dtype)[6:] for v in values if isinstance(v, torch.Tensor) and v.dtype.is_floating_point]
    return min(dtypes, key=order.index, default=None)


def near_equal_pairs(short: str, a, b, rel: float) -> bool:
    """Whether an element of ``a`` is within ``rel`` (relative) of the element of ``b`` it is
    compared with (``isin``: of any element of ``b``); NaN and infinities are never near."""
    import torch

    a = torch.as_tensor(a, dtype=torch.float64).detach().cpu()
    b = torch.as_tensor(b, dtype=torch.float64).detach().cpu()
    if short == "isin":
        a, b = a.reshape(-1), b.reshape(-1)
        a, b = a[torch.isfinite(a)], b[torch.isfinite(b)]
        if not a.numel() or not b.numel():
            return False
        b = b.sort().values
        at = torch.searchsorted(b, a).clamp(max=b.numel() - 1)
        gap = torch.minimum((b[at] - a).abs(), (b[(at - 1).clamp(min=0)] - a).abs())
        scale = a.abs()
    else:
        try:
            a, b = torch.broadcast_tensors(a, b)
        except RuntimeError:
            return False
        gap, scale = (a - b).abs(), torch.maximum(a.abs(), b.abs())
    near = gap <= rel * scale + torch.finfo(torch.float32).tiny
    return bool((near & torch.isfinite(gap)).any())


def equality_of_near_ties(node, short: str, ref_env: dict | None, eager_env: dict, leaves: set,
                          perturb: dict) -> bool:
    """Whether ``node`` (op ``short``) tests computed floats for equality where two of them are
    equal up to rounding (``perturb``: relative rounding noise by dtype name)."""
    if short not in EQUALITY_OPS or all(n in leaves for n in node.inputs()):
        return False
    eager = _operands(node, eager_env)
    rel = perturb.get(_least_precise(eager or ()))
    if eager is None or rel is None:
        return False
    ref = _operands(node, ref_env) if ref_env and all(n in ref_env for n in node.inputs()) else None
    return near_equal_pairs(short, *(ref or eager), rel)
