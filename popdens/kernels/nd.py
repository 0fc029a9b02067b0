"""N-dimensional density kernels: one compiled engine for every dimension.

The state of a population is its array of *cell masses* on a rectilinear grid, stored
flat in C order. An axis ``d`` is addressed by three numbers: ``outer`` (product of the
axis lengths before it), ``n`` (its number of cells) and ``inner`` (product of the
lengths after it, which is also its stride). Cell ``(o, j, t)`` of that view is at flat
index ``(o * n + j) * inner + t``; the faces of axis ``d`` are stored the same way with
``n + 1`` instead of ``n``. Every kernel takes these scalars and plain arrays, so one
compiled version serves grids of any dimension.

Numerics (see :mod:`popdens.backends.density_nd` for the whole scheme):

* drift: per axis, flux-form semi-Lagrangian remap along each grid line (the 1D
  solver's method): the flux through a face is the mass of the limited linear
  reconstruction between the face and its *departure point* (where the frozen-line flow
  over the sub-step comes from). Departure points are precomputed once (assembly).
  Mass is conserved because the update is a difference of face fluxes; it stays
  non-negative because the pieces handed on are pieces of a non-negative profile of a
  monotone map. No Courant limit: a departure point may lie many cells away; beyond a
  few cells the gather form (:func:`drift_sweep_gather`, prefix sums, O(1) per cell)
  replaces the row-wise flux form (:func:`drift_sweep`).
* jumps: the exact compound-Poisson propagator ``sum_k P(k) T^k`` along lines of the
  input axis (``T`` a shift by the jump in cells, whole-cell shifts moving mass exactly;
  or, for a conductance synapse, the contraction ``v -> v + w (E - v)``, whose powers
  are again affine maps remapped conservatively).
* refractory pipeline: mass leaving through the threshold face of a reset model is a
  slice over the other axes; it waits in a ring buffer and re-enters through a sparse
  reset map.

Loops run over ``(o, j)`` rows with the contiguous index ``t`` innermost, so rows of the
non-last axes are streamed and vectorisable; the last axis (``inner == 1``) is a plain
line loop.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .transport import poisson_weights

__all__ = ["SCHEME_UPWIND", "SCHEME_MC", "SCHEME_VANLEER", "axis_slopes", "drift_sweep",
           "drift_sweep_gather",
           "jump_whole", "jump_fractional", "jump_affine", "advance_nd", "TOP_REFLECT", "TOP_FIRE"]

SCHEME_UPWIND = 0
SCHEME_MC = 1
SCHEME_VANLEER = 2
# What happens to mass that a jump moves past the upper face of the input axis.
TOP_REFLECT = 0   # stays in the top cell (reflecting edge)
TOP_FIRE = 1      # leaves: threshold crossing of a reset model
# Longest Poisson series (terms) per connection and sub-step.
MAX_TERMS = 512
# Cell masses below this are set to 0 after every sub-step (as in the 1D stepper).
TINY = 1e-150


@njit(cache=True, inline="always")
def _limited(left, right, scheme):
    """Limited mass difference of a cell from its one-sided differences."""
    if left * right <= 0.0:
        return 0.0
    if scheme == SCHEME_MC:
        mag = min(abs(0.5 * (left + right)), abs(2.0 * left), abs(2.0 * right))
        return math.copysign(mag, left)
    return 2.0 * left * right / (left + right)


@njit(cache=True)
def axis_slopes(p, g, outer, n, inner, scheme):
    """``g`` = limited mass differences of ``p`` along one axis (0 at the edge cells and
    for ``scheme == SCHEME_UPWIND``). Limited slopes keep ``|g| <= 2 p``, so the linear
    profile ``p + g (theta - 1/2)`` of a cell is non-negative."""
    for o in range(outer):
        base = o * n * inner
        for t in range(inner):
            g[base + t] = 0.0
            g[base + (n - 1) * inner + t] = 0.0
        for j in range(1, n - 1):
            row = base + j * inner
            if scheme == SCHEME_UPWIND:
                for t in range(inner):
                    g[row + t] = 0.0
            else:
                for t in range(inner):
                    c = p[row + t]
                    g[row + t] = _limited(c - p[row - inner + t], p[row + inner + t] - c,
                                          scheme)


@njit(cache=True, inline="always")
def _face_flux(p, g, base, inner, t, j, n, x):
    """Signed mass crossing face ``j`` upwards when it comes from position ``x`` (cell
    units along the line at ``base``/``t``): the mass of the reconstruction between
    ``x`` and ``j`` (negative when ``x > j``)."""
    i = int(x)
    if i >= n:
        i = n - 1
    f = x - i
    k = base + i * inner + t
    below = f * p[k] + 0.5 * f * (f - 1.0) * g[k]    # mass of cell i under x
    if i < j:
        total = -below
        for c in range(i, j):
            total += p[base + c * inner + t]
        return total
    total = below
    for c in range(j, i):
        total += p[base + c * inner + t]
    return -total


@njit(cache=True)
def drift_sweep(src, dst, g, departure, outer, n, inner, row_prev, watch_face, watched):
    """One semi-Lagrangian remap along an axis: ``dst = src + F_j - F_{j+1}`` per cell.

    ``departure`` holds, per face ``(o, j, t)``, the departure position in cell units
    (within [0, n], non-decreasing along each line); ``g`` the slopes of ``src`` along
    the axis; ``row_prev`` is scratch of ``inner`` entries. The upward part of the flux
    through face ``watch_face`` of every line (``o * inner + t``) is added to
    ``watched`` (spike plane, or the threshold face ``n`` of a reset model); nothing
    when ``watch_face < 0``.
    """
    for o in range(outer):
        base = o * n * inner
        fbase = o * (n + 1) * inner
        for t in range(inner):
            row_prev[t] = _face_flux(src, g, base, inner, t, 0, n, departure[fbase + t])
        if watch_face == 0:
            for t in range(inner):
                watched[o * inner + t] += max(row_prev[t], 0.0)
        for j in range(n):
            frow = fbase + (j + 1) * inner
            crow = base + j * inner
            for t in range(inner):
                flux = _face_flux(src, g, base, inner, t, j + 1, n, departure[frow + t])
                dst[crow + t] = src[crow + t] + row_prev[t] - flux
                row_prev[t] = flux
            if watch_face == j + 1:
                for t in range(inner):
                    watched[o * inner + t] += max(row_prev[t], 0.0)


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


@njit(cache=True, inline="always")
def _gathered(p, g, cum, k_a, k_b, ia, ib, xa, xb, stride):
    """Mass of the reconstruction between positions ``xa <= xb`` of one line, in cells
    ``ia <= ib`` at flat indices ``k_a``, ``k_b``; ``cum`` holds the line's prefix sums
    (``stride`` apart). Split into non-negative pieces: head of cell ``ia``, whole cells
    (a difference of prefix sums of non-negative masses, never negative), tail of
    ``ib``."""
    ta = xa - ia
    tb = xb - ib
    if ia == ib:
        return (tb - ta) * (p[k_a] + 0.5 * g[k_a] * (ta + tb - 1.0))
    head = (1.0 - ta) * (p[k_a] + 0.5 * g[k_a] * ta)
    whole = cum[ib * stride] - cum[(ia + 1) * stride]
    tail = tb * (p[k_b] + 0.5 * g[k_b] * (tb - 1.0))
    return head + whole + tail


@njit(cache=True)
def drift_sweep_gather(src, dst, g, departure, outer, n, inner, cum, watch_face, watched):
    """:func:`drift_sweep` in gather form for departure points far away (large Courant
    numbers): cell ``j`` receives the mass of the reconstruction between the departure
    points of its faces, evaluated from prefix sums (``cum``: scratch of
    ``(n + 1) * inner`` entries), so a cell costs O(1) however far the points are, and
    every new mass is a sum of non-negative pieces. The flux through ``watch_face`` is the
    mass between its departure point and the face (upward part added to ``watched``);
    with ``watch_face == n`` (threshold) it is the mass that leaves the line."""
    for o in range(outer):
        base = o * n * inner
        fbase = o * (n + 1) * inner
        # prefix sums along the axis, row by row (contiguous in t)
        for t in range(inner):
            cum[t] = 0.0
        for j in range(n):
            row = base + j * inner
            for t in range(inner):
                cum[(j + 1) * inner + t] = cum[j * inner + t] + src[row + t]
        for t in range(inner):
            xa = departure[fbase + t]
            ia = min(int(xa), n - 1)
            for j in range(n):
                xb = departure[fbase + (j + 1) * inner + t]
                ib = min(int(xb), n - 1)
                dst[base + j * inner + t] = _gathered(
                    src, g, cum[t:], base + ia * inner + t, base + ib * inner + t, ia, ib,
                    xa, xb, inner)
                xa = xb
                ia = ib
            if watch_face >= 0:
                x = departure[fbase + watch_face * inner + t]
                if x < watch_face:
                    ix = min(int(x), n - 1)
                    top = watch_face - 1
                    watched[o * inner + t] += _gathered(
                        src, g, cum[t:], base + ix * inner + t, base + top * inner + t, ix,
                        top, x, top + 1.0, inner)


@njit(cache=True, inline="always")
def _window(p, base, inner, t, lo, hi):
    """Mass of cells ``lo .. hi - 1`` (clipped at 0) of one line."""
    total = 0.0
    for c in range(max(lo, 0), hi):
        total += p[base + c * inner + t]
    return total


@njit(cache=True)
def jump_whole(src, dst, outer, n, inner, m, weights, count, top_mode, crossed,
               watch_face, watched):
    """Compound-Poisson jump by a whole number ``m`` of cells along an axis.

    ``dst = sum_k weights[k] S^k src`` with ``S`` the shift by ``m`` cells: below the
    lower face mass piles into cell 0 (reflecting); past the upper face it stays in the
    top cell (``top_mode == TOP_REFLECT``) or leaves and is added, per line, to
    ``crossed`` (``TOP_FIRE``). Mass that ends at or above face ``watch_face`` having
    started below it (``m > 0``) is added per line to ``watched`` (spike-plane
    crossings; each crossing counted once since jumps only go one way)."""
    for o in range(outer):
        base = o * n * inner
        for j in range(n):
            row = base + j * inner
            w = weights[0]
            for t in range(inner):
                dst[row + t] = w * src[row + t]
            for k in range(1, count):
                source = j - k * m
                if source < 0 or source >= n:
                    continue
                w = weights[k]
                srow = base + source * inner
                for t in range(inner):
                    dst[row + t] += w * src[srow + t]
        for k in range(1, count):
            w = weights[k]
            km = k * m
            for t in range(inner):
                line = o * inner + t
                if m > 0:
                    over = _window(src, base, inner, t, n - km, n)
                    if top_mode == TOP_FIRE:
                        crossed[line] += w * over
                    else:
                        dst[base + (n - 1) * inner + t] += w * over
                    if watch_face > 0:
                        watched[line] += w * _window(src, base, inner, t, watch_face - km,
                                                     watch_face)
                elif m < 0:
                    dst[base + t] += w * _window(src, base, inner, t, 0, min(-km, n))


@njit(cache=True)
def jump_fractional(src, dst, g, outer, n, inner, shift, weights, count, top_mode,
                    crossed, watch_face, watched):
    """:func:`jump_whole` for a shift of ``shift`` cells that is not a whole number: each
    ``S^k`` remaps the limited reconstruction (``g``: slopes of ``src`` along the axis)
    by ``k * shift`` cells, conservatively split over the cells it lands across."""
    for o in range(outer):
        base = o * n * inner
        for j in range(n):
            row = base + j * inner
            w = weights[0]
            for t in range(inner):
                dst[row + t] = w * src[row + t]
        for k in range(1, count):
            w = weights[k]
            s = k * shift
            for t in range(inner):
                line = o * inner + t
                for j in range(n):
                    lo = j - s
                    if j == 0 and s < 0.0:
                        lo = 0.0   # the mass moved below the lower face piles here
                    dst[base + j * inner + t] += w * _mass_between(src, g, base, inner, t, n,
                                                                   lo, j + 1 - s)
                if s > 0.0:
                    over = _mass_between(src, g, base, inner, t, n, n - s, float(n))
                    if top_mode == TOP_FIRE:
                        crossed[line] += w * over
                    else:
                        dst[base + (n - 1) * inner + t] += w * over
                    if watch_face > 0:
                        watched[line] += w * _mass_between(src, g, base, inner, t, n,
                                                           watch_face - s, float(watch_face))


@njit(cache=True)
def jump_affine(src, dst, g, outer, n, inner, scale, offset, weights, count, top_mode,
                crossed, watch_face, watched):
    """Compound-Poisson conductance jump along an axis: one event maps the position
    ``x -> scale x + offset`` (cell units, ``0 < scale < 1``: ``v -> v + w (E - v)``
    with ``scale = 1 - w``), so ``k`` events map it by the affine contraction
    ``x -> scale^k x + offset (1 - scale^k) / (1 - scale)`` toward the reversal
    position and ``dst = sum_k weights[k] T^k src`` needs no Horner recursion. Each
    target cell gathers the limited reconstruction (``g``: slopes of ``src`` along the
    axis) of its preimage; mass mapped below the lower face piles into cell 0, past the
    upper face it is handled as in :func:`jump_whole`. The map is monotone, so a state
    crosses face ``watch_face`` upward at most once over the ``k`` events: the
    crossing mass of term ``k`` is that of the preimage interval ``[F_k, F)``."""
    for o in range(outer):
        base = o * n * inner
        for j in range(n):
            row = base + j * inner
            w = weights[0]
            for t in range(inner):
                dst[row + t] = w * src[row + t]
    power = 1.0
    for k in range(1, count):
        w = weights[k]
        power *= scale
        shift = offset * (1.0 - power) / (1.0 - scale)
        inverse = 1.0 / power
        for o in range(outer):
            base = o * n * inner
            lo = 0.0   # the mass mapped below the lower face piles into cell 0
            for j in range(n):
                hi = (j + 1 - shift) * inverse
                row = base + j * inner
                if hi > lo and hi > 0.0 and lo < n:
                    for t in range(inner):
                        dst[row + t] += w * _mass_between(src, g, base, inner, t, n, lo, hi)
                lo = hi
            if lo < n:
                for t in range(inner):
                    over = w * _mass_between(src, g, base, inner, t, n, lo, float(n))
                    if top_mode == TOP_FIRE:
                        crossed[o * inner + t] += over
                    else:
                        dst[base + (n - 1) * inner + t] += over
            if watch_face > 0:
                start = (watch_face - shift) * inverse
                if start < watch_face:
                    for t in range(inner):
                        watched[o * inner + t] += w * _mass_between(
                            src, g, base, inner, t, n, start, float(watch_face))


@njit(cache=True)
def advance_nd(step_begin, step_end, n_sub, dt_sub, scheme, tail, mass,
               axis_outer, axis_n, axis_inner, departure, departure_offset, gather,
               jump_axis, conn_shift, conn_scale, conn_rate,
               spike_axis, spike_face, reset_axis,
               reset_source, reset_target, reset_weight, release_offset, release_weight,
               pipe, pipe_head,
               rates_out, refractory_out, record_steps, record_next, record_out,
               inverse_volume):
    """Advance one population over steps ``step_begin .. step_end - 1``.

    Each reporting step is ``n_sub`` sub-steps of ``dt_sub``. A sub-step is: release of
    refractory mass due now, then drift sweeps over the axes and the jump stage of every
    connection, the order reversed on odd sub-steps (symmetric pairs, so the splitting
    error is second order over two sub-steps).

    Parameters
    ----------
    mass : (M,) float
        Cell masses, updated in place.
    axis_outer, axis_n, axis_inner : (D,) int
        The ``(outer, n, inner)`` view of each axis.
    departure, departure_offset : float (F,), int (2 D + 1,)
        Face departure positions of axis ``d`` at ``departure[departure_offset[d]:]``
        for the forward sweep order and at ``departure_offset[D + d]`` for the
        backward one (they differ in how the other axes are frozen).
    gather : (2 D,) bool
        Per table: use the gather-form sweep (departure points far away).
    jump_axis : int
        Axis that input events move.
    conn_shift, conn_scale, conn_rate : (C,), (C,), (C, n_steps)
        Jump of each connection in cells of ``jump_axis`` (``conn_scale == 1``), or for a
        conductance synapse the one-event map ``x -> conn_scale x + conn_shift`` (cell
        units), and its event rate per step (Hz).
    spike_axis, spike_face : int
        Spike plane (face index along ``spike_axis``), ``-1`` for none (reset model).
    reset_axis : int
        Threshold axis of a reset model (its upper face), ``-1`` for none.
    reset_source, reset_target, reset_weight : (E,)
        Sparse reset map: a released slice cell ``reset_source[e]`` (index over the
        other axes) puts ``reset_weight[e]`` of its mass into cell ``reset_target[e]``.
    release_offset, release_weight : (2,)
        Mass fired in a sub-step is released at the start of the sub-steps
        ``release_offset`` later, split by ``release_weight``.
    pipe, pipe_head : (L, S), (1,)
        Refractory ring buffer of released slices and its current row.
    rates_out, refractory_out : (n_steps,)
        Mean rate over each step (Hz), refractory fraction at its end.
    record_steps, record_next, record_out
        Steps at whose start the density (mass times ``inverse_volume``) is stored.
    """
    num_cells = mass.shape[0]
    ndim = axis_n.shape[0]
    num_conns = conn_shift.shape[0]
    state = mass.copy()
    other = np.empty(num_cells)
    slopes = np.zeros(num_cells)
    max_inner = 1
    for d in range(ndim):
        max_inner = max(max_inner, axis_inner[d])
    row_prev = np.zeros(max_inner)
    cum = np.zeros(num_cells + max_inner)
    lines_spike = 1
    if spike_axis >= 0:
        lines_spike = num_cells // axis_n[spike_axis]
    watched = np.zeros(lines_spike)
    slice_size = pipe.shape[1]
    fired_slice = np.zeros(slice_size)
    pipe_length = pipe.shape[0]
    weights = np.zeros(MAX_TERMS)
    step_length = n_sub * dt_sub
    ja = jump_axis
    j_outer = axis_outer[ja]
    j_n = axis_n[ja]
    j_inner = axis_inner[ja]
    jump_watch = spike_face if spike_axis == ja else -1
    top_mode = TOP_FIRE if reset_axis == ja else TOP_REFLECT

    for step in range(step_begin, step_end + 1):
        while (record_next[0] < record_steps.shape[0]
               and record_steps[record_next[0]] == step):
            r = record_next[0]
            for i in range(num_cells):
                record_out[r, i] = state[i] * inverse_volume
            record_next[0] += 1
        if step == step_end:
            break
        fired_step = 0.0
        for sub in range(n_sub):
            # refractory mass due at the start of this sub-step
            if reset_axis >= 0:
                head = pipe_head[0]
                for e in range(reset_source.shape[0]):
                    state[reset_target[e]] += reset_weight[e] * pipe[head, reset_source[e]]
                for s in range(slice_size):
                    pipe[head, s] = 0.0
            for i in range(lines_spike):
                watched[i] = 0.0
            for s in range(slice_size):
                fired_slice[s] = 0.0
            # alternate globally (not per reporting step, which may hold one sub-step)
            forward = (step * n_sub + sub) % 2 == 0
            for stage in range(ndim + 1):
                # forward: axes 0 .. D-1 then jumps; backward: jumps then axes D-1 .. 0
                if forward:
                    d = stage
                elif stage == 0:
                    d = ndim
                else:
                    d = ndim - stage
                if d == ndim:
                    for c in range(num_conns):
                        lam = conn_rate[c, step] * dt_sub
                        if lam <= 0.0:
                            continue
                        count = poisson_weights(lam, weights, tail)
                        shift = conn_shift[c]
                        m = int(round(shift))
                        if conn_scale[c] != 1.0:
                            axis_slopes(state, slopes, j_outer, j_n, j_inner, scheme)
                            jump_affine(state, other, slopes, j_outer, j_n, j_inner,
                                        conn_scale[c], shift, weights, count, top_mode,
                                        fired_slice, jump_watch, watched)
                        elif abs(shift - m) < 1e-9:
                            jump_whole(state, other, j_outer, j_n, j_inner, m, weights,
                                       count, top_mode, fired_slice, jump_watch, watched)
                        else:
                            axis_slopes(state, slopes, j_outer, j_n, j_inner, scheme)
                            jump_fractional(state, other, slopes, j_outer, j_n, j_inner,
                                            shift, weights, count, top_mode, fired_slice,
                                            jump_watch, watched)
                        state, other = other, state
                    continue
                outer = axis_outer[d]
                n = axis_n[d]
                inner = axis_inner[d]
                axis_slopes(state, slopes, outer, n, inner, scheme)
                table = d if forward else ndim + d
                dep = departure[departure_offset[table]:departure_offset[table + 1]]
                watch_face = -1
                target = watched
                if d == reset_axis:
                    # outflux through the threshold face is fired mass, per slice cell
                    watch_face = n
                    target = fired_slice
                elif d == spike_axis:
                    watch_face = spike_face
                if gather[table]:
                    drift_sweep_gather(state, other, slopes, dep, outer, n, inner, cum,
                                       watch_face, target)
                else:
                    drift_sweep(state, other, slopes, dep, outer, n, inner, row_prev,
                                watch_face, target)
                state, other = other, state
            # masses below TINY -> 0: subnormal tails are ~100x slower to compute with
            # (see kernels.stepper.TINY)
            for i in range(num_cells):
                if state[i] < TINY:
                    state[i] = 0.0
            if spike_axis >= 0:
                for i in range(lines_spike):
                    fired_step += watched[i]
            if reset_axis >= 0:
                head = pipe_head[0]
                total = 0.0
                for s in range(slice_size):
                    f = fired_slice[s]
                    total += f
                    if f != 0.0:
                        for e in range(2):
                            row = (head + release_offset[e]) % pipe_length
                            pipe[row, s] += release_weight[e] * f
                fired_step += total
                pipe_head[0] = (head + 1) % pipe_length
        rates_out[step] = fired_step / step_length
        held = 0.0
        for r in range(pipe_length):
            for s in range(slice_size):
                held += pipe[r, s]
        refractory_out[step] = held
    for i in range(num_cells):
        mass[i] = state[i]
