"""The oracle on edge values: classes and integers exact, undefined conversions not judged,
and a real inductor run on an edge model passes while planted differences are caught."""

import torch

from fuzz.campaign import oracle, session, worker
from fuzz.gen import program
from fuzz.ir.graph import Graph, Node

NAN, INF = float("nan"), float("inf")


def call(g, nid, op, args, shape, dtype="float32", kwargs=None):
    out = g.add_tensor(shape, dtype, name=f"{op.split('.')[-1]}_{nid}")
    g.add_node(Node(id=nid, op=op, api="function", overload=None, args=args, kwargs=kwargs or {}, outputs=[out]))
    return out


def session_for(tmp_path, g, tensors, name="p"):
    program.save_program(g, tensors, tmp_path / name)
    return session.Session(worker.load_model({"source": {"program_dir": str(tmp_path / name)}}))


def cast_graph():
    g = Graph()
    x = g.add_tensor([6], "float32", "input", name="x")
    g.outputs = [call(g, "n0", "torch.Tensor.int", [{"ref": x}], [6], dtype="int32")]
    return g


def test_float_to_int_conversion_of_nan_inf_or_out_of_range_is_not_judged(tmp_path):
    for i, bad in enumerate((NAN, INF, 3e10)):
        x = torch.tensor([0.5, -2.5, 7.0, bad, 1.0, 2.0])
        s = session_for(tmp_path, cast_graph(), {"x": x}, f"p{i}")
        assert "undefined behaviour" in s.fwd_ref.skip["out0"]
    # in range: the integers are judged exactly
    s = session_for(tmp_path, cast_graph(), {"x": torch.tensor([0.5, -2.5, 7.0, 2.9999998, 1.0, 2.0])}, "ok")
    assert "out0" not in s.fwd_ref.skip
    wrong = s.fwd_ref.eager[0].clone()
    wrong[3] += 1
    assert oracle.judge(s.fwd_ref, [s.fwd_ref.eager[0].clone()]).kind == "pass"
    assert oracle.judge(s.fwd_ref, [wrong]).kind == "mismatch"


def edge_graph():
    g = Graph()
    x = g.add_tensor([4, 33], "float32", "input", name="x")
    p = g.add_tensor([4, 33], "float32", "input", name="p")
    y = g.add_tensor([4, 33], "float32", "input", name="y")
    a = g.add_tensor([4, 33], "int32", "input", name="a")
    outs = [call(g, "n0", "torch.floor_divide", [{"ref": p}, {"ref": y}], [4, 33]),
            call(g, "n1", "torch.remainder", [{"ref": p}, {"ref": y}], [4, 33]),
            call(g, "n2", "torch.round", [{"ref": x}], [4, 33]),
            call(g, "n3", "torch.maximum", [{"ref": x}, {"ref": p}], [4, 33]),
            call(g, "n4", "torch.relu", [{"ref": x}], [4, 33]),
            call(g, "n5", "torch.mul", [{"ref": a}, {"ref": a}], [4, 33], dtype="int32")]  # overflows int32
    g.outputs = outs
    return g


def edge_inputs():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 33, generator=gen) * 3
    x.view(-1)[:12] = torch.tensor([NAN, INF, -INF, 0.0, -0.0, 1e-40, 3.4e38, 2.5, -0.5, 0.3, 2.9999998, 7.0])
    # numerators and denominators at integer boundaries (quotients just below an integer, x.5)
    p = torch.randn(4, 33, generator=gen) * 3
    p.view(-1)[:8] = torch.tensor([2.5, 0.3, 2.9999998, -0.5, 7.0, -0.0, 1e-40, -7.0])
    y = torch.randn(4, 33, generator=gen).abs() + 0.5
    y.view(-1)[:8] = torch.tensor([1.0, 0.1, 1.0, 1.0, 3.5, 1.0, 1.0, 3.5])
    a = torch.randint(-50, 50, (4, 33), generator=gen, dtype=torch.int32)
    a.view(-1)[:4] = torch.tensor([46341, -46341, 2**31 - 1, 65536], dtype=torch.int32)
    return {"x": x, "p": p, "y": y, "a": a}


def test_real_inductor_passes_an_edge_model_and_planted_differences_are_caught(tmp_path):
    """(With an infinite operand inductor's floor_divide and remainder differ from eager on
    torch 2.13: floor_divide(inf, 2) is inf (eager NaN), remainder(0.0, inf) NaN (eager 0.0); the
    class rule reports both. This model keeps infinities out of them to show a clean pass.)"""
    s = session_for(tmp_path, edge_graph(), edge_inputs())
    assert not s.fwd_ref.skip  # nothing here is legitimately unspecified: every output is judged
    v = s.run_test("inductor", "fwd")
    assert v.kind == "pass" and v.detail == "", (v.kind, v.detail, v.diff, v.error)
    eager = [t.clone() for t in s.fwd_ref.eager]
    assert eager[2].isnan().any() and eager[3].isinf().any()
    assert oracle.judge(s.fwd_ref, eager).kind == "pass"
    # round(NaN) -> finite, max(+inf) -> -inf, relu(NaN) -> 0, round(2.5) -> 3, 2.9999998 // 1 -> 3, an int off by one
    for out, idx, value in ((2, 0, 5.0), (3, 1, -INF), (4, 0, 0.0), (2, 7, 3.0), (0, 2, 3.0), (5, 2, None)):
        planted = [t.clone() for t in eager]
        planted[out].view(-1)[idx] = value if value is not None else eager[out].view(-1)[idx] + 1
        j = oracle.judge(s.fwd_ref, planted)
        assert j.kind == "mismatch" and j.diff["where"] == f"out{out}", (out, idx, value, j)


def test_inductor_differences_on_infinite_operands_are_reported(tmp_path):
    """floor_divide(inf, y) and remainder(0.0, inf): eager and float64 agree, inductor does not."""
    g = Graph()
    p = g.add_tensor([8], "float32", "input", name="p")
    y = g.add_tensor([8], "float32", "input", name="y")
    g.outputs = [call(g, "n0", "torch.floor_divide", [{"ref": p}, {"ref": y}], [8]),
                 call(g, "n1", "torch.remainder", [{"ref": p}, {"ref": y}], [8])]
    s = session_for(tmp_path, g, {"p": torch.tensor([INF, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
                                  "y": torch.tensor([2.0, INF, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])})
    v = s.run_test("inductor", "fwd")
    assert v.kind == "mismatch" and v.diff["index"] in ([0], [1]), (v.kind, v.diff)


def test_gradients_at_nan_or_infinite_points_are_not_judged_on_their_class():
    """A derivative at NaN or inf has no defined value (relu's at NaN: 0 by one formula, NaN by
    another), so a gradient is judged like before edge values: only a compiled NaN/inf where eager
    and float64 are finite is a mismatch. Forward values keep the class rule."""
    eager = torch.tensor([NAN, 1.0, 2.0])
    ref64 = eager.double()
    r = oracle.Reference(["out0", "grad:x"], [eager, eager], [ref64, ref64])
    assert oracle.judge(r, [eager.clone(), torch.tensor([0.0, 1.0, 2.0])]).kind == "pass"
    j = oracle.judge(r, [torch.tensor([0.0, 1.0, 2.0]), eager.clone()])
    assert j.kind == "mismatch" and j.diff["where"] == "out0"
    j = oracle.judge(r, [eager.clone(), torch.tensor([NAN, INF, 2.0])])
    assert j.kind == "mismatch" and j.diff["where"] == "grad:x" and j.diff["index"] == [1]


def test_a_product_scaled_by_alpha_at_an_infinite_or_near_overflow_product_is_not_judged():
    # Tenth session: addr(x, w, v, alpha=0.0) with an inf in v (eager skips the product: -0.85;
    # inductor computes 0 * inf: NaN) and addr(..., alpha=0.4) with a product of -4e38 (eager scales
    # an operand first: -1.6e38; inductor scales the product: -inf). Neither order is specified.
    from fuzz.campaign.sensitivity import sensitive_tensors
    from fuzz.ir.graph import Graph, Node

    def addr_graph(alpha):
        g = Graph()
        x = g.add_tensor([1, 3], "float32", "input", name="x")
        w = g.add_tensor([1], "float32", "input", name="w")
        v = g.add_tensor([3], "float32", "input", name="v")
        out = g.add_tensor([1, 3], "float32")
        g.add_node(Node(id="n0", op="torch.addr", api="function", args=[{"ref": x}, {"ref": w}, {"ref": v}],
                        kwargs={"alpha": alpha, "beta": 0.6}, outputs=[out]))
        g.outputs = [out]
        return g, out

    env = {"x": torch.tensor([[1.0, 2.0, 3.0]]), "w": torch.tensor([2.0])}
    cases = [(0.0, [1.0, float("-inf"), 2.0], True), (0.0, [1.0, 5.0, 2.0], False),
             (0.4, [1.0, -2.02e38, 2.0], True), (0.4, [1.0, -2.0, 2.0], False), (1.0, [1.0, -2.02e38, 2.0], False)]
    for alpha, v, flagged in cases:
        g, out = addr_graph(alpha)
        reasons = sensitive_tensors(g, {**env, "v": torch.tensor(v)}, None)
        assert (out in reasons) == flagged, (alpha, v, reasons)


def test_a_cast_to_bfloat16_of_a_value_beyond_its_range_is_not_judged_but_a_planted_error_after_it_is(tmp_path):
    # Tenth session: x.bfloat16() + w with x at float32's max: eager rounds to inf, inductor skips the
    # round trip by design (pytorch/pytorch#183761) and gives 3.4e38
    from test_oracle import session_for

    from fuzz.ir.graph import Graph, Node

    g = Graph()
    x = g.add_tensor([4], "float32", "input", name="x")
    w = g.add_tensor([4], "float32", "input", name="w")
    low = g.add_tensor([4], "bfloat16")
    g.add_node(Node(id="n0", op="torch.Tensor.bfloat16", api="function", args=[{"ref": x}], kwargs={}, outputs=[low]))
    out = g.add_tensor([4], "float32")
    g.add_node(Node(id="n1", op="torch.add", api="function", args=[{"ref": low}, {"ref": w}], kwargs={}, outputs=[out]))
    g.outputs = [out]
    big = torch.tensor([1.0, 3.4028234663852886e38, 2.0, 3.0])
    s = session_for(tmp_path / "a", g, {"x": big, "w": torch.ones(4)})
    assert s.run_test("inductor", "fwd").kind == "pass"
    from fuzz.campaign.sensitivity import sensitive_tensors

    in_range = {"x": torch.tensor([1.0, 2.0, 3.0, 4.0]), "w": torch.ones(4), low: torch.ones(4, dtype=torch.bfloat16)}
    assert out not in sensitive_tensors(g, in_range, None)  # in range: still judged
    assert out in sensitive_tensors(g, {**in_range, "x": big}, None)


def _legendre_graph(x_len: int, n_len: int) -> Graph:
    """``legendre_polynomial_p(x, n)`` of float32 inputs of those lengths (broadcast to ``x``'s)."""
    g = Graph()
    x = g.add_tensor([x_len], "float32", "input", name="x")
    n = g.add_tensor([n_len], "float32", "input", name="n")
    g.outputs = [call(g, "n0", "torch.special.legendre_polynomial_p", [{"ref": x}, {"ref": n}], [x_len])]
    return g


def test_a_special_polynomial_of_a_degree_int64_cannot_hold_is_not_judged(tmp_path):
    """legendre_polynomial_p(True, NaN): eager 0, inductor 1 (the kernels convert the degree to int64
    first, undefined for NaN); a degree in range is judged, and a planted error is caught."""
    x = torch.tensor([1.0, 0.5, -0.25])
    for i, bad in enumerate((NAN, -INF, 1e19)):
        s = session_for(tmp_path, _legendre_graph(3, 3), {"x": x, "n": torch.tensor([2.0, bad, 3.0])}, f"p{i}")
        assert "degree int64 cannot hold" in s.fwd_ref.skip["out0"]
    s = session_for(tmp_path, _legendre_graph(3, 3), {"x": x, "n": torch.tensor([2.0, 4.0, 3.0])}, "ok")
    assert "out0" not in s.fwd_ref.skip
    wrong = s.fwd_ref.eager[0].clone()
    wrong[1] += 0.5
    assert oracle.judge(s.fwd_ref, [wrong]).kind == "mismatch"


def test_a_special_polynomial_at_a_nan_argument_is_not_judged(tmp_path):
    """legendre_polynomial_p(NaN, 3): torch 2.13's CPU kernel returns uninitialised memory (a
    different finite value per element; s2401-m000874: inductor NaN). Not judged; without the NaN
    the output is judged and a planted error is caught."""
    x = torch.linspace(-0.9, 0.9, 64)
    nan_x = x.clone()
    nan_x[::7] = NAN
    # (eager's values at the NaN positions are whatever memory held: usually finite, not asserted)
    s = session_for(tmp_path, _legendre_graph(64, 1), {"x": nan_x, "n": torch.tensor([3.0])}, "nan")
    assert "NaN argument" in s.fwd_ref.skip["out0"]
    s = session_for(tmp_path, _legendre_graph(64, 1), {"x": x, "n": torch.tensor([3.0])}, "ok")
    assert "out0" not in s.fwd_ref.skip
    wrong = s.fwd_ref.eager[0].clone()
    wrong[5] += 0.5
    assert oracle.judge(s.fwd_ref, [wrong]).kind == "mismatch"


def test_a_norm_with_an_infinite_weight_is_not_judged_and_a_finite_one_is(tmp_path):
    """instance_norm(x, weight=[inf]): eager folds the affine (inf - inf = NaN), inductor does not
    (+-inf); with a finite weight the output is judged and a planted error caught."""
    def norm_graph():
        g = Graph()
        x = g.add_tensor([1, 1, 3, 1], "float32", "input", name="x")
        w = g.add_tensor([1], "float32", "input", name="w")
        g.outputs = [call(g, "n0", "torch.nn.functional.instance_norm", [{"ref": x}], [1, 1, 3, 1],
                          kwargs={"weight": {"ref": w}})]
        return g

    x = torch.tensor([1.0952, 0.8861, 1.0952]).reshape(1, 1, 3, 1)
    s = session_for(tmp_path, norm_graph(), {"x": x, "w": torch.tensor([INF])}, "inf")
    assert "non-finite weight" in s.fwd_ref.skip["out0"]
    assert s.run_test("inductor", "fwd").kind == "pass"
    s = session_for(tmp_path, norm_graph(), {"x": x, "w": torch.tensor([2.0])}, "ok")
    assert "out0" not in s.fwd_ref.skip
    wrong = s.fwd_ref.eager[0].clone()
    wrong.view(-1)[1] += 0.5
    assert oracle.judge(s.fwd_ref, [wrong]).kind == "mismatch"


def test_a_softmax_backward_told_of_a_non_float_input_is_not_judged_and_a_float_one_is(tmp_path):
    """``_softmax_backward_data(g, y, 0, torch.bool)``: eager's kernel ignores the cast, inductor's
    decomposition casts the gradient to bool (eager 0.00103, inductor 1): no result is defined."""
    from fuzz.campaign.session import Model, Session
    from fuzz.campaign.undefined_casts import softmax_backward_input_dtype
    from fuzz.gen import program
    from fuzz.ir.graph import Graph, Node

    def graph(dtype):
        g = Graph()
        y = g.add_tensor([1, 1, 1], "float32", "input", name="y")
        o = g.add_tensor([1, 1, 1], "float32", name="grad_in")
        g.add_node(Node(id="n0", op="torch._softmax_backward_data", api="function",
                        args=[{"ref": y}, {"ref": y}, 0, {"dtype": dtype}], kwargs={}, outputs=[o]))
        g.outputs = [o]
        return g

    assert softmax_backward_input_dtype(graph("bool").nodes[0])
    assert not softmax_backward_input_dtype(graph("float32").nodes[0])
    d = program.save_program(graph("bool"), {"y": torch.tensor([[[0.00103182]]])}, tmp_path / "p")
    g, module, inputs = program.load_program(d)
    s = Session(Model(g, module, inputs, {n: (d / n).read_bytes() for n in program.PROGRAM_FILES}))
    assert s.run_test("inductor", "fwd").kind == "pass"


def test_addcmul_at_a_near_overflow_product_is_not_judged_and_a_plain_one_is():
    # Twenty-second session: addcmul(x, t1, t2) with x = FLT_MAX, t1 = 3.29e38, t2 = -1.97: eager
    # fuses the multiply into the add (-3.08e38), inductor's loop tail rounds the product first (-inf)
    from fuzz.campaign.sensitivity import sensitive_tensors
    from fuzz.ir.graph import Graph, Node

    for op in ("aten::addcmul", "torch.addcmul", "torch.Tensor.addcmul_"):
        for t1, value, flagged in ((3.29e38, 1.0, True), (3.0, 1.0, False), (1e37, 8.0, True), (1e37, 1e-3, False)):
            g = Graph()
            names = [g.add_tensor([2], "float32", "input", name=n) for n in ("x", "a", "b")]
            out = g.add_tensor([2], "float32")
            g.add_node(Node(id="n0", op=op, api="function", args=[{"ref": n} for n in names],
                            kwargs={"value": value}, outputs=[out]))
            g.outputs = [out]
            env = {"x": torch.tensor([3.4028234663852886e38, 1.0]), "a": torch.tensor([t1, 2.0]),
                   "b": torch.tensor([-1.97, 0.5])}
            reasons = sensitive_tensors(g, env, None)
            assert (out in reasons) == flagged, (op, t1, value, reasons)


def test_running_statistics_updated_from_values_near_overflow_are_not_judged_where_read(tmp_path):
    """s25a: instance_norm(x, running_mean=m, running_var=v) writes m and v in place; with x holding
    +-3.4e38 eager's CPU statistics (double accumulation) are finite, inductor's float32 sums -inf.
    The norm's outputs were excused, but ceil(m) read after the call was judged (a false alarm).
    With moderate values the ceil is judged and a planted error is caught."""
    def stats_graph():
        g = Graph()
        x = g.add_tensor([3, 2, 3, 1], "float32", "input", name="x")
        m = g.add_tensor([2], "float32", "input", name="m")
        v = g.add_tensor([2], "float32", "input", name="v")
        call(g, "n0", "torch.nn.functional.instance_norm", [{"ref": x}], [3, 2, 3, 1],
             kwargs={"running_mean": {"ref": m}, "running_var": {"ref": v}})
        g.outputs = [call(g, "n1", "torch.ceil", [{"ref": m}], [2])]
        return g

    big = torch.finfo(torch.float32).max
    x = torch.linspace(-1.0, 1.0, 18).reshape(3, 2, 3, 1)
    x[:, 1, 0, 0] = -big
    x[0, 1, 1, 0] = big / 2
    tensors = {"x": x, "m": torch.tensor([0.25, -9.0e35]), "v": torch.tensor([1.0, 2.0])}
    s = session_for(tmp_path, stats_graph(), tensors, "edge")
    assert "computed from m" in s.fwd_ref.skip["out0"]
    x = torch.linspace(-1.0, 1.0, 18).reshape(3, 2, 3, 1)
    s = session_for(tmp_path, stats_graph(), {**tensors, "x": x, "m": torch.tensor([0.25, -9.5])}, "ok")
    assert "out0" not in s.fwd_ref.skip
    wrong = s.fwd_ref.eager[0].clone()
    wrong[1] += 1.0
    assert oracle.judge(s.fwd_ref, [wrong]).kind == "mismatch"


def test_which_calls_update_their_running_statistics():
    from fuzz.campaign.running_stats import written_running_stats

    def node(op, api, args, kwargs=None):
        return Node(id="n", op=op, api=api, args=args, kwargs=kwargs or {}, outputs=["y"])

    x, m, v = {"ref": "x"}, {"ref": "m"}, {"ref": "v"}
    assert written_running_stats(node("torch.nn.functional.instance_norm", "function", [x, m, v])) == ["m", "v"]
    assert written_running_stats(node("torch.nn.functional.instance_norm", "function", [x],
                                      {"running_mean": m, "use_input_stats": False})) == []
    assert written_running_stats(node("torch.nn.functional.batch_norm", "function", [x, m, v])) == []  # eval
    assert written_running_stats(node("torch.nn.functional.batch_norm", "function", [x, m, v],
                                      {"training": True})) == ["m", "v"]
    assert written_running_stats(node("aten::native_batch_norm", "aten", [x, None, None, m, v, True, 0.1, 1e-5])) == ["m", "v"]
    assert written_running_stats(node("torch.nn.functional.layer_norm", "function", [x, [3]])) == []
