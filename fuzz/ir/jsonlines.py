"""Gzip JSON-lines files, the form of both corpus files (``traces*.jsonl.gz``, ``rules.jsonl.gz``).

Written deterministically (fixed gzip mtime and name, sorted keys, compact separators, one
object per line) and atomically (a ``.tmp`` beside the file, then a rename), so the same
records give the same bytes. Read back line by line; a missing, truncated or corrupt file is a
one-line ``AssayError`` that says how to rebuild it.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import zlib
from typing import Any, Callable, Iterable, Iterator

from fuzz.errors import AssayError


def write_json_lines(path: str | os.PathLike, objects: Iterable[dict]) -> int:
    """Write ``objects`` as gzip JSON lines (see the module doc); returns how many."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    count = 0
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        with io.TextIOWrapper(gz, encoding="utf-8") as fh:
            for obj in objects:
                fh.write(json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n")
                count += 1
    os.replace(tmp, path)
    return count


def read_json_lines(path: str | os.PathLike, decode: Callable[[Any], Any], *, missing: str, item: str,
                    what: str, rebuild: str) -> Iterator[Any]:
    """``decode(obj)`` for every line of a ``.jsonl.gz`` (or plain ``.jsonl``) file.

    ``missing``: the whole message when the file does not exist; ``item``: what one line is
    ("trace record"); ``what``: what the file is ("trace file"); ``rebuild``: the command that
    makes it again. ``decode`` signals a bad line with ``ValueError`` (or a subclass).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise AssayError(missing)
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    yield decode(json.loads(line))
                except ValueError as exc:
                    raise AssayError(f"{path}:{lineno}: corrupt {item} ({exc}); rebuild with '{rebuild}'") from None
    # zlib.error: a damaged compressed stream; UnicodeDecodeError: bytes that are not UTF-8 text.
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise AssayError(f"{path}: cannot read {what} ({exc}); rebuild with '{rebuild}'") from None
