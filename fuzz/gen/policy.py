"""Which kind of model to make: the per-model policy (shape class, dtype theme, value policy, form,
input layout, scalar arguments, calls eager rejects).

A campaign or ``assay gen`` run draws one ``ModelPolicy`` per model from ``Shares`` with a
random source of its own (``draw_policy``: it depends on ``(seed, index)`` only and never touches
the generator's chooser), so a model is still a function of ``(seed, index, shares)``. The
generator reads ``GenConfig.policy``; ``LEGACY`` is what every model was before policies (small
shapes, the dtype mix of the rules, the finite value search, operators drawn one by one), and a
``LEGACY`` model is byte-identical to what earlier versions generated.

Each axis is documented in docs/generator.md ("Policies"); each has a flag of ``assay gen`` and
``assay fuzz`` (``--shapes``, ``--dtype-themes``, ``--values``, ``--forms``, ``--layouts``, ``--scalars``, ``--calls``, ``--shape-args``, ``--empty-dims``) that takes shares such
as ``small=0.5,vector=0.3,large=0.2``.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field

from fuzz.errors import AssayError

# The choices per axis. The first is the legacy behaviour.
AXES: dict[str, tuple[str, ...]] = {
    # small: today's dims (<= 16); vector: innermost dims at SIMD widths and their tails;
    # large: 10^4-10^5 elements per tensor so OpenMP splits the outer loops.
    "shape": ("small", "vector", "large"),
    # mix: the rules' dtype mix; the others make the whole model one theme (indices stay int64).
    # complex64: complex tensors inside, float32 (re, im) pairs at the boundary (fuzz.gen.complex_boundary).
    "dtype": ("mix", "float16", "bfloat16", "int8", "uint8", "int64", "mixed", "complex64", "int32", "int16"),
    # finite: the value search keeps values small and finite; edge: inf/nan/+-0/subnormals/extremes/ties.
    "values": ("finite", "edge"),
    # random: operators drawn one by one; blocks: model-shaped blocks (linear+act, norm, attention...);
    # forms: program forms (in-place, out=, views written in place, higher-order ops...).
    "form": ("random", "blocks", "forms"),
    # contiguous: every input dense and row-major; strided: inputs transposed, permuted,
    # channels-last, gapped or with padded rows (fuzz.gen.layouts). Drawn last, so adding it
    # changed no other axis's draw.
    "layout": ("contiguous", "strided"),
    # constant: a call's numbers are constants of the program; python: up to two become arguments of
    # forward, passed as Python numbers; tensor: passed as 0-dim tensors (fuzz.gen.scalars). Drawn
    # after layout, so adding it changed no other axis's draw.
    "scalars": ("constant", "python", "tensor"),
    # valid: a model eager runs; invalid: a recorded call eager rejects, which every backend must reject
    # too (fuzz.gen.error_calls). Drawn last.
    "calls": ("valid", "invalid"),
    # shape_args: sizes of calls as constants, or as sizes of tensors (a.size(1)) where one matches
    # (fuzz.gen.size_args); last, so the draws of the axes above stay what they were
    "shape_args": ("constant", "sizes"),
    # none: every dim >= 1; one: one dim of an input is 0 where the model's calls accept it, so
    # zero-size tensors flow through the model (fuzz.gen.empty_dims); drawn after shape_args
    "empty_dims": ("none", "one"),
}

DEFAULT_SHARES: dict[str, dict[str, float]] = {
    # large 0.25: parallel regions come from large models (0.2 gave 18% of inductor tests with
    # one, under the 20% issue #13 asks for: docs/benchmarks-reach.md)
    "shape": {"small": 0.35, "vector": 0.4, "large": 0.25},
    # complex64 0.08 came out of mix (0.3 before), int32 and int16 0.04 each (0.22 before)
    "dtype": {"mix": 0.14, "float16": 0.14, "bfloat16": 0.14, "int8": 0.07, "uint8": 0.07, "int64": 0.14,
              "mixed": 0.14, "complex64": 0.08, "int32": 0.04, "int16": 0.04},
    "values": {"finite": 0.75, "edge": 0.25},
    "form": {"random": 0.5, "blocks": 0.3, "forms": 0.2},
    "layout": {"contiguous": 0.7, "strided": 0.3},
    "scalars": {"constant": 0.7, "python": 0.15, "tensor": 0.15},
    "calls": {"valid": 0.92, "invalid": 0.08},
    "shape_args": {"constant": 0.5, "sizes": 0.5},
    "empty_dims": {"none": 0.9, "one": 0.1},
}

LEGACY_SHARES: dict[str, dict[str, float]] = {axis: {choices[0]: 1.0} for axis, choices in AXES.items()}


@dataclass(frozen=True)
class ModelPolicy:
    """The kind of one model: a choice on every axis of ``AXES``."""

    shape: str = "small"
    dtype: str = "mix"
    values: str = "finite"
    form: str = "random"
    layout: str = "contiguous"
    scalars: str = "constant"
    calls: str = "valid"
    shape_args: str = "constant"
    empty_dims: str = "none"

    def to_json(self) -> dict:
        out = asdict(self)
        for axis, before in (("layout", "contiguous"), ("scalars", "constant"), ("calls", "valid"),
                             ("shape_args", "constant"), ("empty_dims", "none")):
            if out[axis] == before:  # as before the axis existed: such a model is unchanged
                del out[axis]
        return out

    @classmethod
    def from_json(cls, data) -> "ModelPolicy":
        if not isinstance(data, dict):
            return LEGACY
        kw = {k: data[k] for k in AXES if isinstance(data.get(k), str) and data[k] in AXES[k]}
        return cls(**kw)

    @property
    def legacy(self) -> bool:
        return self == LEGACY


LEGACY = ModelPolicy()


@dataclass
class Shares:
    """How often each choice of each axis is drawn (weights, normalised per axis)."""

    weights: dict = field(default_factory=lambda: {a: dict(w) for a, w in DEFAULT_SHARES.items()})

    @classmethod
    def legacy(cls) -> "Shares":
        return cls({a: dict(w) for a, w in LEGACY_SHARES.items()})

    def with_axis(self, axis: str, text: str) -> "Shares":
        """A copy with ``axis`` set from flag text (``small=0.5,vector=0.5`` or a bare ``vector``)."""
        out = Shares({a: dict(w) for a, w in self.weights.items()})
        out.weights[axis] = parse_shares(axis, text)
        return out

    def to_json(self) -> dict:
        return {a: dict(w) for a, w in self.weights.items()}

    @classmethod
    def from_json(cls, data) -> "Shares":
        """Shares saved in ``campaign.json``; a campaign saved before policies existed is legacy."""
        if not isinstance(data, dict):
            return cls.legacy()
        weights = {}
        for axis, choices in AXES.items():
            w = data.get(axis)
            if isinstance(w, dict) and w and all(k in choices and isinstance(v, (int, float)) and v >= 0
                                                 for k, v in w.items()) and sum(w.values()) > 0:
                weights[axis] = {k: float(v) for k, v in w.items()}
            else:
                weights[axis] = dict(LEGACY_SHARES[axis])
        return cls(weights)


def parse_shares(axis: str, text: str) -> dict[str, float]:
    """``small=0.5,vector=0.3,large=0.2`` (or one bare name, meaning all of it) -> weights."""
    choices = AXES[axis]
    flag = {"shape": "--shapes", "dtype": "--dtype-themes", "values": "--values", "form": "--forms",
            "layout": "--layouts", "scalars": "--scalars", "calls": "--calls", "shape_args": "--shape-args",
            "empty_dims": "--empty-dims"}[axis]
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if not parts:
        raise AssayError(f"{flag}: empty; give shares such as {choices[0]}=1 (choices: {', '.join(choices)})")
    weights: dict[str, float] = {}
    for p in parts:
        name, _, value = p.partition("=")
        name = name.strip()
        if name not in choices:
            raise AssayError(f"{flag}: unknown choice {name!r}; choose from {', '.join(choices)}")
        try:
            w = float(value) if value.strip() else 1.0
        except ValueError:
            raise AssayError(f"{flag}: {p!r} is not NAME=SHARE (e.g. {choices[0]}=0.5)") from None
        if not (w >= 0 and w != float("inf")):
            raise AssayError(f"{flag}: share of {name} must be a finite number >= 0")
        weights[name] = weights.get(name, 0.0) + w
    if sum(weights.values()) <= 0:
        raise AssayError(f"{flag}: the shares add up to 0; give at least one positive share")
    return weights


def draw_policy(shares: Shares, seed: int, index: int) -> ModelPolicy:
    """The policy of model ``index`` of a run seeded ``seed`` (its own random source)."""
    rng = random.Random(f"assay-policy:{seed}:{index}")
    kw = {}
    for axis, choices in AXES.items():
        w = shares.weights.get(axis) or LEGACY_SHARES[axis]
        names = [c for c in choices if w.get(c, 0) > 0]
        if len(names) == 1:
            kw[axis] = names[0]
            continue
        kw[axis] = rng.choices(names, weights=[w[c] for c in names])[0]
    return ModelPolicy(**kw)
