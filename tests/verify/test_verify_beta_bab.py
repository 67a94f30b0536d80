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


def _split_domain(tn, pre0, rng, layer, n=1):
    """Signs (+-1 on n unstable neurons of ``layer``) and the root bounds clamped by them."""
    signs, pre = [], []
    for k, (l, u) in enumerate(pre0):
        sg = torch.zeros_like(l)
        if k == layer:
            unst = np.flatnonzero(((l < 0) & (u > 0))[0].numpy())
            for j in rng.choice(unst, n, replace=False):
                sg[0, j] = float(rng.choice([-1.0, 1.0]))
        signs.append(sg)
        pre.append((torch.where(sg > 0, l.clamp(min=0), l), torch.where(sg < 0, u.clamp(max=0), u)))
    return signs, pre


def test_refresh_after_split_keeps_the_layers_before_the_split_and_matches_a_full_refresh():
    """A split in layer 1 cannot change layers 0-1: refreshing from layer 2 on gives what the
    full CROWN refresh gives, never looser than the clamped bounds, and holds on sampled points
    of the split domain."""
    from verify.tbounds.crown import refresh_after_split

    net = f32_net(7, (5, 24, 24, 24, 24, 3))
    tn = TorchNet(net, dtype="float32")
    rng = np.random.default_rng(7)
    L, H = tn.box(np.full((1, 5), -1.0), np.full((1, 5), 1.0))
    pre0 = intermediate_bounds(tn, L, H)
    signs, pre = _split_domain(tn, pre0, rng, layer=1, n=3)
    with torch.no_grad():
        part = refresh_after_split(tn, L, H, pre, torch.tensor([2]))
        full = intermediate_bounds(tn, L, H, pre_known=pre)
    for k in range(2):
        assert torch.equal(part[k][0], pre[k][0]) and torch.equal(part[k][1], pre[k][1])
    tighter = 0
    for k in range(2, 4):
        assert torch.allclose(part[k][0], full[k][0]) and torch.allclose(part[k][1], full[k][1])
        assert bool((part[k][0] >= pre[k][0]).all() and (part[k][1] <= pre[k][1]).all())
        tighter += int((part[k][0] > pre[k][0]).sum() + (part[k][1] < pre[k][1]).sum())
    assert tighter > 0  # the split's clamp does tighten the layers after it
    pts = rng.uniform(-1, 1, (200000, 5))
    Z = net.pre_activations(pts)
    keep = np.all(Z[1] * signs[1][0].numpy() >= 0, axis=1)
    assert keep.sum() > 100
    for k in range(4):
        assert np.all(Z[k][keep] >= part[k][0][0].double().numpy())
        assert np.all(Z[k][keep] <= part[k][1][0].double().numpy())
    # a box with nothing to refresh (first past the last hidden layer) keeps its bounds
    with torch.no_grad():
        same = refresh_after_split(tn, L, H, pre, torch.tensor([4]))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(same, pre))


def test_alpha_rows_warm_start_resumes_from_the_best_slopes_and_multipliers():
    """The parameters returned with the best bound reproduce it when fed back (the first
    iterate of a warm start evaluates them), and a warm-started run of a few steps is at
    least as good as a cold one of as many steps; the bounds hold on the split domain."""
    net = f32_net(11, (6, 20, 20, 3))
    tn = TorchNet(net, dtype="float32")
    rng = np.random.default_rng(11)
    L, H = tn.box(np.full((1, 6), -1.0), np.full((1, 6), 1.0))
    pre0 = intermediate_bounds(tn, L, H)
    signs, pre = _split_domain(tn, pre0, rng, layer=0, n=2)
    C = tn.rows(np.array([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0], [1.0, 0.0, -1.0]]))
    lb1, _, a1, b1 = alpha_rows(tn, L, H, C, pre, iters=15, lr=0.1, signs=signs, want_params=True)
    assert b1[1] is None and b1[0] is not None and bool((b1[0] >= 0).all())
    with torch.no_grad():
        again, _ = backsub(tn, tn.n_hidden, C.unsqueeze(0), L, H, pre, alphas=a1, betas=b1, signs=signs)
    assert torch.equal(again, lb1)
    warm, _ = alpha_rows(tn, L, H, C, pre, iters=5, lr=0.1, signs=signs, alpha0=a1, beta0=b1)
    cold, _ = alpha_rows(tn, L, H, C, pre, iters=5, lr=0.1, signs=signs)
    assert bool((warm >= lb1).all()) and bool((warm >= cold).all()) and bool((warm > cold).any())
    pts = rng.uniform(-1, 1, (100000, 6))
    keep = np.all(net.pre_activations(pts)[0] * signs[0][0].numpy() >= 0, axis=1)
    vals = net.forward(pts[keep]) @ C.double().numpy().T
    assert np.all(vals.min(0) >= warm[0].double().numpy())


def test_alpha_rows_drops_refuted_boxes_and_keeps_their_bounds():
    """With a target, boxes whose rows are all refuted leave the batch; their results are those
    of the steps they took, the others' those of a run without them."""
    net = f32_net(3, (4, 16, 16, 2))
    tn = TorchNet(net, dtype="float32")
    rng = np.random.default_rng(3)
    c = rng.uniform(-1, 1, (8, 4))
    L, H = tn.box(c - 0.05, c + 0.05)
    L[:4], H[:4] = tn.box(np.full((4, 4), -1.0), np.full((4, 4), 1.0))  # 4 wide boxes stay open
    pre = intermediate_bounds(tn, L, H)
    C = tn.rows(np.array([[1.0, -1.0]]))
    lb0, X0 = backsub(tn, tn.n_hidden, C.unsqueeze(0), L, H, pre)
    target = (lb0[4:].min() - 1e-3).double().reshape(1)  # the narrow boxes are refuted at once
    assert bool((lb0[:4, 0] < target).all())
    lb, _ = alpha_rows(tn, L, H, C, pre, iters=8, target=target, lb0=lb0, X0=X0)
    alone, _ = alpha_rows(tn, L[:4], H[:4], C, [(a[:4], b[:4]) for a, b in pre], iters=8, target=target,
                          lb0=lb0[:4], X0=X0[:4])
    assert torch.equal(lb[4:], lb0[4:])
    assert torch.allclose(lb[:4], alone, rtol=0, atol=1e-5)


def test_domain_pool_grows_and_hands_out_the_smallest_priorities_first():
    from verify.rbab import DomainPool

    pool = DomainPool(torch, 3, 2, torch.float32, torch.device("cpu"), cap=4)
    for lot in range(3):
        pri = torch.tensor([5.0, 1.0, 3.0], dtype=torch.float64) + 10 * lot
        pool.put(pri, sig=torch.full((3, 3), lot, dtype=torch.int8), depth=torch.tensor([lot] * 3),
                 alpha=torch.full((3, 2, 3), 0.5))
    assert pool.n == 9 and pool.score.shape[0] >= 9
    d = pool.take(4)
    assert pool.n == 5
    assert sorted(d["depth"].tolist()) == [0, 0, 0, 1] and bool((d["alpha"] == 0.5).all())
    pool.put(torch.tensor([0.0], dtype=torch.float64), depth=torch.tensor([9]))
    assert pool.take(1)["depth"].tolist() == [9]
    rest = pool.take(100)
    assert pool.n == 0 and rest["depth"].shape[0] == 5


def test_alpha_rows_per_row_items_match_each_row_optimised_alone():
    """per_row: every (box, row) is optimised as its own problem (a refuted row leaves the
    batch alone): each result is what that row gets optimised by itself, rows refuted by the
    starting bound are returned as they were, and the returned parameters reproduce the bounds."""
    net = f32_net(13, (5, 16, 16, 4))
    tn = TorchNet(net, dtype="float32")
    rng = np.random.default_rng(13)
    c = rng.uniform(-1, 1, (3, 5))
    L, H = tn.box(c - 0.4, c + 0.4)
    pre0 = intermediate_bounds(tn, L, H)
    sg0 = torch.zeros_like(pre0[0][0])
    for b in range(3):
        unst = torch.nonzero((pre0[0][0][b] < 0) & (pre0[0][1][b] > 0)).flatten()
        sg0[b, unst[:2]] = torch.tensor([1.0, -1.0])
    signs = [sg0, torch.zeros_like(pre0[1][0])]
    pre = [(torch.where(sg0 > 0, pre0[0][0].clamp(min=0), pre0[0][0]),
            torch.where(sg0 < 0, pre0[0][1].clamp(max=0), pre0[0][1])), pre0[1]]
    C = tn.rows(np.array([[1.0, -1.0, 0.0, 0.0], [0.0, 1.0, -1.0, 0.0], [0.0, 0.0, 1.0, -1.0]]))
    lb0, X0 = backsub(tn, tn.n_hidden, C.unsqueeze(0), L, H, pre)
    target = lb0.median(0).values.double() + 0.05  # some (box, row) refuted at once, others not
    target[0] = lb0[:, 0].min().double() - 1.0       # row 0 refuted everywhere from the start
    lb, X, al, be = alpha_rows(tn, L, H, C, pre, iters=6, lr=0.1, target=target, lb0=lb0, X0=X0, signs=signs,
                               want_params=True, per_row=True)
    assert torch.equal(lb[:, 0], lb0[:, 0]) and torch.equal(X[:, 0], X0[:, 0])
    for r in range(1, 3):
        alone, _ = alpha_rows(tn, L, H, C[r:r + 1], pre, iters=6, lr=0.1, target=target[r:r + 1],
                              lb0=lb0[:, r:r + 1], X0=X0[:, r:r + 1], signs=signs)
        assert torch.allclose(lb[:, r], alone[:, 0], rtol=0, atol=1e-5)
    assert bool((lb[:, 1:] > lb0[:, 1:]).any())
    with torch.no_grad():
        again, _ = backsub(tn, tn.n_hidden, C.unsqueeze(0), L, H, pre, alphas=al, betas=be, signs=signs)
    assert torch.allclose(again[:, 1:], lb[:, 1:], rtol=0, atol=1e-4)  # float32 sums in another order


def test_back_substitution_in_slices_gives_the_batch_result(monkeypatch):
    """crown._backsub_unstable works in slices of boxes (memory-bound steps stay in the cache);
    each slice pads to its own widest box, so the bounds are those of the whole batch at once
    (up to float32 summation order) and the slicing does happen."""
    import verify.tbounds.crown as crown

    net = f32_net(17, (6, 24, 24, 24, 3))
    tn = TorchNet(net, dtype="float32")
    rng = np.random.default_rng(17)
    c = rng.uniform(-1, 1, (40, 6))
    L, H = tn.box(c - rng.uniform(0.05, 0.6, (40, 1)), c + 0.3)
    whole = intermediate_bounds(tn, L, H)
    calls = []
    inner = crown._backsub_unstable

    def counted(*a, **k):
        calls.append(a[1].shape[0])
        return inner(*a, **k)

    monkeypatch.setattr(crown, "CHUNK_FLOATS", 2000)
    monkeypatch.setattr(crown, "_backsub_unstable", counted)
    sliced = intermediate_bounds(tn, L, H)
    assert max(calls) == 40 and min(calls) < 40  # the batch was cut into slices
    for (a, b), (x, y) in zip(whole, sliced):
        assert torch.allclose(a, x, rtol=0, atol=1e-5) and torch.allclose(b, y, rtol=0, atol=1e-5)
    Ln, Hn = L.double().numpy(), H.double().numpy()
    pts = Ln[:, None, :] + rng.uniform(0, 1, (40, 500, 6)) * (Hn - Ln)[:, None, :]
    for bx in range(0, 40, 7):
        Z = net.pre_activations(pts[bx])
        for k in range(3):
            assert np.all(Z[k] >= sliced[k][0][bx].double().numpy()) and np.all(Z[k] <= sliced[k][1][bx].double().numpy())
