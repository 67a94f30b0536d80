"""The torch bound engine (verify/tbounds) keeps its contract, and the input-split BaB built on it.

Contract: lb[b, r] <= (C f(x))[r] for every real x in box b, f the real-valued network.
Checked against sampled points (float64) and, on degenerate boxes, against the exact
rational value of the network (fractions.Fraction), where an unpadded float computation
would sometimes be above the truth.
"""

import os
from fractions import Fraction

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import verify  # noqa: E402
from verify.network import Network  # noqa: E402
from verify.plant import plant  # noqa: E402
from verify.robustness import decision_terms  # noqa: E402
from verify.solver import Options, solve_case  # noqa: E402
from verify.tbounds import TorchNet  # noqa: E402
from verify.tbounds.alpha import alpha_rows  # noqa: E402
from verify.tbounds.crown import crown_rows  # noqa: E402
from verify.tbounds.interval import interval_bounds  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "data")


def random_net(seed, sizes=(3, 12, 12, 12, 4), scale=1.0):
    rng = np.random.default_rng(seed)
    return Network([(rng.normal(size=(b, a)) * scale / np.sqrt(a), rng.normal(size=b) * 0.3 * scale)
                    for a, b in zip(sizes, sizes[1:])])


@pytest.mark.parametrize("seed,scale", [(0, 1.0), (1, 1.0), (2, 1e3), (3, 1e-3)])
def test_bounds_below_sampled_values(seed, scale):
    net = random_net(seed, scale=scale)
    tn = TorchNet(net)
    rng = np.random.default_rng(seed)
    c = rng.uniform(-1, 1, (16, 3))
    w = rng.uniform(0.01, 0.5, (16, 1))
    lo, hi = c - w, c + w
    C = rng.normal(size=(5, 4))
    L, H, Ct = tn.tensor(lo), tn.tensor(hi), tn.tensor(C)
    with torch.no_grad():
        lb, X, pre = crown_rows(tn, L, H, Ct)
        ib = interval_bounds(tn, L, H)
    la, _ = alpha_rows(tn, L, H, Ct, pre, iters=10)
    assert bool((la >= lb).all())  # alpha keeps the best bound, starting from CROWN's
    pts = lo[:, None, :] + rng.random((16, 3000, 3)) * (hi - lo)[:, None, :]
    pts[:, :8] = np.where(rng.random((16, 8, 3)) < 0.5, lo[:, None], hi[:, None])  # corners
    Y = net.forward(pts.reshape(-1, 3)).reshape(16, 3000, 4)
    vals = Y @ C.T
    assert np.all(vals.min(1) >= la.numpy()), "alpha-CROWN bound above a sampled value"
    assert np.all(vals.min(1) >= lb.numpy())
    Z = net.pre_activations(pts.reshape(-1, 3))
    for k, (l, u) in enumerate(pre):
        z = Z[k].reshape(16, 3000, -1)
        assert np.all(z.min(1) >= l.numpy()) and np.all(z.max(1) <= u.numpy())
        assert np.all(l.numpy() >= ib[k][0].numpy() - 1e-12)  # never looser than intervals
    # and the bound is useful: on the smallest boxes it is close to the sampled minimum
    small = w[:, 0] < 0.05
    gap = (vals.min(1) - la.numpy())[small]
    if gap.size:
        assert np.all(gap < 0.5 * np.abs(vals[small]).max())


def _exact_forward(net, x):
    a = [Fraction(float(v)) for v in x]
    for i, (W, b) in enumerate(net.layers):
        z = [sum((Fraction(float(W[r, j])) * a[j] for j in range(len(a))), Fraction(float(b[r])))
             for r in range(W.shape[0])]
        a = [max(v, Fraction(0)) for v in z] if i < len(net.layers) - 1 else z
    return a


def test_rounding_is_outward_against_exact_rationals():
    """Degenerate boxes (lo == hi): the bound must not exceed the exact real value, which the
    plain float evaluation sometimes does (so the padding is doing work)."""
    net = random_net(7, sizes=(4, 9, 9, 3))
    tn = TorchNet(net)
    rng = np.random.default_rng(7)
    X = rng.uniform(-1, 1, (60, 4))
    C = np.array([[1.0, -1.0, 0.0], [0.3, 0.1, -0.7]])
    with torch.no_grad():
        lb, _, _ = crown_rows(tn, tn.tensor(X), tn.tensor(X), tn.tensor(C))
    float_above = 0
    for i in range(60):
        y = _exact_forward(net, X[i])
        for r in range(2):
            exact = sum(Fraction(float(C[r, j])) * y[j] for j in range(3))
            assert Fraction(float(lb[i, r])) <= exact, "bound above the exact value"
            assert float(exact) - float(lb[i, r]) < 1e-9  # and tight
            if Fraction(float((C @ net.forward(X[i]))[r])) > exact:
                float_above += 1
    assert float_above > 0  # the naive float value would have been unsound somewhere


def test_input_bab_certificate_and_leaf_recheck():
    net = random_net(11, sizes=(2, 10, 10, 3))
    p = np.array([0.3, -0.2])
    label = int(net.forward(p).argmax())
    terms = decision_terms(3, label, "argmax")
    for eps in (0.05, 0.3):
        r = solve_case(net, p - eps, p + eps, terms, timeout_s=60, strict=True,
                       opts=Options(recheck_leaves=True, use_z3=False))
        assert r.status in ("sat", "unsat")
        if r.status == "unsat":
            assert r.stats["certificate"].startswith("leaf weights sum to 1")
            assert "closed again" in r.stats["certificate"]
            assert r.stats["leaves_rechecked"] == r.stats["leaves"]
        # the numpy engine agrees
        r2 = solve_case(net, p - eps, p + eps, terms, timeout_s=60, strict=True, opts=Options(engine="numpy"))
        assert r2.status == r.status


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_counterexamples_are_found_and_twins_proved(seed):
    """A ReLU hat of L1-radius 1e-4 eps planted in the ball (verify.plant): never 'robust'."""
    rng = np.random.default_rng(seed)
    n_in = 2 + seed
    base = random_net(100 + seed, sizes=(n_in, 16, 16, 3))
    p = rng.uniform(-1, 1, n_in)
    label = int(base.forward(p).argmax())
    eps = 0.02
    centre = p + rng.uniform(-1, 1, n_in) * eps * 0.9
    y = base.forward(centre)
    target = (label + 1) % 3
    planted = plant(base, centre, 1e-4 * eps, target, float(y[label] - y[target] + 1.0))
    assert planted.forward(centre).argmax() != label
    r = verify.check_robustness(planted, p, eps, timeout=30)
    assert r.verdict == "counterexample"
    x = np.array(r.counterexample)
    assert np.max(np.abs(x - p)) <= eps and planted.forward32(x).argmax() != label
    twin = plant(base, centre, 1e-4 * eps, target, 0.0)
    rt = verify.check_robustness(twin, p, eps, timeout=30)
    assert rt.verdict != "counterexample" or twin.forward(np.array(rt.counterexample)).argmax() != label


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_gives_the_same_sound_bounds():
    net = random_net(3)
    rng = np.random.default_rng(3)
    lo = rng.uniform(-1, 0, (8, 3))
    hi = lo + 0.2
    C = np.eye(4)
    out = []
    for dev in ("cpu", "cuda"):
        tn = TorchNet(net, dev)
        with torch.no_grad():
            lb, _, _ = crown_rows(tn, tn.tensor(lo), tn.tensor(hi), tn.tensor(C))
        out.append(lb.cpu().numpy())
    assert np.allclose(out[0], out[1], rtol=1e-9, atol=1e-9)
    r = solve_case(net, lo[0], hi[0], decision_terms(4, 0, "argmax"), timeout_s=30, opts=Options(device="cuda"))
    assert r.status in ("sat", "unsat")
