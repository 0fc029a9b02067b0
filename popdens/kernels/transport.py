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
"""

from __future__ import annotations

import math

from numba import njit

__all__ = [
    "limited_slopes",
    "mass_between",
    "remap",
    "departure_table",
    "remap_flux_form",
    "remap_shift",
    "shift_integer",
    "poisson_weights",
    "compound_jump",
    "compound_jump_with_reset",
    "bernoulli",
    "sg_coefficients",
    "sg_implicit_step",
]

SCHEME_UPWIND = 0
SCHEME_MC = 1
SCHEME_VANLEER = 2


@njit(cache=True)
def limited_slopes(p, g, scheme):
    """Fill ``g`` with the limited mass differences of ``p`` (0 at the two edge cells).

    ``scheme`` 0: zero (donor cell, first order); 1: monotonized-central (MC) limiter;
    2: van Leer. Both limiters keep ``|g| <= 2 p`` so the profile stays >= 0.
    """
    n = p.shape[0]
    g[0] = 0.0
    g[n - 1] = 0.0
    if scheme == SCHEME_UPWIND:
        for i in range(1, n - 1):
            g[i] = 0.0
        return
    for i in range(1, n - 1):
        left = p[i] - p[i - 1]
        right = p[i + 1] - p[i]
        if left * right <= 0.0:
            g[i] = 0.0
        elif scheme == SCHEME_MC:
            centred = 0.5 * (left + right)
            if left > 0.0:
                g[i] = min(centred, 2.0 * left, 2.0 * right)
            else:
                g[i] = max(centred, 2.0 * left, 2.0 * right)
        else:
            g[i] = 2.0 * left * right / (left + right)


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


@njit(cache=True)
def remap_flux_form(p, g, cell, frac, quad, cumulative, flux):
    """Remap ``p`` in place through fixed departure points, in flux form.

    The mass crossing face ``j`` in the step is ``M(j) - M(d_j)``, with ``M`` the
    cumulative mass of the linear reconstruction and ``d_j`` the face's departure point
    (``cell``/``frac``/``quad`` from :func:`departure_table`; ``cumulative`` and ``flux``
    are work arrays of ``n + 1``). Cell ``i`` then changes by
    the difference of its two face fluxes, so mass is conserved by telescoping. The
    lower face carries no flux (reflecting); returns the flux through the upper face.
    Round-off can leave a cell at ``-1e-17``-level where the exact result is 0; those
    are set to 0."""
    n = p.shape[0]
    cumulative[0] = 0.0
    for i in range(n):
        cumulative[i + 1] = cumulative[i] + p[i]
    # all fluxes first: they read the masses before the update
    flux[0] = 0.0
    for j in range(1, n + 1):
        i = cell[j]
        flux[j] = cumulative[j] - (cumulative[i] + frac[j] * p[i] + quad[j] * g[i])
    for i in range(n):
        p[i] += flux[i] - flux[i + 1]
        if p[i] < 0.0:
            p[i] = 0.0
    return flux[n]


@njit(cache=True)
def remap_shift(p, g, shift, out, weight):
    """Add ``weight`` x ``p`` moved by ``shift`` cells (any real, signed) to ``out``.

    Returns ``weight`` x the mass moved past the upper face."""
    n = p.shape[0]
    lo = 0.0
    for j in range(n):
        hi = j + 1 - shift
        out[j] += weight * mass_between(p, g, lo, hi)
        lo = hi
    return weight * mass_between(p, g, n - shift, float(n))


@njit(cache=True)
def shift_integer(p, m, out, weight):
    """Exact ``remap_shift`` for a whole number of cells ``m`` (no reconstruction)."""
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


@njit(cache=True)
def compound_jump(p, g, shift, weights, count, out):
    """Exact Poisson-jump propagator over one step: ``out = sum_k weights[k] T^k p``.

    ``T`` moves mass by ``shift`` cells; ``k`` events move it by ``k * shift``. Returns
    the mass moved past the upper face. ``out`` is overwritten. ``g`` must hold the slopes
    of ``p`` unless ``shift`` is a whole number."""
    n = p.shape[0]
    for j in range(n):
        out[j] = 0.0
    m = int(round(shift))
    fired = 0.0
    if abs(shift - m) < 1e-9:
        for k in range(count):
            fired += shift_integer(p, k * m, out, weights[k])
    else:
        for k in range(count):
            fired += remap_shift(p, g, k * shift, out, weights[k])
    return fired


@njit(cache=True)
def compound_jump_with_reset(p, g, shift, weights, count, out, work, scheme, reset_cell,
                             reset_frac_hi):
    """Poisson-jump propagator where crossing mass restarts at reset *within* the step.

    For neurons without refractory period the later events of a step act again after
    the reset. With ``T'`` one event followed by reinjection of the crossed mass at
    ``reset_cell`` (fraction ``reset_frac_hi`` into the next cell), this computes
    ``out = sum_k weights[k] T'^k p`` by Horner's rule,
    ``(((w_K p) T' + w_{K-1} p) T' + ...) T' + w_0 p``, recomputing the slopes of each
    intermediate (``scheme``). Returns the total mass that crossed (each crossing
    counted once); it is already back in ``out``. ``g`` and ``work`` are scratch."""
    n = p.shape[0]
    m = int(round(shift))
    whole = abs(shift - m) < 1e-9
    for j in range(n):
        out[j] = weights[count - 1] * p[j]
    fired = 0.0
    for k in range(count - 2, -1, -1):
        for j in range(n):
            work[j] = 0.0
        if whole:
            crossed = shift_integer(out, m, work, 1.0)
        else:
            limited_slopes(out, g, scheme)
            crossed = remap_shift(out, g, shift, work, 1.0)
        fired += crossed
        work[reset_cell] += (1.0 - reset_frac_hi) * crossed
        if reset_frac_hi > 0.0:
            work[reset_cell + 1] += reset_frac_hi * crossed
        for j in range(n):
            out[j] = work[j] + weights[k] * p[j]
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
