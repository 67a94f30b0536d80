"""The datadep form: chains with a value-decided size or scalar (nonzero, argwhere, masked_select,
unique, item) placed on real graphs; their ends have static shapes, the graph records dynamo's
capture flags, generated models holding them run eagerly, and meta-tensor runs still work."""

import warnings

import pytest
import torch

from fuzz.gen import interpret, program
from fuzz.gen.chooser import RandomChooser
from fuzz.gen.config import GenConfig
from fuzz.gen.datadep import CAPTURE_SETTINGS, KINDS, META_KEY, rewrite_datadep
from fuzz.gen.generate import generate_model_for_index
from fuzz.gen.policy import ModelPolicy
from fuzz.gen.ruleset import load_ruleset
from fuzz.ir.graph import Graph, Node


def one_op(dtype: str) -> Graph:
    """x -> neg (a) -> abs: a value with a later reader."""
    g = Graph()
    g.add_tensor([4, 5], dtype, "input", name="x_0")
    g.add_tensor([4, 5], dtype, "value", name="neg_1")
    g.add_tensor([4, 5], dtype, "value", name="abs_2")
    g.add_node(Node("n0", "torch.neg", "function", [{"ref": "x_0"}], {}, ["neg_1"]))
    g.add_node(Node("n1", "torch.abs", "function", [{"ref": "neg_1"}], {}, ["abs_2"]))
    g.outputs = ["abs_2"]
    return g


def rewritten(kind: str, dtype: str) -> Graph:
    """``one_op(dtype)`` with a ``kind`` chain after its first node (the first seed that places one)."""
    for seed in range(200):
        g = one_op(dtype)
        if rewrite_datadep(g, 0, RandomChooser(seed)) and any(n.extra.get("datadep") == kind for n in g.nodes):
            return g
    raise AssertionError(f"no seed places a {kind} chain on {dtype}")


def inputs_for(dtype: str, seed: int):
    gen = torch.Generator().manual_seed(seed)
    if dtype == "int64":
        return torch.randint(-3, 4, (4, 5), generator=gen)
    return (torch.rand(4, 5, generator=gen) * 4 - 2).to(getattr(torch, dtype))


@pytest.mark.parametrize("dtype", ["float32", "int64"])
@pytest.mark.parametrize("kind", KINDS)
def test_chain_sizes_follow_values_and_its_end_does_not(kind, dtype):
    g = rewritten(kind, dtype)
    assert g.meta[META_KEY] == CAPTURE_SETTINGS
    end = g.outputs[-1]
    dd = next(n for n in g.nodes if n.extra.get("datadep") == kind)
    full = g.copy()
    full.outputs = list(dict.fromkeys([o for n in g.nodes for o in n.outputs]))
    module = program.build_module(full)
    sizes, ends = set(), set()
    for seed in range(6):
        env = dict(zip(full.outputs, program.run_eager(module, [inputs_for(dtype, seed)])))
        assert list(env[end].shape) == g.tensors[end].shape  # static end
        assert str(env[end].dtype) == f"torch.{g.tensors[end].dtype}"
        sizes.add(tuple(env[dd.outputs[0]].shape))
        ends.add(env[end].flatten()[0].item() if env[end].numel() else None)
    if kind != "item":
        assert dd.extra["data_dependent"] == "shape" and len(sizes) > 1  # the size is the values'
    else:
        assert dd.extra["data_dependent"] == "scalar"
        line = next(line for line in program.program_source(g).splitlines() if "torch.Tensor.item(" in line)
        assert line.strip().startswith(dd.outputs[0] + " = torch.")
    assert len(ends) > 1
    # meta runs (shape propagation for the reducer, aten_ops for triage) call it on zeros
    assert interpret.propagate_shapes(g.copy()).tensors[end].shape == g.tensors[end].shape
    call = {"nonzero": "aten.nonzero", "argwhere": "aten.nonzero", "masked_select": "aten.masked_select",
            "unique": "aten._unique2", "item": "aten._local_scalar_dense"}[kind]
    ops = interpret.aten_ops(g)
    assert call in ops and "aten.zeros" not in ops  # the call, not how it was run on meta tensors


def test_check_outputs_allows_only_the_rank_to_vary():
    g = rewritten("masked_select", "float32")
    node = next(n for n in g.nodes if n.extra.get("data_dependent") == "shape")
    name = node.outputs[0]
    interpret.check_outputs(g, node, {name: torch.zeros(7)})
    with pytest.raises(interpret.NodeError):
        interpret.check_outputs(g, node, {name: torch.zeros(7, 1)})
    node.extra.pop("data_dependent")
    with pytest.raises(interpret.NodeError):
        interpret.check_outputs(g, node, {name: torch.zeros(7)})


def test_item_argument_is_a_read_of_its_tensor():
    g = rewritten("item", "float32")
    node = next(n for n in g.nodes if n.extra.get("datadep") == "item")
    scalar = node.args[1]["args"][0]["ref"]
    assert scalar in node.inputs()  # the reducer and prune see the read inside the made call
    assert node in g.consumers(scalar)


@pytest.fixture(scope="module")
def datadep_models():
    warnings.filterwarnings("ignore")
    cfg = GenConfig(nodes=6, policy=ModelPolicy(form="forms"))
    rs = load_ruleset()
    found = []
    for i in range(40):
        m = generate_model_for_index(rs, cfg, 5, i)
        if set(m.graph.meta.get("forms") or []) & set(KINDS):  # compile_settings alone: a scan may set it too
            found.append((i, m))
        if len(found) == 3:
            break
    return found


def test_generated_forms_models_hold_datadep_chains_that_run(datadep_models):
    assert len(datadep_models) == 3
    for i, m in datadep_models:
        assert set(m.graph.meta["forms"]) & set(KINDS)
        # every chain the rewrite placed survived the value search and the guard run
        placed = [k for k in m.graph.meta["forms"] if k in KINDS]
        assert sorted(n.extra["datadep"] for n in m.graph.nodes if "datadep" in n.extra) == sorted(placed)
        module = program.build_module(m.graph, m.state)
        outs = program.run_eager(module, [t.clone() for t in m.inputs])
        for name, out in zip(m.graph.outputs, outs):
            assert list(out.shape) == m.graph.tensors[name].shape  # every output's shape is static
    i, first = datadep_models[0]
    again = generate_model_for_index(load_ruleset(), GenConfig(nodes=6, policy=ModelPolicy(form="forms")), 5, i)
    assert again.graph.to_json() == first.graph.to_json()


def test_grown_operators_never_read_a_value_sized_tensor():
    """A guided campaign's ``grow`` mutant solves new rules on the seed's dims: never on a size that
    only zeros gave (the values decide it), which the value search would then contradict."""
    import random

    from fuzz.gen.mutate import grow

    grown = 0
    for seed in range(12):
        g = rewritten("masked_select", "float32")
        sized = {o for n in g.nodes if n.extra.get("data_dependent") == "shape" for o in n.outputs}
        for t in sized:  # as zeros record it under a mask they fill (threshold -0.5): 20 elements
            g.tensors[t].shape = [20]
        before = len(g.nodes)
        grown += grow(g, random.Random(seed), 3, GenConfig(nodes=6)) > 0
        assert not any(sized & set(n.inputs()) for n in g.nodes[before:])
    assert grown  # it did grow
