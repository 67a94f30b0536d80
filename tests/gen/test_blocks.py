"""Model-shaped programs (form "blocks") on the shipped rules: block ops placed on each other's
outputs, the mix recorded, valid eagerly and under torch.compile, deterministic."""

import warnings

import pytest
import torch

from fuzz.gen import program
from fuzz.gen.blocks import BLOCKS
from fuzz.gen.config import GenConfig
from fuzz.gen.generate import generate_model_for_index
from fuzz.gen.policy import ModelPolicy
from fuzz.gen.ruleset import load_ruleset

BLOCKS_CFG = GenConfig(nodes=10, policy=ModelPolicy(form="blocks"))


@pytest.fixture(scope="module")
def shipped():
    return load_ruleset()


@pytest.fixture(scope="module")
def block_models(shipped):
    warnings.filterwarnings("ignore")
    return [generate_model_for_index(shipped, BLOCKS_CFG, 11, i) for i in range(8)]


def test_block_mix_is_recorded_and_valid(block_models):
    seen = set()
    for m in block_models:
        names = m.graph.meta["blocks"]
        assert names and set(names) <= set(BLOCKS)
        seen.update(names)
        assert m.graph.meta["policy"]["form"] == "blocks"
        module = program.build_module(m.graph, m.state)
        program.run_eager(module, [t.clone() for t in m.inputs])
    assert len(seen) >= 5


def test_blocks_chain_on_each_other(block_models):
    """An attention block reads its own transpose: some matmul reads a transpose's output; an
    activation reads a linear/matmul/conv output (the step order of a block)."""
    chained = 0
    for m in block_models:
        producer = {o: n for n in m.graph.nodes for o in n.outputs}
        for n in m.graph.nodes:
            srcs = [producer[i].op for i in n.inputs() if i in producer]
            if "matmul" in n.op and any("transpose" in s for s in srcs):
                chained += 1
    assert chained >= 1


def test_blocks_are_deterministic(shipped):
    a = generate_model_for_index(shipped, BLOCKS_CFG, 5, 3)
    b = generate_model_for_index(shipped, BLOCKS_CFG, 5, 3)
    assert a.graph.to_json() == b.graph.to_json()


def test_random_form_has_no_blocks(shipped):
    m = generate_model_for_index(shipped, GenConfig(nodes=6), 5, 3)
    assert "blocks" not in m.graph.meta


def test_block_models_compile(block_models):
    """aot_eager runs every block model and matches eager (fp32 tolerance on fp32 outputs)."""
    torch._dynamo.reset()
    for m in block_models[:3]:
        module = program.build_module(m.graph, m.state)
        expected = program.run_eager(module, [t.clone() for t in m.inputs])
        compiled = torch.compile(module, backend="aot_eager")
        with torch.no_grad():
            got = compiled(*[t.clone() for t in m.inputs])
        for e, g in zip(expected, got):
            if e.dtype == torch.float32 and e.isfinite().all():
                torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-4)
