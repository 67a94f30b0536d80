"""Dtype themes (``ModelPolicy.dtype``) on the shipped rules: what a themed model holds."""

import pytest

from fuzz.gen.census import model_facts, shares, special_counts
from fuzz.gen.config import GenConfig
from fuzz.gen.generate import generate_model_for_index
from fuzz.gen.policy import LEGACY, ModelPolicy
from fuzz.gen.ruleset import cast_ops, load_ruleset, themed, with_stand_in
from fuzz.ir.rule import Rule

FLOATS = {"float16", "bfloat16", "float32", "float64"}


@pytest.fixture(scope="module")
def ruleset():
    return load_ruleset()


def _facts(ruleset, theme, n=6, seed=5):
    cfg = GenConfig(nodes=4, policy=ModelPolicy(dtype=theme))
    return [model_facts(generate_model_for_index(ruleset, cfg, seed, i)) for i in range(n)]


@pytest.mark.parametrize("theme", ["float16", "bfloat16"])
def test_float_theme_makes_every_float_tensor_that_dtype(ruleset, theme):
    facts = _facts(ruleset, theme)
    for f in facts:
        assert set(f["dtypes"]) & FLOATS <= {theme}, f
        assert f["policy"]["dtype"] == theme
    assert sum(theme in f["dtypes"] for f in facts) >= 5


@pytest.mark.parametrize("theme", ["int8", "uint8", "int16", "int32", "int64"])
def test_int_theme_holds_its_dtype_and_keeps_int64_indices(ruleset, theme):
    facts = _facts(ruleset, theme)
    assert sum(theme in f["dtypes"] for f in facts) >= 5
    other_ints = {"int8", "uint8", "int16", "int32"} - {theme}
    for f in facts:
        assert not set(f["dtypes"]) & (other_ints | {"float16", "bfloat16", "float64"}), f


def test_int8_stands_in_for_recorded_int32_and_uint8(ruleset):
    r = Rule("k", "torch.add", "function", None, {"args": [{"X": 0}, {"X": 1}], "kwargs": {}}, [1, 1], 0,
             "symbolic", dtypes=[[["int32", "int32"], ["int32"]], [["float32", "float32"], ["float32"]]],
             outputs=[["x0_0"]])
    assert [["int8", "int8"], ["int8"]] in with_stand_in(r, "int8").dtypes
    assert len(with_stand_in(r, "int8").dtypes) == 3
    assert themed(ruleset, "mix") is ruleset and themed(ruleset, "int8") is themed(ruleset, "int8")
    assert any(k[1] == "int8" for k in themed(ruleset, "int8").ops_taking)
    assert not any(k[1] == "int8" for k in ruleset.ops_taking)  # the tracer never recorded int8
    assert [["int16", "int16"], ["int16"]] in with_stand_in(r, "int16").dtypes
    # int16 was recorded for a few operators only (48 (operator, rank) entries against int32's 1,585)
    def taking(rs, dtype):
        return sum(len(v) for k, v in rs.ops_taking.items() if k[1] == dtype)
    assert taking(themed(ruleset, "int16"), "int16") > 10 * taking(ruleset, "int16")


def test_mixed_theme_mixes_dtypes(ruleset):
    facts = _facts(ruleset, "mixed")
    assert sum(len(f["dtypes"]) >= 2 for f in facts) >= 5
    casts = cast_ops(ruleset)
    assert "aten::_to_copy" in casts and "torch.relu" not in casts


def test_census_shares_and_special_counts():
    import torch

    assert special_counts(torch.tensor([float("nan"), -0.0, float("inf"), 1e-40, 3.4028235e38])) == {
        "nan": 1, "negzero": 1, "posinf": 1, "subnormal": 1, "extreme": 1}
    assert special_counts(torch.tensor([127, 0, -128], dtype=torch.int8)) == {"extreme": 2}
    facts = [{"dtypes": ["float16"], "policy": LEGACY.to_json(), "special_values": {}},
             {"dtypes": ["float16", "int64"], "policy": ModelPolicy(dtype="int64").to_json(), "special_values": {"nan": 2}}]
    got = shares(facts)
    assert got["dtype"] == {"float16": 1.0, "int64": 0.5}
    assert got["policy"]["dtype=mix"] == 0.5 and got["special_values"] == 0.5


def test_rule_sets_are_out_of_the_cyclic_collectors_reach():
    """A rule set lives as long as its process; a full collection that walks its million-odd
    objects stalls generation for over a second, so loading and theming freeze them (fresh
    process: the freeze is process-wide)."""
    import subprocess
    import sys

    code = """
import gc
from fuzz.gen.ruleset import load_ruleset, themed
rs = load_ruleset()
t = themed(rs, "int8")
tracked = {id(o) for o in gc.get_objects()}
assert gc.get_freeze_count() > 100000, gc.get_freeze_count()
held = [rs.by_op, t.by_op, rs.ops_taking, t.ops_taking] + [t.by_op[op] for op in t.ops[:50]]
print(sum(id(o) in tracked for o in held), len(held))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["0", "54"]
