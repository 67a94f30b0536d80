"""export and aoti: an op whose output or output shape depends on values is export's documented
limit (``unsupported``), while any other exception during export stays a crash.

Found in the ninth session's campaign (--backends inductor,export): ``torch.corrcoef`` of a
float16 [1] tensor makes export raise ``DataDependentOutputException: aten.equal.default`` and
``CTCLoss`` ``DynamicOutputShapeException: aten._ctc_loss.default``; both were saved as crashes.
``torch.func.jacfwd(torch.sin)`` under export raises an ``AttributeError``: a crash, kept.
"""

import torch
from test_oracle import fn_node, ref, session_for

from fuzz.campaign.session import _unsupported
from fuzz.ir.graph import Graph


def test_corrcoef_under_export_is_unsupported_not_a_crash(tmp_path):
    g = Graph()
    x = g.add_tensor([1], "float16", "input", name="x")
    g.outputs = [fn_node(g, "n0", "torch.corrcoef", [ref(x)], [], dtype="float16")]
    s = session_for(tmp_path, g, {"x": torch.tensor([0.5], dtype=torch.float16)})
    v = s.run_test("export", "fwd")
    assert v.kind == "unsupported", (v.kind, v.detail, v.error)
    assert "DataDependentOutputException" in v.error["type"] + v.error["message"]
    assert s.run_test("aot_eager", "fwd").kind == "pass"  # torch.compile itself handles it


def test_only_the_value_dependence_exceptions_are_export_limits():
    assert _unsupported({"type": "DynamicOutputShapeException", "message": "aten._ctc_loss.default"})
    assert _unsupported({"type": "torch._subclasses.fake_tensor.DataDependentOutputException",
                         "message": "aten.equal.default"})
    assert not _unsupported({"type": "AttributeError", "message": "'Tensor' object has no attribute 'constant'"})
    assert not _unsupported({"type": "RuntimeError", "message": "Index put requires the source and destination "
                                                                "dtypes match"})


def test_an_aoti_second_call_at_a_size_export_specialised_is_declined_not_run(tmp_path):
    # Found in the tenth session's aoti campaign: export specialises a size-1 dim; AOTInductor ran the
    # second call at size 2 anyway (its input checks are off unless AOTI_RUNTIME_CHECK_INPUTS=1) and
    # returned a [1] result for a [2] input: saved as a shape mismatch, a misuse and not a bug.
    g = Graph()
    x = g.add_tensor([1], "int64", "input", name="x")
    g.outputs = [fn_node(g, "n0", "torch.bitwise_not", [ref(x)], [1], dtype="int64")]
    s = session_for(tmp_path, g, {"x": torch.tensor([5])})
    v = s.run_test("aoti", "dynamic")
    assert v.kind == "pass", (v.kind, v.detail, v.diff)
    # refused by the exported program's own guards (checked first), else by AOTInductor's input check
    assert any(m in v.second_call["declined"].lower() for m in ("guard failed", "unmatched dim value")), v.second_call


def test_an_aoti_second_call_that_breaks_a_guard_relating_sizes_is_declined_not_run(tmp_path):
    # Found in the twenty-eighth session's aoti campaign (s2803-m000288): LPPool2d(1, 2, 2) exported
    # at [3, 3, 3] guards x.size(2) // 2 == 1 (its pooled dims came out 1); AOTInductor's input check
    # tests each size against its range only, so it ran the second call at [4, 4, 4] with the size-1
    # kernel and 10 of 16 values were wrong: a call the exported program refuses, not a bug
    g = Graph()
    x = g.add_tensor([3, 3, 3], "float32", "input", name="x")
    g.outputs = [fn_node(g, "n0", "torch.nn.functional.lp_pool2d", [ref(x), 1, 2, 2], [3, 1, 1])]
    s = session_for(tmp_path, g, {"x": torch.arange(27.0).reshape(3, 3, 3)})
    v = s.run_test("aoti", "dynamic")
    assert v.kind == "pass", (v.kind, v.detail, v.diff)
    assert "guard failed" in v.second_call["declined"].lower(), v.second_call


def test_an_aoti_second_call_of_a_model_that_updates_a_buffer_is_declined():
    # Found in the tenth session's aoti campaign: AOTInductor keeps the running buffer its first call
    # updated (lerp_) and it cannot be put back, so the second call saw it updated twice while its
    # reference started from the saved state: saved as a values mismatch
    import tempfile
    from pathlib import Path

    from conftest import running_buffer_graph

    g, _, _, _ = running_buffer_graph([3, 5], 5)
    with tempfile.TemporaryDirectory() as tmp:
        s = session_for(Path(tmp), g, {"x": torch.rand(3, 5), "stat": torch.rand(5), "running": torch.rand(5)})
        v = s.run_test("aoti", "dynamic")
        assert v.kind == "pass", (v.kind, v.detail, v.diff)
        assert "cannot be restored" in v.second_call["declined"], v.second_call
        assert s.run_test("inductor", "dynamic").kind == "pass"  # its buffers are put back: judged


def test_an_exported_program_returning_a_fake_tensor_is_a_mismatch_not_an_oracle_error(tmp_path):
    # Found in the fourteenth session's complex64 export/aoti campaign: ``torch.func.grad(torch.prod)``
    # in forward makes export lift a constant made while tracing autograd, still a FakeTensor
    # (pytorch/pytorch#146719), and the exported module returns it. Reading it raised
    # GuardOnDataDependentSymNode inside the oracle (four "oracle errors"); a FakeTensor output
    # whose values nothing read would have passed.
    g = Graph()
    x = g.add_tensor([2, 3], "float32", "input", name="x")
    transform = {"call": "torch.func.grad", "args": [{"fn": "torch.prod"}], "kwargs": {}}
    g.outputs = [fn_node(g, "n0", "operator.call", [transform, ref(x)], [2, 3])]
    s = session_for(tmp_path, g, {"x": torch.randn(2, 3, generator=torch.Generator().manual_seed(0))})
    v = s.run_test("export", "fwd")
    assert v.kind == "mismatch", (v.kind, v.detail, v.error)
    assert v.diff["got"] == "FakeTensor on cpu (no data)", v.diff
    assert s.run_test("aot_eager", "fwd").kind == "pass"  # torch.compile computes the gradient


def test_export_core_runs_the_core_aten_program_and_export_saved_a_program_read_back(tmp_path):
    """``export_core`` returns the program lowered to core ATen (``linear`` decomposed into a
    transpose and ``addmm``), ``export_saved`` one that went through ``torch.export.save``/``load``
    (its weights are copies read back, not the model's); both compute what eager does, and both
    treat a value-dependent output as export's documented limit, as ``export`` does. The core
    ATen program is the inference IR: no bwd test (``detach`` is lowered to a differentiable
    ``aten.alias``: two false alarms of the s26b campaign)."""
    from fuzz.campaign import backends

    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.GELU()).eval()
    x = torch.randn(2, 3)
    core = backends.get("export_core").compile_function()(model, [x])
    targets = {str(n.target) for n in core.graph.nodes if n.op == "call_function"}
    assert "aten.addmm.default" in targets and "aten.linear.default" not in targets, targets
    saved = backends.get("export_saved").compile_function()(model, [x])
    pointers = {p.data_ptr() for p in model.parameters()}
    assert not pointers & {t.data_ptr() for t in list(saved.parameters()) + list(saved.buffers())}
    with torch.no_grad():
        for fn in (core, saved):
            torch.testing.assert_close(fn(x), model(x))
    g = Graph()
    x16 = g.add_tensor([1], "float16", "input", name="x")
    g.outputs = [fn_node(g, "n0", "torch.corrcoef", [ref(x16)], [], dtype="float16")]
    s = session_for(tmp_path, g, {"x": torch.tensor([0.5], dtype=torch.float16)})
    for name in ("export_core", "export_saved"):
        assert s.run_test(name, "fwd").kind == "unsupported"
    # the inference IR is not differentiated through: a bwd test there is not run
    assert s.run_test("export_core", "bwd").kind == "unsupported"
