"""Compiler feedback per test: what the compile stack says it did, as a set of string features.

Read in the worker around each test (``observe``), cheaply, from what torch already keeps:

- ``torch._dynamo.utils.counters``: every category and key (graph breaks with their reasons,
  recompiles, frames, AOT autograd, inductor's ``pattern_matcher_count``, fallbacks...), plus
  inductor's per-pattern matcher counts (turned on by ``TORCHINDUCTOR_PATTERN_MATCH_DEBUG``
  set to a node name that never exists, so nothing is logged);
- ``torch._inductor.metrics``: generated kernels, vectorised kernels, IR nodes before fusion,
  loop reorderings, parallel reductions, to-dtype casts... (every integer metric);
- the generated wrapper code (``GraphLowering.save_output_code``, the hook inductor's own tests
  use): kernel kinds (fused C++, GEMM templates), extern kernels and aten fallbacks called,
  vector types and masks, OpenMP pragmas, tails, casts;
- the scheduler's fusion decisions: each fusion by the kinds of its two nodes (pointwise,
  reduction, template, extern) and what it made, each refusal by its reason (``WhyNoFuse``);
- the post-grad operators lowered (``GraphLowering.run_node``): the decompositions that ran.

Every count becomes one feature ``name:bucket`` with AFL's buckets (1, 2, 3, 4-7, 8-15, 16-31,
32-127, 128+), so a test that reaches a known path a new number of times is new too. Digits in
keys are masked (``aten.addmm_8_32_16`` -> ``aten.addmm_#_#_#``), so shapes are not features.

``observe(mode)`` is a context manager; ``mode`` is ``off`` (nothing), ``counters`` or
``coverage`` (counters, and on top: Python line coverage of ``torch/_inductor``,
``torch/_dynamo`` and ``torch/_functorch`` by ``sys.settrace``; the worker turns it on for one
test in ``COVERAGE_EVERY``). The features, the number of lines covered and the time spent
(``feedback_ms``: reset, read and reduce; the hooks' own cost inside the compile is measured by
``benchmarks/feedback_bench.py``) go back to the driver in the test's verdict event.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import time

MODES = ("off", "counters", "coverage")
COVERAGE_EVERY = 10  # coverage mode: line coverage on one test in this many
# Per-pattern matcher counts are kept by inductor only while this variable is set; a node name
# no graph has keeps its debug printing off.
PATTERN_DEBUG_ENV = "TORCHINDUCTOR_PATTERN_MATCH_DEBUG"
PATTERN_DEBUG_VALUE = "__assay_no_such_node__"
COVERAGE_DIRS = ("torch/_inductor/", "torch/_dynamo/", "torch/_functorch/")
_DIGITS = re.compile(r"\d+")
_KERNEL = re.compile(r"\b(cpp_fused|triton_\w+?|cpp_CppMicroGemm\w*|cpp_\w*[Tt]emplate\w*)_\w*?\d+\b")
_EXTERN = re.compile(r"\bextern_kernels\.(\w+)")
_FALLBACK = re.compile(r"\btorch\.ops\.(\w+\.\w+)")
_MARKERS = {"vec": "at::vec::Vectorized<", "vecmask": "at::vec::VecMask<", "omp_parallel": "#pragma omp parallel",
            "omp_for": "#pragma omp for", "omp_simd": "#pragma omp simd", "welford": "welford",
            "reduction": "reduction(", "tail": "tail", "masked": "masked", "extern_c": "extern \"C\"",
            "atomic": "atomic_add", "to_dtype": "convert<", "index_check": "TORCH_CHECK"}


def bucket(count: int) -> str:
    """AFL's hit-count bucket of ``count`` (>= 1)."""
    for top, name in ((1, "1"), (2, "2"), (3, "3"), (7, "4-7"), (15, "8-15"), (31, "16-31"), (127, "32-127")):
        if count <= top:
            return name
    return "128+"


def _key(text) -> str:
    return _DIGITS.sub("#", str(text)).replace("\n", " ")[:100]


class Observation:
    """What one test's compile reported: ``features`` (sorted strings), ``lines`` covered (coverage mode)."""

    def __init__(self):
        self.counts: dict[str, int] = {}
        self.features: list[str] = []
        self.lines: set | None = None
        self.feedback_ms = 0.0

    def add(self, name: str, count: int = 1) -> None:
        if count > 0:
            self.counts[name] = self.counts.get(name, 0) + int(count)

    def to_event(self) -> dict:
        out = {"features": self.features, "feedback_ms": round(self.feedback_ms, 3)}
        if self.lines is not None:
            out["coverage_lines"] = sorted(self.lines)
        return out


class _Hooks:
    """Inductor hooks installed once per worker; they add to the current ``Observation``."""

    def __init__(self):
        self.current: Observation | None = None
        self.installed = False

    def install(self) -> None:
        if self.installed:
            return
        self.installed = True
        os.environ.setdefault(PATTERN_DEBUG_ENV, PATTERN_DEBUG_VALUE)
        try:
            from torch._inductor.graph import GraphLowering
        except Exception:  # an inductor without these: counters and metrics still work
            return
        hooks = self
        GraphLowering.save_output_code = staticmethod(lambda code: hooks.on_code(code))
        run_node = GraphLowering.run_node

        def counted_run_node(lowering, n):
            obs = hooks.current
            if obs is not None and n.op == "call_function":
                obs.add(f"lower:{_key(n.target)}")
            return run_node(lowering, n)

        GraphLowering.run_node = counted_run_node
        try:
            self._install_scheduler()
        except Exception:  # a scheduler without these hooks: the rest still works
            pass

    def _install_scheduler(self) -> None:
        """Fusion decisions: each fusion by the kinds of its two nodes, each refusal by its reason."""
        from torch._inductor import scheduler

        hooks = self
        fuse_two = scheduler.Scheduler.fuse_two_nodes

        def counted_fuse(sched, node1, node2, fused_nodes):
            out = fuse_two(sched, node1, node2, fused_nodes)
            obs = hooks.current
            if obs is not None:
                obs.add(f"fuse:{_node_kind(node1)}+{_node_kind(node2)}->{type(out).__name__}")
            return out

        scheduler.Scheduler.fuse_two_nodes = counted_fuse
        why = scheduler.WhyNoFuse.__call__

        def counted_why(self, reason, *args):
            obs = hooks.current
            if obs is not None:
                obs.add(f"nofuse:{_key(reason)[:60]}")
            return why(self, reason, *args)

        scheduler.WhyNoFuse.__call__ = counted_why

    def on_code(self, code: str) -> None:
        obs = self.current
        if obs is None:
            return
        for m in _KERNEL.finditer(code):
            obs.add(f"kernel:{m.group(1)}")
        for m in _EXTERN.finditer(code):
            obs.add(f"extern:{m.group(1)}")
        for m in _FALLBACK.finditer(code):
            obs.add(f"fallback:{m.group(1)}")
        for name, marker in _MARKERS.items():
            n = code.count(marker)
            if n:
                obs.add(f"code:{name}", n)


HOOKS = _Hooks()


def _node_kind(node) -> str:
    try:
        if node.is_template():
            return "template"
        if node.is_reduction():
            return "reduction"
        if node.is_extern():
            return "extern"
    except Exception:
        pass
    return "pointwise" if type(node).__name__ == "SchedulerNode" else type(node).__name__


def _reset() -> None:
    from torch._dynamo.utils import counters

    counters.clear()
    try:
        import torch._inductor.metrics as metrics

        metrics.reset()
    except Exception:
        pass


def _read(obs: Observation) -> None:
    from torch._dynamo.utils import counters

    for category, keys in list(counters.items()):
        for key, n in list(keys.items()):
            if isinstance(n, (int, float)) and n > 0:
                obs.add(f"{_key(category)}:{_key(key)}", int(n))
    try:
        import torch._inductor.metrics as metrics

        for name in dir(metrics):
            value = getattr(metrics, name)
            if not name.startswith("_") and name.islower() and isinstance(value, int) and not isinstance(value, bool):
                obs.add(f"metric:{name}", value)
            elif name == "cpp_outer_loop_fused_inner_counts" and isinstance(value, list):
                obs.add("metric:outer_loop_fused", len(value))
    except Exception:
        pass
    obs.features = sorted(f"{name}:{bucket(n)}" for name, n in obs.counts.items())


class _LineTracer:
    """Lines executed in the compiler's Python (``COVERAGE_DIRS``), by ``sys.settrace`` on this thread."""

    def __init__(self):
        self.lines: set = set()
        self._files: dict = {}

    def _wanted(self, filename: str):
        short = self._files.get(filename)
        if short is None:
            path = filename.replace(os.sep, "/")
            i = max((path.rfind(d) for d in COVERAGE_DIRS), default=-1)
            short = path[i:] if i >= 0 else ""
            self._files[filename] = short
        return short

    def global_trace(self, frame, event, arg):
        short = self._wanted(frame.f_code.co_filename)
        if not short:
            return None
        lines = self.lines

        def local(frame, event, arg):
            if event == "line":
                lines.add(f"{short}:{frame.f_lineno}")
            return local

        lines.add(f"{short}:{frame.f_lineno}")
        return local


@contextlib.contextmanager
def observe(mode: str, lines: bool = False):
    """Collect one test's feedback: ``with observe("counters") as obs: run the test``; then
    ``obs.to_event()``. ``lines``: also trace line coverage (only in ``coverage`` mode)."""
    obs = Observation()
    if mode not in ("counters", "coverage"):
        yield obs
        return
    HOOKS.install()  # once per worker (imports inductor): not a per-test cost
    t0 = time.perf_counter()
    _reset()
    HOOKS.current = obs
    tracer = _LineTracer() if (mode == "coverage" and lines) else None
    spent = time.perf_counter() - t0
    if tracer is not None:
        sys.settrace(tracer.global_trace)
        threading.settrace(tracer.global_trace)
    try:
        yield obs
    finally:
        if tracer is not None:
            sys.settrace(None)
            threading.settrace(None)
            obs.lines = tracer.lines
        HOOKS.current = None
        t1 = time.perf_counter()
        try:
            _read(obs)
        except Exception:  # feedback never costs a verdict
            obs.features = sorted(f"{n}:{bucket(c)}" for n, c in obs.counts.items())
        obs.feedback_ms = (spent + time.perf_counter() - t1) * 1000
