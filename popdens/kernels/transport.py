"""1D conservative transport kernels on cell masses.

Every kernel works on *cell masses* ``p[i]`` (probability in cell ``i``) of a uniform
grid with cells ``0 .. N-1``. Positions are measured in cell units from the lower face:
``x = (v - lower) / dx``, so face ``j`` sits at ``x = j``.

Transport by a monotone map (the deterministic flow over a time step, or a synaptic jump)
is done in flux form by *remapping*: target cell ``j`` receives the mass that lay between
the departure points of its two faces. The mass inside a cell is reconstructed as a
linear profile ``q(theta) = p + g (theta - 1/2)`` over the cell fraction ``theta`` in
[0, 1] (``g = 0``: first-order donor cell; limited ``g``: second order). Because the mass
a source cell hands out is split exactly into pieces, mass is conserved to round-off;
because limited profiles are non-negative, so are the new masses. Departure points below
the lower face are clamped to it (reflecting boundary: mass piles into cell 0); mass
whose departure lies above the upper face is counted as threshold outflux.

Performance notes. The public kernels take whole arrays. The fused stepper
(:mod:`popdens.kernels.stepper`) instead calls the private ``_*_at`` twins, which address
a population inside a larger array by a base offset: in compiled code every array view,
and every array passed to a function that is not inlined, costs atomic reference-count
updates, which at a few hundred cells are a sizeable part of a sub-step. Small helpers
are inlined (``inline="always"``); the large kernels are not, to keep compilation
short. Inner loops index with unsigned loop counters (``np.uint64``), so numba emits no
negative-index wraparound and LLVM vectorizes them. Results do not depend on which twin
runs, up to round-off.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .typed import INT0

__all__ = [
    "limited_slopes",
    "mass_between",
    "remap",
    "departure_table",
    "remap_flux_form_into",
    "departure_runs",
    "shift_integer",
    "poisson_weights",
    "compound_jump",
    "bernoulli",
    "sg_coefficients",
    "sg_implicit_step",
]

SCHEME_UPWIND = 0
SCHEME_MC = 1
SCHEME_VANLEER = 2
# Largest departure offset (cells) for which the run-wise remap sums cells directly.
DIRECT_OFFSET = 4


@njit(cache=True)
def _slopes_at(p, p0, n, g, scheme):
    """``g[0 .. n-1]`` = limited slopes of the cells ``p[p0 .. p0 + n - 1]``."""
    g[0] = 0.0
    g[n - 1] = 0.0
    if n < 3:
        return
    one = np.uint64(1)
    two = np.uint64(2)
    base = np.uint64(p0)
    inner = np.uint64(n - 2)
    if scheme == SCHEME_UPWIND:
        for t in range(inner):
            g[t + one] = 0.0
    elif scheme == SCHEME_MC:
        for t in range(inner):
            i = base + t
            left = p[i + one] - p[i]
            right = p[i + two] - p[i + one]
            # min(centred, 2 left, 2 right) for rising, max(...) for falling p: the
            # smallest magnitude with the common sign (abs and copysign are exact)
            mag = min(abs(0.5 * (left + right)), abs(2.0 * left), abs(2.0 * right))
            g[t + one] = math.copysign(mag, left) if left * right > 0.0 else 0.0
    else:
        for t in range(inner):
            i = base + t
            left = p[i + one] - p[i]
            right = p[i + two] - p[i + one]
            monotone = left * right > 0.0
            # a harmless denominator where the slope is 0 anyway (no division by 0)
            total = left + right if monotone else 1.0
            harmonic = 2.0 * left * right / total
            g[t + one] = harmonic if monotone else 0.0


@njit(cache=True)
def limited_slopes(p, g, scheme):
    """Fill ``g`` with the limited mass differences of ``p`` (0 at the two edge cells).

    ``scheme`` 0: zero (donor cell, first order); 1: monotonized-central (MC) limiter;
    2: van Leer. Both limiters keep ``|g| <= 2 p`` so the profile stays >= 0. A cell
    whose one-sided differences ``left``, ``right`` have ``left * right <= 0`` (an
    extremum) gets ``g = 0``. The loops are written without branches (selects) so that
    they vectorize; the values are those of the textbook ``if``/``else`` form.
    """
    _slopes_at(p, INT0, p.shape[0], g, scheme)


@njit(cache=True)
def mass_between(p, g, a, b):
    """Mass of the reconstruction between positions ``a <= b`` (cell units, clipped to
    [0, N])."""
    n = p.shape[0]
    if a < 0.0:
        a = 0.0
    if b > n:
        b = float(n)
    if b <= a:
        return 0.0
    ia = int(math.floor(a))
    ib = int(math.floor(b))
    if ia >= n:
        return 0.0
    ta = a - ia
    if ia == ib:
        tb = b - ib
        return (tb - ta) * (p[ia] + 0.5 * g[ia] * (ta + tb - 1.0))
    total = (1.0 - ta) * (p[ia] + 0.5 * g[ia] * ta)
    for i in range(ia + 1, min(ib, n)):
        total += p[i]
    if ib < n:
        tb = b - ib
        total += tb * (p[ib] + 0.5 * g[ib] * (tb - 1.0))
    return total


@njit(cache=True)
def remap(p, g, departure, out, weight):
    """Add ``weight`` x the remap of ``p`` through ``departure`` to ``out``.

    ``departure[j]`` is the (non-decreasing) departure position of face ``j`` in cell
    units; ``departure[0]`` is treated as the lower face. Returns ``weight`` x the mass
    that leaves through the upper face.
    """
    n = p.shape[0]
    lo = 0.0
    for j in range(n):
        hi = departure[j + 1]
        out[j] += weight * mass_between(p, g, lo, hi)
        lo = hi
    return weight * mass_between(p, g, departure[n], float(n))


@njit(cache=True)
def departure_table(departure, n, cell, frac, quad):
    """Split departure positions into cell index, fraction and ``frac (frac - 1) / 2``.

    Positions are clipped to [0, n]; a position at the upper face maps to cell ``n - 1``
    with fraction 1, so every index is a valid cell."""
    for j in range(departure.shape[0]):
        x = min(max(departure[j], 0.0), float(n))
        i = min(int(math.floor(x)), n - 1)
        t = x - i
        cell[j] = i
        frac[j] = t
        quad[j] = 0.5 * t * (t - 1.0)


@njit(cache=True, inline="always")
def _prefix_at(p, p0, n, cumulative):
    """Fill ``cumulative[i] = p[p0] + ... + p[p0 + i - 1]`` (``n + 1`` entries, first 0).

    A single running sum is bound by the latency of one addition per cell; here four
    running sums over the four quarters of the cells advance together, and the totals of
    the earlier quarters are added to the later ones afterwards. Same sums, summed in a
    different order: the values agree with the plain running sum up to round-off."""
    cumulative[0] = 0.0
    quarter = n // 4
    if quarter < 16:
        total = 0.0
        for i in range(n):
            total += p[p0 + i]
            cumulative[i + 1] = total
        return
    b1 = quarter
    b2 = 2 * quarter
    b3 = 3 * quarter
    c0 = 0.0
    c1 = 0.0
    c2 = 0.0
    c3 = 0.0
    for i in range(quarter):
        c0 += p[p0 + i]
        cumulative[i + 1] = c0
        c1 += p[p0 + b1 + i]
        cumulative[b1 + i + 1] = c1
        c2 += p[p0 + b2 + i]
        cumulative[b2 + i + 1] = c2
        c3 += p[p0 + b3 + i]
        cumulative[b3 + i + 1] = c3
    for i in range(b3 + quarter, n):
        c3 += p[p0 + i]
        cumulative[i + 1] = c3
    offset = cumulative[b1]
    for i in range(b1 + 1, b2 + 1):
        cumulative[i] += offset
    offset = cumulative[b2]
    for i in range(b2 + 1, b3 + 1):
        cumulative[i] += offset
    offset = cumulative[b3]
    for i in range(b3 + 1, n + 1):
        cumulative[i] += offset



@njit(cache=True)
def _face_fluxes(p, g, cell, frac, quad, cumulative, flux):
    """``flux[j]`` = mass crossing face ``j`` (``j = 0 .. n``; 0 at the reflecting lower
    face), given the prefix sums ``cumulative`` of ``p``. See
    :func:`remap_flux_form_into`."""
    n = p.shape[0]
    flux[0] = 0.0
    # unsigned indices: no negative-index wraparound code in the loop
    one = np.uint64(1)
    for j in range(np.uint64(n)):
        face = j + one
        i = np.uint64(cell[face])
        flux[face] = cumulative[face] - (cumulative[i] + frac[face] * p[i]
                                         + quad[face] * g[i])


@njit(cache=True, inline="always")
def _flux_update_at(src, s0, n, flux, dst, d0):
    """``dst[d0 + i] = src[s0 + i] + flux[i] - flux[i + 1]``, negative round-off set to
    0 (``dst`` may be ``src`` with ``d0 == s0``)."""
    one = np.uint64(1)
    source = np.uint64(s0)
    target = np.uint64(d0)
    for i in range(np.uint64(n)):
        value = src[source + i] + (flux[i] - flux[i + one])
        dst[target + i] = 0.0 if value < 0.0 else value


@njit(cache=True)
def remap_flux_form_into(src, g, cell, frac, quad, cumulative, flux, dst):
    """Remap ``src`` through fixed departure points, in flux form, into ``dst``.

    The mass crossing face ``j`` in the step is ``M(j) - M(d_j)``, with ``M`` the
    cumulative mass of the linear reconstruction (masses ``src``, slopes ``g``) and
    ``d_j`` the face's departure point (``cell``/``frac``/``quad`` from
    :func:`departure_table`); ``cumulative`` and ``flux`` are work arrays of ``n + 1``.
    Cell ``i`` of ``dst`` is ``src[i]`` plus the difference of its two face fluxes, so
    mass is conserved by telescoping. The lower face carries no flux (reflecting);
    returns the flux through the upper face. Round-off can leave a cell at
    ``-1e-17``-level where the exact result is 0; those are set to 0. ``dst`` may be
    ``src`` (all fluxes are computed before any cell is written)."""
    n = src.shape[0]
    _prefix_at(src, 0, n, cumulative)
    _face_fluxes(src, g, cell, frac, quad, cumulative, flux)
    _flux_update_at(src, 0, n, flux, dst, 0)
    return flux[n]



@njit(cache=True)
def departure_runs(cell, run_start, run_offset):
    """Split faces ``1 .. n`` into runs where the departure cell is ``face + offset``.

    ``cell`` is the departure-cell table of the ``n + 1`` faces (from
    :func:`departure_table`). Run ``r`` covers faces ``run_start[r] ..
    run_start[r + 1] - 1``, whose departure cells are ``face + run_offset[r]``;
    ``run_start`` needs ``n + 1`` entries and ``run_offset`` ``n``. Returns the number
    of runs. A smooth flow over one step has few runs (the offset changes by one cell
    at a time); within a run the fluxes are computed with contiguous loads
    (:func:`_remap_runs_at`)."""
    n = cell.shape[0] - 1
    count = 0
    for j in range(1, n + 1):
        offset = cell[j] - j
        if count == 0 or offset != run_offset[count - 1]:
            run_start[count] = j
            run_offset[count] = offset
            count += 1
    run_start[count] = n + 1
    return count


@njit(cache=True, inline="always")
def _window_sums_at(src, first, terms, total, t0, length):
    """``total[t0 + t] = src[first + t] + ... + src[first + t + terms - 1]`` for
    ``t < length`` and ``1 <= terms <= 4``, summed left to right in one pass."""
    a = np.uint64(first)
    one = np.uint64(1)
    two = np.uint64(2)
    three = np.uint64(3)
    out = np.uint64(t0)
    if terms == 1:
        for t in range(length):
            total[out + t] = src[a + t]
    elif terms == 2:
        for t in range(length):
            total[out + t] = src[a + t] + src[a + t + one]
    elif terms == 3:
        for t in range(length):
            total[out + t] = (src[a + t] + src[a + t + one]) + src[a + t + two]
    else:
        for t in range(length):
            total[out + t] = (((src[a + t] + src[a + t + one]) + src[a + t + two])
                              + src[a + t + three])


@njit(cache=True)
def _remap_runs_at(src, s0, n, g, run_start, run_offset, r0, num_runs, frac, quad, f0,
                   cumulative, flux, dst, d0):
    """:func:`remap_flux_form_into` for the cells ``src[s0 .. s0 + n - 1]`` into
    ``dst[d0 ..]``, with the departure cells given as runs (:func:`departure_runs`) at
    ``run_start[r0 ..]`` / ``run_offset[r0 ..]`` instead of per face, and the face tables
    at ``frac[f0 ..]`` / ``quad[f0 ..]`` (``g``, ``cumulative`` and ``flux`` from index
    0): the same fluxes up to round-off, with contiguous loads only, so every loop
    vectorizes.

    Within a run of offset ``o`` the mass between face ``j`` and the start of its
    departure cell is, for ``|o| <= DIRECT_OFFSET``, summed directly,
    ``src[j] + ... + src[j + o - 1]`` (``o > 0``; for ``o < 0`` the cells
    ``j + o .. j - 1``), instead of taken as a difference of prefix sums: no prefix-sum
    pass where the flow moves mass a few cells per step (and the round-off is relative
    to the mass moved rather than to the total mass). Runs farther away use the prefix
    sums (``cumulative``, computed only if such a run exists). ``cumulative`` and
    ``flux`` are work arrays of ``n + 1``; ``dst`` may be ``src``. Returns the flux
    through the upper face."""
    far = False
    for r in range(num_runs):
        if abs(run_offset[r0 + r]) > DIRECT_OFFSET:
            far = True
    if far:
        _prefix_at(src, s0, n, cumulative)
    flux[0] = 0.0
    for r in range(num_runs):
        a = run_start[r0 + r]
        o = run_offset[r0 + r]
        length = np.uint64(run_start[r0 + r + 1] - a)
        # faces j = a + t depart from cells i = a + o + t
        face = np.uint64(a)
        table = np.uint64(f0 + a)
        cell = np.uint64(a + o)
        mass = np.uint64(s0 + a + o)
        if o == 0:
            for t in range(length):
                flux[face + t] = -(frac[table + t] * src[mass + t]
                                   + quad[table + t] * g[cell + t])
        elif o == 1:
            own = np.uint64(s0 + a)
            for t in range(length):
                flux[face + t] = -((src[own + t] + frac[table + t] * src[mass + t])
                                   + quad[table + t] * g[cell + t])
        elif -DIRECT_OFFSET <= o <= DIRECT_OFFSET:
            # the cells between the face and its departure cell: j .. j + o - 1 (o > 0,
            # downward flow) or j + o .. j - 1 (o < 0)
            _window_sums_at(src, s0 + a + min(o, 0), abs(o), flux, a, length)
            if o > 0:
                for t in range(length):
                    flux[face + t] = -((flux[face + t] + frac[table + t] * src[mass + t])
                                       + quad[table + t] * g[cell + t])
            else:
                for t in range(length):
                    flux[face + t] = flux[face + t] - (frac[table + t] * src[mass + t]
                                                       + quad[table + t] * g[cell + t])
        else:
            for t in range(length):
                flux[face + t] = cumulative[face + t] - (cumulative[cell + t]
                                                         + frac[table + t] * src[mass + t]
                                                         + quad[table + t] * g[cell + t])
    _flux_update_at(src, s0, n, flux, dst, d0)
    return flux[n]




@njit(cache=True)
def shift_fractional(p, g, shift, out, weight):
    """Add ``weight`` x ``p`` moved by ``shift`` cells (any real, signed) to ``out``, in
    one branch-free pass: with ``shift = m + f`` (``0 <= f < 1``)
    cell ``i``'s linear profile ``p + g (x - 1/2)`` sends its part above ``1 - f``,
    ``f p + g f (1 - f) / 2``, to cell ``i + m + 1`` and the rest to ``i + m``.

    Mass moved below cell 0 stays in cell 0 (reflecting); returns ``weight`` x the mass
    moved past the upper face."""
    n = p.shape[0]
    m = int(math.floor(shift))
    f = shift - m
    half_curv = 0.5 * f * (1.0 - f)
    fired = 0.0
    # cells whose both parts land inside the grid
    first = max(0, -m)
    last = min(n, n - m - 1)
    for i in range(first, last):
        upper = f * p[i] + half_curv * g[i]
        out[i + m] += weight * (p[i] - upper)
        out[i + m + 1] += weight * upper
    # the edges: below cell 0, or past the upper face
    for i in range(0, min(first, n)):
        upper = f * p[i] + half_curv * g[i]
        lower_target = i + m
        if lower_target + 1 >= 0:
            out[0] += weight * (p[i] - upper)
            out[lower_target + 1] += weight * upper
        else:
            out[0] += weight * p[i]
    for i in range(max(last, first), n):
        upper = f * p[i] + half_curv * g[i]
        if i + m < n:
            out[i + m] += weight * (p[i] - upper)
            fired += upper
        else:
            fired += p[i]
    return weight * fired


@njit(cache=True)
def shift_integer(p, m, out, weight):
    """Exact :func:`shift_fractional` for a whole number of cells ``m`` (no
    reconstruction)."""
    n = p.shape[0]
    fired = 0.0
    if m >= 0:
        for j in range(m, n):
            out[j] += weight * p[j - m]
        for i in range(max(n - m, 0), n):
            fired += p[i]
        return weight * fired
    k = -m
    floor_mass = 0.0
    for i in range(0, min(k + 1, n)):
        floor_mass += p[i]
    out[0] += weight * floor_mass
    for j in range(1, n - k):
        out[j] += weight * p[j + k]
    return 0.0


@njit(cache=True)
def poisson_weights(lam, weights, tail):
    """Fill ``weights[k] = P(k events)`` for a Poisson count of mean ``lam``.

    Stops at the first ``k`` where the remaining probability is below ``tail`` and lumps
    the remainder into that last term, so the weights sum to exactly 1. Returns the
    number of weights used (``k_max + 1``)."""
    kmax = weights.shape[0] - 1
    w = math.exp(-lam)
    total = w
    weights[0] = w
    k = 0
    while 1.0 - total > tail and k < kmax:
        k += 1
        w = w * lam / k
        weights[k] = w
        total += w
    weights[k] += 1.0 - total
    return k + 1


@njit(cache=True, inline="always")
def _window_sum_at(p, lo, hi):
    """``p[lo] + ... + p[hi - 1]`` with four running sums (summation order differs from
    a plain loop by round-off only; the four chains overlap in the pipeline)."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    if hi <= lo:
        return 0.0
    base = np.uint64(lo)
    quads = np.uint64((hi - lo) // 4)
    one = np.uint64(1)
    two = np.uint64(2)
    three = np.uint64(3)
    four = np.uint64(4)
    for t in range(quads):
        i = base + four * t
        s0 += p[i]
        s1 += p[i + one]
        s2 += p[i + two]
        s3 += p[i + three]
    for i in range(lo + 4 * ((hi - lo) // 4), hi):
        s0 += p[i]
    return (s0 + s1) + (s2 + s3)


@njit(cache=True, inline="always")
def _add_shifted_at(p, p0, out, o0, lo, hi, k0, m, weights, w0, first, terms):
    """For ``j`` in ``lo .. hi - 1``:
    ``out[o0 + j] (+)= sum_k weights[w0 + k] p[p0 + j - k m]`` over the ``terms`` (1 to
    4) terms from ``k = k0`` on, added left to right; ``first``: ``out`` is not read
    (the first term starts the sum). Needs ``lo >= (k0 + terms - 1) m``."""
    if hi <= lo:
        return
    length = np.uint64(hi - lo)
    target = np.uint64(o0 + lo)
    s = k0 * m
    a = np.uint64(p0 + lo - s)
    wa = weights[w0 + k0]
    if terms == 1:
        if first:
            for t in range(length):
                out[target + t] = wa * p[a + t]
        else:
            for t in range(length):
                out[target + t] += wa * p[a + t]
        return
    b = np.uint64(p0 + lo - s - m)
    wb = weights[w0 + k0 + 1]
    if terms == 2:
        if first:
            for t in range(length):
                out[target + t] = wa * p[a + t] + wb * p[b + t]
        else:
            for t in range(length):
                out[target + t] = (out[target + t] + wa * p[a + t]) + wb * p[b + t]
        return
    c = np.uint64(p0 + lo - s - 2 * m)
    wc = weights[w0 + k0 + 2]
    if terms == 3:
        if first:
            for t in range(length):
                out[target + t] = (wa * p[a + t] + wb * p[b + t]) + wc * p[c + t]
        else:
            for t in range(length):
                out[target + t] = (((out[target + t] + wa * p[a + t]) + wb * p[b + t])
                                   + wc * p[c + t])
        return
    d = np.uint64(p0 + lo - s - 3 * m)
    wd = weights[w0 + k0 + 3]
    if first:
        for t in range(length):
            out[target + t] = (((wa * p[a + t] + wb * p[b + t]) + wc * p[c + t])
                               + wd * p[d + t])
    else:
        for t in range(length):
            out[target + t] = ((((out[target + t] + wa * p[a + t]) + wb * p[b + t])
                                + wc * p[c + t]) + wd * p[d + t])


@njit(cache=True)
def _compound_shift_whole_at(p, p0, n, m, weights, w0, count, out, o0):
    """``out[o0 ..] = sum_k weights[w0 + k] S^k p[p0 ..]`` (``n`` cells, ``count``
    terms) for a whole-cell shift ``S`` by ``m`` cells.

    ``S^k`` moves mass by ``k * m`` cells as :func:`shift_integer` does (past the upper
    face it is dropped; below the lower face, ``m < 0``, it piles into cell 0), and each
    ``out`` cell gets its terms in the order ``k = 0, 1, ...``, as a sum of
    :func:`shift_integer` calls would, so the values are the same. For ``m >= 0`` the
    terms go in groups of four per pass over the grid (vectorized loops). Returns
    nothing: the mass moved past the upper face is for the caller
    (:func:`_compound_whole_at`, :func:`_compound_whole_reset_at`). ``out`` is
    overwritten and must not overlap ``p``."""
    if m >= 0:
        last = count - 1          # last term that lands on the grid
        if m > 0:
            last = min(last, (n - 1) // m)
        k0 = 0
        while k0 <= last:
            terms = min(4, last - k0 + 1)
            # the cells below the group's t-th shift get only its first t terms
            for t in range(1, terms + 1):
                hi = (k0 + t) * m if t < terms else n
                _add_shifted_at(p, p0, out, o0, (k0 + t - 1) * m, hi, k0, m, weights, w0,
                                k0 == 0, t)
            k0 += terms
        return
    source = np.uint64(p0)
    target = np.uint64(o0)
    w = weights[w0]
    for j in range(np.uint64(n)):
        out[target + j] = w * p[source + j]
    floor_mass = 0.0
    summed = 0
    for k in range(1, count):
        s = -k * m
        # mass of cells 0 .. s lands in cell 0 (running sum, as shift_integer's)
        upto = min(s + 1, n)
        for i in range(summed, upto):
            floor_mass += p[p0 + i]
        summed = upto
        w = weights[w0 + k]
        out[o0] += w * floor_mass
        if s + 1 < n:
            # out[j] += w p[j + s] for j = 1 .. n - s - 1
            shifted = np.uint64(p0 + s + 1)
            first = np.uint64(o0 + 1)
            for t in range(np.uint64(n - s - 1)):
                out[first + t] += w * p[shifted + t]



@njit(cache=True)
def _compound_whole_at(p, p0, n, m, weights, w0, count, out, o0):
    """Whole-shift :func:`compound_jump` on ``p[p0 ..]`` into ``out[o0 ..]``; returns the
    fired mass."""
    _compound_shift_whole_at(p, p0, n, m, weights, w0, count, out, o0)
    fired = 0.0
    if m > 0:
        top = 0.0     # mass of the top k * m cells
        hi = n
        for k in range(1, count):
            lo = max(n - k * m, 0)
            top += _window_sum_at(p, p0 + lo, p0 + hi)
            hi = lo
            fired += weights[w0 + k] * top
    return fired


@njit(cache=True)
def compound_jump(p, g, shift, weights, count, out):
    """Exact Poisson-jump propagator over one step: ``out = sum_k weights[k] T^k p``.

    ``T`` moves mass by ``shift`` cells; ``k`` events move it by ``k * shift``. Returns
    the mass moved past the upper face. ``out`` is overwritten (it must not overlap
    ``p``). ``g`` must hold the slopes of ``p`` unless ``shift`` is a whole number; whole
    shifts take :func:`_compound_shift_whole_at` (four terms per pass), and the fired mass
    ``sum_k weights[k] * (mass of the top k * shift cells)`` from ``count - 1`` window
    sums."""
    n = p.shape[0]
    m = int(round(shift))
    if abs(shift - m) < 1e-9:
        return _compound_whole_at(p, INT0, n, m, weights, INT0, count, out, INT0)
    for j in range(n):
        out[j] = 0.0
    fired = 0.0
    for k in range(count):
        fired += shift_fractional(p, g, k * shift, out, weights[k])
    return fired


@njit(cache=True)
def _compound_whole_reset_at(p, p0, n, m, weights, w0, count, out, o0, reset_cell,
                             reset_frac_hi, scratch):
    """The in-step-reset jump propagator (``jumps.mixture_jump`` with one input) for a
    whole-cell shift ``m``, in closed form, on ``p[p0 ..]`` (``n`` cells) into
    ``out[o0 ..]`` with the weights at ``weights[w0 ..]`` (``reset_cell`` counted from
    the population's first cell).

    With ``S`` the shift, ``c(x)`` the mass of the top ``m`` cells of ``x`` (what ``S``
    moves past threshold) and ``e`` the reset point mass, one event is
    ``T' x = S x + c(x) e``, so ``T'^k p = S^k p + sum_{j=1..k} a_j S^(k-j) e`` with
    ``a_j = c(T'^(j-1) p)`` the mass crossing at the ``j``-th event. The ``a_j`` follow
    from window sums of ``p`` and the (few) crossings of the shifted reset mass:
    ``a_j = c(S^(j-1) p) + sum_{i<j} a_i c(S^(j-1-i) e)``. Then
    ``out = sum_k weights[k] S^k p`` (:func:`_compound_shift_whole_at`) plus
    ``B_l = sum_j a_j weights[j + l]`` times ``S^l e``, and the fired mass is
    ``sum_j a_j (weights[j] + ... + weights[count - 1])``: the same sums as the Horner
    form, in another order (round-off only), in about ``count / 4`` passes over the grid
    instead of ``3 (count - 1)``. ``scratch`` needs ``2 * count`` entries; ``out`` is
    overwritten and must not overlap ``p``. Returns the total mass that crossed (each
    crossing counted once); it is already back in ``out``."""
    _compound_shift_whole_at(p, p0, n, m, weights, w0, count, out, o0)
    if m <= 0 or count < 2:
        return 0.0
    last = count - 1
    # scratch[:last]: a_j at j - 1; scratch[last:2 last]: c(S^l e) at l
    lower = 1.0 - reset_frac_hi
    for l in range(last):
        x = reset_cell + l * m
        c = 0.0
        if n - m <= x < n:
            c += lower
        if reset_frac_hi > 0.0 and n - m <= x + 1 < n:
            c += reset_frac_hi
        scratch[last + l] = c
    hi = n
    for j in range(1, last + 1):
        lo = max(n - j * m, 0)
        a = _window_sum_at(p, p0 + lo, p0 + hi)     # c(S^(j-1) p)
        hi = lo
        for i in range(1, j):
            a += scratch[i - 1] * scratch[last + j - 1 - i]
        scratch[j - 1] = a
    fired = 0.0
    later = 0.0     # weights[j] + ... + weights[last]
    for j in range(last, 0, -1):
        later += weights[w0 + j]
        fired += scratch[j - 1] * later
    for l in range(last):
        x = reset_cell + l * m
        if x >= n:
            break
        b = 0.0
        for j in range(1, last - l + 1):
            b += scratch[j - 1] * weights[w0 + j + l]
        out[o0 + x] += lower * b
        if reset_frac_hi > 0.0 and x + 1 < n:
            out[o0 + x + 1] += reset_frac_hi * b
    return fired



@njit(cache=True)
def bernoulli(x):
    """Bernoulli function ``B(x) = x / (exp(x) - 1)``, stable for all real ``x``."""
    if abs(x) < 1e-10:
        return 1.0 - 0.5 * x
    if x > 700.0:
        return x * math.exp(-x)
    return x / math.expm1(x)


@njit(cache=True)
def sg_coefficients(velocity, diffusion, dx, to_right, to_left):
    """Scharfetter-Gummel face rates for cell masses.

    Face ``j`` (1 .. N-1) carries ``F_j = to_right[j] p[j-1] - to_left[j] p[j]``; the
    upper face (absorbing threshold, ghost value ``-p[N-1]``) carries
    ``F_N = to_right[N] p[N-1]``; the lower face is reflecting (``F_0 = 0``).
    ``velocity[j]`` is the drift at face ``j`` and ``diffusion`` the (uniform) diffusion
    coefficient ``D``; with ``D = 0`` the faces reduce to upwind."""
    n = velocity.shape[0] - 1
    to_right[0] = 0.0
    to_left[0] = 0.0
    to_left[n] = 0.0
    if diffusion <= 0.0:
        for j in range(1, n + 1):
            a = velocity[j]
            to_right[j] = max(a, 0.0) / dx
            if j < n:
                to_left[j] = max(-a, 0.0) / dx
        return
    scale = diffusion / (dx * dx)
    for j in range(1, n + 1):
        peclet = velocity[j] * dx / diffusion
        right = scale * bernoulli(-peclet)
        left = scale * bernoulli(peclet)
        if j < n:
            to_right[j] = right
            to_left[j] = left
        else:
            to_right[j] = right + left
    return


@njit(cache=True)
def sg_implicit_step(p, to_right, to_left, dt, work_c, work_d, work_old):
    """Backward-Euler step ``(I - dt L) p_new = p`` of the Scharfetter-Gummel operator,
    in place (Thomas algorithm). Returns the mass that left through the upper face.

    The update is finally written in flux form, ``p_new_i = p_i + dt (F_i - F_{i+1})``
    with the face fluxes of the solved ``p_new``: identical up to round-off, but mass
    then telescopes exactly instead of drifting with the elimination's round-off."""
    n = p.shape[0]
    for i in range(n):
        work_old[i] = p[i]
    # row i: lower -dt*to_right[i], diag 1 + dt*(to_left[i] + to_right[i+1]),
    # upper -dt*to_left[i+1]
    diag = 1.0 + dt * (to_left[0] + to_right[1])
    upper = -dt * to_left[1]
    work_c[0] = upper / diag
    work_d[0] = p[0] / diag
    for i in range(1, n):
        lower = -dt * to_right[i]
        diag = 1.0 + dt * (to_left[i] + to_right[i + 1])
        upper = -dt * to_left[i + 1] if i < n - 1 else 0.0
        denom = diag - lower * work_c[i - 1]
        work_c[i] = upper / denom
        work_d[i] = (p[i] - lower * work_d[i - 1]) / denom
    p[n - 1] = work_d[n - 1]
    for i in range(n - 2, -1, -1):
        p[i] = work_d[i] - work_c[i] * p[i + 1]
    # face fluxes (times dt) of the solution, then the flux-form update
    work_c[0] = 0.0
    for j in range(1, n):
        work_c[j] = dt * (to_right[j] * p[j - 1] - to_left[j] * p[j])
    fired = dt * to_right[n] * p[n - 1]
    for i in range(n - 1):
        p[i] = work_old[i] + work_c[i] - work_c[i + 1]
    p[n - 1] = work_old[n - 1] + work_c[n - 1] - fired
    for i in range(n):
        if p[i] < 0.0:
            p[i] = 0.0
    return fired
