"""beta-CROWN bounds (split constraints in the bound), the torch ReLU-split BaB built on them,
and the lookahead input-split rule.

Soundness is checked against sampled points that satisfy a domain's split constraints; the
BaB's verdicts against the numpy engine's (Z3 leaves) on the same instances.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from verify.network import Network  # noqa: E402
from verify.robustness import decision_terms  # noqa: E402
from verify.solver import Options, solve_case  # noqa: E402
from verify.tbounds import TorchNet  # noqa: E402
from verify.tbounds.alpha import alpha_rows  # noqa: E402
from verify.tbounds.crown import backsub, intermediate_bounds  # noqa: E402


def f32_net(seed, sizes):
    rng = np.random.default_rng(seed)
    return Network([((rng.normal(size=(b, a)) / np.sqrt(a)).astype(np.float32).astype(np.float64),
                     (rng.normal(size=b) * 0.3).astype(np.float32).astype(np.float64))
                    for a, b in zip(sizes, sizes[1:])])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_beta_bound_holds_on_the_split_domain_and_improves_on_crown(dtype):
    net = f32_net(5, (4, 16, 16, 3))
    tn = TorchNet(net, dtype=dtype)
    rng = np.random.default_rng(5)
    lo, hi = np.full(4, -1.0), np.full(4, 1.0)
    L, H = tn.box(lo[None], hi[None])
    pre0 = intermediate_bounds(tn, L, H)
    C = tn.rows(np.array([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0]]))
    pts = rng.uniform(-1, 1, (200000, 4))
    Z = net.pre_activations(pts)
    improved = 0
    for trial in range(6):
        # split two unstable neurons of each hidden layer at random signs
        signs, pre = [], []
        keep = np.ones(len(pts), bool)
        for k, (l, u) in enumerate(pre0):
            unst = np.flatnonzero(((l < 0) & (u > 0))[0].numpy())
            sg = np.zeros(l.shape[1])
            for j in rng.choice(unst, 2, replace=False):
                sg[j] = rng.choice([-1.0, 1.0])
                keep &= Z[k][:, j] * sg[j] >= 0
            s_t = torch.as_tensor(sg, dtype=l.dtype)[None]
            signs.append(s_t)
            pre.append((torch.where(s_t > 0, l.clamp(min=0), l), torch.where(s_t < 0, u.clamp(max=0), u)))
        with torch.no_grad():
            lb_c, _ = backsub(tn, tn.n_hidden, C.unsqueeze(0), L, H, pre)
            # any multipliers >= 0 give a sound bound: random large ones too
            betas = [torch.rand(1, 2, s_.shape[1], generator=torch.Generator().manual_seed(trial),
                                dtype=torch.float64).to(s_.dtype) * 3 for s_ in signs]
            lb_r, _ = backsub(tn, tn.n_hidden, C.unsqueeze(0), L, H, pre, betas=betas, signs=signs)
        lb_a, _ = alpha_rows(tn, L, H, C, pre, iters=30, lr=0.1)
        lb_b, _ = alpha_rows(tn, L, H, C, pre, iters=30, lr=0.1, signs=signs)
        assert bool((lb_b >= lb_c).all())
        improved += int((lb_b > lb_a + 1e-6).any())  # beyond what the slopes alone give
        if keep.sum() == 0:
            continue
        vals = net.forward(pts[keep]) @ np.array([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0]]).T
        assert np.all(vals.min(0) >= lb_b[0].double().numpy()), "beta bound above a value in the domain"
        assert np.all(vals.min(0) >= lb_r[0].double().numpy()), "random-beta bound above a value in the domain"
    assert improved > 0  # the multipliers do work somewhere


@pytest.mark.parametrize("seed,eps,want", [(0, 0.1, "unsat"), (1, 0.15, "unsat"), (3, 0.3, "unsat"), (2, 0.3, "sat")])
def test_torch_relu_bab_agrees_with_the_numpy_engine(seed, eps, want):
    """12 inputs (ReLU splitting, not input splitting): beta-CROWN BaB vs the numpy BaB with Z3.
    The instances were chosen so that the whole-box bound does not decide (measured)."""
    net = f32_net(20 + seed, (12, 20, 20, 4))
    rng = np.random.default_rng(seed)
    p = rng.uniform(-1, 1, 12)
    label = int(net.forward(p).argmax())
    terms = decision_terms(4, label, "argmax")
    lo, hi = p - eps, p + eps
    r = solve_case(net, lo, hi, terms, timeout_s=60, strict=True, opts=Options(root_pgd_rounds=0))
    assert r.stats["method"].startswith("ReLU-split BaB (torch") or r.stats["method"] == "attack"
    r2 = solve_case(net, lo, hi, terms, timeout_s=10, strict=True, opts=Options(relu_engine="numpy"))
    assert r.status == want and r2.status in (want, "unknown")  # the numpy engine is weaker (seed 1: timeout)
    if want == "unsat":
        assert r.stats["certificate"].startswith("leaf weights sum to 1")
        assert r.stats["domains"] >= 1
    else:
        x = r.x
        assert np.all(x >= lo) and np.all(x <= hi) and net.forward(x).argmax() != label
        assert net.forward32(x).argmax() != label


def test_lookahead_splits_where_the_relaxation_is_loose():
    """y = |x1| + 3 x0 on x0 in [-0.5, 0.5], x1 in [-1, 1.01]: the linear input x0 has the largest
    |coefficient| x width (the 'sum' score picks it), but only splitting x1 at 0 makes the two
    ReLUs of |x1| exact, so the lookahead picks x1."""
    from verify.isplit import lookahead_dims

    W1 = np.array([[0.0, 1.0], [0.0, -1.0], [1.0, 0.0]])
    b1 = np.array([0.0, 0.0, 1.0])
    W2 = np.array([[1.0, 1.0, 3.0]])
    b2 = np.array([-3.0])
    net = Network([(W1, b1), (W2, b2)])
    tn = TorchNet(net, dtype="float32")
    L, H = tn.box(np.array([[-0.5, -1.0]]), np.array([[0.5, 1.01]]))
    pre = intermediate_bounds(tn, L, H)
    C = tn.rows(np.array([[1.0]]))
    lb, X = backsub(tn, tn.n_hidden, C.unsqueeze(0), L, H, pre)
    sum_score = X.abs().sum(1) * (H - L)
    assert int(sum_score.argmax(1)[0]) == 0
    rhs = torch.tensor([-1.55], dtype=torch.float64)
    assert float(lb[0, 0]) < -1.55  # open at the root
    d = lookahead_dims(tn, L, H, pre, C, rhs, torch.tensor([[True]]), sum_score, (H - L)[0])
    assert int(d[0]) == 1
    # and the input BaB with it proves y > -1.55 (true minimum -1.5) in few boxes
    r = solve_case(net, np.array([-0.5, -1.0]), np.array([0.5, 1.01]), [(np.array([[1.0]]), np.array([-1.55]))],
                   timeout_s=30, opts=Options(split_portfolio=()))
    assert r.status == "unsat" and r.stats["domains"] <= 5


def test_planted_counterexample_on_a_20_input_net_is_found_inside_a_split_domain():
    """A hat of L1-radius 1e-4 eps planted in a 20-input net (benchmarks/verify_soundness.py,
    seed 2): plain PGD sees a flat network around it; the BaB's PGD inside the split domains
    (pulled towards the bump neuron's split z >= 0) lands in it."""
    import sys
    import os

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
    from verify_soundness import check_cex, make_instance

    import verify

    inst = make_instance(2, (20,))
    net, p, eps, label = inst["planted"], inst["p"], inst["eps"], inst["label"]
    terms = decision_terms(net.n_outputs, label, "argmax")
    r = solve_case(net, p - eps, p + eps, terms, timeout_s=60, strict=True)
    assert r.status == "sat" and r.stats["found_by"] == "PGD inside a ReLU-split domain"
    assert np.max(np.abs(r.x - inst["centre"])) <= inst["delta"]  # in the hat
    rr = verify.check_robustness(net, p, eps, timeout=60)
    assert rr.verdict == "counterexample" and check_cex(net, inst, rr)
    rt = verify.check_robustness(inst["twin"], p, eps, timeout=60)
    assert rt.verdict == "robust"
