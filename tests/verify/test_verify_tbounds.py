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
from verify.tbounds.alpha import alpha_intermediate, alpha_rows  # noqa: E402
from verify.tbounds.crown import crown_rows  # noqa: E402
from verify.tbounds.interval import interval_bounds  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "data")


def random_net(seed, sizes=(3, 12, 12, 12, 4), scale=1.0, f32=False):
    rng = np.random.default_rng(seed)
    layers = [(rng.normal(size=(b, a)) * scale / np.sqrt(a), rng.normal(size=b) * 0.3 * scale)
              for a, b in zip(sizes, sizes[1:])]
    if f32:  # weights that are exact float32s, as in an ONNX file: the float32 bounds apply
        layers = [(W.astype(np.float32).astype(np.float64), b.astype(np.float32).astype(np.float64))
                  for W, b in layers]
    return Network(layers)


def test_float32_bounds_only_where_the_weights_are_exact_float32s():
    assert TorchNet(random_net(0), dtype="float32").dtype == torch.float64
    tn = TorchNet(random_net(0, f32=True), dtype="float32")
    assert tn.dtype == torch.float32
    assert tn.rows(np.array([[1.0, -1.0, 0, 0]])) is not None and tn.rows(np.array([[0.1, 0, 0, 0]])) is None
    lo = np.array([0.1, -1 / 3, 2 / 3])  # not float32s: the box is rounded outward
    L, H = tn.box(lo, lo)
    assert np.all(L.double().numpy() <= lo) and np.all(H.double().numpy() >= lo) and np.any(L.numpy() < H.numpy())


@pytest.mark.parametrize("seed,scale,dtype", [(0, 1.0, "float64"), (1, 1.0, "float64"), (2, 1e3, "float64"),
                                               (3, 1e-3, "float64"), (0, 1.0, "float32"), (2, 1e3, "float32"),
                                               (3, 1e-3, "float32")])
def test_bounds_below_sampled_values(seed, scale, dtype):
    net = random_net(seed, scale=scale, f32=dtype == "float32")
    tn = TorchNet(net, dtype=dtype)
    assert str(tn.dtype) == "torch." + dtype
    rng = np.random.default_rng(seed)
    c = rng.uniform(-1, 1, (16, 3))
    w = rng.uniform(0.01, 0.5, (16, 1))
    lo, hi = c - w, c + w
    C = rng.normal(size=(5, 4)).astype(np.float32).astype(np.float64)
    (L, H), Ct = tn.box(lo, hi), tn.rows(C)
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
        assert np.all(l.double().numpy() >= ib[k][0].double().numpy() - 1e-12)  # never looser than intervals
    # and the bound is useful: on the smallest boxes it is close to the sampled minimum
    small = w[:, 0] < 0.05
    gap = (vals.min(1) - la.numpy())[small]
    if gap.size:
        assert np.all(gap < 0.5 * np.abs(vals[small]).max())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_optimised_intermediate_bounds_are_sound_and_tighter(dtype):
    """alpha_intermediate: every hidden layer's bounds contain every sampled pre-activation,
    are never looser than CROWN's, and are strictly tighter for some neuron (deep layers)."""
    net = random_net(4, sizes=(3, 16, 16, 16, 16, 4), f32=dtype == "float32")
    tn = TorchNet(net, dtype=dtype)
    rng = np.random.default_rng(4)
    c = rng.uniform(-1, 1, (6, 3))
    w = rng.uniform(0.2, 0.6, (6, 1))
    lo, hi = c - w, c + w
    L, H = tn.box(lo, hi)
    with torch.no_grad():
        _, _, pre = crown_rows(tn, L, H, tn.rows(np.eye(4)))
    opt = alpha_intermediate(tn, L, H, pre, iters=30, lr=0.2)
    pts = lo[:, None, :] + rng.random((6, 4000, 3)) * (hi - lo)[:, None, :]
    Z = net.pre_activations(pts.reshape(-1, 3))
    tighter = 0.0
    for k, ((l0, u0), (l, u)) in enumerate(zip(pre, opt)):
        z = Z[k].reshape(6, 4000, -1)
        assert np.all(z.min(1) >= l.double().numpy()) and np.all(z.max(1) <= u.double().numpy()), k
        assert bool((l >= l0).all()) and bool((u <= u0).all())
        tighter += float((l - l0).sum() + (u0 - u).sum())
    assert tighter > 0.0
    assert opt[0][0] is pre[0][0]  # the first layer's bounds are exact for a box: kept as they are


def _exact_forward(net, x):
    a = [Fraction(float(v)) for v in x]
    for i, (W, b) in enumerate(net.layers):
        z = [sum((Fraction(float(W[r, j])) * a[j] for j in range(len(a))), Fraction(float(b[r])))
             for r in range(W.shape[0])]
        a = [max(v, Fraction(0)) for v in z] if i < len(net.layers) - 1 else z
    return a


@pytest.mark.parametrize("dtype,tight", [("float64", 1e-9), ("float32", 1e-4)])
def test_rounding_is_outward_against_exact_rationals(dtype, tight):
    """Degenerate boxes (lo == hi): the bound must not exceed the exact real value, which the
    plain float evaluation sometimes does (so the padding is doing work)."""
    net = random_net(7, sizes=(4, 9, 9, 3), f32=dtype == "float32")
    tn = TorchNet(net, dtype=dtype)
    assert str(tn.dtype) == "torch." + dtype
    rng = np.random.default_rng(7)
    X = rng.uniform(-1, 1, (60, 4))
    if dtype == "float32":
        X = X.astype(np.float32).astype(np.float64)  # degenerate float32 boxes
    C = np.array([[1.0, -1.0, 0.0], [0.375, 0.125, -0.75]])
    with torch.no_grad():
        lb, _, _ = crown_rows(tn, *tn.box(X, X), tn.rows(C))
    if dtype == "float32":  # the plain float32 evaluation of the same net
        Y32 = net.forward32(X)
    float_above = 0
    for i in range(60):
        y = _exact_forward(net, X[i])
        for r in range(2):
            exact = sum(Fraction(float(C[r, j])) * y[j] for j in range(3))
            assert Fraction(float(lb[i, r])) <= exact, "bound above the exact value"
            assert float(exact) - float(lb[i, r]) < tight  # and tight
            naive = C @ net.forward(X[i]) if dtype == "float64" else (C.astype(np.float32) @ Y32[i]).astype(np.float64)
            if Fraction(float(naive[r])) > exact:
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


def test_coefficient_split_rule_never_bisects_a_sliver():
    """A dimension already 32x narrower (relative to the root box) than the box's widest is no
    candidate, whatever its coefficient score; where no candidate scores, the widest one."""
    from verify.isplit import candidate_dims, coefficient_dims

    root = torch.tensor([[0.08, 1.0, 1.0, 0.05, 0.05]]).expand(3, -1)
    w = torch.tensor([[4e-5, 8e-6, 0.5, 0.05, 1e-5],    # the sliver ACAS 3_9/prop 1 ended in
                      [0.04, 0.5, 0.5, 0.025, 0.025],   # every dimension at half its root width
                      [4e-5, 8e-6, 0.5, 0.05, 1e-5]])
    score = torch.tensor([[9.0, 7.0, 0.0, 0.1, 5.0],
                          [9.0, 7.0, 0.0, 0.1, 5.0],
                          [9.0, 7.0, 0.0, 0.0, 5.0]])
    assert coefficient_dims(score, w, root).tolist() == [3, 0, 3]
    # a flat root dimension (a fixed input) in a float32 box: never a candidate, and no NaN
    # turning every comparison false (dimension 0 was then split until the box was too small)
    root32 = torch.tensor([[0.005, 0.019, 0.0, 0.18, 0.083]], dtype=torch.float32)
    w32 = root32 * torch.tensor([[1 / 64, 1.0, 1.0, 1.0, 1.0]])
    assert coefficient_dims(torch.tensor([[5.0, 0.1, 0.0, 0.0, 0.0]]), w32, root32).tolist() == [1]
    assert candidate_dims(w32, root32).tolist() == [[False, True, False, True, True]]


def test_sum_split_rule_proves_acas_2_8_property_1():
    """With the 'sum' rule alone this instance was open after 46,713 boxes, its boxes cut into
    slivers along the dimensions with large coefficients; it closes in about 5,000 now."""
    net = verify.load_network(os.path.join(DATA, "ACASXU_run2a_2_8_batch_2000.onnx"))
    r = verify.check_vnnlib(net, os.path.join(DATA, "acasxu_prop_1.vnnlib"), timeout=120,
                            options=Options(split_coefs="sum", split_portfolio=()))
    assert r.result == "unsat"
    case = r.stats["cases"][0]
    assert case["certificate"] == "leaf weights sum to 1" and case["domains"] < 15000


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
