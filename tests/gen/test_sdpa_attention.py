"""scaled_dot_product_attention in the attention block: the shipped rules hold it (recorded by the
tracer through its OpInfo, dropout 0 only, held back from the random form), attention blocks call
it on q = k = v and the models run eagerly and under torch.compile; without its rule the block is
q @ k^T, softmax, @ v as before."""

import dataclasses
import warnings

import pytest
import torch

from fuzz.gen import program
from fuzz.gen.config import GenConfig
from fuzz.gen.deny import without_dropout
from fuzz.gen.generate import generate_model_for_index
from fuzz.gen.policy import ModelPolicy
from fuzz.gen.ruleset import RuleSet, load_ruleset

SDPA = "torch.nn.functional.scaled_dot_product_attention"
CFG = GenConfig(nodes=8, policy=ModelPolicy(form="blocks"))


@pytest.fixture(scope="module")
def shipped():
    return load_ruleset()


def test_shipped_rules_hold_sdpa_without_dropout(shipped):
    infos = shipped.held_back[SDPA]
    assert SDPA not in shipped.by_op  # never drawn by the random form
    assert any(i.rule.status == "symbolic" for i in infos)
    assert all(f == [0.0] for i in infos for f in i.rule.floats)
    assert all(e["floats"] == [0.0] for i in infos for e in i.rule.examples)
    rule = infos[0].rule
    assert without_dropout(dataclasses.replace(rule, floats=[[0.5]], examples=[])) is None


def _sdpa_lines(m) -> list[str]:
    return [line.strip() for line in program.program_source(m.graph).splitlines() if SDPA + "(" in line]


def test_attention_blocks_call_sdpa_and_compile(shipped):
    warnings.filterwarnings("ignore")
    found = []
    for i in range(12):
        m = generate_model_for_index(shipped, CFG, 1, i)
        if _sdpa_lines(m):
            found.append(m)
    assert len(found) >= 2
    calls = [line.split("(", 1)[1].split(", ") for m in found for line in _sdpa_lines(m)]
    assert all("dropout_p=0.0" in ", ".join(c) for c in calls)  # never random
    assert any(c[0] == c[1] == c[2] for c in calls)  # self-attention on the block input (else new k, v inputs)
    for m in found[:2]:
        torch._dynamo.reset()
        expected = program.run_eager(program.build_module(m.graph, m.state), [t.clone() for t in m.inputs])
        with torch.no_grad():
            got = torch.compile(program.build_module(m.graph, m.state), backend="aot_eager")(*[t.clone() for t in m.inputs])
        for e, g in zip(expected, got):
            if e.is_floating_point():
                torch.testing.assert_close(g, e, rtol=1e-3, atol=1e-3, equal_nan=True)
            else:
                assert torch.equal(g, e)


def test_without_the_rule_attention_is_matmul_softmax(shipped):
    warnings.filterwarnings("ignore")
    rules = [info.rule for infos in list(shipped.by_op.values()) + list(shipped.held_back.values()) for info in infos
             if info.rule.op != SDPA]
    bare = RuleSet(rules)
    assert SDPA not in bare.held_back
    seen_attention = False
    for i in range(12):
        m = generate_model_for_index(bare, CFG, 1, i)
        assert not _sdpa_lines(m)
        if "attention" in m.graph.meta["blocks"]:
            seen_attention = True
            ops = [n.op for n in m.graph.nodes]
            assert any("softmax" in o for o in ops) or any("matmul" in o or "bmm" in o for o in ops)
    assert seen_attention


def test_tracer_records_sdpa_calls_through_its_opinfo(tmp_path):
    """The OpInfo's callable is a lambda: the tracer records its samples as calls of the public
    function (``fuzz.tracing.sources.PUBLIC_TWINS``), the records the shipped sdpa rules come from."""
    from fuzz.tracing import collect, load_corpus

    collect(str(tmp_path), seed=0, ops=["nn.functional.scaled_dot_product_attention"], max_samples=2,
            extra_samples=0, workers=1, progress=False)
    calls = [r for r in load_corpus(str(tmp_path)) if r.kind == "function" and r.op == SDPA]
    assert any(r.ok and r.source == "opinfo" for r in calls)
