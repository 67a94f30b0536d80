"""The one network type verify works on: affine layers with ReLU in between.

``Network.layers`` is a list of ``(W, b)`` float64 pairs; every layer except the
last is followed by a ReLU. ``W`` has shape ``(out, in)``. The weights are kept
exactly as loaded (float32 weights are widened to float64 without rounding), so
the real-valued function that Z3 reasons about is the one evaluated here in
float64; ``forward32`` evaluates the same weights in float32 for the double
check of counterexamples.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Network:
    layers: list  # list of (W (out,in) float64, b (out,) float64)
    input_lo: np.ndarray | None = None  # default clip box, in the space W[0] consumes
    input_hi: np.ndarray | None = None
    name: str = "network"
    # raw -> network input map x_net = (x_raw - in_mean) / in_range (the .nnet normalisation)
    in_mean: np.ndarray | None = None
    in_range: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        layers = []
        for W, b in self.layers:
            W = np.asarray(W, dtype=np.float64)
            b = np.asarray(b, dtype=np.float64).reshape(-1)
            if W.ndim != 2 or W.shape[0] != b.shape[0]:
                raise ValueError(f"bad layer shapes W{W.shape} b{b.shape}")
            if not (np.all(np.isfinite(W)) and np.all(np.isfinite(b))):
                raise ValueError(f"layer {len(layers) + 1} has NaN or infinite weights or biases; "
                                 "verify only handles finite networks")
            layers.append((W, b))
        for (W1, _), (W2, _) in zip(layers, layers[1:]):
            if W2.shape[1] != W1.shape[0]:
                raise ValueError(f"layer sizes do not chain: {W1.shape} then {W2.shape}")
        if not layers:
            raise ValueError("a network needs at least one affine layer")
        self.layers = layers
        self._layers32 = [(W.astype(np.float32), b.astype(np.float32)) for W, b in layers]

    @property
    def n_inputs(self) -> int:
        return self.layers[0][0].shape[1]

    @property
    def n_outputs(self) -> int:
        return self.layers[-1][0].shape[0]

    @property
    def n_relus(self) -> int:
        return sum(W.shape[0] for W, _ in self.layers[:-1])

    def describe(self) -> str:
        sizes = [self.n_inputs] + [W.shape[0] for W, _ in self.layers]
        return f"{self.name}: {'-'.join(map(str, sizes))} ({self.n_relus} ReLUs)"

    def forward(self, x) -> np.ndarray:
        """Float64 evaluation; ``x`` is one point ``(n,)`` or a batch ``(B, n)``."""
        a = np.asarray(x, dtype=np.float64)
        for i, (W, b) in enumerate(self.layers):
            a = a @ W.T + b
            if i < len(self.layers) - 1:
                a = np.maximum(a, 0.0)
        return a

    def forward32(self, x) -> np.ndarray:
        """The same network evaluated entirely in float32."""
        a = np.asarray(x, dtype=np.float64).astype(np.float32)
        for i, (W, b) in enumerate(self._layers32):
            a = a @ W.T + b
            if i < len(self._layers32) - 1:
                a = np.maximum(a, np.float32(0.0))
        return a

    def pre_activations(self, x) -> list:
        """Float64 pre-activation values of every layer for a batch ``(B, n)``."""
        a = np.asarray(x, dtype=np.float64)
        out = []
        for i, (W, b) in enumerate(self.layers):
            z = a @ W.T + b
            out.append(z)
            a = np.maximum(z, 0.0)
        return out

    def raw_to_input(self, x_raw) -> np.ndarray:
        """Map a raw (un-normalised) input to the network's input space."""
        x_raw = np.asarray(x_raw, dtype=np.float64)
        if self.in_mean is None:
            return x_raw
        return (x_raw - self.in_mean) / self.in_range


def compose_affine(ops, n_in):
    """Turn a list of ('affine', W, b) / ('relu',) ops into Network layers.

    Consecutive affine ops are multiplied together; a ReLU with no affine op
    before it gets an identity layer; a trailing ReLU gets an identity output layer.
    """
    layers = []
    W = np.eye(n_in)
    b = np.zeros(n_in)
    for op in ops:
        if op[0] == "affine":
            W2, b2 = op[1], op[2]
            W, b = W2 @ W, W2 @ b + b2
        elif op[0] == "relu":
            layers.append((W, b))
            W = np.eye(W.shape[0])
            b = np.zeros(W.shape[0])
        else:  # pragma: no cover - callers only emit the two kinds
            raise ValueError(op[0])
    layers.append((W, b))
    return layers
