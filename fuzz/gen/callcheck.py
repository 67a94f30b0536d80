"""Does one call of a rule do what the rule says? (``meta_check``)

The generator asks this when it inserts a symbolic operator (at the solver's current model) and
again at the final solution; a call that raises or whose outputs disagree with the rule's
predicted shapes and dtypes keeps the operator out of the model.
"""

from __future__ import annotations

import math

from fuzz.ir.rule import Rule
from fuzz.ir.template import fill_call

_META_CACHE: dict[str, bool | None] = {}
_META_CACHE_LIMIT = 50 * 2048
META_CPU_LIMIT = 1 << 15  # elements: calls this small run on CPU zeros, bigger ones on meta


def meta_check(rule: Rule, shapes, dtypes, ints, out_shapes, out_dtypes, floats=()) -> bool | None:
    """Run one call of ``rule`` without real data: True if its outputs have the predicted shapes and
    dtypes, False if it raises or disagrees, None if the meta device cannot run it.

    Small calls run on CPU zeros (faster than the meta device's Python decompositions, and zeros
    are valid indices), big ones on the meta device (nothing allocated). A CPU call that raises is
    asked again on meta: zeros are a singular matrix for ``inv``/``cholesky``/``lstsq``..., a value
    problem the value search deals with, not a shape one; only a meta call that agrees clears it."""
    import json

    key = json.dumps([rule.key, shapes, dtypes, ints, out_shapes, out_dtypes, list(floats)])
    if key in _META_CACHE:
        return _META_CACHE[key]
    small = sum(math.prod(s) for s in list(shapes) + list(out_shapes)) <= META_CPU_LIMIT
    verdict, error = call_check(rule, shapes, dtypes, ints, out_shapes, out_dtypes, "cpu" if small else "meta", floats)
    if small and error is not None and "not implemented" not in error:
        if call_check(rule, shapes, dtypes, ints, out_shapes, out_dtypes, "meta", floats)[0] is True:
            verdict = True
    if len(_META_CACHE) > _META_CACHE_LIMIT:
        _META_CACHE.clear()  # bounded (a verdict is cheap to recompute)
    _META_CACHE[key] = verdict
    return verdict


def call_check(rule: Rule, shapes, dtypes, ints, out_shapes, out_dtypes, device: str,
                floats=()) -> tuple[bool | None, str | None]:
    """(verdict as in ``meta_check``, the error text when the call raised)."""
    import torch

    from fuzz.gen.interpret import resolve_cached as resolve_op
    from fuzz.gen.interpret import result_structure
    from fuzz.ir.record import decode_value, dtype_from_name

    verdict: bool | None
    error = None
    try:
        init, args, kwargs = fill_call(rule.template, lambda k: {"ref": k}, ints, floats)
        tensors = [torch.zeros(s, dtype=dtype_from_name(d), device=device) for s, d in zip(shapes, dtypes)]

        def make(enc):
            return tensors[enc["ref"]]

        a = decode_value(args, make, device)
        kw = {k: decode_value(v, make, device) for k, v in kwargs.items()}
        if rule.api == "module":
            cls = resolve_op(rule.op, "module")
            ia = decode_value(init["args"], make, "cpu") if init else []
            ik = {k: decode_value(v, make, "cpu") for k, v in (init or {}).get("kwargs", {}).items()}
            with torch.device(device):
                fn = cls(*ia, **ik).eval()
        else:
            fn = resolve_op(rule.op, rule.api, rule.overload)
        with torch.no_grad():
            result = fn(*a, **kw)
        _, outs = result_structure(result)
        verdict = (len(outs) == len(out_shapes)
                   and all(list(o.shape) == list(s) for o, s in zip(outs, out_shapes))
                   and all(str(o.dtype).replace("torch.", "") == d for o, d in zip(outs, out_dtypes)))
    except NotImplementedError as exc:
        verdict = None if device == "meta" else False
        error = f"not implemented: {exc}"
    except Exception as exc:
        error = str(exc)
        # Data-dependent checks (item() on meta) say nothing about the shapes.
        verdict = None if ("meta" in error.lower() or "data-dependent" in error) else False
    return verdict, error
