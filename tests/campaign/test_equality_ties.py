"""Exact equality of computed float16 values that are equal up to rounding is not judged
(fuzz.campaign.equality_ties: the twenty-seventh session's isin false alarm), while an equality on
the model's own inputs, or of computed values far apart, stays judged exactly."""

import torch

from fuzz.campaign import oracle
from fuzz.campaign.equality_ties import _least_precise, near_equal_pairs
from fuzz.ir.graph import Graph

from tests.campaign.test_edge_oracle import call, session_for

N = 64


def _sums():
    """float16 x, y, w and a z that equals x + y + w rounded once (as inductor rounds it, in float32
    then stored) wherever eager's two roundings give another number, and is far off elsewhere, so
    eager's equality is False everywhere and inductor's True at those elements."""
    torch.manual_seed(0)
    x, y, w = (torch.randn(N).half() for _ in range(3))
    once = (x.float() + y.float() + w.float()).half()
    twice = (x + y) + w
    z = torch.where((once != twice) & ~torch.isin(once, twice), once, once + 64)
    return x, y, w, z, int(torch.isin(once, z).sum())


def _graph(op: str, lhs_computed: bool = True) -> Graph:
    g = Graph()
    for n in ("x", "y", "w", "z"):
        g.add_tensor([N], "float16", "input", name=n)
    lhs = "x"
    if lhs_computed:
        a = call(g, "n0", "torch.add", [{"ref": "x"}, {"ref": "y"}], [N], "float16")
        lhs = call(g, "n1", "torch.add", [{"ref": a}, {"ref": "w"}], [N], "float16")
    g.outputs = [call(g, "n2", op, [{"ref": lhs}, {"ref": "z"}], [N], "bool")]
    return g


def test_inductor_rounding_a_sum_once_makes_values_equal_that_eager_does_not():
    x, y, w, z, flips = _sums()
    assert flips > 0

    def f(x, y, w, z):
        return torch.isin((x + y) + w, z)

    assert not bool(f(x, y, w, z).any())
    assert int(torch.compile(f, backend="inductor")(x, y, w, z).sum()) == flips


def test_an_equality_of_computed_floats_equal_up_to_rounding_is_not_judged(tmp_path):
    x, y, w, z, _ = _sums()
    for op in ("torch.isin", "torch.eq"):
        s = session_for(tmp_path, _graph(op), {"x": x, "y": y, "w": w, "z": z}, op)
        assert "equal up to rounding" in s.fwd_ref.skip["out0"], s.fwd_ref.skip
        v = s.run_test("inductor", "fwd")
        assert v.kind == "pass", (op, v.detail, v.diff)


def test_an_equality_on_inputs_or_of_values_far_apart_stays_judged(tmp_path):
    x, y, w, z, _ = _sums()
    s = session_for(tmp_path, _graph("torch.isin", lhs_computed=False), {"x": x, "y": y, "w": w, "z": z}, "leaves")
    assert "out0" not in s.fwd_ref.skip  # inputs are the same bits in every run
    far = z + 8  # no element of x + y + w is near any of z's
    s = session_for(tmp_path, _graph("torch.eq"), {"x": x, "y": y, "w": w, "z": far}, "far")
    assert "out0" not in s.fwd_ref.skip
    assert s.run_test("inductor", "fwd").kind == "pass"
    wrong = s.fwd_ref.eager[0].clone()
    wrong[5] = ~wrong[5]  # a planted flip is a mismatch
    j = oracle.judge(s.fwd_ref, [wrong])
    assert j.kind == "mismatch" and j.diff["index"] == [5]


def test_near_equal_pairs_compares_elementwise_or_against_every_test_element():
    a, b = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([3.0004, 5.0, 7.0])
    assert near_equal_pairs("isin", a, b, 2e-3)  # 3.0 is near b's first element
    assert not near_equal_pairs("eq", a, b, 2e-3)  # compared position by position: none near
    assert near_equal_pairs("eq", a, 2.0001, 2e-3)  # a Python number broadcasts
    assert not near_equal_pairs("isin", torch.tensor([float("inf"), float("nan")]), torch.tensor([float("inf")]), 2e-3)


def test_the_tolerance_follows_the_least_precise_operand():
    half, single = torch.zeros(2, dtype=torch.float16), torch.zeros(2)
    assert _least_precise([single, half]) == "float16" and _least_precise([half, single]) == "float16"
    assert _least_precise([single, 0.5]) == "float32" and _least_precise([torch.zeros(2, dtype=torch.int64), 1]) is None
