"""The reducer's algorithm with fake predicates (no child processes, milliseconds)."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from triage_helpers import chain_graph  # noqa: E402

from fuzz.gen.interpret import eager_values, propagate_shapes  # noqa: E402
from fuzz.triage.reduce import reduce_graph  # noqa: E402


def _has_relu(g, t):
    return any(n.op == "torch.nn.functional.relu" for n in g.nodes)


def test_single_faulty_op_reduces_to_one_call_with_tiny_shapes():
    g, t = chain_graph()
    r = reduce_graph(g, t, _has_relu)
    assert r.ops_before == 9 and r.ops_after == 1
    assert r.graph.nodes[0].op == "torch.nn.functional.relu"
    assert all(d == 1 for name in r.graph.inputs for d in r.graph.tensors[name].shape)
    # the result is a valid, runnable graph fed with exactly its inputs
    assert set(r.tensors) == set(r.graph.inputs + r.graph.params)
    out = eager_values(r.graph, r.tensors)[r.graph.outputs[0]]
    assert list(out.shape) == r.graph.tensors[r.graph.outputs[0]].shape


def test_pair_fault_keeps_both_ops():
    g, t = chain_graph()

    def relu_into_add(g, t):
        for n in g.nodes:
            if n.op == "torch.nn.functional.relu":
                return any(c.op == "torch.add" for c in g.consumers(n.outputs[0]))
        return False

    r = reduce_graph(g, t, relu_into_add)
    assert sorted(n.op for n in r.graph.nodes) == ["torch.add", "torch.nn.functional.relu"]


def test_dropped_node_output_keeps_its_eager_value():
    g, t = chain_graph()
    before = eager_values(g, t)
    seen = {}

    def value_sensitive(g2, t2):
        # fails only while the relu still sees the same data as in the original graph
        for n in g2.nodes:
            if n.op == "torch.nn.functional.relu":
                src = n.inputs()[0]
                vals = eager_values(g2, t2)
                seen["ok"] = torch.equal(vals[src], before["t_5"][tuple(slice(0, s) for s in vals[src].shape)])
                return seen["ok"]
        return False

    r = reduce_graph(g, t, value_sensitive, shrink=False)
    assert r.ops_after == 1 and seen["ok"]


def test_shapes_are_recomputed_and_invalid_candidates_never_run():
    g, t = chain_graph()
    calls = []

    def pred(g2, t2):
        propagate_shapes(g2.copy())  # would raise if an invalid graph reached the predicate
        calls.append(1)
        return any(n.op == "torch.nn.functional.linear" for n in g2.nodes)

    r = reduce_graph(g, t, pred)
    assert [n.op for n in r.graph.nodes] == ["torch.nn.functional.linear"]
    shapes = {n: r.graph.tensors[n].shape for n in r.graph.inputs}
    assert all(d == 1 for s in shapes.values() for d in s)


def test_budget_stops_early_and_returns_best_so_far():
    g, t = chain_graph()
    r = reduce_graph(g, t, _has_relu, max_tests=2)
    assert r.timed_out and r.tests == 2 and 1 <= r.ops_after < 9


def test_module_weights_follow_shrunk_constructor_arguments():
    from triage_helpers import module_graph

    g, t = module_graph()
    r = reduce_graph(g, t, lambda g2, t2: any(n.api == "module" for n in g2.nodes))
    (node,) = r.graph.nodes
    assert node.op == "torch.nn.Linear" and node.init["args"] == [1, 1]
    weights = {k: list(v.shape) for k, v in r.tensors.items() if k.endswith((".weight", ".bias"))}
    assert weights == {"linear_n1.weight": [1, 1], "linear_n1.bias": [1]}
    eager_values(r.graph, r.tensors)  # still runs with the sliced weights


def _flaky_unless_exp():
    """The first run of any candidate without torch.exp fails, every later run of it passes;
    with torch.exp it always fails (the real failure)."""
    seen: dict = {}

    def flaky(g2, t2):
        if any(n.op == "torch.exp" for n in g2.nodes):
            return True
        ops = tuple(sorted(n.op for n in g2.nodes))
        seen[ops] = seen.get(ops, 0) + 1
        return seen[ops] == 1

    return flaky


def test_a_candidate_that_fails_only_once_is_not_kept():
    g, t = chain_graph()
    flaky = _flaky_unless_exp()
    r = reduce_graph(g, t, flaky)
    assert any(n.op == "torch.exp" for n in r.graph.nodes) and r.unconfirmed > 0
    # without confirmation the reducer keeps a candidate that never fails again
    loose = reduce_graph(g, t, _flaky_unless_exp(), confirm=False)
    assert not any(n.op == "torch.exp" for n in loose.graph.nodes)
