"""The shape axis of the model policy (``fuzz.gen.shapes``) on the shipped rules: vector models aim
innermost dims at SIMD widths and tails, large models at 10^4-10^5-element tensors, both under the
element budget, deterministic per (seed, index), and their models run eagerly."""

import math

import pytest
import torch

from fuzz.gen.config import GenConfig
from fuzz.gen.generate import generate_model_for_index
from fuzz.gen.policy import LEGACY, ModelPolicy
from fuzz.gen.ruleset import load_ruleset
from fuzz.gen.shapes import LARGE_ELEMENTS, VECTOR_WIDTHS, large_shape, shape_class
from fuzz.gen.chooser import RandomChooser

MODELS = 12


@pytest.fixture(scope="module")
def models():
    rs = load_ruleset()
    out = {}
    for cls in ("small", "vector", "large"):
        cfg = GenConfig(nodes=5, policy=ModelPolicy(shape=cls))
        out[cls] = [generate_model_for_index(rs, cfg, 7, i) for i in range(MODELS)]
    return out


def _leaves(generated):
    return [t.shape for m in generated for t in m.graph.tensors.values() if t.role != "value" and t.shape]


def test_vector_models_aim_innermost_dims_at_vector_widths(models):
    widths = set(VECTOR_WIDTHS)

    def share(cls, least=0):
        leaves = _leaves(models[cls])
        return sum(s[-1] in widths and s[-1] >= least for s in leaves) / len(leaves)

    # small shapes reach the 8-lane widths (7, 8, 9) by chance, so the aim shows past them
    assert share("vector") >= 0.25 and share("vector", 15) >= 0.25
    assert share("vector", 15) > 4 * share("small", 15)
    # at least one leaf has a tail width (a vector main loop plus a remainder)
    assert any(s[-1] in (7, 9, 15, 17, 31, 33, 63, 65, 127, 129) for s in _leaves(models["vector"]))


def test_large_models_reach_ten_thousand_elements_under_the_budget(models):
    big = [s for s in _leaves(models["large"]) if math.prod(s) >= LARGE_ELEMENTS[0]]
    assert len(big) >= 0.15 * len(_leaves(models["large"]))
    assert not any(math.prod(s) >= LARGE_ELEMENTS[0] for s in _leaves(models["small"]))
    budget = shape_class("large", 16, GenConfig().max_elements).max_elements
    for m in models["large"]:
        assert sum(math.prod(t.shape) for t in m.graph.tensors.values()) <= budget
        assert m.graph.meta["policy"]["shape"] == "large"


def test_shape_models_run_eagerly_and_are_deterministic(models):
    from fuzz.gen.program import build_module, run_eager

    rs = load_ruleset()
    for cls in ("vector", "large"):
        for m in models[cls][:4]:
            run_eager(build_module(m.graph, m.state), m.inputs)
        again = generate_model_for_index(rs, GenConfig(nodes=5, policy=ModelPolicy(shape=cls)), 7, 3)
        assert again.graph.to_json() == models[cls][3].graph.to_json()


def test_small_is_the_legacy_path():
    assert ModelPolicy(shape="small") == LEGACY
    assert shape_class("small", 16, 1 << 22).dim_max == 16


def test_large_target_shapes_put_the_bulk_on_the_outer_dim():
    import random

    ch = RandomChooser(random.Random(0))
    for rank in (1, 2, 3, 4):
        for _ in range(20):
            shape = large_shape(ch, rank)
            assert len(shape) == rank and LARGE_ELEMENTS[0] // 2 <= math.prod(shape) <= LARGE_ELEMENTS[1]
            if rank >= 2:  # a vector-width innermost dim; the outermost the largest of the others
                assert shape[-1] in VECTOR_WIDTHS and shape[0] >= max(shape[1:-1], default=64)


@pytest.mark.parametrize("conflict", [False, True])
def test_aimed_solve_keeps_every_target_that_fits(conflict):
    """Two fresh rank-2 tensors of a vector model: with nothing between them both innermost dims
    reach a vector width (one check of all targets); tied so that both cannot (b's = a's + 1 while
    they share one target), the first keeps its target and the second follows it."""
    import random

    from fuzz.gen.builder import Builder

    rs = load_ruleset()
    b = Builder(rs, GenConfig(nodes=2, policy=ModelPolicy(shape="vector")), RandomChooser(random.Random(4)))
    ta, ca = b.new_tensor(2, "float32", "input")
    tb, cb = b.new_tensor(2, "float32", "input")
    b.add(ca + cb + ([f"(= {tb.dims[-1]} (+ {ta.dims[-1]} 1))", f"(= {tb.dims[0]} {ta.dims[0]})"] if conflict else []))
    b.tensors.update({ta.name: ta, tb.name: tb})
    shapes = b.solve()
    a, bb = shapes[ta.name], shapes[tb.name]
    assert a[-1] in VECTOR_WIDTHS
    if conflict:
        assert bb[-1] == a[-1] + 1
    else:
        assert bb[-1] in VECTOR_WIDTHS


def test_aimed_solve_drops_only_the_later_conflicting_target_in_few_checks():
    """Three fresh rank-2 tensors of a vector model, the second tied to the first so that both
    innermost dims cannot sit at vector widths: the unsat core names the two, the later one's
    target gives way to its max_dim cap, the third keeps its own; two checks in all (one per
    core), not two or three per tensor."""
    import random

    from fuzz.gen.builder import Builder

    rs = load_ruleset()
    b = Builder(rs, GenConfig(nodes=3, policy=ModelPolicy(shape="vector")), RandomChooser(random.Random(4)))
    made = [b.new_tensor(2, "float32", "input") for _ in range(3)]
    (ta, ca), (tb, cb), (tc, cc) = made
    b.add(ca + cb + cc + [f"(= {tb.dims[-1]} (+ {ta.dims[-1]} 1))"])
    b.tensors.update({t.name: t for t, _ in made})
    checks = []
    real_check = b.check
    b.check = lambda extra=(): checks.append(len(extra)) or real_check(extra)
    shapes = b.solve()
    a, bb, c = shapes[ta.name], shapes[tb.name], shapes[tc.name]
    assert a[-1] in VECTOR_WIDTHS and c[-1] in VECTOR_WIDTHS
    assert bb[-1] == a[-1] + 1 and max(bb) <= b.cfg.max_dim  # its cap instead of its target
    assert len(checks) == 2


def test_recurrent_layers_keep_their_step_dims_small_in_large_models():
    """A large model aims its bulk at the outer dim; for an LSTM that is the time dim, whose
    steps the meta check runs one Python decomposition at a time (168 s for 65,536 steps):
    ``loop_bounds`` keeps the step dims at most STEPS while the model still grows large."""
    import random

    from fuzz.gen.builder import Builder
    from fuzz.gen.generate import _place_lead
    from fuzz.gen.loop_bounds import STEPS, loop_bounds

    assert loop_bounds("torch.nn.LSTM", [["d1", "d2", "d3"]]) == ["(<= d1 64)", "(<= d2 64)"]
    assert loop_bounds("torch.nn.LSTMCell", [["d1", "d2"]]) == []
    rs = load_ruleset()
    placed = []
    for seed in range(8):
        b = Builder(rs, GenConfig(nodes=1, policy=ModelPolicy(shape="large")), RandomChooser(random.Random(seed)))
        if not (_place_lead(b, rs.stem["torch.nn.LSTM"]) and b.nodes):
            continue
        assert b.nodes[0].info.rule.op == "torch.nn.LSTM"
        seq = b.solve()[b.nodes[0].operands[0]]
        placed.append(seq)
        assert max(seq[:2] if len(seq) >= 3 else seq[:1]) <= STEPS, seq
    assert len(placed) >= 3, placed
