"""A case's property as torch tensors, for the searches that bound it with ``verify.tbounds``.

``ibab`` (input splitting) and ``troot`` (the wide-net root stage) both start from the
solver's case state ``S`` (network, box, property rows and right-hand sides, which rows make
up each disjunct, strictness); this builds the tensors once, the same way for both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class TorchCase:
    tn: Any            # tbounds.TorchNet of the case's network on the device
    C: Any             # (m, n_out) property rows (in the bound dtype, tn.dtype)
    rhs: Any           # (m,) right-hand sides of the rows (the solver's S.rhs)
    term_rows: Any     # (T, m) bool: which rows make up each disjunct (term)
    gen: Any           # torch.Generator for the falsifier, seeded from the case's rng
    margin_rhs: Any    # rhs moved by 1e-7 of the output scale for strict properties


def torch_case(S, device="cpu") -> TorchCase:
    import torch

    from .tbounds import TorchNet

    if S.opts.torch_threads:
        # OpenMP threads spin while waiting; on a shared 2-core machine more than one thread
        # made small batches ~10x slower (measured: 1.3 s vs 11.8 s on ACAS 1_1 prop 1)
        torch.set_num_threads(S.opts.torch_threads)
    tn = TorchNet(S.net, device, S.opts.bound_dtype)
    C = tn.rows(S.rows)
    if C is None:  # a property row not exact in float32: bound in float64
        tn = TorchNet(S.net, device)
        C = tn.rows(S.rows)
    rhs = tn.tensor(S.rhs)  # float64: comparisons with float32 bounds promote, exactly
    term_rows = torch.zeros(len(S.idx), S.rows.shape[0], dtype=torch.bool, device=tn.device)
    for t, ix in enumerate(S.idx):
        term_rows[t, torch.as_tensor(ix, device=tn.device)] = True
    gen = torch.Generator(device=tn.device)
    gen.manual_seed(int(S.rng.integers(2**31)))
    margin_rhs = rhs - (1e-7 * S.out_scale if S.strict else 0.0)
    return TorchCase(tn, C, rhs, term_rows, gen, margin_rhs)
