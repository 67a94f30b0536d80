"""The value search's per-call cost limits (fuzz.gen.cost): a call that would take seconds is
dropped like a failing one, and calls at ordinary sizes are kept."""

from __future__ import annotations

from fuzz.gen import cost, program
from fuzz.gen.config import GenConfig
from fuzz.gen.materialise import materialise
from fuzz.ir.graph import Graph, Node


def _multilabel_then_cos(classes: int) -> Graph:
    g = Graph()
    x = g.add_tensor([1, classes], "float32", "input", name="scores_0")
    t = g.add_tensor([1, classes], "int64", "input", name="labels_1")
    loss = g.add_tensor([], "float32", name="loss_2")
    y = g.add_tensor([], "float32", name="cos_3")
    g.add_node(Node(id="n0", op="torch.nn.functional.multilabel_margin_loss", api="function",
                    args=[{"ref": x}, {"ref": t}], kwargs={}, outputs=[loss]))
    g.add_node(Node(id="n1", op="torch.cos", api="function", args=[{"ref": loss}], kwargs={}, outputs=[y]))
    g.outputs = [y]
    return g


def test_a_call_whose_estimated_work_is_over_the_limit_is_dropped_without_being_made():
    # 1 * 20000^2 = 4e8 steps (about 0.4 s of one core), over WORK_LIMIT: refused from the shapes
    model = materialise(_multilabel_then_cos(20_000), seed=0, cfg=GenConfig())
    assert model.graph.ops() == ["torch.cos"]
    reason = model.graph.meta["guard"]["reasons"][0]
    assert "too slow" in reason and "not called" in reason
    program.run_eager(program.build_module(model.graph, model.state), model.inputs)
    # the same operator at an ordinary size is kept
    small = materialise(_multilabel_then_cos(64), seed=0, cfg=GenConfig())
    assert small.graph.ops() == ["torch.nn.functional.multilabel_margin_loss", "torch.cos"]
    assert small.graph.meta["guard"]["dropped"] == 0


def _mm_and_cos() -> Graph:
    g = Graph()
    a = g.add_tensor([640, 640], "float32", "input", name="a_0")
    b = g.add_tensor([640, 640], "float32", "input", name="b_1")
    c = g.add_tensor([4], "float32", "input", name="c_2")
    p = g.add_tensor([640, 640], "float32", name="mm_3")
    y = g.add_tensor([4], "float32", name="cos_4")
    g.add_node(Node(id="n0", op="torch.mm", api="function", args=[{"ref": a}, {"ref": b}], kwargs={}, outputs=[p]))
    g.add_node(Node(id="n1", op="torch.cos", api="function", args=[{"ref": c}], kwargs={}, outputs=[y]))
    g.outputs = [p, y]
    return g


def test_a_call_that_took_more_cpu_than_the_limit_is_dropped(monkeypatch):
    # at the real limit nothing of this size is refused (this first run also pays any one-off
    # imports, which the timer would not judge)
    kept = materialise(_mm_and_cos(), seed=0, cfg=GenConfig())
    assert kept.graph.ops() == ["torch.mm", "torch.cos"]
    # a 640^3 product is ~0.5 GFLOP, milliseconds of CPU; cos of 4 elements, microseconds
    monkeypatch.setattr(cost, "CALL_CPU_LIMIT_S", 0.002)
    model = materialise(_mm_and_cos(), seed=0, cfg=GenConfig())
    assert "torch.mm" not in model.graph.ops() and "torch.cos" in model.graph.ops()
    assert any("s of CPU for one call" in r for r in model.graph.meta["guard"]["reasons"])


def test_a_call_that_imported_modules_is_not_judged_by_its_time(monkeypatch):
    """The first call of a custom operator in a process imports torch._dynamo (1-2 s of CPU): a
    one-off cost of the process, which must not drop the operator from the first model using it."""
    import importlib
    import sys
    import time

    def busy(seconds: float) -> None:
        t0 = time.process_time()
        while time.process_time() - t0 < seconds:
            pass

    monkeypatch.setattr(cost, "CALL_CPU_LIMIT_S", 0.01)
    with cost.CallTimer() as plain:
        busy(0.03)
    assert plain.too_slow() is not None and "s of CPU for one call" in plain.too_slow()
    fresh = next(m for m in ("colorsys", "tabnanny", "wave", "mailbox", "plistlib") if m not in sys.modules)
    with cost.CallTimer() as importing:
        importlib.import_module(fresh)
        busy(0.03)
    assert importing.imported and importing.too_slow() is None
