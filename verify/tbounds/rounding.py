"""Outward rounding for float64 bound arithmetic (see the package docstring).

``U`` is the unit roundoff of float64. ``gamma(n)`` bounds the relative error of an
n-term dot product: |fl(a.b) - a.b| <= gamma(n) |a|.|b| (Higham, Lemma 3.1/3.5, any order,
with or without FMA). It is doubled here so that computing the error term itself in
floating point (a positive sum, relative error <= gamma too) cannot make it too small.
``TINY`` covers gradual underflow (each product can lose at most 2**-1075 absolutely).
"""

U = 2.0 ** -53
TINY = 1e-290


def gamma(n: int) -> float:
    nu = (n + 2) * U
    return 2.0 * nu / (1.0 - nu)


def down(x, mag, n_terms=4):
    """x minus the rounding error of a sum of ``n_terms`` terms of total magnitude ``mag``."""
    return x - gamma(n_terms) * mag - TINY


def up(x, mag, n_terms=4):
    return x + gamma(n_terms) * mag + TINY
