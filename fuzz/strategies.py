"""Hypothesis strategies over generated models.

``models()`` draws valid models from the same generator ``assay gen`` uses; every
choice the generator makes (operator, signature, operand, dtype, bounds, value
seed) is drawn from Hypothesis's own data, so a failing example replays from the
example database and shrinks towards fewer and simpler operators::

    from hypothesis import given, settings
    from fuzz.strategies import models

    @settings(max_examples=50, deadline=None)
    @given(models(max_nodes=8))
    def test_my_backend_agrees(m):
        expected = m.run()
        got = my_backend(m.module)(*m.inputs)
        for e, g in zip(expected, got):
            torch.testing.assert_close(g, e, equal_nan=True)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Sequence

from hypothesis import strategies as st

from fuzz.gen.chooser import Chooser
from fuzz.gen.config import DEFAULT_MAX_ELEMENTS, GenConfig, GenerationError
from fuzz.gen.generate import generate
from fuzz.gen.ruleset import RuleSet, freeze_long_lived, load_ruleset
from fuzz.ir.graph import Graph


class DataChooser(Chooser):
    """Generator choices drawn through Hypothesis (``draw`` from ``st.composite`` or ``data.draw``)."""

    def __init__(self, draw):
        self.draw = draw

    def integer(self, lo: int, hi: int) -> int:
        if hi <= lo:
            return lo
        return self.draw(st.integers(lo, hi))


@dataclass
class GeneratedModel:
    """One drawn model: the graph, the ``torch.nn.Module`` built from its program source, its inputs."""

    graph: Graph
    module: Any
    inputs: list
    source: str
    state: dict = field(default_factory=dict, repr=False)
    finite: bool = True

    def run(self) -> list:
        """The eager outputs on the drawn inputs (fresh copies, so the inputs stay as drawn)."""
        from fuzz.gen.program import run_eager

        return run_eager(self.module, [t.clone() for t in self.inputs])

    def save(self, out_dir) -> None:
        """Write it as ``assay gen`` would (graph.json, program.py, tensors)."""
        from fuzz.gen.program import save_program

        save_program(self.graph, {**dict(zip(self.graph.inputs, self.inputs)), **self.state}, out_dir)

    @property
    def ops(self) -> list[str]:
        return self.graph.ops()

    def __repr__(self) -> str:  # what Hypothesis prints for a falsifying example
        return f"GeneratedModel(\n{self.graph.render()}\n)"


_RULESETS: dict[Any, RuleSet] = {}


def _ruleset(rules, dtypes) -> RuleSet:
    if isinstance(rules, RuleSet):
        return rules
    if rules is None or isinstance(rules, (str, os.PathLike)):
        return load_ruleset(rules, dtypes)
    key = (id(rules), tuple(dtypes) if dtypes else None)
    if key not in _RULESETS:
        _RULESETS[key] = RuleSet(list(rules), dtypes)
        freeze_long_lived()
    return _RULESETS[key]


def models(max_nodes: int = 8, min_nodes: int = 1, rules: Any = None, dtypes: Sequence[str] | None = None,
           max_elements: int = DEFAULT_MAX_ELEMENTS, max_dim: int = 16, value_search: bool = True) -> st.SearchStrategy:
    """A strategy drawing ``GeneratedModel`` s of ``min_nodes``..``max_nodes`` operator calls.

    ``rules``: the shipped rules (default), a rules file path, a list of ``Rule`` or a ``RuleSet``.
    ``dtypes``: the tensor dtypes allowed (default: floats, ints and bool).
    """
    if min_nodes < 1 or max_nodes < min_nodes:
        raise ValueError("need 1 <= min_nodes <= max_nodes")

    @st.composite
    def _models(draw):
        import torch

        from fuzz.gen.program import build_module, program_source

        ruleset = _ruleset(rules, dtypes)
        nodes = draw(st.integers(min_nodes, max_nodes))
        cfg = GenConfig(nodes=nodes, max_elements=max_elements, max_dim=max_dim, value_search=value_search)
        try:
            gen = generate(ruleset, cfg, DataChooser(draw))
        except GenerationError:
            from hypothesis import reject

            reject()
        source = program_source(gen.graph)
        module = build_module(gen.graph, gen.state, source=source)
        with torch.no_grad():
            inputs = [t.clone() for t in gen.inputs]
        return GeneratedModel(gen.graph, module, inputs, source, gen.state, gen.finite)

    return _models()
