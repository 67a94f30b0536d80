"""The network's weights on a torch device, in float64, with |W| precomputed."""

from __future__ import annotations


class TorchNet:
    def __init__(self, net, device="cpu"):
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.net = net
        dt = torch.float64
        self.W = [torch.as_tensor(W, dtype=dt, device=self.device) for W, _ in net.layers]
        self.b = [torch.as_tensor(b, dtype=dt, device=self.device) for _, b in net.layers]
        self.Wabs = [W.abs() for W in self.W]
        self.babs = [b.abs() for b in self.b]
        self.n_hidden = len(self.W) - 1
        self.sizes = [W.shape[0] for W in self.W]
        self.n_in = net.n_inputs

    def tensor(self, a):
        return self.torch.as_tensor(a, dtype=self.torch.float64, device=self.device)

    def forward(self, x):
        """Float64 evaluation of a batch (N, n_in) (differentiable; for falsification only)."""
        torch = self.torch
        a = x
        for i, (W, b) in enumerate(zip(self.W, self.b)):
            a = a @ W.T + b
            if i < self.n_hidden:
                a = torch.relu(a)
        return a
