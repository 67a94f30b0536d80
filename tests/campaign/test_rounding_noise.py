"""The rounding-noise reference (``fuzz.campaign.rounding``): an element that one ulp of noise per
operator moves far is not reported for a compiled error of the same size, and still is for a
real error; the noisy run is used only where the interpreter reproduces the program's float64
run bit for bit."""

import dataclasses

import torch
from test_oracle import fn_node, ref, session_for

from fuzz.campaign import oracle, rounding
from fuzz.ir.graph import Graph

# The eighth session's campaign case (s12-m000615, reduced): atanh(layer_norm(x)) over rows of two,
# whose norm lands within 1e-5 of +-1. Eager -5.9282, float64 -5.92833, inductor -5.93031 at [6, 1].
X = [0.9607048034667969, 0.8708170056343079, 0.6212429404258728, 0.7756193280220032, -0.7729899883270264,
     0.5752289295196533, -0.6508514285087585, -0.17304430902004242, -0.46684813499450684, -0.9410473108291626,
     0.9426870346069336, 0.8125438690185547, 0.25224947929382324, -0.9352591633796692]


def atanh_of_norm() -> Graph:
    g = Graph()
    x = g.add_tensor([7, 2], "float32", "input", name="x")
    n = fn_node(g, "n0", "torch.nn.functional.layer_norm", [ref(x), [2]], [7, 2])
    g.outputs = [fn_node(g, "n1", "torch.atanh", [ref(n)], [7, 2])]
    return g


def test_rounding_magnified_by_an_ill_conditioned_op_is_not_reported_and_a_real_error_is(tmp_path):
    s = session_for(tmp_path, atanh_of_norm(), {"x": torch.tensor(X).reshape(7, 2)})
    reference = s.fwd_ref
    eager = reference.eager[0]
    like_inductor = eager.clone()
    like_inductor[6, 1] = -5.93031  # what inductor's norm, rounded otherwise, gives: 15x eager's error
    wrong = eager.clone()
    wrong[6, 1] = -5.5                # a real error there
    bare = dataclasses.replace(reference, noisy_fn=None, noisy=[], low32_fn=None)
    assert oracle.judge(bare, [like_inductor]).kind.value == "mismatch"   # what the campaign reported
    assert oracle.judge(dataclasses.replace(bare, noisy_fn=reference.noisy_fn), [like_inductor]).kind.value == "pass"
    for_wrong = dataclasses.replace(bare, noisy_fn=rounding.deferred_noisy_outputs(
        s.model.graph, s.module.state_dict(), s.model.inputs, 0, reference.ref64))
    j = oracle.judge(for_wrong, [wrong])
    assert j.kind.value == "mismatch" and j.diff["index"] == [6, 1]
    # and the real compile of the model passes
    assert s.run_test("inductor", "fwd").kind.value == "pass"


def test_the_noise_is_about_one_ulp_per_operator_and_absent_without_noise(tmp_path):
    s = session_for(tmp_path, atanh_of_norm(), {"x": torch.tensor(X).reshape(7, 2)})
    r64 = s.fwd_ref.ref64[0]
    clean = rounding.noisy_outputs(s.model.graph, s.module.state_dict(), s.model.inputs, noise=False)[0]
    assert torch.equal(clean, r64)  # the interpreter's float64 run is the program's, bit for bit
    noisy = rounding.noisy_outputs(s.model.graph, s.module.state_dict(), s.model.inputs)[0]
    assert noisy.dtype == torch.float64 and not torch.equal(noisy, r64)
    # every norm of two lands next to +-1, so every atanh moves by far more than an ulp (1e-6 here)
    assert float((noisy - r64).abs().min()) > 1e-6
    # a well-conditioned op (tanh) moves by at most one float32 ulp of its value
    g = Graph()
    x = g.add_tensor([7, 2], "float32", "input", name="x")
    g.outputs = [fn_node(g, "n0", "torch.tanh", [ref(x)], [7, 2])]
    s = session_for(tmp_path / "tanh", g, {"x": torch.tensor(X).reshape(7, 2)})
    r64 = s.fwd_ref.ref64[0]
    moved = (rounding.noisy_outputs(g, s.module.state_dict(), s.model.inputs)[0] - r64).abs()
    assert bool((moved <= 2 * 2.0 ** -24 * r64.abs()).all()) and bool((moved > 0).any())


def test_no_noisy_run_where_the_interpreter_does_not_give_the_float64_reference(tmp_path):
    s = session_for(tmp_path, atanh_of_norm(), {"x": torch.tensor(X).reshape(7, 2)})
    args = (s.model.graph, s.module.state_dict(), s.model.inputs, 0)
    assert rounding.deferred_noisy_outputs(*args, [s.fwd_ref.ref64[0] + 1e-12])() is None
    assert rounding.deferred_noisy_outputs(*args, None) is None
    assert rounding.deferred_noisy_outputs(*args, s.fwd_ref.ref64)() is not None


def test_an_element_one_draw_misses_is_cleared_by_the_next_and_a_real_error_is_not(tmp_path):
    """The twenty-first session's bfloat16 log_softmax over near-equal values: the first noise draw
    happened to land close to float64 at an element where inductor did not, while other draws did
    not. Draws are made one at a time, only while an element is still flagged, and an element is
    reported only beyond K times the error of every draw (oracle.NOISY_DRAWS)."""
    s = session_for(tmp_path, atanh_of_norm(), {"x": torch.tensor(X).reshape(7, 2)})
    reference = s.fwd_ref
    r64, eager = reference.ref64[0], reference.eager[0]
    compiled = eager.clone()
    compiled[6, 1] = float(r64[6, 1]) + 40 * abs(float(eager[6, 1]) - float(r64[6, 1]))  # 40x eager's error
    off = abs(float(compiled[6, 1]) - float(r64[6, 1]))
    lucky = r64.clone()                    # draw 0: no noise reached that element
    unlucky = r64.clone()
    unlucky[6, 1] += off / 2               # draw 1: noise moved it half as far as inductor's error
    made = []

    def draws(d):
        made.append(d)
        return [lucky if d == 0 else unlucky]

    bare = dataclasses.replace(reference, noisy_fn=None, noisy=[], low32_fn=None, low32_bare_fn=None)
    assert oracle.judge(bare, [compiled]).kind.value == "mismatch"
    assert oracle.judge(dataclasses.replace(bare, noisy_fn=lambda d: [lucky], noisy=[]), [compiled]).kind.value == "mismatch"
    ensemble = dataclasses.replace(bare, noisy_fn=draws, noisy=[])
    assert oracle.judge(ensemble, [compiled]).kind.value == "pass" and made == [0, 1]
    # a draw is not made again for the next compiled run, nor while nothing is flagged
    assert oracle.judge(ensemble, [eager]).kind.value == "pass" and made == [0, 1]
    wrong = eager.clone()
    wrong[6, 1] = float(r64[6, 1]) + 20 * off  # beyond K times every draw's error: still reported
    j = oracle.judge(dataclasses.replace(bare, noisy_fn=draws, noisy=[]), [wrong])
    assert j.kind.value == "mismatch" and j.diff["index"] == [6, 1]
    assert made[2:] == list(range(oracle.NOISY_DRAWS))  # every draw tried before reporting


def test_the_real_noise_draws_differ_by_seed(tmp_path):
    s = session_for(tmp_path, atanh_of_norm(), {"x": torch.tensor(X).reshape(7, 2)})
    make = rounding.deferred_noisy_outputs(s.model.graph, s.module.state_dict(), s.model.inputs, 0, s.fwd_ref.ref64)
    a, b, a2 = make(0)[0], make(1)[0], make(0)[0]
    assert torch.equal(a, a2) and not torch.equal(a, b)
