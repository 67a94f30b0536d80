"""verify loaders: .nnet, ONNX (own graph reader), torch, VNN-LIB; and the float64/float32 evaluators."""

import os

import numpy as np
import pytest

from verify import load_network
from verify.load import NetworkLoadError
from verify.network import Network
from verify.vnnlib import VnnlibError, parse_vnnlib, read_vnnlib

DATA = os.path.join(os.path.dirname(__file__), "data")
SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "benchmarks", "verify")
need_shared = pytest.mark.skipif(not os.path.isdir(SHARED), reason="../shared/benchmarks/verify absent")


def test_nnet_and_onnx_compute_the_same_function_on_acas_1_1():
    a = load_network(os.path.join(DATA, "ACASXU_experimental_v2a_1_1.nnet"))
    b = load_network(os.path.join(DATA, "ACASXU_run2a_1_1_batch_2000.onnx"))
    assert [W.shape for W, _ in a.layers] == [W.shape for W, _ in b.layers]
    assert a.n_relus == b.n_relus == 300
    x = np.random.default_rng(0).uniform(a.input_lo, a.input_hi, size=(2000, 5))
    ya, yb = a.forward(x), b.forward(x)
    assert np.max(np.abs(ya - yb)) < 1e-6
    assert np.array_equal(ya.argmin(1), yb.argmin(1)) or np.mean(ya.argmin(1) == yb.argmin(1)) > 0.999


def test_nnet_header_box_is_normalised():
    a = load_network(os.path.join(DATA, "ACASXU_experimental_v2a_1_1.nnet"))
    assert np.allclose(a.input_lo, [-0.32842, -0.5, -0.5, -0.5, -0.5], atol=1e-4)
    assert np.allclose(a.input_hi, [0.67986, 0.5, 0.5, 0.5, 0.5], atol=1e-4)
    raw = np.array([1500.0, 0.0, 3.1, 980.0, 960.0])
    x = a.raw_to_input(raw)
    assert np.allclose(x, (raw - a.in_mean) / a.in_range)


def test_float32_evaluation_is_close_but_separate():
    a = load_network(os.path.join(DATA, "ACASXU_experimental_v2a_1_1.nnet"))
    x = np.random.default_rng(1).uniform(a.input_lo, a.input_hi, size=(50, 5))
    y64, y32 = a.forward(x), a.forward32(x)
    assert y32.dtype == np.float32 and y64.dtype == np.float64
    assert np.max(np.abs(y64 - y32)) < 1e-4


def test_torch_sequential_matches_torch_forward():
    torch = pytest.importorskip("torch")
    from verify.torch_loader import from_torch

    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(4, 7), torch.nn.ReLU(), torch.nn.Linear(7, 5), torch.nn.ReLU(),
                            torch.nn.Linear(5, 3))
    net = from_torch(m)
    x = np.random.default_rng(0).normal(size=(20, 4))
    with torch.no_grad():
        ref = m(torch.tensor(x, dtype=torch.float64).to(torch.float32)).double().numpy()
    assert np.max(np.abs(net.forward(x) - ref)) < 1e-5
    with pytest.raises(ValueError, match="Conv"):
        from_torch(torch.nn.Sequential(torch.nn.Conv1d(1, 1, 1)))


def _onnx_model(nodes, inits, in_shape, out_name="y"):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                          [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()])
    return helper.make_model(g)


def test_onnx_reader_handles_gemm_sub_reshape_and_matches_numpy(tmp_path):
    import onnx
    from onnx import helper

    rng = np.random.default_rng(3)
    W1, b1 = rng.normal(size=(6, 4)), rng.normal(size=6)
    W2, b2 = rng.normal(size=(6, 3)), rng.normal(size=3)
    mean = rng.normal(size=(1, 4))
    inits = {"W1": W1, "b1": b1, "W2": W2, "b2": b2, "mean": mean, "shape": np.array([1, 4])}
    nodes = [helper.make_node("Sub", ["x", "mean"], ["s"]),
             helper.make_node("Reshape", ["s", "shape64"], ["r"]),
             helper.make_node("Gemm", ["r", "W1", "b1"], ["h"], transB=1),
             helper.make_node("Relu", ["h"], ["a"]),
             helper.make_node("MatMul", ["a", "W2"], ["m"]),
             helper.make_node("Add", ["m", "b2"], ["y"])]
    model = _onnx_model(nodes, {k: v for k, v in inits.items() if k != "shape"}, [1, 4])
    from onnx import numpy_helper
    model.graph.initializer.append(numpy_helper.from_array(np.array([1, 4], dtype=np.int64), "shape64"))
    p = tmp_path / "m.onnx"
    onnx.save(model, str(p))
    net = load_network(str(p))
    f32 = lambda a: a.astype(np.float32).astype(np.float64)  # noqa: E731
    x = rng.normal(size=(10, 4))
    ref = np.maximum((x - f32(mean)) @ f32(W1).T + f32(b1), 0) @ f32(W2) + f32(b2)
    assert np.max(np.abs(net.forward(x) - ref)) < 1e-9


def test_onnx_unsupported_op_is_named(tmp_path):
    import onnx
    from onnx import helper

    nodes = [helper.make_node("Sigmoid", ["x"], ["y"])]
    p = tmp_path / "sig.onnx"
    onnx.save(_onnx_model(nodes, {}, [1, 3]), str(p))
    with pytest.raises(NetworkLoadError, match="Sigmoid"):
        load_network(str(p))


def test_truncated_nnet_is_a_clear_error(tmp_path):
    text = open(os.path.join(DATA, "ACASXU_experimental_v2a_1_1.nnet")).read()
    p = tmp_path / "cut.nnet"
    p.write_text(text[: len(text) // 2].rsplit("\n", 1)[0] + "\n")
    with pytest.raises(NetworkLoadError, match="truncated|expected|ends"):
        load_network(str(p))
    with pytest.raises(NetworkLoadError, match="not found"):
        load_network(str(tmp_path / "missing.nnet"))


def test_network_rejects_bad_shapes():
    with pytest.raises(ValueError):
        Network([(np.zeros((3, 2)), np.zeros(3)), (np.zeros((2, 4)), np.zeros(2))])


def test_vnnlib_acas_and_disjunctive_input_boxes():
    cases = read_vnnlib(os.path.join(DATA, "test_prop.vnnlib"), 5, 5)
    assert len(cases) == 1
    lo, hi, terms = cases[0]
    assert lo[0] == pytest.approx(-0.30353115613746867) and hi[4] == 0.5
    assert len(terms) == 1 and terms[0][0].shape == (4, 5)  # Y_0 <= Y_i for i=1..4, one conjunction
    text = """(declare-const X_0 Real)(declare-const X_1 Real)(declare-const Y_0 Real)(declare-const Y_1 Real)
    (assert (or (and (>= X_0 0) (<= X_0 1) (>= X_1 0) (<= X_1 1))
                (and (>= X_0 2) (<= X_0 3) (>= X_1 -1) (<= X_1 0))))
    (assert (or (and (<= Y_0 Y_1)) (and (>= (+ Y_0 (* 2 Y_1)) 3.5))))"""
    cases = parse_vnnlib(text)
    assert len(cases) == 2 and all(len(t) == 2 for _, _, t in cases)
    C, d = cases[0][2][1]
    assert np.allclose(C, [[-1, -2]]) and np.allclose(d, [-3.5])
    with pytest.raises(VnnlibError, match="inputs"):
        parse_vnnlib(text, n_inputs=3)
    with pytest.raises(VnnlibError):
        parse_vnnlib("(declare-const X_0 Real)(assert (<= X_0 1)")
    with pytest.raises(VnnlibError, match="lower and an upper"):
        parse_vnnlib("(declare-const X_0 Real)(declare-const Y_0 Real)(assert (<= X_0 1))(assert (<= Y_0 1))")


@need_shared
def test_shared_acas_nets_agree_and_mnist_nets_load():
    for n in ("3_3", "5_9"):
        a = load_network(os.path.join(SHARED, "acasxu", "nnet", f"ACASXU_experimental_v2a_{n}.nnet"))
        b = load_network(os.path.join(SHARED, "acasxu", "onnx", f"ACASXU_run2a_{n}_batch_2000.onnx"))
        x = np.random.default_rng(0).uniform(a.input_lo, a.input_hi, size=(500, 5))
        assert np.max(np.abs(a.forward(x) - b.forward(x))) < 1e-6
    m = load_network(os.path.join(SHARED, "mnistfc", "onnx", "mnist-net_256x2.onnx"))
    assert m.n_inputs == 784 and m.n_relus == 512
    for name in ("mnist10x20.nnet", "mnist20x40.nnet"):
        assert load_network(os.path.join(SHARED, "marabou-mnist", name)).n_inputs == 784


def test_vnnlib_strict_comparisons_are_strict():
    """'(< Y_0 0)' on y0 = x0 over [0, 1]: the only candidate is the tie x0 = 0, which '<' excludes."""
    import verify
    from verify.network import Network

    net = Network([(np.array([[1.0], [0.0]]), np.zeros(2)), (np.eye(2), np.zeros(2))])
    head = "(declare-const X_0 Real)(declare-const Y_0 Real)(declare-const Y_1 Real)" \
           "(assert (>= X_0 0))(assert (<= X_0 1))"
    cases = parse_vnnlib(head + "(assert (< Y_0 0))")
    assert cases[0][2][0].strict.tolist() == [True]
    assert verify.check_vnnlib(net, head + "(assert (<= Y_0 0))", timeout=10).result == "sat"
    strict = verify.check_vnnlib(net, head + "(assert (< Y_0 0))", timeout=10)
    assert strict.result == "unsat"
    # '>' too, and a strict input bound excludes its face from counterexamples
    assert verify.check_vnnlib(net, head + "(assert (> 0 Y_0))", timeout=10).result == "unsat"
    open_face = "(declare-const X_0 Real)(declare-const Y_0 Real)(declare-const Y_1 Real)" \
                "(assert (> X_0 0))(assert (<= X_0 1))(assert (<= Y_0 0))"
    assert verify.check_vnnlib(net, open_face, timeout=5).result != "sat"
