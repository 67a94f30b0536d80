"""One row per distinct failure (signature): what ``assay triage list`` prints.

Cases with the same signature are one bug: the row carries how many times it was hit,
when it was first and last seen, the ops involved (from the smallest case, a reduced one
when there is one), whether it still reproduces (the latest recheck), and its case ids.
Reduced cases (``<id>-reduced``) are not hits of their own; they are the row's repro.

Grouping key: a case's own signature, or, once the case has been reduced, the reduced
case's key (``group_key``): its exact signature for a crash, else its failure class plus
the ATen operators the reduced graph dispatches to. Signatures of value mismatches name
the operators of the whole graph, so two random graphs that hit the same wrong lowering
start as two signatures; reduced to the operators that matter, they become one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from fuzz.campaign.case import Case
from fuzz.campaign.verdict import Kind
from fuzz.triage.cases import check_dir, iter_cases

SORT_KEYS = ("count", "first", "last", "kind")


@dataclass
class Row:
    signature: str
    kind: str
    backend: str
    mode: str
    count: int
    case_ids: list[str]
    ops: list[str]
    first_seen: str | None
    last_seen: str | None
    reproduces: bool | None
    status: str                       # "open" | "fixed" | "changed" | "flaky" | "excused" | "unchecked" | "corrupt"
    reduced_case: str | None = None
    signatures: list[str] = field(default_factory=list)   # the campaign's signatures merged here
    ops_after: int | None = None
    new: bool = False
    error: str = ""
    backends: list[str] = field(default_factory=list)
    corrupt: dict = field(default_factory=dict)   # case id -> why its files cannot be trusted
    known: str = ""                               # the upstream issue, from the known-issues file

    def to_json(self) -> dict:
        return asdict(self)


def norm_time(ts) -> str | None:
    """Any timestamp (unix seconds, ISO with Z or offset) as ``YYYY-MM-DDTHH:MM:SS`` UTC (sortable)."""
    from datetime import datetime, timezone

    if ts is None or ts == "":
        return None
    try:
        if isinstance(ts, (int, float)):
            dt = datetime.fromtimestamp(float(ts), tz=timezone.utc)
        else:
            dt = datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=timezone.utc)
        return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    except (ValueError, OverflowError, OSError):
        return str(ts)


def _when(case: Case) -> str | None:
    return norm_time(case.created)


def _status(case: Case) -> tuple[bool | None, str]:
    rec = (case.triage or {}).get("recheck") or {}
    if rec:
        return rec.get("reproduces"), rec.get("status", "open")
    rep = case.reproduces
    # the campaign's own re-check (repro.py in a fresh process) not reproducing means flaky, not
    # fixed; showing another failure (its note starts with "different") means changed
    if rep is False and str(case.recheck or "").startswith("different"):
        return False, "changed"
    return (rep if isinstance(rep, bool) else None), ("open" if rep else "unchecked" if rep is None else "flaky")


def error_line(case: Case) -> str:
    err = case.error or {}
    diff = case.diff
    if not err and isinstance(diff, dict):
        if "max_abs" in diff:
            return (f"{diff.get('where', '?')}: {diff.get('count', '?')}/{diff.get('numel', '?')} values off, "
                    f"max abs error {float(diff['max_abs']):.3g} (eager {diff.get('eager')}, compiled {diff.get('compiled')})")[:160]
        if "expected" in diff:
            return f"{diff.get('where', '?')}: {case.detail or 'differs'}: eager {diff.get('expected')}, compiled {diff.get('got')}"[:160]
    if isinstance(err, dict):
        text = f"{err.get('type') or ''}: {err.get('message') or ''}".strip(": ")
    else:
        text = str(err)
    return text.strip().splitlines()[0][:160] if text.strip() else ""


def group_key(reduced: Case) -> str:
    """The row a reduced case (and so its original) belongs to.

    A crash keeps its exact signature. For the other kinds the campaign's signature names
    the operators as the graph spells them, so ``F.relu``, ``nn.ReLU`` and ``aten::relu``
    would be three bugs; the key instead hashes the failure class (signature text without
    the op set) with the ATen operators the reduced graph dispatches to (``aten.relu``).
    """
    import hashlib

    if reduced.kind == Kind.CRASH:
        return reduced.failure.id
    ops = (reduced.triage or {}).get("aten_ops")
    if ops is None:
        try:
            from fuzz.gen.interpret import aten_ops

            ops = aten_ops(reduced.program_graph())
        except Exception:
            return reduced.failure.id
    cls = "|".join(reduced.failure.reduction_class)
    digest = hashlib.sha1(f"{cls}|{','.join(sorted(ops))}".encode()).hexdigest()[:12]
    return f"{reduced.kind}-{reduced.backend}-{digest}"


def index_counts(root) -> dict:
    """signature -> {count, first_seen, last_seen} from the store's SQLite index (empty if none)."""
    import sqlite3

    from fuzz.campaign.store import CrashStore
    from fuzz.errors import AssayError

    if not (Path(root) / "index.sqlite").exists():
        return {}
    try:
        store = CrashStore(root, create=False)
        try:
            rows = store.signatures()
        finally:
            store.close()
    except (AssayError, sqlite3.Error):
        return {}
    return {r["signature"]: {"count": r["count"] or 0, "first_seen": norm_time(r["first_seen"]),
                             "last_seen": norm_time(r["last_seen"])} for r in rows}


def listing_rows(root, known_file=None) -> list[Row]:
    """``signature_rows`` of a campaign directory with the index's hit counts; rows first seen
    since the campaign was created are ``new``; rows the known-issues file names carry its link."""
    from fuzz.campaign.config import created_at
    from fuzz.triage.known import known_for, load_known

    check_dir(root)
    known = load_known(root, known_file)
    rows = signature_rows(root, counts=index_counts(root), since=created_at(root))
    for row in rows:
        row.known = known_for(known, [row.signature, *row.signatures])
    return rows


def signature_rows(root, *, counts: dict | None = None, since: str | None = None) -> list[Row]:
    """Group the cases under ``root`` by signature.

    ``counts`` (signature -> {count, first_seen, last_seen}) overrides what the case
    files say, e.g. from the store's index, which counts hits whose cases were not saved.
    ``since``: rows first seen at or after this ISO time are flagged ``new``.
    """
    cases = iter_cases(root)
    damage = {id(c): c.damage() for c in cases}
    originals = [c for c in cases if not c.reduced_from]
    reduced = {c.reduced_from: c for c in cases if c.reduced_from}
    groups: dict[str, list[Case]] = {}
    for c in originals:
        key = group_key(reduced[c.id]) if c.id in reduced else c.failure.id
        groups.setdefault(key, []).append(c)
    rows = []
    for sig, members in groups.items():
        members.sort(key=lambda c: (_when(c) or "", c.id))
        first, last = members[0], members[-1]
        red = next((reduced[c.id] for c in members if c.id in reduced), None)
        smallest = min(members, key=lambda c: (len(c.ops), c.id))
        whole = [c for c in members if not damage[id(c)]] or members
        latest_checked = max(whole, key=lambda c: str(((c.triage or {}).get("recheck") or {}).get("at", "")))
        reproduces, status = _status(latest_checked)
        if all(damage[id(c)] for c in members):  # nothing left to trust: never "reproduces"
            reproduces, status = None, "corrupt"
        row = Row(
            signature=sig,
            kind=first.kind.value,
            backend=first.backend,
            mode=first.mode,
            count=len(members),
            case_ids=[c.id for c in members],
            ops=sorted(set(red.ops if red else smallest.ops)),
            first_seen=_when(first),
            last_seen=_when(last),
            reproduces=reproduces,
            status=status,
            reduced_case=red.id if red else None,
            ops_after=len(red.ops) if red else None,
            error=error_line(first),
            backends=sorted({c.backend for c in members}),
            signatures=sorted({c.failure.id for c in members}),
            corrupt={c.id: damage[id(c)] for c in members if damage[id(c)]},
        )
        rows.append(row)
    # Hit counts from the index are per campaign signature. A campaign signature whose cases
    # fall into several rows (reduction split them) cannot be divided among them: each such
    # row counts only its saved cases of it; a signature wholly inside one row adds all its hits.
    owner: dict[str, set] = {}
    for row in rows:
        for s in row.signatures:
            owner.setdefault(s, set()).add(row.signature)
    for row in rows:
        extras = [(counts or {}).get(s) for s in row.signatures if len(owner[s]) == 1]
        extras = [e for e in extras if e]
        if extras:
            shared = sum(1 for c in groups[row.signature] if len(owner[c.failure.id]) > 1)
            row.count = max(row.count, shared + sum(int(e.get("count") or 0) for e in extras))
            row.first_seen = min(filter(None, [row.first_seen] + [norm_time(e.get("first_seen")) for e in extras]), default=None)
            row.last_seen = max(filter(None, [row.last_seen] + [norm_time(e.get("last_seen")) for e in extras]), default=None)
        if since and row.first_seen and row.first_seen >= norm_time(since):
            row.new = True
    return rows


def filter_rows(rows: list[Row], *, kind=None, backend=None, op=None) -> list[Row]:
    out = rows
    if kind:
        out = [r for r in out if r.kind == kind]
    if backend:
        out = [r for r in out if backend in r.backends or r.backend == backend]
    if op:
        needle = op.lower()
        out = [r for r in out if any(needle in o.lower() for o in r.ops)]
    return out


def sort_rows(rows: list[Row], key: str = "count") -> list[Row]:
    if key == "count":
        return sorted(rows, key=lambda r: (-r.count, r.first_seen or "", r.signature))
    if key == "first":
        return sorted(rows, key=lambda r: (r.first_seen or "", r.signature))
    if key == "last":
        return sorted(rows, key=lambda r: (r.last_seen or "", r.signature), reverse=True)
    if key == "kind":
        return sorted(rows, key=lambda r: (r.kind, -r.count, r.signature))
    raise ValueError(key)


# statuses a table shows in its "repro" column by name (the others as yes / FIXED / ?)
STATUS_SHOWN_AS_IS = ("changed", "flaky", "excused")


def render_table(rows: list[Row]) -> str:
    """A fixed-width table for a terminal."""
    if not rows:
        return "no saved cases"  # the command says where (``empty_message``)
    headers = ["#", "kind", "backend", "mode", "count", "first seen", "last seen", "repro", "ops", "cases"]
    lines = []
    for i, r in enumerate(rows, 1):
        repro = {True: "yes", False: "FIXED", None: "?"}[r.reproduces]
        if r.status in STATUS_SHOWN_AS_IS:
            repro = r.status
        elif r.status == "corrupt":
            repro = "CORRUPT"
        ops = ",".join(short_op(o) for o in r.ops[:4]) + (",..." if len(r.ops) > 4 else "")
        cases = r.case_ids[0] + (f" +{len(r.case_ids) - 1}" if len(r.case_ids) > 1 else "")
        if r.reduced_case:
            cases += f" (reduced: {r.ops_after} ops)"
        lines.append([f"{i}{'*' if r.new else ''}", r.kind, r.backend, r.mode or "-", str(r.count),
                      _day(r.first_seen), _day(r.last_seen), repro, ops, cases])
    widths = [max(len(h), *(len(l[i]) for l in lines)) for i, h in enumerate(headers)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    for i, (l, r) in enumerate(zip(lines, rows)):
        out.append("  ".join(c.ljust(w) for c, w in zip(l, widths)).rstrip())
        out.append(f"{'':{widths[0]}}  {r.signature[:110]}")
        if r.known:
            out.append(f"{'':{widths[0]}}  known: {r.known}")
        for cid, why in sorted(r.corrupt.items()):
            out.append(f"{'':{widths[0]}}  corrupt {cid}: {why}")
    n_cases = sum(r.count for r in rows)
    out.append(f"{len(rows)} distinct failures from {n_cases} hits" + ("  (* = new)" if any(r.new for r in rows) else ""))
    return "\n".join(out)


def short_op(op: str) -> str:
    """An operator's short name for tables: ``F.relu``, ``add.Tensor``, ``nn.ReLU``."""
    return op.split("::")[-1].replace("torch.nn.functional.", "F.").replace("torch.", "")


def _day(ts: str | None) -> str:
    if not ts:
        return "-"
    return ts.replace("T", " ")[:16]
