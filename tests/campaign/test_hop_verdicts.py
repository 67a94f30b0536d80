"""Programs with higher-order operators (fuzz.gen.hop_forms) judged by a real Session under real
torch.compile: outputs are compared as values, not as two implementations' layouts, and a program
torch's own operator rejects is invalid, not a compiler crash (the first forms campaign, seed 161,
saved both kinds as failures)."""

import random
import warnings

import pytest
import torch

from fuzz.campaign.oracle import classify_exception
from fuzz.campaign.session import Session
from fuzz.campaign.verdict import Kind
from fuzz.campaign.worker import load_model
from fuzz.gen import hop_fns, program
from fuzz.gen.chooser import RandomChooser
from fuzz.gen.hop_forms import place_hop
from fuzz.ir.graph import Graph, Node


def _session(g: Graph, tmp_path, seed: int = 0) -> Session:
    gen = torch.Generator().manual_seed(seed)
    inputs = {i: torch.randn(g.tensors[i].shape, generator=gen) for i in g.inputs}
    program.save_program(g, (inputs, {}), tmp_path)
    return Session(load_model({"source": {"program_dir": str(tmp_path)}}), "cpu")


def _permuted_source(shape, perm) -> Graph:
    """x -> tanh -> permute: the operator then reads a non-contiguous tensor."""
    g = Graph()
    x = g.add_tensor(shape, "float32", "input", name="x_0")
    t = g.add_tensor(shape, "float32", name="tanh_1")
    g.add_node(Node(id="n0", op="torch.tanh", api="function", args=[{"ref": x}], kwargs={}, outputs=[t]))
    p = g.add_tensor([shape[k] for k in perm], "float32", name="permute_2")
    g.add_node(Node(id="n1", op="torch.permute", api="function", args=[{"ref": t}, list(perm)], kwargs={}, outputs=[p]))
    g.outputs = [p]
    return g


@pytest.mark.parametrize("kind", ["scan", "while_loop", "associative_scan"])
def test_operators_on_permuted_tensors_pass_in_fwd_and_dynamic(kind, tmp_path):
    """A loop's output layout is its implementation's (a Python loop keeps a permuted carry's
    strides, the compiled loop makes it contiguous): the programs' outputs are contiguous both ways
    and the verdict is about values."""
    warnings.filterwarnings("ignore")
    g = _permuted_source([3, 4, 5, 2], (2, 0, 3, 1))
    assert place_hop(g, 1, kind, RandomChooser(random.Random(4)))
    session = _session(g, tmp_path)
    for mode in ("fwd", "dynamic"):
        v = session.run_test("aot_eager", mode)
        assert v.kind == Kind.PASS, (mode, v.detail, v.diff, v.error)
    made = len(g.nodes[-1].outputs)  # the operator's outputs end the program's outputs
    eager = program.run_eager(session.model.module, session.model.inputs)[-made:]
    assert all(t.is_contiguous() for t in eager)


def test_a_scan_torch_rejects_is_invalid_not_a_crash(tmp_path):
    """scan requires its init and carry to agree in strides; an expanded init breaks that. The
    eager equivalent runs it, torch's operator (eager and compiled alike) raises
    UncapturedHigherOrderOpError: the test is invalid."""
    warnings.filterwarnings("ignore")
    from torch._higher_order_ops import scan

    xs, init = torch.randn(4, 6), torch.randn(1).expand(6)
    with pytest.raises(torch._dynamo.exc.UncapturedHigherOrderOpError):
        scan(hop_fns.scan_product_gate, init, xs, dim=0)  # torch's own eager operator rejects it
    g = Graph()
    x = g.add_tensor([4, 6], "float32", "input", name="x_0")
    one = g.add_tensor([1], "float32", "input", name="one_1")
    e = g.add_tensor([6], "float32", name="expand_2")
    g.add_node(Node(id="n0", op="torch.Tensor.expand", api="function", args=[{"ref": one}, [6]], kwargs={},
                    outputs=[e]))
    c, ys = g.add_tensor([6], "float32", name="scan_3"), g.add_tensor([4, 6], "float32", name="scan_4")
    g.add_node(Node(id="n1", op="torch._higher_order_ops.scan", api="function",
                    args=[{"fn": hop_fns.PREFIX + "scan_product_gate"}, {"ref": e}, {"ref": x}],
                    kwargs={"dim": 0, "reverse": False}, outputs=[c, ys], extra={"returns": [c, ys]}))
    g.outputs = [c, ys]
    v = _session(g, tmp_path).run_test("aot_eager", "fwd")
    assert v.kind == Kind.INVALID, (v.detail, v.error)
    assert v.error["type"].endswith("UncapturedHigherOrderOpError")


def test_classify_exception_keeps_crashes_crashes():
    assert classify_exception("torch._dynamo.exc.UncapturedHigherOrderOpError", "Expected init and carry") == Kind.INVALID
    assert classify_exception("torch._dynamo.exc.BackendCompilerFailed", "scan might be aliasing") == Kind.CRASH
    assert classify_exception("RuntimeError", "DefaultCPUAllocator: can't allocate memory") == Kind.OOM


def test_half_the_scan_models_compile_with_the_scalar_capture_flag_and_pass(tmp_path):
    """The flag a scan or map model records (graph.meta["compile_settings"]) is set around its
    compile: the inductor lowering behind the default settings' failure is then tested too."""
    from fuzz.gen.datadep import META_KEY
    from fuzz.gen.hop_forms import LOWERING_SETTINGS

    flagged = []
    for seed in range(12):
        g = _permuted_source([3, 4, 5, 2], (2, 0, 3, 1))
        assert place_hop(g, 1, "scan", RandomChooser(random.Random(seed)))
        if g.meta.get(META_KEY) == LOWERING_SETTINGS:
            flagged.append(g)
    assert 2 <= len(flagged) <= 10
    v = _session(flagged[0], tmp_path).run_test("inductor", "fwd")
    assert v.kind == Kind.PASS, (v.detail, v.error)
    assert not torch._dynamo.config.capture_scalar_outputs  # restored after the test
