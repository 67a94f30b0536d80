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
import io
import json
from collections import Counter
from datetime import datetime
from pathlib import Path

from fuzz.campaign.verdict import FAILURE_KINDS, Kind
from fuzz.triage.cases import iter_cases
from fuzz.triage.listing import Row, listing_rows, sort_rows

OUTCOME_COLORS = {
    Kind.PASS: "#59a14f", "ok": "#59a14f", Kind.CRASH: "#e15759", Kind.MISMATCH: "#f28e2b", Kind.HANG: "#b07aa1",
    Kind.SIGNAL: "#9c755f", Kind.OOM: "#76b7b2", Kind.SKIP: "#bab0ac", Kind.INVALID: "#d9d9d9",
    Kind.UNSUPPORTED: "#8cd17d", "error": "#edc948",
}
FAILURES = tuple(k.value for k in FAILURE_KINDS)
TIME_COLUMNS = ("elapsed_s", "elapsed", "seconds", "time_s", "time", "t", "wall_s", "unix_time", "timestamp")
TESTS_COLUMNS = ("tests", "total_tests", "tests_run", "executions", "execs", "total", "done")
UNIQUE_COLUMNS = ("unique", "unique_failures", "signatures", "unique_signatures", "distinct", "bugs")


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


def _pick(columns, candidates) -> str | None:
    lowered = {c.lower(): c for c in columns}
    for c in candidates:
        if c in lowered:
            return lowered[c]
    return None


def _series(rows: list[dict]) -> dict:
    """{'t': [...hours], 'tests': [...], 'unique': [...], 'by_kind': {kind: [...]}} from plot_data rows."""
    if not rows:
        return {}
    cols = list(rows[0])
    tcol = _pick(cols, TIME_COLUMNS)
    if tcol is None:
        return {}
    t = [r.get(tcol) for r in rows]
    if not all(isinstance(v, float) for v in t):
        return {}
    t0 = t[0] if tcol in ("unix_time", "timestamp") or t[0] > 1e8 else 0.0
    out = {"t": [(v - t0) for v in t], "time_col": tcol}
    for key, cands in (("tests", TESTS_COLUMNS), ("unique", UNIQUE_COLUMNS)):
        c = _pick(cols, cands)
        if c and all(isinstance(r.get(c), float) for r in rows):
            out[key] = [r[c] for r in rows]
    kinds = {}
    for k in FAILURES:
        c = _pick(cols, (k, k + "s", k + "es"))
        if c and all(isinstance(r.get(c), float) for r in rows) and any(r[c] for r in rows):
            kinds[k] = [r[c] for r in rows]
    c = _pick(cols, ("ops_covered", "ops", "operators"))
    if c and all(isinstance(r.get(c), float) for r in rows):
        out["ops_covered"] = [r[c] for r in rows]
    if kinds:
        out["by_kind"] = kinds
    return out


def backend_outcomes(stats: dict, cases) -> tuple[dict, str]:
    """{backend: {outcome: count}} and where it came from."""
    per = next((stats[k] for k in ("per_backend", "outcomes_per_backend", "backends") if isinstance(stats.get(k), dict)), None)
    if isinstance(per, dict) and per:
        out = {}
        for b, v in per.items():
            if isinstance(v, dict):
                counts = v.get("outcomes") if isinstance(v.get("outcomes"), dict) else v
                out[b] = {k: int(n) for k, n in counts.items() if isinstance(n, (int, float)) and not isinstance(n, bool)}
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


def op_coverage(stats: dict, cases) -> tuple[dict, dict, str]:
    """({op: tests} when the campaign counted them, {op: failing cases}, source)."""
    fails = Counter()
    for c in cases:
        if not c.reduced_from:
            for op in set(c.ops):
                fails[op] += 1
    ops = stats.get("op_counts") or stats.get("ops_tested")
    if isinstance(ops, dict) and ops:
        tested = {k: int(v) for k, v in ops.items() if isinstance(v, (int, float))}
        return tested, dict(fails), "stats.json"
    return {}, dict(fails), "saved cases"


# ---------------------------------------------------------------------------
# plots


def _fig():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False,
                         "axes.grid": True, "grid.alpha": 0.3})
    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _fig().close(fig)
    return buf.getvalue()


def _time_axis(ax, t: list[float]):
    span = (max(t) - min(t)) if t else 0
    if span > 3 * 3600:
        return [v / 3600 for v in t], "hours since start"
    if span > 180:
        return [v / 60 for v in t], "minutes since start"
    return t, "seconds since start"


def plot_tests(series: dict) -> bytes | None:
    if "tests" not in series:
        return None
    plt = _fig()
    fig, ax = plt.subplots(figsize=(6.4, 2.8))
    x, label = _time_axis(ax, series["t"])
    ax.plot(x, series["tests"], color="#4e79a7", lw=1.8)
    ax.fill_between(x, series["tests"], color="#4e79a7", alpha=0.12)
    ax.set_xlabel(label)
    ax.set_ylabel("tests run")
    ax.set_title("Tests over time")
    if len(x) > 1 and x[-1] > x[0]:
        rate = (series["tests"][-1] - series["tests"][0]) / max(series["t"][-1] - series["t"][0], 1e-9)
        ax.text(0.01, 0.95, f"{rate:.2f} tests/s overall", transform=ax.transAxes, va="top", fontsize=8, color="#555")
    return _png(fig)


def plot_unique(series: dict, cases) -> tuple[bytes | None, str]:
    plt = _fig()
    if "unique" in series or "by_kind" in series:
        fig, ax = plt.subplots(figsize=(6.4, 2.8))
        x, label = _time_axis(ax, series["t"])
        if "unique" in series:
            ax.step(x, series["unique"], where="post", color="#e15759", lw=2, label="unique signatures")
        for kind, ys in (series.get("by_kind") or {}).items():
            ax.step(x, ys, where="post", lw=1, alpha=0.8, color=OUTCOME_COLORS.get(kind, None), label=f"{kind} (hits)")
        ax.set_xlabel(label)
        ax.set_ylabel("failures")
        ax.set_title("Unique failures over time")
        ax.legend(fontsize=7, frameon=False, loc="upper left")
        return _png(fig), "plot_data.csv"
    # from the cases' creation times: cumulative distinct signatures
    points = []
    for c in cases:
        if c.reduced_from:
            continue
        ts = c.created
        try:
            points.append((datetime.fromisoformat(str(ts).replace("Z", "+00:00")).timestamp(), c.failure.id))
        except (TypeError, ValueError):
            continue
    if not points:
        return None, ""
    points.sort()
    seen, xs, ys, hits = set(), [], [], []
    for i, (ts, sig) in enumerate(points, 1):
        seen.add(sig)
        xs.append(ts - points[0][0])
        ys.append(len(seen))
        hits.append(i)
    fig, ax = plt.subplots(figsize=(6.4, 2.8))
    x, label = _time_axis(ax, xs)
    ax.step(x, ys, where="post", color="#e15759", lw=2, label="unique signatures")
    ax.step(x, hits, where="post", color="#f28e2b", lw=1, alpha=0.7, label="saved cases")
    ax.set_xlabel(label)
    ax.set_ylabel("failures")
    ax.set_title("Unique failures over time")
    ax.legend(fontsize=7, frameon=False, loc="upper left")
    return _png(fig), "case creation times"


def plot_backends(per_backend: dict) -> bytes | None:
    if not per_backend:
        return None
    plt = _fig()
    backends = sorted(per_backend)
    outcomes = sorted({o for v in per_backend.values() for o in v},
                      key=lambda o: (list(OUTCOME_COLORS).index(o) if o in OUTCOME_COLORS else 99, o))
    fig, ax = plt.subplots(figsize=(6.4, 0.6 + 0.45 * len(backends)))
    left = [0.0] * len(backends)
    log = any(v.get("pass", 0) + v.get("ok", 0) > 20 * max(1, sum(n for k, n in v.items() if k not in ("pass", "ok")))
              for v in per_backend.values())
    for o in outcomes:
        vals = [per_backend[b].get(o, 0) for b in backends]
        ax.barh(backends, vals, left=left, color=OUTCOME_COLORS.get(o, "#999"), label=o, height=0.6)
        left = [l + v for l, v in zip(left, vals)]
    for i, total in enumerate(left):
        fails = sum(n for k, n in per_backend[backends[i]].items()
                    if k not in ("ok", Kind.PASS, Kind.SKIP, Kind.INVALID, Kind.UNSUPPORTED))
        ax.text(total, i, f"  {int(total)} ({fails} failing)", va="center", fontsize=7)
    if log:
        ax.set_xscale("symlog")
    ax.set_xlabel("tests" + (" (symlog scale)" if log else ""))
    ax.set_title("Outcomes per backend")
    ax.legend(fontsize=7, frameon=False, ncol=min(len(outcomes), 8), loc="upper center",
              bbox_to_anchor=(0.5, -0.45 if len(backends) < 3 else -0.25))
    ax.grid(axis="y", alpha=0)
    return _png(fig)


def plot_ops(tested: dict, failing: dict, covered: list[str], series: dict, top: int = 20) -> bytes | None:
    """Left: operators covered over time; right: the operators in failing cases (and how many were tested)."""
    if not tested and not failing and not covered and "ops_covered" not in series:
        return None
    plt = _fig()
    have_time = "ops_covered" in series
    fig, axes = plt.subplots(1, 2 if have_time else 1, figsize=(9.6 if have_time else 6.4, 3.4),
                             gridspec_kw={"width_ratios": [1, 1.4]} if have_time else None)
    axes = list(axes) if have_time else [axes]
    if have_time:
        ax = axes.pop(0)
        x, label = _time_axis(ax, series["t"])
        ax.plot(x, series["ops_covered"], color="#4e79a7", lw=1.8)
        ax.set_xlabel(label)
        ax.set_ylabel("distinct operators tested")
        ax.set_title("Operator coverage over time")
    ax = axes[0]
    key = failing if failing else tested
    ops = sorted(key, key=lambda o: (-key[o], o))[:top][::-1]
    if ops:
        labels = [_short(o) for o in ops]
        if tested:
            ax.barh(labels, [tested.get(o, 0) for o in ops], color="#4e79a7", label="tests using the op", height=0.7)
        ax.barh(labels, [failing.get(o, 0) for o in ops], color="#e15759", label="failing cases with the op", height=0.7)
        ax.tick_params(axis="y", labelsize=7)
        ax.legend(fontsize=7, frameon=False, loc="lower right")
        ax.grid(axis="y", alpha=0)
    else:
        ax.text(0.5, 0.5, "no failing cases", ha="center", va="center", transform=ax.transAxes, color="#777")
        ax.set_yticks([])
    n_cov = len(covered) or len(tested)
    n_fail = len(failing)
    title = f"Operators in failing cases ({n_fail}"
    title += f" of {n_cov} tested)" if n_cov else ")"
    ax.set_title(title)
    ax.set_xlabel("cases")
    return _png(fig)


def _short(op: str) -> str:
    return op.split("::")[-1].replace("torch.nn.functional.", "F.").replace("torch.", "")


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
    if any(r.status == "flaky" for r in rows):
        items.append(("flaky", str(sum(1 for r in rows if r.status == "flaky"))))
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


def build(root, *, title: str | None = None) -> dict:
    """Everything the renderers need (plots as PNG bytes)."""
    root = Path(root)
    cases = iter_cases(root)
    stats = read_stats(root)
    rows = sort_rows(listing_rows(root), "count")
    series = _series(read_plot_data(root))
    per_backend, backend_src = backend_outcomes(stats, cases)
    tested, failing, ops_src = op_coverage(stats, cases)
    covered = covered_ops(root)
    if covered:
        ops_src = "the store's covered-operator set, plot_data.csv and saved cases"
    unique_png, unique_src = plot_unique(series, cases)
    return {
        "title": title or f"Assay campaign report: {root}",
        "root": root,
        "summary": _summary(stats, rows, cases),
        "plots": [
            ("Tests over time", plot_tests(series), "plot_data.csv" if series else "no plot_data.csv"),
            ("Unique failures over time", unique_png, unique_src or "no data"),
            ("Outcomes per backend", plot_backends(per_backend), backend_src),
            ("Operator coverage", plot_ops(tested, failing, covered, series), ops_src),
        ],
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
            if r.status in ("changed", "flaky"):
                rep = r.status
            ops = ", ".join(e(_short(o)) for o in r.ops)
            if r.reduced_case:
                ops += f"<br><small>reduced to {r.ops_after} op{'s' if r.ops_after != 1 else ''}</small>"
            new = " <span class='new'>new</span>" if r.new else ""
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
            if r.status in ("changed", "flaky"):
                rep = r.status
            ops = ", ".join(f"`{_short(o)}`" for o in r.ops)
            err = (r.error or r.signature).replace("|", "\\|")[:120]
            lines.append(f"| {i}{' (new)' if r.new else ''} | {r.kind} | {r.backend} | {r.count} | {_day(r.first_seen)} | "
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


def write_report(root, out: Path, fmt: str | None = None) -> Path:
    data = build(root)
    fmt = fmt or ("md" if out.suffix.lower() in (".md", ".markdown") else "html")
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "md":
        img_dir = out.parent / (out.stem + "_files")
        out.write_text(render_markdown(data, img_dir, image_prefix=img_dir.name + "/"))
    else:
        out.write_text(render_html(data))
    return out


