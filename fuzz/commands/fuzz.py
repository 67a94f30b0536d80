"""``assay fuzz``: a differential-testing campaign (see docs/campaign.md)."""

from __future__ import annotations

import os


def register(sub) -> None:
    p = sub.add_parser(
        "fuzz",
        help="run a differential-testing campaign (eager vs compiled backends)",
        description=(
            "Generate random valid models and test each against eager on every backend and mode, in "
            "long-lived sandboxed workers. Failures are saved as cases under --out with a standalone "
            "repro.py; stats.json and plot_data.csv are updated as it runs. Exits 0 when the time is up."
        ),
    )
    p.add_argument("--time", default="10m", help="how long to run: seconds, or 30s / 30m / 8h (default 10m)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: number of cores)")
    p.add_argument("--backends", default=None,
                   help="comma-separated: inductor, aot_eager, aot_eager_decomp_partition, eager, export, aoti "
                        "(default inductor,aot_eager)")
    p.add_argument("--modes", default=None, help="comma-separated: fwd, bwd, dynamic (default fwd)")
    p.add_argument("--out", default=None, help="campaign directory (default crashes/)")
    p.add_argument("--resume", metavar="DIR", default=None, help="continue the campaign in DIR")
    p.add_argument("--seed", type=int, default=None, help="campaign seed (default 0)")
    p.add_argument("--nodes", type=int, default=None, help="operators per generated model (default 5)")
    p.add_argument("--device", choices=["cpu", "cuda"], default=None, help="where models run (default cpu)")
    p.add_argument("--timeout", default=None, help="per-test time limit before a test counts as a hang (default 90s)")
    p.add_argument("--mem-limit", type=int, default=None, metavar="MB",
                   help="per-worker memory limit in MB (default: RAM / (workers+1), at most 8192)")
    p.add_argument("--programs", default=None, metavar="DIR",
                   help="test the saved programs in DIR (each with graph.json) once, instead of generating")
    p.add_argument("--keep", type=int, default=None, help="case directories kept per failure signature (default 3)")
    p.add_argument("--no-recheck", action="store_true", help="do not re-run saved cases in a fresh process")
    p.add_argument("--progress-every", type=float, default=30, metavar="S",
                   help="seconds between progress lines when stderr is not a terminal (default 30)")
    p.set_defaults(func=run)


def run(args) -> int:
    from fuzz.campaign import backends
    from fuzz.campaign.config import Config, default_mem_limit_mb, parse_duration
    from fuzz.campaign.driver import Campaign
    from fuzz.errors import AssayError

    out = args.resume or args.out or "crashes"
    if args.resume and args.out and os.path.abspath(args.out) != os.path.abspath(args.resume):
        raise AssayError("give either --resume DIR or --out DIR, not two different directories")
    workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
    if workers < 1:
        raise AssayError("--workers must be at least 1")
    time_s = parse_duration(args.time)
    timeout_s = parse_duration(args.timeout or "90")
    cfg = Config(out=out, time_s=time_s, workers=workers, timeout_s=timeout_s,
                 mem_limit_mb=args.mem_limit or default_mem_limit_mb(workers),
                 keep_per_signature=max(1, args.keep or 3), recheck=not args.no_recheck,
                 status_every_s=args.progress_every)
    explicit = set()
    for flag, key in (("timeout", "timeout_s"), ("keep", "keep_per_signature"), ("mem_limit", "mem_limit_mb")):
        if getattr(args, flag) is not None:
            explicit.add(key)
    if args.backends is not None:
        cfg.backends = backends.parse_backends(args.backends)
        explicit.add("backends")
    if args.modes is not None:
        cfg.modes = backends.parse_modes(args.modes)
        explicit.add("modes")
    for key in ("seed", "nodes", "device", "programs"):
        value = getattr(args, key)
        if value is not None:
            setattr(cfg, key, os.path.abspath(value) if key == "programs" else value)
            explicit.add(key)
    if cfg.nodes is not None and cfg.nodes < 1:
        raise AssayError("--nodes must be at least 1")
    cfg._explicit = explicit
    return Campaign(cfg, resume=bool(args.resume)).run()
