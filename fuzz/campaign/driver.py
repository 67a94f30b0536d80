"""The campaign driver: feed workers, judge, save, resume.

The driver generates nothing and runs nothing under test itself: it hands *jobs*
(one model, every backend x mode on it; ``fuzz.campaign.jobs``) to an ``Executor``
(``fuzz.campaign.executor``), journals every ``Verdict`` it gets back and stages a case for
a failure (``fuzz.campaign.staging``, ``fuzz.campaign.store``), re-checks every staged case
by running its ``repro.py`` in a fresh sandboxed process (``fuzz.campaign.rechecks``:
``reproduces: true/false``; false = flaky, kept but not counted as a bug), and keeps
``stats.json``/``plot_data.csv`` and a status display up to date (``fuzz.campaign.progress``).

Test ids are deterministic: ``s<seed>-m<model:06d>-<backend>-<mode>``; model ``i`` is
``fuzz.gen.generate.generate_model_for_index(rules, cfg, seed, i)``, the same model as
``assay gen --seed <seed>`` writes as number ``i``. A case's id is its test id. So after a
crash (even ``kill -9``) ``--resume`` re-runs exactly the tests missing from the
journal, re-checks staged cases, and reconciles case directories with the index:
nothing is lost and nothing is saved twice.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

from fuzz.campaign.batch import batch_jobs
from fuzz.campaign.config import Config, load_or_create, session_seconds
from fuzz.campaign.diskspace import short_of_space
from fuzz.campaign.failure import sign
from fuzz.campaign.jobs import job_stream, model_of, program_dirs
from fuzz.campaign.progress import Progress
from fuzz.campaign.rechecks import Rechecker
from fuzz.campaign.seeds import SeedPool
from fuzz.campaign.staging import ModelFiles, stage_failure
from fuzz.campaign.store import CrashStore, warn
from fuzz.campaign.status import fmt_time, render_summary
from fuzz.campaign.verdict import Kind, Verdict

SPACE_CHECK_S = 10.0  # how often the driver checks free disk space (fuzz.campaign.diskspace)


class Campaign:
    """One campaign in ``cfg.out``: ``run()`` feeds jobs to the executor until the time is up,
    journaling each verdict (``on_verdict``) and re-checking every case it stages."""

    def __init__(self, cfg: Config, resume: bool = False, executor=None, stream=None):
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.stream = stream or sys.stderr
        load_or_create(cfg, resume, self.stream)
        self.store = CrashStore(self.out)
        self.executor = executor
        self.models = ModelFiles()
        self._models_seen: set = set()
        self.ops = set(self.store.get_meta("ops", []) or [])
        self.models_done = int(self.store.get_meta("models", 0) or 0)
        self.rechecks = Rechecker(self.store, cfg.recheck, cfg.recheck_threads)
        self.budget_s = cfg.time_s  # the campaign's whole budget, as given or saved
        self.progress = Progress(cfg, self.store, self.stream)
        cfg.time_s = session_seconds(cfg, self.progress.elapsed_before)  # this run's share of it
        self.signatures_before = self.store.unique_signatures()
        self.feedback = SeedPool(self.out, cfg.feedback, cfg.seed, programs=bool(cfg.programs), knobs=cfg.knobs,
                                 shares=cfg.shares)

    def jobs(self):
        return batch_jobs(job_stream(self.cfg, self.store.done_tests(), self.store.max_model(), self.feedback.job_extra),
                          self.cfg.batch)

    # -- running --------------------------------------------------------------------
    def _make_executor(self):
        from fuzz.campaign.executor import LocalExecutor

        if self.cfg.executor == "ray":
            from fuzz.campaign.ray_executor import RayExecutor

            return RayExecutor(self.cfg.workers, self.cfg.backends, address=self.cfg.address, device=self.cfg.device,
                               timeout_s=self.cfg.timeout_s, mem_limit_mb=self.cfg.mem_limit_mb)

        cores = os.cpu_count() or 1
        threads = max(1, cores // max(1, self.cfg.workers))
        return LocalExecutor(self.cfg.workers, self.cfg.backends, device=self.cfg.device,
                             timeout_s=self.cfg.timeout_s, mem_limit_mb=self.cfg.mem_limit_mb,
                             log_dir=self.out / "logs", threads=threads)

    def run(self) -> int:
        if self.cfg.time_s <= 0:
            self.stream.write(f"assay fuzz: the campaign in {self.out} has spent its budget of "
                              f"{fmt_time(self.budget_s)}; continue it with --resume {self.out} --time 1h (or any "
                              "length)\n")
            self.store.close()
            return 0
        self._resume_pending()
        jobs = self.jobs()
        exhausted = False
        executor = self.executor = self.executor or self._make_executor()
        self.rechecks.start()
        deadline = time.monotonic() + self.cfg.time_s
        interrupted = False
        no_space = None
        next_space_check = 0.0
        old_term = None
        if threading.current_thread() is threading.main_thread():
            old_term = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            executor.start()
            while time.monotonic() < deadline:
                if time.monotonic() >= next_space_check:
                    next_space_check = time.monotonic() + SPACE_CHECK_S
                    no_space = short_of_space(self.out)
                    if no_space:
                        break
                while not exhausted and executor.wants() > 0:
                    job = next(jobs, None)
                    if job is None:
                        exhausted = True
                        break
                    executor.submit(job)
                for ev in executor.poll(min(0.5, max(0.01, deadline - time.monotonic()))):
                    self.on_event(ev)
                self.rechecks.drain()
                self.progress.update(self._session)
                if exhausted and executor.in_flight() == 0:
                    break
        except KeyboardInterrupt:
            interrupted = True
        finally:
            executor.shutdown()
            self.feedback.save()
            try:
                self.rechecks.finish(grace=0 if interrupted else self.cfg.recheck_grace_s)
            except KeyboardInterrupt:
                self.rechecks.finish(grace=0)
            self.progress.update(self._session, force=True)
            self.progress.show(final=True)
            if old_term is not None:
                signal.signal(signal.SIGTERM, old_term)
            new_signatures = self.store.unique_signatures() - self.signatures_before
            self._summary(new_signatures)
            self.store.close()
        if no_space:
            self.stream.write(f"assay fuzz: stopped: {no_space}; the cases saved so far are kept; free some space "
                              f"and continue with: assay fuzz --resume {self.out}\n")
            return 4
        if interrupted:
            self.stream.write(f"assay: stopped; continue with: assay fuzz --resume {self.out} (the rest of its "
                              f"{fmt_time(self.budget_s)} budget; add --time T to run T more)\n")
            return 130
        if self.progress.session_tests == 0 and not exhausted:
            self.stream.write(f"assay fuzz: no test finished in {fmt_time(self.cfg.time_s)} (starting the workers "
                              "and the first compile take about a minute); give a longer --time\n")
            return 3
        if self.cfg.fail_on_find and new_signatures > 0:
            return 1
        return 0

    def _summary(self, new_signatures: int) -> None:
        """The closing lines: what this run did, where it is, what to run next."""
        self.stream.write(render_summary(self.progress.latest or {}, self.progress.session_tests, new_signatures, self.out))

    def _session(self) -> dict:
        return {"models": self.models_done, "ops_covered": len(self.ops),
                "rechecks_pending": self.rechecks.pending, "worker_restarts": getattr(self.executor, "restarts", 0),
                "feedback": self.feedback.stats()}

    def _resume_pending(self) -> None:
        """After a crash: re-check staged cases whose test is journaled, drop the others, fix the index."""
        done = self.store.done_tests()
        for d in self.store.staged():
            if d.name in done:
                self.rechecks.queue(d.name)
            else:
                shutil.rmtree(d, ignore_errors=True)  # its test was not journaled: it runs again
        fixed = self.store.reconcile()
        if fixed["added"] or fixed["removed"]:
            warn(f"index reconciled with case directories: {fixed['added']} added, {fixed['removed']} removed")

    # -- events ---------------------------------------------------------------------
    def on_event(self, ev: dict) -> None:
        kind = ev.get("event")
        if kind == "model":
            m = ev.get("model")
            if ev.get("ok"):
                self.models.add(ev)
                new = set(self.models.ops[m]) - self.ops
                if new:
                    self.ops |= new
                    self.store.set_meta("ops", sorted(self.ops))
                if m not in self._models_seen:
                    self._models_seen.add(m)
                    self.models_done += 1
        elif kind == "verdict":
            model = model_of(ev["job"])
            self.feedback.on_verdict(ev, model, self.models.files.get(model), self.progress.elapsed())
            verdict = Verdict.from_event(ev)
            if verdict.knobs is None:  # a verdict the executor made for a dead worker
                verdict.knobs = self.feedback.knobs_of(model)
            self.on_verdict(ev["test"], model, verdict)
        elif kind == "done" and not ev.get("died"):
            self.models.forget(model_of(ev["job"]))

    def on_verdict(self, test_id: str, model: int, verdict: Verdict) -> None:
        """Journal one test; stage a case for a failure while its signature has fewer than ``--keep``."""
        if verdict.kind != Kind.GENFAIL:
            self.progress.count_test()
        failure = sign(verdict, self.models.ops.get(model, []))
        if failure is None:
            self.store.record_test(test_id, model, verdict)
            return
        case_id = None
        if self.models.files.get(model) and self.store.saved_for_signature(failure.id) < self.cfg.keep_per_signature:
            case_id = test_id
            program_dir = program_dirs(self.cfg.programs)[model].name if self.cfg.programs else None
            stage_failure(self.store, self.cfg, self.models, test_id, model, verdict, failure, program_dir)
        self.store.record_test(test_id, model, verdict, failure, case_id=case_id)
        if case_id:
            self.rechecks.queue(case_id)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt
