"""A signature's recorded calls: the data every inference step reads.

A ``Group`` is the training records of one signature (``fuzz.ir.template.signature_key``):
the valid calls (values + output shapes/dtypes) and the invalid ones (values only). Symbols
name its values: ``x{i}_{j}`` is dim ``j`` of tensor input ``i``, ``a{k}`` the ``k``-th int.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Call:
    shapes: tuple
    dtypes: tuple
    ints: tuple
    outs: tuple = ()  # ((shape tuple, dtype), ...) tensor outputs, valid calls only
    floats: tuple = ()  # encoded float values for the template's {"F": m} placeholders


@dataclass
class Group:
    kind: str
    op: str
    overload: str | None
    template: dict
    ranks: list
    n_ints: int
    valid: list = field(default_factory=list)
    invalid: list = field(default_factory=list)

    @property
    def key(self) -> str:
        return make_key(self.kind, self.op, self.overload, self.template, self.ranks)


def make_key(kind, op, overload, template, ranks) -> str:
    """The same string ``fuzz.ir.template.signature_key`` makes (kept in step with it)."""
    return json.dumps([kind, op, overload, template, list(ranks)], sort_keys=True, separators=(",", ":"))


def symbol_names(ranks, n_ints) -> list[str]:
    return [f"x{i}_{j}" for i, r in enumerate(ranks) for j in range(r)] + [f"a{k}" for k in range(n_ints)]


def symbol_matrix(calls: list[Call], ranks, n_ints) -> dict[str, np.ndarray]:
    cols: dict[str, list[int]] = {name: [] for name in symbol_names(ranks, n_ints)}
    for c in calls:
        for i, shape in enumerate(c.shapes):
            for j, d in enumerate(shape):
                cols[f"x{i}_{j}"].append(d)
        for k, v in enumerate(c.ints):
            cols[f"a{k}"].append(v)
    return {name: np.array(v, dtype=np.int64) for name, v in cols.items()}
