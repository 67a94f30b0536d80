"""The network's weights on a torch device, in float64 (or float32), with |W| precomputed.

``dtype="float32"`` is honoured only where it changes nothing the contract rests on: every
weight and bias is exactly a float32 (so the float32 network *is* the real network of the
file), and all are below 1e6 in magnitude (no overflow in the bound arithmetic); otherwise
the net stays float64 (``self.dtype`` says which). Float32 bounds are about 2x faster on
CPU; ``rounding.unit`` gives their rounding model. Input boxes enter through ``box``
(rounded outward to the working dtype, so the box bounded contains the box asked for) and
property rows through ``rows`` (None if a row is not exact in the working dtype).
"""

from __future__ import annotations

import numpy as np


def exact_in_float32(arrays, limit=1e6):
    for a in arrays:
        a = np.asarray(a, dtype=np.float64)
        if a.size and (np.abs(a).max() >= limit or not np.array_equal(a.astype(np.float32).astype(np.float64), a)):
            return False
    return True


class TorchNet:
    def __init__(self, net, device="cpu", dtype="float64"):
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.net = net
        use32 = dtype == "float32" and exact_in_float32([a for layer in net.layers for a in layer])
        if use32 and self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = False  # TF32 products would break the rounding model
        dt = torch.float32 if use32 else torch.float64
        self.dtype = dt
        self.W = [torch.as_tensor(W, dtype=dt, device=self.device) for W, _ in net.layers]
        self.b = [torch.as_tensor(b, dtype=dt, device=self.device) for _, b in net.layers]
        self.Wabs = [W.abs() for W in self.W]
        self.babs = [b.abs() for b in self.b]
        self.n_hidden = len(self.W) - 1
        self.sizes = [W.shape[0] for W in self.W]
        self.n_in = net.n_inputs

    def tensor(self, a):
        """Float64 tensor on the device (points, right-hand sides: no rounding)."""
        return self.torch.as_tensor(a, dtype=self.torch.float64, device=self.device)

    def box(self, lo, hi):
        """The box [lo, hi] (float64 arrays) in the working dtype, rounded outward."""
        torch = self.torch
        L, H = self.tensor(lo), self.tensor(hi)
        if self.dtype == torch.float64:
            return L, H
        L32, H32 = L.to(torch.float32), H.to(torch.float32)
        L32 = torch.where(L32.double() > L, torch.nextafter(L32, torch.full_like(L32, -float("inf"))), L32)
        H32 = torch.where(H32.double() < H, torch.nextafter(H32, torch.full_like(H32, float("inf"))), H32)
        return L32, H32

    def rows(self, C):
        """Property rows C in the working dtype, or None if some entry is not exact in it."""
        if self.dtype != self.torch.float64 and not exact_in_float32([C], limit=float("inf")):
            return None
        return self.torch.as_tensor(C, dtype=self.dtype, device=self.device)

    def forward32(self, x):
        """Float32 evaluation (N, n_in) with the file's float32 weights (falsification only)."""
        torch = self.torch
        if not hasattr(self, "W32"):
            self.W32 = [W.to(torch.float32) for W in self.W]
            self.b32 = [b.to(torch.float32) for b in self.b]
        a = x
        for i, (W, b) in enumerate(zip(self.W32, self.b32)):
            a = torch.addmm(b, a, W.T)
            if i < self.n_hidden:
                a = torch.relu(a)
        return a

    def forward(self, x):
        """Float64 evaluation of a batch (N, n_in) (differentiable; for falsification only)."""
        torch = self.torch
        if not hasattr(self, "W64"):
            self.W64 = [W.to(torch.float64) for W in self.W]
            self.b64 = [b.to(torch.float64) for b in self.b]
        a = x.to(torch.float64)
        for i, (W, b) in enumerate(zip(self.W64, self.b64)):
            a = a @ W.T + b
            if i < self.n_hidden:
                a = torch.relu(a)
        return a
