"""The oracle: float noise, ties, rounding boundaries and NaN are not bugs; wrong results are."""

import torch

from fuzz.campaign import oracle, sensitivity

from fuzz.gen import program

from fuzz.campaign import session, worker
from fuzz.ir.graph import Graph, Node


def ref(n):
    return {"ref": n}


def fn_node(g, nid, op, args, shape, dtype="float32", kwargs=None, api="function", overload=None):
    out = g.add_tensor(shape, dtype, name=f"{op.split('.')[-1].split('::')[-1]}_{nid}")
    g.add_node(Node(id=nid, op=op, api=api, overload=overload, args=args, kwargs=kwargs or {}, outputs=[out]))
    return out


def save(tmp_path, g, tensors, name="p"):
    d = tmp_path / name
    program.save_program(g, tensors, d)
    return d


def argmax_graph(ties: bool):
    g = Graph()
    x = g.add_tensor([4, 6], "float32", "input", name="x")
    r = fn_node(g, "n0", "torch.relu", [ref(x)], [4, 6])
    a = fn_node(g, "n1", "torch.argmax", [ref(r), 1], [4], dtype="int64")
    s = fn_node(g, "n2", "torch.softmax", [ref(r), 1], [4, 6])
    g.outputs = [s, a]
    if ties:
        x_val = torch.tensor([[-1.0, 0.5, 0.5, -2.0, 0.1, 0.2]]).repeat(4, 1)  # relu zeros and an exact max tie
    else:
        x_val = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 7.0
    return g, {"x": x_val}


def session_for(tmp_path, g, tensors):
    d = save(tmp_path, g, tensors)
    return session.Session(worker.load_model({"source": {"program_dir": str(d)}}))


def test_value_mismatch_ignores_fp16_noise_and_flags_real_errors():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(64, 64, generator=gen, dtype=torch.float64)
    b = torch.randn(64, 64, generator=gen, dtype=torch.float64)
    ref64 = a @ b
    eager = (a.half() @ b.half())                      # fp16 eager
    # the same product summed in two halves, each rounded to fp16: a different fp16 result of the same
    # accuracy (eager's own fp16 matmul may accumulate in fp32, so fp32-then-round can equal it exactly)
    ah, bh = a.half().float(), b.half().float()
    other = (ah[:, :32] @ bh[:32]).half() + (ah[:, 32:] @ bh[32:]).half()
    assert not torch.equal(eager, other)
    atol, rtol, g = oracle.tolerance("float16")
    assert not oracle.value_mismatch(ref64, eager, other, atol, rtol, g, oracle.K).any()
    wrong = other.clone()
    wrong[3, 4] += 0.5 * (1 + wrong[3, 4].abs())
    bad = oracle.value_mismatch(ref64, eager, wrong, atol, rtol, g, oracle.K)
    assert bad.sum() == 1 and bad[3, 4]


def test_nonfinite_elements_are_judged_on_their_class_only():
    ref64 = torch.tensor([1.0, float("nan"), float("inf"), 2.0], dtype=torch.float64)
    eager = torch.tensor([1.0, float("nan"), float("inf"), 2.0])
    same_class = torch.tensor([1.0, float("nan"), float("inf"), 2.0])
    assert not oracle.value_mismatch(ref64, eager, same_class, *oracle.tolerance("float32"), oracle.K).any()
    # a finite value where eager (and float64) had NaN, or -inf for +inf, is a mismatch
    for i, v in ((1, 7.0), (2, -float("inf")), (2, float("nan")), (2, 5.0)):
        compiled = same_class.clone()
        compiled[i] = v
        bad = oracle.value_mismatch(ref64, eager, compiled, *oracle.tolerance("float32"), oracle.K)
        assert bad.tolist() == [j == i for j in range(4)], (i, v)
    # a NaN the reference does not have is a (nonfinite) mismatch
    compiled_nan = torch.tensor([float("nan"), float("nan"), float("inf"), 2.0])
    r = oracle.Reference(["out0"], [eager], [ref64])
    j = oracle.judge(r, [compiled_nan])
    assert j.kind == "mismatch" and j.detail == "nonfinite" and j.diff["index"] == [0]


def test_class_is_not_judged_where_eager_lost_it():
    """fp16 eager overflows to inf where float64 (and a compiler computing in fp32) stays finite:
    eager is no reference there, any class passes; where eager and float64 agree, it is judged."""
    ref64 = torch.tensor([70000.0 / 4, float("inf")], dtype=torch.float64)
    eager = torch.tensor([float("inf"), float("inf")], dtype=torch.float16)   # x * 2 / 8 overflowed at x * 2
    for v in (float("inf"), 17500.0, float("nan"), -float("inf"), 16000.0):
        assert not oracle.value_mismatch(ref64, eager, torch.tensor([v, float("inf")], dtype=torch.float16),
                                         *oracle.tolerance("float16"), oracle.K).any()
    for wrong in (float("nan"), -float("inf"), 3.0):
        assert oracle.value_mismatch(ref64, eager, torch.tensor([17500.0, wrong], dtype=torch.float16),
                                     *oracle.tolerance("float16"), oracle.K).tolist() == [False, True]


def test_low_precision_is_judged_against_float64_by_eagers_own_error():
    """bf16: a compiled result as far from float64 as eager's bf16 result passes; one much
    further (beyond K x eager's error and the bf16 tolerance) is a mismatch."""
    gen = torch.Generator().manual_seed(3)
    a = torch.randn(32, 48, generator=gen, dtype=torch.float64)
    b = torch.randn(48, 16, generator=gen, dtype=torch.float64)
    ref64 = a @ b
    eager = a.bfloat16() @ b.bfloat16()
    ah, bh = a.bfloat16(), b.bfloat16()
    other = ah[:, :24] @ bh[:24] + ah[:, 24:] @ bh[24:]   # two rounded partial sums: other bf16 noise
    assert not torch.equal(eager, other)
    r = oracle.Reference(["out0"], [eager], [ref64], precision={"out0": "bfloat16"})
    assert oracle.judge(r, [other]).kind == "pass"
    wrong = other.clone()
    wrong[5, 7] = wrong[5, 7] * 1.5 + 1.0
    j = oracle.judge(r, [wrong])
    assert j.kind == "mismatch" and j.diff["index"] == [5, 7] and j.diff["reference_is_float64"]


def test_shape_and_dtype_differences_are_mismatches():
    r = oracle.Reference(["out0"], [torch.zeros(2, 3)], [torch.zeros(2, 3, dtype=torch.float64)])
    assert oracle.judge(r, [torch.zeros(3, 2)]).detail == "shape"
    assert oracle.judge(r, [torch.zeros(2, 3, dtype=torch.float64)]).detail == "dtype"
    assert oracle.judge(r, [torch.zeros(2, 3)]).kind == "pass"


def test_argmax_ties_are_not_mismatches(tmp_path):
    g, t = argmax_graph(ties=True)
    s = session_for(tmp_path, g, t)
    assert "out1" in s.fwd_ref.skip and "ties" in s.fwd_ref.skip["out1"]
    eager_softmax, eager_idx = s.fwd_ref.eager
    other_idx = torch.full_like(eager_idx, 2)  # the other maximum (index 1 and 2 tie)
    assert not torch.equal(other_idx, eager_idx)
    assert oracle.judge(s.fwd_ref, [eager_softmax.clone(), other_idx]).kind == "pass"
    # gradients still judged: argmax carries none, so its ties do not steer them
    assert not s.bwd_blockers


def test_argmax_without_ties_is_judged(tmp_path):
    g, t = argmax_graph(ties=False)
    s = session_for(tmp_path, g, t)
    assert not s.fwd_ref.skip
    eager_softmax, eager_idx = s.fwd_ref.eager
    j = oracle.judge(s.fwd_ref, [eager_softmax.clone(), (eager_idx + 1) % 6])
    assert j.kind == "mismatch" and j.diff["where"] == "out1"


def test_values_on_a_rounding_boundary_are_not_judged(tmp_path):
    g = Graph()
    x = g.add_tensor([8], "float32", "input", name="x")
    y = g.add_tensor([8], "float32", "input", name="y")
    h = fn_node(g, "n3", "torch.mul", [ref(x), 1.0], [8])  # a computed value (a leaf itself is exact: see below)
    gt = fn_node(g, "n0", "torch.gt", [ref(h), ref(y)], [8], dtype="bool")
    w = fn_node(g, "n1", "torch.where", [ref(gt), ref(x), ref(y)], [8])
    e = fn_node(g, "n2", "torch.exp", [ref(x)], [8])
    g.outputs = [gt, w, e]
    y_val = torch.linspace(-1, 1, 8)
    x_val = y_val.clone()
    x_val[3] = torch.nextafter(y_val[3], torch.tensor(2.0))  # one ulp above: a comparison on the edge
    s = session_for(tmp_path, g, {"x": x_val, "y": y_val})
    assert "out0" in s.fwd_ref.skip and "out1" in s.fwd_ref.skip  # the bool and what is computed from it
    assert "out2" not in s.fwd_ref.skip
    # the same comparison of the model's own inputs is exact: the compiled run gets the same floats
    g.nodes = [n for n in g.nodes if n.id != "n3"]
    g.nodes[0].args = [ref(x), ref(y)]
    del g.tensors[h]
    d = save(tmp_path, g, {"x": x_val, "y": y_val}, "leaf")
    s = session.Session(worker.load_model({"source": {"program_dir": str(d)}}))
    assert not s.fwd_ref.skip


def _upsample_uint8(values):
    g = Graph()
    x = g.add_tensor([1, 1, 6, 1], "uint8", "input", name="x")
    u = fn_node(g, "n0", "aten::upsample_bilinear2d", [ref(x), [1, 1], False], [1, 1, 1, 1], dtype="uint8",
                api="aten", overload="default")
    g.outputs = [u]
    return g, {"x": torch.tensor(values, dtype=torch.uint8).reshape(1, 1, 6, 1)}


def test_integer_kernel_on_an_exact_half_tie_is_not_judged(tmp_path):
    # Found by a campaign: eager rounds 2.5 up to 3 on uint8, aot_eager's decomposition gives 2.
    g, tensors = _upsample_uint8([2, 3, 3, 2, 3, 3])  # the real value is exactly 2.5
    s = session_for(tmp_path, g, tensors)
    assert "out0" in s.fwd_ref.skip
    assert oracle.judge(s.fwd_ref, [torch.tensor([[[[2]]]], dtype=torch.uint8)]).kind == "pass"


def test_integer_kernel_off_a_tie_is_still_judged(tmp_path):
    g, tensors = _upsample_uint8([2, 3, 4, 2, 3, 3])  # 3.0: no tie, so a wrong value is a bug
    s = session_for(tmp_path, g, tensors)
    assert "out0" not in s.fwd_ref.skip
    assert oracle.judge(s.fwd_ref, [torch.tensor([[[[2]]]], dtype=torch.uint8)]).kind == "mismatch"


def test_output_that_differs_between_two_eager_runs_is_not_judged(tmp_path):
    # A campaign case: CircularPad3d((-1, 1, 0, 0, 0, 0)) on a width-1 input returns uninitialised
    # memory in eager itself. Tensor.random_ is not on the oracle's list of random ops, so it stands
    # in for any op whose eager result changes from run to run.
    g = Graph()
    x = g.add_tensor([64], "float32", "input", name="x")
    r = fn_node(g, "n0", "torch.Tensor.random_", [ref(x)], [64])
    g.outputs = [r]
    s = session_for(tmp_path, g, {"x": torch.zeros(64)})
    assert "out0" in s.fwd_ref.skip and "two runs" in s.fwd_ref.skip["out0"]
    assert sensitivity.same_values(torch.tensor([1.0, float("nan")]), torch.tensor([1.0, float("nan")]))
    assert not sensitivity.same_values(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 3.0]))


def test_nondeterministic_ops_are_skipped(tmp_path):
    g = Graph()
    x = g.add_tensor([4, 4], "float32", "input", name="x")
    e = fn_node(g, "n0", "torch.empty_like", [ref(x)], [4, 4])
    a = fn_node(g, "n1", "torch.add", [ref(e), ref(x)], [4, 4])
    g.outputs = [a]
    s = session_for(tmp_path, g, {"x": torch.randn(4, 4)})
    assert "out0" in s.fwd_ref.skip
    assert oracle.judge(s.fwd_ref, [torch.full((4, 4), 123.0)]).kind == "pass"


def test_injected_wrong_result_is_a_mismatch_and_fp16_model_passes(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_TEST_BACKENDS", "1")
    g = Graph()
    x = g.add_tensor([16, 32], "float16", "input", name="x")
    w = g.add_tensor([24, 32], "float16", "param", name="w")
    h = fn_node(g, "n0", "torch.nn.functional.linear", [ref(x), ref(w)], [16, 24], dtype="float16")
    s = fn_node(g, "n1", "torch.tanh", [ref(h)], [16, 24], dtype="float16")
    g.outputs = [s]
    gen = torch.Generator().manual_seed(1)
    d = save(tmp_path, g, {"x": torch.randn(16, 32, generator=gen).half(), "w": (torch.randn(24, 32, generator=gen) / 4).half()})
    events = []
    tests = [{"test": f"t-{b}-{m}", "backend": b, "mode": m} for b in ("_perturb", "eager") for m in ("fwd", "bwd")]
    worker.run_job({"job": "s0-m000000", "model": 0, "source": {"program_dir": str(d)}, "tests": tests}, events.append)
    verdicts = {e["test"]: e for e in events if e["event"] == "verdict"}
    assert verdicts["t-_perturb-fwd"]["kind"] == "mismatch"
    assert verdicts["t-_perturb-fwd"]["diff"]["where"] == "out0"
    assert verdicts["t-_perturb-bwd"]["kind"] == "mismatch"
    assert verdicts["t-eager-fwd"]["kind"] == "pass"
    assert verdicts["t-eager-bwd"]["kind"] == "pass"


def test_eager_failure_is_invalid_not_a_bug(tmp_path):
    g = Graph()
    x = g.add_tensor([2, 3], "float32", "input", name="x")
    y = g.add_tensor([4, 5], "float32", "input", name="y")
    m = fn_node(g, "n0", "torch.matmul", [ref(x), ref(y)], [2, 5])  # 3 != 4: eager raises
    g.outputs = [m]
    d = save(tmp_path, g, {"x": torch.randn(2, 3), "y": torch.randn(4, 5)})
    events = []
    worker.run_job({"job": "s0-m000000", "model": 0, "source": {"program_dir": str(d)},
                    "tests": [{"test": "t", "backend": "eager", "mode": "fwd"}]}, events.append)
    v = [e for e in events if e["event"] == "verdict"][0]
    assert v["kind"] == "invalid" and "eager raised" in v["detail"]


def det_graph():
    """_linalg_det (det, LU, pivots) of a 4x4 input."""
    g = Graph()
    a = g.add_tensor([4, 4], "float32", "input", name="a")
    outs = [g.add_tensor([], "float32", name="det_0"), g.add_tensor([4, 4], "float32", name="lu_1"),
            g.add_tensor([4], "int32", name="pivots_2")]
    g.add_node(Node(id="n0", op="aten::_linalg_det", api="aten", overload="default", args=[ref(a)], kwargs={},
                    outputs=outs, extra={"returns": list(outs)}))
    g.outputs = outs
    return g


def test_pivoted_factorisation_of_a_singular_matrix_is_not_judged(tmp_path):
    """LU of a singular matrix: the pivots are picked by rounding noise (a compiled run whose
    input differed by one ulp pivoted differently, campaign case s0-m000520), so its outputs are
    skipped; on a well-conditioned matrix they are judged."""
    g = det_graph()
    singular = torch.tensor([[1.0, 2, 3, 4], [2, 4, 6, 8], [0.5, 1, 1.5, 2.5], [3, 1, 4, 1]])
    s = session_for(tmp_path, g, {"a": singular})
    assert set(s.fwd_ref.skip) == {"out0", "out1", "out2"} and "ill-conditioned" in s.fwd_ref.skip["out1"]
    well = torch.eye(4) * 3 + torch.arange(16, dtype=torch.float32).reshape(4, 4) / 20
    s = session_for(tmp_path / "w", g, {"a": well})
    assert not s.fwd_ref.skip
    det, lu, piv = s.fwd_ref.eager
    assert oracle.judge(s.fwd_ref, [det.clone(), lu + 0.5, piv.clone()]).kind == "mismatch"



def test_a_tie_outside_the_chosen_candidates_does_not_excuse_an_index(tmp_path):
    """argmax along dim 1 where every row has a clear maximum but equal *small* values elsewhere
    (relu zeros): the ties are not among the candidates argmax chose from, so a different index
    is a bug. It used to be skipped because the input had ties anywhere."""
    g = Graph()
    x = g.add_tensor([4, 6], "float32", "input", name="x")
    r = fn_node(g, "n0", "torch.relu", [ref(x)], [4, 6])
    a = fn_node(g, "n1", "torch.argmax", [ref(r), 1], [4], dtype="int64")
    g.outputs = [a]
    x_val = torch.tensor([[-1.0, -2.0, 3.0, -0.5, 0.25, 1.0]]).repeat(4, 1)  # zeros tie, the max 3.0 does not
    s = session_for(tmp_path, g, {"x": x_val})
    assert not s.fwd_ref.skip
    (eager_idx,) = s.fwd_ref.eager
    assert oracle.judge(s.fwd_ref, [(eager_idx + 1) % 6]).kind == "mismatch"


def test_index_ties_are_located_per_op():
    """The slice rule op by op: which candidates matter for argmax, topk, kthvalue, sort."""
    g = Graph()
    x = g.add_tensor([2, 5], "float32", "input", name="x")

    def node(op, args, kwargs=None):
        return Node(id="n", op=op, api="function", args=[ref(x), *args], kwargs=kwargs or {}, outputs=["o"])

    rows = torch.tensor([[5.0, 1.0, 1.0, 3.0, 4.0], [9.0, 2.0, 7.0, 7.0, 0.0]])
    # argmax per row: maxima 5 and 9 are unique; argmin: row 0 has a tie at its minimum (1, 1)
    assert sensitivity.slice_ties(node("torch.argmax", [1]), rows, "argmax") is False
    assert sensitivity.slice_ties(node("torch.argmin", [1]), rows, "argmin") is True
    # topk(k=1): tops 5, 9 unique; topk(k=2): second places 4 and 7 — row 1's 7 ties with the next 7
    assert sensitivity.slice_ties(node("torch.topk", [1], {"dim": 1}), rows, "topk") is False
    assert sensitivity.slice_ties(node("torch.topk", [2], {"dim": 1}), rows, "topk") is True
    # kthvalue k=5 along dim 1 (the largest): 5 and 9, neighbours 4 and 7: no tie
    assert sensitivity.slice_ties(node("torch.kthvalue", [5, 1]), rows, "kthvalue") is False
    # sort: any tie in a row counts, a stable sort breaks ties by position
    assert sensitivity.slice_ties(node("torch.sort", [1]), rows, "sort") is True
    assert sensitivity.slice_ties(node("torch.sort", [1], {"stable": True}), rows, "sort") is False
    # along dim 0 (columns): column 1 is (1, 2), column 3 is (3, 7): no ties between the two rows
    assert sensitivity.slice_ties(node("torch.argmax", [0]), rows, "argmax") is False
    # an argument it cannot read: None, and the caller falls back to "ties anywhere"
    assert sensitivity.slice_ties(node("torch.argmax", [{"ref": "x"}]), rows, "argmax") is None


def solve_graph():
    """linalg_solve(A, b) with the matrix a *parameter* of the model and b an input."""
    g = Graph()
    a = g.add_tensor([4, 4], "float32", "param", name="a")
    b = g.add_tensor([4, 2], "float32", "input", name="b")
    out = fn_node(g, "n0", "torch.linalg.solve", [ref(a), ref(b)], [4, 2])
    g.outputs = [out]
    return g


def test_pivoting_rule_checks_the_matrix_operand_also_when_it_is_a_parameter(tmp_path):
    g = solve_graph()
    b = torch.arange(8, dtype=torch.float32).reshape(4, 2)
    ill = torch.eye(4)
    ill[0, 1] = ill[1, 0] = 1.0
    ill[1, 1] = 1.0001  # invertible, condition number about 4e4 (over the 1e4 limit)
    assert 1e4 < torch.linalg.cond(ill.double()) < 1e6
    s = session_for(tmp_path, g, {"a": ill, "b": b})
    assert "out0" in s.fwd_ref.skip and "ill-conditioned" in s.fwd_ref.skip["out0"]
    well = torch.eye(4) * 3 + torch.arange(16, dtype=torch.float32).reshape(4, 4) / 20
    s = session_for(tmp_path / "w", g, {"a": well, "b": b})
    assert not s.fwd_ref.skip
    (x,) = s.fwd_ref.eager
    assert oracle.judge(s.fwd_ref, [x + 0.5]).kind == "mismatch"


def test_a_failing_rounding_probe_keeps_the_float64_reference(tmp_path, monkeypatch):
    """The perturbed float64 runs only look for rounding boundaries; one that raises must not
    throw away the float64 reference the judgement rests on."""
    g, t = argmax_graph(ties=False)

    def broken(module, seed):
        raise RuntimeError("a perturbed value left the op's domain")

    monkeypatch.setattr(session, "perturbed_module", broken)
    s = session_for(tmp_path, g, t)
    assert s.ref_env is not None and s.fwd_ref.ref64 is not None


def half_roundtrip_graph():
    """A float64 input through .half() and back: its gradient carries fp16 rounding."""
    g = Graph()
    x = g.add_tensor([3, 5], "float64", "input", name="x")
    h = fn_node(g, "n0", "torch.Tensor.half", [ref(x)], [3, 5], dtype="float16")
    d = fn_node(g, "n1", "torch.Tensor.double", [ref(h)], [3, 5], dtype="float64")
    e = fn_node(g, "n2", "torch.exp", [ref(d)], [3, 5], dtype="float64")
    g.outputs = [e]
    return g


def test_a_value_is_judged_at_the_precision_of_its_path(tmp_path):
    """The gradient of a float64 input that went through .half() (a 10-minute bwd campaign
    flagged one 3.7e-6 off, judged at float64 tolerance) is judged at fp16 tolerance; a real
    error is still a mismatch."""
    g = half_roundtrip_graph()
    up, down = oracle.path_precision(g)
    assert up[g.outputs[0]] == "float16" and down["x"] == "float16"
    x = torch.linspace(-1, 1, 15, dtype=torch.float64).reshape(3, 5)
    s = session_for(tmp_path, g, {"x": x})
    ref = s.bwd_reference()
    assert ref is not None and ref.precision["grad:x"] == "float16" and ref.precision["out0"] == "float16"
    values = [v.clone() for v in ref.eager]
    i = ref.names.index("grad:x")
    noisy = [v.clone() for v in values]
    noisy[i] = noisy[i] * (1 + 4e-6)  # fp16-level rounding elsewhere on the path: not a bug
    assert oracle.judge(ref, noisy).kind == "pass"
    wrong = [v.clone() for v in values]
    wrong[i] = wrong[i] + 0.5
    assert oracle.judge(ref, wrong).kind == "mismatch"
    # a pure float64 model keeps float64 tolerance: the same 4e-6 is then a mismatch
    strict = oracle.Reference(ref.names, ref.eager, ref.ref64, ref.skip)
    assert oracle.judge(strict, noisy).kind == "mismatch"


def svdvals_graph():
    g = Graph()
    a = g.add_tensor([4, 4], "float32", "input", name="a")
    s = fn_node(g, "n0", "torch.linalg.svdvals", [ref(a)], [4])
    t = fn_node(g, "n1", "torch.sum", [ref(s)], [])
    g.outputs = [t]
    return g


def test_decomposition_gradients_of_a_rank_deficient_matrix_are_not_judged(tmp_path):
    g = svdvals_graph()
    rank2 = torch.tensor([[1.0, 2, 3, 4], [2, 4, 6, 8], [0, 1, 0, 1], [0, 2, 0, 2]])
    s = session_for(tmp_path, g, {"a": rank2})
    assert any("svdvals" in why for why in s.bwd_blockers.values())
    assert s.bwd_reference() is None  # gradients skipped, the forward pass is still judged
    assert not s.fwd_ref.skip
    distinct = torch.diag(torch.tensor([4.0, 3.0, 2.0, 1.0])) + 0.01 * torch.arange(16.0).reshape(4, 4)
    s = session_for(tmp_path / "d", g, {"a": distinct})
    assert not s.bwd_blockers and s.bwd_reference() is not None


def test_gradients_through_a_sort_tie_are_not_judged(tmp_path):
    """msort of a row with equal values sends each value's gradient to either copy (the inductor
    campaign's msort(log_softmax(x)) bwd false alarm, 2026-12-05); without a tie it is judged."""
    g = Graph()
    x = g.add_tensor([4, 3], "float32", "input", name="x")
    w = g.add_tensor([4, 3], "float32", "input", name="w")
    m = fn_node(g, "n0", "torch.msort", [ref(x)], [4, 3])
    g.outputs = [fn_node(g, "n1", "torch.mul", [ref(m), ref(w)], [4, 3])]
    weights = torch.arange(12, dtype=torch.float32).reshape(4, 3)
    tied = torch.tensor([[1.0, 2, 3], [1.0, 5, 6], [7.0, 8, 9], [0.5, 0.25, 0.125]])  # column 0: two 1.0s
    s = session_for(tmp_path, g, {"x": tied, "w": weights})
    assert any("tie" in why for why in s.bwd_blockers.values())
    assert not s.fwd_ref.skip  # the sorted values themselves are right either way: still judged
    s = session_for(tmp_path / "d", g, {"x": torch.arange(12, dtype=torch.float32).reshape(4, 3) / 7, "w": weights})
    assert not s.bwd_blockers and s.bwd_reference() is not None


def test_the_sign_of_a_computed_zero_is_not_judged(tmp_path):
    """copysign(x, loss) where the loss is an exact zero: +0.0 or -0.0 depends on evaluation order
    (the inductor campaign's copysign(x, cross_entropy) false alarm, 2026-12-05). A zero among the
    model's own inputs is the same bits in both runs: still judged."""
    g = Graph()
    x = g.add_tensor([5], "float32", "input", name="x")
    y = g.add_tensor([5], "float32", "input", name="y")
    z = fn_node(g, "n0", "torch.sub", [ref(y), ref(y)], [5])     # exact zeros the model computes
    g.outputs = [fn_node(g, "n1", "torch.copysign", [ref(x), ref(z)], [5])]
    vals = {"x": torch.tensor([1.0, -2, 3, -4, 5]), "y": torch.tensor([0.5, 1, 2, 3, 4])}
    s = session_for(tmp_path, g, vals)
    assert any("sign of a computed zero" in why for why in s.sensitive.values())
    g2 = Graph()
    x = g2.add_tensor([5], "float32", "input", name="x")
    y = g2.add_tensor([5], "float32", "input", name="y")
    g2.outputs = [fn_node(g2, "n1", "torch.copysign", [ref(x), ref(y)], [5])]
    s = session_for(tmp_path / "leaf", g2, {"x": vals["x"], "y": torch.tensor([0.0, -0.0, 1, -1, 0])})
    assert not s.sensitive and not s.fwd_ref.skip


def test_a_tensor_operator_dividing_by_a_reduced_zero_is_not_judged_and_inductor_flips_it(tmp_path):
    """``w / x.mean(2)`` written ``mean.__rdiv__(w)``, where x holds -0.0 along a dim of one element:
    eager's mean is +0.0 (its sum starts at +0.0), inductor's -0.0 (the element itself), so the
    quotient is -inf against +inf (c182 campaign, model 206, dynamic). The dunder forms of division
    are in the sign-of-zero rule; the same graph without the computed zero is judged."""
    x = torch.tensor([[[-0.0, 1.5]]])
    eager = x.mean(1)
    compiled = torch.compile(lambda t: t.mean(1), backend="inductor")(x)
    assert eager[0, 0].item() == 0.0 and torch.equal(eager.signbit(), torch.tensor([[False, False]]))
    assert compiled.signbit()[0, 0].item(), "inductor now keeps eager's +0.0: the rule may be narrowed"
    g = Graph()
    xi = g.add_tensor([1, 1, 2], "float32", "input", name="x")
    w = g.add_tensor([1, 2], "float32", "input", name="w")
    m = fn_node(g, "n0", "torch.mean", [ref(xi), 1], [1, 2])
    g.outputs = [fn_node(g, "n1", "torch._tensor.Tensor.__rdiv__", [ref(m), ref(w)], [1, 2])]
    s = session_for(tmp_path, g, {"x": x, "w": torch.tensor([[-0.8, 2.0]])})
    assert any("sign of a computed zero" in why for why in s.sensitive.values())
    s = session_for(tmp_path / "nonzero", g, {"x": torch.tensor([[[-0.5, 1.5]]]), "w": torch.tensor([[-0.8, 2.0]])})
    assert not s.sensitive


def test_a_decomposition_raising_on_a_non_finite_matrix_is_not_a_crash(tmp_path):
    """svdvals of a matrix with -inf and float32-max entries: eager (``_linalg_svd(compute_uv=False)``)
    gives NaN, aot_eager's full ``linalg.svd`` raises LinAlgError (c185 campaign, model 169): a skip,
    not a crash; the same call on a finite matrix is judged and passes."""
    big, tiny, inf = 3.4028234663852886e38, 2.938735877055719e-39, float("inf")
    m = torch.tensor([[[1.36, -0.0, tiny, big, 1.32], [-inf, -1.36, 1.63, -inf, 0.77], [1.80, -tiny, 1.25, -tiny, 0.7],
                       [-0.39, big, 0.1, -tiny, big], [1.8, -0.18, 0.1, -0.74, -1.14]]])
    g = Graph()
    x = g.add_tensor([1, 5, 5], "float32", "input", name="x")
    g.outputs = [fn_node(g, "n0", "torch.linalg.svdvals", [ref(x)], [1, 5])]
    s = session_for(tmp_path, g, {"x": m})
    assert s.nonfinite_matrix == "torch.linalg.svdvals"
    v = s.run_test("aot_eager", "fwd")
    assert v.kind == "skip" and "LinAlgError" in v.detail, v
    s = session_for(tmp_path / "finite", g, {"x": torch.nan_to_num(m, posinf=2.0, neginf=-2.0).clamp(-3, 3)})
    assert s.nonfinite_matrix is None and s.run_test("aot_eager", "fwd").kind == "pass"


def test_moments_of_an_infinite_value_are_not_judged(tmp_path):
    """layer_norm of a row holding inf: eager's running mean gives NaN (``0.04 - inf``, then
    ``inf + -inf``) where a sum gives inf; the c185 campaign's float16 native_layer_norm mean was NaN
    in eager and inf under inductor (dynamic). Such outputs are not judged; finite rows are."""
    row = torch.tensor([[float("inf"), 0.0368]], dtype=torch.float16)
    assert torch.ops.aten.native_layer_norm(row, [2], None, None, 1e-5)[1].isnan().all()  # not inf
    g = Graph()
    x = g.add_tensor([2, 2], "float32", "input", name="x")
    g.outputs = [fn_node(g, "n0", "torch.nn.functional.layer_norm", [ref(x), [2]], [2, 2])]
    s = session_for(tmp_path, g, {"x": torch.tensor([[0.62, -0.48], [float("inf"), 0.04]])})
    assert any("infinite value" in why for why in s.sensitive.values())
    s = session_for(tmp_path / "finite", g, {"x": torch.tensor([[0.62, -0.48], [3.0, 0.04]])})
    assert not s.sensitive and s.run_test("aot_eager", "fwd").kind == "pass"


def test_grid_sample_at_an_infinite_coordinate_is_not_judged(tmp_path):
    """Eager's grid_sample gives NaN at a -inf grid coordinate, inductor's decomposition the padding
    value 0 (the inductor campaign's fp16 grid_sample false alarm, 2026-12-05); finite grids are judged."""
    g = Graph()
    x = g.add_tensor([1, 1, 2, 2], "float32", "input", name="x")
    grid = g.add_tensor([1, 2, 2, 2], "float32", "input", name="grid")
    g.outputs = [fn_node(g, "n0", "torch.nn.functional.grid_sample", [ref(x), ref(grid)], [1, 1, 2, 2],
                         kwargs={"align_corners": False})]
    img = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    finite = torch.tensor([[[[0.1, -0.2], [0.5, 0.3]], [[-0.7, 0.9], [0.0, 0.25]]]])
    s = session_for(tmp_path, g, {"x": img, "grid": finite})
    assert not s.sensitive
    inf_grid = finite.clone()
    inf_grid[0, 1, 1, 1] = -float("inf")
    s = session_for(tmp_path / "inf", g, {"x": img, "grid": inf_grid})
    assert any("coordinate" in why for why in s.sensitive.values())


def test_a_position_written_twice_is_not_judged(tmp_path):
    """put(x, idx, src) with a repeated index keeps one of the writes (unspecified which: the
    inductor campaign's flaky put false alarm, 2026-12-05); distinct indices and accumulate are judged."""
    def graph(accumulate):
        g = Graph()
        x = g.add_tensor([4, 4], "float32", "input", name="x")
        i = g.add_tensor([6], "int64", "input", name="i")
        v = g.add_tensor([6], "float32", "input", name="v")
        g.outputs = [fn_node(g, "n0", "aten::put", [ref(x), ref(i), ref(v), accumulate], [4, 4], api="aten",
                             overload="default")]
        return g

    vals = {"x": torch.zeros(4, 4), "v": torch.arange(6.0)}
    s = session_for(tmp_path, graph(False), {**vals, "i": torch.tensor([0, 3, 3, 7, 9, 15])})
    assert any("writes one position twice" in why for why in s.sensitive.values())
    s = session_for(tmp_path / "distinct", graph(False), {**vals, "i": torch.tensor([0, 3, 5, 7, 9, 15])})
    assert not s.sensitive
    s = session_for(tmp_path / "acc", graph(True), {**vals, "i": torch.tensor([0, 3, 3, 7, 9, 15])})
    assert not s.sensitive



def test_max_unpool_with_a_repeated_index_is_not_judged(tmp_path):
    """max_unpool2d(x, idx) where two values of one plane go to the same position keeps one of
    them (eager -1.003, aot_eager 0.653 at [0, 0, 0, 0]: the ninth session's bwd campaign,
    s16-m000169, flaky); a repeat across planes, or none, is judged."""
    def graph():
        g = Graph()
        x = g.add_tensor([1, 2, 1, 2], "float64", "input", name="x")
        i = g.add_tensor([1, 2, 1, 2], "int64", "input", name="i")
        g.outputs = [fn_node(g, "n0", "torch.nn.functional.max_unpool2d", [ref(x), ref(i)], [1, 2, 3, 6],
                             dtype="float64", kwargs={"kernel_size": 3, "stride": 2, "output_size": [3, 6]})]
        return g

    x = torch.tensor([0.653, -1.003, 2.0, 3.0], dtype=torch.float64).reshape(1, 2, 1, 2)
    s = session_for(tmp_path, graph(), {"x": x, "i": torch.tensor([0, 0, 4, 5]).reshape(1, 2, 1, 2)})
    assert any("writes one position twice" in why for why in s.sensitive.values())
    s = session_for(tmp_path / "planes", graph(), {"x": x, "i": torch.tensor([0, 1, 0, 1]).reshape(1, 2, 1, 2)})
    assert not s.sensitive
    assert s.run_test("aot_eager", "fwd").kind == "pass"

def test_an_unchecked_read_out_of_range_is_not_judged(tmp_path):
    """_segment_reduce(unsafe=True) trusts its lengths; when they do not cover the data (dynamic
    mode's second call resizes them) it reads any memory, in eager too (the inductor campaign's
    call2 false alarm, 2026-12-05)."""
    g = Graph()
    x = g.add_tensor([6], "float32", "input", name="x")
    n = g.add_tensor([3], "int64", "input", name="n")
    g.outputs = [fn_node(g, "n0", "torch._segment_reduce", [ref(x), "max"], [3],
                         kwargs={"lengths": ref(n), "unsafe": True, "axis": 0})]
    x_val = torch.arange(6.0)
    s = session_for(tmp_path, g, {"x": x_val, "n": torch.tensor([1, 2, 3])})
    assert not s.sensitive
    s = session_for(tmp_path / "bad", g, {"x": x_val, "n": torch.tensor([1, 2, 1])})
    assert any("does not check its indices" in why for why in s.sensitive.values())


def test_an_unchecked_masked_index_out_of_range_is_not_judged(tmp_path):
    """aten::_unsafe_masked_index with an index past the end where the mask is True: eager reads
    outside its input (the inductor campaign's uint8 case, 2026-12-05, which the rule missed: the
    op set spelled it with its leading underscore, which ``short_op`` strips). In range: judged."""
    g = Graph()
    x = g.add_tensor([2, 1], "uint8", "input", name="x")
    m = g.add_tensor([1, 4], "bool", "input", name="m")
    i = g.add_tensor([4, 1], "int64", "input", name="i")
    j = g.add_tensor([1, 4], "int64", "input", name="j")
    g.outputs = [fn_node(g, "n0", "aten::_unsafe_masked_index", [ref(x), ref(m), [ref(i), ref(j)], 0], [4, 4],
                         dtype="uint8", api="aten")]
    vals = {"x": torch.tensor([[0], [1]], dtype=torch.uint8), "m": torch.tensor([[False, True, False, True]]),
            "j": torch.zeros(1, 4, dtype=torch.int64)}
    s = session_for(tmp_path, g, {**vals, "i": torch.tensor([[0], [1], [1], [0]])})
    assert not s.sensitive
    s = session_for(tmp_path / "bad", g, {**vals, "i": torch.tensor([[0], [1], [1], [7]])})
    assert any("does not check its indices" in why for why in s.sensitive.values())


def test_an_accumulation_of_values_near_overflow_is_not_judged(tmp_path):
    """adaptive_avg_pool2d over a window holding +-3.4e38: whether a partial sum overflows depends
    on the order of accumulation (the inductor campaign's -inf where eager was finite,
    2026-12-05). One extreme value in the operand cannot overflow a sum: still judged."""
    g = Graph()
    x = g.add_tensor([2, 8], "float32", "input", name="x")
    g.outputs = [fn_node(g, "n0", "torch.mean", [ref(x), 1], [2])]
    big = torch.finfo(torch.float32).max
    vals = torch.arange(16, dtype=torch.float32).reshape(2, 8) / 7
    extremes = vals.clone()
    extremes[0, :4] = torch.tensor([big, big, -big, -big])
    s = session_for(tmp_path, g, {"x": extremes})
    assert any("overflow" in why for why in s.sensitive.values())
    one = vals.clone()
    one[0, 0] = big
    s = session_for(tmp_path / "one", g, {"x": one})
    assert not s.sensitive and not s.fwd_ref.skip


def test_gradients_through_a_nan_value_are_not_judged(tmp_path):
    """hardtanh(log(x), 0, 0) with a negative x: eager's hardtanh backward masks the NaN point to 0,
    inductor's decomposition passes NaN (the inductor train campaign's LayerNorm(eps=0) case,
    2026-12-05). A derivative at a NaN point has no defined value: that gradient is not judged;
    a gradient whose path is finite still is."""
    g = Graph()
    x = g.add_tensor([4], "float32", "input", name="x")
    w = g.add_tensor([4], "float32", "input", name="w")
    lg = fn_node(g, "n0", "torch.log", [ref(x)], [4])
    h = fn_node(g, "n1", "torch.nn.functional.hardtanh", [ref(lg), 0.0, 0.0], [4])
    g.outputs = [h, fn_node(g, "n2", "torch.mul", [ref(w), ref(w)], [4])]
    s = session_for(tmp_path, g, {"x": torch.tensor([-1.0, 0.5, 2.0, 3.0]), "w": torch.tensor([1.0, 2, 3, 4])})
    skip = s.bwd_reference().skip
    assert any(n.endswith("x") and "NaN or infinite" in why for n, why in skip.items())
    assert not any(n.endswith("w") for n in skip)
    s = session_for(tmp_path / "finite", g, {"x": torch.tensor([1.0, 0.5, 2.0, 3.0]), "w": torch.tensor([1.0, 2, 3, 4])})
    assert not s.bwd_reference().skip


def test_nearest_resampling_of_values_near_overflow_is_still_judged(tmp_path):
    """Nearest-mode upsampling copies one input value per output: it sums nothing, so values near
    overflow are no reason to excuse it (they were, by its name's 'upsample'/'interpolate' prefix,
    hiding any wrong copy there). Bilinear interpolation weighs neighbours: still excused. The mode
    is read from the name, the functional call or the module's constructor."""
    big = torch.finfo(torch.float32).max
    x_val = torch.tensor([[[[big, -big], [big, 1.0]]]])

    def sensitive(name, op, args, kwargs=None, api="function", init=None):
        g = Graph()
        x = g.add_tensor([1, 1, 2, 2], "float32", "input", name="x")
        out = g.add_tensor([1, 1, 4, 4], "float32", name="up")
        g.add_node(Node(id="n0", op=op, api=api, args=[ref(x), *args], kwargs=kwargs or {}, outputs=[out], init=init))
        g.outputs = [out]
        return any("overflow" in why for why in session_for(tmp_path / name, g, {"x": x_val}).sensitive.values())

    assert not sensitive("fn_nearest", "torch.nn.functional.interpolate", [], {"scale_factor": 2.0, "mode": "nearest"})
    assert not sensitive("fn_default", "torch.nn.functional.interpolate", [None, 2.0])
    assert not sensitive("aten_nearest", "aten::upsample_nearest2d", [[4, 4]], api="aten", )
    assert not sensitive("module_nearest", "torch.nn.Upsample", [], api="module",
                         init={"args": [], "kwargs": {"scale_factor": 2.0, "mode": "nearest"}})
    assert not sensitive("module_named", "torch.nn.UpsamplingNearest2d", [], api="module",
                         init={"args": [], "kwargs": {"scale_factor": 2.0}})
    assert sensitive("fn_bilinear", "torch.nn.functional.interpolate", [None, 2.0, "bilinear"])
    assert sensitive("module_bilinear", "torch.nn.Upsample", [], api="module",
                     init={"args": [None, 2.0, "bilinear"], "kwargs": {}})
    assert sensitive("module_named_bilinear", "torch.nn.UpsamplingBilinear2d", [], api="module",
                     init={"args": [], "kwargs": {"scale_factor": 2.0}})


def test_grid_sample_at_a_coordinate_that_overflows_when_unnormalised_is_not_judged(tmp_path):
    """The eighth session's campaign case (reduced): grid_sample(x[2, 1, 1, 5], grid, reflection) with
    a grid coordinate of -3.4e38: unnormalised, (g + 1) * 5 overflows float32; eager's kernel then
    picks pixel 0, inductor's decomposition gives -0. At -1e30 one float32 ulp of the coordinate
    spans 1e23 pixels: not judged either. A coordinate outside the image whose reflection float32
    resolves (-100.3) is still judged, and inductor passes it."""
    g = Graph()
    x = g.add_tensor([2, 1, 1, 5], "float32", "input", name="x")
    grid = g.add_tensor([2, 1, 2, 2], "float32", "input", name="grid")
    g.outputs = [fn_node(g, "n0", "torch.nn.functional.grid_sample", [ref(x), ref(grid)], [2, 1, 1, 2],
                         kwargs={"padding_mode": "reflection"})]
    img = torch.tensor([0.8437278270721436, 1.9997942447662354, 1.2507317066192627, 1.222395896911621,
                        0.3327023983001709, -1.9972827434539795, -0.10370469093322754, 1.7516205310821533,
                        -1.178821086883545, 1.8007962703704834]).reshape(2, 1, 1, 5)
    coords = [-0.8654592037200928, 0.3360261917114258, -0.5228009223937988, -1.8367443084716797,
              1.5383172035217285, 1.7294440269470215, -3.4028234663852886e+38, -0.5228009223937988]
    s = session_for(tmp_path, g, {"x": img, "grid": torch.tensor(coords).reshape(2, 1, 2, 2)})
    assert any("coordinate" in why for why in s.sensitive.values())
    assert s.run_test("inductor", "fwd").kind.value == "pass"
    coords[6] = -1e30
    s = session_for(tmp_path / "far", g, {"x": img, "grid": torch.tensor(coords).reshape(2, 1, 2, 2)})
    assert any("coordinate" in why for why in s.sensitive.values())
    coords[6] = -100.3
    s = session_for(tmp_path / "outside", g, {"x": img, "grid": torch.tensor(coords).reshape(2, 1, 2, 2)})
    assert not s.sensitive
    assert s.run_test("inductor", "fwd").kind.value == "pass"


def test_an_ill_conditioned_gradient_is_not_judged_and_a_well_conditioned_one_is(tmp_path, monkeypatch):
    """The eighth session's campaign saved aot_eager's gradient of householder_product(A, tau) as a
    mismatch (float64, 127x127, |grad| 1e169, 30% off): a relative perturbation of 1e-15 in A moves
    eager's own gradient 85x. The backward reference now has the forward's perturbation probes:
    a gradient two perturbed float64 runs move beyond tolerance is not judged. Here at 24x24 with
    |A|, tau up to 2 (1e-12 moves it 137%); with |A| <= 0.1 the same gradient is judged."""
    def graph_and_values(scale):
        gen = torch.Generator().manual_seed(0)
        g = Graph()
        a = g.add_tensor([24, 24], "float64", "input", name="a")
        tau = g.add_tensor([24], "float64", "input", name="tau")
        g.outputs = [fn_node(g, "n0", "torch.linalg.householder_product", [ref(a), ref(tau)], [24, 24], dtype="float64")]
        values = {"a": (torch.rand(24, 24, generator=gen, dtype=torch.float64) * 2 - 1) * scale * 2,
                  "tau": torch.rand(24, generator=gen, dtype=torch.float64) * 2}
        return g, values

    s = session_for(tmp_path / "ill", *graph_and_values(2.0))
    # Since the thirteenth session a product of reflectors this far from unitary (cond 1.5e20) blocks
    # its gradients before any probe runs (sensitivity.OUTPUT_FRAGILE_OPS): no gradient is judged
    assert s.bwd_reference() is None
    verdict = s.run_test("aot_eager", "bwd")
    assert verdict.kind.value == "skip" and "legitimately differ" in verdict.detail
    # without that rule, the perturbation probes of the backward reference still leave them unjudged
    monkeypatch.setattr(sensitivity, "OUTPUT_FRAGILE_OPS", set())
    s = session_for(tmp_path / "ill_probed", *graph_and_values(2.0))
    skip = s.bwd_reference().skip
    assert any(n.startswith("grad:") and "ill-conditioned in the backward pass" in why for n, why in skip.items()), skip
    s = session_for(tmp_path / "well", *graph_and_values(0.05))  # cond 48: judged
    assert not s.bwd_reference().skip
    assert s.run_test("aot_eager", "bwd").kind.value == "pass"


def svd_graph():
    g = Graph()
    a = g.add_tensor([4, 3], "float32", "input", name="a")
    outs = [g.add_tensor([4, 3], "float32", name="u_0"), g.add_tensor([3], "float32", name="s_1"),
            g.add_tensor([3, 3], "float32", name="vh_2")]
    g.add_node(Node(id="n0", op="aten::_linalg_svd", api="aten", overload="default", args=[ref(a)], kwargs={},
                    outputs=outs, extra={"returns": list(outs)}))
    g.outputs = outs
    return g


def test_singular_vectors_of_repeated_singular_values_are_not_judged(tmp_path):
    """U and Vh of a matrix with repeated (here zero) singular values are unique only up to a
    rotation within them: a compiled run negated a column of U of a padded matrix (seventeenth
    session, s171-m000258). The singular values are judged; on a matrix with distinct singular
    values the vectors are judged too."""
    g = svd_graph()
    padded = torch.tensor([[1.0, 2.0, 0.0], [3.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    s = session_for(tmp_path, g, {"a": padded})
    assert set(s.fwd_ref.skip) == {"out0", "out2"} and "not unique" in s.fwd_ref.skip["out0"]
    u, sv, vh = s.fwd_ref.eager
    flipped = u.clone()
    flipped[:, 2] = -flipped[:, 2]
    assert oracle.judge(s.fwd_ref, [flipped, sv.clone(), vh.clone()]).kind == "pass"
    assert oracle.judge(s.fwd_ref, [u.clone(), sv + 0.5, vh.clone()]).kind == "mismatch"
    distinct = torch.tensor([[4.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.25, 0.125]])
    s = session_for(tmp_path / "d", g, {"a": distinct})
    assert not s.fwd_ref.skip
    u, sv, vh = s.fwd_ref.eager
    assert oracle.judge(s.fwd_ref, [-u, sv.clone(), vh.clone()]).kind == "mismatch"


def test_a_checkpointed_call_is_judged_as_the_call_it_makes(tmp_path):
    """``checkpoint(torch._unsafe_masked_index_put_accumulate, x, mask, [i], v)`` with a masked-in
    index out of range reads and writes any memory, as the bare call does: not judged (a
    seventeenth-session false alarm, s173-m000198); in range, it is judged."""
    g = Graph()
    x = g.add_tensor([3], "float32", "input", name="x")
    m = g.add_tensor([2], "bool", "input", name="m")
    i = g.add_tensor([2], "int64", "input", name="i")
    v = g.add_tensor([], "float32", "input", name="v")
    g.outputs = [fn_node(g, "n0", "torch.utils.checkpoint.checkpoint",
                         [{"fn": "torch._unsafe_masked_index_put_accumulate"}, ref(x), ref(m), [ref(i)], ref(v)], [3],
                         kwargs={"use_reentrant": False})]
    vals = {"x": torch.tensor([1.0, 2.0, 3.0]), "m": torch.tensor([True, False]), "v": torch.tensor(0.5)}
    s = session_for(tmp_path, g, {**vals, "i": torch.tensor([2**40, 0])})
    assert "out0" in s.fwd_ref.skip and "out of range" in s.fwd_ref.skip["out0"]
    s = session_for(tmp_path / "ok", g, {**vals, "i": torch.tensor([1, 0])})
    assert not s.fwd_ref.skip


def test_a_low_precision_fmod_by_a_python_number_at_a_jump_is_not_judged(tmp_path):
    """``torch.fmod(v, s)`` of a bfloat16 ``v`` by a Python float: eager rounds ``s`` to bfloat16
    (-1.828125 for -1.8304532) and finds ``v = -1.828125`` a multiple of it (-0.0), inductor
    divides by ``s`` (-1.828125, the exact answer); a seventeenth-session false alarm
    (s173-m000188). Where the two conventions agree on every element, the output is judged."""
    g = Graph()
    v = g.add_tensor([3], "bfloat16", "input", name="v")
    s_in = g.add_tensor([], "float64", "input", name="s")
    g.outputs = [fn_node(g, "n0", "torch.fmod", [ref(v), {"ref": s_in, "scalar": "python"}], [3], dtype="bfloat16")]
    at_jump = torch.tensor([-1.828125, 0.5, 0.25], dtype=torch.bfloat16)
    sess = session_for(tmp_path, g, {"v": at_jump, "s": torch.tensor(-1.8304532, dtype=torch.float64)})
    assert "out0" in sess.fwd_ref.skip and "Python number" in sess.fwd_ref.skip["out0"]
    away = torch.tensor([0.75, 0.5, 0.25], dtype=torch.bfloat16)
    sess = session_for(tmp_path / "away", g, {"v": away, "s": torch.tensor(-1.8304532, dtype=torch.float64)})
    assert "out0" not in sess.fwd_ref.skip
    (e,) = sess.fwd_ref.eager
    assert oracle.judge(sess.fwd_ref, [e + 1.0]).kind == "mismatch"
