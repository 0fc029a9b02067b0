"""Dense LU factorisation with partial pivoting, for the stationary solver's systems.

LAPACK's (``scipy.linalg.lu_factor``) runs OpenBLAS threads, which on a loaded machine
cost far more CPU than the factorisation itself (measured on 2 busy cores: 125 ms
instead of 0.8 ms for a 228 x 228 matrix); SuperLU on the same matrix spends as much
converting it to a sparse format as factorising it. The stationary systems are banded
plus a few dense rows (reinjection at reset, the crossings), so this factorisation
skips the rows with nothing to eliminate in each column and the columns past the pivot
row's last nonzero. The factors stay sparse (a band, a few full rows and the crossing
columns), so :func:`lu_compress` stores their nonzeros by rows once per factorisation
and :func:`lu_solve_compressed` solves with them: the forward and back substitution of
the dense factors without their exact zeros (on the cortical column's 228-unknown
systems 7-10 % of the entries; ``steady_state`` solves many times per factorisation).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["lu_factor", "lu_compress", "lu_solve_compressed"]


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
def lu_compress(lu):
    """The nonzeros of the factors of :func:`lu_factor`, by rows in column order:
    ``(lower_offsets, lower_columns, lower_values, upper_offsets, upper_columns,
    upper_values, diagonal)``; row ``i`` of ``L`` (below the diagonal) is
    ``lower_*[lower_offsets[i]:lower_offsets[i + 1]]``, of ``U`` (above it) likewise."""
    n = lu.shape[0]
    lower_count = 0
    upper_count = 0
    for i in range(n):
        for j in range(n):
            if lu[i, j] != 0.0:
                if j < i:
                    lower_count += 1
                elif j > i:
                    upper_count += 1
    lower_offsets = np.zeros(n + 1, dtype=np.int64)
    upper_offsets = np.zeros(n + 1, dtype=np.int64)
    lower_columns = np.empty(lower_count, dtype=np.int64)
    upper_columns = np.empty(upper_count, dtype=np.int64)
    lower_values = np.empty(lower_count)
    upper_values = np.empty(upper_count)
    diagonal = np.empty(n)
    lower = 0
    upper = 0
    for i in range(n):
        for j in range(n):
            value = lu[i, j]
            if j == i:
                diagonal[i] = value
            elif value != 0.0:
                if j < i:
                    lower_columns[lower] = j
                    lower_values[lower] = value
                    lower += 1
                else:
                    upper_columns[upper] = j
                    upper_values[upper] = value
                    upper += 1
        lower_offsets[i + 1] = lower
        upper_offsets[i + 1] = upper
    return (lower_offsets, lower_columns, lower_values, upper_offsets, upper_columns,
            upper_values, diagonal)


@njit(cache=True)
def lu_solve_compressed(factors, pivots, b):
    """Solve ``a x = b`` with the factors of :func:`lu_factor` as compressed by
    :func:`lu_compress`; returns ``x``. The substitution of the dense factors in the
    same order, without their exact zeros (the same result for finite data: a skipped
    term is an exact ``0 * x``)."""
    (lower_offsets, lower_columns, lower_values, upper_offsets, upper_columns,
     upper_values, diagonal) = factors
    n = diagonal.shape[0]
    x = b.copy()
    for k in range(n):
        p = pivots[k]
        if p != k:
            x[k], x[p] = x[p], x[k]
    for i in range(n):
        total = x[i]
        for e in range(lower_offsets[i], lower_offsets[i + 1]):
            total -= lower_values[e] * x[lower_columns[e]]
        x[i] = total
    for i in range(n - 1, -1, -1):
        total = x[i]
        for e in range(upper_offsets[i], upper_offsets[i + 1]):
            total -= upper_values[e] * x[upper_columns[e]]
        x[i] = total / diagonal[i]
    return x
