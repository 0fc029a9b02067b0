r"""Closed-form bin-to-bin transfer of the binned Markov reduction.

Within a voltage bin the neurons are taken uniform on :math:`[a, b]` (the widest interval
inside the bin with the bin's mean voltage :math:`\bar v`, the closure of Chang et al.'s
code, ``dsODE_module_bins.m``). One step adds an independent Gaussian input
:math:`Z \sim \mathcal N(\mu, \sigma^2)`, so the new voltage :math:`X = U + Z` has

.. math::

    P(X \le x) = \frac{G(x - a - \mu) - G(x - b - \mu)}{b - a}, \qquad
    E[X; X \le x] = \frac{x\,[G]_{x-b-\mu}^{x-a-\mu} - [K]_{x-b-\mu}^{x-a-\mu}}{b - a},

with :math:`G(y) = y\,\Phi(y/\sigma) + \sigma\,\varphi(y/\sigma)` (the antiderivative of
:math:`\Phi(y/\sigma)`) and :math:`K(y) = \tfrac12 (y^2 + \sigma^2)\Phi(y/\sigma)
+ \tfrac12 y\sigma\,\varphi(y/\sigma)` (that of :math:`G`). Differences of these at the
bin edges give the number of neurons and their summed voltage landing in every bin, and
the mass above the threshold (the spikes). For :math:`b - a` below ``POINT_WIDTH`` the
bin is treated as a point mass: :math:`P = \Phi(y/\sigma)`,
:math:`E[X; X \le x] = (x - y)\Phi(y/\sigma) - \sigma\varphi(y/\sigma)`,
:math:`y = x - \bar v - \mu`.
"""

from __future__ import annotations

import math

from numba import njit

__all__ = ["uniform_support", "cumulative", "transfer_bin", "POINT_WIDTH", "CUTOFF"]

# Below this width (voltage units) a bin's uniform law is replaced by a point mass: the
# divided differences of G and K lose ~1e-16 * 140 / width relative accuracy.
POINT_WIDTH = 1e-3
# Edges farther than CUTOFF standard deviations from the shifted support are taken as
# exactly 0 or 1 (Phi(-8.5) = 9.5e-18).
CUTOFF = 8.5
_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@njit(cache=True)
def uniform_support(mean, lo, hi):
    """Widest interval [a, b] within [lo, hi] whose midpoint is ``mean`` (a point at
    ``mean`` when it lies outside [lo, hi])."""
    if mean <= lo or mean >= hi:
        return mean, mean
    half = min(mean - lo, hi - mean)
    return mean - half, mean + half


@njit(cache=True)
def _g_k(y, sigma):
    z = y / sigma
    cdf = 0.5 * math.erfc(-z / _SQRT2)
    pdf = _INV_SQRT_2PI * math.exp(-0.5 * z * z)
    g = y * cdf + sigma * pdf
    k = 0.5 * (y * y + sigma * sigma) * cdf + 0.5 * y * sigma * pdf
    return cdf, pdf, g, k


@njit(cache=True)
def cumulative(x, a, b, mu, sigma):
    """(P(X <= x), E[X; X <= x]) for X = U[a, b] + N(mu, sigma^2)."""
    if b - a < POINT_WIDTH:
        y = x - 0.5 * (a + b) - mu
        cdf, pdf, _, _ = _g_k(y, sigma)
        return cdf, (x - y) * cdf - sigma * pdf
    _, _, g_hi, k_hi = _g_k(x - a - mu, sigma)
    _, _, g_lo, k_lo = _g_k(x - b - mu, sigma)
    w = b - a
    return (g_hi - g_lo) / w, (x * (g_hi - g_lo) - (k_hi - k_lo)) / w


@njit(cache=True)
def transfer_bin(weight, a, b, mu, sigma, edges, mass, moment):
    """Add the image of ``weight`` neurons uniform on [a, b] under + N(mu, sigma^2).

    ``edges`` (length K) are the upper edges of the K bins, the last one the threshold;
    bin 0 is open below. ``mass[j]`` and ``moment[j]`` (length K + 1, the last entry:
    above threshold) receive the number of neurons and their summed voltage. Edges more
    than ``CUTOFF`` sigma away are not evaluated (exact 0 / 1 there).
    """
    total_mean = 0.5 * (a + b) + mu
    reach = CUTOFF * sigma
    prev_f = 0.0
    prev_m = 0.0
    n_edges = edges.shape[0]
    for j in range(n_edges + 1):
        if j == n_edges:
            f, m = 1.0, total_mean
        elif edges[j] < a + mu - reach:
            f, m = 0.0, 0.0
        elif edges[j] > b + mu + reach:
            f, m = 1.0, total_mean
        else:
            f, m = cumulative(edges[j], a, b, mu, sigma)
        df = f - prev_f
        if df > 0.0:
            mass[j] += weight * df
            moment[j] += weight * (m - prev_m)
        prev_f = f
        prev_m = m
        if f == 1.0 and j < n_edges and edges[j] > b + mu + reach:
            return
