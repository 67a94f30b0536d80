"""The one emitter of standalone ``repro.py`` scripts (campaign cases and reduced cases).

A repro depends only on torch. It contains, in order: a header comment (case id,
kind, backend, mode, the environment it was found in, how to run it), the model
program (``fuzz.gen.program`` source minus its ``__main__`` block, reading the
``.safetensors`` files beside it), the backend's compile snippet (``fuzz.campaign.backends``,
the same code the campaign ran), the oracle's comparison function
(``fuzz.campaign.oracle.value_mismatch``, copied verbatim) and a ``main`` that runs eager and
the backend and exits **1 when the failure reproduces, 0 when it does not**.

- crash / oom: reproduces when the backend raises and eager does not;
- mismatch: reproduces when one of the ``CHECK`` values is far off the float64
  reference (explicit ``TOLERANCE`` and ``K``), or differs in shape or dtype;
- signal: the process dies by the signal (non-zero exit on its own);
- hang: ``faulthandler`` ends the process with status 1 after ``TIMEOUT_S``.

In ``dynamic`` mode a case may carry a ``second_call`` (sizes, and its inputs saved in
``inputs.safetensors`` under ``second_call.<name>``): the repro then also calls the same
compiled function at those sizes and checks its values (named ``call2:out<i>``) too.

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

from fuzz.campaign import oracle
from fuzz.campaign.case import Case, read_case
from fuzz.isolation import limit_address_space


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


_MAIN = '''
def _values(fn, module, inputs, dtype64=False):
    """name -> value: outputs out0.. (and grad:<name> gradients in bwd mode)."""
    if MODE == "bwd":
        inputs = [x.detach().clone().requires_grad_(x.dtype.is_floating_point) for x in inputs]
        params = [n for n, _ in module.named_parameters()] if PARAM_NAMES is None else PARAM_NAMES
        res = outputs_and_grads(fn, module, params, inputs, INPUT_NAMES, SKIP, dtype64)
        if res is None:
            return {}
        values, names = res
        n_out = len(values) - len(names)
        return dict(zip([f"out{i}" for i in range(n_out)] + names, values))
    with torch.no_grad():
        out = fn(*[x.clone() for x in inputs])
    out = list(out) if isinstance(out, (tuple, list)) else [out]
    return {f"out{i}": o for i, o in enumerate(out)}


def _second_call_inputs():
    """Dynamic mode's second call: the same inputs at other sizes, saved beside the first ones."""
    if not SECOND_CALL:
        return None
    tensors = read_safetensors(os.path.join(HERE, "inputs.safetensors"))
    keys = [SECOND_CALL["key_prefix"] + n for n in INPUT_NAMES]
    if any(k not in tensors for k in keys):
        print("note: inputs.safetensors lacks the second call's inputs; replaying the first call only")
        return None
    return [tensors[k].to(DEVICE) for k in keys]


def _call2(values):
    return {f"call2:{k}": v for k, v in values.items()}


def main():
    import copy
    import faulthandler
    import traceback

    faulthandler.enable()
    faulthandler.dump_traceback_later(TIMEOUT_S, exit=True)  # a hang ends with status 1
    limit_address_space(MEM_LIMIT_MB)
    torch.manual_seed(0)
    model = load_model().to(DEVICE)
    inputs = [t.to(DEVICE) for t in load_inputs()]
    global PARAM_NAMES
    PARAM_NAMES = [n for n, _ in model.named_parameters()]
    inputs2 = _second_call_inputs()
    try:
        m = copy.deepcopy(model)
        expected = _values(m, m, inputs)
        if inputs2 is not None:
            m = copy.deepcopy(model)
            expected.update(_call2(_values(m, m, inputs2)))
    except Exception:
        traceback.print_exc()
        print("did not reproduce: eager itself raised (not a compiler bug)")
        return 0
    try:
        module = copy.deepcopy(model)
        xs = [x.detach().clone().requires_grad_(x.dtype.is_floating_point and MODE == "bwd") for x in inputs]
        if MODE == "bwd":
            fn = compile_model(module, xs, dynamic=False)
        else:
            with torch.no_grad():
                fn = compile_model(module, xs, dynamic=(MODE == "dynamic"))
        actual = _values(fn, fn if isinstance(fn, torch.nn.Module) else module, inputs)
        if inputs2 is not None:  # the same compiled function at other sizes (dynamo may recompile)
            actual.update(_call2(_values(fn, fn if isinstance(fn, torch.nn.Module) else module, inputs2)))
    except Exception as exc:
        traceback.print_exc()
        print(f"REPRODUCED: {BACKEND} raised {type(exc).__name__}; eager ran fine")
        return 1
    if EXPECTED != "mismatch":
        print(f"did not reproduce: {BACKEND} ran without error (expected {EXPECTED})")
        return 0
    try:
        m64 = copy.deepcopy(model).to(torch.float64)
        ref = _values(m64, m64, [x.to(torch.float64) if x.dtype.is_floating_point else x for x in inputs], dtype64=True)
        if inputs2 is not None:
            m64 = copy.deepcopy(model).to(torch.float64)
            ref.update(_call2(_values(m64, m64, [x.to(torch.float64) if x.dtype.is_floating_point else x
                                                 for x in inputs2], dtype64=True)))
    except Exception:
        ref = None  # float64 unsupported by some op: judge against eager, 10x looser
    bad = []
    for name in CHECK:
        e, a = expected.get(name), actual.get(name)
        if e is None or a is None:
            continue
        if a.dtype != e.dtype or a.shape != e.shape:
            print(f"{name}: eager {e.dtype}{list(e.shape)}, {BACKEND} {a.dtype}{list(a.shape)}")
            bad.append(name)
            continue
        if e.dtype.is_floating_point or e.dtype.is_complex:
            r = ref.get(name) if ref else None
            have64 = r is not None and r.shape == e.shape
            atol, rtol, g = TOLERANCE.get(str(e.dtype).replace("torch.", ""), TOLERANCE["float32"])
            if not have64:
                r, atol, rtol, g = e, atol * 10, rtol * 10, g * 10
            limit = 0.5 * torch.finfo(e.dtype).max if e.dtype.is_floating_point else None
            mask = value_mismatch(r, e.detach(), a.detach(), atol, rtol, g, K, limit)
        else:
            mask = a.cpu() != e.cpu()
        if bool(mask.any()):
            idx = int(mask.reshape(-1).nonzero()[0])
            r0 = (r if e.dtype.is_floating_point else e).reshape(-1)[idx] if e.dim() else e
            print(f"{name}: {int(mask.sum())}/{mask.numel()} values off; first at flat index {idx}: "
                  f"reference {float(r0)}, eager {float(e.reshape(-1)[idx])}, {BACKEND} {float(a.reshape(-1)[idx])}")
            bad.append(name)
    if bad:
        print(f"REPRODUCED: {BACKEND} differs from eager beyond tolerance in {', '.join(bad)}")
        return 1
    print("did not reproduce: all checked values agree within tolerance")
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''


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
    return {k: sc[k] for k in ("from", "to", "shapes", "key_prefix") if k in sc}


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
    """Source lines that replace ``read_safetensors`` with the given tensors, or None if one cannot be written."""
    lines = ["", "", "# The case's tensors, inlined (exact values), so this script needs no files.", "_INLINE = {"]
    for fname, saved in tensors.items():
        lines.append(f"    {fname!r}: {{")
        for key, t in saved.items():
            lit = _literal(t)
            if lit is None:
                return None
            lines.append(f"        {key!r}: {lit},")
        lines.append("    },")
    return lines + ["}", "", "",
                    "def read_safetensors(path):  # noqa: F811 - the inlined tensors instead of the files",
                    "    return {k: v.clone() for k, v in _INLINE.get(os.path.basename(path), {}).items()}"]


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
    check = case.check or []
    err = case.error or {}
    inlined = None
    if inline_tensors is not None and sum(t.numel() for d in inline_tensors.values() for t in d.values()) <= inline_limit:
        inlined = _inlined(inline_tensors)
    reads = ("its tensors are inlined below (exact values): no other files needed." if inlined is not None
             else "reads inputs.safetensors and params.safetensors next to this file.")
    header = [
        "#!/usr/bin/env python",
        f'"""Assay case {case.id or "?"}: {kind}'
        f'{" (" + case.detail + ")" if case.detail else ""} with backend {case.backend!r}, mode {case.mode or "fwd"!r}.',
        "",
        "Exits 1 when the failure reproduces, 0 when it does not. Needs only torch;",
        reads,
        "",
        "    python repro.py",
        '"""',
        f"# Found with: torch {vers.get('torch')}, Python {vers.get('python')}, {vers.get('platform')}",
    ]
    if err.get("type"):
        msg = (err.get("message") or "").strip().splitlines()
        header.append(f"# Error seen: {err['type']}: {msg[0][:300] if msg else ''}")
    if case.diff:
        d = case.diff
        header.append(f"# Difference seen: {json.dumps({k: d.get(k) for k in ('where', 'expected', 'got', 'count', 'numel', 'max_abs', 'max_rel', 'reference', 'eager', 'compiled') if k in d})}")
    sc = _second_call(case)
    if sc:
        header.append(f"# Second call (dynamic mode): every input dim of size {sc.get('from')} made {sc.get('to')}: "
                      f"{json.dumps(sc.get('shapes'))}")
    header.append("import sys")
    body = strip_main(program_src)
    if inlined is not None:
        body += "\n".join(inlined) + "\n"
    elif tensor_dir is not None:
        body += f"\n\nHERE = {str(tensor_dir)!r}  # the case directory: its .safetensors files\n"
    settings = [
        "",
        "",
        "# ---------------------------------------------------------------------------",
        "# The check: eager vs the backend, as the campaign ran it.",
        f"BACKEND = {case.backend!r}",
        f"MODE = {case.mode or 'fwd'!r}  # fwd: no_grad forward; bwd: + gradients; dynamic: dynamic=True",
        f"DEVICE = {case.device or 'cpu'!r}",
        f"EXPECTED = {kind!r}",
        f"CHECK = {check!r}  # values compared: the ones that differed (call2:*: the second call's)",
        f"SECOND_CALL = {sc!r}  # dynamic mode: a second call at other input sizes",
        f"SKIP = {sorted(case.skip or [])!r}  # outputs left out of the gradient loss",
        f"INPUT_NAMES = {input_names!r}",
        "PARAM_NAMES = None",
        f"TOLERANCE = {json.dumps(oracle.TOLERANCES)}  # dtype: (atol, rtol, g)",
        f"K = {oracle.K!r}  # flag only errors K times worse than eager's own (vs float64)",
        f"TIMEOUT_S = {int(case.timeout_s or 300)}",
        f"MEM_LIMIT_MB = {int(case.mem_limit_mb or 0)}",
        "",
        "",
        backend.source.rstrip(),
        "",
        "",
        textwrap.dedent(inspect.getsource(oracle.value_mismatch)).rstrip(),
        "",
        "",
        textwrap.dedent(inspect.getsource(oracle.outputs_and_grads)).rstrip(),
        "",
        "",
        textwrap.dedent(inspect.getsource(limit_address_space)).rstrip(),
    ]
    return "\n".join(header) + "\n" + body + "\n".join(settings) + "\n" + _MAIN


def write_repro(case_dir) -> Path:
    """Write ``repro.py`` into a case directory from its ``program.py`` and ``case.json``."""
    case_dir = Path(case_dir)
    src = (case_dir / "program.py").read_text()
    path = case_dir / "repro.py"
    path.write_text(repro_source(src, read_case(case_dir)))
    return path


if __name__ == "__main__":  # python -m fuzz.campaign.repro CASE_DIR: (re)write its repro.py
    print(write_repro(sys.argv[1]))
