"""Mutants of a recorded call, made on its JSON form.

A mutant changes exactly one thing in a recorded call:

- ``dim``: one dimension of one tensor (+1, -1, 1, 0, x2, or another size seen in the call);
- ``rank``: one tensor gains a dimension of size 1 (front or back) or loses its last one;
- ``tensor_dtype``: one tensor gets another dtype;
- ``int``: an int argument (or one element of an int list) becomes +1, -1, 0, -1 (the
  value), negated, x2, or another value the same operator took at that position;
- ``list_len``: an int list gains or loses an element;
- ``bool``: a bool flips; ``str``: a string becomes another one seen at that position;
- ``float``: a float becomes 0, negated, x2 or 1.5; ``dtype``: a dtype argument changes.

Positions are paths into the encoded call (``("args", 1)``, ``("kwargs", "dim")``,
``("args", 0, 2)`` for an element of a list). Module records are mutated in their
constructor arguments (``init``) as well as in their forward arguments.
"""

from __future__ import annotations

import json
import random

from fuzz.ir.record import with_value_at

TENSOR_DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32", "uint8", "bool")
DTYPE_ARGS = ("float32", "float64", "float16", "int64", "int32", "bool")
INT_LIMIT = 1 << 20


def _walk(value, path):
    """Yield ``(path, value)`` for every mutable leaf of an encoded value."""
    if isinstance(value, dict):
        if "T" in value:
            yield path, value
        elif "tuple" in value:
            for i, v in enumerate(value["tuple"]):
                yield from _walk(v, path + ("tuple", i))
        elif "dtype" in value:
            yield path, value
        return
    if isinstance(value, list):
        yield path, value  # lists: int-list mutations
        for i, v in enumerate(value):
            yield from _walk(v, path + (i,))
        return
    if isinstance(value, (bool, int, float, str)):
        yield path, value


def leaves(call: dict):
    """Every mutable position of an encoded call (forward args, kwargs, and module ``init``)."""
    for i, a in enumerate(call["args"]):
        yield from _walk(a, ("args", i))
    for k in sorted(call["kwargs"]):
        yield from _walk(call["kwargs"][k], ("kwargs", k))
    init = call.get("init")
    if init:
        for i, a in enumerate(init["args"]):
            yield from _walk(a, ("init", "args", i))
        for k in sorted(init["kwargs"]):
            yield from _walk(init["kwargs"][k], ("init", "kwargs", k))




def _int_variants(v: int, pool) -> list[int]:
    cands = [v + 1, v - 1, 0, -1, -v, v * 2] + [p for p in pool if isinstance(p, int) and not isinstance(p, bool)]
    return [c for c in cands if c != v and abs(c) <= INT_LIMIT]


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _general_path(path: tuple) -> tuple:
    """The position with list indices dropped (pools are shared across list elements)."""
    head = 3 if path[0] == "init" else 2
    return path[:head] + tuple(p for p in path[head:] if not isinstance(p, int))


def value_pools(calls: list[dict]) -> dict:
    """Values seen per position over all calls of one operator (for 'another value' mutations)."""
    pools: dict = {}
    for call in calls:
        for path, v in leaves(call):
            if isinstance(v, (list, dict)):
                continue
            key = _general_path(path)
            bucket = pools.setdefault(key, [])
            if v not in bucket and len(bucket) < 16:
                bucket.append(v)
    return pools


def mutants(call: dict, pools: dict, rng: random.Random, limit: int) -> list[tuple[str, dict]]:
    """Up to ``limit`` distinct one-change mutants of ``call``: ``[(mutation kind, call), ...]``."""
    cands: list[tuple[str, tuple, object]] = []
    tensor_dims = sorted({d for _, v in leaves(call) if isinstance(v, dict) and "T" in v for d in v["T"]})
    for path, v in leaves(call):
        if isinstance(v, dict) and "T" in v:
            shape = v["T"]
            for i, d in enumerate(shape):
                for nd in sorted({d + 1, d - 1, 1, 0, d * 2, *tensor_dims} - {d}):
                    if 0 <= nd <= 4096:
                        cands.append(("dim", path, {"T": shape[:i] + [nd] + shape[i + 1:], "dtype": v["dtype"]}))
            if len(shape) < 6:
                cands.append(("rank", path, {"T": [1] + shape, "dtype": v["dtype"]}))
                cands.append(("rank", path, {"T": shape + [1], "dtype": v["dtype"]}))
            if shape:
                cands.append(("rank", path, {"T": shape[:-1], "dtype": v["dtype"]}))
            for dt in TENSOR_DTYPES:
                if dt != v["dtype"]:
                    cands.append(("tensor_dtype", path, {"T": shape, "dtype": dt}))
        elif isinstance(v, dict) and "dtype" in v:
            for dt in DTYPE_ARGS:
                if dt != v["dtype"]:
                    cands.append(("dtype", path, {"dtype": dt}))
        elif isinstance(v, list):
            if v and all(_is_int(x) for x in v):
                cands.append(("list_len", path, v + [v[-1]]))
                cands.append(("list_len", path, v[:-1]))
        elif isinstance(v, bool):
            cands.append(("bool", path, not v))
        elif _is_int(v):
            for nv in _int_variants(v, pools.get(_general_path(path), [])):
                cands.append(("int", path, nv))
        elif isinstance(v, float):
            for nv in (0.0, -v, v * 2, 1.5):
                if nv != v:
                    cands.append(("float", path, nv))
        elif isinstance(v, str):
            for nv in pools.get(_general_path(path), []):
                if isinstance(nv, str) and nv != v:
                    cands.append(("str", path, nv))
    rng.shuffle(cands)
    out: list[tuple[str, dict]] = []
    seen = {json.dumps(call, sort_keys=True)}
    # Round-robin over mutation kinds so that one tensor's many dims don't crowd out the attributes.
    by_kind: dict[str, list] = {}
    for c in cands:
        by_kind.setdefault(c[0], []).append(c)
    order = sorted(by_kind)
    while len(out) < limit and any(by_kind.values()):
        for kind in order:
            if not by_kind[kind] or len(out) >= limit:
                continue
            _, path, new = by_kind[kind].pop()
            mutant = with_value_at(call, path, new)
            key = json.dumps(mutant, sort_keys=True)
            if key not in seen:
                seen.add(key)
                out.append((kind, mutant))
    return out
