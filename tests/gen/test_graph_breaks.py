"""Graph breaks (fuzz.gen.forms.add_graph_break): generated, printed, compiled as several graphs by
real dynamo, dropped by the reducer where a failure does not need them, and a compiler fault that only
a graph after a break shows is caught only in the program that breaks."""

import json
import sys
from pathlib import Path

import pytest
import torch

from fuzz.gen.config import GenConfig
from fuzz.gen.generate import generate_model_for_index
from fuzz.gen.policy import Shares
from fuzz.gen.program import build_module, program_source, run_eager, save_program
from fuzz.gen.ruleset import load_ruleset

REPO = Path(__file__).resolve().parents[2]
FORMS = Shares().with_axis("form", "forms").with_axis("calls", "valid")


def _breaking_models(count: int):
    """Forms models with a graph break; not those with an associative_scan, whose compiled form
    combines in a tree (eager: in sequence), so its values are not bit-exact under backend="eager"."""
    rs = load_ruleset(None)
    for i in range(count):
        m = generate_model_for_index(rs, GenConfig(nodes=5), 0, i, FORMS)
        if any(n.extra.get("graph_break") for n in m.graph.nodes) and "associative_scan" not in m.graph.meta["forms"]:
            yield m


def test_forms_models_break_the_graph_where_a_tensor_crosses_and_dynamo_compiles_several_graphs():
    from torch._dynamo.utils import counters

    models = list(_breaking_models(16))
    assert len(models) >= 4  # half of the forms models
    for m in models[:4]:
        assert m.graph.meta["forms"][-1] == "graph_break"
        (k,) = [k for k, n in enumerate(m.graph.nodes) if n.extra.get("graph_break")]
        before = {o for n in m.graph.nodes[:k + 1] for o in n.outputs}
        assert before & {t for n in m.graph.nodes[k + 1:] for t in n.inputs()}  # a tensor crosses it
        src = program_source(m.graph).splitlines()
        line = next(i for i, s in enumerate(src) if "torch._dynamo.graph_break()" in s)
        assert m.graph.nodes[k].outputs[0] in src[line - 1]  # right below its node's line
        assert "graph_break()" in m.graph.render()
        with torch.no_grad():
            # each run on its own module and inputs: a state form writes its buffer in place, a
            # mutating call (assay::scale_shift_) its input
            def inputs():
                return [x.clone() if isinstance(x, torch.Tensor) else x for x in m.forward_inputs()]

            eager = run_eager(build_module(m.graph, m.state), inputs())
            torch._dynamo.reset()
            counters.clear()
            compiled = torch.compile(build_module(m.graph, m.state), backend="eager")(*inputs())
        assert counters["stats"]["unique_graphs"] >= 2
        for e, c in zip(eager, compiled):
            assert torch.equal(e.nan_to_num(), c.nan_to_num())


def test_the_reducer_drops_a_graph_break_the_failure_does_not_need_and_keeps_one_it_does():
    sys.path.insert(0, str(REPO / "tests" / "triage"))
    from triage_helpers import chain_graph

    from fuzz.triage.reduce import reduce_graph

    g, t = chain_graph()
    g.nodes[1].extra["graph_break"] = True

    def needs_break(graph, tensors):
        return any(n.extra.get("graph_break") for n in graph.nodes)

    kept = reduce_graph(g, t, needs_break, time_budget=60)
    assert [n.op for n in kept.graph.nodes if n.extra.get("graph_break")] == ["torch.mul"]
    dropped = reduce_graph(g, t, lambda graph, tensors: len(graph.nodes) == 9, time_budget=60)
    assert not any(n.extra.get("graph_break") for n in dropped.graph.nodes)
    assert any("no graph break after torch.mul" in s for s in dropped.steps)


@pytest.mark.slow
def test_a_fault_in_the_graph_after_a_break_is_caught_only_in_the_program_that_breaks(tmp_path, run_assay):
    sys.path.insert(0, str(REPO / "tests" / "triage"))
    from triage_helpers import campaign_finds_one, chain_graph

    progs = tmp_path / "progs"
    for name, brk in (("broken", True), ("whole", False)):
        g, t = chain_graph()
        if brk:
            g.nodes[1].extra["graph_break"] = True  # after the mul: relu lands in the second graph
        save_program(g, t, progs / name)
    out = tmp_path / "camp"
    campaign_finds_one(run_assay, progs, out, "after_break")
    (case_dir,) = [p.parent for p in out.glob("*/case.json")]
    assert json.loads((case_dir / "case.json").read_text())["kind"] == "mismatch"
    assert "torch._dynamo.graph_break()" in (case_dir / "repro.py").read_text()
