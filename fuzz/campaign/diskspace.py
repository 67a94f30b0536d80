"""Free disk space for a campaign: compilers write their kernels, caches and precompiled headers
under the temp dir, and the store writes cases under the campaign folder. On a full disk a compile
fails with a C++ error that would be saved as a crash of the compiler, so the driver stops first.

``ASSAY_MIN_FREE_MB`` sets the floor (default ``MIN_FREE_MB``).
"""

from __future__ import annotations

import os
import shutil
import tempfile

MIN_FREE_MB = 1024


def min_free_mb() -> int:
    """The floor in MB: ``ASSAY_MIN_FREE_MB`` when it is a whole number, else ``MIN_FREE_MB``."""
    text = os.environ.get("ASSAY_MIN_FREE_MB", "")
    return int(text) if text.strip().isdigit() else MIN_FREE_MB


def short_of_space(out_dir) -> str | None:
    """A one-line reason when the campaign folder's or the temp dir's file system has less than the
    floor free, else None."""
    floor = min_free_mb()
    for label, path in (("the campaign folder", os.fspath(out_dir)), ("the temp dir", tempfile.gettempdir())):
        try:
            free = shutil.disk_usage(path).free
        except OSError:
            continue
        if free < floor * 2**20:
            return (f"only {free // 2**20} MB free on {label} ({path}), under the {floor} MB a campaign keeps "
                    "free (compilers write kernels and caches there; ASSAY_MIN_FREE_MB sets it)")
    return None
