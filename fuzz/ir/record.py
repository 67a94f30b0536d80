"""Trace records: one recorded operator call and its outcome.

A *record* is what the collector saw when it called an operator once: which
operator, every argument (tensors reduced to shape and dtype), and the outcome
(output shapes and dtypes, or the error). Records are stored as JSON lines,
gzip-compressed, one record per line (see docs/traces.md for the format).

Operators are named three ways, by ``kind``:

- ``"aten"``: an ATen overload, ``op="aten::convolution"``, ``overload="default"``;
  called as ``torch.ops.aten.convolution.default(...)``.
- ``"function"``: a Python API, ``op="torch.nn.functional.conv2d"``; called by
  its import path.
- ``"module"``: an ``nn.Module`` class, ``op="torch.nn.Conv2d"``; built with
  ``init`` (constructor arguments), then called with ``args``/``kwargs``.

Argument values are encoded as JSON (``encode_value``/``decode_value``):

==========================  ==========================================
Python value                JSON
==========================  ==========================================
tensor                      ``{"T": [2, 3], "dtype": "float32"}``
int, bool, str, None        themselves
float                       itself; ``{"float": "inf"}`` / ``"-inf"`` / ``"nan"``
complex                     ``{"complex": [re, im]}``
list / tuple                JSON list / ``{"tuple": [...]}``
torch.dtype                 ``{"dtype": "float32"}``
memory format, layout, ...  ``{"enum": "torch.channels_last"}``
==========================  ==========================================
"""

from __future__ import annotations

import importlib
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from fuzz.errors import AssayError
from fuzz.ir.jsonlines import read_json_lines, write_json_lines

RECORD_FORMAT_VERSION = 1


class Unrecordable(Exception):
    """An argument has a type the JSON record format cannot hold (e.g. a callable)."""


# ---------------------------------------------------------------------------
# dtype names


def dtype_name(dtype) -> str:
    """``torch.float32`` -> ``"float32"``."""
    return str(dtype).replace("torch.", "")


def dtype_from_name(name: str):
    import torch

    value = getattr(torch, name, None)
    if not isinstance(value, torch.dtype):
        raise AssayError(f"unknown dtype {name!r} in a record; expected a torch dtype name such as 'float32'")
    return value


_ENUM_TYPES = ("memory_format", "layout", "device", "qscheme")


# ---------------------------------------------------------------------------
# value codec


def encode_value(value: Any) -> Any:
    """Encode one argument or output value as JSON-ready data (tensors become shape+dtype)."""
    import torch

    if isinstance(value, torch.Tensor):
        return {"T": list(value.shape), "dtype": dtype_name(value.dtype)}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value):
            return {"float": "nan"}
        if math.isinf(value):
            return {"float": "inf" if value > 0 else "-inf"}
        return value
    if isinstance(value, complex):
        return {"complex": [value.real, value.imag]}
    if isinstance(value, torch.dtype):
        return {"dtype": dtype_name(value)}
    if isinstance(value, torch.Size):
        return [int(v) for v in value]
    if isinstance(value, list):
        return [encode_value(v) for v in value]
    if isinstance(value, tuple):
        return {"tuple": [encode_value(v) for v in value]}
    if isinstance(value, (torch.memory_format, torch.layout)):
        return {"enum": str(value)}
    if isinstance(value, torch.device):
        # Records are device-agnostic: the device is chosen at replay time.
        return {"enum": "device"}
    if isinstance(value, torch.SymInt):  # pragma: no cover - only under fake tensors
        return int(value)
    raise Unrecordable(f"cannot record a value of type {type(value).__name__}")


def decode_value(data: Any, make_tensor: Callable[[dict], Any], device: str = "cpu") -> Any:
    """Inverse of ``encode_value``.

    ``make_tensor(encoded)`` builds each tensor from its encoding: ``{"T": shape, "dtype": name}``
    in records, or ``{"ref": tensor_name}`` in graphs (the graph interpreter resolves those).
    """
    import torch

    if isinstance(data, list):
        return [decode_value(v, make_tensor, device) for v in data]
    if not isinstance(data, dict):
        return data
    if "T" in data or "ref" in data:
        return make_tensor(data)
    if "float" in data:
        return float(data["float"])
    if "complex" in data:
        return complex(*data["complex"])
    if "tuple" in data:
        return tuple(decode_value(v, make_tensor, device) for v in data["tuple"])
    if "dtype" in data:
        return dtype_from_name(data["dtype"])
    if "fn" in data:  # a function passed as an argument (torch.cond branches, checkpoint's function)
        return resolve_op(data["fn"], data.get("api", "function"), data.get("overload"))
    if "call" in data:  # a function made by a call (a torch.func transform: torch.vmap(torch.sum, in_dims=1))
        args = decode_value(data.get("args", []), make_tensor, device)
        kwargs = {k: decode_value(v, make_tensor, device) for k, v in data.get("kwargs", {}).items()}
        return resolve_op(data["call"], "function")(*args, **kwargs)
    if "enum" in data:
        name = data["enum"]
        if name == "device":
            return torch.device(device)
        value = getattr(torch, name.replace("torch.", ""), None)
        if value is None:
            raise AssayError(f"unknown torch enum {name!r} in a record")
        return value
    raise AssayError(f"unrecognised encoded value {data!r}")


def iter_tensor_values(data: Any) -> Iterator[dict]:
    """Yield every encoded tensor (``{"T": ...}``) inside an encoded value, in argument order."""
    if isinstance(data, list):
        for v in data:
            yield from iter_tensor_values(v)
    elif isinstance(data, dict):
        if "T" in data:
            yield data
        elif "tuple" in data:
            for v in data["tuple"]:
                yield from iter_tensor_values(v)


# ---------------------------------------------------------------------------
# records


@dataclass
class Record:
    """One recorded operator call: what was called, with what, and what came of it."""

    op: str
    kind: str  # "aten" | "function" | "module"
    args: list
    kwargs: dict
    ok: bool
    overload: str | None = None
    init: dict | None = None  # modules only: {"args": [...], "kwargs": {...}}
    out: list | None = None  # encoded outputs (tensors as shape+dtype), when ok
    error: dict | None = None  # {"type": ..., "message": ...}, when not ok
    source: str = ""  # "opinfo" | "moduleinfo" | "dispatch" | "mutation" | ...
    extra: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The operator's full name, ``aten::add.Tensor`` or ``torch.nn.functional.relu``."""
        if self.kind == "aten" and self.overload and self.overload != "default":
            return f"{self.op}.{self.overload}"
        return self.op

    def inputs(self) -> list[dict]:
        """The encoded tensor inputs in argument order (args, then kwargs in key order)."""
        found = list(iter_tensor_values(self.args))
        for key in sorted(self.kwargs):
            found.extend(iter_tensor_values(self.kwargs[key]))
        return found

    def outputs(self) -> list[dict]:
        return list(iter_tensor_values(self.out or []))

    def to_json(self) -> dict:
        data = {"op": self.op, "kind": self.kind}
        if self.overload is not None:
            data["overload"] = self.overload
        if self.init is not None:
            data["init"] = self.init
        data["args"] = self.args
        data["kwargs"] = self.kwargs
        data["ok"] = self.ok
        if self.ok:
            data["out"] = self.out
        else:
            data["error"] = self.error
        data["source"] = self.source
        if self.extra:
            data["extra"] = self.extra
        return data

    @classmethod
    def from_json(cls, data: dict) -> "Record":
        try:
            return cls(
                op=data["op"],
                kind=data["kind"],
                overload=data.get("overload"),
                init=data.get("init"),
                args=data["args"],
                kwargs=data.get("kwargs", {}),
                ok=bool(data["ok"]),
                out=data.get("out"),
                error=data.get("error"),
                source=data.get("source", ""),
                extra=data.get("extra", {}),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"record is missing field {exc}") from None


def with_value_at(value: Any, path: tuple, new: Any) -> Any:
    """A copy of the JSON ``value`` with the item at ``path`` (keys/indices) replaced by ``new``."""
    if not path:
        return new
    out = json.loads(json.dumps(value))
    target = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return out


def read_records(path: str | os.PathLike) -> Iterator[Record]:
    """Read records from a ``.jsonl`` or ``.jsonl.gz`` file; a corrupt line is a one-line AssayError."""
    return read_json_lines(path, Record.from_json, item="trace record", what="trace file",
                           rebuild="assay traces collect",
                           missing=f"trace file {os.fspath(path)} does not exist; run 'assay traces collect' to build it")


def write_records(path: str | os.PathLike, records: Iterable[Record]) -> int:
    """Write records as gzip JSON lines, deterministically (fixed mtime, sorted keys). Returns the count."""
    return write_json_lines(path, (rec.to_json() for rec in records))


# ---------------------------------------------------------------------------
# calling an operator from its record


def resolve_op(op: str, kind: str, overload: str | None = None):
    """The callable (or module class) that an operator name denotes."""
    import torch

    if kind == "aten":
        namespace, _, name = op.partition("::")
        packet = getattr(getattr(torch.ops, namespace), name)
        return getattr(packet, overload or "default")
    target: Any = None
    parts = op.split(".")
    # Longest importable module prefix, then attributes: torch.nn.functional.conv2d, torch.Tensor.add
    for cut in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            target = getattr(target, attr)
        break
    if target is None:
        raise AssayError(f"unknown operator {op!r}")
    return target


def operator_names(records: Iterable[Record]) -> set[str]:
    return {r.op for r in records}
