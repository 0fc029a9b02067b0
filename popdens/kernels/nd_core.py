"""Primitives shared by the N-D kernels (:mod:`popdens.kernels.nd`) and their tiled
variants (:mod:`popdens.kernels.nd_tiles`): limiters, the local face flux, the mass of a
linear reconstruction between two positions and the cut-off of tiny masses."""

from __future__ import annotations

from numba import njit

SCHEME_UPWIND = 0
SCHEME_MC = 1
SCHEME_VANLEER = 2
# Cell masses below this are set to 0 after every sub-step (as in the 1D stepper).
TINY = 1e-150


@njit(cache=True, inline="always")
def _limited(left, right, scheme):
    """Limited mass difference of a cell from its one-sided differences ``l``, ``r``,
    without branches on the data, so that loops over cells vectorise: MC as
    ``max(0, min(2l, c, 2r)) + min(0, max(2l, c, 2r))``
    (``c = (l + r) / 2``; one of the two terms is 0, both are when the signs differ),
    van Leer with the denominator swapped for 1 where the product is not positive."""
    if scheme == SCHEME_MC:
        centre = 0.5 * (left + right)
        a = 2.0 * left
        b = 2.0 * right
        return (max(0.0, min(min(a, centre), b)) + min(0.0, max(max(a, centre), b)))
    if scheme == SCHEME_VANLEER:
        product = left * right
        positive = product > 0.0
        return 2.0 * max(product, 0.0) / ((left + right) if positive else 1.0)
    return 0.0


@njit(cache=True, inline="always")
def _local_flux(s, p_below, g_below, p_above, g_above):
    """Signed flux through a face whose departure point lies ``s`` cells below it
    (``|s| <= 1``): the top ``s`` of the cell below when ``s >= 0``, minus the bottom
    ``-s`` of the cell above otherwise (linear profiles ``p + g (theta - 1/2)``)."""
    up = s >= 0.0
    p = p_below if up else p_above
    g = g_below if up else -g_above
    return s * (p + 0.5 * g * (1.0 - abs(s)))


@njit(cache=True, inline="always")
def _kept(mass):
    """Masses below TINY (and negative round-off) become 0: subnormal tails are ~100x
    slower to compute with (see kernels.stepper.TINY)."""
    return mass if mass >= TINY else 0.0


@njit(cache=True, inline="always")
def _add_upward(flux, watched, start, width):
    for t in range(width):
        watched[start + t] += max(flux[t], 0.0)


@njit(cache=True, inline="always")
def _mass_between(p, g, base, inner, t, n, a, b):
    """Mass of the reconstruction of one line between positions ``a <= b`` (cell units,
    clipped to [0, n])."""
    if a < 0.0:
        a = 0.0
    if b > n:
        b = float(n)
    if b <= a:
        return 0.0
    ia = int(a)
    ib = int(b)
    ta = a - ia
    ka = base + ia * inner + t
    if ia == ib:
        tb = b - ib
        return (tb - ta) * (p[ka] + 0.5 * g[ka] * (ta + tb - 1.0))
    total = (1.0 - ta) * (p[ka] + 0.5 * g[ka] * ta)
    for c in range(ia + 1, min(ib, n)):
        total += p[base + c * inner + t]
    if ib < n:
        tb = b - ib
        kb = base + ib * inner + t
        total += tb * (p[kb] + 0.5 * g[kb] * (tb - 1.0))
    return total
