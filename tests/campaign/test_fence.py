"""Fenced inputs (``fuzz.campaign.fence``): a compiled kernel that reads past its input reads NaN
on every run, so the test, the reducer and the repro all see the same failure."""

import pytest
import torch
from case_helpers import run_repros, write_case
from test_oracle import fn_node, ref, session_for

from fuzz.campaign.fence import FENCE, fenced
from fuzz.ir.graph import Graph


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.complex64,
                                   torch.int8, torch.uint8, torch.int32, torch.int64, torch.bool])
@pytest.mark.parametrize("shape", [(2, 3, 4), (5,), (), (0, 3)])
def test_a_fenced_copy_holds_the_values_with_sentinels_around_them(dtype, shape):
    t = (torch.arange(max(1, torch.Size(shape).numel())).reshape(-1)[: torch.Size(shape).numel()] % 3).reshape(shape)
    t = t.to(dtype)
    f = fenced(t)
    assert f.shape == t.shape and f.dtype == t.dtype and torch.equal(f, t)
    assert f._base is None and f.is_contiguous() and f.storage_offset() == FENCE
    assert FENCE * t.element_size() % 16 == 0  # still aligned for inductor: no other code path
    whole = torch.empty(0, dtype=dtype).set_(f.untyped_storage())

    def sentinels_intact():
        around = torch.cat([whole[:FENCE], whole[FENCE + t.numel():]])
        if dtype.is_floating_point or dtype.is_complex:
            return around.numel() == 2 * FENCE and bool(around.isnan().all())
        if dtype == torch.bool:
            return around.numel() == 2 * FENCE and bool(around.all())
        return around.numel() == 2 * FENCE and bool((around == torch.iinfo(dtype).max).all())

    assert sentinels_intact()
    f.logical_not_() if dtype == torch.bool else f.add_(1)  # a write into the input stays inside it
    assert sentinels_intact() and (t.numel() == 0 or not torch.equal(f, t))


def test_a_read_one_past_the_input_gives_nan():
    f = fenced(torch.ones(2, 3))
    assert torch.as_strided(f, (7,), (1,))[:6].eq(1).all() and torch.as_strided(f, (7,), (1,))[6].isnan()


def _pool_then_broadcast() -> tuple[Graph, dict]:
    """max_pool2d(x[2, 3, 4], 2) + y[2, 1]: the pooled dim of size 1 broadcast against 2."""
    g = Graph()
    x = g.add_tensor([2, 3, 4], "float32", "input", name="x")
    y = g.add_tensor([2, 1], "float32", "input", name="y")
    p = fn_node(g, "n0", "torch.nn.functional.max_pool2d", [ref(x), 2], [2, 1, 2])
    g.outputs = [fn_node(g, "n1", "torch.add", [ref(p), ref(y)], [2, 2, 2])]
    return g, {"x": torch.arange(24.0).reshape(2, 3, 4) / 7, "y": torch.zeros(2, 1)}


def test_an_inductor_read_past_its_input_fails_the_same_way_every_run(tmp_path):
    """torch 2.13's inductor, under dynamic shapes, does not broadcast the size-1 pooled dim: it
    evaluates a pooling window past the end of x (docs/bugs-found.md). Unfenced, what it read was
    whatever lay beside x (the seventh session's case failed only sometimes); fenced, it reads NaN
    in every run, the test is a `nonfinite` mismatch each time and the saved repro fails in a fresh
    process. The static compile of the same model passes: the fence alone makes no difference."""
    g, vals = _pool_then_broadcast()
    for k in range(2):
        v = session_for(tmp_path / f"run{k}", g, vals).run_test("inductor", "dynamic")
        assert (v.kind.value, v.detail, v.diff["where"], v.diff["compiled"] != v.diff["compiled"]) == \
            ("mismatch", "nonfinite", "out0", True), v
    assert session_for(tmp_path / "static", g, vals).run_test("inductor", "fwd").kind.value == "pass"
    case = write_case(tmp_path / "cases", "oob", "inductor", "mismatch", detail="nonfinite", mode="dynamic",
                      program=(g, vals))
    assert "fenced(" in (case / "repro.py").read_text()
    runs = run_repros([case, case])
    assert [r.returncode for r in runs] == [1, 1], [r.stdout[-500:] + r.stderr[-500:] for r in runs]


def test_a_model_reading_the_storage_offset_is_not_fenced(tmp_path):
    """as_strided(x, size, stride, storage_offset) counts from the start of the storage: fenced, eager
    would read the sentinels and nothing there could be judged. Such a model runs unfenced, in the
    campaign and in its repro; any other model keeps the fence."""
    from fuzz.campaign.fence import fence_for

    g = Graph()
    x = g.add_tensor([2, 3], "float32", "input", name="x")
    g.outputs = [fn_node(g, "n0", "torch.as_strided", [ref(x), [2, 2], [3, 1], 1], [2, 2])]
    vals = {"x": torch.arange(6.0).reshape(2, 3)}
    assert fence_for(g) == 0 and fence_for(_pool_then_broadcast()[0]) == FENCE
    s = session_for(tmp_path / "strided", g, vals)
    assert s.fence == 0 and not s.sensitive
    assert s.run_test("aot_eager", "fwd").kind.value == "pass"
    case = write_case(tmp_path / "cases", "strided", "aot_eager", "mismatch", detail="values", program=(g, vals))
    assert "FENCE = 0 " in (case / "repro.py").read_text()
    assert [r.returncode for r in run_repros([case])] == [0]  # eager and aot_eager agree: not reproduced
