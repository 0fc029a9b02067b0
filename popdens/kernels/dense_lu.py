"""Dense LU factorisation with partial pivoting, for the stationary solver's systems.

LAPACK's (``scipy.linalg.lu_factor``) runs OpenBLAS threads, which on a loaded machine
cost far more CPU than the factorisation itself (measured on 2 busy cores: 125 ms
instead of 0.8 ms for a 228 x 228 matrix); SuperLU on the same matrix spends as much
converting it to a sparse format as factorising it. The stationary systems are banded
plus a few dense rows (reinjection at reset, the crossings), so this factorisation
skips the rows with nothing to eliminate in each column and the columns past the pivot
row's last nonzero.
"""

from __future__ import annotations

from numba import njit

__all__ = ["lu_factor", "lu_solve"]


@njit(cache=True)
def lu_factor(a, pivots):
    """Factorise the square ``a`` in place as ``P a = L U`` (unit lower ``L`` below the
    diagonal, ``U`` on and above it); ``pivots[k]`` is the row swapped with row ``k``
    at step ``k``. Returns False if a pivot is exactly zero (singular matrix)."""
    n = a.shape[0]
    for k in range(n):
        best = k
        largest = abs(a[k, k])
        for i in range(k + 1, n):
            if abs(a[i, k]) > largest:
                best = i
                largest = abs(a[i, k])
        pivots[k] = best
        if largest == 0.0:
            return False
        if best != k:
            for j in range(n):
                a[k, j], a[best, j] = a[best, j], a[k, j]
        inverse = 1.0 / a[k, k]
        # the pivot row's last nonzero: banded rows update only their band
        last = k
        for j in range(n - 1, k, -1):
            if a[k, j] != 0.0:
                last = j
                break
        for i in range(k + 1, n):
            if a[i, k] != 0.0:
                multiplier = a[i, k] * inverse
                a[i, k] = multiplier
                for j in range(k + 1, last + 1):
                    a[i, j] -= multiplier * a[k, j]
    return True


@njit(cache=True)
def lu_solve(lu, pivots, b):
    """Solve ``a x = b`` with the factors of :func:`lu_factor`; returns ``x``."""
    n = lu.shape[0]
    x = b.copy()
    for k in range(n):
        p = pivots[k]
        if p != k:
            x[k], x[p] = x[p], x[k]
    for i in range(n):
        total = x[i]
        for j in range(i):
            total -= lu[i, j] * x[j]
        x[i] = total
    for i in range(n - 1, -1, -1):
        total = x[i]
        for j in range(i + 1, n):
            total -= lu[i, j] * x[j]
        x[i] = total / lu[i, i]
    return x
