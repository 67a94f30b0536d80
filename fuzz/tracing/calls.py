"""Running one recorded call and encoding what came of it.

Everything here works on the JSON form of a call (``fuzz.ir.record`` encoding), so
the same code replays a recorded sample, checks that meta tensors reproduce it,
and runs mutants: tensors are rebuilt from shape+dtype, either on the ``meta``
device (nothing allocated) or as small random CPU tensors.
"""

from __future__ import annotations

import math
import re

from fuzz.ir.record import Unrecordable, decode_value, dtype_from_name, encode_value, resolve_op

MAX_NUMEL = 1 << 16  # per real (CPU) tensor built for a replayed call
MAX_META_NUMEL = 1 << 40  # meta tensors allocate nothing; still keep sizes sane
MESSAGE_LEN = 300

_ADDR = re.compile(r"0x[0-9a-fA-F]{6,}")
# Errors that describe this machine, not the call: never recorded as an outcome.
_ENVIRONMENT_ERRORS = ("can't allocate memory", "not enough memory", "out of memory", "std::bad_alloc")


class Skip(Exception):
    """The call cannot be built here (tensor too large, unrecordable value): record nothing."""


def error_dict(exc: BaseException) -> dict:
    """``{"type", "message"}`` for an exception; the message is cut and scrubbed of addresses."""
    message = _ADDR.sub("0x?", str(exc).strip())[:MESSAGE_LEN]
    return {"type": type(exc).__name__, "message": message}


def is_environment_error(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, MemoryError) or any(s in text for s in _ENVIRONMENT_ERRORS)


def encode_outputs(result) -> list:
    """The encoded return values: a tuple/list result is one entry per element, anything else one entry."""
    if isinstance(result, (tuple, list)):
        return [encode_value(v) for v in result]
    return [encode_value(result)]


def encode_call(args, kwargs) -> tuple[list, dict]:
    """Encode positional and keyword arguments (raises ``Unrecordable``)."""
    return [encode_value(a) for a in args], {str(k): encode_value(v) for k, v in kwargs.items()}


def tensor_maker(device: str):
    """A ``make_tensor`` callback for ``decode_value``: meta tensors, or small random CPU tensors."""
    import torch
    from torch.testing import make_tensor

    def make(enc: dict):
        shape = enc["T"]
        dtype = dtype_from_name(enc["dtype"])
        if any((not isinstance(d, int)) or d < 0 for d in shape):
            raise Skip("negative or non-integer dimension")
        numel = math.prod(shape)
        if device == "meta":
            if numel > MAX_META_NUMEL:
                raise Skip("tensor too large")
            return torch.empty(shape, dtype=dtype, device="meta")
        if numel > MAX_NUMEL:
            raise Skip("tensor too large")
        if dtype.is_floating_point or dtype.is_complex:
            return make_tensor(shape, dtype=dtype, device="cpu", low=-3, high=3)
        if dtype == torch.bool:
            return make_tensor(shape, dtype=dtype, device="cpu")
        # Small non-negative integers: valid as indices into most dimensions.
        return make_tensor(shape, dtype=dtype, device="cpu", low=0, high=3)

    return make


def decode_call(call: dict, device: str):
    """``(args, kwargs)`` for an encoded call, tensors built on ``device``."""
    make = tensor_maker(device)
    args = [decode_value(a, make, device) for a in call["args"]]
    kwargs = {k: decode_value(v, make, device) for k, v in call["kwargs"].items()}
    return args, kwargs


def run_encoded(call: dict, device: str) -> tuple[bool, object]:
    """Run an encoded call (a record's JSON fields) on ``device``.

    Returns ``(True, encoded outputs)`` or ``(False, error dict)``. Raises ``Skip``
    when the call cannot be built or its outcome would say nothing about the
    operator (out of memory, unrecordable output).
    """
    import torch

    kind = call["kind"]
    target = resolve_op(call["op"], kind, call.get("overload"))
    try:
        args, kwargs = decode_call(call, device)
        if kind == "module":
            init = call.get("init") or {"args": [], "kwargs": {}}
            iargs, ikwargs = decode_call(init, device)
    except Skip:
        raise
    except Exception as exc:  # a value this torch cannot rebuild
        raise Skip(f"cannot rebuild call: {exc}") from None
    try:
        if kind == "module":
            with torch.device(device):
                module = target(*iargs, **ikwargs)
            module.eval()
            result = module(*args, **kwargs)
        else:
            result = target(*args, **kwargs)
    except Exception as exc:
        if is_environment_error(exc):
            raise Skip("environment error") from None
        return False, error_dict(exc)
    try:
        return True, encode_outputs(result)
    except Unrecordable as exc:
        raise Skip(str(exc)) from None
