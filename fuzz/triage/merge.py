"""``assay triage merge DIR... --out DIR``: several campaign folders into one crash store.

For campaigns run apart (``assay fuzz --shard I/N`` on a batch system, or one campaign
continued on several machines): the inputs must be parts of one campaign (the same backends,
modes, seed, nodes, device, programs and model policy; ``--shard`` may differ), so a test id
means the same test in each.

- The journal is the union of the inputs' ``tests`` rows. A test id in two inputs counts
  once; with two different outcomes (kind or signature) the inputs conflict.
- Signatures are deduplicated by id; a signature's hit count is the number of failing tests
  with it in the merged journal, i.e. the inputs' counts summed (a test in two inputs once);
  first/last seen are the earliest and latest.
- Every case directory (and every complete staged case, re-checked by a later ``assay fuzz
  --resume``) is copied; each file is checked against the sha256 digests in its
  ``case.json`` before and after the copy. Nothing is dropped, not even past ``--keep``.
  A case id in two inputs must have the same digests.
- ``campaign.json`` keeps the shared settings without the shard (``--resume`` of the
  merged folder runs whatever tests no input ran) and lists the inputs in ``merged_from``;
  the budget and ``elapsed_s`` are the inputs' run times summed; ``stats.json`` is
  recomputed from the merged journal.

Everything is read and checked before anything is written, and the store is built in a
temporary folder renamed to ``--out`` at the end: a bad input (not a campaign, a corrupt
index or case, a conflict) is a one-line ``AssayError`` and leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from fuzz.campaign.case import CASE_FILE, Case, read_case
from fuzz.campaign.config import Config, now_iso
from fuzz.campaign.progress import Progress
from fuzz.campaign.store import CrashStore, atomic_write, fsync_dir
from fuzz.errors import AssayError

TEST_COLUMNS = ("id", "model", "backend", "mode", "kind", "detail", "signature", "case_id", "flaky", "elapsed_s", "t")
SIGNATURE_COLUMNS = ("signature", "kind", "backend", "text", "count", "first_seen", "last_seen", "example")
# settings that must agree (what a test id means); the shard is what differs between parts
SHARED_SETTINGS = tuple(k for k in Config.SETTINGS if k != "shard")


@dataclass
class Part:
    """One input folder, read and checked."""
    root: Path
    settings: dict
    tests: dict = field(default_factory=dict)        # id -> row dict
    signatures: dict = field(default_factory=dict)   # id -> row dict
    meta: dict = field(default_factory=dict)
    cases: list = field(default_factory=list)        # Case (path set), verified
    staged: list = field(default_factory=list)       # Case under .staging, verified


def read_part(root) -> Part:
    root = Path(root)
    if not root.is_dir():
        raise AssayError(f"{root}: no such campaign folder")
    settings_file, index = root / "campaign.json", root / "index.sqlite"
    if not settings_file.is_file() or not index.is_file():
        raise AssayError(f"{root}: not a campaign folder (needs campaign.json and index.sqlite, as 'assay fuzz "
                         "--out' writes)")
    try:
        settings = json.loads(settings_file.read_text())
        if not isinstance(settings, dict):
            raise ValueError("not a JSON object")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise AssayError(f"{settings_file}: corrupt campaign settings ({str(exc).splitlines()[0]})") from None
    part = Part(root, settings)
    try:
        db = sqlite3.connect(f"file:{index}?mode=ro", uri=True, timeout=30)
        try:
            check = db.execute("PRAGMA quick_check").fetchone()
            if not check or check[0] != "ok":
                raise sqlite3.DatabaseError(str(check[0] if check else "no answer"))
            for row in db.execute(f"SELECT {', '.join(TEST_COLUMNS)} FROM tests"):
                part.tests[row[0]] = dict(zip(TEST_COLUMNS, row))
            for row in db.execute(f"SELECT {', '.join(SIGNATURE_COLUMNS)} FROM signatures"):
                part.signatures[row[0]] = dict(zip(SIGNATURE_COLUMNS, row))
            part.meta = {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM meta")}
        finally:
            db.close()
    except (sqlite3.Error, ValueError) as exc:
        raise AssayError(f"{index}: corrupt index ({str(exc).splitlines()[0]}); its campaign cannot be merged") from None
    part.cases = _verified(d for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")
                           and (d / CASE_FILE).exists())
    staging = root / ".staging"
    if staging.is_dir():  # incomplete staged cases (no case.json) are dropped by the campaign too
        part.staged = _verified(d for d in sorted(staging.iterdir()) if (d / CASE_FILE).is_file())
    return part


def _verified(dirs) -> list[Case]:
    out = []
    for d in dirs:
        case = read_case(d)  # a corrupt case.json: a one-line AssayError
        damage = case.damage()
        if damage:
            raise AssayError(f"{d.parent}: {damage}; repair or remove it before merging")
        out.append(case)
    return out


# ---------------------------------------------------------------------------
# combining


def _check_settings(parts: list[Part]) -> None:
    first = parts[0]
    for p in parts[1:]:
        for key in SHARED_SETTINGS:
            if first.settings.get(key) != p.settings.get(key):
                raise AssayError(f"{first.root} and {p.root} are not parts of one campaign: {key} is "
                                 f"{first.settings.get(key)!r} in one and {p.settings.get(key)!r} in the other")


def merged_tests(parts: list[Part]) -> tuple[dict, int]:
    """The union of the journals (id -> row) and how many rows were in more than one input."""
    tests: dict = {}
    duplicates = 0
    for p in parts:
        for tid, row in p.tests.items():
            have = tests.get(tid)
            if have is None:
                tests[tid] = dict(row, _from=p.root)
                continue
            duplicates += 1
            if (have["kind"], have["signature"]) != (row["kind"], row["signature"]):
                raise AssayError(f"test {tid} conflicts: {have['kind']} ({have['signature'] or 'no signature'}) in "
                                 f"{have['_from']}, {row['kind']} ({row['signature'] or 'no signature'}) in {p.root}")
            have["case_id"] = have["case_id"] or row["case_id"]
            have["flaky"] = max(have["flaky"] or 0, row["flaky"] or 0)
    return tests, duplicates


def merged_signatures(parts: list[Part], tests: dict) -> dict:
    out: dict = {}
    for p in parts:
        for sid, row in p.signatures.items():
            have = out.setdefault(sid, dict(row))
            have["first_seen"] = min((x for x in (have["first_seen"], row["first_seen"]) if x is not None), default=None)
            have["last_seen"] = max((x for x in (have["last_seen"], row["last_seen"]) if x is not None), default=None)
            have["example"] = have["example"] or row["example"]
    for sid in out:
        out[sid]["count"] = 0
    for row in tests.values():
        sid = row["signature"]
        if sid is not None:
            out.setdefault(sid, {"signature": sid, "kind": row["kind"], "backend": row["backend"], "text": "",
                                 "first_seen": row["t"], "last_seen": row["t"], "example": row["case_id"]})
            out[sid]["count"] = out[sid].get("count", 0) + 1
    return out


def merged_cases(groups: list[list[Case]]) -> dict:
    """case id -> Case, one per id; the same id with other digests is a conflict."""
    out: dict = {}
    for cases in groups:
        for case in cases:
            have = out.get(case.id)
            if have is None:
                out[case.id] = case
            elif (have.digests or {}) != (case.digests or {}):
                raise AssayError(f"case {case.id} conflicts: {have.path} and {case.path} hold different files")
    return out


# ---------------------------------------------------------------------------
# writing


def merge(inputs, out) -> dict:
    """Merge the campaign folders ``inputs`` into a new store ``out``; what it did, as a dict."""
    out = Path(out)
    if not inputs:
        raise AssayError("give at least one campaign folder to merge")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise AssayError(f"--out {out} already exists and is not empty; give a new folder")
    roots = [Path(i) for i in inputs]
    if len({r.resolve() for r in roots}) != len(roots):
        raise AssayError("a campaign folder is given twice")
    parts = [read_part(r) for r in roots]
    _check_settings(parts)
    tests, duplicates = merged_tests(parts)
    signatures = merged_signatures(parts, tests)
    cases = merged_cases([p.cases for p in parts])
    staged = {cid: c for cid, c in merged_cases([p.staged for p in parts]).items() if cid not in cases}

    tmp = out.parent / f".{out.name}.merging-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        tmp.parent.mkdir(parents=True, exist_ok=True)
        _write(tmp, parts, tests, signatures, cases, staged)
        if out.exists():
            out.rmdir()  # empty, checked above
        os.replace(tmp, out)
        fsync_dir(out.parent)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise AssayError(f"cannot write --out {out}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"out": str(out), "inputs": [str(r) for r in roots], "tests": len(tests), "duplicate_tests": duplicates,
            "signatures": sum(1 for s in signatures.values() if s["count"]), "cases": len(cases),
            "staged": len(staged)}


def _copy_case(case: Case, dst: Path) -> None:
    shutil.copytree(case.path, dst)
    copied = read_case(dst)
    damage = copied.damage()
    if damage or copied.digests != case.digests:
        raise AssayError(f"copying {case.path} to {dst} did not keep its files ({damage or 'digests differ'})")


def _write(tmp: Path, parts, tests, signatures, cases, staged) -> None:
    store = CrashStore(tmp)
    try:
        with store.db:
            store.db.execute("BEGIN IMMEDIATE")
            store.db.executemany(f"INSERT INTO tests ({', '.join(TEST_COLUMNS)}) VALUES ({', '.join('?' * len(TEST_COLUMNS))})",
                                 [tuple(row[c] for c in TEST_COLUMNS) for row in tests.values()])
            store.db.executemany(
                f"INSERT INTO signatures ({', '.join(SIGNATURE_COLUMNS)}) VALUES ({', '.join('?' * len(SIGNATURE_COLUMNS))})",
                [tuple(row.get(c) for c in SIGNATURE_COLUMNS) for row in signatures.values() if row["count"]])
        for cid, case in cases.items():
            _copy_case(case, tmp / cid)
            store.index_case(read_case(tmp / cid), tmp / cid)
        for cid, case in staged.items():
            _copy_case(case, store.staging_dir(cid))
        ops = sorted({op for p in parts for op in (p.meta.get("ops") or [])})
        elapsed = round(sum(float(p.meta.get("elapsed_s") or 0) for p in parts), 1)
        shared_models = _models_in_several(parts)
        models = sum(int(p.meta.get("models") or 0) for p in parts) - shared_models
        store.set_meta("ops", ops)
        store.set_meta("elapsed_s", elapsed)
        store.set_meta("models", models)
        settings = dict(parts[0].settings)
        settings.pop("shard", None)
        settings.update(time_s=elapsed, keep_per_signature=max(int(p.settings.get("keep_per_signature") or 3)
                                                                for p in parts),
                        created=now_iso(), merged_from=[str(p.root.resolve()) for p in parts])
        atomic_write(tmp / "campaign.json", json.dumps(settings, indent=1) + "\n")
        cfg = Config(out=str(tmp), workers=0)
        for key in SHARED_SETTINGS:
            if key in settings:
                setattr(cfg, key, settings[key])
        stats = Progress(cfg, store, open(os.devnull, "w")).stats(
            {"models": models, "ops_covered": len(ops), "rechecks_pending": len(staged), "worker_restarts": 0})
        stats["merged_from"] = settings["merged_from"]
        atomic_write(tmp / "stats.json", json.dumps(stats, indent=1) + "\n")
    finally:
        store.close()


def _models_in_several(parts) -> int:
    """Models whose tests are in more than one input (counted once in the merged total)."""
    seen: dict = {}
    for p in parts:
        for m in {row["model"] for row in p.tests.values()}:
            seen[m] = seen.get(m, 0) + 1
    return sum(n - 1 for n in seen.values() if n > 1)
