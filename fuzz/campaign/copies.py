"""The copies a session runs a model on: inputs fenced (``fuzz.campaign.fence``), cast to float64
or perturbed by a few ulps (``sensitivity.PERTURB``), and modules cast or perturbed likewise."""

from __future__ import annotations

import copy

from fuzz.campaign import sensitivity
from fuzz.campaign.fence import FENCE, fenced


def clone_inputs(inputs, device, dtype64=False, requires_grad=False, noise=None, gen=None, frozen=(), fence=FENCE):
    """Copies of ``inputs``, fenced by ``fence`` elements (``fuzz.campaign.fence``: a read past an
    input gives NaN, on every run; ``frozen``: positions that never require grad, the inputs a model
    writes in place). A Python number among ``inputs`` is passed as it is."""
    import torch

    out = []
    for k, t in enumerate(inputs):
        if not isinstance(t, torch.Tensor):  # a Python number forward takes (fuzz.gen.scalars): as it is
            out.append(t)
            continue
        t = fenced(t.detach().to(device), fence)
        if t.dtype.is_floating_point:
            if noise is not None:
                rel = sensitivity.PERTURB.get(str(t.dtype).replace("torch.", ""), 1e-6)
                t = t * (1 + rel * (torch.rand(t.shape, generator=gen, dtype=torch.float64).to(device) * 2 - 1)).to(t.dtype)
            if dtype64:
                t = t.to(torch.float64)
            if requires_grad and k not in frozen:
                t.requires_grad_(True)
        out.append(t)
    return out


def as_list(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def to64(module):
    import torch

    m = copy.deepcopy(module)
    return m.to(torch.float64)


def perturbed_module(module, seed):
    import torch

    m = copy.deepcopy(module)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in list(m.parameters()) + list(m.buffers()):
            if p.dtype.is_floating_point:
                rel = sensitivity.PERTURB.get(str(p.dtype).replace("torch.", ""), 1e-6)
                p.mul_(1 + rel * (torch.rand(p.shape, generator=gen, dtype=torch.float64).to(p.device) * 2 - 1).to(p.dtype))
    return m.to(torch.float64), gen


def eager_error_in_inference_mode(module, inputs, device, fence=FENCE) -> str | None:
    """What eager raises when a copy of ``module`` runs copies of ``inputs`` under
    torch.inference_mode() (the ``inference_mode`` knob's grad mode for the compiled side), as
    ``Type: first line``, or None when it runs: a compiled crash eager shares there, or compiled
    values where eager accepts the call there, is no finding."""
    import torch

    try:
        with torch.inference_mode():
            copy.deepcopy(module)(*clone_inputs(inputs, device, fence=fence))
    except Exception as exc:  # noqa: BLE001 - any error is the answer
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return None
