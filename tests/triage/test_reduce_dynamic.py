"""A reduced dynamic-mode case carries its own second call.

A dynamic-mode case is called twice, the second time at other input sizes; its inputs are
saved in inputs.safetensors as ``second_call.<name>`` with the sizes in case.json. The
reduced graph has other inputs, so the original's second call does not fit it: the reducer
once copied the original's ``second_call`` into the reduced case without its inputs, and the
reduced ``repro.py`` could not run ("inputs.safetensors lacks the second call's inputs"; found
on a real aot_eager_decomp_partition crash in the ninth session's campaign). The reduced case
now keeps the second call of the run that confirmed it, inputs included.
"""

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from test_triage_e2e import fault_env, run_script  # noqa: E402
from triage_helpers import chain_graph, make_case  # noqa: E402

pytestmark = pytest.mark.slow


def test_reduced_dynamic_case_has_a_runnable_second_call(tmp_path):
    from safetensors.torch import load_file

    from fuzz.triage.actions import reduce_case
    from fuzz.triage.cases import load_case

    g, t = chain_graph()
    gen = torch.Generator().manual_seed(3)
    make_case(tmp_path, "relu-dyn", g, t, mode="dynamic",
              second_call={"from": 4, "to": 5, "key_prefix": "second_call.", "shapes": {"x": [5, 6], "y": [5, 6]}},
              second_inputs={"x": torch.randn(5, 6, generator=gen), "y": torch.randn(5, 6, generator=gen)})
    case = load_case(tmp_path, "relu-dyn")
    orig = run_script(case.path / "repro.py", fault="relu")
    assert orig.returncode == 1, orig.stdout + orig.stderr  # the original case is sound

    res = reduce_case(case, time_budget=120, env=fault_env("relu"))
    assert res["ops_after"] < res["ops_before"]
    d = Path(res["reduced_case"])
    meta = json.loads((d / "case.json").read_text())
    sc = meta["second_call"]
    names = list(json.loads((d / "graph.json").read_text())["tensors"])
    saved = load_file(str(d / "inputs.safetensors"))
    if sc.get("shapes"):
        # the sizes are the reduced graph's inputs' and every one of them is saved at them
        for name, shape in sc["shapes"].items():
            assert name in names and list(saved["second_call." + name].shape) == shape
    else:
        assert sc.get("none") and not any(k.startswith("second_call.") for k in saved)
    with_fault, without = run_script(d / "repro.py", fault="relu"), run_script(d / "repro.py")
    assert with_fault.returncode == 1, with_fault.stdout + with_fault.stderr
    assert without.returncode == 0, without.stdout + without.stderr
    assert meta["reproduces"] is True
