"""The campaign's status display (stderr): a redrawn block on a TTY, else one line.

Both read only the ``stats.json`` dictionary, so the screen shows exactly what
scripts see.
"""

from __future__ import annotations

from fuzz.campaign.verdict import FAILURE_KINDS, OUTCOME_KINDS, Kind

KINDS = tuple(k.value for k in (*OUTCOME_KINDS, Kind.INVALID, Kind.UNSUPPORTED, Kind.SKIP))  # the table's columns


def _w(kind: str) -> int:
    return max(9, len(kind) + 2)


def fmt_time(seconds: float) -> str:
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def _share(x) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"
def codegen_text(st: dict) -> str:
    """``vectorised 62% parallel 31% of 120 compiled``: what inductor's output code had (stats' ``inductor_code``)."""
    cg = st.get("inductor_code") or {}
    if not cg.get("tests"):
        return "none read yet"
    return (f"vectorised {cg['vectorised_share']:.0%}, parallel {cg['parallel_share']:.0%}"
            f" of {cg['tests']} compiled")


def render_lines(st: dict, remaining_s: float) -> list[str]:
    o = st["outcomes"]
    fails = sum(o.get(k.value, 0) for k in FAILURE_KINDS)
    lines = [
        f"assay fuzz  {fmt_time(st['elapsed_s'])} elapsed, {fmt_time(remaining_s)} left   "
        f"workers {st['workers']} (restarts {st['worker_restarts']})   seed {st['seed']}, {st['nodes']} nodes",
        f"tests {st['tests']}  ({st['tests_per_min']:.1f}/min overall, {st['tests_per_min_last_minute']:.1f}/min last minute)"
        f"   models {st['models']}   ops covered {st['ops_covered']}",
        f"failures {fails}   unique {st['unique_signatures']}   cases saved {st['cases_saved']}"
        f" ({st['rechecks_pending']} re-checking)   flaky {st['flaky']}   invalid {st['invalid']}"
        f"   oracle errors {st.get('oracle_errors', 0)}   judged {_share(st.get('judged_share'))} of passes",
        f"inductor code: {codegen_text(st)}",
    ]
    fb = feedback_text(st)
    if fb:
        lines.append(fb)
    lines += ["", f"{'backend':<28}" + "".join(f"{k:>{_w(k)}}" for k in KINDS)]
    for backend in st["backends"]:
        row = st["per_backend"].get(backend, {})
        lines.append(f"{backend:<28}" + "".join(f"{row.get(k, 0):>{_w(k)}}" for k in KINDS))
    return lines


def feedback_text(st: dict) -> str:
    """``feedback: 812 features, 97 seeds, last new 12s ago`` (empty for --feedback off)."""
    fb = st.get("feedback") or {}
    if "features" not in fb:  # --feedback off
        return ""
    last = fb.get("last_new_s")
    ago = f"last new {fmt_time(max(0.0, st['elapsed_s'] - last))} ago" if last is not None else "none new yet"
    cov = f", {fb['coverage_lines']} lines covered" if fb.get("coverage_lines") is not None else ""
    return f"feedback: {fb.get('features', 0)} features, {fb.get('seeds', 0)} seeds, {fb.get('mutants', 0)} mutants, {ago}{cov}"


def render_line(st: dict, remaining_s: float) -> str:
    o = st["outcomes"]
    parts = " ".join(f"{k}={o.get(k.value, 0)}" for k in OUTCOME_KINDS)
    return (f"assay fuzz: {fmt_time(st['elapsed_s'])} elapsed ({fmt_time(remaining_s)} left): "
            f"{st['tests']} tests, {st['tests_per_min']:.1f}/min; {parts} invalid={st['invalid']}; "
            f"unique={st['unique_signatures']} cases={st['cases_saved']} ops={st['ops_covered']}; "
            f"inductor code: {codegen_text(st)}"
            + (f"; features={(st.get('feedback') or {}).get('features', 0)}" if feedback_text(st) else ""))


def render_summary(st: dict, session_tests: int, new_signatures: int, out) -> str:
    """The closing lines of a run: what it did, where it is, what to run next. A failing test
    that did not fail again on its recheck (``flaky``) is counted apart, and the line says so."""
    failures = sum(st.get("outcomes", {}).get(k.value, 0) for k in FAILURE_KINDS)
    flaky = st.get("flaky", 0)
    apart = f" (+{flaky} flaky: failed once, passed its recheck; counted apart)" if flaky else ""
    return (f"assay fuzz: {session_tests} tests this run ({st.get('tests', 0)} in the campaign, "
            f"{fmt_time(st.get('elapsed_s', 0))}); {failures} failing tests in all{apart}, "
            f"{st.get('unique_signatures', 0)} signatures ({new_signatures} new this run), "
            f"{st.get('cases_saved', 0)} cases saved\n"
            f"  folder: {out}    next: assay triage list --dir {out}\n")
