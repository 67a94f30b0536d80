"""Matrix conditioning, in float64: whether a factorisation's outputs or its gradients can be
judged on a matrix (``fuzz.campaign.sensitivity``'s pivoting and gradient rules)."""

from __future__ import annotations

PIVOT_COND_LIMIT = 1e4  # 2-norm condition number above which pivots and factors are noise-chosen
REPEATED_GAP = 1e-3     # relative gap between singular values under which they count as repeated

# Factorisations with partial pivoting: the pivot in each column is an argmax of magnitudes, so on
# a singular or ill-conditioned matrix it is chosen by rounding noise, and the factors (and the
# pivots) jump with a 1-ulp change of the input. Their outputs are judged only on well-conditioned
# inputs (``PIVOT_COND_LIMIT``, 2-norm condition number in float64).
PIVOTING_OPS = {
    "linalg_det", "det", "logdet", "linalg_slogdet", "slogdet", "linalg_lu", "lu", "linalg_lu_factor",
    "linalg_lu_factor_ex", "lu_with_info", "linalg_solve", "linalg_solve_ex", "solve", "linalg_inv",
    "linalg_inv_ex", "inverse", "lu_solve", "linalg_lu_solve",
}


# Decompositions whose vector outputs (by output index) are unique only up to sign, or up to a
# rotation within a repeated singular value or eigenvalue: on a matrix with zero, repeated or
# nearly repeated singular values (``fragile_matrix``) two right answers differ
# (seventeenth session: U of an SVD of a padded, rank-deficient matrix, a column negated by
# inductor's run). The values (S, eigenvalues) stay judged.
VECTOR_OUTPUTS = {"svd": (0, 2), "linalg_svd": (0, 2), "eigh": (1,), "linalg_eigh": (1,), "eig": (1,),
                  "linalg_eig": (1,)}


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


def non_unique_vectors(node, short: str, *envs) -> list[str]:
    """The outputs of ``node`` (op ``short``) that are vectors of a decomposition
    (``VECTOR_OUTPUTS``) of a matrix with zero or (nearly) repeated singular values: unique only up
    to a rotation within them, so two right answers differ. The operand is read from the first env
    that has it; one that cannot be read counts as such a matrix."""
    if short not in VECTOR_OUTPUTS:
        return []
    operand = next((env[name] for name in node.inputs() for env in envs
                    if env.get(name) is not None and env[name].dim() >= 2 and env[name].numel() > 0), None)
    if operand is not None and not fragile_matrix(operand):
        return []
    return [node.outputs[k] for k in VECTOR_OUTPUTS[short] if k < len(node.outputs)]


# Decompositions LAPACK runs iteratively: on a matrix with a NaN or infinite entry one driver
# returns NaN and another raises ``LinAlgError`` ("failed to converge"); eager's ``svdvals``
# (``_linalg_svd(compute_uv=False)``) returns NaN where the full ``linalg.svd`` a compiler
# decomposes it into raises (c185, model 169). Neither is a defined result. By ``short_name``
# (underscores stripped: ``aten::_linalg_svd`` is ``linalg_svd``).
ITERATIVE_OPS = {"svd", "linalg_svd", "svdvals", "linalg_svdvals", "eig", "linalg_eig", "eigvals",
                 "linalg_eigvals", "eigh", "linalg_eigh", "eigvalsh", "linalg_eigvalsh", "pinv", "linalg_pinv",
                 "matrix_rank", "linalg_matrix_rank", "cond", "linalg_cond", "lstsq", "linalg_lstsq", "matrix_norm",
                 "linalg_matrix_norm", "norm", "linalg_norm", "nuclear_norm"}


def nonfinite_matrix_call(graph, eager_env: dict) -> str | None:
    """The name of the first call of an iterative decomposition (``ITERATIVE_OPS``) whose float
    operand holds a NaN or infinite value in eager's run, or None: where such a call raises
    ``LinAlgError`` under a compiler, eager's NaN is no more right (``Session.run_test``)."""
    import torch

    from fuzz.ir.opnames import short_name

    for node in graph.nodes:
        if short_name(node.op) not in ITERATIVE_OPS:
            continue
        for name in node.inputs():
            t = eager_env.get(name)
            if isinstance(t, torch.Tensor) and (t.is_floating_point() or t.is_complex()) and t.numel() \
                    and not bool(torch.isfinite(t).all()):
                return node.name
    return None
