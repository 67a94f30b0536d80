"""The seam between triage and the campaign's modules (store, worker, repro, signatures).

Everything triage needs from ``fuzz.campaign.store``, ``fuzz.campaign.repro`` and ``fuzz.campaign.failure``
goes through here, so a change in their API is a change in one file.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from fuzz.errors import AssayError
from fuzz.triage.cases import Case, check_dir


def _iso(ts) -> str | None:
    if ts is None:
        return None
    if isinstance(ts, (int, float)):
        return datetime.fromtimestamp(float(ts), tz=timezone.utc).isoformat(timespec="seconds")
    return str(ts)


def index_counts(root) -> dict:
    """signature -> {count, first_seen, last_seen} from the store's SQLite index (empty if none)."""
    root = Path(root)
    if not (root / "index.sqlite").exists():
        return {}
    try:
        import sqlite3

        from fuzz.campaign.store import CrashStore

        store = CrashStore(root, create=False)
        try:
            rows = store.signatures()
        finally:
            store.close()
    except (ImportError, AssayError, sqlite3.Error):
        return {}
    return {r["signature"]: {"count": r.get("count") or 0, "first_seen": _iso(r.get("first_seen")),
                             "last_seen": _iso(r.get("last_seen"))} for r in rows}


def campaign_started(root) -> str | None:
    """When the latest campaign run in ``root`` started (rows first seen since then are 'new')."""
    import json

    for name in ("stats.json", "campaign.json"):
        p = Path(root) / name
        try:
            data = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        for key in ("session_started", "run_started", "started", "start_time", "started_at", "resumed", "created"):
            if data.get(key):
                return _iso(data[key])
    return None


def listing_rows(root):
    from fuzz.triage.listing import signature_rows

    check_dir(root)
    return signature_rows(root, counts=index_counts(root), since=campaign_started(root))


def repro_source(case: Case, inline_limit: int = 4096) -> str:
    """The standalone repro script for a case, written by ``fuzz.campaign.repro`` (the single emitter).

    The emitter's script reads ``inputs.safetensors``/``params.safetensors`` beside itself.
    Printed on stdout it lives elsewhere, so: when the case's tensors are small (reduced
    cases are), they are inlined as ``torch.tensor`` literals (exact values) and the
    script needs no files at all; otherwise it reads them from the case directory.
    """
    from fuzz.campaign import repro
    from fuzz.gen.program import program_source

    prog = case.path / "program.py"
    if prog.exists():
        program_src = prog.read_text()
    else:
        program_src = program_source(case.graph())
    src = repro.repro_source(program_src, case.data)
    try:
        tensors = _saved_tensors(case)
    except AssayError:
        tensors = None
    if tensors is not None and sum(t.numel() for d in tensors.values() for t in d.values()) <= inline_limit:
        inlined = _inline(src, tensors)
        if inlined is not None:
            return inlined
    here = "HERE = os.path.dirname(os.path.abspath(__file__))"
    if here in src:
        src = src.replace(here, f"HERE = {str(case.path.resolve())!r}  # the case directory: its .safetensors files", 1)
    return src


def _saved_tensors(case: Case) -> dict:
    """{file name: {key: tensor}} as saved (keys as the program reads them)."""
    from safetensors.torch import load_file

    out = {}
    for name in ("inputs.safetensors", "params.safetensors"):
        p = case.path / name
        if p.exists():
            try:
                out[name] = load_file(str(p))
            except Exception as exc:
                raise AssayError(f"case {case.id}: corrupt {name} ({exc})") from None
    return out


def _literal(t) -> str | None:
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


def _inline(src: str, tensors: dict) -> str | None:
    anchor = "\n\nclass Model(torch.nn.Module):"
    if anchor not in src:
        return None
    lines = ["", "", "# The case's tensors, inlined (exact values), so this script needs no files.", "_INLINE = {"]
    for fname, d in tensors.items():
        lines.append(f"    {fname!r}: {{")
        for key, t in d.items():
            lit = _literal(t)
            if lit is None:
                return None
            lines.append(f"        {key!r}: {lit},")
        lines.append("    },")
    lines += ["}", "", "",
              "def read_safetensors(path):  # noqa: F811 - the inlined tensors instead of the files",
              "    return {k: v.clone() for k, v in _INLINE.get(os.path.basename(path), {}).items()}"]
    src = src.replace("reads inputs.safetensors and params.safetensors next to this file.",
                      "its tensors are inlined below (exact values): no other files needed.", 1)
    return src.replace(anchor, "\n".join(lines) + anchor, 1)
