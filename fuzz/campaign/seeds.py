"""A guided campaign's seed pool: tests with new compiler features keep their model as a seed,
and later jobs mutate seeds (programs through the rules, compiler settings through knobs).

Everything lives in ``<campaign>/seeds/`` and survives ``--resume``:

- ``pool.json``: every feature seen (with when: campaign seconds), the seeds (features they
  brought, energy counters), how many new features each mutator and knob led to, the time of
  the last new feature; rewritten atomically at most every ``SAVE_EVERY_S`` and at the end;
- ``<seed id>/``: the seed's program files (a model with a failing test is a case, never a seed) (``graph.json``, ``program.py``, tensors), written
  before ``pool.json`` names it;
- ``jobs.jsonl``: one line per mutant job handed out (model index, source, knobs), so a
  resumed campaign re-runs an unfinished model as the same mutant;
- ``coverage.json`` (``--feedback coverage``): the union of Python lines covered.

Scheduling (``job_extra``, asked by ``fuzz.campaign.jobs.job_stream`` per new model): with the
pool non-empty, a share of jobs (``mutant_share``) mutate a seed picked by energy (AFL-style: more for
seeds that brought more features and whose mutants found new ones, less the more often a seed
was picked, a bonus for young seeds), with a mutator (``fuzz.gen.mutate``) drawn by its record
of new features per try; with ``KNOB_SHARE`` a knob is added (``fuzz.campaign.knobs``), and a
``knobs`` mutant runs the seed's own program under new knobs. The rest are fresh models as in
a blind campaign. Decisions draw from ``random.Random(seed, index)`` over the pool's state then.
"""

from __future__ import annotations

import base64
import bisect
import json
import math
import os
import random
import time
from pathlib import Path

from fuzz.campaign import knobs as knob_table
from fuzz.campaign.feedback import COVERAGE_EVERY, MODES
from fuzz.campaign.store import atomic_write, warn
from fuzz.campaign.verdict import FAILURE_KINDS
from fuzz.gen.mutate import MUTATORS

POOL_DIR = "seeds"
MEASURE_ENV = "ASSAY_FEEDBACK_MEASURE"  # benchmarks only: a blind campaign's features, counted not used
# The share of mutants follows what each source has been worth: new-feature models per second of
# test time, fresh models against mutants (mutants can be slower: spliced, under cpp_wrapper or
# max_autotune), between these bounds; PRIOR_S seconds with one find each to start from.
MUTANT_SHARE_BOUNDS = (0.1, 0.8)
PRIOR_S = 60.0
KNOB_SHARE = 0.3
SAVE_EVERY_S = 5.0
JOB_MUTATORS = (*MUTATORS, "knobs")
FAILING = {k.value for k in FAILURE_KINDS}
# A mutator's or knob's first tries are weighted as if one in PRIOR_TRIES found something.
PRIOR_TRIES = 4


class SeedPool:
    def __init__(self, out, mode: str = "counters", seed: int = 0, programs: bool = False, knobs=(),
                 shares: dict | None = None):
        if mode not in MODES:
            raise ValueError(f"feedback mode {mode!r}")
        self.base_knobs = knob_table.settings_of(knobs or ())  # --knobs: set for every test
        self.shares = shares  # the campaign's policy shares, for fresh models' sources
        self.mode = mode
        self.seed = seed
        self.mutate = mode != "off" and not programs  # saved programs: features only, no generator
        # What the workers collect. A blind campaign (off) collects nothing, unless a benchmark asks
        # it to measure what blind generation reaches (MEASURE_ENV=counters|coverage): then features
        # are counted exactly as in a guided campaign, and never used.
        measure = os.environ.get(MEASURE_ENV, "")
        self.collect = mode if mode != "off" else (measure if measure in MODES else "off")
        self.dir = Path(out) / POOL_DIR
        self.features: dict[str, float] = {}
        self.seeds: dict[str, dict] = {}
        self.credit: dict[str, dict] = {"mutator": {}, "knob": {}}
        self.last_new_s: float | None = None
        self.lines: set = set()
        self.jobs: dict[int, dict] = {}      # model -> its mutant job (source, knobs, mutation)
        self.feedback_ms: list = []          # this session's per-test cost
        self._seen_models: set = set()
        self._found_models: set = set()
        self._failed_models: set = set()
        self._dirty = False
        self._saved_at = 0.0
        self._load()
        self._mutant_models = sorted(self.jobs)

    # -- state on disk ----------------------------------------------------------------
    def _load(self) -> None:
        path = self.dir / "pool.json"
        if path.exists():
            try:
                data = json.loads(path.read_text())
                self.features = {str(k): float(v) for k, v in data.get("features", {}).items()}
                self.seeds = {k: v for k, v in data.get("seeds", {}).items() if (self.dir / k / "graph.json").is_file()}
                self.credit = data.get("credit") or self.credit
                self.last_new_s = data.get("last_new_s")
            except (OSError, ValueError, AttributeError) as exc:
                warn(f"{path}: unreadable seed pool ({exc}); starting an empty one")
        cov = self.dir / "coverage.json"
        if cov.exists():
            try:
                self.lines = set(json.loads(cov.read_text()))
            except (OSError, ValueError, TypeError):
                warn(f"{cov}: unreadable coverage; starting it again")
        jobs = self.dir / "jobs.jsonl"
        if jobs.exists():
            for line in jobs.read_text().splitlines():
                try:
                    row = json.loads(line)
                    self.jobs[int(row["model"])] = row["job"]
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut by a crash

    def save(self, force: bool = True) -> None:
        if not self._dirty or (not force and time.monotonic() - self._saved_at < SAVE_EVERY_S):
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        data = {"features": self.features, "seeds": self.seeds, "credit": self.credit, "last_new_s": self.last_new_s,
                "mode": self.mode}
        atomic_write(self.dir / "pool.json", json.dumps(data, indent=0, sort_keys=True) + "\n")
        if self.lines:
            atomic_write(self.dir / "coverage.json", json.dumps(sorted(self.lines)) + "\n")
        self._dirty = False
        self._saved_at = time.monotonic()

    # -- scheduling ---------------------------------------------------------------------
    def job_extra(self, index: int, fresh: bool) -> dict | None:
        """What to add to model ``index``'s job: the feedback mode and, for a mutant, its source
        and knobs. ``fresh``: the model was never handed out (else a recorded mutant is reused)."""
        base = {"knobs": self.base_knobs} if self.base_knobs else {}
        if self.collect == "off":
            return base or None
        extra: dict = {"feedback": self.collect, **base}
        if self.collect == "coverage" and index % COVERAGE_EVERY == 0:
            extra["coverage"] = True
        if index in self.jobs:  # handed out before (a resumed campaign): the same mutant again
            return {**extra, **self.jobs[index]}
        if fresh and self.mutate and self.seeds:
            rng = random.Random(f"assay-schedule:{self.seed}:{index}")
            if rng.random() < self.mutant_share():
                return {**extra, **self._hand_out(index, self._mutant(rng, index))}
        k = self.gen_index(index)
        if k != index:  # fresh models keep their own numbers: blind generation's models, none skipped
            extra["source"] = {"gen": {"seed": self.seed, "index": k, "shares": self.shares}}
        return extra

    def gen_index(self, model: int) -> int:
        """The generator index of fresh model ``model``: its number less the mutants before it, so
        a guided campaign's fresh models are a blind campaign's first ones, in order."""
        return model - bisect.bisect_left(self._mutant_models, model)

    def _hand_out(self, index: int, job: dict) -> dict:
        self.jobs[index] = job
        bisect.insort(self._mutant_models, index)
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "jobs.jsonl", "a") as fh:
            fh.write(json.dumps({"model": index, "job": job}) + "\n")
        return job

    def mutant_share(self) -> float:
        """The chance that the next model is a mutant: mutants' new-feature models per test second
        against fresh models', clamped to ``MUTANT_SHARE_BOUNDS``."""
        rows = self.credit.get("source", {})

        def rate(name):
            row = rows.get(name, {})
            return (row.get("new", 0) + 1) / (row.get("seconds", 0.0) + PRIOR_S)

        fresh, mutant = rate("fresh"), rate("mutant")
        lo, hi = MUTANT_SHARE_BOUNDS
        return min(hi, max(lo, mutant / (mutant + fresh)))

    def _weights(self, kind: str, names) -> list[float]:
        rows = self.credit.setdefault(kind, {})
        return [(rows.get(n, {}).get("new", 0) + 1) / (rows.get(n, {}).get("tries", 0) + PRIOR_TRIES) for n in names]

    def energy(self, sid: str, newest: float) -> float:
        """How often seed ``sid`` is picked, relatively (``newest``: when the youngest seed was added)."""
        s = self.seeds[sid]
        e = math.sqrt(1 + s.get("new", 1)) * (1 + s.get("finds", 0)) / math.sqrt(1 + s.get("picks", 0))
        if newest and s.get("added_s", 0) >= 0.75 * newest:
            e *= 1.5  # young seeds first, as AFL does
        return e

    def _mutant(self, rng: random.Random, index: int) -> dict:
        ids = sorted(self.seeds)
        newest = max((v.get("added_s", 0) for v in self.seeds.values()), default=0)
        sid = rng.choices(ids, weights=[self.energy(i, newest) for i in ids])[0]
        seed = self.seeds[sid]
        seed["picks"] = seed.get("picks", 0) + 1
        self._dirty = True
        names = [m for m in JOB_MUTATORS if m != "splice" or len(ids) > 1]
        mutator = rng.choices(names, weights=self._weights("mutator", names))[0]
        seed_dir = str((self.dir / sid).resolve())
        knobs = {**self.base_knobs, **(seed.get("knobs") or {})}
        if mutator == "knobs":
            source = {"program_dir": seed_dir}
            knobs.update(knob_table.draw(rng, self._knob_weights()))
        else:
            spec = {"mutator": mutator, "seed_dir": seed_dir, "rng": f"{self.seed}:{index}",
                    "origin": seed.get("origin")}
            if mutator == "splice":
                spec["other_dir"] = str((self.dir / rng.choice([i for i in ids if i != sid])).resolve())
            source = {"mutant": spec}
            if rng.random() < KNOB_SHARE:
                knobs.update(knob_table.draw(rng, self._knob_weights(), most=1))
        return {"source": source, "knobs": knobs or None, "mutation": {"seed": sid, "mutator": mutator}}

    def _knob_weights(self) -> dict:
        names = list(knob_table.KNOBS)
        return dict(zip(names, self._weights("knob", names)))

    def knobs_of(self, model: int) -> dict | None:
        return (self.jobs.get(model) or {}).get("knobs") or self.base_knobs or None

    # -- results ------------------------------------------------------------------------
    def on_verdict(self, ev: dict, model: int, files: dict | None, elapsed_s: float) -> list[str]:
        """Take one test's features; keep its model as a seed when they are new. The new ones."""
        if self.collect == "off":
            return []
        if isinstance(ev.get("feedback_ms"), (int, float)):
            self.feedback_ms.append(float(ev["feedback_ms"]))
        feats = [f for f in ev.get("features") or [] if isinstance(f, str)]
        new = [f for f in feats if f not in self.features]
        lines = [x for x in ev.get("coverage_lines") or [] if isinstance(x, str) and x not in self.lines]
        if lines:
            self.lines.update(lines)
            self._dirty = True
        for f in new:
            self.features[f] = round(elapsed_s, 1)
        job = self.jobs.get(model)
        first = model not in self._seen_models
        self._seen_models.add(model)
        found = bool(new) and model not in self._found_models  # a model is credited once, by its first new test
        if new:
            self._found_models.add(model)
        source = self.credit.setdefault("source", {}).setdefault(
            "mutant" if job and job.get("mutation") else "fresh", {"tries": 0, "new": 0, "seconds": 0.0})
        source["tries"] += first
        source["new"] += found
        if isinstance(ev.get("elapsed_s"), (int, float)):
            source["seconds"] = round(source.get("seconds", 0.0) + float(ev["elapsed_s"]), 2)
        if job and job.get("mutation"):
            mutation = job["mutation"]
            self._credit("mutator", mutation["mutator"], found, first)
            for k in job.get("knobs") or {}:
                self._credit("knob", k, found, first)
            if found and mutation["seed"] in self.seeds:
                self.seeds[mutation["seed"]]["finds"] = self.seeds[mutation["seed"]].get("finds", 0) + 1
        if ev.get("kind") in FAILING:
            # As AFL keeps crashes out of its queue: a failing model is a case, not a seed (its
            # mutants would mostly find the same failure again).
            self._failed_models.add(model)
            if self.seeds.pop(f"m{model:06d}", None) is not None:
                self._dirty = True
        if new:
            self.last_new_s = round(elapsed_s, 1)
            self._dirty = True
            if self.mutate and files and "graph.json" in files and model not in self._failed_models:
                self._add_seed(model, files, new, elapsed_s, job)
        self.save(force=False)
        return new

    def _credit(self, kind: str, name: str, new: bool, first: bool) -> None:
        row = self.credit.setdefault(kind, {}).setdefault(name, {"tries": 0, "new": 0})
        if first:
            row["tries"] += 1
        if new:
            row["new"] += 1
        self._dirty = True

    def _add_seed(self, model: int, files: dict, new: list, elapsed_s: float, job: dict | None) -> None:
        sid = f"m{model:06d}"
        graph = json.loads(base64.b64decode(files["graph.json"]))
        if (graph.get("meta") or {}).get("eager_raises"):
            return  # a program eager rejects (fuzz.gen.error_calls): its mutants would be valid models of nothing
        if sid in self.seeds:
            self.seeds[sid]["new"] = self.seeds[sid].get("new", 0) + len(new)
            return
        d = self.dir / sid
        d.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            atomic_write(d / name, base64.b64decode(data))
        origin = (graph.get("meta") or {}).get("origin")
        if origin is None and not job:  # a fresh model: (campaign seed, generator index, its policy)
            origin = {"seed": self.seed, "index": self.gen_index(model), "policy": (graph.get("meta") or {}).get("policy")}
        self.seeds[sid] = {"model": model, "new": len(new), "added_s": round(elapsed_s, 1), "picks": 0, "finds": 0,
                           "knobs": (job or {}).get("knobs"), "origin": origin,
                           "from": (job or {}).get("mutation"), "ops": len(graph.get("nodes", []))}

    def stats(self) -> dict:
        if self.collect == "off":
            return {"mode": "off"}
        out = {"mode": self.mode, "features": len(self.features), "seeds": len(self.seeds),
               "last_new_s": self.last_new_s, "mutants": len(self.jobs)}
        if self.feedback_ms:
            out["feedback_ms_mean"] = round(sum(self.feedback_ms) / len(self.feedback_ms), 3)
        if self.collect == "coverage":
            out["coverage_lines"] = len(self.lines)
        if self.collect != self.mode:
            out["measured_only"] = self.collect
        return out
