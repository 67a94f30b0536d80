"""values=edge models: their inputs hold special values, every call still accepts them."""

import pytest
import torch

from fuzz.gen.census import model_facts, special_counts
from fuzz.gen.config import GenConfig
from fuzz.gen.edge import DENSITIES, edge_leaves, float_specials, int_specials, with_edges
from fuzz.gen.generate import generate_model_for_index
from fuzz.gen.interpret import build_submodules, run_graph
from fuzz.gen.policy import ModelPolicy
from fuzz.gen.ruleset import load_ruleset
from fuzz.ir.graph import Graph, Node


@pytest.fixture(scope="module")
def ruleset():
    return load_ruleset()


def test_with_edges_puts_specials_and_ties_in():
    gen = torch.Generator().manual_seed(0)
    x = torch.linspace(-1, 1, 400)
    y = with_edges(x, gen, 0.5)
    sp = special_counts(y)
    assert {"nan", "posinf", "neginf", "negzero", "subnormal", "extreme"} <= set(sp)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert (y == 2.5).any() and (y == float(torch.nextafter(torch.tensor(3.0), torch.tensor(0.0)))).any()
    finite = y[torch.isfinite(y)]
    assert finite.unique().numel() < finite.numel()  # ties
    for dt in (torch.float16, torch.bfloat16):
        assert special_counts(with_edges(x.to(dt), gen, 0.5)).get("subnormal")
    i32 = with_edges(torch.zeros(300, dtype=torch.int32), gen, 0.5)
    assert (i32 == 2**31 - 1).any() and (i32 == 46341).any() and not (i32 == -2**31).any()  # min // -1 is SIGFPE
    assert int_specials(torch.int8)[0] == -128 and max(int_specials(torch.uint8)) == 255
    assert torch.tensor(float_specials(torch.float16), dtype=torch.float16).isnan().sum() == 1


def test_an_input_a_call_rejects_with_edge_values_keeps_its_finite_ones():
    g = Graph()
    x = g.add_tensor([5], "float32", "input", name="x")
    i = g.add_tensor([3], "int64", "input", name="i")
    out = g.add_tensor([3], "float32", name="index_select_0")
    g.add_node(Node(id="n0", op="torch.index_select", api="function", overload=None,
                    args=[{"ref": x}, 0, {"ref": i}], kwargs={}, outputs=[out]))
    g.outputs = [out]
    leaves = {"x": torch.rand(5), "i": torch.tensor([0, 1, 2])}
    got, report = edge_leaves(g, leaves, build_submodules(g), seed=3)
    assert report["edged"] == ["x"] and "i" in report["kept"]
    assert torch.equal(got["i"], leaves["i"]) and special_counts(got["x"])
    run_graph(g, got, {})  # still runs


def _replayed_edges(leaves: dict, names: list, seed: int) -> dict:
    """The edge values ``edge_leaves`` draws for ``names``, in order, from its seed."""
    gen = torch.Generator().manual_seed((seed * 7919 + 13) & 0x7FFFFFFFFFFFFFFF)
    out = {}
    for n in names:
        density = DENSITIES[int(torch.randint(0, len(DENSITIES), (1,), generator=gen))]
        out[n] = with_edges(leaves[n], gen, density)
    return out


@pytest.mark.parametrize("rejected", [False, True])
def test_edge_draws_do_not_depend_on_which_inputs_keep_them(rejected):
    """One run accepts every input's edges (the common case); when a call rejects one input's (an
    index out of range), the others still get theirs: the draws are the same either way."""
    g = Graph()
    x = g.add_tensor([5], "float32", "input", name="x")
    i = g.add_tensor([3], "int64", "input", name="i")
    y = g.add_tensor([3], "float32", "input", name="y")
    sel = g.add_tensor([3], "float32", name="sel_0")
    out = g.add_tensor([3], "float32", name="add_1")
    first = (Node(id="n0", op="torch.index_select", api="function", overload=None,
                  args=[{"ref": x}, 0, {"ref": i}], kwargs={}, outputs=[sel]) if rejected else
             Node(id="n0", op="torch.add", api="function", overload=None,
                  args=[{"ref": i}, {"ref": y}], kwargs={}, outputs=[sel]))
    g.add_node(first)
    g.add_node(Node(id="n1", op="torch.add", api="function", overload=None,
                    args=[{"ref": sel}, {"ref": y} if rejected else {"ref": x}], kwargs={}, outputs=[out]))
    if not rejected:
        g.tensors[x].shape = [3]
    g.outputs = [out]
    leaves = {"x": torch.rand(g.tensors[x].shape), "i": torch.tensor([0, 1, 2]), "y": torch.rand(3)}
    expected = _replayed_edges(leaves, ["x", "i", "y"], 3)
    got, report = edge_leaves(g, leaves, build_submodules(g), seed=3)
    assert report["edged"] == (["x", "y"] if rejected else ["x", "i", "y"])
    assert ("i" in report["kept"]) == rejected
    for n in report["edged"]:
        assert torch.equal(got[n].nan_to_num(), expected[n].nan_to_num())
    run_graph(g, got, {})


def test_edge_models_hold_special_inputs_deterministically(ruleset):
    cfg = GenConfig(nodes=4, policy=ModelPolicy(values="edge"))
    facts = []
    for i in range(6):
        m = generate_model_for_index(ruleset, cfg, 9, i)
        again = generate_model_for_index(ruleset, cfg, 9, i)
        for k, v in m.leaves.items():
            assert torch.equal(torch.nan_to_num(v), torch.nan_to_num(again.leaves[k]))
        assert m.graph.meta["policy"]["values"] == "edge" and "edge" in m.graph.meta
        facts.append(model_facts(m))
    assert sum(bool(f["special_values"]) for f in facts) >= 4
    finite = generate_model_for_index(ruleset, GenConfig(nodes=4), 9, 0)
    assert "edge" not in finite.graph.meta
