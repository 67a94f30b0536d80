"""The campaign report: one self-contained HTML file (plots as base64 PNGs) or Markdown.

Sections: summary numbers; tests over time; unique failures over time; outcomes per
backend; operator coverage; the bug list (one row per signature) with each bug's
reduced repro when there is one.

Inputs, all optional except the cases: the campaign's ``stats.json`` (totals, outcomes
per backend, operator counts) and ``plot_data.csv`` (a time series), both written by
``assay fuzz`` into the crashes directory. Whatever is missing is derived from the
case files (failures only) and the section says so.
"""

from __future__ import annotations

import base64
import csv
import html
import json
from collections import Counter
from datetime import datetime
from pathlib import Path

from fuzz.campaign.verdict import FAILURE_KINDS
from fuzz.triage.cases import iter_cases
from fuzz.triage.listing import STATUS_SHOWN_AS_IS, Row, listing_rows, short_op, sort_rows
from fuzz.triage.plots import plot_backends, plot_features, plot_ops, plot_tests, plot_unique

FAILURES = tuple(k.value for k in FAILURE_KINDS)


# ---------------------------------------------------------------------------
# inputs


def read_stats(root: Path) -> dict:
    p = root / "stats.json"
    if not p.exists():
        return {}
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def read_plot_data(root: Path) -> list[dict]:
    p = root / "plot_data.csv"
    if not p.exists():
        return []
    rows = []
    try:
        with p.open(newline="") as fh:
            for row in csv.DictReader(fh):
                clean = {}
                for k, v in row.items():
                    if k is None:
                        continue
                    k = k.strip().lstrip("#").strip()
                    try:
                        clean[k] = float(v)
                    except (TypeError, ValueError):
                        clean[k] = v
                rows.append(clean)
    except (OSError, csv.Error):
        return []
    return rows


def _series(rows: list[dict]) -> dict:
    """{'t': [...seconds], 'tests': [...], 'unique': [...], 'by_kind': {kind: [...]}, 'ops_covered': [...]}
    from the rows of ``plot_data.csv``, read by the columns the campaign writes
    (``fuzz.campaign.progress.PLOT_COLUMNS``); a file without them gives no series."""
    if not rows or not all(isinstance(r.get("elapsed_s"), float) for r in rows):
        return {}
    out = {"t": [r["elapsed_s"] for r in rows]}
    for key, column in (("tests", "tests"), ("unique", "unique_signatures"), ("ops_covered", "ops_covered")):
        if all(isinstance(r.get(column), float) for r in rows):
            out[key] = [r[column] for r in rows]
    kinds = {k: [r[k] for r in rows] for k in FAILURES
             if all(isinstance(r.get(k), float) for r in rows) and any(r[k] for r in rows)}
    if kinds:
        out["by_kind"] = kinds
    for key in ("features", "seeds", "coverage_lines"):  # guided campaigns (rows before feedback have none)
        pts = [(r["elapsed_s"], r[key]) for r in rows if isinstance(r.get(key), float)]
        if pts:
            out[key] = pts
    return out


def backend_outcomes(stats: dict, cases) -> tuple[dict, str]:
    """{backend: {outcome: count}} and where it came from (``stats.json``'s ``per_backend``, the
    store's per-backend counts; else the saved cases, failures only)."""
    per = stats.get("per_backend")
    if isinstance(per, dict) and per:
        out = {b: {k: int(n) for k, n in v.items() if isinstance(n, (int, float)) and not isinstance(n, bool)}
               for b, v in per.items() if isinstance(v, dict)}
        if out:
            return out, "stats.json"
    out: dict = {}
    for c in cases:
        if c.reduced_from:
            continue
        out.setdefault(c.backend, Counter())[c.kind.value] += 1
    return {b: dict(v) for b, v in out.items()}, "saved cases (failures only; no stats.json)"


def covered_ops(root: Path) -> list[str]:
    """The operators the campaign has tested (the store keeps the set in its index)."""
    if not (root / "index.sqlite").exists():
        return []
    try:
        from fuzz.campaign.store import CrashStore

        store = CrashStore(root, create=False)
        try:
            return list(store.get_meta("ops", []) or [])
        finally:
            store.close()
    except Exception:
        return []


def op_coverage(cases) -> dict:
    """{op: saved cases whose graph calls it} over the original (not reduced) cases."""
    fails = Counter()
    for c in cases:
        if not c.reduced_from:
            for op in set(c.ops):
                fails[op] += 1
    return dict(fails)


# ---------------------------------------------------------------------------
# report


def _summary(stats: dict, rows: list[Row], cases) -> list[tuple[str, str]]:
    items = []
    if isinstance(stats.get("elapsed_s"), (int, float)):
        v = stats["elapsed_s"]
        items.append(("campaign time", f"{v / 3600:.2f} h" if v > 3600 else f"{v / 60:.1f} min"))
    for key, label in (("tests", "tests run"), ("tests_per_min", "tests / min"), ("models", "models"),
                       ("ops_covered", "operators covered"), ("unique_signatures", "campaign signatures")):
        v = stats.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            items.append((label, f"{v:.1f}" if isinstance(v, float) and not v.is_integer() else str(int(v))))
    outcomes = stats.get("outcomes")
    if isinstance(outcomes, dict):
        fails = sum(int(n) for k, n in outcomes.items() if k in FAILURES and isinstance(n, (int, float)))
        items.append(("failing tests", str(fails)))
    items.append(("distinct failures", str(len(rows))))
    items.append(("new this run", str(sum(1 for r in rows if r.new))))
    items.append(("saved cases", str(sum(1 for c in cases if not c.reduced_from))))
    items.append(("still reproducing", str(sum(1 for r in rows if r.reproduces))))
    items.append(("fixed", str(sum(1 for r in rows if r.status == "fixed"))))
    for status in ("flaky", "excused"):
        if any(r.status == status for r in rows):
            items.append((status, str(sum(1 for r in rows if r.status == status))))
    items.append(("reduced", str(sum(1 for r in rows if r.reduced_case))))
    versions = next((c.versions for c in cases if c.versions), None) or stats.get("versions")
    if isinstance(versions, dict) and versions.get("torch"):
        items.append(("torch", str(versions["torch"])))
    return items


def _repro_text(root: Path, row: Row) -> tuple[str, str] | None:
    cid = row.reduced_case or row.case_ids[0]
    p = root / cid / "repro.py"
    if p.exists():
        try:
            return cid, p.read_text()
        except OSError:
            return None
    return None


def build(root, *, title: str | None = None, known_file=None) -> dict:
    """Everything the renderers need (plots as PNG bytes)."""
    root = Path(root)
    cases = iter_cases(root)
    stats = read_stats(root)
    rows = sort_rows(listing_rows(root, known_file), "count")
    series = _series(read_plot_data(root))
    per_backend, backend_src = backend_outcomes(stats, cases)
    failing = op_coverage(cases)
    covered = covered_ops(root)
    ops_src = "the store's covered-operator set, plot_data.csv and saved cases" if covered else "saved cases"
    unique_png, unique_src = plot_unique(series, cases)
    return {
        "title": title or f"Assay campaign report: {root}",
        "root": root,
        "summary": _summary(stats, rows, cases),
        "plots": [
            ("Tests over time", plot_tests(series), "plot_data.csv" if series else "no plot_data.csv"),
            ("Unique failures over time", unique_png, unique_src or "no data"),
            ("Outcomes per backend", plot_backends(per_backend), backend_src),
            ("Operator coverage", plot_ops(failing, covered, series), ops_src),
        ] + ([("Compiler features over time", plot_features(series), "plot_data.csv (features, seeds)")]
             if "features" in series else []),
        "rows": rows,
        "generated": datetime.now().isoformat(timespec="seconds"),
    }


def render_html(data: dict) -> str:
    e = html.escape
    root = data["root"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{e(data['title'])}</title>",
        "<style>body{font:14px/1.45 system-ui,sans-serif;max-width:1100px;margin:24px auto;padding:0 16px;color:#222}"
        "h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}"
        ".cards{display:flex;flex-wrap:wrap;gap:10px}.card{background:#f5f6f8;border-radius:6px;padding:8px 14px}"
        ".card b{display:block;font-size:20px}.plots{display:grid;grid-template-columns:1fr 1fr;gap:14px}"
        ".plots figure{margin:0}.plots img{width:100%}figcaption{font-size:11px;color:#777}"
        "table{border-collapse:collapse;width:100%;font-size:12px}td,th{border-bottom:1px solid #eee;padding:4px 6px;"
        "text-align:left;vertical-align:top}th{background:#fafafa}code,pre{font:12px ui-monospace,monospace}"
        "pre{background:#f6f8fa;padding:10px;overflow:auto;max-height:420px}.sig{color:#666;font-size:11px;word-break:break-all}"
        ".yes{color:#c0392b;font-weight:600}.no{color:#27ae60;font-weight:600}.new{background:#fff3cd;border-radius:3px;padding:0 4px}"
        "</style></head><body>",
        f"<h1>{e(data['title'])}</h1>",
        f"<p>Generated {e(data['generated'])} from <code>{e(str(root))}</code>.</p>",
        "<div class='cards'>" + "".join(f"<div class='card'><b>{e(v)}</b>{e(k)}</div>" for k, v in data["summary"]) + "</div>",
        "<h2>Campaign</h2><div class='plots'>",
    ]
    for name, png, src in data["plots"]:
        if png:
            b64 = base64.b64encode(png).decode()
            parts.append(f"<figure><img alt='{e(name)}' src='data:image/png;base64,{b64}'><figcaption>{e(name)} — from {e(src)}</figcaption></figure>")
        else:
            parts.append(f"<figure><p><i>{e(name)}: no data ({e(src)})</i></p></figure>")
    parts.append("</div>")
    rows: list[Row] = data["rows"]
    parts.append(f"<h2>Bugs ({len(rows)} distinct)</h2>")
    if rows:
        parts.append("<table><tr><th>#</th><th>kind</th><th>backend</th><th>hits</th><th>first / last seen</th>"
                     "<th>reproduces</th><th>ops</th><th>error / signature</th></tr>")
        for i, r in enumerate(rows, 1):
            rep = {True: "<span class='yes'>yes</span>", False: "<span class='no'>fixed</span>", None: "?"}[r.reproduces]
            if r.status in STATUS_SHOWN_AS_IS:
                rep = r.status
            ops = ", ".join(e(short_op(o)) for o in r.ops)
            if r.reduced_case:
                ops += f"<br><small>reduced to {r.ops_after} op{'s' if r.ops_after != 1 else ''}</small>"
            new = " <span class='new'>new</span>" if r.new else ""
            if r.known:
                new += f"<br><small>known: {e(r.known)}</small>"
            parts.append(
                f"<tr><td><a href='#bug{i}'>{i}</a>{new}</td><td>{e(r.kind)}</td><td>{e(r.backend)}<br><small>{e(r.mode)}</small></td>"
                f"<td>{r.count}</td><td>{e(_day(r.first_seen))}<br>{e(_day(r.last_seen))}</td><td>{rep}</td><td>{ops}</td>"
                f"<td>{e(r.error)}<div class='sig'>{e(r.signature)}</div></td></tr>")
        parts.append("</table>")
        for i, r in enumerate(rows, 1):
            parts.append(f"<h3 id='bug{i}'>#{i} {e(r.kind)} on {e(r.backend)}: {e(r.error or r.signature)[:140]}</h3>")
            parts.append(f"<p>cases: {e(', '.join(r.case_ids[:12]))}{' ...' if len(r.case_ids) > 12 else ''}</p>")
            rep = _repro_text(root, r)
            if rep:
                cid, text = rep
                label = "reduced repro" if cid == r.reduced_case else "repro (not reduced yet: assay triage reduce " + cid + ")"
                parts.append(f"<details{' open' if i <= 3 else ''}><summary>{e(label)} — <code>{e(cid)}/repro.py</code></summary><pre>{e(text)}</pre></details>")
    parts.append("</body></html>")
    return "\n".join(parts)


def render_markdown(data: dict, image_dir: Path | None, image_prefix: str = "") -> str:
    """Markdown; plots are written as PNG files into ``image_dir`` (skipped when None)."""
    lines = [f"# {data['title']}", "", f"Generated {data['generated']} from `{data['root']}`.", ""]
    lines += ["| " + " | ".join(k for k, _ in data["summary"]) + " |",
              "|" + "---|" * len(data["summary"]),
              "| " + " | ".join(v for _, v in data["summary"]) + " |", ""]
    if image_dir is not None:
        image_dir.mkdir(parents=True, exist_ok=True)
        for name, png, src in data["plots"]:
            if png:
                fname = name.lower().replace(" ", "_") + ".png"
                (image_dir / fname).write_bytes(png)
                lines.append(f"![{name}]({image_prefix}{fname})")
                lines.append(f"*{name} — from {src}*")
                lines.append("")
    rows: list[Row] = data["rows"]
    lines += [f"## Bugs ({len(rows)} distinct)", ""]
    if rows:
        lines += ["| # | kind | backend | hits | first seen | last seen | reproduces | ops | error |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for i, r in enumerate(rows, 1):
            rep = {True: "yes", False: "fixed", None: "?"}[r.reproduces]
            if r.status in STATUS_SHOWN_AS_IS:
                rep = r.status
            ops = ", ".join(f"`{short_op(o)}`" for o in r.ops)
            err = (r.error or r.signature).replace("|", "\\|")[:120]
            known = f" (known: {r.known})" if r.known else ""
            lines.append(f"| {i}{' (new)' if r.new else ''}{known} | {r.kind} | {r.backend} | {r.count} | {_day(r.first_seen)} | "
                         f"{_day(r.last_seen)} | {rep} | {ops} | {err} |")
        lines.append("")
        for i, r in enumerate(rows, 1):
            lines += [f"### #{i} {r.kind} on {r.backend}", "", f"signature: `{r.signature}`  ", f"cases: {', '.join(r.case_ids[:12])}", ""]
            rep = _repro_text(data["root"], r)
            if rep:
                cid, text = rep
                lines += [f"<details><summary>{'reduced repro' if cid == r.reduced_case else 'repro'} ({cid})</summary>", "",
                          "```python", text.rstrip(), "```", "", "</details>", ""]
    return "\n".join(lines) + "\n"


def _day(ts: str | None) -> str:
    if not ts:
        return "-"
    return ts.replace("T", " ")[:16]


def write_report(root, out: Path, fmt: str | None = None, known_file=None) -> Path:
    data = build(root, known_file=known_file)
    fmt = fmt or ("md" if out.suffix.lower() in (".md", ".markdown") else "html")
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "md":
        img_dir = out.parent / (out.stem + "_files")
        out.write_text(render_markdown(data, img_dir, image_prefix=img_dir.name + "/"))
    else:
        out.write_text(render_html(data))
    return out


