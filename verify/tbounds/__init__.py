"""Batched, soundly rounded bound propagation in torch (CPU or CUDA, same code path).

Contract (every bound family in this package keeps it):

    given a ``TorchNet``, a batch of input boxes ``lo, hi`` of shape (B, n_in) and a
    matrix of property rows ``C`` (m, n_out), return ``lb`` of shape (B, m) such that
    for every b, every real x with lo[b] <= x <= hi[b] and every row r:

        (C @ f(x))[r] >= lb[b, r]

    where ``f`` is the *real-valued* network whose weights are the float64 values held
    by ``verify.Network`` (exact widenings of the file's float32 weights).

The bounds are computed in float64 and every floating-point operation a bound rests on
is accounted for (``rounding``): a matrix product's result is moved outward by the
a-priori error bound ``gamma_n * |A| |B|`` (Higham, *Accuracy and Stability of Numerical
Algorithms*, 2nd ed., section 3.1; valid for any summation order and with FMA), products
and sums by their relative error ``u = 2**-53``, and a tiny absolute term covers
underflow. So a bound is a bound of the exact real network, not of its float evaluation,
whatever BLAS is used (CPU or GPU; TF32 is never used: everything is float64).

Families (one file each):

* ``interval``  -- interval arithmetic, layer by layer.
* ``crown``     -- back-substitution (CROWN/DeepPoly) of linear relaxations: intermediate
  bounds for every hidden layer, then the property rows. ReLU ``a = max(z, 0)`` with
  ``l < 0 < u`` is relaxed by ``a <= s (z - l)`` (``s = u / (u - l)``, the intercept
  rounded upward so the line stays above the ReLU) and ``a >= alpha z`` for any
  ``alpha`` in [0, 1] (always valid, whatever ``l, u``).
* ``alpha``     -- CROWN with the lower slopes ``alpha`` of the property rows optimised by
  projected gradient ascent on the bound (alpha-CROWN). Every iterate is a sound bound,
  so the best one per row is kept.
"""

from .net import TorchNet

__all__ = ["TorchNet"]
