"""Finding saved cases for triage, with one-line errors for missing or corrupt ones.

A case is a directory ``DIR/<case-id>/`` written by the crash store (``fuzz.campaign.store``):
``case.json`` (read into ``fuzz.campaign.case.Case``), ``inputs.safetensors`` /
``params.safetensors`` (keys as ``fuzz.gen.program.save_program`` writes them), ``program.py``
and ``repro.py``.

Triage reads ``case.json`` files directly (they are the source of truth; the SQLite index
is only a cache of them) and never loads anything with pickle.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fuzz.campaign.case import CASE_FILE, Case, read_case
from fuzz.errors import AssayError

DEFAULT_DIR = "crashes"


def check_dir(root) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise AssayError(f"crashes directory {root} does not exist; pass --dir DIR (where 'assay fuzz --out DIR' saved cases)")
    return root


def case_ids(root) -> list[str]:
    """Ids of every case directory under ``root`` (those holding a case.json), sorted."""
    root = check_dir(root)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / CASE_FILE).exists())


def load_case(root, case_id: str) -> Case:
    """The case ``case_id`` (or the one case whose id starts with it) under ``root``."""
    root = check_dir(root)
    path = root / case_id
    if not (path / CASE_FILE).exists():
        matches = [c for c in case_ids(root) if c.startswith(case_id)] if case_id else []
        if len(matches) == 1:
            path = root / matches[0]
        elif len(matches) > 1:
            raise AssayError(f"case id {case_id!r} is ambiguous in {root}: {', '.join(matches[:5])}{' ...' if len(matches) > 5 else ''}")
        elif path.is_dir():
            raise AssayError(f"{path} has no case.json; it is not a saved case (corrupt or still being written)")
        else:
            raise AssayError(f"no case {case_id!r} in {root}; 'assay triage list --dir {root}' shows the saved cases")
    return read_case(path)


def iter_cases(root, *, skip_corrupt: bool = True) -> list[Case]:
    """Every readable case under ``root``; corrupt ones are skipped (or raise with ``skip_corrupt=False``)."""
    out = []
    for cid in case_ids(root):
        try:
            out.append(load_case(root, cid))
        except AssayError as exc:
            if not skip_corrupt:
                raise
            sys.stderr.write(f"assay: warning: skipping {cid}: {exc}\n")
    return out
