"""PyTorch ``nn.Sequential`` of Linear / ReLU (and Flatten / Identity / Dropout) -> Network."""

from __future__ import annotations

import numpy as np

from .network import Network, compose_affine


class TorchModelError(ValueError):
    pass


def from_torch(module, name: str = "torch-module") -> Network:
    import torch.nn as nn

    mods = list(module) if isinstance(module, nn.Sequential) else [module]
    flat = []
    for m in mods:  # nested Sequentials are flattened
        if isinstance(m, nn.Sequential):
            flat.extend(list(m))
        else:
            flat.append(m)
    ops, n_in = [], None
    for m in flat:
        if isinstance(m, nn.Linear):
            W = m.weight.detach().cpu().double().numpy()
            b = (m.bias.detach().cpu().double().numpy() if m.bias is not None
                 else np.zeros(W.shape[0]))
            n_in = W.shape[1] if n_in is None else n_in
            ops.append(("affine", W, b))
        elif isinstance(m, nn.ReLU):
            ops.append(("relu",))
        elif isinstance(m, (nn.Flatten, nn.Identity, nn.Dropout)):
            continue
        else:
            raise TorchModelError(f"unsupported module {type(m).__name__}: only Linear and ReLU "
                                  "(plus Flatten/Identity/Dropout) are supported")
    if n_in is None:
        raise TorchModelError("the module has no Linear layer")
    return Network(compose_affine(ops, n_in), name=name, meta={"format": "torch"})
