"""The stationary solver's compiled kernels against naive numpy twins: the frozen jump
mixture (``kernels.frozen``), applied to many columns at once with per-column bands,
and the dense LU factorisation (``kernels.dense_lu``)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import poisson

from popdens.kernels.dense_lu import lu_compress, lu_factor, lu_solve_compressed
from popdens.kernels.frozen import FrozenMixture, frozen_mixture

from .. import reference as ref


def _columns(rng, n):
    """Random masses, sparse ones, and unit vectors at the bottom, middle and top (the
    bands of single cells, reflected at the lower face, crossing at the upper one)."""
    dense = rng.random((3, n)) ** 3
    sparse = np.where(rng.random((3, n)) < 0.8, 0.0, rng.random((3, n)))
    units = np.eye(n)[[0, 2, n // 2, n - 3, n - 1]]
    return np.vstack([dense, sparse, units])


@pytest.mark.parametrize("shifts, probabilities", [
    ((0.875, -3.5), (0.7, 0.3)),        # the column's excitation and inhibition
    ((2.0, -1.0), (0.5, 0.5)),          # whole cells (no reconstruction)
    ((1.3, -0.4, 3.0), (0.2, 0.5, 0.3)),
])
@pytest.mark.parametrize("immediate", [False, True])
def test_frozen_mixture_matches_naive_twin(shifts, probabilities, immediate):
    rng = np.random.default_rng(7)
    n = 40
    weights = poisson.pmf(np.arange(12), 3.0)
    factors = rng.uniform(0.0, 2.0, (weights.size - 1, n))
    reset = np.zeros(n)
    reset[25], reset[26] = 0.6, 0.4
    mix = FrozenMixture(np.array(shifts), np.array(probabilities), weights, factors,
                        reset if immediate else np.zeros(n), immediate)
    columns = _columns(rng, n)
    out = np.empty_like(columns)
    crossed = np.empty(columns.shape[0])
    iterates = np.empty((weights.size - 1, n))
    frozen_mixture(columns, mix, out, crossed, iterates)
    for row, x in enumerate(columns):
        want, fired, want_iterates = ref.frozen_mixture(
            x, shifts, probabilities, weights, factors, reset if immediate else None)
        # round-off of sums of O(1) terms in a different order
        np.testing.assert_allclose(out[row], want, rtol=0, atol=1e-14)
        assert crossed[row] == pytest.approx(fired, abs=1e-14)
        if row == 0:
            np.testing.assert_allclose(iterates, want_iterates, rtol=0, atol=1e-14)


@pytest.mark.parametrize("structure", ["dense", "banded"])
def test_dense_lu_solves_as_numpy(structure):
    rng = np.random.default_rng(3)
    n = 60
    a = rng.normal(size=(n, n))
    if structure == "banded":   # as the stationary systems: a band and a few full rows
        rows, cols = np.indices((n, n))
        a[(cols - rows > 4) | (rows - cols > 12)] = 0.0
        a[[20, 21, n - 1]] = rng.normal(size=(3, n))
    b = rng.normal(size=n)
    lu = a.copy()
    pivots = np.zeros(n, dtype=np.int64)
    assert lu_factor(lu, pivots)
    # partial pivoting: errors of a few ulps times the condition number
    np.testing.assert_allclose(lu_solve_compressed(lu_compress(lu), pivots, b),
                               np.linalg.solve(a, b), rtol=0,
                               atol=1e-12 * np.linalg.cond(a))


@pytest.mark.parametrize("structure", ["dense", "banded"])
def test_compressed_factors_solve_bit_for_bit_as_the_dense_ones(structure):
    """lu_solve_compressed skips the exact zeros of the factors (each a 0 * x term of
    the dense substitution, _dense_solve): the same products in the same order, so the
    same bits; and it holds every nonzero (NumPy's count of the factors)."""
    rng = np.random.default_rng(5)
    n = 80
    a = rng.normal(size=(n, n))
    if structure == "banded":   # a band, a few full rows and full last columns
        rows, cols = np.indices((n, n))
        a[(cols - rows > 3) | (rows - cols > 9)] = 0.0
        a[[30, n - 2]] = rng.normal(size=(2, n))
        a[:, -3:] = rng.normal(size=(n, 3))
    lu = a.copy()
    pivots = np.zeros(n, dtype=np.int64)
    assert lu_factor(lu, pivots)
    factors = lu_compress(lu)
    off_diagonal = lu[~np.eye(n, dtype=bool)]
    assert factors[0][-1] + factors[3][-1] == np.count_nonzero(off_diagonal)
    np.testing.assert_array_equal(factors[6], np.diag(lu))
    for b in rng.normal(size=(4, n)):
        assert np.array_equal(lu_solve_compressed(factors, pivots, b),
                              _dense_solve(lu, pivots, b))


def _dense_solve(lu, pivots, b):
    """Forward and back substitution with the dense factors, every term (plain Python)."""
    n = lu.shape[0]
    x = [float(value) for value in b]
    for k in range(n):
        x[k], x[pivots[k]] = x[pivots[k]], x[k]
    for i in range(n):
        total = x[i]
        for j in range(i):
            total -= float(lu[i, j]) * x[j]
        x[i] = total
    for i in range(n - 1, -1, -1):
        total = x[i]
        for j in range(i + 1, n):
            total -= float(lu[i, j]) * x[j]
        x[i] = total / float(lu[i, i])
    return np.array(x)


def test_dense_lu_reports_a_singular_matrix():
    a = np.ones((4, 4))
    assert not lu_factor(a, np.zeros(4, dtype=np.int64))
