"""A model whose unchecked indexing call is given an index out of range is not compiled at all:
its compiled code may write anywhere, so a crash or a signal would be a false alarm."""

import torch

from tests.campaign.test_oracle import fn_node, ref, session_for
from fuzz.ir.graph import Graph
from fuzz.ir.record import dtype_name


def _accumulate_into_empty():
    """The twentieth session's SIGSEGV (s2020-m000802): ``_unsafe_masked_index_put_accumulate`` of a
    zero-row tensor with masked-in index 0, which no row has; eager survived, inductor's worker died."""
    g = Graph()
    x = g.add_tensor([0, 2], "float32", "input", name="x")
    m = g.add_tensor([3, 2], "bool", "input", name="m")
    i = g.add_tensor([3, 1], "int64", "input", name="i")
    j = g.add_tensor([1, 2], "int64", "input", name="j")
    v = g.add_tensor([3, 2], "float32", "input", name="v")
    g.outputs = [fn_node(g, "n0", "torch._unsafe_masked_index_put_accumulate", [ref(x), ref(m), [ref(i), ref(j)], ref(v)],
                         [0, 2])]
    return g


def test_an_out_of_range_unchecked_write_is_not_compiled(tmp_path):
    vals = {"x": torch.zeros(0, 2), "m": torch.ones(3, 2, dtype=torch.bool), "i": torch.zeros(3, 1, dtype=torch.int64),
            "j": torch.zeros(1, 2, dtype=torch.int64), "v": torch.ones(3, 2)}
    s = session_for(tmp_path, _accumulate_into_empty(), vals)
    assert "masked_index_put_accumulate" in (s.undefined_indexing or "")
    for backend, mode in (("inductor", "fwd"), ("aot_eager", "bwd"), ("aot_eager", "dynamic")):
        v = s.run_test(backend, mode)
        assert v.kind == "skip" and "index out of range" in v.detail, (backend, mode, v)


def test_an_in_range_unchecked_write_is_compiled_and_judged(tmp_path):
    g = _accumulate_into_empty()
    g.tensors["x"].shape = [2, 2]
    g.tensors[g.outputs[0]].shape = [2, 2]
    vals = {"x": torch.zeros(2, 2), "m": torch.tensor([[True, False], [True, True], [False, True]]),
            "i": torch.tensor([[0], [1], [1]]), "j": torch.tensor([[0, 1]]), "v": torch.ones(3, 2)}
    s = session_for(tmp_path, g, vals)
    assert s.undefined_indexing is None
    assert s.run_test("aot_eager", "fwd").kind == "pass"


def test_a_batch_leaves_the_out_of_range_model_out(tmp_path):
    """In a batch job the model is not compiled with the others either: its test is the skip it
    gets alone, the in-range model's passes in the batch."""
    from fuzz.campaign import worker
    from tests.campaign.test_oracle import save

    bad = _accumulate_into_empty()
    good = _accumulate_into_empty()
    good.tensors["x"].shape = [2, 2]
    good.tensors[good.outputs[0]].shape = [2, 2]
    base = {"m": torch.ones(3, 2, dtype=torch.bool), "i": torch.zeros(3, 1, dtype=torch.int64),
            "j": torch.zeros(1, 2, dtype=torch.int64), "v": torch.ones(3, 2)}
    dirs = [save(tmp_path / "bad", bad, {**base, "x": torch.zeros(0, 2)}),
            save(tmp_path / "good1", good, {**base, "x": torch.zeros(2, 2)}),
            save(tmp_path / "good2", good, {**base, "x": torch.ones(2, 2)})]
    subs = [{"job": f"j{k}", "source": {"program_dir": str(d)},
             "tests": [{"test": f"t{k}", "backend": "aot_eager", "mode": "fwd"}]} for k, d in enumerate(dirs)]
    events = []
    worker.run_job({"job": "batch", "batch": subs}, events.append)
    verdicts = {e["test"]: e for e in events if e.get("event") == "verdict"}
    assert verdicts["t0"]["kind"] == "skip" and "index out of range" in verdicts["t0"]["detail"]
    assert verdicts["t1"]["kind"] == verdicts["t2"]["kind"] == "pass"


def _ctc(labels):
    """``ctc_loss`` of log-softmaxed scores (T=6, N=2, C=4) against padded labels ``[2, 3]``."""
    g = Graph()
    lp = g.add_tensor([6, 2, 4], "float32", "input", name="scores")
    t = g.add_tensor([2, 3], dtype_name(labels.dtype), "input", name="labels")
    ls = fn_node(g, "n0", "torch.log_softmax", [ref(lp), 2], [6, 2, 4])
    g.outputs = [fn_node(g, "n1", "torch.nn.functional.ctc_loss", [ref(ls), ref(t), [6, 6], [3, 2]], [2],
                         kwargs={"reduction": "none", "zero_infinity": True})]
    return g, {"scores": torch.randn(6, 2, 4, generator=torch.Generator().manual_seed(0)), "labels": labels}


def test_ctc_labels_out_of_range_are_not_compiled_and_in_range_ones_are_judged(tmp_path):
    """The twenty-first session's SIGABRT (s2103-m000195): float labels holding -1 (F.ctc_loss
    truncates them); the kernel reads and its backward writes at label -1 without a check."""
    from fuzz.campaign.ctc_labels import labels_out_of_range

    g, vals = _ctc(torch.tensor([[1, 2, 3], [3, 1, 0]]))
    s = session_for(tmp_path / "in", g, vals)
    assert s.undefined_indexing is None
    assert s.run_test("aot_eager", "bwd").kind == "pass"
    for labels in (torch.tensor([[1, -1, 3], [3, 1, 0]]), torch.tensor([[1, 2, 4], [3, 1, 0]]),
                   torch.tensor([[1.5, -0.7, 3.0], [3.0, 1.0, 0.0]])):  # -1, C, and a float truncated to -0 / 1 / 3
        out_of_range = bool(((labels.to(torch.int64) < 0) | (labels.to(torch.int64) >= 4)).any())
        g, vals = _ctc(labels)
        s = session_for(tmp_path / f"l{len(list(tmp_path.iterdir()))}", g, vals)
        assert bool(s.undefined_indexing) == out_of_range, labels
        if out_of_range:
            v = s.run_test("aot_eager", "bwd")
            assert v.kind == "skip" and "index out of range" in v.detail
    # lengths beyond their tensors: input lengths past T, target lengths past the padded labels
    lp, ok = torch.zeros(6, 2, 4), torch.tensor([[1, 2, 3], [3, 1, 1]])
    assert not labels_out_of_range(lp, ok, [6, 6], [3, 2])
    assert labels_out_of_range(lp, ok, [7, 6], [3, 2])
    assert labels_out_of_range(lp, ok, [6, 6], [4, 2])
    assert labels_out_of_range(lp, torch.tensor([1, 2, 3, 1]), [6, 6], [3, 2])  # 5 concatenated labels of 4
    assert not labels_out_of_range(lp, torch.tensor([1, 2, 3, 1, 2]), [6, 6], [3, 2])
