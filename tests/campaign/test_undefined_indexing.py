"""A model whose unchecked indexing call is given an index out of range is not compiled at all:
its compiled code may write anywhere, so a crash or a signal would be a false alarm."""

import torch

from tests.campaign.test_oracle import fn_node, ref, session_for
from fuzz.ir.graph import Graph


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
