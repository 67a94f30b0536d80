"""``assay triage show``: one case, everything about it, for a person."""

from __future__ import annotations

import json

from fuzz.campaign.case import Case
from fuzz.errors import AssayError
from fuzz.triage.knob_ablation import knob_lines
from fuzz.triage.listing import error_line


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (list, tuple)) and len(v) <= 8:
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    if isinstance(v, dict):
        return json.dumps(v, default=str)[:200]
    return str(v)


def render_diff(diff) -> list[str]:
    """The eager-vs-compiled difference: per output max abs/rel error, where, how many elements."""
    if not diff:
        return ["  (no diff recorded: the case is not a value mismatch, or the store did not keep one)"]
    if isinstance(diff, str):
        return ["  " + line for line in diff.splitlines()]
    lines = []
    outputs = None
    if isinstance(diff, dict) and "max_abs" in diff:
        where = diff.get("where", "?")
        idx = diff.get("index")
        lines.append(f"  {where}: {diff.get('count', '?')} of {diff.get('numel', '?')} elements off; "
                     f"max abs error {_fmt(diff.get('max_abs'))} (max rel {_fmt(diff.get('max_rel'))})"
                     f"{' at index ' + _fmt(idx) if idx is not None else ''}")
        if "compiled" in diff:
            lines.append(f"  there: reference {_fmt(diff.get('reference'))}"
                         f"{' (float64)' if diff.get('reference_is_float64') else ''}, eager {_fmt(diff.get('eager'))}, "
                         f"compiled {_fmt(diff.get('compiled'))}")
        tol = diff.get("tolerance")
        if isinstance(tol, dict):
            lines.append("  tolerance: " + ", ".join(f"{k}={_fmt(v)}" for k, v in tol.items()))
        return lines
    if isinstance(diff, dict):
        outputs = diff.get("outputs") or diff.get("per_output")
        for k, v in diff.items():
            if k in ("outputs", "per_output"):
                continue
            lines.append(f"  {k}: {_fmt(v)}")
    elif isinstance(diff, list):
        outputs = diff
    if isinstance(outputs, list):
        keys = []
        for o in outputs:
            if isinstance(o, dict):
                keys += [k for k in o if k not in keys]
        if keys:
            order = ["index", "output", "name", "status", "shape", "dtype", "max_abs", "max_rel", "where", "argmax",
                     "mismatched", "count", "numel", "eager", "compiled", "atol", "rtol"]
            keys = sorted(keys, key=lambda k: (order.index(k) if k in order else len(order), k))
            rows = [[_fmt(o.get(k, "")) if isinstance(o, dict) else "" for k in keys] for o in outputs]
            widths = [max(len(k), *(len(r[i]) for r in rows)) for i, k in enumerate(keys)]
            lines.append("  " + "  ".join(k.ljust(w) for k, w in zip(keys, widths)))
            for r in rows:
                lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)))
    return lines or ["  " + _fmt(diff)]


def render_case(case: Case, known: str = "") -> str:
    out = [f"case {case.id}   ({case.path})"]
    if known:
        out.append(f"  KNOWN ISSUE: {known}")
    fields = [("kind", case.kind.value), ("backend", case.backend or "?"), ("mode", case.mode or "-"),
              ("signature", case.failure.id)]
    if case.signature_text:
        fields.append(("signature text", case.signature_text))
    fields += [("outcome", _fmt(case.outcome) if case.outcome else "-"),
               ("created", case.created or "-"), ("seed", "-" if case.seed is None else case.seed),
               ("reproduces", {True: "yes", False: "no", None: "not checked"}.get(case.reproduces, case.reproduces)),
               ("files", f"CORRUPT: {case.damage()}" if case.damage() else
                "match case.json's digests" if case.digests else "not checked (no digests in case.json)")]
    tri = case.triage or {}
    if tri.get("recheck"):
        rc = tri["recheck"]
        fields.append(("last recheck", f"{rc.get('status')} at {rc.get('at')} (torch {rc.get('torch', '?')})"))
    if tri.get("reduced_from"):
        fields.append(("reduced from", f"{tri['reduced_from']} ({tri.get('ops_before')} -> {tri.get('ops_after')} ops)"))
    if tri.get("reduced_case"):
        fields.append(("reduced case", tri["reduced_case"]))
    sc = case.second_call if case.mode == "dynamic" and isinstance(case.second_call, dict) else None
    if sc and (sc.get("shapes") or sc.get("numbers")):
        what = [f"dims of size {sc['from']} made {sc['to']}"] if sc.get("from") is not None else []
        what += [f"{n} {a!r} -> {b!r}" for n, (a, b) in (sc.get("numbers") or {}).items()]
        fields.append(("second call", "; ".join(what) or "the same sizes"))
    if case.versions:
        fields.append(("versions", ", ".join(f"{k} {v}" for k, v in case.versions.items())))
    w = max(len(k) for k, _ in fields)
    out += [f"  {k.ljust(w)}  {v}" for k, v in fields]
    out += knob_lines(case)
    ops = case.ops
    out.append(f"\nops ({len(ops)}): {', '.join(ops)}")
    err = case.error
    if err:
        out.append("\nerror:")
        out.append(f"  {error_line(case)}")
        tb = err.get("traceback")
        if tb:
            tail = tb.rstrip().splitlines()[-12:]
            out.append("  traceback (last lines):")
            out += ["    " + line for line in tail]
    out.append("\neager vs compiled:")
    out += render_diff(case.diff)
    try:
        graph = case.program_graph()
        out.append("\ngraph:")
        out += ["  " + line for line in graph.render().splitlines()]
    except Exception as exc:  # show what we can even for a damaged case
        out.append(f"\ngraph: unreadable ({exc})")
    prog = case.path / "program.py"
    if prog.exists():
        out.append(f"\nprogram ({prog}):")
        try:
            out.append(prog.read_text().rstrip())
        except (OSError, UnicodeDecodeError) as exc:
            out.append(f"  unreadable ({type(exc).__name__})")
    repro = case.path / "repro.py"
    out.append(f"\nrepro: python {repro}" if repro.exists() else "\nrepro: (none saved; 'assay triage repro' prints one)")
    return "\n".join(out)


def printed_repro(case: Case) -> str:
    """The case's standalone repro script, for stdout (``fuzz.campaign.repro``, the one emitter).

    Printed, the script lives away from the case's files: small tensors (reduced cases'
    are) are inlined as exact literals so it needs no files; otherwise it reads them from
    the case directory.
    """
    from fuzz.campaign import repro
    from fuzz.gen.program import program_source

    prog = case.path / "program.py"
    program_src = prog.read_text() if prog.exists() else program_source(case.program_graph())
    try:
        tensors = case.tensor_files()
    except AssayError:
        tensors = None
    return repro.repro_source(program_src, case, inline_tensors=tensors, tensor_dir=str(case.path.resolve()))
