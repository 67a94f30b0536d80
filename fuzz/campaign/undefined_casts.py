"""Values converted where C++ leaves the result undefined: no compiled result is wrong there.

- ``casts_unrepresentable``: integers made from NaN, +-inf or floats beyond the integer dtype's
  range (x86 gives INT_MIN, ARM saturates, a vectorised kernel may differ from a scalar one);
- ``degree_unrepresentable``: a special polynomial's degree that int64 cannot hold, which the
  kernels convert before branching on it (found in the eleventh session's campaign:
  ``legendre_polynomial_p(True, NaN)``, eager 0, inductor 1);
- ``polynomial_of_nan``: a special polynomial evaluated at a NaN argument, where torch 2.13's CPU
  kernels return uninitialised memory (the recurrence loop is guarded by ``!isnan(q)`` and never
  runs, leaving its result unset; pytorch/pytorch#187761, fixed after 2.13 by #187762 and
  #188027; found in the twenty-fourth session's campaign: eager ``legendre_polynomial_p(NaN, 3)``
  finite, a different garbage value per element, inductor NaN);
- ``softmax_backward_input_dtype``: a private softmax backward told that its forward's input had
  a dtype no softmax takes (found in the twelfth session's campaign:
  ``_softmax_backward_data(g, y, 0, torch.bool)``, eager 0.00103, inductor 1).

``fuzz.campaign.sensitivity`` leaves the outputs of such nodes unjudged.
"""

from __future__ import annotations


def casts_unrepresentable(node, eager_env: dict, index_op: bool = False) -> bool:
    """Whether a node makes integers from floats its integer outputs cannot hold: NaN, +-inf,
    or values beyond the output dtype's range. Converting those is undefined behaviour in C++
    (x86 gives INT_MIN, ARM saturates, a vectorised kernel may differ from a scalar one), so no
    result is right. Index outputs (argmax...: ``index_op``) are positions, not conversions: not these."""
    import torch

    outs = [eager_env.get(o) for o in node.outputs]
    ints = [t for t in outs if isinstance(t, torch.Tensor) and not (t.is_floating_point() or t.is_complex())
            and t.dtype != torch.bool]
    if not ints or index_op:
        return False
    lo = max(torch.iinfo(t.dtype).min for t in ints)
    hi = min(torch.iinfo(t.dtype).max for t in ints)
    for name in dict.fromkeys(node.inputs()):
        t = eager_env.get(name)
        if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.numel() == 0:
            continue
        w = t.detach().cpu().to(torch.float64)
        if not bool(torch.isfinite(w).all()) or float(w.max()) > hi or float(w.min()) < lo:
            return True
    return False


def _polynomial_argument(node, i: int, eager_env: dict):
    """A special polynomial's ``i``-th argument as eager had it (a tensor or a number), or None
    when ``node`` is no special polynomial or lacks it."""
    if "polynomial_" not in node.op.lower() or len(node.args) <= i:
        return None
    arg = node.args[i]
    if isinstance(arg, dict) and "ref" in arg:
        return eager_env.get(arg["ref"])
    if isinstance(arg, dict) and "float" in arg:
        return float(arg["float"])
    return arg


def degree_unrepresentable(node, eager_env: dict) -> bool:
    """Whether a special polynomial (``chebyshev_polynomial_t``, ``legendre_polynomial_p``...) gets a
    degree ``n`` (its second argument) that int64 cannot hold: NaN, +-inf or beyond its range. The
    kernels convert ``n`` to int64 before they branch on it (``n < 0``, ``n == 0``...), and that
    conversion is undefined behaviour in C++: eager's scalar loop and inductor's code may take
    different branches (eager's legendre_polynomial_p(1, NaN) is 0, inductor's 1), so no result is right."""
    import math

    import torch

    n = _polynomial_argument(node, 1, eager_env)
    if isinstance(n, (int, float)) and not isinstance(n, bool):
        return not math.isfinite(n) or abs(n) >= 2.0 ** 63
    if not isinstance(n, torch.Tensor) or not n.is_floating_point() or n.numel() == 0:
        return False
    w = n.detach().cpu().to(torch.float64)
    return not bool(torch.isfinite(w).all()) or float(w.abs().max()) >= 2.0 ** 63


def polynomial_of_nan(node, eager_env: dict) -> bool:
    """Whether a special polynomial (``legendre_polynomial_p``, ``chebyshev_polynomial_u``...) is
    evaluated at a NaN argument ``x`` (its first argument). torch 2.13's CPU kernels then return
    whatever the uninitialised result variable held (pytorch/pytorch#187761): eager's answer is not
    a value, so a compiled NaN there is no finding."""
    import math

    import torch

    x = _polynomial_argument(node, 0, eager_env)
    if isinstance(x, float):
        return math.isnan(x)
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.numel() == 0:
        return False
    return bool(torch.isnan(x.detach()).any())


SOFTMAX_BACKWARDS = ("_softmax_backward_data", "_log_softmax_backward_data")


def softmax_backward_input_dtype(node) -> bool:
    """Whether a private softmax backward (``_softmax_backward_data``, ``_log_softmax_backward_data``)
    is given an ``input_dtype`` (its fourth argument: the dtype of the forward's input, which picks
    the result's cast) that is not a floating dtype. No softmax forward has such an input, eager's
    kernel ignores the cast while the decomposition casts the gradient to bool or an integer: the
    call has no defined result to compare."""
    from fuzz.ir.opnames import last_component

    if last_component(node.op) not in SOFTMAX_BACKWARDS:
        return False
    d = node.args[3] if len(node.args) > 3 else node.kwargs.get("input_dtype")
    name = d.get("dtype") if isinstance(d, dict) else None
    return isinstance(name, str) and not name.startswith(("float", "bfloat", "complex"))


def undefined_reasons(node, eager_env: dict, index_op: bool = False) -> dict:
    """Output name -> why it is not judged, for the outputs of ``node`` one of the rules above
    leaves undefined (``fuzz.campaign.sensitivity`` merges these into its reasons)."""
    import torch

    reasons: dict[str, str] = {}
    if casts_unrepresentable(node, eager_env, index_op):
        for o in node.outputs:  # only the integer outputs are conversions
            t = eager_env.get(o)
            if isinstance(t, torch.Tensor) and not (t.is_floating_point() or t.is_complex()):
                reasons[o] = f"{node.name} converts NaN/inf/out-of-range floats to integers (undefined behaviour in C++)"
    rules = ((degree_unrepresentable(node, eager_env), "takes a degree int64 cannot hold (NaN, inf or beyond "
              "its range: converting it is undefined behaviour in C++)"),
             (polynomial_of_nan(node, eager_env), "is evaluated at a NaN argument, where torch's CPU kernel "
              "returns uninitialised memory (pytorch/pytorch#187761)"),
             (softmax_backward_input_dtype(node), "is told its forward's input was not floating (input_dtype): "
              "no result is defined"))
    for hit, why in rules:
        if hit:
            for o in node.outputs:
                reasons.setdefault(o, f"{node.name} {why}")
    return reasons
