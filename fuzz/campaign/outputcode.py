"""What inductor generated for one test: does its C++ have a vectorised loop, an OpenMP parallel region?

Inductor writes each compiled graph as a Python module (its *output code*) whose C++ kernels are
string literals in it, and loads that module through ``torch._inductor.codecache.PyCodeCache``,
on a fresh compile and on an FX-graph-cache hit alike. ``capture`` wraps the one loading function
(``PyCodeCache.load_by_key_path``) while a test compiles and runs, collecting the paths it loads;
``summarise`` reads those files. It runs inside the worker (the sandboxed child), needs no logging
configuration and no debug directory, and changes nothing inductor does.

- ``vectorised``: a kernel uses ``at::vec::Vectorized`` (inductor's SIMD loops, main loop + tail).
- ``parallel``: a kernel has a ``#pragma omp parallel`` region. Inductor emits one only when it
  compiles for more than one thread (``parallel_num_threads() > 1``) and the loop nest holds enough
  work (``config.cpp.min_chunk_size`` per thread), so the inductor backend compiles for at least two
  threads (``fuzz.campaign.backends``).
"""

from __future__ import annotations

import contextlib

VECTOR_MARKS = ("at::vec::Vectorized", "at::vec::VectorizedN", "Vectorized<")
PARALLEL_MARK = "#pragma omp parallel"


@contextlib.contextmanager
def capture():
    """Yields a list that collects the paths of the output-code modules inductor loads in the block."""
    paths: list[str] = []
    try:
        from torch._inductor.codecache import PyCodeCache
    except Exception:  # no inductor in this torch: nothing to capture
        yield paths
        return
    original = PyCodeCache.__dict__.get("load_by_key_path")
    if not isinstance(original, classmethod):
        yield paths
        return

    def load_by_key_path(cls, key, path, *args, **kwargs):
        paths.append(str(path))
        return original.__func__(cls, key, path, *args, **kwargs)

    PyCodeCache.load_by_key_path = classmethod(load_by_key_path)
    try:
        yield paths
    finally:
        PyCodeCache.load_by_key_path = original


def summarise(paths: list[str]) -> dict | None:
    """``{"modules", "cpp_kernels", "vectorised", "parallel"}`` of the loaded output code; None if none
    was loaded (the backend compiled nothing through inductor, or failed before)."""
    texts = []
    for p in dict.fromkeys(paths):
        try:
            with open(p, encoding="utf-8", errors="replace") as fh:
                texts.append(fh.read())
        except OSError:
            continue
    if not texts:
        return None
    return classify("\n".join(texts), len(texts))


def classify(source: str, modules: int = 1) -> dict:
    """The features of output-code ``source`` (one or more modules' text)."""
    return {"modules": modules,
            "cpp_kernels": source.count("cpp_pybinding("),
            "vectorised": any(m in source for m in VECTOR_MARKS),
            "parallel": PARALLEL_MARK in source}
