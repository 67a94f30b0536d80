"""certified_radius: the bracket [certified, violated] is sound."""

import os

import numpy as np

import verify
from verify.robustness import decision_margin

DATA = os.path.join(os.path.dirname(__file__), "data")


def _check_bracket(net, p, r, decision, tight=True):
    assert r["certified"] is not None and r["violated"] is not None
    assert r["certified"] < r["violated"]
    if tight:  # the bisection reached its tolerance (no unknown check cut it short)
        assert (r["violated"] - r["certified"]) <= 2e-3 * r["violated"] + 1e-12
    x = np.array(r["counterexample"])
    assert np.max(np.abs(x - p)) <= r["violated"]
    for y in (net.forward(x), net.forward32(x).astype(np.float64)):
        assert decision_margin(y, r["label"], decision) > 0
    # certified really is robust (re-check) and a dense attack finds nothing inside it
    assert verify.check_robustness(net, p, r["certified"], decision=decision, timeout=20).verdict == "robust"


def test_radius_bracket_small_net():
    rng = np.random.default_rng(4)
    net = verify.Network([(rng.normal(size=(10, 2)), rng.normal(size=10)), (rng.normal(size=(3, 10)), rng.normal(size=3))])
    p = np.array([0.2, -0.4])
    r = verify.certified_radius(net, p, timeout=30)
    _check_bracket(net, p, r, "argmax")


def test_radius_bracket_acas_argmin():
    net = verify.load_network(os.path.join(DATA, "ACASXU_experimental_v2a_1_1.nnet"))
    p = np.array([0.1, 0.1, 0.1, 0.1, 0.1])
    r = verify.certified_radius(net, p, decision="argmin", timeout=12, rel_tol=1e-2, check_timeout=3)
    _check_bracket(net, p, r, "argmin", tight=False)
