"""Reader for the .nnet format (Kyle Julian, Stanford 2016), as used by ACAS Xu and Marabou.

Layout after the ``//`` comment lines: a header ``numLayers, inputSize, outputSize,
maxLayerSize``; the layer sizes; a legacy flag; input minimums; input maximums;
means (inputs then one output mean); ranges (likewise); then for each layer its
weight rows and its biases, one row per line.

The returned network works in the *normalised* input space ``(x - mean) / range``
(the space the first weight matrix consumes, the space of the ONNX versions and of
the VNN-LIB files). Its default clip box is the header's min/max box, normalised.
The output normalisation (``y * range_out + mean_out``) is not applied, exactly as
in the ONNX versions; it is a positive affine map shared by all outputs, so it does
not change argmax/argmin decisions.
"""

from __future__ import annotations

import numpy as np

from .network import Network


class NNetFormatError(ValueError):
    pass


def _floats(line: str, what: str) -> list:
    parts = [p for p in line.strip().split(",") if p.strip() != ""]
    try:
        return [float(p) for p in parts]
    except ValueError:
        raise NNetFormatError(f"non-numeric value in {what}: {line.strip()[:60]!r}") from None


def read_nnet(path) -> Network:
    with open(path, "r", encoding="utf-8", errors="replace") as fh:
        lines = [ln for ln in fh.read().splitlines()]
    body = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("//")]
    pos = 0

    def take(n_expected, what):
        nonlocal pos
        if pos >= len(body):
            raise NNetFormatError(f"file ends before the {what} (truncated?)")
        vals = _floats(body[pos], what)
        pos += 1
        if n_expected is not None and len(vals) < n_expected:
            raise NNetFormatError(f"{what} has {len(vals)} values, expected {n_expected}")
        return vals[:n_expected] if n_expected is not None else vals

    head = take(4, "header line")
    n_layers, n_in, n_out = int(head[0]), int(head[1]), int(head[2])
    if n_layers < 1 or n_in < 1 or n_out < 1:
        raise NNetFormatError(f"bad header {head}")
    sizes = [int(v) for v in take(n_layers + 1, "layer sizes")]
    if sizes[0] != n_in or sizes[-1] != n_out:
        raise NNetFormatError(f"layer sizes {sizes} do not match inputs {n_in} / outputs {n_out}")
    take(None, "symmetric flag")
    mins = np.array(take(n_in, "input minimums"))
    maxs = np.array(take(n_in, "input maximums"))
    means = np.array(take(n_in + 1, "means"))
    ranges = np.array(take(n_in + 1, "ranges"))
    layers = []
    for k in range(n_layers):
        rows, cols = sizes[k + 1], sizes[k]
        W = np.empty((rows, cols))
        for r in range(rows):
            W[r] = take(cols, f"weights of layer {k + 1}")
        b = np.empty(rows)
        for r in range(rows):
            b[r] = take(1, f"biases of layer {k + 1}")[0]
        layers.append((W, b))
    if pos != len(body):
        raise NNetFormatError(f"{len(body) - pos} unexpected extra lines after the last layer")
    in_mean, in_range = means[:n_in], ranges[:n_in]
    if np.any(in_range == 0):
        raise NNetFormatError("an input range of 0 in the header")
    lo = (mins - in_mean) / in_range
    hi = (maxs - in_mean) / in_range
    net = Network(layers, input_lo=np.minimum(lo, hi), input_hi=np.maximum(lo, hi),
                  name=str(path).rsplit("/", 1)[-1], in_mean=in_mean, in_range=in_range,
                  meta={"format": "nnet", "out_mean": means[-1], "out_range": ranges[-1]})
    return net
