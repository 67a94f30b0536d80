"""Matrix conditioning, in float64: whether a factorisation's outputs or its gradients can be
judged on a matrix (``fuzz.campaign.sensitivity``'s pivoting and gradient rules)."""

from __future__ import annotations

PIVOT_COND_LIMIT = 1e4  # 2-norm condition number above which pivots and factors are noise-chosen
REPEATED_GAP = 1e-3     # relative gap between singular values under which they count as repeated


def square_operands(node, *envs) -> list:
    """The node's square (batched) matrix operands, from the first env that has each: a pivoting
    op's matrix may be any argument (``linalg_solve(A, b)``, ``lu_solve(LU, pivots, b)``) and may
    be a parameter of the model rather than an input."""
    found = []
    for name in dict.fromkeys(node.inputs()):
        t = next((env[name] for env in envs if env.get(name) is not None), None)
        if t is not None and t.dim() >= 2 and t.shape[-1] == t.shape[-2] and t.numel() > 0:
            found.append(t)
    return found


def ill_conditioned(*matrices) -> bool:
    """Whether any of these square (batched) matrices has a condition number above
    ``PIVOT_COND_LIMIT`` (or is singular) in float64; True when it cannot be told."""
    import torch

    for t in matrices:
        if not (t.is_floating_point() or t.is_complex()):
            return True   # cannot tell
        try:
            cond = torch.linalg.cond(t.detach().to("cpu", torch.complex128 if t.is_complex() else torch.float64))
        except Exception:  # noqa: BLE001 - cannot tell: do not judge
            return True
        if bool((~torch.isfinite(cond) | (cond > PIVOT_COND_LIMIT)).any()):
            return True
    return False


def fragile_matrix(t) -> bool:
    """A (batched) matrix whose decomposition gradients cannot be judged: rank-deficient or
    ill-conditioned (``PIVOT_COND_LIMIT``), or with (nearly) repeated singular values; True when
    it cannot be told."""
    import torch

    if not (t.is_floating_point() or t.is_complex()):
        return True
    try:
        s = torch.linalg.svdvals(t.detach().to("cpu", torch.complex128 if t.is_complex() else torch.float64))
    except Exception:  # noqa: BLE001
        return True
    if s.numel() == 0:
        return False
    top = s[..., :1]
    if bool((~torch.isfinite(s)).any()) or bool((s[..., -1:] <= top / PIVOT_COND_LIMIT).any()):
        return True
    gaps = (s[..., :-1] - s[..., 1:]) / top
    return bool((gaps < REPEATED_GAP).any()) if gaps.numel() else False
