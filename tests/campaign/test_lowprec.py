"""The float32-intermediate reference (fuzz.campaign.lowprec): inductor keeps float16 intermediates
in float32, so where eager's rounding of an intermediate decides an element's class both are right
(the one-hour campaigns' acos(cosh.out(x, out=float16)) false alarm, 2026-12-05); a real float16
inductor bug (min's gradient NaN) is still a mismatch, and float32 models are judged as before."""

import torch

from fuzz.campaign import lowprec, oracle, session, worker
from fuzz.gen import program
from fuzz.ir.graph import Graph, Node


def _save(tmp_path, g, tensors):
    program.save_program(g, tensors, tmp_path)
    return session.Session(worker.load_model({"source": {"program_dir": str(tmp_path)}}))


def _cosh_acos(dtype: str) -> Graph:
    """x -> buf = zeros_like(x, dtype) -> cosh(x, out=buf) -> acos."""
    g = Graph()
    g.add_tensor([], dtype, "input", name="x")
    for name in ("buf_1", "cosh_2", "acos_3"):
        g.add_tensor([], dtype, "value", name=name)
    g.add_node(Node("n0", "torch.zeros_like", "function", [{"ref": "x"}], {"dtype": {"dtype": dtype}}, ["buf_1"]))
    g.add_node(Node("n1", "aten::cosh", "aten", [{"ref": "x"}], {"out": {"ref": "buf_1"}}, ["cosh_2"], overload="out"))
    g.add_node(Node("n2", "aten::acos", "aten", [{"ref": "cosh_2"}], {}, ["acos_3"]))
    g.outputs = ["acos_3"]
    return g


def test_upcast_graph_makes_every_low_precision_dtype_float32():
    g = lowprec.upcast_graph(_cosh_acos("float16"))
    assert all(info.dtype == "float32" for info in g.tensors.values())
    assert g.nodes[0].kwargs == {"dtype": {"dtype": "float32"}}
    assert lowprec.upcast_graph(_cosh_acos("float32")) is None


def test_a_class_decided_by_float16_rounding_is_not_judged(tmp_path):
    x = torch.tensor(0.025909423828125, dtype=torch.float16)  # cosh(x) = 1.000335: 1.0 in float16
    s = _save(tmp_path, _cosh_acos("float16"), {"x": x})
    assert s.fwd_ref.eager[0].item() == 0 and s.fwd_ref.low32 is None  # made when first needed
    assert torch.isnan(s.fwd_ref.alternative(0)) and s.fwd_ref.low32_fn is None
    v = s.run_test("inductor", "fwd")  # inductor gives NaN (float32 intermediate, no rounding)
    assert v.kind == "pass", (v.detail, v.diff)
    # the same NaN where the float32 run agrees with eager is still a mismatch
    ref = oracle.Reference(["out0"], [torch.tensor(0.0, dtype=torch.float16)], None, {}, {},
                           low32=[torch.tensor(0.0)])
    assert oracle.judge(ref, [torch.tensor(float("nan"), dtype=torch.float16)]).kind == "mismatch"


def test_a_real_float16_inductor_bug_is_still_found(tmp_path):
    """hardsigmoid then min in float16: inductor's gradient is NaN (min's backward finds no element
    equal to its unrounded minimum); eager's is [0, 0, 1/6]."""
    g = Graph()
    g.add_tensor([3], "float16", "input", name="x")
    g.add_tensor([3], "float16", "value", name="h_1")
    g.add_tensor([], "float16", "value", name="m_2")
    g.add_node(Node("n0", "aten::hardsigmoid", "aten", [{"ref": "x"}], {}, ["h_1"]))
    g.add_node(Node("n1", "aten::min", "aten", [{"ref": "h_1"}], {}, ["m_2"]))
    g.outputs = ["m_2"]
    s = _save(tmp_path, g, {"x": torch.tensor([0.40966796875, 0.01256561279296875, -1.2939453125], dtype=torch.float16)})
    v = s.run_test("inductor", "bwd")
    assert v.kind == "mismatch" and v.diff["where"] == "grad:x", (v.detail, v.diff)


def test_float32_models_have_no_float32_reference(tmp_path):
    s = _save(tmp_path, _cosh_acos("float32"), {"x": torch.tensor(0.5)})
    assert s.fwd_ref.low32_fn is None and s.fwd_ref.alternative(0) is None


def test_the_float32_run_is_made_only_when_a_compiled_run_has_an_element_flagged(tmp_path):
    s = _save(tmp_path, _cosh_acos("float16"), {"x": torch.tensor(0.0, dtype=torch.float16)})
    assert s.run_test("aot_eager", "fwd").kind == "pass"
    assert s.fwd_ref.low32 is None and s.fwd_ref.low32_fn is not None  # nothing flagged: never made
    flagged = [torch.tensor(float("nan"), dtype=torch.float16)]
    assert oracle.judge(s.fwd_ref, flagged).kind == "mismatch"  # acos(cosh(0)) = 0 in float32 too
    assert s.fwd_ref.low32_fn is None and s.fwd_ref.low32 is not None


# The ninth session's campaign case (s14-m000296, reduced, BatchNorm and conj dropped): a bfloat16
# product lands 5.7e-4 below softplus(threshold=0)'s jump in eager (rounded to bfloat16) and 6.5e-4
# above it in inductor (kept in float32), so row 2's gradient is sigmoid(-0.0006) in one and 1 in the
# other: grad:x_2[0, 0, 3] eager 0.366, inductor 0.803. Both are right.
X0 = [-1.8894541263580322, 1.806983470916748, 0.717320442199707, -1.2918376922607422, 0.600322961807251]
X1 = [-1.0078125, -1.703125, -1.6328125, 1.0234375]
X2 = [0.9040544033050537, -1.1775736808776855, 0.8011243343353271, -0.734940767288208]


def _bf16_product_softplus(x_2_role: str = "input") -> Graph:
    g = Graph()
    g.add_tensor([1, 5, 1], "float32", "input", name="x_0")
    g.add_tensor([1, 1, 4], "bfloat16", "input", name="x_1")
    g.add_tensor([1, 1, 4], "float32", x_2_role, name="x_2")
    for name, shape, dtype in (("cast_3", [1, 5, 1], "bfloat16"), ("bmm_4", [1, 5, 4], "bfloat16"),
                               ("add_5", [1, 5, 4], "float32"), ("softplus_6", [1, 5, 4], "float32")):
        g.add_tensor(shape, dtype, "value", name=name)
    g.add_node(Node("n0", "torch.Tensor.bfloat16", "function", [{"ref": "x_0"}], {}, ["cast_3"]))
    g.add_node(Node("n1", "aten::bmm", "aten", [{"ref": "cast_3"}, {"ref": "x_1"}], {}, ["bmm_4"]))
    g.add_node(Node("n2", "torch.add", "function", [{"ref": "x_2"}, {"ref": "bmm_4"}], {}, ["add_5"]))
    g.add_node(Node("n3", "aten::softplus", "aten", [{"ref": "add_5"}, 1, 0.0], {}, ["softplus_6"]))
    g.outputs = ["softplus_6"]
    return g


def test_a_value_decided_by_bfloat16_rounding_at_a_jump_is_not_judged_and_a_real_error_is(tmp_path):
    g = _bf16_product_softplus()
    up = lowprec.upcast_graph(g)
    # the explicit cast still rounds (inductor emits it); only the bmm's rounding is left out
    assert [n.op for n in up.nodes][:2] == ["torch.Tensor.bfloat16", "torch.Tensor.float"]
    assert up.tensors["cast_3"].dtype == "float32" and up.tensors["bmm_4"].dtype == "float32"
    s = _save(tmp_path, g, {"x_0": torch.tensor(X0).reshape(1, 5, 1),
                            "x_1": torch.tensor(X1, dtype=torch.bfloat16).reshape(1, 1, 4),
                            "x_2": torch.tensor(X2).reshape(1, 1, 4)})
    v = s.run_test("inductor", "bwd")
    assert v.kind == "pass", (v.detail, v.diff)
    ref = s.bwd_reference()
    i = ref.names.index("grad:x_2")
    assert abs(float(ref.eager[i][0, 0, 3]) - 0.366) < 1e-3 and abs(float(ref.alternative(i)[0, 0, 3]) - 0.803) < 1e-3
    wrong = [t.clone() if isinstance(t, torch.Tensor) else t for t in ref.eager]
    wrong[i][0, 0, 1] += 0.5  # a real error in another column is still a mismatch
    j = oracle.judge(ref, wrong)
    assert j.kind == "mismatch" and j.diff["where"] == "grad:x_2" and j.diff["index"] == [0, 0, 1]


def test_the_float32_run_takes_the_inputs_in_forwards_order_not_graph_jsons(tmp_path):
    # Found in the tenth session's validation campaign: graph.json lists tensors sorted by name, so
    # a graph read back lists its inputs ("a_1", "x_0") otherwise than its program's forward takes
    # them ("x_0", "a_1"); the float32-intermediate run was handed them in forward's order, did not
    # run, and a softmax(x, dtype=float16) whose row holds float32's max (eager casts it to inf
    # first: NaN; inductor computes in float32: 0 and 1) was reported as a mismatch.
    g = Graph()
    x = g.add_tensor([2, 4], "float32", "input", name="x_0")
    a = g.add_tensor([3], "float16", "input", name="a_1")
    s = g.add_tensor([2, 4], "float16")
    g.add_node(Node(id="n0", op="torch.softmax", api="function", args=[{"ref": x}, -1],
                    kwargs={"dtype": {"dtype": "float16"}}, outputs=[s]))
    t = g.add_tensor([3], "float16")
    g.add_node(Node(id="n1", op="torch.tanh", api="function", args=[{"ref": a}], kwargs={}, outputs=[t]))
    g.outputs = [s, t]
    xs = torch.tensor([[0.5, 3.4028234663852886e38, -1.0, 0.0], [0.1, 0.2, 0.3, 0.4]])
    program.save_program(g, {"x_0": xs, "a_1": torch.tensor([0.1, 0.2, 0.3], dtype=torch.float16)}, tmp_path)
    model = worker.load_model({"source": {"program_dir": str(tmp_path)}})
    assert model.graph.inputs == ["a_1", "x_0"] and [tuple(t.shape) for t in model.inputs] == [(2, 4), (3,)]
    sess = session.Session(model)
    assert sess.graph_input_order == ["x_0", "a_1"]
    low = sess.fwd_ref.alternative(0)
    assert low is not None and not low.isnan().any()  # the float32-intermediate run ran, on the right inputs
    assert sess.fwd_ref.eager[0][0].isnan().all()  # eager: the row became inf in float16, then NaN
    assert sess.run_test("inductor", "fwd").kind == "pass"


def test_a_training_step_gets_the_float32_intermediate_runs_too(tmp_path):
    """The same bfloat16 product as a training step, its float32 addend a parameter: the gradient
    eager's rounding of the product decides (0.366 against 0.803) is not judged, as in bwd. Found by
    the s26f default campaign: a train test of a bfloat16 bmm feeding a softmax and a float32 bmm
    was a mismatch on the weight's gradient (0.5% off in 6601 of 16128 elements) that
    ``emulate_precision_casts`` made agree: train mode had no float32-intermediate reference."""
    g = _bf16_product_softplus(x_2_role="param")
    s = _save(tmp_path, g, {"x_0": torch.tensor(X0).reshape(1, 5, 1),
                            "x_1": torch.tensor(X1, dtype=torch.bfloat16).reshape(1, 1, 4),
                            "x_2": torch.tensor(X2).reshape(1, 1, 4)})
    v = s.run_test("inductor", "train")
    assert v.kind == "pass", (v.detail, v.diff)
    ref, _ = s.train_reference()
    i = next(k for k, n in enumerate(ref.names) if n.startswith("grad:") and "x_2" in n)
    assert abs(float(ref.eager[i][0, 0, 3]) - 0.366) < 1e-3 and abs(float(ref.alternative(i)[0, 0, 3]) - 0.803) < 1e-3
    wrong = [t.clone() if isinstance(t, torch.Tensor) else t for t in ref.eager]
    wrong[i][0, 0, 1] += 0.5  # a real error in another column is still a mismatch
    j = oracle.judge(ref, wrong)
    assert j.kind == "mismatch" and j.diff["index"] == [0, 0, 1]


def test_an_explicit_cast_inductor_fuses_away_is_a_second_float32_run(tmp_path):
    """fmod(a.half(), s) with a float32 a just above 10 s: inductor computes fmod(a, s) (the cast to
    float16 and back is dropped inside the kernel) = 0.0001, eager fmod(fp16(a), s) = 0.47."""
    g = Graph()
    g.add_tensor([4], "float32", "input", name="a")
    g.add_tensor([4], "float16", "value", name="half_1")
    g.add_tensor([4], "float16", "value", name="fmod_2")
    g.add_node(Node("n0", "torch.Tensor.half", "function", [{"ref": "a"}], {}, ["half_1"]))
    g.add_node(Node("n1", "torch.fmod", "function", [{"ref": "half_1"}, 0.4755046282102492], {}, ["fmod_2"]))
    g.outputs = ["fmod_2"]
    assert lowprec.has_low_casts(g)
    bare = lowprec.upcast_graph(g, keep_casts=False)
    assert [n.op for n in bare.nodes] == ["torch.Tensor.float", "torch.fmod"]
    s = _save(tmp_path, g, {"a": torch.tensor([4.75517, 1.0, 2.0, 3.0])})
    v = s.run_test("inductor", "fwd")
    assert v.kind == "pass", (v.detail, v.diff)
    ref = s.fwd_ref
    assert abs(float(ref.eager[0][0]) - 0.4736) < 1e-3 and float(ref.alternatives(0)[-1][0]) < 1e-3
    wrong = [ref.eager[0].clone()]
    wrong[0][2] += 0.25  # a real error elsewhere is still a mismatch
    j = oracle.judge(ref, wrong)
    assert j.kind == "mismatch" and j.diff["index"] == [2]


def test_an_integer_output_equal_to_the_float32_runs_is_not_flagged_and_another_is():
    """``(a * b).long()`` on float16: eager truncates the rounded product, inductor the float32 one;
    an integer the float32-intermediate run also gives is inductor's by design."""
    eager, low32 = torch.tensor([1, 2, 7]), torch.tensor([1, 3, 7])
    ref = oracle.Reference(["out0"], [eager], None, {}, {}, low32=[low32])
    assert oracle.judge(ref, [torch.tensor([1, 3, 7])]).kind == "pass"
    j = oracle.judge(ref, [torch.tensor([1, 3, 8])])
    assert j.kind == "mismatch" and j.diff["index"] == [2]
    # without a float32 run (a float32 model) the integers are judged against eager alone
    assert oracle.judge(oracle.Reference(["out0"], [eager], None, {}, {}), [torch.tensor([1, 3, 7])]).kind == "mismatch"
