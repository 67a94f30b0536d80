"""`assay verify` through a real subprocess: the JSON contract and one-line errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

DATA = os.path.join(os.path.dirname(__file__), "data")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ACAS = os.path.join(DATA, "ACASXU_experimental_v2a_1_1.nnet")


def run(*args, timeout=120):
    r = subprocess.run([sys.executable, "-m", "fuzz.cli", "verify", *args], capture_output=True, text=True,
                       cwd=REPO, timeout=timeout)
    return r


def test_point_eps_json_contract_robust():
    r = run(ACAS, "--point", "0.1,0.1,0.1,0.1,0.1", "--eps", "0.01", "--decision", "argmin", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["verdict"] == "robust" and out["counterexample"] is None
    assert isinstance(out["time_s"], float)


def test_point_eps_json_contract_counterexample_with_npy(tmp_path):
    P = np.load(os.path.join(DATA, "mnist_points3.npy"))
    f = tmp_path / "p.npy"
    np.save(f, P[0])
    r = run(os.path.join(DATA, "mnist10x10.nnet"), "--point", str(f), "--eps", "0.05", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["verdict"] == "counterexample"
    x = np.array(out["counterexample"])
    assert x.shape == (784,) and np.max(np.abs(x - P[0])) <= 0.05 and out["margin"] > 0


def test_radius_json_contract():
    r = run(ACAS, "--point", "0.1,0.1,0.1,0.1,0.1", "--radius", "--decision", "argmin", "--timeout", "30", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for key in ("verdict", "certified", "violated", "counterexample", "time_s"):
        assert key in out
    assert out["certified"] is not None and out["violated"] is not None
    assert out["certified"] < out["violated"]


@pytest.mark.parametrize("net,prop,expected", [("test_sat.onnx", "test_prop.vnnlib", "sat"),
                                               ("test_small.onnx", "test_small.vnnlib", "unsat")])
def test_vnnlib_json_contract(net, prop, expected):
    r = run(os.path.join(DATA, net), "--vnnlib", os.path.join(DATA, prop), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["result"] == expected
    assert (out["counterexample"] is not None) == (expected == "sat")


def _one_line_error(r):
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("assay")
    return lines[0]


def test_bad_inputs_are_one_line_errors(tmp_path):
    cut = tmp_path / "cut.nnet"
    text = open(ACAS).read()
    cut.write_text(text[: len(text) // 3].rsplit("\n", 1)[0] + "\n")
    assert "truncated" in _one_line_error(run(str(cut), "--point", "0,0,0,0,0", "--eps", "0.1"))

    import onnx
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Softmax", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    bad = tmp_path / "soft.onnx"
    onnx.save(helper.make_model(g), str(bad))
    assert "Softmax" in _one_line_error(run(str(bad), "--point", "0,0,0", "--eps", "0.1"))

    assert "5 inputs" in _one_line_error(run(ACAS, "--point", "0,0,0", "--eps", "0.1"))
    assert "eps" in _one_line_error(run(ACAS, "--point", "0,0,0,0,0", "--eps", "-1"))
    assert "not found" in _one_line_error(run(str(tmp_path / "nope.nnet"), "--point", "0", "--eps", "0.1"))
    assert "not found" in _one_line_error(run(ACAS, "--point", str(tmp_path / "nope.npy"), "--eps", "0.1"))
    assert "--point" in _one_line_error(run(ACAS, "--point", "a,b", "--eps", "0.1"))
    garbage = tmp_path / "g.onnx"
    garbage.write_bytes(b"\x00not an onnx file")
    _one_line_error(run(str(garbage), "--point", "0", "--eps", "0.1"))
    badv = tmp_path / "b.vnnlib"
    badv.write_text("(declare-const X_0 Real)\n(assert (<= X_0 1)\n")
    _one_line_error(run(os.path.join(DATA, "test_nano.onnx"), "--vnnlib", str(badv)))


def test_verify_imports_nothing_from_fuzz():
    """verify/ is independent of fuzz/: importing all of it loads no fuzz module."""
    code = ("import sys, verify.command, verify.robustness, verify.solver, verify.errors; "
            "bad = [m for m in sys.modules if m == 'fuzz' or m.startswith('fuzz.')]; print(bad); "
            "sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    from verify.errors import VerifyError

    assert VerifyError("x").exit_code == 2


def test_negative_numbers_parse_as_values():
    """--point -0.3,... / --box -1,1 / --eps -inf are values, not flags (ACAS points are often negative)."""
    r = run(ACAS, "--point", "-0.3,0.1,0,0,0", "--eps", "0.001", "--decision", "argmin", "--box", "-1,1", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["verdict"] in ("robust", "counterexample")
    if out["counterexample"] is not None:
        assert abs(out["counterexample"][0] - -0.3) <= 0.001
    assert "finite" in _one_line_error(run(ACAS, "--point", "-0.3,0.1,0,0,0", "--eps", "-inf"))


def _onnx(tmp_path, name, W, nan=False):
    from onnx import TensorProto, helper, numpy_helper

    W = np.array(W, dtype=np.float32)
    if nan:
        W[0, 0] = np.nan
    g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, W.shape[0]])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, W.shape[1]])],
                          initializer=[numpy_helper.from_array(W, "W")])
    import onnx

    f = tmp_path / name
    onnx.save(helper.make_model(g), str(f))
    return str(f)


def test_networks_without_relus_and_single_outputs_get_verdicts(tmp_path):
    # one output (test_nano): the decision cannot change, robust without any search
    r = run(os.path.join(DATA, "test_nano.onnx"), "--point", "0.5", "--eps", "0.1", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["verdict"] == "robust"
    # MatMul-only, 12 inputs (ReLU-split path with no ReLU at all): y = x W, decision at the point
    W = np.random.default_rng(0).normal(size=(12, 3))
    f = _onnx(tmp_path, "mm.onnx", W)
    p = np.zeros(12)
    p[0] = 1.0
    r = run(f, "--point", ",".join(map(str, p)), "--eps", "0.001", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    y = p @ W
    margins = np.sort(y)[-1] - np.sort(y)[-2]
    # linear net: the exact worst case margin loss is 0.001 * max_j sum_i |W_i,label - W_i,j|
    lab = int(np.argmax(y))
    worst = min(y[lab] - y[j] - 0.001 * np.abs(W[:, lab] - W[:, j]).sum() for j in range(3) if j != lab)
    assert out["label"] == lab and margins > 0
    assert out["verdict"] == ("robust" if worst > 1e-6 else "counterexample")


def test_nan_weights_and_nan_boxes_are_one_line_errors(tmp_path):
    f = _onnx(tmp_path, "nan.onnx", np.ones((2, 2)), nan=True)
    assert "NaN" in _one_line_error(run(f, "--point", "0,0", "--eps", "0.1"))
    v = tmp_path / "nan.vnnlib"
    v.write_text("(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n"
                 "(declare-const X_1 Real)\n(assert (>= X_0 nan))\n(assert (<= X_0 1))\n"
                 "(assert (>= X_1 0))\n(assert (<= X_1 1))\n(assert (<= Y_0 Y_1))\n")
    assert "finite" in _one_line_error(run(_onnx(tmp_path, "ok.onnx", np.eye(2)), "--vnnlib", str(v)))


def test_radius_never_says_robust_for_a_zero_radius(tmp_path):
    """Every positive radius checked timed out: certified 0.0 is not 'robust', and it says it stopped early."""
    net = "/work/shared/benchmarks/verify/marabou-mnist/mnist20x40.nnet"
    net = net if os.path.isfile(net) else os.path.join(REPO, "..", "shared", "benchmarks", "verify",
                                                        "marabou-mnist", "mnist20x40.nnet")
    if not os.path.isfile(net):
        pytest.skip("shared benchmark data not present")
    f = tmp_path / "p.npy"
    np.save(f, np.load(os.path.join(DATA, "mnist_points3.npy"))[0])
    r = run(net, "--point", str(f), "--radius", "--eps", "0.0127", "--timeout", "1.5", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["verdict"] == "robust") == (out["certified"] is not None and out["certified"] > 0)
    if out["certified"] == 0.0:
        assert out["verdict"] == "unknown" and out["stopped_early"]
    assert out["stopped_early"] is None or isinstance(out["stopped_early"], str)
