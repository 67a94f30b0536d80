"""What the generator is asked for (``GenConfig``) and how it says no (``GenerationError``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fuzz.gen.policy import LEGACY, ModelPolicy

DEFAULT_MAX_ELEMENTS = 1 << 22
DEFAULT_DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool")
FLOAT_DTYPES = {"float32", "float64", "float16", "bfloat16"}


@dataclass
class GenConfig:
    """What one generated model may hold and how hard the generator tries."""

    nodes: int = 10
    max_elements: int = DEFAULT_MAX_ELEMENTS
    max_dim: int = 16
    dtypes: tuple = DEFAULT_DTYPES
    forward_prob: float = 0.8
    param_prob: float = 0.5
    symbolic_ints_fallback: bool = True
    tries_per_node: int = 24
    concrete_source_prob: float = 0.5  # a concrete call no existing tensor fits enters on new inputs
    symbolic_source_prob: float = 0.25  # the same for a symbolic rule no existing tensor satisfies
    value_search: bool = True
    # Z3 resource units per check (deterministic, unlike a wall-clock timeout). A normal check
    # costs at most ~4,000; nonlinear rule terms (a window rule's ``(x + 2*p - d*(k-1) - 1) // s``
    # with every hole an int variable) once made one check run for minutes. 200,000 is ~0.1 s;
    # 1,000,000 made 60 20-node models take twice as long (9.2 s against 4.9 s).
    solver_rlimit: int = 200_000
    # the kind of model (shape class, dtype theme, value policy, form): ``fuzz.gen.policy``
    policy: ModelPolicy = field(default=LEGACY)


class GenerationError(Exception):
    """No model could be generated (no usable rule, an unsatisfiable or over-large model...)."""
