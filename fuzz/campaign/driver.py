"""The campaign driver: feed workers, judge, save, resume.

The driver generates nothing and runs nothing under test itself: it hands *jobs*
(one model, every backend x mode on it) to an ``Executor`` (``fuzz.campaign.executor``),
turns the verdicts it gets back into journal rows and saved cases (``fuzz.campaign.store``),
re-checks every saved case by running its ``repro.py`` in a fresh sandboxed process
(``reproduces: true/false``; false = flaky, kept but not counted as a bug), and
keeps ``stats.json``/``plot_data.csv`` and a status display up to date.

Test ids are deterministic: ``s<seed>-m<model:06d>-<backend>-<mode>``; model ``i`` is
``fuzz.gen.generate.generate_model_for_index(rules, cfg, seed, i)``, the same model as
``assay gen --seed <seed>`` writes as number ``i``. A case's id is its test id. So after a
crash (even ``kill -9``) ``--resume`` re-runs exactly the tests missing from the
journal, re-checks staged cases, and reconciles case directories with the index:
nothing is lost and nothing is saved twice.
"""

from __future__ import annotations

import base64
import csv
import datetime as _dt
import io
import json
import os
import queue
import re
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fuzz.campaign import sandbox
from fuzz.errors import AssayError
from fuzz.campaign.failure import signature
from fuzz.ir.opnames import display_name
from fuzz.campaign.store import FAILURE_KINDS, OUTCOME_KINDS, CrashStore, atomic_write, warn

PLOT_COLUMNS = ["unix_time", "elapsed_s", "tests", "tests_per_min", *OUTCOME_KINDS, "invalid", "unsupported",
                "unique_signatures", "ops_covered", "models"]


def parse_duration(text: str) -> float:
    """``90`` / ``90s`` / ``30m`` / ``8h`` / ``1h30m`` -> seconds."""
    t = str(text).strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", t):
        return float(t)
    parts = re.findall(r"(\d+(?:\.\d+)?)([smhd])", t)
    if not parts or "".join(a + b for a, b in parts) != t:
        raise AssayError(f"cannot read duration {text!r}; use seconds or e.g. 30s, 30m, 8h, 1h30m")
    mult = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(float(a) * mult[b] for a, b in parts)


def default_mem_limit_mb(workers: int) -> int:
    try:
        import psutil

        total = psutil.virtual_memory().total // 2**20
    except Exception:  # pragma: no cover
        total = 16384
    return int(max(2048, min(8192, total // (workers + 1))))


@dataclass
class Config:
    out: str
    time_s: float = 600
    workers: int = 2
    backends: list = field(default_factory=lambda: ["inductor", "aot_eager"])
    modes: list = field(default_factory=lambda: ["fwd"])
    seed: int = 0
    nodes: int = 5
    device: str = "cpu"
    timeout_s: float = 90
    mem_limit_mb: int = 0
    programs: str | None = None     # test saved programs instead of generating
    keep_per_signature: int = 3     # case directories kept per signature (all are counted)
    recheck: bool = True
    recheck_grace_s: float = 600    # at the end, wait up to this long for pending re-checks
    recheck_threads: int = 2
    status_every_s: float = 30      # plain progress line interval when stderr is not a TTY

    SETTINGS = ("backends", "modes", "seed", "nodes", "device", "programs")
    # kept for --resume too, but a flag given on resume overrides them
    SOFT_SETTINGS = ("keep_per_signature", "timeout_s", "mem_limit_mb")


def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Campaign:
    def __init__(self, cfg: Config, resume: bool = False, executor=None, stream=None):
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._load_or_create(resume)
        self.store = CrashStore(self.out)
        self.executor = executor
        self.model_files: dict[int, dict] = {}
        self.model_ops: dict[int, list] = {}
        self.model_second: dict[int, tuple] = {}  # dynamic mode: (second-call info, files holding its inputs)
        self._models_seen: set = set()
        self.ops = set(self.store.get_meta("ops", []) or [])
        self.models_done = int(self.store.get_meta("models", 0) or 0)
        self.elapsed_before = float(self.store.get_meta("elapsed_s", 0.0) or 0.0)
        self.recheck_q: queue.Queue = queue.Queue()
        self.recheck_done: queue.Queue = queue.Queue()
        self.rechecks_pending = 0
        self._recheck_procs: set = set()
        self.plot_rows = self._read_plot()
        self._status_lines = 0
        self._last_status = 0.0
        self._last_stats = 0.0
        self._last_plot = 0.0
        self.session_start = time.monotonic()
        self.session_tests = 0
        self.recent: list[tuple[float, int]] = []

    # -- settings -------------------------------------------------------------------
    def _load_or_create(self, resume: bool) -> None:
        path = self.out / "campaign.json"
        if path.exists():
            try:
                saved = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise AssayError(f"{path}: corrupt campaign settings ({exc})") from None
            explicit = getattr(self.cfg, "_explicit", set())
            for key in Config.SETTINGS:
                if key in explicit and saved.get(key) != getattr(self.cfg, key):
                    raise AssayError(f"{self.out} holds a campaign with {key}={saved.get(key)!r}; "
                                     f"continue it without --{key}, or use another --out")
                if key in saved:
                    setattr(self.cfg, key, saved[key])
            for key in Config.SOFT_SETTINGS:
                if key in saved and key not in explicit:
                    setattr(self.cfg, key, saved[key])
            if not resume:
                self.stream.write(f"assay: continuing the campaign in {self.out} (seed {self.cfg.seed})\n")
        elif resume:
            raise AssayError(f"{self.out} holds no campaign to resume (no campaign.json); start one with --out")
        else:
            self.out.mkdir(parents=True, exist_ok=True)
            data = {k: v for k, v in asdict(self.cfg).items() if k in Config.SETTINGS + Config.SOFT_SETTINGS}
            data["created"] = _now_iso()
            atomic_write(path, json.dumps(data, indent=1) + "\n")

    # -- the model stream -----------------------------------------------------------
    def _program_dirs(self) -> list[Path]:
        base = Path(self.cfg.programs)
        if not base.is_dir():
            raise AssayError(f"--programs {base}: not a directory of saved programs")
        dirs = sorted(d for d in base.iterdir() if (d / "graph.json").is_file())
        if (base / "graph.json").is_file():
            dirs = [base]
        if not dirs:
            raise AssayError(f"--programs {base}: no program directories (with graph.json) in it")
        return dirs

    def _tests_for(self, index: int) -> list[dict]:
        prefix = f"s{self.cfg.seed}-m{index:06d}"
        return [{"test": f"{prefix}-{b}-{m}", "backend": b, "mode": m}
                for b in self.cfg.backends for m in self.cfg.modes]

    def _jobs(self):
        done = self.store.done_tests()
        last = self.store.max_model()
        dirs = self._program_dirs() if self.cfg.programs else None
        index = 0
        while True:
            if dirs is not None and index >= len(dirs):
                return
            tests = self._tests_for(index)
            if index <= last:
                tests = [t for t in tests if t["test"] not in done]
            if tests:
                if dirs is not None:
                    source = {"program_dir": str(dirs[index].resolve())}
                else:
                    source = {"gen": {"seed": self.cfg.seed, "index": index}}
                yield {"job": f"s{self.cfg.seed}-m{index:06d}", "model": index, "seed": self.cfg.seed,
                       "nodes": self.cfg.nodes, "source": source, "tests": tests, "device": self.cfg.device,
                       "timeout_s": self.cfg.timeout_s}
            index += 1

    # -- running --------------------------------------------------------------------
    def _make_executor(self):
        from fuzz.campaign.executor import LocalExecutor

        cores = os.cpu_count() or 1
        threads = max(1, cores // max(1, self.cfg.workers))
        return LocalExecutor(self.cfg.workers, self.cfg.backends, device=self.cfg.device,
                             timeout_s=self.cfg.timeout_s, mem_limit_mb=self.cfg.mem_limit_mb,
                             log_dir=self.out / "logs", threads=threads)

    def run(self) -> int:
        if self.cfg.device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise AssayError("--device cuda: no CUDA device is available here")
        self._resume_pending()
        jobs = self._jobs()
        exhausted = False
        executor = self.executor or self._make_executor()
        self.executor = executor
        for _ in range(self.cfg.recheck_threads):
            threading.Thread(target=self._rechecker, daemon=True).start()
        deadline = time.monotonic() + self.cfg.time_s
        interrupted = False
        old_term = None
        if threading.current_thread() is threading.main_thread():
            old_term = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            executor.start()
            while time.monotonic() < deadline:
                while not exhausted and executor.wants() > 0:
                    job = next(jobs, None)
                    if job is None:
                        exhausted = True
                        break
                    executor.submit(job)
                for ev in executor.poll(min(0.5, max(0.01, deadline - time.monotonic()))):
                    self._on_event(ev)
                self._drain_rechecks()
                self._periodic()
                if exhausted and executor.in_flight() == 0:
                    break
        except KeyboardInterrupt:
            interrupted = True
        finally:
            executor.shutdown()
            try:
                self._finish_rechecks(grace=0 if interrupted else self.cfg.recheck_grace_s)
            except KeyboardInterrupt:
                self._finish_rechecks(grace=0)
            self._periodic(force=True)
            self._status(final=True)
            if old_term is not None:
                signal.signal(signal.SIGTERM, old_term)
            self.store.close()
        if interrupted:
            self.stream.write(f"assay: stopped; continue with: assay fuzz --resume {self.out}\n")
            return 130
        return 0

    def _resume_pending(self) -> None:
        """After a crash: re-check staged cases whose test is journaled, drop the others, fix the index."""
        done = self.store.done_tests()
        for d in self.store.staged():
            if d.name in done:
                self._queue_recheck(d.name)
            else:
                import shutil

                shutil.rmtree(d, ignore_errors=True)  # its test was not journaled: it runs again
        fixed = self.store.reconcile()
        if fixed["added"] or fixed["removed"]:
            warn(f"index reconciled with case directories: {fixed['added']} added, {fixed['removed']} removed")

    # -- events ---------------------------------------------------------------------
    def _on_event(self, ev: dict) -> None:
        kind = ev.get("event")
        if kind == "model":
            m = ev.get("model")
            if ev.get("ok"):
                self.model_files[m] = ev.get("files") or {}
                self.model_ops[m] = ev.get("ops") or []
                self.model_second[m] = (ev.get("second_call"), ev.get("files_dynamic") or {})
                new = set(self.model_ops[m]) - self.ops
                if new:
                    self.ops |= new
                    self.store.set_meta("ops", sorted(self.ops))
                if m not in self._models_seen:
                    self._models_seen.add(m)
                    self.models_done += 1
        elif kind == "verdict":
            self._on_verdict(ev)
        elif kind == "done" and not ev.get("died"):
            m = _model_of(ev["job"])
            self.model_files.pop(m, None)
            self.model_ops.pop(m, None)
            self.model_second.pop(m, None)

    def _on_verdict(self, ev: dict) -> None:
        test_id = ev["test"]
        model = _model_of(ev["job"])
        kind, backend, mode = ev["kind"], ev["backend"], ev["mode"]
        detail = ev.get("detail") or ""
        if kind != "genfail":
            self.session_tests += 1
            self.recent.append((time.monotonic(), 1))
        if kind not in FAILURE_KINDS:
            self.store.record_test(test_id, model, backend, mode, kind, detail, elapsed_s=ev.get("elapsed_s"))
            return
        ops = self.model_ops.get(model, [])
        sig_detail = detail if kind != "mismatch" else (detail or "values")
        if kind == "signal":
            sig_detail = detail.split()[0] if detail else ""
        sig, text = signature(kind, backend, mode, ops=ops, error=ev.get("error"), detail=sig_detail)
        case_id = None
        files = self.model_files.get(model)
        if files and self.store.saved_for_signature(sig) < self.cfg.keep_per_signature:
            case_id = test_id
            self._stage(ev, model, sig, text, files)
        self.store.record_test(test_id, model, backend, mode, kind, detail, signature=sig, sig_text=text,
                               case_id=case_id, elapsed_s=ev.get("elapsed_s"))
        if case_id:
            self._queue_recheck(case_id)

    def _stage(self, ev: dict, model: int, sig: str, text: str, files_b64: dict) -> None:
        from fuzz.campaign import repro

        files = {k: base64.b64decode(v) for k, v in files_b64.items()}
        graph = json.loads(files["graph.json"])
        kind = ev["kind"]
        second = None
        if ev["mode"] == "dynamic":
            # The verdict says what its second call did; a synthesised one (hang, signal) does not
            # know, so the repro replays the model's second call.
            info, dyn_files = self.model_second.get(model, (None, {}))
            second = ev.get("second_call") or info
            if second and second.get("shapes") and not second.get("declined"):
                files.update({k: base64.b64decode(v) for k, v in dyn_files.items()})
        # A repro pays torch start-up and backend warm-up that the worker had paid already.
        timeout = self.cfg.timeout_s + 120 if kind != "hang" else 2 * self.cfg.timeout_s + 10
        case = {
            "format": 1,
            "id": ev["test"],
            "test_id": ev["test"],
            "kind": kind,
            "outcome": f"{kind}: {ev.get('detail') or ''}".strip(": "),
            "detail": ev.get("detail") or "",
            "backend": ev["backend"],
            "mode": ev["mode"],
            "device": self.cfg.device,
            "signature": sig,
            "signature_text": text,
            "error": ev.get("error"),
            "diff": ev.get("diff"),
            "check": ev.get("check") or [],
            **({"second_call": second} if ev["mode"] == "dynamic" else {}),
            "skip": sorted((ev.get("skipped_values") or {}).keys()),
            "skipped_values": ev.get("skipped_values") or {},
            "ops": [display_name(n["op"], n.get("api"), n.get("overload")) for n in graph.get("nodes", [])],
            "graph": graph,
            "versions": repro.versions(),
            "seed": self.cfg.seed,
            "model": model,
            "program_dir": self._program_dirs()[model].name if self.cfg.programs else None,
            "nodes": self.cfg.nodes,
            "created": _now_iso(),
            "reproduces": None,
            "flaky": False,
            "timeout_s": timeout,
            "mem_limit_mb": self.cfg.mem_limit_mb if self.cfg.device != "cuda" else 0,
            "campaign": str(self.out.resolve()),
            "files": sorted(list(files) + ["repro.py", "case.json"]),
        }
        src = repro.repro_source(files["program.py"].decode(), case)
        self.store.stage_case(case, files, src)

    # -- re-checking ----------------------------------------------------------------
    def _queue_recheck(self, case_id: str) -> None:
        self.rechecks_pending += 1
        if self.cfg.recheck:
            self.recheck_q.put(case_id)
        else:
            self.recheck_done.put((case_id, None, "not re-checked (--no-recheck)"))

    def _rechecker(self) -> None:
        while True:
            case_id = self.recheck_q.get()
            if case_id is None:
                return
            try:
                self.recheck_done.put((case_id, *self.recheck(case_id)))
            except Exception as exc:  # never let a re-check kill the campaign
                self.recheck_done.put((case_id, None, f"re-check failed: {exc}"))

    def recheck(self, case_id: str) -> tuple[bool | None, str]:
        """Run the staged case's repro.py alone in a fresh sandboxed process."""
        d = self.store.staging_dir(case_id)
        case = json.loads((d / "case.json").read_text())
        timeout = float(case.get("timeout_s") or 300) + 60
        res = sandbox.run([sys.executable, str(d / "repro.py")], timeout, case.get("mem_limit_mb") or None, cwd=str(d),
                          on_start=self._recheck_procs.add)
        kind = case["kind"]
        if res.timed_out:
            reproduces = kind == "hang"
        elif kind == "hang":
            reproduces = res.returncode != 0
        else:
            reproduces = res.returncode != 0
        last = (res.stdout.strip().splitlines() or res.stderr.strip().splitlines() or [""])[-1][:300]
        how = "timed out" if res.timed_out else sandbox.describe_exit(res.returncode)
        return reproduces, f"fresh process: {how} after {res.elapsed_s:.1f} s; {last}"

    def _drain_rechecks(self) -> None:
        while True:
            try:
                case_id, reproduces, note = self.recheck_done.get_nowait()
            except queue.Empty:
                return
            try:
                self.store.finalize(case_id, reproduces, note)
            except AssayError as exc:
                warn(str(exc))
            self.rechecks_pending -= 1

    def _finish_rechecks(self, grace: float) -> None:
        end = time.monotonic() + grace
        while self.rechecks_pending > 0 and time.monotonic() < end:
            self._drain_rechecks()
            time.sleep(0.2)
        self._drain_rechecks()
        for _ in range(self.cfg.recheck_threads):
            self.recheck_q.put(None)
        # Whatever is still waiting stays staged; --resume re-checks it. Stop re-checks in flight.
        for proc in list(self._recheck_procs):
            if proc.poll() is None:
                sandbox.kill_group(proc)

    # -- statistics -----------------------------------------------------------------
    def elapsed(self) -> float:
        return self.elapsed_before + (time.monotonic() - self.session_start)

    def stats(self) -> dict:
        counts = self.store.outcome_counts()
        tests = self.store.test_count()
        elapsed = self.elapsed()
        now = time.monotonic()
        self.recent = [(t, n) for t, n in self.recent if now - t <= 60]
        window = min(60.0, now - self.session_start)
        return {
            "tests": tests,
            "tests_per_min": round(tests / (elapsed / 60), 2) if elapsed > 0 else 0.0,
            "tests_per_min_last_minute": round(len(self.recent) / (window / 60), 2) if window > 1 else 0.0,
            "session_tests": self.session_tests,
            "outcomes": counts["outcomes"],
            "invalid": counts["other"].get("invalid", 0),
            "unsupported": counts["other"].get("unsupported", 0),
            "skipped": counts["other"].get("skip", 0),
            "generation_failures": counts["other"].get("genfail", 0),
            "flaky": counts["other"].get("flaky", 0),
            "unique_signatures": self.store.unique_signatures(),
            "cases_saved": len(self.store.cases()),
            "rechecks_pending": self.rechecks_pending,
            "per_backend": self.store.per_backend(),
            "models": self.models_done,
            "ops_covered": len(self.ops),
            "elapsed_s": round(elapsed, 1),
            "workers": self.cfg.workers,
            "worker_restarts": getattr(self.executor, "restarts", 0),
            "backends": self.cfg.backends,
            "modes": self.cfg.modes,
            "seed": self.cfg.seed,
            "nodes": self.cfg.nodes,
            "device": self.cfg.device,
            "updated": _now_iso(),
        }

    def _periodic(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_stats >= 5:
            self._last_stats = now
            st = self.stats()
            self.store.set_meta("elapsed_s", st["elapsed_s"])
            self.store.set_meta("models", self.models_done)
            atomic_write(self.out / "stats.json", json.dumps(st, indent=1) + "\n")
            if force or now - self._last_plot >= 10 or not self.plot_rows:
                self._last_plot = now
                row = {"unix_time": round(time.time(), 1), "elapsed_s": st["elapsed_s"], "tests": st["tests"],
                       "tests_per_min": st["tests_per_min"], **st["outcomes"], "invalid": st["invalid"],
                       "unsupported": st["unsupported"], "unique_signatures": st["unique_signatures"],
                       "ops_covered": st["ops_covered"], "models": st["models"]}
                self.plot_rows.append(row)
                buf = io.StringIO()
                w = csv.DictWriter(buf, fieldnames=PLOT_COLUMNS, extrasaction="ignore")
                w.writeheader()
                w.writerows(self.plot_rows)
                atomic_write(self.out / "plot_data.csv", buf.getvalue())
            self._stats_cache = st
        self._status()

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

    def _status(self, final: bool = False) -> None:
        from fuzz.campaign.status import render_lines, render_line

        now = time.monotonic()
        st = getattr(self, "_stats_cache", None)
        if st is None:
            return
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


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _model_of(job_id: str) -> int:
    m = re.search(r"-m(\d+)", job_id)
    return int(m.group(1)) if m else -1
