"""Corpus statistics: operators by kind, records by source and outcome, dtypes, honest operator counts."""

from __future__ import annotations

import glob
import os

from fuzz.errors import AssayError
from fuzz.ir.opnames import base_name
from fuzz.ir.record import iter_tensor_values, read_records

def compute_stats(records) -> dict:
    """Stats over records (``Record`` objects or their JSON dicts)."""
    ops: dict[str, set] = {"function": set(), "module": set(), "aten": set()}
    aten_overloads: set = set()
    by_source: dict[str, dict[str, int]] = {}
    dtypes: dict[str, int] = {}
    per_op: dict[str, list[int]] = {}
    total = valid = 0
    for r in records:
        d = r if isinstance(r, dict) else r.to_json()
        kind, op = d["kind"], d["op"]
        ops.setdefault(kind, set()).add(op)
        if kind == "aten":
            aten_overloads.add(f"{op}.{d.get('overload') or 'default'}")
        src = by_source.setdefault(d.get("source") or "?", {"valid": 0, "invalid": 0})
        src["valid" if d["ok"] else "invalid"] += 1
        total += 1
        valid += bool(d["ok"])
        counts = per_op.setdefault(f"{kind}:{op}", [0, 0])
        counts[0 if d["ok"] else 1] += 1
        for t in list(iter_tensor_values(d["args"])) + [t for v in d["kwargs"].values() for t in iter_tensor_values(v)]:
            dtypes[t["dtype"]] = dtypes.get(t["dtype"], 0) + 1
    union = {base_name(k, op) for k, names in ops.items() for op in names}
    with_invalid = sum(1 for v in per_op.values() if v[1] > 0)
    with_3_invalid = sum(1 for v in per_op.values() if v[1] >= 3)
    return {
        "records": total,
        "valid": valid,
        "invalid": total - valid,
        "by_source": dict(sorted(by_source.items())),
        "ops_by_kind": {k: len(v) for k, v in sorted(ops.items())},
        "aten_overloads": len(aten_overloads),
        "operators_union": len(union),
        "ops_with_invalid_records": with_invalid,
        "ops_with_3plus_invalid_records": with_3_invalid,
        "dtypes": dict(sorted(dtypes.items())),
    }


def corpus_files(corpus_dir: str) -> list[str]:
    files = sorted(glob.glob(os.path.join(corpus_dir, "traces*.jsonl.gz")))
    if not files:
        raise AssayError(f"no trace files (traces*.jsonl.gz) in {corpus_dir}; run 'assay traces collect' "
                         "or pass --corpus DIR")
    return files


def load_corpus(corpus_dir: str):
    """All records of a corpus directory, in file order (a corrupt file is a one-line AssayError)."""
    import zlib

    for path in corpus_files(corpus_dir):
        try:
            yield from read_records(path)
        except (zlib.error, UnicodeDecodeError, ValueError) as exc:
            raise AssayError(f"{path}: cannot read trace file ({type(exc).__name__}: {str(exc)[:120]}); "
                             "rebuild with 'assay traces collect'") from None


def corpus_stats(corpus_dir: str) -> dict:
    files = corpus_files(corpus_dir)
    stats = compute_stats(load_corpus(corpus_dir))
    stats["files"] = {os.path.basename(p): os.path.getsize(p) for p in files}
    stats["bytes"] = sum(stats["files"].values())
    return stats
