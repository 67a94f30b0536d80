"""Known issues: a file the user keeps, mapping failures to where they are already reported.

``<campaign>/known-issues.json`` (or the file ``--known FILE`` names) is one JSON object: each
key is a failure signature as ``assay triage list`` shows it (a campaign signature such as
``crash-inductor-3f9a1c2b7d10``, or the key of a reduced row, which ``list`` prints under the
row), each value the upstream link, or ``{"url": ..., "note": ...}``::

    {"mismatch-inductor-0a1b2c3d4e5f": "https://github.com/pytorch/pytorch/issues/123456",
     "crash-inductor-3f9a1c2b7d10": {"url": "https://github.com/pytorch/pytorch/issues/1", "note": "fixed in 2.14"}}

``list``, ``show``, ``issue`` and ``report`` mark the rows and cases it names.
"""

from __future__ import annotations

import json
from pathlib import Path

from fuzz.errors import AssayError

KNOWN_FILE = "known-issues.json"


def load_known(root, path=None) -> dict[str, str]:
    """signature -> "url (note)" from ``path`` (must exist) or ``root/known-issues.json`` (if any)."""
    file = Path(path) if path else Path(root) / KNOWN_FILE
    if not file.exists():
        if path:
            raise AssayError(f"known-issues file {file} does not exist")
        return {}
    try:
        data = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise AssayError(f"{file}: not a known-issues file ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(data, dict):
        raise AssayError(f"{file}: not a known-issues file (a JSON object of signature -> upstream link expected)")
    out = {}
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(value.get("url"), str):
            note = value.get("note")
            out[str(key)] = value["url"] + (f" ({note})" if isinstance(note, str) and note else "")
        elif isinstance(value, str) and value:
            out[str(key)] = value
        else:
            raise AssayError(f"{file}: the entry for {key!r} is neither a link nor {{\"url\": ...}}")
    return out


def known_for(known: dict[str, str], keys) -> str:
    """The first link ``known`` gives for any of ``keys`` ('' when none)."""
    for k in keys:
        if k and k in known:
            return known[k]
    return ""
