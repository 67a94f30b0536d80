"""Call signatures: a record's arguments with its shapes and integers taken out.

A call such as ``conv2d(x[1,3,8,8], w[4,3,3,3], None, [1,1], [0,0], [1,1], 1)``
splits into

- a *template*, the argument structure with placeholders: tensors become
  ``{"X": i}`` and integers ``{"A": k}`` (numbered in argument order: ``init``,
  then ``args``, then ``kwargs`` by key; list elements included), everything else
  (bools, strings, None, floats, dtypes) stays literal;
- the *values* that fill it: tensor shapes and dtypes, and the integers.

Calls of one operator with the same template and the same tensor ranks form a
*signature*: rule inference learns one shape rule and one constraint set per
signature, and the generator fills the template with values it solved for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from fuzz.trace import Record


@dataclass(frozen=True)
class CallValues:
    """The values a template was filled with in one call."""

    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[str, ...]
    ints: tuple[int, ...]


def _strip(value: Any, tensors: list, ints: list) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, (str, float)):
        return value
    if isinstance(value, int):
        ints.append(value)
        return {"A": len(ints) - 1}
    if isinstance(value, list):
        return [_strip(v, tensors, ints) for v in value]
    if isinstance(value, dict):
        if "T" in value:
            tensors.append(value)
            return {"X": len(tensors) - 1}
        if "tuple" in value:
            return {"tuple": [_strip(v, tensors, ints) for v in value["tuple"]]}
        return value
    return value


def split_call(record: Record) -> tuple[dict, CallValues]:
    """Split a record's call into (template, values)."""
    tensors: list[dict] = []
    ints: list[int] = []
    template: dict[str, Any] = {}
    if record.init is not None:
        template["init"] = {
            "args": _strip(record.init.get("args", []), tensors, ints),
            "kwargs": {k: _strip(record.init.get("kwargs", {})[k], tensors, ints) for k in sorted(record.init.get("kwargs", {}))},
        }
    template["args"] = _strip(record.args, tensors, ints)
    template["kwargs"] = {k: _strip(record.kwargs[k], tensors, ints) for k in sorted(record.kwargs)}
    values = CallValues(
        shapes=tuple(tuple(int(d) for d in t["T"]) for t in tensors),
        dtypes=tuple(t["dtype"] for t in tensors),
        ints=tuple(ints),
    )
    return template, values


def signature_key(record: Record, template: dict | None = None, values: CallValues | None = None) -> str:
    """A stable string naming the record's signature: operator, template and tensor ranks."""
    if template is None or values is None:
        template, values = split_call(record)
    ranks = [len(s) for s in values.shapes]
    return json.dumps([record.kind, record.op, record.overload, template, ranks], sort_keys=True, separators=(",", ":"))


def fill(template: Any, tensor: Callable[[int], Any], ints: list[int] | tuple[int, ...]) -> Any:
    """Fill a template's placeholders: ``tensor(i)`` for ``{"X": i}``, ``ints[k]`` for ``{"A": k}``.

    The result is an encoded value (see ``fuzz.trace``), with whatever ``tensor``
    returns in the tensor places (an encoded tensor, or a graph ``{"ref": name}``).
    """
    if isinstance(template, list):
        return [fill(v, tensor, ints) for v in template]
    if isinstance(template, dict):
        if "X" in template:
            return tensor(template["X"])
        if "A" in template:
            return int(ints[template["A"]])
        if "tuple" in template:
            return {"tuple": [fill(v, tensor, ints) for v in template["tuple"]]}
        return template
    return template


def fill_call(template: dict, tensor: Callable[[int], Any], ints) -> tuple[dict | None, list, dict]:
    """Fill a whole call template; returns (init, args, kwargs) as encoded values."""
    init = None
    if "init" in template:
        init = {
            "args": fill(template["init"]["args"], tensor, ints),
            "kwargs": {k: fill(v, tensor, ints) for k, v in template["init"]["kwargs"].items()},
        }
    args = fill(template["args"], tensor, ints)
    kwargs = {k: fill(v, tensor, ints) for k, v in template["kwargs"].items()}
    return init, args, kwargs
