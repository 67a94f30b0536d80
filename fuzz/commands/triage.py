"""``assay triage``: work through the cases a campaign saved (list, show, reduce, repro, recheck, report)."""

from __future__ import annotations

import sys
from pathlib import Path

from fuzz.campaign.verdict import FAILURE_KINDS
from fuzz.errors import AssayError
from fuzz.commands import command_group, positive_seconds

KINDS = tuple(k.value for k in FAILURE_KINDS)


def register(sub) -> None:
    from fuzz.triage.issue import ABLATION

    tsub = command_group(
        sub, "triage", help="work through saved cases: list, show, reduce, repro, recheck, report",
        description="Deduplicate saved cases by signature, reduce them to the few operators that matter, "
        "print maintainer-style repros, re-check them against the installed torch, and report a campaign. "
        "See docs/triage.md.",
        examples="""\
  assay triage list --dir crashes/                   one row per distinct failure, most frequent first
  assay triage show ID --dir crashes/                one case: verdict, signature, graph, how to run it
  assay triage reduce ID --dir crashes/              shrink it to the operators that matter (saved as ID-reduced)
  assay triage repro ID-reduced --dir crashes/       print the standalone repro.py to paste into an issue
  assay triage recheck --dir crashes/                which cases still fail on the installed torch
  assay triage issue ID --dir crashes/ --out bug.md  a Markdown issue body to file upstream (repro, ablation, versions)
  assay triage report --dir crashes/ --out report.html
                                                     the campaign report with plots
  assay triage merge part1/ part2/ --out all/        one store from the folders of 'assay fuzz --shard I/N' runs
""")

    def common(sp):
        sp.add_argument("--dir", metavar="DIR", default="crashes",
                        help="the crashes directory a campaign wrote (default: crashes/)")

    def known(sp):
        sp.add_argument("--known", metavar="FILE", default=None,
                        help="known issues: JSON of signature -> upstream link (default: DIR/known-issues.json)")

    c = tsub.add_parser("list", help="one row per distinct failure (signature)",
                        description="One row per signature: kind, backend, mode, ops involved, hit count, "
                        "first/last seen, whether it still reproduces, and its case ids.")
    common(c)
    c.add_argument("--json", action="store_true", help="print a JSON list, one object per signature")
    c.add_argument("--sort", choices=("count", "first", "last", "kind"), default="count",
                   help="order of the rows (default: count, most hits first)")
    c.add_argument("--kind", choices=KINDS, help="only failures of this kind")
    c.add_argument("--backend", metavar="B", help="only failures on this backend (e.g. inductor)")
    c.add_argument("--op", metavar="OP", help="only failures whose ops include OP (substring, e.g. conv2d)")
    known(c)
    c.set_defaults(func=_list)

    c = tsub.add_parser("show", help="everything about one case, with its program and the eager/compiled diff")
    common(c)
    c.add_argument("case_id", metavar="ID", help="case id (a unique prefix is enough)")
    c.add_argument("--json", action="store_true", help="print case.json as it is")
    c.add_argument("--no-ablate", action="store_true",
                   help="a case found under compiler knobs: do not re-run its repro without each knob to say "
                        "which ones it needs (done once per case, then kept in case.json)")
    known(c)
    c.set_defaults(func=_show)

    c = tsub.add_parser("reduce", help="minimise a case while the same signature reproduces",
                        description="Delta debugging over the case's operator calls, then smaller shapes and "
                        "simpler attributes; each candidate runs in a sandboxed child and is kept only if the "
                        "same signature reproduces. Saves the result as a new case <ID>-reduced beside the original.")
    common(c)
    c.add_argument("case_id", metavar="ID", help="case id (a unique prefix is enough)")
    c.add_argument("--time-budget", type=positive_seconds, default=120.0,
                   help="seconds of reduction before it stops with the best so far (default 120)")
    c.add_argument("--timeout", type=positive_seconds, default=None,
                   help="seconds per candidate run (default: from the case, else 60)")
    c.add_argument("--no-shrink", action="store_true", help="only drop operators; keep shapes and attributes")
    c.add_argument("--json", action="store_true",
                   help="print {reduced_case, ops_before, ops_after, ...} as one JSON object")
    c.add_argument("--quiet", action="store_true", help="no progress on stderr")
    c.set_defaults(func=_reduce)

    c = tsub.add_parser("repro", help="print a standalone, maintainer-style repro script on stdout")
    common(c)
    c.add_argument("case_id", metavar="ID", help="case id (a unique prefix is enough)")
    c.set_defaults(func=_repro)

    c = tsub.add_parser("recheck", help="replay saved cases against the installed torch; mark fixed/still failing/changed")
    common(c)
    c.add_argument("case_ids", metavar="ID", nargs="*", help="cases to recheck (default: one case per signature)")
    c.add_argument("--all", action="store_true", help="every saved case, not one per signature")
    c.add_argument("--timeout", type=positive_seconds, default=None, help="seconds per run (default: from the case, else 60)")
    c.add_argument("--json", action="store_true", help="print the results as a JSON list")
    c.set_defaults(func=_recheck)

    c = tsub.add_parser("report", help="a campaign report with plots (one HTML file, or Markdown)")
    common(c)
    c.add_argument("--out", metavar="FILE", default="report.html", help="output file (default: report.html; .md means Markdown)")
    c.add_argument("--format", choices=("html", "md"), default=None, help="html or md (default: from --out's suffix)")
    known(c)
    c.set_defaults(func=_report)

    c = tsub.add_parser("issue", help="write a Markdown issue body for upstream (torch.compile bug template)",
                        description="Title, the minimal self-contained repro (the reduced case's when there is one), "
                        "the error, for mismatches the comparison against float64, the backend ablation (eager, "
                        "aot_eager, aot_eager_decomp_partition, inductor: each run sandboxed with a timeout), the "
                        "compiler settings and the versions.")
    common(c)
    c.add_argument("case_id", metavar="ID", help="case id (a unique prefix is enough)")
    c.add_argument("--out", metavar="FILE", default=None, help="write here instead of stdout")
    c.add_argument("--backends", default=",".join(ABLATION), metavar="B,B",
                   help=f"backends of the ablation (default {','.join(ABLATION)})")
    c.add_argument("--timeout", type=positive_seconds, default=300.0, help="seconds per ablation run (default 300)")
    c.add_argument("--no-ablation", action="store_true", help="do not run the backend ablation")
    known(c)
    c.set_defaults(func=_issue)

    c = tsub.add_parser("merge", help="merge campaign folders (e.g. the --shard parts of one campaign) into one store",
                        description="One crash store from the folders of one campaign run apart (assay fuzz --shard "
                        "I/N): journals joined (a test in two folders counts once), signatures deduplicated with their "
                        "hit counts summed, every case copied with its files checked against the digests in its "
                        "case.json. Conflicting or corrupt inputs are an error and nothing is written.")
    c.add_argument("dirs", metavar="DIR", nargs="+", help="campaign folders ('assay fuzz --out' of each part)")
    c.add_argument("--out", metavar="DIR", required=True, help="the new merged campaign folder (must not exist, or be empty)")
    c.add_argument("--json", action="store_true", help="print what was merged as one JSON object")
    c.set_defaults(func=_merge)


# ---------------------------------------------------------------------------


def _list(args) -> int:
    from fuzz.commands import print_json
    from fuzz.triage.cases import campaign_kind
    from fuzz.triage.listing import filter_rows, listing_rows, render_table, sort_rows

    campaign_kind(args.dir)
    all_rows = listing_rows(args.dir, args.known)
    rows = sort_rows(filter_rows(all_rows, kind=args.kind, backend=args.backend, op=args.op), args.sort)
    if args.json:
        print_json([r.to_json() for r in rows])
    elif not all_rows:
        print(f"no saved cases yet in {args.dir}")
    elif not rows:
        print(f"no saved case in {args.dir} matches the filters ({len(all_rows)} distinct failures in all)")
    else:
        print(render_table(rows))
    return 0


def _show(args) -> int:
    from fuzz.commands import print_json
    from fuzz.triage.cases import load_case
    from fuzz.triage.show import render_case

    from fuzz.triage.known import known_for, load_known

    case = load_case(args.dir, args.case_id)
    if case.knobs and not (case.triage or {}).get("knobs") and not args.no_ablate and not args.json:
        import sys

        from fuzz.triage.actions import update_case
        from fuzz.triage.knob_ablation import ablate

        print(f"{case.id}: found under compiler knobs {', '.join(sorted(case.knobs))}; re-running its repro.py "
              "without each (once; kept in case.json)", file=sys.stderr)
        found = ablate(case, log=lambda m: print(m, file=sys.stderr))
        case = update_case(case.path, lambda c: setattr(c, "triage", {**(c.triage or {}), "knobs": found}))
        case = load_case(args.dir, case.id)
    if args.json:
        print_json(case.to_json())
    else:
        keys = [case.failure.id] + [r.signature for r in _rows_of(args.dir, case.id)]
        print(render_case(case, known=known_for(load_known(args.dir, args.known), keys)))
    return 0


def _rows_of(root, case_id: str) -> list:
    """The listing rows that hold a case (its reduced row key names it in a known-issues file)."""
    from fuzz.triage.listing import signature_rows

    return [r for r in signature_rows(root) if case_id in r.case_ids or case_id == r.reduced_case]


def _reduce(args) -> int:
    from fuzz.commands import print_json
    from fuzz.triage.cases import load_case
    from fuzz.triage.actions import reduce_case

    case = load_case(args.dir, args.case_id)
    log = (lambda msg: print(msg, file=sys.stderr, flush=True)) if not args.quiet else None
    result = reduce_case(case, time_budget=args.time_budget, timeout=args.timeout, shrink=not args.no_shrink, log=log)
    if args.json:
        print_json(result)
    else:
        print(f"{result['case_id']}: {result['ops_before']} -> {result['ops_after']} ops in {result['seconds']:.1f}s "
              f"({result['runs']} runs); reduced case: {result['reduced_case']}")
        print(f"repro: python {Path(result['reduced_case']) / 'repro.py'}")
    return 0


def _repro(args) -> int:
    from fuzz.triage.cases import load_case
    from fuzz.triage.show import printed_repro

    case = load_case(args.dir, args.case_id)
    damage = case.damage()
    if damage:
        raise AssayError(f"{damage}; no repro printed from damaged files")
    sys.stdout.write(printed_repro(case))
    return 0


def _recheck(args) -> int:
    from fuzz.commands import print_json
    from fuzz.triage.actions import recheck, render_recheck

    results = recheck(args.dir, args.case_ids, all_cases=args.all, timeout=args.timeout,
                      log=None if args.json else (lambda m: print(m, file=sys.stderr, flush=True)))
    if args.json:
        print_json(results)
    else:
        print(render_recheck(results))
    return 0


def _report(args) -> int:
    from fuzz.triage.cases import check_dir
    from fuzz.triage.report import write_report

    check_dir(args.dir)
    out = Path(args.out)
    if args.format == "md" and out.suffix.lower() == ".html" and args.out == "report.html":
        out = out.with_suffix(".md")
    try:
        path = write_report(args.dir, out, args.format, args.known)
    except OSError as exc:
        raise AssayError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(f"wrote {path}")
    return 0


def _issue(args) -> int:
    from fuzz.campaign import backends
    from fuzz.triage.issue import issue_markdown

    names = backends.parse_backends(args.backends)
    text = issue_markdown(args.dir, args.case_id, known_file=args.known, backends=names, timeout=args.timeout,
                          run_ablation=not args.no_ablation, log=lambda m: print(m, file=sys.stderr, flush=True))
    if args.out:
        try:
            Path(args.out).write_text(text)
        except OSError as exc:
            raise AssayError(f"cannot write {args.out}: {exc.strerror or exc}") from None
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def _merge(args) -> int:
    from fuzz.commands import check_output_dir, print_json
    from fuzz.triage.merge import merge

    check_output_dir(args.out)
    result = merge(args.dirs, args.out)
    if args.json:
        print_json(result)
    else:
        print(f"merged {len(result['inputs'])} campaign folders into {result['out']}: {result['tests']} tests "
              f"({result['duplicate_tests']} in more than one), {result['signatures']} signatures, {result['cases']} "
              f"cases ({result['staged']} staged for re-check)\n  next: assay triage list --dir {result['out']}")
    return 0
