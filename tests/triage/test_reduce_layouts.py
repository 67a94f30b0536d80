"""The reducer keeps an input's memory layout (fuzz.gen.layouts) only where the failure needs it:
a fault that reads strided inputs as contiguous keeps the layout of the input it reads; a fault
of relu's values drops every layout (the reduced repro then has dense inputs only)."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_triage_e2e import fault_env, run_script  # noqa: E402
from triage_helpers import chain_graph, make_case  # noqa: E402

pytestmark = pytest.mark.slow

LAYOUTS = {"x": {"order": [0, 1], "step": 2, "pad": 0}, "y": {"order": [1, 0], "step": 1, "pad": 0}}


@pytest.mark.parametrize("fault, detail, kept", [("contiguous_read", "nonfinite", True), ("relu", "values", False)])
def test_reduce_keeps_a_layout_only_where_the_failure_needs_it(tmp_path, fault, detail, kept):
    from fuzz.triage.actions import reduce_case
    from fuzz.triage.cases import load_case

    g, t = chain_graph()
    g.meta["layouts"] = LAYOUTS
    make_case(tmp_path, "laid", g, t, detail=detail)  # contiguous_read reads the fence's NaN
    case = load_case(tmp_path, "laid")
    assert "strided(tensors['x'], order=(0, 1), step=2)" in (case.path / "repro.py").read_text()
    assert run_script(case.path / "repro.py", fault=fault).returncode == 1

    res = reduce_case(case, time_budget=120, env=fault_env(fault))
    d = Path(res["reduced_case"])
    graph = json.loads((d / "graph.json").read_text())
    left = {k: v for k, v in (graph["meta"].get("layouts") or {}).items()
            if graph["tensors"].get(k, {}).get("role") == "input"}
    repro = (d / "repro.py").read_text()
    if kept:
        assert left and all(v == LAYOUTS[k] for k, v in left.items()) and "strided(tensors[" in repro
    else:
        assert not left and "strided(tensors[" not in repro
    assert run_script(d / "repro.py", fault=fault).returncode == 1
    assert run_script(d / "repro.py").returncode == 0
