"""The shape axis of the model policy: how big a model's dims may be and where the solver aims them.

``Builder`` asks this module for two things per model (``ModelPolicy.shape``):

- ``ShapeClass`` limits: the hard bound of a fresh tensor's dims (``dim_max``), of an operator's
  computed output dims (``out_max``) and the per-model element budget (``max_elements``, the sum
  over every tensor: inputs, parameters, activations).
- ``targets``: the *soft* constraints ``Builder.solve`` tries first for one fresh tensor (dropped
  by halves while unsatisfiable, like the randomised lower bounds of small models).

Classes:

- ``small`` (legacy): dims in ``[1, max_dim]`` (16); ``Builder`` keeps its original code path, so a
  small model is byte-identical to the ones generated before policies.
- ``vector``: the innermost dim aims at a SIMD width or its tail (``VECTOR_WIDTHS``: 7..9, 15..17,
  ... 127..129): inductor's CPU kernels vectorise the innermost loop 8-64 lanes wide, so a width
  runs the vector main loop, a width +-1 its tail as well; the other dims aim at ``[1, 8]``.
- ``large``: each fresh tensor aims at ``LARGE_ELEMENTS`` (10^4-10^5) elements with a vector-width
  innermost dim and the rest on the *outer* dims, so inductor splits the outer loop over OpenMP
  threads (it needs ``min_chunk_size`` = 512 elements of work per thread).

Dims fixed by a recorded call (concrete rules) or by an operator's output formula cannot follow
the targets; ``benchmarks/shape_reach.py`` measures how many tensors reach them per class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

VECTOR_WIDTHS = (7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129)
LARGE_ELEMENTS = (10_000, 100_000)
VECTOR_OUTER_MAX = 8          # a vector model's other dims aim at [1, this]
LARGE_DIM_MAX = 1 << 17       # hard bound of a large model's dims (a rank-1 tensor takes all 10^5)
LARGE_MAX_ELEMENTS = 1 << 22  # per-model budget of a large model (the default of every class)


@dataclass(frozen=True)
class ShapeClass:
    name: str
    dim_max: int        # hard bound of a fresh tensor's dims
    out_max: int        # hard bound of an operator's computed output dims
    max_elements: int   # per-model budget: elements summed over all tensors


def shape_class(name: str, max_dim: int, max_elements: int) -> ShapeClass:
    """The limits of class ``name`` under a config's ``max_dim`` / ``max_elements``."""
    if name == "vector":
        top = max(max_dim, VECTOR_WIDTHS[-1])
        return ShapeClass(name, top, 8 * top, max_elements)
    if name == "large":
        return ShapeClass(name, max(max_dim, LARGE_DIM_MAX), max(8 * max_dim, LARGE_DIM_MAX),
                          min(max_elements, LARGE_MAX_ELEMENTS) if max_elements else LARGE_MAX_ELEMENTS)
    return ShapeClass("small", max_dim, 8 * max_dim, max_elements)


def large_shape(ch, rank: int) -> list[int]:
    """A target shape of 10^4-10^5 elements (log-uniform): a vector-width innermost dim, the rest of
    the elements spread over the outer dims, the outermost taking what rounding leaves."""
    lo, hi = LARGE_ELEMENTS
    total = int(round(math.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * ch.integer(0, 1000) / 1000)))
    if rank == 1:
        return [total]
    inner = ch.choice(VECTOR_WIDTHS[3:])  # >= 15: a vector loop, with or without a tail
    rest = max(1, total // inner)
    dims = []
    for k in range(rank - 2):  # middle dims: small, the outermost keeps the bulk for the parallel split
        d = ch.integer(1, max(1, min(16, int(rest ** (1 / (rank - 1 - k))))))
        dims.append(d)
        rest = max(1, rest // d)
    return [rest, *dims, inner]


def targets(cls: ShapeClass, ch, dims: list, shared: dict) -> list[str]:
    """Soft SMT-LIB constraints aiming one fresh tensor's dims (constant names) at ``cls``'s sizes.

    ``shared`` (one dict per model) holds the target of each rank: most tensors of a rank aim at the
    same shape, so the operands of an elementwise or broadcasting operator aim at sizes that agree
    (two independent targets would contradict each other and both be dropped)."""
    if not dims or cls.name not in ("vector", "large"):
        return []
    rank = len(dims)
    if rank not in shared or ch.chance(0.2):
        if cls.name == "vector":
            shared[rank] = [ch.integer(1, VECTOR_OUTER_MAX) for _ in range(rank - 1)] + [ch.choice(VECTOR_WIDTHS)]
        else:
            shared[rank] = large_shape(ch, rank)
    shape = shared[rank]
    if cls.name == "vector":  # the outer dims: a range around the shared value, not one point
        out = [f"(and (>= {v} {max(1, d - 2)}) (<= {v} {d + 2}))" for v, d in zip(dims[:-1], shape)]
        return out + [f"(= {dims[-1]} {shape[-1]})"]
    return [f"(= {v} {d})" for v, d in zip(dims, shape)]
