"""Soundness of verify against ground truth on random small nets, and the VNN-COMP sanity set.

Ground truth: 2-input nets, where a dense grid over the ball plus PGD is close to exhaustive.
No instance may be called robust where a sampled point really changes the decision, and every
counterexample must be inside the ball and change the decision in float64 and float32.
"""

import os

import numpy as np
import pytest

import verify


from verify.attack import attack
from verify.network import Network
from verify.robustness import decision_margin, decision_terms
from verify.solver import Options, solve_case, validate

DATA = os.path.join(os.path.dirname(__file__), "data")


def random_net(seed, n_in=2, hidden=(8, 8), n_out=3):
    rng = np.random.default_rng(seed)
    sizes = [n_in, *hidden, n_out]
    return Network([(rng.normal(size=(b, a)) / np.sqrt(a), rng.normal(size=b) * 0.3)
                    for a, b in zip(sizes, sizes[1:])], name=f"rand{seed}")


def dense_changes(net, point, eps, label, decision, n=201):
    g = np.linspace(-eps, eps, n)
    X = point + np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    Y = net.forward(X)
    d = Y.argmax(1) if decision == "argmax" else Y.argmin(1)
    return bool(np.any(d != label))


def check_verdict(net, point, eps, r, decision="argmax"):
    if r.verdict == "counterexample":
        x = np.array(r.counterexample)
        assert np.all(np.abs(x - point) <= eps)
        for y in (net.forward(x), net.forward32(x).astype(np.float64)):
            assert decision_margin(y, r.label, decision) > 0
        assert r.margin > 0
    elif r.verdict == "robust":
        assert not dense_changes(net, point, eps, r.label, decision), "robust verdict but a grid point flips"
        lo, hi = point - eps, point + eps
        x, v = attack(net, lo, hi, decision_terms(net.n_outputs, r.label, decision),
                      rng=np.random.default_rng(5), n_random=2000, steps=60)
        assert not validate(net, x, lo, hi, decision_terms(net.n_outputs, r.label, decision), strict=True)


@pytest.mark.parametrize("seed", range(8))
def test_random_nets_against_dense_grid(seed):
    _random_net_case(seed)


@pytest.mark.slow

@pytest.mark.parametrize("seed", range(8, 40))
def test_random_nets_against_dense_grid_many(seed):
    _random_net_case(seed)


def _random_net_case(seed):
    net = random_net(seed)
    rng = np.random.default_rng(100 + seed)
    point = rng.uniform(-1, 1, size=2)
    verdicts = set()
    for eps in (0.05, 0.2, 0.6):
        for decision in ("argmax", "argmin"):
            r = verify.check_robustness(net, point, eps, decision=decision, timeout=20)
            assert r.verdict in ("robust", "counterexample")  # these are easy: no timeouts expected
            check_verdict(net, point, eps, r, decision)
            verdicts.add(r.verdict)


@pytest.mark.parametrize("seed", range(4))
def test_z3_direct_relu_bab_and_input_bab_agree(seed):
    """The three engines (Z3 on the whole box, ReLU-split BaB + Z3 leaves, input-split BaB) agree."""
    net = random_net(50 + seed, n_in=3, hidden=(5, 5), n_out=3)
    rng = np.random.default_rng(seed)
    point = rng.uniform(-1, 1, size=3)
    for eps in (0.1, 0.3):
        lo, hi = point - eps, point + eps
        label = int(net.forward(point).argmax())
        terms = decision_terms(3, label, "argmax")
        answers = []
        for opts in (Options(direct_z3=True, attack_steps=0), Options(input_split_max_dims=0, relu_leaf_unstable=4),
                     Options()):
            r = solve_case(net, lo, hi, terms, timeout_s=120, strict=True, opts=opts)
            if r.status == "sat":
                assert validate(net, r.x, lo, hi, terms, strict=True)
            answers.append(r.status)
        assert "unknown" not in answers, answers
        assert len(set(answers)) == 1, answers


def test_combined_and_per_class_agree_on_acas():
    net = verify.load_network(os.path.join(DATA, "ACASXU_experimental_v2a_1_1.nnet"))
    rng = np.random.default_rng(0)
    for _ in range(2):
        p = rng.uniform(net.input_lo, net.input_hi)
        for eps in (0.01, 0.04):
            a = verify.check_robustness(net, p, eps, decision="argmin", timeout=30, mode="combined")
            b = verify.check_robustness(net, p, eps, decision="argmin", timeout=30, mode="per-class")
            assert a.verdict == b.verdict != "unknown"


def test_mnist_point_robust_small_and_counterexample_large():
    net = verify.load_network(os.path.join(DATA, "mnist10x10.nnet"))
    P = np.load(os.path.join(DATA, "mnist_points3.npy"))
    r = verify.check_robustness(net, P[0], 0.002, timeout=30)
    assert r.verdict == "robust" and r.label == 8
    r = verify.check_robustness(net, P[0], 0.05, timeout=30)
    assert r.verdict == "counterexample"
    x = np.array(r.counterexample)
    assert np.all(x >= 0) and np.all(x <= 1) and np.max(np.abs(x - P[0])) <= 0.05
    assert net.forward(x).argmax() != 8 and net.forward32(x).argmax() != 8


@pytest.mark.parametrize("name,prop,expected", [
    ("test_nano", "test_nano", "unsat"), ("test_tiny", "test_tiny", "unsat"),
    ("test_small", "test_small", "unsat"), ("test_sat", "test_prop", "sat"),
    ("test_unsat", "test_prop", "unsat")])
def test_vnncomp_sanity_instances(name, prop, expected):
    net = verify.load_network(os.path.join(DATA, f"{name}.onnx"))
    r = verify.check_vnnlib(net, os.path.join(DATA, f"{prop}.vnnlib"), timeout=60)
    assert r.result == expected
    if expected == "sat":
        x = np.array(r.counterexample)
        y = net.forward(x)
        assert np.all(y[0] <= y[1:])  # phi3: COC is minimal at the counterexample


def test_robustness_on_a_torch_module_directly():
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    m = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    p = np.array([0.3, -0.2])
    r = verify.check_robustness(m, p, 0.3, timeout=20)
    from verify.torch_loader import from_torch

    check_verdict(from_torch(m), p, 0.3, r)


def test_bad_api_input_is_a_value_error():
    net = random_net(0)
    with pytest.raises(ValueError, match="2 inputs"):
        verify.check_robustness(net, [0.1, 0.2, 0.3], 0.1)
    with pytest.raises(ValueError, match="eps"):
        verify.check_robustness(net, [0.1, 0.2], -0.1)
    with pytest.raises(ValueError, match="outside"):
        verify.check_robustness(net, [5.0, 0.2], 0.1, box=(-1, 1))


@pytest.mark.parametrize("style", ["bigm", "ite"])
def test_alternative_z3_encodings_agree(style):
    net = random_net(77, n_in=3, hidden=(5, 5), n_out=3)
    point = np.array([0.2, -0.1, 0.4])
    for eps in (0.05, 0.15):
        lo, hi = point - eps, point + eps
        terms = decision_terms(3, int(net.forward(point).argmax()), "argmax")
        a = solve_case(net, lo, hi, terms, timeout_s=120, strict=True, opts=Options(direct_z3=True, attack_steps=0))
        b = solve_case(net, lo, hi, terms, timeout_s=120, strict=True,
                       opts=Options(direct_z3=True, attack_steps=0, z3_style=style))
        assert a.status == b.status != "unknown"
