"""The gather form of the jump mixture (``jumps._mixture_shifts``, used for current
synapses) against the scatter form it replaces (bit for bit) and against the naive NumPy
twin in ``tests/reference.py``."""

from __future__ import annotations

import numpy as np
import pytest

from popdens.kernels import jumps
from popdens.kernels.transport import poisson_weights

from .. import reference as ref

SHIFTS = (0.875, -3.5, 2.0, -1.0, 0.3, -7.25, 5.0, -0.6, 12.4, -30.0, 1.0, 0.0)


def _case(rng):
    n = int(rng.integers(12, 120))
    k = int(rng.integers(1, 4))
    shifts = rng.choice(SHIFTS, size=k)
    if rng.random() < 0.3:
        shifts = rng.uniform(-10.0, 10.0, size=k)
    lams = rng.uniform(0.01, 2.0, size=k)
    p = rng.random(n) * (rng.random(n) < 0.8)
    return n, shifts, lams, p / p.sum()


@pytest.mark.parametrize("seed", range(4))
def test_gather_equals_scatter_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    checked = 0
    for _ in range(300):
        n, shifts, lams, p = _case(rng)
        k = shifts.size
        lo, hi = jumps.mixture_interior(shifts, k, n)
        if hi - lo < 1:
            continue
        probs = lams / lams.sum()
        weights = np.zeros(512)
        count = poisson_weights(lams.sum(), weights, 1e-10)
        scheme = int(rng.integers(0, 3))
        immediate = bool(rng.random() < 0.5)
        reset = int(rng.integers(0, n - 1))
        frac = float(rng.random()) if rng.random() < 0.5 else 0.0
        fractional = bool(np.any(np.abs(shifts - np.round(shifts)) >= 1e-9))
        gathered, scattered = np.zeros(n), np.zeros(n)
        f1 = jumps._mixture_shifts(p, np.zeros(n), shifts, probs, k, weights, count,
                                   gathered, np.zeros(n), scheme, immediate, reset, frac,
                                   fractional, lo, hi)
        f2 = jumps._mixture_scatter(p, np.zeros(n), shifts, np.ones(k), probs, k, weights,
                                    count, scattered, np.zeros(n), scheme, immediate, reset,
                                    frac, fractional)
        assert np.array_equal(gathered, scattered)
        assert f1 == f2
        checked += 1
    assert checked > 200


@pytest.mark.parametrize("scheme", [0, 1, 2])
def test_gather_matches_the_numpy_twin(scheme):
    rng = np.random.default_rng(11 + scheme)
    for _ in range(40):
        n, shifts, lams, p = _case(rng)
        k = shifts.size
        lo, hi = jumps.mixture_interior(shifts, k, n)
        if hi - lo < 1:
            continue
        weights = np.zeros(512)
        count = poisson_weights(lams.sum(), weights, 1e-14)
        fractional = bool(np.any(np.abs(shifts - np.round(shifts)) >= 1e-9))
        got = np.zeros(n)
        fired = jumps._mixture_shifts(p, np.zeros(n), shifts, lams / lams.sum(), k,
                                      weights, count, got, np.zeros(n), scheme, False, 0,
                                      0.0, fractional, lo, hi)
        want, want_fired = ref.mixture_jump(p, list(shifts), list(lams), scheme)
        # the kernel cuts the Poisson series at a tail of 1e-14, the twin at 60 terms
        np.testing.assert_allclose(got, want, atol=1e-13)
        # the fired mass: the same series cut, summed (measured 5.7e-16)
        assert fired == pytest.approx(want_fired, abs=1e-13)
