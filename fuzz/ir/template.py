"""Call signatures: a record's arguments with its shapes and integers taken out.

A call such as ``conv2d(x[1,3,8,8], w[4,3,3,3], None, [1,1], [0,0], [1,1], 1)``
splits into

- a *template*, the argument structure with placeholders: tensors become
  ``{"X": i}``, integers ``{"A": k}`` and floats ``{"F": m}`` (numbered in argument
  order: ``init``, then ``args``, then ``kwargs`` by key; list elements included),
  everything else (bools, strings, None, dtypes) stays literal;
- the *values* that fill it: tensor shapes and dtypes, the integers, the floats.

Floats are values, not part of the signature: ``dropout(x, p=0.3)`` and
``dropout(x, p=0.5)`` are one signature whose shape rule cannot depend on ``p``
(the DSL is over integers). Where the output shape does depend on a float
(``interpolate``'s ``scale_factor``), inference splits the signature by its float
values again (``fuzz.rules.per_signature``).

Calls of one operator with the same template and the same tensor ranks form a
*signature*: rule inference learns one shape rule and one constraint set per
signature, and the generator fills the template with values it solved for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from fuzz.ir.record import Record


@dataclass(frozen=True)
class CallValues:
    """The values a template was filled with in one call."""

    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[str, ...]
    ints: tuple[int, ...]
    floats: tuple = ()  # encoded floats (``fuzz.ir.record``: a number, or {"float": "nan"} / "inf" / "-inf")


def float_key(floats) -> str:
    """A hashable, exact name for a tuple of encoded floats (NaN equals NaN here)."""
    return json.dumps(list(floats), separators=(",", ":"))


def _strip(value: Any, tensors: list, ints: list, floats: list) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float) or (isinstance(value, dict) and set(value) == {"float"}):
        floats.append(value)
        return {"F": len(floats) - 1}
    if isinstance(value, int):
        ints.append(value)
        return {"A": len(ints) - 1}
    if isinstance(value, list):
        return [_strip(v, tensors, ints, floats) for v in value]
    if isinstance(value, dict):
        if "T" in value:
            tensors.append(value)
            return {"X": len(tensors) - 1}
        if "tuple" in value:
            return {"tuple": [_strip(v, tensors, ints, floats) for v in value["tuple"]]}
        return value
    return value


def split_call(record: Record) -> tuple[dict, CallValues]:
    """Split a record's call into (template, values)."""
    tensors: list[dict] = []
    ints: list[int] = []
    floats: list = []
    template: dict[str, Any] = {}
    if record.init is not None:
        template["init"] = {
            "args": _strip(record.init.get("args", []), tensors, ints, floats),
            "kwargs": {k: _strip(record.init.get("kwargs", {})[k], tensors, ints, floats)
                       for k in sorted(record.init.get("kwargs", {}))},
        }
    template["args"] = _strip(record.args, tensors, ints, floats)
    template["kwargs"] = {k: _strip(record.kwargs[k], tensors, ints, floats) for k in sorted(record.kwargs)}
    values = CallValues(
        shapes=tuple(tuple(int(d) for d in t["T"]) for t in tensors),
        dtypes=tuple(t["dtype"] for t in tensors),
        ints=tuple(ints),
        floats=tuple(floats),
    )
    return template, values


def signature_key(record: Record, template: dict | None = None, values: CallValues | None = None) -> str:
    """A stable string naming the record's signature: operator, template and tensor ranks."""
    if template is None or values is None:
        template, values = split_call(record)
    ranks = [len(s) for s in values.shapes]
    return json.dumps([record.kind, record.op, record.overload, template, ranks], sort_keys=True, separators=(",", ":"))


def fill(template: Any, tensor: Callable[[int], Any], ints: list[int] | tuple[int, ...], floats=()) -> Any:
    """Fill a template's placeholders: ``tensor(i)`` for ``{"X": i}``, ``ints[k]`` for ``{"A": k}``,
    ``floats[m]`` for ``{"F": m}``.

    The result is an encoded value (see ``fuzz.ir.record``), with whatever ``tensor``
    returns in the tensor places (an encoded tensor, or a graph ``{"ref": name}``).
    """
    if isinstance(template, list):
        return [fill(v, tensor, ints, floats) for v in template]
    if isinstance(template, dict):
        if "X" in template:
            return tensor(template["X"])
        if "A" in template:
            return int(ints[template["A"]])
        if "F" in template and len(template) == 1:
            return floats[template["F"]]
        if "tuple" in template:
            return {"tuple": [fill(v, tensor, ints, floats) for v in template["tuple"]]}
        return template
    return template


def fill_call(template: dict, tensor: Callable[[int], Any], ints, floats=()) -> tuple[dict | None, list, dict]:
    """Fill a whole call template; returns (init, args, kwargs) as encoded values."""
    init = None
    if "init" in template:
        init = {
            "args": fill(template["init"]["args"], tensor, ints, floats),
            "kwargs": {k: fill(v, tensor, ints, floats) for k, v in template["init"]["kwargs"].items()},
        }
    args = fill(template["args"], tensor, ints, floats)
    kwargs = {k: fill(v, tensor, ints, floats) for k, v in template["kwargs"].items()}
    return init, args, kwargs


def n_float_slots(template: Any) -> int:
    """How many ``{"F": m}`` placeholders a template has."""
    if isinstance(template, list):
        return sum(n_float_slots(v) for v in template)
    if isinstance(template, dict):
        if "F" in template and len(template) == 1:
            return 1
        return sum(n_float_slots(v) for v in template.values())
    return 0
