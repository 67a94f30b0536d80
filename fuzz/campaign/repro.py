"""The one emitter of standalone ``repro.py`` scripts (campaign cases and reduced cases).

A repro depends only on torch. It contains, in order: a header comment (case id,
kind, backend, mode, the environment it was found in, how to run it), the model
program (``fuzz.gen.program`` source minus its ``__main__`` block, reading the
``.safetensors`` files beside it), the backend's compile snippet (``fuzz.campaign.backends``,
the same code the campaign ran), the oracle's comparison function
(``fuzz.campaign.oracle.value_mismatch``, copied verbatim), ``fenced`` (``fuzz.campaign.fence``:
every run's inputs sit in NaN-filled buffers, as in the campaign) and a ``main`` that runs eager and
the backend and exits **1 when the failure reproduces, 0 when it does not**.

- crash / oom: reproduces when the backend raises and eager does not;
- mismatch: reproduces when one of the ``CHECK`` values is far off the float64
  reference (explicit ``TOLERANCE`` and ``K``), or differs in shape or dtype;
- signal: the process dies by the signal (non-zero exit on its own);
- hang: ``faulthandler`` ends the process with status 1 after ``TIMEOUT_S``.

In ``dynamic`` mode a case may carry a ``second_call`` (sizes, and its inputs saved in
``inputs.safetensors`` under ``second_call.<name>``): the repro then also calls the same
compiled function at those sizes and checks its values (named ``call2:out<i>``) too. A ``train``
repro runs one training step (``fuzz.campaign.train.train_step``, copied verbatim) eagerly, with
the compiled module and in float64, and compares outputs, loss, gradients, parameters and buffers.

A model whose graph records settings it needs to compile (dynamo's capture flags for
data-dependent calls, ``fuzz.campaign.knobs.model_knobs``) has them set as ``MODEL_SETTINGS``
before any compile.

``repro_source(program_src, case)`` takes the ``Case`` (``fuzz.campaign.case``: id, kind,
backend, mode, device, check, versions, timeout_s, mem_limit_mb, error, diff,
second_call); with ``inline_tensors`` small tensors are written into the script as exact
literals (a printed repro needing no files), with ``tensor_dir`` the script reads its
tensors from there. ``write_repro(case_dir)`` writes ``repro.py`` next to a case's
``program.py``. The memory limit is ``fuzz.isolation.limit_address_space``, copied verbatim.
"""

from __future__ import annotations

import inspect
import json
import platform
import sys
import textwrap
from pathlib import Path

from fuzz.campaign import knobs as knob_table
from fuzz.campaign import fence, oracle, train
from fuzz.campaign import repro_snippets as snippets
from fuzz.campaign.case import Case, read_case
from fuzz.campaign.error_session import DETAIL as DETAIL_RAISES
from fuzz.isolation import limit_address_space, private_compile_cache


def versions() -> dict:
    try:
        import torch

        tv = torch.__version__
    except Exception:  # pragma: no cover
        tv = "unknown"
    return {"torch": tv, "python": platform.python_version(), "platform": platform.platform()}


def strip_main(program_src: str) -> str:
    marker = '\nif __name__ == "__main__":'
    return program_src.split(marker, 1)[0].rstrip() + "\n"


# Exit codes of every repro.py (docs/triage.md): the same failure is the case's kind and signature.
AGREE, REPRODUCED, DIFFERENT, CANNOT_RUN = 0, 1, 3, 4

def _main_source(mode: str, dynamic_second: bool, mem_limit: bool, state: bool = False, strides: bool = False) -> str:
    """main() for one mode, its placeholders filled (``state``: the program writes buffers or inputs;
    ``strides``: the failure is an output's strides)."""
    if mode == "bwd" and state:
        eager = ("m = copy.deepcopy(model)\n        expected = _values(m, inputs)")
        compiled = ("module = copy.deepcopy(model)\n"
                    "        fn = compile_model(module, _leaves(inputs), dynamic=False)\n"
                    "        with compiled_backward(BACKEND):  # compiled autograd under its knob, else nothing\n"
                    "            actual = _values(fn, inputs, module=module)")
        prep = "global PARAM_NAMES\n        PARAM_NAMES = [n for n, _ in model.named_parameters()]"
    elif mode == "bwd":
        eager = ("m = copy.deepcopy(model)\n        expected = _values(m, inputs)")
        compiled = ("module = copy.deepcopy(model)\n"
                    "        xs = [_leaf(x) for x in inputs]\n"
                    "        fn = compile_model(module, xs, dynamic=False)\n"
                    "        with compiled_backward(BACKEND):  # compiled autograd under its knob, else nothing\n"
                    "            actual = _values(fn, inputs, module=fn if isinstance(fn, torch.nn.Module) else module)")
        prep = "global PARAM_NAMES\n        PARAM_NAMES = [n for n, _ in model.named_parameters()]"
    elif mode == "train":  # one training step: the module in training mode, compiled by the backend
        eager = "expected = _values(model, inputs)"
        compiled = "actual = _values(model, inputs, compiled=True)"
        prep = ""
    elif state:
        eager = "expected = _values(copy.deepcopy(model), inputs)"
        compiled = ("module = copy.deepcopy(model)\n"
                    "        with forward_context():\n"
                    f"            fn = compile_model(module, [fenced(x) for x in inputs], dynamic={'COMPILE_DYNAMIC' if mode == 'dynamic' else 'False'})\n"
                    "        actual = _values(fn, inputs, module=module, compiled=True)")
        prep = ""
    else:
        eager = "expected = _values(copy.deepcopy(model), inputs)"
        compiled = ("with forward_context():\n"
                    f"            fn = compile_model(copy.deepcopy(model), [fenced(x) for x in inputs], dynamic={'COMPILE_DYNAMIC' if mode == 'dynamic' else 'False'})\n"
                    "        actual = _values(fn, inputs, compiled=True)")
        prep = ""
    ref = ("try:  # the float64 reference (none for some ops: then eager, 10x looser)\n"
           "        m64 = copy.deepcopy(model).to(torch.float64)\n"
           "        ref = _values(m64, [_double(x) for x in inputs], dtype64=True)\n"
           "    except Exception:\n"
           "        ref = None")
    if dynamic_second:
        prep = "inputs2 = _second_call_inputs(inputs)"
        eager += "\n        if inputs2 is not None:\n            expected.update(_call2(_values(copy.deepcopy(model), inputs2)))"
        compiled += ("\n        if inputs2 is not None:  # the same compiled function at other sizes (dynamo may recompile)\n"
                     + ("            _restore(fn, module, model)\n" if state else "")
                     + f"            actual.update(_call2(_values(fn, inputs2{', module=module' if state else ''}, compiled=True)))")
        ref += ("\n    if ref is not None and inputs2 is not None:\n"
                "        try:\n"
                "            m64 = copy.deepcopy(model).to(torch.float64)\n"
                "            ref.update(_call2(_values(m64, [_double(x) for x in inputs2], "
                "dtype64=True)))\n"
                "        except Exception:\n"
                "            pass")
    src = snippets.MAIN
    for key, value in (("LIMIT", "limit_address_space(MEM_LIMIT_MB)" if mem_limit else ""), ("PREP", prep),
                       ("EAGER", eager), ("COMPILED", compiled), ("REFERENCE", ref)):
        indent = "    " if key == "REFERENCE" else "        "
        src = src.replace(f"{indent}{key}\n", f"{indent}{value}\n" if value else "", 1)
    if state and mode != "train":  # train mode judges every buffer already (train_step)
        pieces = [snippets.VALUES_BWD_STATE if mode == "bwd" else snippets.VALUES_FWD_STATE, snippets.STATE]
    else:
        pieces = [{"bwd": snippets.VALUES_BWD, "train": snippets.VALUES_TRAIN}.get(mode, snippets.VALUES_FWD)]
    if dynamic_second:
        pieces += [snippets.SECOND_CALL, '\ndef _call2(values):\n    return {f"call2:{k}": v for k, v in values.items()}\n']
    return "".join(pieces) + snippets.JUDGE.replace("    STRIDES\n", snippets.STRIDES if strides else "") + src


EXIT_NAMES = {AGREE: "agree", REPRODUCED: "reproduced", DIFFERENT: "different", CANNOT_RUN: "cannot run"}


def judge_run(case: Case, returncode: int | None, stdout: str = "", stderr: str = "", timed_out: bool = False) -> str:
    """What one run of a case's ``repro.py`` says: ``reproduced`` (the same failure), ``agree``,
    ``different`` (another failure) or ``cannot run``.

    Exit 1 counts only with the script's own ``REPRODUCED:`` line (Python also exits 1 on an
    uncaught error, e.g. a truncated script). A signal case reproduces when the process dies by
    the same signal; a hang case when it times out (or faulthandler's backstop ends it).
    """
    import signal as _signal

    kind = str(case.kind)
    if timed_out:
        return "reproduced" if kind == "hang" else "different"
    if returncode is None:
        return "cannot run"
    if returncode < 0:
        try:
            name = _signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        want = (case.detail or "").split()[0] if case.detail else ""
        return "reproduced" if kind == "signal" and (not want or want == name) else "different"
    marks = [line.split(":", 1)[0] for line in (stdout or "").splitlines()]
    if returncode == REPRODUCED:
        if "REPRODUCED" in marks:
            return "reproduced"
        if kind == "hang" and "Timeout (" in (stderr or ""):
            return "reproduced"
        return "cannot run"
    if returncode == AGREE and "AGREE" in marks:
        return "agree"
    if returncode == DIFFERENT and "DIFFERENT" in marks:
        return "different"
    return "cannot run"


def _forward_params(program_src: str) -> list[str]:
    """Parameter names of ``Model.forward`` in the program (the inputs, in call order)."""
    import ast

    for node in ast.walk(ast.parse(program_src)):
        if isinstance(node, ast.ClassDef) and node.name == "Model":
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "forward":
                    return [a.arg for a in item.args.args[1:]]
    return []


def _second_call(case: Case) -> dict | None:
    """The case's dynamic-mode second call, when it ran: ``{from, to, shapes, key_prefix}``."""
    sc = case.second_call
    if case.mode != "dynamic" or not isinstance(sc, dict) or not sc.get("shapes") or sc.get("declined"):
        return None
    return {k: sc[k] for k in ("from", "to", "shapes", "key_prefix", "numbers") if k in sc}


def _literal(t) -> str | None:
    """A ``torch.tensor(...)`` expression with exactly ``t``'s values, or None (complex, odd dtypes)."""
    import torch

    if t.is_complex() or t.dtype not in (torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.int64,
                                         torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool):
        return None
    dtype = str(t.dtype).replace("torch.", "")
    if t.dtype.is_floating_point:
        values = t.to(torch.float64).tolist()  # exact: every float of these dtypes is a double
        text = repr(values).replace("nan", "float('nan')").replace("inf", "float('inf')")
    else:
        text = repr(t.tolist())
    return f"torch.tensor({text}, dtype=torch.{dtype}).reshape({list(t.shape)!r})"


def _inlined(tensors: dict) -> list[str] | None:
    """Source lines that define ``read_safetensors`` over the given tensors, or None if one cannot be written."""
    lines = ["# The case's tensors, inlined (exact values): this script needs no files.", "_INLINE = {"]
    for fname, saved in tensors.items():
        lines.append(f"    {fname!r}: {{")
        for key, t in saved.items():
            lit = _literal(t)
            if lit is None:
                return None
            lines.append(f"        {key!r}: {lit},")
        lines.append("    },")
    return lines + ["}", "", "",
                    "def read_safetensors(path):",
                    "    return {k: v.clone() for k, v in _INLINE.get(os.path.basename(path), {}).items()}"]


def _program_body(program_src: str, inlined: list[str] | None) -> str:
    """The program without its docstring and ``__main__`` block; with ``inlined`` tensors, also
    without its file reader (replaced by them)."""
    import ast

    body = strip_main(program_src)
    tree = ast.parse(body)
    lines = body.splitlines()
    drop = set()
    first = tree.body[0] if tree.body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        drop |= set(range(first.lineno - 1, first.end_lineno))
    reader_at = None
    if inlined is not None:
        for node in tree.body:
            names = ([t.id for t in node.targets if isinstance(t, ast.Name)] if isinstance(node, ast.Assign)
                     else [node.name] if isinstance(node, ast.FunctionDef) else [])
            if "read_safetensors" in names or "_ST_DTYPES" in names:
                reader_at = node.lineno - 1 if reader_at is None else reader_at
                drop |= set(range(node.lineno - 1, node.end_lineno))
        drop |= {i for i, line in enumerate(lines) if line.strip() == "import json"}
    out = []
    for i, line in enumerate(lines):
        if i == reader_at:
            out += inlined
        if i not in drop:
            out.append(line)
    if inlined is not None and reader_at is None:
        out += ["", ""] + inlined
    text = "\n".join(out).strip("\n") + "\n"
    while "\n\n\n\n" in text:
        text = text.replace("\n\n\n\n", "\n\n\n")
    return text


def function_source(fn) -> str:
    """A function's source, dedented, without its docstring (the repro is read by people, kept short)."""
    import ast

    src = textwrap.dedent(inspect.getsource(fn))
    node = ast.parse(src).body[0]
    doc = node.body[0] if node.body else None
    if isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant) and isinstance(doc.value.value, str):
        lines = src.splitlines()
        src = "\n".join(lines[:doc.lineno - 1] + lines[doc.end_lineno:])
    return src.rstrip()


def _crash_signing() -> list[str]:
    """How the campaign signs a crash (``fuzz.campaign.failure``), copied, so a repro tells
    the saved crash from another one on its own."""
    from fuzz.campaign import failure, verdict

    return ["", "", f"MASKS = [(re.compile(p), r) for p, r in {failure.MASK_PATTERNS!r}]",
            f"FRAME = re.compile({failure.FRAME.pattern!r})", f"WRAPPER_LINES = {failure.WRAPPER_LINES!r}",
            f"INNER_CAUSE = re.compile({failure.INNER_CAUSE.pattern!r}, {failure.INNER_CAUSE.flags})"] + [
        "\n\n" + function_source(f) for f in (failure.normalise_message, failure.cause_line, failure.torch_frames,
                                              failure.short_type, failure.crash_text, verdict.signed_traceback)]


def _layouts(case: Case) -> dict:
    """The layouts the program gives its inputs (``fuzz.gen.layouts``), by the program's input names."""
    from fuzz.gen import program

    try:
        graph = case.program_graph()
    except Exception:  # noqa: BLE001 - no graph to read: the inputs are as saved
        return {}
    names = program.tensor_identifiers(graph)
    return {names[k]: v for k, v in program.input_layouts(graph).items()}


def _fence(case: Case) -> int:
    """The fence the campaign gave the case's inputs (``fuzz.campaign.fence.fence_for`` of its graph)."""
    from fuzz.errors import AssayError

    try:
        return fence.fence_for(case.program_graph())
    except AssayError:
        return fence.FENCE


def model_settings(case: Case) -> dict:
    """The settings the case's model needs (``fuzz.campaign.knobs.model_knobs`` of its graph's meta)."""
    from fuzz.errors import AssayError

    try:
        meta = case.graph.get("meta") if isinstance(case.graph, dict) else case.program_graph().meta
    except AssayError:
        return {}
    return knob_table.model_knobs(meta)


def _knob_lines(knobs: dict | None, model: dict) -> list[str]:
    """Set the settings the model needs (``model``: ``fuzz.campaign.knobs.model_knobs``, always) and
    the compiler settings the case was found under (``fuzz.campaign.knobs``), before any compile;
    ``ASSAY_REPRO_WITHOUT=a,b`` leaves knobs a and b at torch's defaults (triage's ablation)."""
    lines = []
    if model:
        lines += ["", "", f"MODEL_SETTINGS = {model!r}  # the model's data-dependent calls need these to compile as written"]
    if knobs:
        lines += ["", "", f"KNOBS = {dict(sorted(knobs.items()))!r}  # compiler settings the case was found under",
                  f"for _name in os.environ.get({knob_table.ENV_WITHOUT!r}, '').split(','):",
                  "    KNOBS.pop(_name.strip(), None)"]
    lines += ["", "", function_source(knob_table.set_knobs), "", ""]
    return lines + (["set_knobs(MODEL_SETTINGS)"] if model else []) + (["set_knobs(KNOBS)"] if knobs else [])


def repro_source(program_src: str, case: Case, *, inline_tensors: dict | None = None,
                 inline_limit: int = 4096, tensor_dir: str | None = None) -> str:
    """A standalone repro script for one failure (see the module docstring).

    ``inline_tensors`` ({file name: {key: tensor}}, as saved): when they hold at most
    ``inline_limit`` values in all, they are written into the script as exact literals and
    it needs no files. Otherwise ``tensor_dir`` (when given) is where the script reads its
    ``.safetensors`` files, instead of beside itself.
    """
    from fuzz.campaign import backends

    backend = backends.get(case.backend)
    vers = case.versions or versions()
    input_names = _forward_params(program_src)
    kind = str(case.kind)
    mode = case.mode or "fwd"
    err = case.error or {}
    sc = _second_call(case)
    inlined = None
    if inline_tensors is not None and sum(t.numel() for d in inline_tensors.values() for t in d.values()) <= inline_limit:
        inlined = _inlined(inline_tensors)
    if sc:
        inlined = None  # the second call reads its own inputs from inputs.safetensors
    reads = ("Needs only torch: its tensors are inlined (exact values)." if inlined is not None
             else "Needs only torch and the .safetensors files beside it.")
    header = [
        "#!/usr/bin/env python",
        f'"""Assay case {case.id or "?"}: {kind}'
        f'{" (" + case.detail + ")" if case.detail else ""} with backend {case.backend!r}, mode {mode!r}.',
        "",
        "python repro.py exits 1 when this failure reproduces (same kind and signature), 0 when eager",
        f"and {case.backend} agree, 3 on a different failure, 4 when it cannot run. {reads}",
        '"""',
        f"# Found with: torch {vers.get('torch')}, Python {vers.get('python')}, {vers.get('platform')}",
    ]
    if err.get("type"):
        msg = (err.get("message") or "").strip().splitlines()
        header.append(f"# Error seen: {err['type']}: {msg[0][:300] if msg else ''}")
    if case.diff:
        d = case.diff
        header.append(f"# Difference seen: {json.dumps({k: d.get(k) for k in ('where', 'expected', 'got', 'count', 'numel', 'max_abs', 'max_rel', 'reference', 'eager', 'compiled') if k in d})}")
    if sc and sc.get("from") is not None:
        header.append(f"# Second call (dynamic mode): every input dim of size {sc.get('from')} made {sc.get('to')}: "
                      f"{json.dumps(sc.get('shapes'))}")
    if sc and sc.get("numbers"):
        header.append("# Second call (dynamic mode): the numbers forward takes changed (name: [first, second]): "
                      f"{json.dumps(sc['numbers'])}")
    if case.knobs:
        header.append(f"# Compiler knobs set before compiling: {', '.join(sorted(case.knobs))} "
                      f"(env {knob_table.ENV_WITHOUT}=NAME,... leaves those at torch's defaults)")
    model_needs = model_settings(case)
    if model_needs:
        header.append("# The model's data-dependent calls need dynamo's capture flags: set before compiling (MODEL_SETTINGS)")
    signs_crash = kind == "crash" and bool(case.signature_text)
    header += ["import re", "import sys"] if signs_crash else ["import sys"]
    body = _program_body(program_src, inlined)
    if inlined is None and tensor_dir is not None:
        body += f"\n\nHERE = {str(tensor_dir)!r}  # the case directory: its .safetensors files\n"
    mem_limit = bool(case.mem_limit_mb) and (case.device or "cpu") == "cpu"
    detail = (case.detail or "values") if kind == "mismatch" else ""
    settings = [
        "",
        "",
        f"BACKEND, MODE, DEVICE = {case.backend!r}, {mode!r}, {case.device or 'cpu'!r}",
        f"EXPECTED, DETAIL = {kind!r}, {detail!r}  # the saved failure",
        f"SIGNATURE = {(case.signature_text if kind == 'crash' else '')!r}",
        f"CHECK = {list(case.check or [])!r}  # values compared (empty: all)",
        f"SKIP = {sorted(set(case.skip or []) | set(case.skipped_values or {}))!r}",
        f"TOLERANCE = {json.dumps({k: v for k, v in oracle.TOLERANCES.items() if k in ('float32', 'float64', 'float16', 'bfloat16')})}  # (atol, rtol, g)",
        f"K = {oracle.K!r}  # flag errors K times worse than eager's own (vs float64)",
        f"OOM_MARKERS = {tuple(oracle.OOM_MARKERS)!r}",
        f"TIMEOUT_S = {int(case.timeout_s or 300)}",
    ]
    state = "\nWRITES = " in program_src  # forward writes buffers or inputs (fuzz.gen.program)
    if mode in ("bwd", "dynamic") or state:
        settings += [f"INPUT_NAMES = {input_names!r}"]
    if mode == "bwd":
        settings += ["PARAM_NAMES = None"]
    if sc:
        settings += [f"SECOND_CALL = {sc!r}  # a second call at other input sizes"]
        settings += [f"LAYOUTS = {_layouts(case)!r}  # the inputs' memory layouts, for the second call too"]
    if mem_limit:
        settings += [f"MEM_LIMIT_MB = {int(case.mem_limit_mb)}"]
    settings += ["", "", backend.source.rstrip()]
    if backend.cached and "warm_cache" in (case.knobs or {}):  # before the knobs: the warm_cache knob sets it
        settings += ["", "", function_source(private_compile_cache), "", "",
                     "private_compile_cache()  # a cold cache of its own: only the warm-up fills it", "", "",
                     "WARM_CACHE = False  # the compile served from torch's caches (the warm_cache knob sets it)", "", "",
                     function_source(knob_table.served_from_caches), "", "",
                     "compile_model = served_from_caches(compile_model)"]
    settings += ["", "", function_source(oracle.value_mismatch)]
    settings += ["", "", f"FENCE = {_fence(case)}  # elements around every input (a read past it gives NaN)", "", "",
                 function_source(fence.fenced)]
    if mode in ("bwd", "train"):
        settings += ["", "", function_source(oracle.weighted_loss)]
    if mode == "bwd":
        settings += ["", "", function_source(oracle.outputs_and_grads)]
    if mode == "train":
        settings += ["", "", f"LR, MOMENTUM = {train.LR!r}, {train.MOMENTUM!r}  # the SGD step", "", "",
                     function_source(train.train_step)]
    if mem_limit:
        settings += ["", "", function_source(limit_address_space)]
    if case.detail == "stride":
        settings += ["", "", function_source(oracle.layout_of), "", "", function_source(oracle.strides_differ)]
    if mode in ("bwd", "train"):  # before the knobs: the compiled_autograd knob sets it
        settings += ["", "", "COMPILED_AUTOGRAD = False  # the compiled side's backward under compiled autograd", "", "",
                     function_source(knob_table.compiled_backward)]
    if mode in ("fwd", "dynamic") and "inference_mode" in (case.knobs or {}):  # before the knobs: they set it
        settings += ["", "", "INFERENCE_MODE = False  # the compiled side under torch.inference_mode()", "", "",
                     function_source(knob_table.forward_context)]
    elif mode in ("fwd", "dynamic"):
        settings += ["", "", "def forward_context(compiled=True):", "    return torch.no_grad()  # every forward run's grad mode"]
    if mode == "dynamic":  # before the knobs: the automatic_dynamic knob sets it to None
        settings += ["", "", "COMPILE_DYNAMIC = True  # torch.compile(dynamic=...) of this mode"]
    if case.knobs or model_needs:
        settings += _knob_lines(case.knobs, model_needs)
    if signs_crash:
        settings += _crash_signing()
    if kind == "mismatch" and case.detail == DETAIL_RAISES:  # a program eager rejects (fuzz.gen.error_calls)
        main = snippets.RAISES.replace(
            "        LIMIT\n", "        limit_address_space(MEM_LIMIT_MB)\n" if mem_limit else "", 1)
    else:
        main = _main_source(mode, bool(sc), mem_limit, state, strides=case.detail == "stride")
    main = _with_helpers(main, numbers="].item()" in program_src)
    return "\n".join(header) + "\n" + body + "\n".join(settings) + "\n\n" + main


def _with_helpers(main: str, numbers: bool) -> str:
    """``main`` with the helpers it calls defined above it (``snippets.HELPERS``); for a program that
    takes no Python numbers (its ``load_inputs`` reads none with ``.item()``), the plain expressions."""
    if not numbers:
        for call, plain in snippets.PLAIN.items():
            main = main.replace(call, plain)
    used = [src for name, src in snippets.HELPERS.items() if f"{name}(" in main]
    return "".join(used) + main


def write_repro(case_dir) -> Path:
    """Write ``repro.py`` into a case directory from its ``program.py`` and ``case.json``."""
    import hashlib

    from fuzz.campaign.store import atomic_write

    case_dir = Path(case_dir)
    case = read_case(case_dir)
    src = repro_source((case_dir / "program.py").read_text(), case)
    path = case_dir / "repro.py"
    atomic_write(path, src)
    if case.digests is not None:  # the case's digests name the new script
        case.digests["repro.py"] = hashlib.sha256(src.encode()).hexdigest()
        atomic_write(case_dir / "case.json", case.dumps())
    return path


if __name__ == "__main__":  # python -m fuzz.campaign.repro CASE_DIR: (re)write its repro.py
    print(write_repro(sys.argv[1]))
