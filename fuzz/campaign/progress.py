"""The campaign's numbers as it runs: ``stats.json``, the ``plot_data.csv`` time series, the status display.

``Progress.stats`` reads the counts from the store's journal (so they survive
``--resume``) plus what the driver knows about this session (models, operators,
pending re-checks, worker restarts). ``update`` rewrites ``stats.json`` every 5 s and
appends a ``plot_data.csv`` row every 10 s (both atomically replaced); the status
display (``fuzz.campaign.status``) shows the latest stats on stderr.
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

from fuzz.campaign.config import Config, now_iso
from fuzz.campaign.status import render_line, render_lines
from fuzz.campaign.store import CrashStore, atomic_write, warn
from fuzz.campaign.verdict import OUTCOME_KINDS, Kind

PLOT_COLUMNS = ["unix_time", "elapsed_s", "tests", "tests_per_min", *(k.value for k in OUTCOME_KINDS), "invalid",
                "unsupported", "unique_signatures", "ops_covered", "models", "features", "seeds", "coverage_lines"]


class Progress:
    def __init__(self, cfg: Config, store: CrashStore, stream):
        self.cfg = cfg
        self.store = store
        self.out = Path(cfg.out)
        self.stream = stream
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.elapsed_before = float(store.get_meta("elapsed_s", 0.0) or 0.0)
        self.session_start = time.monotonic()
        self.session_tests = 0
        self.recent: list[float] = []   # when this session's tests of the last minute finished
        self.plot_rows = self._read_plot()
        self.latest: dict | None = None
        self._status_lines = 0
        self._last_status = self._last_stats = self._last_plot = 0.0

    def count_test(self) -> None:
        self.session_tests += 1
        self.recent.append(time.monotonic())

    def elapsed(self) -> float:
        return self.elapsed_before + (time.monotonic() - self.session_start)

    def stats(self, session: dict) -> dict:
        """``stats.json``; ``session``: models, ops_covered, rechecks_pending, worker_restarts."""
        counts = self.store.outcome_counts()
        passes = counts["outcomes"][Kind.PASS.value]
        other = counts["other"]
        tests = self.store.test_count()
        elapsed = self.elapsed()
        now = time.monotonic()
        self.recent = [t for t in self.recent if now - t <= 60]
        window = min(60.0, now - self.session_start)
        return {
            "tests": tests,
            "tests_per_min": round(tests / (elapsed / 60), 2) if elapsed > 0 else 0.0,
            "tests_per_min_last_minute": round(len(self.recent) / (window / 60), 2) if window > 1 else 0.0,
            "session_tests": self.session_tests,
            "outcomes": counts["outcomes"],
            "invalid": other.get(Kind.INVALID.value, 0),
            "unsupported": other.get(Kind.UNSUPPORTED.value, 0),
            "skipped": other.get(Kind.SKIP.value, 0),
            "oracle_errors": other.get(Kind.ORACLE_ERROR.value, 0),
            # share of passing tests where at least one value was judged (a pass that judged
            # nothing, every output skipped, is no evidence); None before the first pass
            "judged_share": round(1 - self.store.passes_unjudged() / passes, 4) if passes else None,
            "generation_failures": other.get(Kind.GENFAIL.value, 0),
            "flaky": other.get("flaky", 0),
            "unique_signatures": self.store.unique_signatures(),
            "cases_saved": len(self.store.cases()),
            "rechecks_pending": session["rechecks_pending"],
            "per_backend": self.store.per_backend(),
            "inductor_code": self.store.codegen_shares(),
            "per_mode": self.store.per_mode(),
            "models": session["models"],
            "ops_covered": session["ops_covered"],
            "elapsed_s": round(elapsed, 1),
            "workers": self.cfg.workers,
            "worker_restarts": session["worker_restarts"],
            "backends": self.cfg.backends,
            "modes": self.cfg.modes,
            "seed": self.cfg.seed,
            "nodes": self.cfg.nodes,
            "device": self.cfg.device,
            "feedback": session.get("feedback"),
            "updated": now_iso(),
        }

    def update(self, session, force: bool = False) -> None:
        """Rewrite stats.json / plot_data.csv when due, then the status display.
        ``session()`` returns ``stats``'s session numbers."""
        now = time.monotonic()
        if force or now - self._last_stats >= 5:
            self._last_stats = now
            st = self.stats(session())
            self.store.set_meta("elapsed_s", st["elapsed_s"])
            self.store.set_meta("models", st["models"])
            atomic_write(self.out / "stats.json", json.dumps(st, indent=1) + "\n")
            if force or now - self._last_plot >= 10 or not self.plot_rows:
                self._last_plot = now
                self._plot_row(st)
            self.latest = st
        self.show()

    def _plot_row(self, st: dict) -> None:
        row = {"unix_time": round(time.time(), 1), "elapsed_s": st["elapsed_s"], "tests": st["tests"],
               "tests_per_min": st["tests_per_min"], **st["outcomes"], "invalid": st["invalid"],
               "unsupported": st["unsupported"], "unique_signatures": st["unique_signatures"],
               "ops_covered": st["ops_covered"], "models": st["models"],
               **{k: (st.get("feedback") or {}).get(k, "") for k in ("features", "seeds", "coverage_lines")}}
        self.plot_rows.append(row)
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=PLOT_COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(self.plot_rows)
        atomic_write(self.out / "plot_data.csv", buf.getvalue())

    def _read_plot(self) -> list[dict]:
        path = self.out / "plot_data.csv"
        if not path.exists():
            return []
        try:
            with open(path, newline="") as fh:
                return list(csv.DictReader(fh))
        except (OSError, csv.Error):
            warn(f"{path}: unreadable, starting a new time series")
            return []

    def show(self, final: bool = False) -> None:
        """The status display: a redrawn block on a TTY (at most once a second), else a line now and then."""
        now = time.monotonic()
        if self.latest is None:
            return
        # stats.json is rewritten every 5 s; the clock on screen is read now, not from it
        st = dict(self.latest, elapsed_s=round(self.elapsed(), 1))
        remaining = max(0.0, self.cfg.time_s - (now - self.session_start))
        if self.tty:
            if not final and now - self._last_status < 1.0:
                return
            self._last_status = now
            lines = render_lines(st, remaining)
            if self._status_lines:
                self.stream.write(f"\x1b[{self._status_lines}F\x1b[J")
            self.stream.write("\n".join(lines) + "\n")
            self._status_lines = len(lines)
            self.stream.flush()
        elif final or now - self._last_status >= self.cfg.status_every_s:
            self._last_status = now
            self.stream.write(render_line(st, remaining) + "\n")
            self.stream.flush()
