"""``assay triage issue ID``: a Markdown issue body ready to file upstream.

The shape is PyTorch's torch.compile bug template ("Describe the bug", the error logs, a
minimal repro, "Versions"), filled with what maintainers ask fuzzer reports for:

- a title naming the backend, the kind and the error or the operators;
- the minimal self-contained repro: the reduced case's when one exists, tensors inlined
  (``fuzz.triage.show.printed_repro``);
- the backend ablation: the same repro with each of ``eager``, ``aot_eager``,
  ``aot_eager_decomp_partition``, ``inductor`` swapped in, each run alone in a sandboxed child
  with a timeout and read by its exit code (``fuzz.campaign.repro.judge_run``): which fail, and
  whether with the same failure;
- for value mismatches, the float64-reference comparison: compiled error vs eager error
  against float64 at the worst element, and how many elements are off;
- the compiler settings the failure needs (``torch.compile`` call, mode) and the versions
  (torch, Python, platform, CPU capability, C++ compiler) of the machine the ablation ran on;
- the upstream link when the known-issues file names the failure (``fuzz.triage.known``).
"""

from __future__ import annotations

import dataclasses
import platform
import sys
import tempfile
from pathlib import Path

from fuzz.campaign import repro, sandbox
from fuzz.campaign.case import Case
from fuzz.errors import AssayError
from fuzz.triage.cases import load_case
from fuzz.triage.listing import error_line, short_op

ABLATION = ("eager", "aot_eager", "aot_eager_decomp_partition", "inductor")
_SAID = {"reproduced": "fails: the same failure", "agree": "passes (matches eager)",
         "different": "fails differently", "cannot run": "could not run"}


def _as_backend(case: Case, backend: str) -> Case:
    """The case as if found on ``backend``: a crash keeps its signature with the backend swapped."""
    text = case.signature_text or ""
    prefix = f"crash|{case.backend}|"
    if text.startswith(prefix):
        text = f"crash|{backend}|" + text[len(prefix):]
    return dataclasses.replace(case, backend=backend, signature_text=text)


def ablation(case: Case, backends=ABLATION, timeout: float = 300.0, log=None) -> list[dict]:
    """Run the case's repro with each backend in a fresh sandboxed process: [{backend, outcome, said, seconds, last}]."""
    from fuzz.triage.show import printed_repro

    log = log or (lambda m: None)
    out = []
    with tempfile.TemporaryDirectory(prefix="assay-issue-") as tmp:
        for b in backends:
            variant = _as_backend(case, b)
            try:
                src = printed_repro(variant)
            except AssayError as exc:
                out.append({"backend": b, "outcome": "cannot run", "said": f"not run: {exc}", "seconds": 0.0, "last": ""})
                continue
            script = Path(tmp) / f"repro_{b}.py"
            script.write_text(src)
            res = sandbox.run([sys.executable, str(script)], timeout, case.mem_limit_mb or None, cwd=tmp)
            outcome = repro.judge_run(variant, None if res.timed_out else res.returncode, res.stdout, res.stderr,
                                      res.timed_out)
            last = (res.stdout.strip().splitlines() or [""])[-1][:200]
            said = "timed out after %.0f s" % timeout if res.timed_out else _SAID[outcome]
            if outcome == "different" and last:
                said += f" ({last})"
            out.append({"backend": b, "outcome": outcome, "said": said, "seconds": round(res.elapsed_s, 1), "last": last})
            log(f"{b}: {said} [{res.elapsed_s:.1f}s]")
    return out


def environment() -> dict:
    """Versions of this machine: torch, Python, platform, CPU capability, C++ compiler."""
    import subprocess

    env = {"python": platform.python_version(), "platform": platform.platform()}
    try:
        import torch

        env["torch"] = torch.__version__
        env["cpu capability"] = torch.backends.cpu.get_cpu_capability()
        env["cuda"] = torch.version.cuda or "none"
    except Exception as exc:  # pragma: no cover - torch is a dependency
        env["torch"] = f"unavailable ({exc})"
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler

        cc = get_cpp_compiler()
        first = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout.splitlines()
        env["C++ compiler"] = f"{cc}: {first[0] if first else '?'}"
    except Exception as exc:
        env["C++ compiler"] = f"not found ({type(exc).__name__})"
    return env


def _title(case: Case) -> str:
    ops = ", ".join(dict.fromkeys(short_op(o) for o in case.ops[:4]))
    if str(case.kind) == "crash":
        what = error_line(case) or "raises"
        return f"torch.compile(backend={case.backend!r}) raises where eager does not: {what}"[:160]
    if str(case.kind) == "mismatch":
        return f"torch.compile(backend={case.backend!r}) gives wrong {case.detail or 'values'} for {ops} vs eager"[:160]
    return f"torch.compile(backend={case.backend!r}): {case.kind} ({case.detail}) on {ops}"[:160]


def _float64(case: Case) -> list[str]:
    d = case.diff or {}
    if str(case.kind) != "mismatch" or "max_abs" not in d:
        if str(case.kind) == "mismatch" and "expected" in d:
            return [f"Not a value difference: `{d.get('where')}` has {case.detail} `{d.get('expected')}` in eager, "
                    f"`{d.get('got')}` compiled."]
        return []
    ref = "float64 reference" if d.get("reference_is_float64") else "eager (no float64 reference for these ops)"
    eager_err = d.get("eager_abs_err")
    tol = d.get("tolerance") or {}
    lines = [f"Compared against a {ref}, run on the same inputs cast to float64, at the worst element of "
             f"`{d.get('where')}` (index {d.get('index')}; {d.get('count')} of {d.get('numel')} elements off):", "",
             "| | value | abs error vs float64 |", "|---|---|---|",
             f"| float64 reference | {d.get('reference')} | 0 |",
             f"| eager | {d.get('eager')} | {eager_err} |",
             f"| compiled ({case.backend}) | {d.get('compiled')} | {d.get('max_abs')} |", ""]
    if isinstance(eager_err, (int, float)) and isinstance(d.get("max_abs"), (int, float)):
        ratio = d["max_abs"] / eager_err if eager_err else float("inf")
        lines.append(f"The compiled error is {ratio:.3g}x eager's own error; an element is flagged when it exceeds "
                     f"max(K x eager's error, atol + rtol x |ref| + g x max|ref|) with K={tol.get('k')}, "
                     f"atol={tol.get('atol')}, rtol={tol.get('rtol')}, g={tol.get('g')}.")
    return lines


def issue_markdown(root, case_id: str, *, known_file=None, backends=ABLATION, timeout: float = 300.0,
                   run_ablation: bool = True, log=None) -> str:
    """The issue body for one case (its reduced case's repro when there is one)."""
    from fuzz.triage.known import known_for, load_known
    from fuzz.triage.listing import group_key
    from fuzz.triage.show import printed_repro

    case = load_case(root, case_id)
    damage = case.damage()
    if damage:
        raise AssayError(f"{damage}; no issue written from damaged files")
    reduced_id = (case.triage or {}).get("reduced_case")
    shown = case
    if reduced_id:
        try:
            shown = load_case(root, reduced_id)
        except AssayError:
            shown = case
    if shown.damage():
        shown = case
    known = known_for(load_known(root, known_file), [case.failure.id, shown.failure.id] +
                      ([group_key(shown)] if shown is not case else []))
    src = printed_repro(shown)
    mode = shown.mode or "fwd"
    lines = [f"# {_title(shown)}", ""]
    if known:
        lines += [f"> Known: {known}", ""]
    lines += ["### 🐛 Describe the bug", "",
              f"Found by differential fuzzing (Assay): a generated model run in eager mode and with "
              f"`torch.compile(backend={shown.backend!r})` on the same inputs gives "
              + ("an exception only in the compiled run." if str(shown.kind) == "crash" else
                 f"a `{shown.kind}` ({shown.detail or '-'}) only in the compiled run."),
              f"Operators: {', '.join(f'`{o}`' for o in shown.ops)}."
              + (f" Reduced from case `{case.id}` ({len(case.ops)} operators) to {len(shown.ops)}." if shown is not case else ""),
              "", "Minimal repro (needs only torch; exits 1 when this failure reproduces, 0 when eager and "
              "the backend agree):", "", "```python", src.rstrip(), "```", ""]
    err = shown.error or {}
    if err.get("traceback") or err.get("message"):
        tail = (err.get("traceback") or f"{err.get('type')}: {err.get('message')}").rstrip().splitlines()[-25:]
        lines += ["### Error logs", "", "```", *tail, "```", ""]
    f64 = _float64(shown)
    if f64:
        lines += ["### Accuracy against float64", "", *f64, ""]
    lines += ["### Backend ablation", ""]
    if run_ablation:
        rows = ablation(shown, backends, timeout, log)
        lines += ["| backend | result |", "|---|---|", *[f"| `{r['backend']}` | {r['said']} |" for r in rows], "",
                  f"Each row: the repro above with only the backend changed, run alone in a fresh process "
                  f"(timeout {timeout:.0f} s)."]
        own = [r for r in rows if r["backend"] == shown.backend]
        if own and own[0]["outcome"] != "reproduced":
            lines += ["", f"**Not reproduced here with `{shown.backend}`** ({own[0]['said']}): check the versions "
                      "below against where it was found before filing."]
    else:
        lines.append("(not run: --no-ablation)")
    lines += ["", "### Compiler settings", "",
              f"- `torch.compile(model, backend={shown.backend!r}, dynamic={mode == 'dynamic'})`"
              + (", then backward through it (gradients compared)" if mode == "bwd" else "")
              + (" on the module in training mode, then one SGD step with momentum (loss, gradients, updated "
                 "parameters and buffers compared)" if mode == "train" else "")
              + (", called again at other input sizes" if shown.second_call else ""),
              _config_line(shown),
              f"- device: {shown.device or 'cpu'}", ""]
    env = environment()
    found = shown.versions or {}
    lines += ["### Versions", "", "Where this report was checked:", "", "```",
              *[f"{k}: {v}" for k, v in env.items()], "```"]
    if found:
        lines += ["", "Where it was found: " + ", ".join(f"{k} {v}" for k, v in found.items())]
    lines += ["", f"<sub>Assay case `{case.id}`{' (reduced: `' + shown.id + '`)' if shown is not case else ''}, "
              f"signature `{shown.failure.id}`.</sub>", ""]
    return "\n".join(lines)


def _config_line(case: Case) -> str:
    """The config changes the repro makes before compiling: the settings the model needs (dynamo's
    capture flags for data-dependent calls) and the knobs the case was found under."""
    roots = {"dynamo": "torch._dynamo.config", "inductor": "torch._inductor.config"}
    settings: dict = {}
    for group in (repro.model_settings(case), case.knobs or {}):
        for values in group.values():
            settings.update(values if isinstance(values, dict) else {})
    set_ = [f"`{roots[k.partition('.')[0]]}.{k.partition('.')[2]} = {v!r}`" for k, v in sorted(settings.items())
            if k.partition(".")[0] in roots]
    how = ("; compiled with torch's default `dynamic=None` (a static first compile, automatic dynamic shapes "
           "on the second call's recompile)" if settings.get("assay.COMPILE_DYNAMIC", True) is None else "")
    if settings.get("assay.COMPILED_AUTOGRAD"):
        how += ("; the compiled side's backward runs under compiled autograd "
                "(`torch._dynamo.compiled_autograd._enable(torch.compile(backend=...))`)")
    if not set_:
        return ("- no `torch._dynamo.config` / `torch._inductor.config` changes; `torch._dynamo.reset()` before "
                f"compiling{how}")
    return f"- set before compiling: {', '.join(set_)}; `torch._dynamo.reset()` before compiling{how}"
