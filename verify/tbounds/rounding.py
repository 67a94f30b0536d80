"""Outward rounding for float64 (and float32) bound arithmetic (see the package docstring).

``U`` is the unit roundoff of float64 (``unit(dtype)`` gives it, and ``TINY``, for float32). ``gamma(n)`` bounds the relative error of an
n-term dot product: |fl(a.b) - a.b| <= gamma(n) |a|.|b| (Higham, Lemma 3.1/3.5, any order,
with or without FMA). It is doubled here so that computing the error term itself in
floating point (a positive sum, relative error <= gamma too) cannot make it too small.
``TINY`` covers gradual underflow (each product can lose at most 2**-1075 absolutely).
"""

U = 2.0 ** -53
TINY = 1e-290
# float32: u = 2**-24; an underflowing product loses at most 2**-126 even where denormals
# are flushed to zero, so 1e-30 covers any sum of up to ~1e7 of them
U32 = 2.0 ** -24
TINY32 = 1e-30


def unit(dtype):
    """(unit roundoff, underflow charge) of a torch dtype (float64 or float32; nothing else)."""
    name = str(dtype)
    if name == "torch.float64":
        return U, TINY
    if name == "torch.float32":
        return U32, TINY32
    raise TypeError(f"no rounding model for {name}")


def gamma(n: int, u: float = U) -> float:
    nu = (n + 2) * u
    return 2.0 * nu / (1.0 - nu)


def down(x, mag, n_terms=4):
    """x minus the rounding error of a sum of ``n_terms`` terms of total magnitude ``mag``."""
    return x - gamma(n_terms) * mag - TINY


def up(x, mag, n_terms=4):
    return x + gamma(n_terms) * mag + TINY
