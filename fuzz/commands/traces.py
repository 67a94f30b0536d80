"""``assay traces``: collect operator-call traces and summarise a trace corpus."""

from __future__ import annotations

import sys

from fuzz.errors import AssayError
from fuzz.commands import command_group, output_dir, positive_int, positive_seconds


def register(sub) -> None:
    tsub = command_group(
        sub, "traces", help="collect and inspect operator-call traces",
        description="Record valid and invalid operator calls (OpInfo, ModuleInfo, dispatcher, mutants) "
        "into a gzip JSON-lines corpus; see docs/traces.md.",
        examples="""\
  assay traces stats                                 what the shipped corpus holds
  assay traces collect --ops nn.functional.conv2d,add --out /tmp/corpus
                                                     record two operators into a new corpus
  assay traces collect                               rebuild the whole corpus (about 2 minutes on 2 cores)
""")

    c = tsub.add_parser("collect", help="build the trace corpus",
                        description="Run torch's OpInfo/ModuleInfo samples and their mutants, record every call.")
    c.add_argument("--out", metavar="DIR", default=None,
                   help="output directory (default: corpus/torch-<installed torch version>/)")
    c.add_argument("--seed", type=int, default=0, help="seed for samples and mutants (default 0)")
    c.add_argument("--ops", metavar="NAME[,NAME]", default=None,
                   help="only these OpInfo/ModuleInfo names (e.g. nn.functional.conv2d,add,nn.Conv2d)")
    c.add_argument("--max-samples", type=positive_int, default=8,
                   help="float32 samples per OpInfo/ModuleInfo (default 8; other dtypes get fewer)")
    c.add_argument("--extra-samples", type=int, default=2,
                   help="samples per extra dtype (float64, float16, int64, bool, ...; default 2)")
    c.add_argument("--workers", type=positive_int, default=2, help="worker processes (default 2)")
    c.add_argument("--time-budget", type=positive_seconds, default=30.0,
                   help="seconds per op before it stops mutating; killed at 1.5x + 5 s (default 30)")
    c.add_argument("--json", action="store_true", help="print the corpus stats as one JSON object")
    c.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    c.set_defaults(func=_collect)

    s = tsub.add_parser("stats", help="summarise a trace corpus",
                        description="Operators by kind, records valid/invalid by source, dtypes covered.")
    s.add_argument("--corpus", metavar="DIR", default=None,
                   help="corpus directory (default: corpus/torch-<installed torch version>/)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=_stats)


def _print_stats(stats: dict, out=sys.stdout) -> None:
    w = out.write
    w(f"records: {stats['records']} ({stats['valid']} valid, {stats['invalid']} invalid)\n")
    kinds = ", ".join(f"{k} {v}" for k, v in stats["ops_by_kind"].items())
    w(f"operators by kind: {kinds} (aten overloads {stats['aten_overloads']}); "
      f"union by base name: {stats['operators_union']}\n")
    w(f"operators with invalid records: {stats['ops_with_invalid_records']} "
      f"(with 3 or more: {stats.get('ops_with_3plus_invalid_records', '?')})\n")
    w("by source:\n")
    for src, c in stats["by_source"].items():
        w(f"  {src:<13} {c['valid']:>8} valid {c['invalid']:>8} invalid\n")
    w("dtypes: " + ", ".join(f"{k} {v}" for k, v in stats["dtypes"].items()) + "\n")
    if "files" in stats:
        for name, size in stats["files"].items():
            w(f"file: {name} {size / 1e6:.2f} MB\n")
        w(f"corpus size: {stats['bytes'] / 1e6:.2f} MB\n")
    if stats.get("skipped"):
        w(f"skipped or cut short ({len(stats['skipped'])}): "
          + "; ".join(f"{k}: {v}" for k, v in stats["skipped"].items()) + "\n")
    if "wall_s" in stats:
        w(f"wall time: {stats['wall_s']} s\n")


def _collect(args) -> int:
    import os

    # Mutants trip torch's C++ warnings by the hundred ("degrees of freedom is <= 0", resized
    # outputs); they are expected and would bury the progress line. Set before torch loads (the
    # workers are forked from this process, so they inherit the level). An explicit setting wins.
    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
    from fuzz.tracing import collect, default_out_dir

    ops = None
    if args.ops is not None:
        ops = [o.strip() for o in args.ops.split(",") if o.strip()]
        if not ops:
            raise AssayError("--ops is empty; give operator names, e.g. --ops nn.functional.conv2d,add")
    if args.extra_samples < 0:
        raise AssayError(f"--extra-samples must be 0 or more, got {args.extra_samples}")
    out = output_dir(args.out or default_out_dir())
    stats = collect(out, seed=args.seed, ops=ops, max_samples=args.max_samples,
                    extra_samples=args.extra_samples, workers=args.workers,
                    time_budget=args.time_budget, progress=not args.quiet)
    if args.json:
        from fuzz.commands import print_json

        print_json(stats)
    else:
        sys.stdout.write(f"wrote {out}\n")
        _print_stats(stats)
    return 0


def _stats(args) -> int:
    import os

    from fuzz.tracing import corpus_stats, default_out_dir

    corpus = args.corpus or default_out_dir()
    if not os.path.isdir(corpus):
        raise AssayError(f"corpus directory {corpus} does not exist; run 'assay traces collect' or pass --corpus DIR")
    stats = corpus_stats(corpus)
    if args.json:
        from fuzz.commands import print_json

        print_json(stats)
    else:
        _print_stats(stats)
    return 0
