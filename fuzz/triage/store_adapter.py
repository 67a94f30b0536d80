"""The seam between triage and the campaign's modules (store, worker, repro, signatures).

Everything triage needs from ``fuzz.store``, ``fuzz.repro`` and ``fuzz.signature_of_failure``
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

        from fuzz.store import CrashStore

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
        for key in ("run_started", "started", "start_time", "started_at"):
            if data.get(key):
                return _iso(data[key])
    return None


def listing_rows(root):
    from fuzz.triage.listing import signature_rows

    check_dir(root)
    return signature_rows(root, counts=index_counts(root), since=campaign_started(root))


def repro_source(case: Case) -> str:
    """The standalone repro script for a case, from ``fuzz.repro`` (the single emitter)."""
    try:
        from fuzz import repro
    except ImportError:
        repro = None
    if repro is not None:
        for name in ("repro_source", "render_repro", "make_repro", "repro_script"):
            fn = getattr(repro, name, None)
            if fn is not None:
                return _call_repro(fn, case)
    saved = case.path / "repro.py"
    if saved.exists():
        return saved.read_text()
    raise AssayError(f"case {case.id} has no repro.py and fuzz.repro is not available to write one")


def _call_repro(fn, case: Case) -> str:
    return fn(case.data)
