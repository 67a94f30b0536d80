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
