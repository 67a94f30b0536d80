"""The crash store: one directory per saved case plus an SQLite index.

Layout of a campaign directory (see docs/campaign.md for every field)::

    DIR/
      campaign.json        the campaign's settings (what --resume continues)
      index.sqlite         WAL-mode index: cases, signatures, and the test journal
      stats.json           live statistics (atomically replaced)
      plot_data.csv        time series, one row per interval (atomically replaced)
      logs/worker-N.log    worker stdout/stderr (faulthandler stacks of crashed workers)
      .staging/<id>/       cases being written or re-checked (never read by triage)
      <case-id>/
        case.json          kind, backend, mode, signature, error, diff, graph, versions, ...
        graph.json  program.py  inputs.safetensors  params.safetensors
        repro.py           standalone: exits 1 when the failure reproduces, 0 when not

A case directory is complete and on disk before it appears: files are written under
``.staging/<id>/`` and each is fsynced, then ``case.json`` (holding every other file's
sha256) via a temporary file, fsync and rename, then the staging directory is fsynced;
the directory is renamed into place and the campaign directory fsynced; only then is
the index row written, in a transaction SQLite makes durable (``synchronous=FULL``).
So after a kill -9 or a power loss a case is either absent (its test runs again, or
``--resume`` re-checks it from ``.staging``) or whole; a file damaged afterwards no
longer matches its digest and the case reads as corrupt (``Case.damage``). Index rows
are keyed by case id and test id, so replaying any step after a crash (``reconcile``)
neither loses nor duplicates. A corrupt or missing ``case.json`` is skipped with a
one-line warning.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
import time
from pathlib import Path
from typing import Iterator

from fuzz.campaign.case import Case, read_case
from fuzz.campaign.failure import FailureSignature
from fuzz.campaign.verdict import NOTHING_JUDGED, OUTCOME_KINDS, Kind, Verdict
from fuzz.errors import AssayError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS tests (
    id TEXT PRIMARY KEY, model INTEGER, backend TEXT, mode TEXT, kind TEXT, detail TEXT,
    signature TEXT, case_id TEXT, flaky INTEGER DEFAULT 0, elapsed_s REAL, t REAL);
CREATE TABLE IF NOT EXISTS cases (
    id TEXT PRIMARY KEY, kind TEXT, backend TEXT, mode TEXT, signature TEXT, reproduces INTEGER,
    flaky INTEGER DEFAULT 0, created TEXT, ops TEXT, path TEXT);
CREATE TABLE IF NOT EXISTS signatures (
    signature TEXT PRIMARY KEY, kind TEXT, backend TEXT, text TEXT, count INTEGER DEFAULT 0,
    first_seen REAL, last_seen REAL, example TEXT);
CREATE TABLE IF NOT EXISTS codegen (
    test TEXT PRIMARY KEY, backend TEXT, vectorised INTEGER, parallel INTEGER);
CREATE INDEX IF NOT EXISTS tests_model ON tests(model);
CREATE INDEX IF NOT EXISTS cases_sig ON cases(signature);
"""


def warn(message: str) -> None:
    sys.stderr.write(f"assay: warning: {message}\n")


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (files created, renamed or removed in it) durable."""
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def durable_write(path: Path, data: bytes | str) -> None:
    """Write a file and fsync it (its directory entry is the caller's: see ``fsync_dir``)."""
    with open(path, "wb") as fh:
        fh.write(data.encode() if isinstance(data, str) else data)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write(path: Path, data: bytes | str) -> None:
    """Replace ``path`` with ``data`` all at once, durably (file and directory fsynced)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    durable_write(tmp, data)
    os.replace(tmp, path)
    fsync_dir(path.parent)


class CrashStore:
    def __init__(self, root, create: bool = True):
        self.root = Path(root)
        if create:
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / ".staging").mkdir(exist_ok=True)
        elif not self.root.is_dir():
            raise AssayError(f"{self.root} is not a campaign directory")
        self.db_path = self.root / "index.sqlite"
        try:
            self.db = sqlite3.connect(str(self.db_path), timeout=30, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")  # a committed case row survives a power loss
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise AssayError(f"{self.db_path}: cannot open the index ({exc}); move it away and run 'assay fuzz --resume' to rebuild it") from None

    def close(self) -> None:
        self.db.close()

    # -- settings ---------------------------------------------------------------
    def set_meta(self, key: str, value) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str, default=None):
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    # -- journal ----------------------------------------------------------------
    def record_test(self, test_id: str, model: int, verdict: Verdict, signature: FailureSignature | None = None,
                    case_id: str | None = None) -> bool:
        """Journal one finished test (idempotent: a test id is recorded once). True if new."""
        now = time.time()
        kind = str(verdict.kind)
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            cur = self.db.execute(
                "INSERT OR IGNORE INTO tests (id, model, backend, mode, kind, detail, signature, case_id, elapsed_s, t) "
                "VALUES (?,?,?,?,?,?,?,?,?,?)",
                (test_id, model, verdict.backend, verdict.mode, kind, (verdict.detail or "")[:500],
                 signature.id if signature else None, case_id, verdict.elapsed_s, now))
            new = cur.rowcount == 1
            if new and verdict.codegen:
                self.db.execute("INSERT OR IGNORE INTO codegen (test, backend, vectorised, parallel) VALUES (?,?,?,?)",
                                (test_id, verdict.backend, int(bool(verdict.codegen.get("vectorised"))),
                                 int(bool(verdict.codegen.get("parallel")))))
            if new and signature:
                self.db.execute(
                    "INSERT INTO signatures (signature, kind, backend, text, count, first_seen, last_seen, example) "
                    "VALUES (?,?,?,?,1,?,?,?) ON CONFLICT(signature) DO UPDATE SET count=count+1, last_seen=excluded.last_seen, "
                    "example=COALESCE(signatures.example, excluded.example)",
                    (signature.id, kind, verdict.backend, signature.text, now, now, case_id))
        return new

    def done_tests(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT id FROM tests")}

    def max_model(self) -> int:
        row = self.db.execute("SELECT MAX(model) FROM tests").fetchone()
        return -1 if row[0] is None else int(row[0])

    def saved_for_signature(self, signature: str) -> int:
        return self.db.execute("SELECT COUNT(*) FROM tests WHERE signature=? AND case_id IS NOT NULL",
                               (signature,)).fetchone()[0]

    def outcome_counts(self) -> dict:
        counts = {k.value: 0 for k in OUTCOME_KINDS}
        other: dict = {}
        for kind, flaky, n in self.db.execute("SELECT kind, flaky, COUNT(*) FROM tests GROUP BY kind, flaky"):
            if flaky:
                other["flaky"] = other.get("flaky", 0) + n
            elif kind in counts:
                counts[kind] += n
            else:
                other[kind] = other.get(kind, 0) + n
        return {"outcomes": counts, "other": other}

    def passes_unjudged(self) -> int:
        """Passing tests where the oracle judged no value at all (``oracle.NOTHING_JUDGED``)."""
        return self.db.execute("SELECT COUNT(*) FROM tests WHERE kind=? AND flaky=0 AND detail=?",
                               (Kind.PASS.value, NOTHING_JUDGED)).fetchone()[0]

    def per_backend(self) -> dict:
        out: dict = {}
        for backend, kind, n in self.db.execute("SELECT backend, kind, COUNT(*) FROM tests WHERE flaky=0 GROUP BY backend, kind"):
            out.setdefault(backend, {})[kind] = n
        return out

    def codegen_shares(self) -> dict:
        """Of the tests whose compiled code was read (inductor tests that compiled: ``Verdict.codegen``),
        how many had a vectorised loop and an OpenMP parallel region, and their shares."""
        n, vec, par = self.db.execute("SELECT COUNT(*), SUM(vectorised), SUM(parallel) FROM codegen").fetchone()
        vec, par = vec or 0, par or 0
        return {"tests": n, "vectorised": vec, "parallel": par,
                "vectorised_share": round(vec / n, 4) if n else None, "parallel_share": round(par / n, 4) if n else None}

    def per_mode(self) -> dict:
        """mode -> kind -> count of the journaled (non-flaky) tests."""
        out: dict = {}
        for mode, kind, n in self.db.execute("SELECT mode, kind, COUNT(*) FROM tests WHERE flaky=0 GROUP BY mode, kind"):
            out.setdefault(mode or "fwd", {})[kind] = n
        return out

    def unique_signatures(self) -> int:
        """Signatures with at least one failure not known to be flaky."""
        return self.db.execute("SELECT COUNT(DISTINCT signature) FROM tests WHERE signature IS NOT NULL AND flaky=0").fetchone()[0]

    def test_count(self) -> int:
        """Tests that ran (generation failures are journaled but are not tests)."""
        return self.db.execute("SELECT COUNT(*) FROM tests WHERE kind != ?", (Kind.GENFAIL.value,)).fetchone()[0]

    # -- cases ------------------------------------------------------------------
    def staging_dir(self, case_id: str) -> Path:
        return self.root / ".staging" / case_id

    def stage_case(self, case: Case, files: dict[str, bytes | str], repro: str | None = None) -> Path:
        """Write a case under ``.staging/<id>/``: every file fsynced, then ``case.json`` with their
        sha256 digests (set on ``case``), then the directory fsynced. Overwrites an earlier partial try."""
        import hashlib

        d = self.staging_dir(case.id)
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        fsync_dir(d.parent)
        files = dict(files)
        if repro is not None:
            files["repro.py"] = repro
        digests = {}
        for name, data in files.items():
            data = data.encode() if isinstance(data, str) else data
            durable_write(d / name, data)
            digests[name] = hashlib.sha256(data).hexdigest()
        case.digests = digests
        atomic_write(d / "case.json", case.dumps())
        return d

    def staged(self) -> list[Path]:
        """Complete staged cases (with case.json); incomplete ones are removed."""
        out = []
        base = self.root / ".staging"
        if not base.is_dir():
            return out
        for d in sorted(base.iterdir()):
            if (d / "case.json").is_file():
                out.append(d)
            else:
                shutil.rmtree(d, ignore_errors=True)
        return out

    def finalize(self, case_id: str, reproduces: bool | None, note: str = "") -> Path:
        """Move a staged case into place with its re-check result and index it."""
        src, dst = self.staging_dir(case_id), self.root / case_id
        if src.exists():
            case = read_case(src)
            case.reproduces = reproduces
            case.flaky = reproduces is False
            if note:
                case.recheck = note
            atomic_write(src / "case.json", case.dumps())
            for stray in src.glob(".*.tmp*"):  # an earlier try's temporary file, cut short by a kill
                stray.unlink()
            if dst.exists():
                shutil.rmtree(dst)
            os.replace(src, dst)
            fsync_dir(self.root)   # the case's directory entry, before the index row names it
            fsync_dir(src.parent)  # and its absence from .staging
        case = read_case(dst)
        self.index_case(case, dst)
        return dst

    def index_case(self, case: Case, path: Path) -> None:
        rep = case.reproduces
        flaky = 1 if case.flaky else 0
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT OR REPLACE INTO cases VALUES (?,?,?,?,?,?,?,?,?,?)", (
                case.id, case.kind.value, case.backend or None, case.mode or None, case.signature,
                None if rep is None else int(bool(rep)), flaky, case.created,
                ",".join(sorted(set(case.ops))), str(path.name)))
            if case.test_id:
                self.db.execute("UPDATE tests SET flaky=? WHERE id=?", (flaky, case.test_id))

    def iter_cases(self) -> Iterator[tuple[Path, Case]]:
        """Every readable case directory (corrupt ones: one warning line each, skipped)."""
        for d in sorted(self.root.iterdir()):
            if not d.is_dir() or d.name.startswith(".") or d.name == "logs":
                continue
            try:
                yield d, read_case(d)
            except AssayError as exc:
                warn(f"skipping {d.name}: {exc}")

    def reconcile(self) -> dict:
        """Make the index agree with the case directories (after a crash or manual edits)."""
        on_disk = {}
        for d, case in self.iter_cases():
            on_disk[case.id] = (d, case)
        indexed = {r[0] for r in self.db.execute("SELECT id FROM cases")}
        added = removed = 0
        for cid, (d, case) in on_disk.items():
            if cid not in indexed:
                self.index_case(case, d)
                added += 1
        for cid in indexed - set(on_disk):
            self.db.execute("DELETE FROM cases WHERE id=?", (cid,))
            removed += 1
        return {"added": added, "removed": removed}

    def cases(self) -> list[dict]:
        cols = ["id", "kind", "backend", "mode", "signature", "reproduces", "flaky", "created", "ops", "path"]
        return [dict(zip(cols, r)) for r in self.db.execute(f"SELECT {', '.join(cols)} FROM cases ORDER BY created")]

    def signatures(self) -> list[dict]:
        cols = ["signature", "kind", "backend", "text", "count", "first_seen", "last_seen", "example"]
        return [dict(zip(cols, r)) for r in self.db.execute(f"SELECT {', '.join(cols)} FROM signatures ORDER BY count DESC")]
