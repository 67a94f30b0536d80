"""Keep freed heap memory in the process: the generator's Z3 contexts are otherwise paged in anew.

Each generated model gets a fresh Z3 context (``fuzz.gen.solver``: its answers must not depend on
what the process solved before). Making one allocates about 11 MB; with glibc's default settings
the freed context and torch's freed tensors shrink the heap's top back to the OS, so the next
context page-faults all of it in again: ~3,000 minor faults and 4-5 ms per model, more than the
rest of the model's Z3 time. A 64 MB top pad (``M_TOP_PAD``) keeps that much of the heap's top
mapped when it shrinks, and the context costs 0.5 ms (docs/generator.md, "Generation speed").
The price: up to 64 MB more of the process stays resident after it frees memory.
glibc only; elsewhere, and when the variable ``MALLOC_TOP_PAD_`` is already set, nothing changes.
"""

from __future__ import annotations

import os

M_TOP_PAD = -2          # glibc's mallopt parameter number (malloc.h)
TOP_PAD_BYTES = 64 << 20

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
        return bool(libc.mallopt(M_TOP_PAD, TOP_PAD_BYTES))
    except (OSError, AttributeError):
        return False
