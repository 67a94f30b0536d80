"""Worker: run one local-robustness query with Marabou (maraboupy) and print one JSON line.

Usage (called by verify_bench.py in a subprocess, so a crash or hang cannot stop the run):
    python benchmarks/verify_marabou.py NET.nnet POINT_CSV EPS LABEL argmax|argmin TIMEOUT_S [LO,HI]

The query is the same as Assay's: inputs in [point - eps, point + eps] clipped to the box
(default: the .nnet header box, normalised), and "some other output is at least as good as
the label" as one disjunction. Marabou reads the .nnet without normalisation
(normalize=False), i.e. in the normalised input space, like Assay.
"""

import json
import os
import sys
import time
import warnings

warnings.filterwarnings("ignore")


def main():
    net_path, pt, eps, label, decision, timeout = sys.argv[1:7]
    import numpy as np

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from maraboupy import Marabou, MarabouCore, MarabouUtils

    from verify.nnet import read_nnet

    point = np.array([float(v) for v in pt.split(",")])
    eps, label, timeout = float(eps), int(label), float(timeout)
    ours = read_nnet(net_path)
    lo, hi = point - eps, point + eps
    if len(sys.argv) > 7:
        blo, bhi = (float(v) for v in sys.argv[7].split(","))
        lo, hi = np.maximum(lo, blo), np.minimum(hi, bhi)
    else:
        lo, hi = np.maximum(lo, ours.input_lo), np.minimum(hi, ours.input_hi)
    t0 = time.monotonic()
    net = Marabou.read_nnet(net_path, normalize=False)
    inv = net.inputVars[0].reshape(-1)
    outv = net.outputVars[0].reshape(-1)
    for i, v in enumerate(inv):
        net.setLowerBound(int(v), float(lo[i]))
        net.setUpperBound(int(v), float(hi[i]))
    disj = []
    for j in range(len(outv)):
        if j == label:
            continue
        eq = MarabouUtils.Equation(MarabouCore.Equation.LE)
        if decision == "argmax":  # y_label - y_j <= 0
            eq.addAddend(1.0, int(outv[label])); eq.addAddend(-1.0, int(outv[j]))
        else:  # y_j - y_label <= 0
            eq.addAddend(1.0, int(outv[j])); eq.addAddend(-1.0, int(outv[label]))
        eq.setScalar(0.0)
        disj.append([eq])
    net.addDisjunctionConstraint(disj)
    opts = Marabou.createOptions(timeoutInSeconds=int(max(1, round(timeout))), verbosity=0)
    code, vals, _stats = net.solve(options=opts, verbose=False)
    el = time.monotonic() - t0
    x = None
    if code == "sat":
        x = [float(vals[int(v)]) for v in inv]
    print(json.dumps({"result": code, "time_s": el, "x": x}))


if __name__ == "__main__":
    main()
