"""One VNN-COMP instance with chosen solver options (for design measurements).

    python benchmarks/verify_instance.py acasxu 2_8 prop_1 60 --cpu-clock
    python benchmarks/verify_instance.py acasxu 3_6 prop_1 25 --cpu-clock --options '{"split_coefs": "sum", "split_portfolio": []}'
    python benchmarks/verify_instance.py mnistfc 256x2 prop_1_0.03 60 --options '{"relu_refresh_bounds": false}'

NET is the ACAS Xu pair (``2_8`` -> ACASXU_run2a_2_8_batch_2000.onnx) or the MNIST-FC size
(``256x2`` -> mnist-net_256x2.onnx); PROP the vnnlib file's name without ``.vnnlib``; CAP
the timeout in seconds. ``--options`` is a JSON object of ``verify.solver.Options`` fields.
``--cpu-clock``: deadlines count this process's CPU time (see verify_vnncomp.py). Prints
the verdict, wall and CPU seconds, and the solver's statistics of the first case.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
SHARED = os.path.join(HERE, "..", "..", "shared", "benchmarks", "verify")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("family", choices=["acasxu", "mnistfc"])
    ap.add_argument("net")
    ap.add_argument("prop")
    ap.add_argument("cap", type=float)
    ap.add_argument("--options", default="{}")
    ap.add_argument("--cpu-clock", action="store_true")
    args = ap.parse_args(argv)
    wall0 = time.perf_counter()
    if args.cpu_clock:
        time.monotonic = time.process_time  # before verify is imported
    import verify
    from verify.solver import Options

    try:
        opts = Options(**json.loads(args.options))
    except (TypeError, ValueError) as e:
        ap.error(f"--options: {e}")
    onnx = (f"ACASXU_run2a_{args.net}_batch_2000.onnx" if args.family == "acasxu"
            else f"mnist-net_{args.net}.onnx")
    base = os.path.join(SHARED, args.family)
    net = verify.load_network(os.path.join(base, "onnx", onnx))
    c0 = time.process_time()
    r = verify.check_vnnlib(net, os.path.join(base, "vnnlib", args.prop + ".vnnlib"), timeout=args.cap,
                            options=opts)
    print(args.net, args.prop, r.result, f"cpu {time.process_time() - c0:.2f} s",
          f"wall {time.perf_counter() - wall0:.1f} s (with start-up)",
          json.dumps(r.stats["cases"][0] if r.stats.get("cases") else {}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
