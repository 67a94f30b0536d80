"""The reducer's eager values come from a forked child (fuzz.triage.child_values): the same values
as an in-process run, and a call that kills or hangs the child costs a candidate, not the reducer."""

import os
import time

import pytest
import torch

from fuzz.gen.interpret import InvalidGraph, eager_values
from fuzz.ir.graph import Graph, Node
from fuzz.triage.child_values import eager_values_in_child


def _graph(op: str, args: list, out_dtype: str = "float32") -> Graph:
    g = Graph()
    x = g.add_tensor([3, 4], "float32", "input", name="x_0")
    t = g.add_tensor([3, 4], "float32", name="tanh_1")
    g.add_node(Node(id="n0", op="torch.tanh", api="function", args=[{"ref": x}], kwargs={}, outputs=[t]))
    y = g.add_tensor([3, 4], out_dtype, name="y_2")
    g.add_node(Node(id="n1", op=op, api="function", args=[{"ref": t} if a == "T" else a for a in args], kwargs={},
                    outputs=[y]))
    g.outputs = [y]
    return g


def test_child_values_equal_in_process_values_for_every_dtype():
    x = {"x_0": torch.randn(3, 4)}
    for op, args, dtype in [("torch.exp", ["T"], "float32"), ("torch.gt", ["T", 0.0], "bool"),
                            ("torch.view_as_complex", [], "complex64")]:
        if op == "torch.view_as_complex":
            g = Graph()
            g.add_tensor([3, 2], "float32", "input", name="x_0")
            g.add_tensor([3], "complex64", name="c_1")
            g.add_node(Node(id="n0", op=op, api="function", args=[{"ref": "x_0"}], kwargs={}, outputs=["c_1"]))
            g.outputs = ["c_1"]
            feed = {"x_0": torch.randn(3, 2)}
        else:
            g, feed = _graph(op, args, dtype), x
        got, want = eager_values_in_child(g, feed), eager_values(g, feed)
        assert set(got) == set(want)
        for k in want:
            assert got[k].dtype == want[k].dtype and torch.equal(got[k], want[k]), k


def test_a_call_that_kills_the_child_is_an_invalid_graph_and_the_caller_lives():
    """ctypes.string_at(0) reads address 0: a segmentation fault, as a broken kernel gives."""
    g = _graph("ctypes.string_at", [0])
    with pytest.raises(InvalidGraph, match="child process: worker died"):
        eager_values_in_child(g, {"x_0": torch.randn(3, 4)})
    assert os.getpid() and eager_values_in_child(_graph("torch.exp", ["T"]), {"x_0": torch.ones(3, 4)})


def test_a_call_that_hangs_is_killed_at_the_deadline():
    g = _graph("time.sleep", [600])
    t0 = time.monotonic()
    with pytest.raises(InvalidGraph, match="timed out"):
        eager_values_in_child(g, {"x_0": torch.randn(3, 4)}, timeout_s=1.0)
    assert time.monotonic() - t0 < 30


def test_a_large_graph_runs_in_the_child_after_the_parent_used_torchs_thread_pool():
    """OpenMP is not fork-safe: a child forked after the parent ran a big op waited for pool threads
    it did not have until its deadline (the twenty-eighth session's 158,760-element case was never
    reduced). fuzz.isolation's workers now run torch on one thread."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one core: torch starts no intra-op pool for a child to inherit")
    g = Graph()
    x = g.add_tensor([280, 567], "float32", "input", name="x_0")
    t = g.add_tensor([280, 567], "float32", name="tanh_1")
    g.add_node(Node(id="n0", op="torch.tanh", api="function", args=[{"ref": x}], kwargs={}, outputs=[t]))
    g.outputs = [t]
    feed = {"x_0": torch.randn(280, 567)}
    threads = torch.get_num_threads()  # other tests (and `assay gen`) leave torch on one thread
    torch.set_num_threads(2)
    try:
        torch.tanh(feed["x_0"] * 2)  # the parent's pool threads start
        got = eager_values_in_child(g, feed, timeout_s=20.0)  # before the fix: InvalidGraph after 20 s
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(got["tanh_1"], torch.tanh(feed["x_0"]))
