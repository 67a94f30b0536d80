"""Zero-size dims (fuzz.gen.empty_dims, ``--empty-dims one``): growth sees every dim >= 1, the
final solution empties one input dim where every call agrees, and the model runs eagerly."""

import pytest
import torch

from fuzz.gen.config import GenConfig
from fuzz.gen.generate import generate_model_for_index
from fuzz.gen.policy import AXES, ModelPolicy, Shares, draw_policy
from fuzz.gen.program import build_module, run_eager
from fuzz.gen.ruleset import _is_dim_floor, load_ruleset

MODELS = 16


@pytest.fixture(scope="module")
def rs():
    return load_ruleset()


@pytest.fixture(scope="module")
def models(rs):
    cfg = GenConfig(nodes=5, policy=ModelPolicy(empty_dims="one"))
    return [generate_model_for_index(rs, cfg, 11, i) for i in range(MODELS)]


def test_policy_axis_is_drawn_last_and_saved_only_when_one():
    assert list(AXES)[-1] == "empty_dims"
    assert "empty_dims" not in ModelPolicy().to_json()
    assert ModelPolicy.from_json({"empty_dims": "one"}).empty_dims == "one"
    only = Shares().with_axis("empty_dims", "none")
    for i in range(20):  # the axes before it draw what they drew without it
        a, b = draw_policy(Shares(), 5, i), draw_policy(only, 5, i)
        assert {k: v for k, v in a.to_json().items() if k != "empty_dims"} == b.to_json()


def test_dim_floors_are_guarded_but_divisors_and_ints_are_not():
    assert _is_dim_floor("(>= {x0_1} 1)")
    assert _is_dim_floor("(>= (ite (>= {x0_0} {x1_0}) {x0_0} {x1_0}) 1)")
    assert not _is_dim_floor("(>= {a0} 1)")
    assert not _is_dim_floor("(>= (div {x0_0} {a1}) 1)")
    assert not _is_dim_floor("(>= (div {x0_0} 2) 1)")
    assert not _is_dim_floor("(>= {x0_1} 2)")
    assert not _is_dim_floor("(= {x0_1} 1)")


def test_models_hold_zero_size_inputs_and_run_eagerly(models):
    placed = [m for m in models if m.graph.meta["empty_dims"]["placed"]]
    assert len(placed) >= MODELS // 4, [m.graph.meta["empty_dims"] for m in models]
    for m in models:
        g = m.graph
        zero = [n for n in g.inputs if 0 in g.tensors[n].shape]
        if not g.meta["empty_dims"]["placed"]:
            assert not zero and g.meta["empty_dims"]["inputs"] == []
        for n in zero:
            assert m.leaves[n].numel() == 0 and list(m.leaves[n].shape) == g.tensors[n].shape
        if not g.meta.get("eager_raises"):
            outs = run_eager(build_module(g, m.state), m.forward_inputs())
            assert outs is not None
    # a zero-size input reaches a computed value (the calls run on it, not only pass it along)
    assert any(0 in t.shape for m in placed for t in m.graph.tensors.values() if t.role == "value")


def test_growth_never_sees_a_zero_dim(rs, monkeypatch):
    """Every witness (the meta check at the solver's model during growth) has dims >= 1: NONZERO is
    assumed until the final solution lifts it."""
    from fuzz.gen import builder

    seen = []
    real = builder.meta_check

    def spy(rule, shapes, *rest, **kw):
        seen.append([list(s) for s in shapes])
        return real(rule, shapes, *rest, **kw)

    monkeypatch.setattr(builder, "meta_check", spy)
    import fuzz.gen.generate as generate

    monkeypatch.setattr(generate, "zero_one_dim", lambda b, shapes: shapes)
    cfg = GenConfig(nodes=5, policy=ModelPolicy(empty_dims="one"))
    for i in range(6):
        m = generate_model_for_index(rs, cfg, 11, i)
        assert not any(0 in t.shape for t in m.graph.tensors.values())
    assert seen and not any(0 in s for shapes in seen for s in shapes)


def test_a_model_whose_calls_disagree_at_zero_keeps_its_solution(rs, monkeypatch):
    """When no emptied solution passes the meta checks, the model is the one solved before, with
    its nodes' integers as solved (not the last try's)."""
    from fuzz.gen.builder import Builder

    monkeypatch.setattr(Builder, "call_agrees", lambda self, p, shapes: False)
    cfg = GenConfig(nodes=5, policy=ModelPolicy(empty_dims="one"))
    for i in range(4):
        m = generate_model_for_index(rs, cfg, 11, i)
        assert m.graph.meta["empty_dims"] == {"placed": False, "inputs": []}
        assert not any(0 in t.shape for t in m.graph.tensors.values())


def test_none_models_never_empty_a_dim(rs):
    cfg = GenConfig(nodes=5, policy=ModelPolicy())
    for i in range(6):
        m = generate_model_for_index(rs, cfg, 11, i)
        assert "empty_dims" not in m.graph.meta
        assert all(0 not in t.shape for t in m.graph.tensors.values())
        assert all(v.numel() > 0 for v in m.leaves.values() if isinstance(v, torch.Tensor))


def test_a_call_eager_runs_only_because_its_input_is_empty_is_not_emptied(rs):
    """Eager skips the kernel of an empty tensor: ``torch.softmax(x, 1)`` of a bool ``x`` (a recorded
    valid call: the tracer met it on an empty or meta tensor) runs on a ``[2, 0, 3]`` input and
    raises "not implemented for 'Bool'" on any other; such a call keeps its dims (a compiler
    rejecting it is right: the c182 campaign's model 78, an integer softmax, under inductor)."""
    from fuzz.gen.builder import PendingNode, SymbolicTensor
    from fuzz.gen.empty_dims import _defined_when_filled

    def node(in_dt):
        info = next(i for i in rs.by_op["torch.softmax"] if i.rule.ranks == [3] and not i.rule.template["kwargs"]
                    and any(c[0][0] == in_dt for c in i.combos))
        out_dt = next(c[1][0] for c in info.combos if c[0][0] == in_dt)
        b = type("Builder", (), {})()
        b.tensors = {"x": SymbolicTensor("x", ["d1", "d2", "d3"], in_dt, "input"),
                     "y": SymbolicTensor("y", ["d1", "d2", "d3"], out_dt, "value")}
        p = PendingNode("n1", info, ["x"], [], ["y"], "symbolic", solved=[1])
        return b, p, {"x": [2, 0, 3], "y": [2, 0, 3]}

    assert not torch.softmax(torch.zeros(2, 0, 3, dtype=torch.bool), 1).numel()  # eager: runs when empty
    with pytest.raises(RuntimeError, match="not implemented for"):
        torch.softmax(torch.zeros(2, 1, 3, dtype=torch.bool), 1)
    assert not _defined_when_filled(*node("bool"))
    assert _defined_when_filled(*node("float16"))


def test_the_checks_eager_skips_on_empty_tensors_are_recognised():
    """The errors of calls eager runs only because they are empty (with their zeros at 1), from
    torch itself; an error eager raises for a real reason at those shapes is not one of them."""
    from fuzz.gen.empty_dims import skipped_check

    def error(fn):
        with pytest.raises(Exception) as info:
            fn()
        return str(info.value)

    z = torch.zeros
    assert torch.ops.aten._unsafe_masked_index_put_accumulate(  # empty: runs
        z(0, 0), z(0, 1, dtype=torch.bool), [z(0, 1, dtype=torch.long)] * 2, z(0, 2)).shape == (0, 0)
    assert skipped_check(error(lambda: torch.ops.aten._unsafe_masked_index_put_accumulate(
        z(1, 1), z(1, 1, dtype=torch.bool), [z(1, 1, dtype=torch.long)] * 2, z(1, 2))))
    assert skipped_check(error(lambda: torch.softmax(z(2, 1, 3, dtype=torch.bool), 1)))
    assert skipped_check(error(lambda: z(2, 3) + z(2, 4)))
    assert not skipped_check(error(lambda: torch.linalg.cholesky(-torch.eye(2))))
    assert not skipped_check(error(lambda: z(1, 5).reshape(1, 3)))  # a reshape of [0, 5] to [0, 3] is valid
