"""``assay fuzz``: a differential-testing campaign (see docs/campaign.md).

Every flag is checked before anything is written: a typo in ``--programs`` or ``--device
cuda`` on a machine without a GPU must not leave a ``campaign.json`` behind that the corrected
command would then refuse as a different campaign.
"""

from __future__ import annotations

import argparse
import os

from fuzz.commands import (ExamplesFormatter, add_policy_flags, check_output_dir, output_dir, positive_int,
                           positive_seconds, shares_from_args)

EXAMPLES = """\
examples:
  assay fuzz --time 8h --workers 8 --out crashes/     an overnight campaign on the default backends
  assay fuzz --resume crashes/                       continue it: the rest of its 8 h budget
  assay fuzz --resume crashes/ --time 2h             continue it for 2 more hours
  assay fuzz --backends inductor --modes fwd,bwd --nodes 8 --out crashes-bwd/
  assay fuzz --modes train --out crashes-train/      only training steps (loss, backward, SGD step)
  assay fuzz --time 20m --fail-on-find --out ci-crashes/
                                                     in CI: exit 1 when a new failure signature is found
  assay fuzz --programs models/ --out crashes/       test saved programs (assay gen's output) once each
  assay fuzz --shard 3/8 --seed 7 --time 8h --out part3/
                                                     one of 8 batch jobs; then: assay triage merge part*/ --out all/
"""

MIN_MEM_LIMIT_MB = 512  # a worker with torch and one compiled model needs several hundred MB


def _duration(text: str) -> float:
    """argparse type: a positive duration (``90``, ``30s``, ``30m``, ``8h``, ``1h30m``)."""
    from fuzz.campaign.config import parse_duration
    from fuzz.errors import AssayError

    try:
        value = parse_duration(text)
    except AssayError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a duration above 0, got {text!r}")
    return value


def _shard(text: str) -> list[int]:
    """argparse type: ``I/N``, the I-th of N disjoint slices of the campaign's models."""
    from fuzz.campaign.config import parse_shard
    from fuzz.errors import AssayError

    try:
        return parse_shard(text)
    except AssayError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _mem_limit(text: str) -> int:
    value = positive_int(text)
    if value < MIN_MEM_LIMIT_MB:
        raise argparse.ArgumentTypeError(f"expected at least {MIN_MEM_LIMIT_MB} MB (a worker with torch needs "
                                         f"several hundred), got {text!r}")
    return value


def _modes_per_model(text: str) -> int:
    """argparse type: ``all`` (0: every mode on every model) or a positive count."""
    return 0 if text.strip().lower() == "all" else positive_int(text)


def register(sub) -> None:
    p = sub.add_parser(
        "fuzz",
        help="run a differential-testing campaign (eager vs compiled backends)",
        description=(
            "Generate random valid models and test each against eager on every backend and mode, in "
            "long-lived sandboxed workers. Failures are saved as cases under --out with a standalone "
            "repro.py; stats.json and plot_data.csv are updated as it runs. Exit status: 0 when the time "
            "is up (or every saved program was tested), 1 with --fail-on-find when a new failure "
            "signature was found, 2 for bad flags, 3 when no test finished in the time given, "
            "130 when stopped (continue with --resume)."
        ),
        epilog=EXAMPLES,
        formatter_class=ExamplesFormatter,
    )
    p.add_argument("--time", type=_duration, default=None,
                   help="how long to run: seconds, or 30s / 30m / 8h (default 10m; with --resume: the rest of "
                        "the campaign's budget)")
    p.add_argument("--workers", type=positive_int, default=None, help="worker processes (default: number of cores)")
    p.add_argument("--backends", default=None,
                   help="comma-separated: inductor, aot_eager, aot_eager_decomp_partition, eager, export, export_core, "
                        "export_saved, aoti "
                        "(default inductor,aot_eager)")
    p.add_argument("--modes", default=None,
                   help="comma-separated: fwd, bwd, dynamic, train (default all four, mixed over the models; "
                        "with --programs: fwd)")
    p.add_argument("--modes-per-model", type=_modes_per_model, default=None, metavar="N|all",
                   help="modes each generated model is tested in, drawn from --modes by (seed, model) "
                        "(default 1; all: every mode on every model)")
    p.add_argument("--out", default=None, help="campaign directory (default crashes/)")
    p.add_argument("--resume", metavar="DIR", default=None, help="continue the campaign in DIR")
    p.add_argument("--seed", type=int, default=None, help="campaign seed (default 0)")
    p.add_argument("--nodes", type=positive_int, default=None, help="operators per generated model (default 5)")
    p.add_argument("--device", choices=["cpu", "cuda"], default=None, help="where models run (default cpu)")
    p.add_argument("--timeout", type=_duration, default=None,
                   help="per-test time limit before a test counts as a hang (default 90s)")
    p.add_argument("--mem-limit", type=_mem_limit, default=None, metavar="MB",
                   help="per-worker memory limit in MB (default: RAM / (workers+1), at most 8192)")
    p.add_argument("--programs", default=None, metavar="DIR",
                   help="test the saved programs in DIR (each with graph.json) once, instead of generating")
    p.add_argument("--keep", type=positive_int, default=None,
                   help="case directories kept per failure signature (default 3)")
    p.add_argument("--no-recheck", action="store_true", help="do not re-run saved cases in a fresh process")
    p.add_argument("--fail-on-find", action="store_true",
                   help="exit 1 when this run found a failure signature the campaign had not seen (for CI)")
    p.add_argument("--progress-every", type=positive_seconds, default=30, metavar="S",
                   help="seconds between progress lines when stderr is not a terminal (default 30)")
    p.add_argument("--feedback", choices=["off", "counters", "coverage"], default=None,
                   help="guide the campaign by what the compiler reports per test: counters (default: pattern "
                        "matches, kernels, fusions, fallbacks... kept as features; a test with new ones becomes a "
                        "seed that later models mutate, programs and compiler settings), coverage (counters, plus "
                        "Python line coverage of torch/_inductor, _dynamo, _functorch on one test in 10), off "
                        "(every model fresh, as before)")
    p.add_argument("--knobs", default=None, metavar="K1,K2",
                   help="compiler knobs set for every test (e.g. cpp_wrapper,freezing; see docs/campaign.md); "
                        "recorded in each case and set by its repro.py")
    p.add_argument("--batch", type=positive_int, default=None, metavar="K",
                   help="compile the fwd tests of K models as one program per backend (on inductor about 1.05-1.25x "
                        "tests/min, see docs/campaign.md); a model that does not pass in its batch runs alone "
                        "(default 1)")
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="where workers run: local processes, or actors on a Ray cluster (pip install 'assay[ray]'; "
                        "docs/distributed.md) (default local)")
    p.add_argument("--address", default=None, metavar="auto|HOST:PORT",
                   help="with --executor ray: the cluster to join (default auto: the one 'ray start' runs here)")
    p.add_argument("--shard", type=_shard, default=None, metavar="I/N",
                   help="run only the I-th of N disjoint slices of the models (model index %% N == I-1), e.g. one "
                        "per batch job; merge the folders with 'assay triage merge' (saved in campaign.json)")
    add_policy_flags(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from fuzz.campaign import backends
    from fuzz.campaign.config import Config, default_mem_limit_mb
    from fuzz.campaign.driver import Campaign
    from fuzz.campaign.jobs import program_dirs
    from fuzz.errors import AssayError

    out = args.resume or args.out or "crashes"
    if args.resume and args.out and os.path.abspath(args.out) != os.path.abspath(args.resume):
        raise AssayError("give either --resume DIR or --out DIR, not two different directories")
    check_output_dir(out, "--resume" if args.resume else "--out")
    if args.resume and not os.path.isfile(os.path.join(out, "campaign.json")):
        raise AssayError(f"{out} holds no campaign to resume (no campaign.json); start one with --out")
    workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
    cfg = Config(out=out, time_s=args.time or 600.0, workers=workers, timeout_s=args.timeout or 90.0,
                 mem_limit_mb=args.mem_limit or default_mem_limit_mb(workers),
                 keep_per_signature=args.keep or 3, recheck=not args.no_recheck,
                 status_every_s=args.progress_every, fail_on_find=args.fail_on_find, batch=args.batch or 1)
    explicit = {key for flag, key in (("timeout", "timeout_s"), ("keep", "keep_per_signature"),
                                      ("mem_limit", "mem_limit_mb"), ("time", "time_s"), ("batch", "batch"))
                if getattr(args, flag) is not None}
    if args.backends is not None:
        cfg.backends = backends.parse_backends(args.backends)
        explicit.add("backends")
    if args.modes is not None:
        cfg.modes = backends.parse_modes(args.modes)
        explicit.add("modes")
    if args.modes_per_model is not None:
        cfg.modes_per_model = args.modes_per_model
        explicit.add("modes_per_model")
    if args.knobs is not None:
        from fuzz.campaign.knobs import settings_of

        cfg.knobs = sorted(settings_of(k.strip() for k in args.knobs.split(",") if k.strip()))
        explicit.add("knobs")
    if args.feedback is not None:
        cfg.feedback = args.feedback
        explicit.add("feedback")
    for key in ("seed", "nodes", "device", "programs", "shard"):
        value = getattr(args, key)
        if value is not None:
            setattr(cfg, key, os.path.abspath(value) if key == "programs" else value)
            explicit.add(key)
    if cfg.programs:
        program_dirs(cfg.programs)  # a typo is an error now, before the campaign folder exists
        if "modes" not in explicit:
            cfg.modes = ["fwd"]  # saved programs are re-tested forward unless --modes says otherwise
    if cfg.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise AssayError("--device cuda: no CUDA device is available here; run on cpu or on a machine "
                             "with a GPU")
    shares = shares_from_args(args)
    if shares is not None:
        cfg.shares = shares.to_json()
        explicit.add("shares")
    cfg.explicit = explicit
    if args.address is not None and args.executor != "ray":
        raise AssayError("--address is for --executor ray")
    if args.executor == "ray":
        from fuzz.campaign.ray_executor import connect

        cfg.executor, cfg.address = "ray", args.address or "auto"
        connect(cfg.address)  # no Ray or no cluster there: one line, before the folder is written
    output_dir(out, "--resume" if args.resume else "--out")  # last: everything above has been checked
    return Campaign(cfg, resume=bool(args.resume)).run()
