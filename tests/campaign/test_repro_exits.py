"""repro.py's exit codes: 1 only for the same failure, 0 when eager and the backend agree,
3 for another failure, 4 when the case's files cannot be loaded; re-checks trust nothing else."""

import json

import pytest
from case_helpers import RAISE_ERROR, run_repros, write_case

from fuzz.campaign import repro
from fuzz.campaign.case import read_case
from fuzz.campaign.rechecks import Rechecker
from fuzz.campaign.store import CrashStore


@pytest.fixture(autouse=True)
def test_backends(monkeypatch):
    monkeypatch.setenv("ASSAY_TEST_BACKENDS", "1")  # _raise, _perturb: faults without a compiler


def test_exit_codes_tell_the_same_failure_from_another_and_from_broken_files(tmp_path):
    cases = {
        # the crash, with the message and type the backend raises: the same signature
        "crash-same": write_case(tmp_path, "crash-same", "_raise", "crash", error=RAISE_ERROR),
        # a crash saved with another message: the backend's crash now is a different failure
        "crash-other": write_case(tmp_path, "crash-other", "_raise", "crash",
                                  error=dict(RAISE_ERROR, message="index out of range in self")),
        # a mismatch case whose backend raises: different
        "mismatch-raises": write_case(tmp_path, "mismatch-raises", "_raise", "mismatch", detail="values"),
        "mismatch-same": write_case(tmp_path, "mismatch-same", "_perturb", "mismatch", detail="values"),
        # the backend gets values wrong, the case says the shape differed: different
        "mismatch-shape": write_case(tmp_path, "mismatch-shape", "_perturb", "mismatch", detail="shape"),
        # a backend that compiles nothing wrong: eager and compiled agree
        # a backend wrong only at sizes other than the compiled ones: here eager and compiled agree
        "agree": write_case(tmp_path, "agree", "_perturb_resized", "mismatch", detail="values"),
        "corrupt": write_case(tmp_path, "corrupt", "_perturb", "mismatch", detail="values"),
    }
    params = cases["corrupt"] / "params.safetensors"
    params.write_bytes(params.read_bytes()[:20])  # a torn write
    names = list(cases)
    results = dict(zip(names, run_repros(cases.values())))
    want = {"crash-same": 1, "crash-other": 3, "mismatch-raises": 3, "mismatch-same": 1, "mismatch-shape": 3,
            "agree": 0, "corrupt": 4}
    got = {n: r.returncode for n, r in results.items()}
    assert got == want, {n: r.stdout[-600:] + r.stderr[-600:] for n, r in results.items() if got[n] != want[n]}
    verdicts = {n: repro.judge_run(read_case(cases[n]), r.returncode, r.stdout, r.stderr) for n, r in results.items()}
    assert verdicts == {"crash-same": "reproduced", "crash-other": "different", "mismatch-raises": "different",
                        "mismatch-same": "reproduced", "mismatch-shape": "different", "agree": "agree",
                        "corrupt": "cannot run"}
    assert "CANNOT RUN" in results["corrupt"].stdout and "Traceback" not in results["corrupt"].stderr
    assert "index out of range" not in results["crash-other"].stdout.split("saved:")[0].split("DIFFERENT")[0]


def test_exit_1_without_the_scripts_own_line_is_not_a_reproduction(tmp_path):
    d = write_case(tmp_path, "c", "_raise", "crash", error=RAISE_ERROR)
    case = read_case(d)
    # Python exits 1 on an uncaught error, e.g. a truncated script: that proves nothing
    assert repro.judge_run(case, 1, "", "SyntaxError: unexpected EOF") == "cannot run"
    assert repro.judge_run(case, 1, "REPRODUCED: _raise raised RuntimeError (crash)") == "reproduced"
    assert repro.judge_run(case, -11) == "different"            # died by a signal: not this crash
    assert repro.judge_run(case, None, timed_out=True) == "different"
    assert repro.judge_run(case, 2, "REPRODUCED: x") == "cannot run"


def test_recheck_of_a_case_with_torn_files_is_not_reproduced(tmp_path):
    staged = write_case(tmp_path, "torn", "_raise", "crash", error=RAISE_ERROR, finalize=False)
    (staged / "program.py").write_text("import torch\n")  # differs from its digest in case.json
    store = CrashStore(tmp_path)
    try:
        reproduces, note = Rechecker(store).recheck("torn")
        assert reproduces is None and "corrupt program.py" in note
        store.finalize("torn", reproduces, note)
        assert store.cases()[0]["reproduces"] is None
        assert json.loads((tmp_path / "torn" / "case.json").read_text())["reproduces"] is None
    finally:
        store.close()


def test_a_one_operator_repro_is_short_and_imports_nothing_from_assay(tmp_path):
    import torch

    from fuzz.campaign.case import Case
    from fuzz.gen.program import program_source
    from fuzz.ir.graph import Graph, Node

    g = Graph()
    x = g.add_tensor([2, 3], "float32", "input", name="x")
    y = g.add_tensor([2, 3], "float32")
    g.add_node(Node(id="n0", op="torch.relu", api="function", args=[{"ref": x}], kwargs={}, outputs=[y]))
    g.outputs = [y]
    case = Case(id="c1", kind="mismatch", backend="aot_eager", mode="fwd", check=["out0"], detail="values")
    src = repro.repro_source(program_source(g), case, inline_tensors={"inputs.safetensors": {"x": torch.randn(2, 3)}})
    assert len(src.splitlines()) <= 207, len(src.splitlines())  # 304 before the exit-code rewrite; +12 for fenced, +6 for strided inputs, +2 for numbers passing through fenced, +4 for the forward grad mode (inference_mode knob)
    assert "fuzz" not in "\n".join(line for line in src.splitlines() if "import" in line)
    compile(src, "repro.py", "exec")


def test_a_crash_with_a_huge_message_is_signed_alike_by_the_worker_and_by_repro():
    """A C++ compile error's message is g++'s output, often longer than the traceback tail a verdict
    keeps; the torch frames of the signature must survive the cut, as repro.py (which signs the
    full traceback) sees them, or every such case's repro says DIFFERENT."""
    import traceback

    import torch

    from fuzz.campaign.failure import crash_text, torch_frames
    from fuzz.campaign.verdict import describe_error

    try:
        try:
            torch.nn.functional.interpolate(torch.zeros(1, 1, 2), size=3, mode="no-such-mode")
        except NotImplementedError as inner:
            raise RuntimeError("C++ compile error\n" + "error: no matching function\n" * 2000) from inner
    except RuntimeError as exc:
        full = traceback.format_exc()
        err = describe_error(exc)
    assert torch_frames(err["traceback"]) and len(err["traceback"]) <= 12000
    assert crash_text("inductor", err["type"], err["message"], err["traceback"]) == crash_text(
        "inductor", err["type"], err["message"], full)


def test_a_crash_whose_message_quotes_another_traceback_is_signed_alike_by_the_worker_and_by_repro():
    """Dynamo's fake-tensor errors quote the failing call's own stack in their message. The worker
    keeps a message's first 2,000 characters; a repro that signed the full text took the quoted
    frames for the innermost ones and said DIFFERENT for the very crash it was saved for (the
    fifteenth session's jacfwd case). repro.py now signs the traceback the worker keeps."""
    import re
    import traceback

    import torch

    from fuzz.campaign.failure import crash_text
    from fuzz.campaign.verdict import describe_error

    quoted = "".join(f'  File "/x/site-packages/torch/autograd/forward_ad.py", line {i}, in make_dual\n'
                     for i in range(3))
    try:
        try:
            torch.nn.functional.interpolate(torch.zeros(1, 1, 2), size=3, mode="no-such-mode")
        except NotImplementedError as inner:
            raise RuntimeError("RuntimeError when making fake tensor call\n" + "x" * 2500 + "\n" + quoted) from inner
    except RuntimeError as exc:
        full = traceback.format_exc()
        err = describe_error(exc)
        ns = {"re": re}
        exec("\n".join(repro._crash_signing()), ns)  # the signing code a repro.py carries
        from_repro = ns["crash_text"]("inductor", err["type"], str(exc), ns["signed_traceback"](exc))
    from_worker = crash_text("inductor", err["type"], err["message"], err["traceback"])
    assert from_repro == from_worker and "make_dual" not in from_worker
    assert "make_dual" in crash_text("inductor", err["type"], err["message"], full)  # what repro signed before


def test_frames_quoted_in_a_lowering_message_do_not_sign_the_crash():
    """A LoweringException's message quotes its FX node's stack traces ("File ..., in forward,",
    torch frames among them in some processes only); the signature takes the real innermost frames,
    so a worker and a fresh process sign the crash alike (s2020-m000965 did not, before)."""
    from fuzz.campaign.failure import crash_text, torch_frames

    real = "".join(f'  File "/v/site-packages/torch/_inductor/{m}.py", line {i}, in {f}\n    code()\n'
                   for i, (m, f) in enumerate([("lowering", "wrapped"), ("kernel/flex/flex_cpu", "lower_cpu"),
                                               ("codegen/cpp_flex_attention_template", "choose_flex_template")]))
    quoted = ('LoweringException: ValueError: not enough values to unpack\n  target: flex_attention\n'
              '  stack_traces = {File "/tmp/assay-model-x/program.py", line 44, in forward,\n'
              '    File "/v/site-packages/torch/nn/attention/flex_attention.py", line 1700, in flex_attention,\n  }\n')
    with_quote = "Traceback (most recent call last):\n" + real + quoted
    assert torch_frames(with_quote)[-1] == "torch._inductor.codegen.cpp_flex_attention_template:choose_flex_template"
    assert crash_text("inductor", "InductorError", "x", with_quote) == crash_text(
        "inductor", "InductorError", "x", "Traceback (most recent call last):\n" + real)


def test_every_backward_main_runs_the_compiled_side_under_compiled_backward():
    """The compiled_autograd knob must reach every repro.py that runs a compiled backward: a bwd
    model that writes its inputs has a main of its own, which once ran the plain backward (the
    twenty-third session's s2302-m000183 repro: COMPILED_AUTOGRAD set, no capture), so its crash
    signed other frames than the worker's. Eager's side never runs under it."""
    from fuzz.campaign import repro
    from fuzz.campaign import repro_snippets as snippets

    for state in (False, True):
        main = repro._main_source("bwd", False, False, state)
        compiled = main[main.index("module = copy.deepcopy(model)"):]
        compiled = compiled[:compiled.index("except Exception as exc")]
        assert "with compiled_backward(BACKEND):" in compiled, (state, compiled)
        assert compiled.index("with compiled_backward(BACKEND):") < compiled.index("actual = _values(")
        eager = main[main.index("expected = _values("):main.index("module = copy.deepcopy(model)")]
        assert "compiled_backward" not in eager
    train = repro._main_source("train", False, False)
    assert "compiled=True" in train and "compiled_backward(BACKEND if compiled else None)" in snippets.VALUES_TRAIN


def test_every_forward_main_compiles_and_runs_the_compiled_side_in_forward_context():
    """The inference_mode knob must reach every fwd and dynamic repro.py: plain and written-state
    models, the first call and the second: the compile under ``forward_context()`` and every
    compiled ``_values`` call with ``compiled=True`` (which makes its inputs inside the context);
    eager's calls never."""
    from fuzz.campaign import repro
    from fuzz.campaign import repro_snippets as snippets

    for mode in ("fwd", "dynamic"):
        for state in (False, True):
            main = repro._main_source(mode, mode == "dynamic", False, state)
            assert "with forward_context():\n            fn = compile_model(" in main, (mode, state, main)
            calls = [ln for ln in main.splitlines() if "_values(" in ln and "def _values" not in ln]
            compiled = [ln for ln in calls if "_values(fn," in ln]
            assert len(compiled) == (2 if mode == "dynamic" else 1), calls
            assert all("compiled=True" in ln for ln in compiled) and not any(
                "compiled=True" in ln for ln in calls if ln not in compiled), calls
    for values in (snippets.VALUES_FWD, snippets.VALUES_FWD_STATE):
        assert values.index("with forward_context(compiled)") < values.index("fenced(x)"), values  # made inside
    # a program eager rejects: eager and the compiled side both under the mode's grad mode, inputs inside
    raises = snippets.RAISES
    assert raises.count("with grad_mode():") == 2 and "set_grad_enabled" not in raises, raises
    assert "return torch.enable_grad() if grad else forward_context(True)" in raises


def test_compiled_backward_covers_exactly_the_torch_compile_backends():
    """``knobs.compiled_backward`` names torch.compile's backends itself (it is copied into repro.py
    scripts, so it cannot read the registry): the list must match every registered backend whose
    snippet calls ``torch.compile(..., backend=<its name>)``; export and AOTInductor stay plain."""
    import contextlib

    from fuzz.campaign import backends, knobs

    with knobs.applied({"compiled_autograd": knobs.KNOBS["compiled_autograd"]}):
        for name, b in backends.REGISTRY.items():
            if b.test_only:
                continue
            compiles = f'torch.compile(model, backend="{name}"' in b.source
            plain = isinstance(knobs.compiled_backward(name), contextlib.nullcontext)
            assert compiles != plain, (name, compiles)
    assert isinstance(knobs.compiled_backward("inductor"), contextlib.nullcontext)  # knob off again
