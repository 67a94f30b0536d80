"""The campaign report's plots, each a PNG (bytes) or None when there is nothing to plot.

Tests over time, unique failures over time, outcomes per backend, operator coverage;
``fuzz.triage.report`` lays them out.
"""

from __future__ import annotations

import io
from datetime import datetime

from fuzz.campaign.verdict import Kind
from fuzz.triage.listing import short_op

OUTCOME_COLORS = {
    Kind.PASS.value: "#59a14f", "ok": "#59a14f", Kind.CRASH.value: "#e15759", Kind.MISMATCH.value: "#f28e2b",
    Kind.HANG.value: "#b07aa1", Kind.SIGNAL.value: "#9c755f", Kind.OOM.value: "#76b7b2", Kind.SKIP.value: "#bab0ac",
    Kind.INVALID.value: "#d9d9d9", Kind.UNSUPPORTED.value: "#8cd17d", "error": "#edc948",
}
NOT_FAILING = ("ok", Kind.PASS.value, Kind.SKIP.value, Kind.INVALID.value, Kind.UNSUPPORTED.value,
               Kind.ORACLE_ERROR.value)


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
                    if k not in NOT_FAILING)
        ax.text(total, i, f"  {int(total)} ({fails} failing)", va="center", fontsize=7)
    if log:
        ax.set_xscale("symlog")
    ax.set_xlabel("tests" + (" (symlog scale)" if log else ""))
    ax.set_title("Outcomes per backend")
    ax.legend(fontsize=7, frameon=False, ncol=min(len(outcomes), 8), loc="upper center",
              bbox_to_anchor=(0.5, -0.45 if len(backends) < 3 else -0.25))
    ax.grid(axis="y", alpha=0)
    return _png(fig)


def plot_ops(failing: dict, covered: list[str], series: dict, top: int = 20) -> bytes | None:
    """Left: operators covered over time; right: the operators in failing cases."""
    if not failing and not covered and "ops_covered" not in series:
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
    ops = sorted(failing, key=lambda o: (-failing[o], o))[:top][::-1]
    if ops:
        labels = [short_op(o) for o in ops]
        ax.barh(labels, [failing.get(o, 0) for o in ops], color="#e15759", label="failing cases with the op", height=0.7)
        ax.tick_params(axis="y", labelsize=7)
        ax.legend(fontsize=7, frameon=False, loc="lower right")
        ax.grid(axis="y", alpha=0)
    else:
        ax.text(0.5, 0.5, "no failing cases", ha="center", va="center", transform=ax.transAxes, color="#777")
        ax.set_yticks([])
    n_cov = len(covered)
    n_fail = len(failing)
    title = f"Operators in failing cases ({n_fail}"
    title += f" of {n_cov} tested)" if n_cov else ")"
    ax.set_title(title)
    ax.set_xlabel("cases")
    return _png(fig)


def plot_features(series: dict) -> bytes | None:
    """Distinct compiler features (and seeds, lines covered) over time: a guided campaign's progress."""
    if "features" not in series:
        return None
    plt = _fig()
    fig, ax = plt.subplots(figsize=(6.4, 2.8))
    t = [p[0] for p in series["features"]]
    x, label = _time_axis(ax, t)
    ax.plot(x, [p[1] for p in series["features"]], color="#e15759", lw=1.8, label="distinct features")
    if "seeds" in series:
        sx, _ = _time_axis(ax, [p[0] for p in series["seeds"]])
        ax.plot(sx, [p[1] for p in series["seeds"]], color="#76b7b2", lw=1.4, label="seeds")
    if "coverage_lines" in series:
        ax2 = ax.twinx()
        cx, _ = _time_axis(ax, [p[0] for p in series["coverage_lines"]])
        ax2.plot(cx, [p[1] for p in series["coverage_lines"]], color="#59a14f", lw=1.2, ls="--")
        ax2.set_ylabel("compiler lines covered (dashed)", fontsize=8)
    ax.set_xlabel(label)
    ax.set_ylabel("count")
    ax.set_title("Compiler features over time")
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)
