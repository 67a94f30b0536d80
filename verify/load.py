"""``load_network(path)``: pick the reader by file extension."""

from __future__ import annotations

import os

from .network import Network


class NetworkLoadError(ValueError):
    pass


def load_network(path) -> Network:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise NetworkLoadError(f"network file not found: {path}")
    low = path.lower()
    try:
        if low.endswith(".nnet"):
            from .nnet import read_nnet

            return read_nnet(path)
        if low.endswith(".onnx"):
            from .onnx_loader import read_onnx

            return read_onnx(path)
        if low.endswith((".pt", ".pth")):
            import torch

            obj = torch.load(path, map_location="cpu", weights_only=True)
            raise NetworkLoadError("a .pt file holds weights only; build the nn.Sequential in Python and "
                                   f"pass the module to verify.check_robustness (got {type(obj).__name__})")
    except NetworkLoadError:
        raise
    except Exception as exc:
        raise NetworkLoadError(f"cannot read {os.path.basename(path)}: {exc}") from None
    raise NetworkLoadError(f"unknown network format {os.path.splitext(path)[1]!r}: use .nnet or .onnx")
