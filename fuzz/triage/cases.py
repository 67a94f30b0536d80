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


def campaign_kind(root) -> str:
    """``campaign`` (an index or settings file, or case folders), else a one-line AssayError
    saying what the folder is instead."""
    root = check_dir(root)
    if (root / "index.sqlite").exists() or (root / "campaign.json").exists() or case_ids(root):
        return "campaign"
    try:
        entries = sorted(p.name for p in root.iterdir())
    except OSError as exc:
        raise AssayError(f"cannot read {root}: {exc.strerror or exc}") from None
    what = "an empty folder" if not entries else f"{len(entries)} entries, e.g. {', '.join(entries[:3])}"
    raise AssayError(f"not a campaign folder: {root} ({what}; no index.sqlite or campaign.json); "
                     "pass --dir DIR where 'assay fuzz --out DIR' saved cases")


def case_ids(root) -> list[str]:
    """Ids of every case directory under ``root`` (those holding a case.json), sorted."""
    root = check_dir(root)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / CASE_FILE).exists())


def load_case(root, case_id: str) -> Case:
    """The case ``case_id`` under ``root``: an exact id always wins (``ID`` even when
    ``ID-reduced`` exists; a damaged ``ID`` is reported as such); else the one case whose id
    starts with it."""
    root = check_dir(root)
    path = root / case_id
    if case_id and path.is_dir() and path.parent == root:
        return read_case(path)
    if not (path / CASE_FILE).exists():
        matches = [c for c in case_ids(root) if c.startswith(case_id)] if case_id else []
        if len(matches) == 1:
            path = root / matches[0]
        elif len(matches) > 1:
            raise AssayError(f"case id {case_id!r} is ambiguous in {root}: {', '.join(matches[:5])}{' ...' if len(matches) > 5 else ''}")
        else:
            raise AssayError(f"no case {case_id!r} in {root}; 'assay triage list --dir {root}' shows the saved cases")
    return read_case(path)


def iter_cases(root, *, skip_corrupt: bool = True) -> list[Case]:
    """Every case under ``root`` whose case.json reads (its other files may still be damaged:
    ``Case.damage``); unreadable ones are skipped with a warning line (or raise with
    ``skip_corrupt=False``)."""
    out = []
    for cid in case_ids(root):
        try:
            out.append(load_case(root, cid))
        except AssayError as exc:
            if not skip_corrupt:
                raise
            sys.stderr.write(f"assay: warning: skipping {cid}: {exc}\n")
    return out
