"""Keep freed heap memory in the process: the generator's Z3 contexts are otherwise paged in anew.

Each generated model gets a fresh Z3 context (``fuzz.gen.solver``: its answers must not depend on
what the process solved before). Making one allocates about 11 MB; with glibc's default settings
the freed context and torch's freed tensors shrink the heap's top back to the OS, so the next
context page-faults all of it in again: ~3,000 minor faults and 4-5 ms per model, more than the
rest of the model's Z3 time. A 64 MB top pad (``M_TOP_PAD``) keeps that much of the heap's top
mapped when it shrinks, and the context costs 0.5 ms (docs/generator.md, "Generation speed").

The pad alone stopped working once models held tensors of 10^4-10^5 elements: glibc serves a
block above its mmap threshold with its own ``mmap`` and raises that threshold to the largest such
block freed, so some of a context's tables went to fresh mappings again (measured in the fifteenth
session: 877-969 minor faults and 1.8-2.0 ms per context). A fixed 32 MB mmap threshold
(``M_MMAP_THRESHOLD``, which also stops glibc moving it) keeps every block below it in the heap,
where the pad keeps it mapped: 6-12 faults and 1.1-1.3 ms per context
(``python benchmarks/gen_profile.py stages --models 400`` prints both).
The price: up to 64 MB more of the process stays resident after it frees memory, and blocks of
up to 32 MB are reused from the heap instead of being returned to the OS one by one.
glibc only; elsewhere, and when the variable ``MALLOC_TOP_PAD_`` is already set, nothing changes.
"""

from __future__ import annotations

import os

M_TOP_PAD = -2          # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
TOP_PAD_BYTES = 64 << 20
MMAP_THRESHOLD_BYTES = 32 << 20

_done = False


def keep_freed_memory() -> bool:
    """Set glibc's top pad for this process, once; True when it is set (now or before)."""
    global _done
    if _done:
        return True
    _done = True
    if "MALLOC_TOP_PAD_" in os.environ:
        return True
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
            libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        return bool(libc.mallopt(M_TOP_PAD, TOP_PAD_BYTES))
    except (OSError, AttributeError):
        return False
