"""``assay verify``: the command-line face of verify (heavy imports happen inside ``_run``)."""

from __future__ import annotations

import os

HELP = "prove local robustness of a small ReLU network (or find a counterexample) with bounds + Z3"

DESCRIPTION = """\
Prove that a feed-forward ReLU network's decision cannot change inside an L-infinity ball
(--point P --eps E), find the largest certified radius (--point P --radius), or check a
VNN-LIB property (--vnnlib FILE). NETWORK is a .nnet or .onnx file. Points are given in the
space the first weight matrix consumes (for .nnet: the normalised input; use --raw-point to
give raw .nnet inputs). Verdicts: robust (proved), counterexample (validated in float64 and
float32), unknown (time-out); for VNN-LIB: unsat (holds), sat (violated), timeout.
"""


EXAMPLES = """\
examples:
  assay verify net.nnet --point -0.3,0.1,0,0.2,-0.1 --eps 0.01   robust in this L-inf ball, or a counterexample
  assay verify net.onnx --point x.npy --radius                   the largest certified radius (bisection)
  assay verify net.onnx --vnnlib prop.vnnlib --timeout 116       a VNN-COMP property: unsat (holds) or sat
"""


def register(sub):
    import argparse

    p = sub.add_parser("verify", help=HELP, description=DESCRIPTION, epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("network", metavar="NETWORK", help="network file (.nnet or .onnx)")
    p.add_argument("--point", help="centre of the ball: a .npy file or a comma-separated list of floats")
    p.add_argument("--eps", type=float, help="L-infinity radius of the ball (>= 0)")
    p.add_argument("--radius", action="store_true",
                   help="find the largest certified eps by bisection (reports the bracket certified/violated)")
    p.add_argument("--vnnlib", metavar="FILE", help="check a VNN-LIB property instead of a ball")
    p.add_argument("--decision", choices=["argmax", "argmin"], default="argmax",
                   help="decision rule: argmax (default) or argmin (ACAS Xu advisories)")
    p.add_argument("--box", metavar="LO,HI",
                   help="clip box for the ball: two numbers applied to every input (default: the .nnet "
                        "header box, else none)")
    p.add_argument("--raw-point", action="store_true",
                   help="the point is a raw .nnet input; normalise it with the file's mean/range")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds for the whole job (default 60)")
    p.add_argument("--mode", choices=["combined", "per-class"], default="combined",
                   help="one query for all competing outputs (default) or one per output")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    # argparse takes "-0.3,0.1" or "-inf" for an option flag (only "-1" / "-.5" count as numbers),
    # so "--point -0.3,0.1,0,0,0" failed with "expected one argument". No verify option starts
    # with a digit, '.', "inf" or "nan", so such tokens are values here.
    import re

    p._negative_number_matcher = re.compile(r"^-(\d|\.\d|inf|nan)", re.IGNORECASE)
    p.set_defaults(func=_run)


def _parse_point(text, n_expected, VerifyError):
    import numpy as np

    if text.endswith(".npy") or os.path.isfile(text):
        if not os.path.isfile(text):
            raise VerifyError(f"point file not found: {text}")
        try:
            arr = np.load(text, allow_pickle=False)
        except Exception as exc:
            raise VerifyError(f"cannot read point file {text} as .npy ({type(exc).__name__}); "
                             "save it with numpy.save") from None
        if arr.dtype.kind not in "fiu":
            raise VerifyError(f"point file {text} does not hold numbers (dtype {arr.dtype})")
        pt = arr.astype(np.float64).reshape(-1)
    else:
        try:
            pt = np.array([float(v) for v in text.replace(" ", "").split(",") if v != ""], dtype=np.float64)
        except ValueError:
            raise VerifyError("--point must be a .npy file or comma-separated numbers, e.g. --point 0.1,0.2") from None
    if pt.shape[0] != n_expected:
        raise VerifyError(f"the point has {pt.shape[0]} values but the network takes {n_expected} inputs")
    if not np.all(np.isfinite(pt)):
        raise VerifyError("the point contains NaN or infinite values")
    return pt


def _run(args) -> int:
    import json
    import sys

    from .errors import VerifyError

    if not os.path.isfile(args.network):
        raise VerifyError(f"network file not found: {args.network}")
    modes = sum([args.vnnlib is not None, args.radius, args.eps is not None and not args.radius])
    if args.vnnlib is None and args.point is None:
        raise VerifyError("give --point P with --eps E or --radius, or --vnnlib FILE")
    if args.vnnlib is not None and (args.point is not None or args.radius):
        raise VerifyError("--vnnlib cannot be combined with --point/--radius")
    if args.vnnlib is None and not args.radius and args.eps is None:
        raise VerifyError("--point needs --eps E (or --radius to search for the largest eps)")
    if args.eps is not None and not (args.eps >= 0 and args.eps < float("inf")):
        raise VerifyError(f"--eps must be a finite number >= 0 (got {args.eps})")
    if not (args.timeout > 0):
        raise VerifyError("--timeout must be > 0 seconds")
    del modes

    import numpy as np

    from .load import NetworkLoadError, load_network
    from .robustness import VerifyInputError, certified_radius, check_robustness, check_vnnlib
    from .vnnlib import VnnlibError

    try:
        net = load_network(args.network)
    except NetworkLoadError as exc:
        raise VerifyError(str(exc)) from None
    box = None
    if args.box:
        try:
            lo_, hi_ = (float(v) for v in args.box.split(","))
        except ValueError:
            raise VerifyError("--box must be two numbers LO,HI, e.g. --box 0,1") from None
        if lo_ > hi_:
            raise VerifyError("--box: LO must be <= HI")
        box = (lo_, hi_)
    try:
        if args.vnnlib is not None:
            if not os.path.isfile(args.vnnlib):
                raise VerifyError(f"VNN-LIB file not found: {args.vnnlib}")
            res = check_vnnlib(net, args.vnnlib, timeout=args.timeout)
            out = res.to_json()
            out["network"] = net.describe()
            if args.json:
                sys.stdout.write(json.dumps(out, indent=2) + "\n")
            else:
                print(f"{res.result}  ({'holds' if res.result == 'unsat' else 'violated' if res.result == 'sat' else 'no answer in time'}; {res.time_s:.2f} s)")
                if res.counterexample is not None:
                    print("counterexample:", ",".join(repr(v) for v in res.counterexample))
                    print("output:", ",".join(f"{v:.6g}" for v in res.output))
            return 0
        point = _parse_point(args.point, net.n_inputs, VerifyError)
        if args.raw_point:
            if net.in_mean is None:
                raise VerifyError("--raw-point only applies to .nnet networks (they carry a normalisation)")
            point = net.raw_to_input(point)
        if args.radius:
            r = certified_radius(net, point, decision=args.decision, box=box, timeout=args.timeout,
                                 eps_start=args.eps if args.eps else None)
            # 'robust' only when a positive radius was proved: a certified radius of 0.0 only
            # says the decision at the point itself is strict
            if r["certified"] is not None and r["certified"] > 0:
                verdict = "robust"
            elif r["violated"] == 0.0:
                verdict = "counterexample"
            else:
                verdict = "unknown"
            out = {"verdict": verdict, "certified": r["certified"], "violated": r["violated"],
                   "counterexample": r["counterexample"], "unknown_at": r.get("unknown_at"),
                   "stopped_early": r["stopped_early"], "label": r["label"],
                   "time_s": round(r["time_s"], 4), "checks": r["checks"]}
            if args.json:
                sys.stdout.write(json.dumps(out, indent=2) + "\n")
            else:
                print(f"{verdict}: certified radius {r['certified']}  (smallest violated radius found: "
                      f"{r['violated']}; {len(r['checks'])} checks, {r['time_s']:.2f} s)")
                if r["stopped_early"]:
                    print(f"stopped early: {r['stopped_early']}")
            return 0
        res = check_robustness(net, point, args.eps, decision=args.decision, box=box,
                               timeout=args.timeout, mode=args.mode)
        out = res.to_json()
        if args.json:
            sys.stdout.write(json.dumps(out, indent=2) + "\n")
        else:
            print(f"{res.verdict}  (decision {args.decision} = {res.label}, eps {args.eps}, {res.time_s:.2f} s, "
                  f"{res.stats.get('method')})")
            if res.counterexample is not None:
                print(f"counterexample (margin {res.margin:.6g}):", ",".join(repr(v) for v in res.counterexample))
        return 0
    except (VerifyInputError, VnnlibError) as exc:
        raise VerifyError(str(exc)) from None
    finally:
        np.seterr(all="warn")
