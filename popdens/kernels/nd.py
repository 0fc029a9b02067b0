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
  monotone map. Two kernels: where every departure point of an axis lies within one
  cell of its face (Courant number <= 1), :func:`drift_sweep_local`, branch-free and
  vectorised, slopes computed on the fly; elsewhere (no Courant limit: a point may lie
  many cells away) the gather form :func:`drift_sweep_gather` (prefix sums, O(1) per
  cell however far the point).
* jumps: the exact compound-Poisson propagator ``sum_k P(k) T^k`` along lines of the
  input axis (``T`` a shift by the jump in cells, whole-cell shifts moving mass exactly;
  or, for a conductance synapse, the contraction ``v -> v + w (E - v)``, whose powers
  are again affine maps remapped conservatively).
* refractory pipeline: mass leaving through the threshold face of a reset model is a
  slice over the other axes; it waits in a ring buffer and re-enters through a sparse
  reset map.

Loops run over ``(o, j)`` rows with the contiguous index ``t`` innermost, so rows of the
non-last axes are streamed and vectorisable; the last axis (``inner == 1``) loops over
contiguous lines. What keeps the hot loops vectorised (measured: 5-10x): unsigned
indices (numba wraps negative signed indices, a branch per access), one loop body per
limiter with the scheme a constant in it, and ``error_model="numpy"`` (no zero-division
branch; no ``fastmath``, so NaN/inf still propagate and are caught by the backend).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from .jumps import mixture_jump
from .nd_core import (
    SCHEME_MC,
    SCHEME_UPWIND,
    SCHEME_VANLEER,
    TINY,
    _add_upward,
    _kept,
    _limited,
    _local_flux,
    _mass_between,
)
from .nd_tiles import (
    STAGE_AFFINE,
    STAGE_FRACTIONAL,
    STAGE_GATHER,
    STAGE_LOCAL,
    STAGE_WHOLE,
    add_to_tile,
    clear_tiny,
    mark_tiles,
    tiled_stage,
)
from .transport import poisson_weights, sg_coefficients
from .typed import FALSE, INT0

__all__ = ["SCHEME_UPWIND", "SCHEME_MC", "SCHEME_VANLEER", "axis_slopes",
           "drift_sweep_gather", "drift_sweep_local", "jump_whole", "jump_fractional",
           "jump_affine", "jump_mixture", "jump_maps", "diffusion_lines",
           "advance_nd", "Axes", "Drift", "Inputs", "Firing", "Outputs", "TOP_REFLECT",
           "TOP_FIRE",
           "TOP_ABSORB", "SWEEP_LOCAL", "SWEEP_GATHER"]

# Drift sweep kernel per departure table (see advance_nd).
# The helpers below are compiled functions that LLVM inlines where it pays, not numba
# IR-inlined (inline="always"): IR inlining here and in nd_tiles cost 40 s more
# compilation per N-D run (65 s against 105 s, cold) for no measured speed. The small
# per-cell helpers of nd_core stay IR-inlined: without, ReducedHH ran 25-30 % slower.
SWEEP_LOCAL = 0    # every departure point within one cell of its face
SWEEP_GATHER = 1   # any distance
# What happens to mass that a jump moves past the upper face of the input axis.
TOP_REFLECT = 0   # stays in the top cell (reflecting edge)
TOP_FIRE = 1      # leaves: threshold crossing of a reset model
TOP_ABSORB = 2    # leaves: absorbing face (lost, not fired)
# Longest Poisson series (terms) per connection and sub-step.
MAX_TERMS = 512


@njit(cache=True, error_model="numpy")
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


@njit(cache=True, error_model="numpy")
def drift_sweep_local(src, dst, departure, outer, n, inner, scheme, scratch, watch_face,
                      watched):
    """Drift sweep (flux-form remap of every line of an axis, ``dst = src + F_j - F_{j+1}``
    per cell) for departure points within one cell of their face (Courant number <= 1,
    the common case of a smooth field), with masses below ``TINY`` set to 0 on the way.

    A face then takes mass from one neighbour only, so the flux is branch-free and the
    loops over the contiguous index vectorise; slopes are computed on the fly, so the
    sweep reads ``src`` and ``departure`` once and writes ``dst`` once. ``scratch``:
    ``2 * max(inner, n + 1)`` entries. Three things keep the loops vectorised: unsigned
    indices (numba wraps negative signed ones, a branch per access), one loop body per
    limiter (the scheme a constant inside it) and ``error_model="numpy"`` (no
    zero-division branch; van Leer's denominator is never 0 where it is used).
    """
    if scheme == SCHEME_MC:
        _local_sweep(src, dst, departure, outer, n, inner, SCHEME_MC, scratch, watch_face,
                     watched)
    elif scheme == SCHEME_VANLEER:
        _local_sweep(src, dst, departure, outer, n, inner, SCHEME_VANLEER, scratch,
                     watch_face, watched)
    else:
        _local_sweep(src, dst, departure, outer, n, inner, SCHEME_UPWIND, scratch,
                     watch_face, watched)


@njit(cache=True)
def _local_sweep(src, dst, departure, outer, n, inner, scheme, scratch, watch_face, watched):
    if inner == 1:
        _local_lines(src, dst, departure, outer, n, scheme, scratch, watch_face, watched)
    else:
        _local_rows(src, dst, departure, outer, n, inner, scheme, scratch, watch_face,
                    watched)


@njit(cache=True)
def _local_rows(src, dst, departure, outer, n, inner, scheme, scratch, watch_face, watched):
    """:func:`drift_sweep_local` along a non-last axis: rows of ``inner`` lines are
    streamed; ``scratch[:inner]`` carries the flux through the face below the current
    row, ``scratch[inner:2 inner]`` the slope of the current row."""
    width = np.uint64(inner)
    for o in range(outer):
        base = np.uint64(o * n * inner)
        fbase = np.uint64(o * (n + 1) * inner)
        lines = np.uint64(o * inner)
        # face 0: its departure point is at or above it; edge cells have slope 0
        for t in range(width):
            scratch[t] = -departure[fbase + t] * src[base + t]
            scratch[width + t] = 0.0
        if watch_face == 0:
            _add_upward(scratch, watched, lines, width)
        for j in range(n - 1):
            # face j + 1, between cells j and j + 1
            row = base + np.uint64(j * inner)
            frow = fbase + np.uint64((j + 1) * inner)
            level = j + 1.0
            if j + 2 < n:
                for t in range(width):
                    p = src[row + t]
                    p_above = src[row + width + t]
                    g_above = _limited(p_above - p,
                                            src[row + width + width + t] - p_above, scheme)
                    flux = _local_flux(level - departure[frow + t], p, scratch[width + t],
                                       p_above, g_above)
                    dst[row + t] = _kept(p + scratch[t] - flux)
                    scratch[t] = flux
                    scratch[width + t] = g_above
            else:     # cell j + 1 is the top edge cell: slope 0
                for t in range(width):
                    p = src[row + t]
                    flux = _local_flux(level - departure[frow + t], p, scratch[width + t],
                                       src[row + width + t], 0.0)
                    dst[row + t] = _kept(p + scratch[t] - flux)
                    scratch[t] = flux
            if watch_face == j + 1:
                _add_upward(scratch, watched, lines, width)
        # face n: its departure point is at or below it
        row = base + np.uint64((n - 1) * inner)
        frow = fbase + np.uint64(n * inner)
        top = float(n)
        for t in range(width):
            p = src[row + t]
            flux = (top - departure[frow + t]) * p
            dst[row + t] = _kept(p + scratch[t] - flux)
            scratch[t] = flux
        if watch_face == n:
            _add_upward(scratch, watched, lines, width)


@njit(cache=True)
def _local_lines(src, dst, departure, outer, n, scheme, scratch, watch_face, watched):
    """:func:`drift_sweep_local` along the last axis (contiguous lines): slopes
    (``scratch[n + 1:]``), fluxes (``scratch[:n + 1]``) and the update are three
    vectorised passes over each line."""
    one = np.uint64(1)
    last = np.uint64(n - 1)
    size = np.uint64(n)
    slopes = size + one
    for o in range(outer):
        base = np.uint64(o * n)
        fbase = np.uint64(o * (n + 1))
        scratch[slopes] = 0.0
        scratch[slopes + last] = 0.0
        for j in range(one, last):
            p = src[base + j]
            scratch[slopes + j] = _limited(p - src[base + j - one],
                                                src[base + j + one] - p, scheme)
        scratch[0] = -departure[fbase] * src[base]
        for j in range(one, size):
            scratch[j] = _local_flux(float(j) - departure[fbase + j], src[base + j - one],
                                     scratch[slopes + j - one], src[base + j],
                                     scratch[slopes + j])
        scratch[size] = (n - departure[fbase + size]) * src[base + last]
        for j in range(size):
            dst[base + j] = _kept(src[base + j] + scratch[j] - scratch[j + one])
        if watch_face >= 0:
            watched[o] += max(scratch[watch_face], 0.0)


@njit(cache=True, error_model="numpy")
def drift_sweep_gather(src, dst, departure, outer, n, inner, scheme, cum, scratch,
                       watch_face, watched):
    """Drift sweep in gather form, for departure points any distance away (no Courant
    limit): cell ``j`` receives the mass of the reconstruction between the departure
    points of its faces, ``M(x_{j+1}) - M(x_j)`` with ``M(x)`` the mass of the line
    below ``x`` (prefix sums ``cum`` of the whole cells, ``(n + 1) * inner`` entries,
    plus the part of the cell holding ``x``, whose slope is computed on the fly), so a
    cell costs O(1) however far the points are. ``M`` is non-decreasing because the
    profile is non-negative, so new masses are non-negative up to round-off, which is
    set to 0 with masses below ``TINY``. Each face's ``M`` is computed once and used by
    both cells it borders: conservation to round-off. Rows of ``inner`` lines are
    streamed (``scratch``: ``max(inner, n + 1)`` entries). The upward flux through
    ``watch_face``, ``max(M(face) - M(x), 0)``, is added to ``watched``; with
    ``watch_face == n`` (threshold) it is the mass that leaves the line."""
    if scheme == SCHEME_MC:
        _gather_sweep(src, dst, departure, outer, n, inner, SCHEME_MC, cum, scratch,
                      watch_face, watched)
    elif scheme == SCHEME_VANLEER:
        _gather_sweep(src, dst, departure, outer, n, inner, SCHEME_VANLEER, cum, scratch,
                      watch_face, watched)
    else:
        _gather_sweep(src, dst, departure, outer, n, inner, SCHEME_UPWIND, cum, scratch,
                      watch_face, watched)


@njit(cache=True)
def _below(p, cum, base, t, width, n, x, scheme):
    """Mass of the reconstruction of line ``t`` of the block at ``base`` below position
    ``x`` (cell units in [0, n]; ``cum``: the block's prefix sums, rows ``width``
    apart). Branch-free: the slope of an edge cell comes out 0 because its missing
    neighbour is replaced by the cell itself."""
    i = min(int(x), n - 1)
    f = x - i
    row = np.uint64(i) * width + t
    k = base + row
    below = k - width if i > 0 else k
    above = k + width if i < n - 1 else k
    c = p[k]
    g = _limited(c - p[below], p[above] - c, scheme)
    return cum[row] + f * (c + 0.5 * (f - 1.0) * g)


@njit(cache=True)
def _gather_sweep(src, dst, departure, outer, n, inner, scheme, cum, scratch, watch_face,
                  watched):
    if inner == 1:
        _gather_lines(src, dst, departure, outer, n, scheme, cum, scratch, watch_face,
                      watched)
        return
    width = np.uint64(inner)
    for o in range(outer):
        base = np.uint64(o * n * inner)
        fbase = np.uint64(o * (n + 1) * inner)
        # prefix sums along the axis, row by row (contiguous in t)
        for t in range(width):
            cum[t] = 0.0
        for j in range(n):
            row = np.uint64(j * inner)
            for t in range(width):
                cum[row + width + t] = cum[row + t] + src[base + row + t]
        # row by row; scratch carries M at the lower faces of the current row
        for t in range(width):
            scratch[t] = _below(src, cum, base, t, width, n, departure[fbase + t], scheme)
        for j in range(n):
            row = base + np.uint64(j * inner)
            frow = fbase + np.uint64((j + 1) * inner)
            for t in range(width):
                upper = _below(src, cum, base, t, width, n, departure[frow + t], scheme)
                dst[row + t] = _kept(upper - scratch[t])
                scratch[t] = upper
        if watch_face >= 0:
            frow = fbase + np.uint64(watch_face * inner)
            level = float(watch_face)
            lines = np.uint64(o * inner)
            for t in range(width):
                x = departure[frow + t]
                if x < level:
                    watched[lines + t] += max(
                        _below(src, cum, base, t, width, n, level, scheme)
                        - _below(src, cum, base, t, width, n, x, scheme), 0.0)


@njit(cache=True)
def _gather_lines(src, dst, departure, outer, n, scheme, cum, scratch, watch_face,
                  watched):
    """:func:`drift_sweep_gather` along the last axis: per line, prefix sums, ``M`` at
    every face (independent, vectorisable), then the differences."""
    zero = np.uint64(0)
    one = np.uint64(1)
    size = np.uint64(n)
    for o in range(outer):
        base = np.uint64(o * n)
        fbase = np.uint64(o * (n + 1))
        cum[0] = 0.0
        for j in range(size):
            cum[j + one] = cum[j] + src[base + j]
        for j in range(size + one):
            scratch[j] = _below(src, cum, base, zero, one, n, departure[fbase + j], scheme)
        for j in range(size):
            dst[base + j] = _kept(scratch[j + one] - scratch[j])
        if watch_face >= 0:
            x = departure[fbase + np.uint64(watch_face)]
            if x < watch_face:
                watched[o] += max(_below(src, cum, base, zero, one, n, float(watch_face),
                                         scheme) - scratch[watch_face], 0.0)


# Cells per block of the whole-cell jump: the block of the output stays in L1 while every
# term of the Poisson series is added to it.
JUMP_BLOCK = 2048


@njit(cache=True)
def _add_shifted(dst, src, w, base, shift, first, last):
    """``dst[base + e] += w src[base + e - shift]`` for ``first <= e < last``."""
    if first >= last:
        return
    out = np.uint64(base + first)
    ins = np.uint64(base + first - shift)
    for e in range(np.uint64(last - first)):
        dst[out + e] += w * src[ins + e]


@njit(cache=True, error_model="numpy")
def jump_whole(src, dst, outer, n, inner, m, weights, count, top_mode, bottom_absorb,
               crossed, watch_face, watched, scratch):
    """Compound-Poisson jump by a whole number ``m`` of cells along an axis.

    ``dst = sum_k weights[k] S^k src`` with ``S`` the shift by ``m`` cells: below the
    lower face mass piles into cell 0 (reflecting); past the upper face it stays in the
    top cell (``top_mode == TOP_REFLECT``) or leaves and is added, per line, to
    ``crossed`` (``TOP_FIRE``) or is lost (``TOP_ABSORB``); with ``bottom_absorb`` mass
    moved below the lower face is lost too. Mass that ends at or above face ``watch_face`` having
    started below it (``m > 0``) is added per line to ``watched`` (spike-plane
    crossings; each crossing counted once since jumps only go one way). Masses below
    ``TINY`` become 0. ``scratch``: ``2 * inner`` entries.

    Within the ``(o)`` block of an axis, rows ``j .. j'`` are contiguous, so ``S^k`` is
    a shift of the flattened block by ``k m inner`` entries: every term is one
    contiguous, vectorised multiply-add, done block by block (``JUMP_BLOCK``) so that
    the output stays in cache over the series. The mass leaving an edge after ``k``
    events is that of the ``k |m|`` edge rows, accumulated row by row as ``k`` grows.
    """
    size = n * inner
    width = np.uint64(inner)
    for o in range(outer):
        base = o * size
        for start in range(0, size, JUMP_BLOCK):
            stop = min(start + JUMP_BLOCK, size)
            lo = np.uint64(base + start)
            hi = np.uint64(base + stop)
            w = weights[0]
            for e in range(lo, hi):
                dst[e] = w * src[e]
            for k in range(1, count):
                shift = k * m * inner
                # output entries e (within the block) whose source e - shift lies in it
                _add_shifted(dst, src, weights[k], base, shift, max(start, shift),
                             min(stop, size + shift))
            for e in range(lo, hi):
                dst[e] = _kept(dst[e])
        if m == 0:
            continue
        lines = np.uint64(o * inner)
        edge = scratch[:inner]
        seen = scratch[inner:2 * inner]
        edge[:] = 0.0
        seen[:] = 0.0
        step = abs(m)
        for k in range(1, count):
            w = weights[k]
            # rows that k events carry past the edge: k |m| rows next to it
            for r in range((k - 1) * step, min(k * step, n)):
                row = np.uint64(base + ((n - 1 - r) if m > 0 else r) * inner)
                for t in range(width):
                    edge[t] += src[row + t]
            if m > 0:
                if top_mode == TOP_FIRE:
                    for t in range(width):
                        crossed[lines + t] += w * edge[t]
                elif top_mode == TOP_REFLECT:
                    top = np.uint64(base + (n - 1) * inner)
                    for t in range(width):
                        dst[top + t] += w * edge[t]
                if watch_face > 0:
                    for r in range((k - 1) * step, min(k * step, watch_face)):
                        row = np.uint64(base + (watch_face - 1 - r) * inner)
                        for t in range(width):
                            seen[t] += src[row + t]
                    for t in range(width):
                        watched[lines + t] += w * seen[t]
            elif not bottom_absorb:
                bottom = np.uint64(base)
                for t in range(width):
                    dst[bottom + t] += w * edge[t]


@njit(cache=True)
def jump_fractional(src, dst, g, outer, n, inner, shift, weights, count, top_mode,
                    bottom_absorb, crossed, watch_face, watched):
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
                    if j == 0 and s < 0.0 and not bottom_absorb:
                        lo = 0.0   # the mass moved below the lower face piles here
                    dst[base + j * inner + t] += w * _mass_between(src, g, base, inner, t, n,
                                                                   lo, j + 1 - s)
                if s > 0.0:
                    over = _mass_between(src, g, base, inner, t, n, n - s, float(n))
                    if top_mode == TOP_FIRE:
                        crossed[line] += w * over
                    elif top_mode == TOP_REFLECT:
                        dst[base + (n - 1) * inner + t] += w * over
                    if watch_face > 0:
                        watched[line] += w * _mass_between(src, g, base, inner, t, n,
                                                           watch_face - s, float(watch_face))


@njit(cache=True)
def jump_maps(conn_shift, conn_scale, conn_rate, conn_diffusion, merged_into, step,
              dt_sub, map_shift, map_scale, map_lam):
    """The distinct one-event maps of the jump connections active in ``step``: shift and
    scale in ``map_shift, map_scale``, the Poisson mean of their events in a sub-step in
    ``map_lam`` (the connections merged into one, ``merged_into``, summed in their
    order). Returns their number and the mean of all events."""
    num = INT0
    total = 0.0
    for c in range(conn_shift.shape[0]):
        if merged_into[c] != c or conn_diffusion[c] == 1:
            continue
        lam = 0.0
        for c2 in range(c, conn_shift.shape[0]):
            if merged_into[c2] == c:
                lam += conn_rate[c2, step] * dt_sub
        if lam <= 0.0:
            continue
        map_shift[num] = conn_shift[c]
        map_scale[num] = conn_scale[c]
        map_lam[num] = lam
        total += lam
        num += 1
    return num, total


@njit(cache=True)
def jump_mixture(src, dst, outer, n, inner, shifts, scales, probabilities, num_inputs,
                 weights, count, scheme, crossed, buffers):
    """Several jump inputs along an axis as the exact Poisson mixture of their events in
    random order (:func:`popdens.kernels.jumps.mixture_jump`, the 1D engine's jump
    stage, on every line along the axis): ``dst = sum_k weights[k] T'^k src`` with
    ``T' = sum_c probabilities[c] T_c``. Mass crossing the upper face in any event is
    fired (added to ``crossed`` per line; refractory neurons ignore the step's later
    events), mass moved below the lower face piles into cell 0. ``buffers``: four
    scratch rows of length ``n``."""
    line, out, g, work = buffers[0], buffers[1], buffers[2], buffers[3]
    for o in range(outer):
        base = o * n * inner
        for t in range(inner):
            empty = True
            for j in range(n):
                line[j] = src[base + j * inner + t]
                empty = empty and line[j] == 0.0
            if empty:   # nothing moves (and 2D grids hold many empty lines)
                for j in range(n):
                    dst[base + j * inner + t] = 0.0
                continue
            crossed[o * inner + t] += mixture_jump(line, g, shifts, scales, probabilities,
                                                   num_inputs, weights, count, out, work,
                                                   scheme, FALSE, INT0, 0.0)
            for j in range(n):
                dst[base + j * inner + t] = out[j]


@njit(cache=True)
def _mixture_stage(state, other, num_maps, total_lam, map_shift, map_scale, map_lam, tail,
                   scheme, outer, n, inner, fired_slice, weights, buffers, tiles):
    """The jump stage of :func:`advance_nd` as one mixture of the ``num_maps`` maps of
    :func:`jump_maps` (:func:`jump_mixture`), into ``other``. A call of its own: inside
    the time loop the same lines cost 15 s more of its cold compilation."""
    probabilities = map_lam[:num_maps] / total_lam
    count = poisson_weights(total_lam, weights, tail)
    jump_mixture(state, other, outer, n, inner, map_shift, map_scale, probabilities,
                 num_maps, weights, count, scheme, fired_slice, buffers)
    if tiles.enabled:   # a full sweep: keep the tiles' invariants
        mark_tiles(other, tiles, tiles.flags)
        state[:] = 0.0


@njit(cache=True)
def jump_affine(src, dst, g, outer, n, inner, scale, offset, weights, count, top_mode,
                bottom_absorb, crossed, watch_face, watched):
    """Compound-Poisson conductance jump along an axis: one event maps the position
    ``x -> scale x + offset`` (cell units, ``0 < scale < 1``: ``v -> v + w (E - v)``
    with ``scale = 1 - w``), so ``k`` events map it by the affine contraction
    ``x -> scale^k x + offset (1 - scale^k) / (1 - scale)`` toward the reversal
    position and ``dst = sum_k weights[k] T^k src`` needs no Horner recursion. Each
    target cell gathers the limited reconstruction (``g``: slopes of ``src`` along the
    axis) of its preimage; mass mapped below the lower face piles into cell 0 (or is
    lost, ``bottom_absorb``), past the upper face it is handled as in
    :func:`jump_whole`. The map is monotone, so a state
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
            # the mass mapped below the lower face piles into cell 0, or is lost
            lo = -shift * inverse if bottom_absorb else 0.0
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
                    elif top_mode == TOP_REFLECT:
                        dst[base + (n - 1) * inner + t] += over
            if watch_face > 0:
                start = (watch_face - shift) * inverse
                if start < watch_face:
                    for t in range(inner):
                        watched[o * inner + t] += w * _mass_between(
                            src, g, base, inner, t, n, start, float(watch_face))


@njit(cache=True, error_model="numpy")
def diffusion_lines(src, dst, outer, n, inner, drive, diffusion, dt, top_mode, coef,
                    work, crossed, watch_face, watched):
    """Diffusion input along an axis: one backward-Euler step of the Scharfetter-Gummel
    operator (uniform drift ``drive`` and diffusion ``diffusion``, cell units: cells/s
    and cells^2/s) on every line, written in flux form (the 1D engine's diffusion step,
    :func:`popdens.kernels.transport.sg_implicit_step`, as a line operation).

    The lower face reflects; the upper face is an absorbing threshold (ghost value
    ``-p``) for ``TOP_FIRE`` (the outflux of each line added to ``crossed``) and
    ``TOP_ABSORB`` (lost), reflecting for ``TOP_REFLECT``. The net upward flux through
    face ``watch_face`` (> 0) is added per line to ``watched``. The matrix is the same on
    every line, so its elimination coefficients are computed once and the lines of a row
    (contiguous index ``t``) are solved together. ``coef``: ``4 (n + 1)`` entries;
    ``work``: ``(n + 1) * inner`` entries. Masses below ``TINY`` become 0.
    """
    to_right = coef[:n + 1]
    to_left = coef[n + 1:2 * n + 2]
    ratio = coef[2 * n + 2:3 * n + 3]
    denom = coef[3 * n + 3:4 * n + 4]
    velocity = np.full(n + 1, drive)
    sg_coefficients(velocity, diffusion, 1.0, to_right, to_left)
    if top_mode == TOP_REFLECT:
        to_right[n] = 0.0
    # Thomas coefficients of (I - dt L): row j has lower -dt r_j, diagonal
    # 1 + dt (l_j + r_{j+1}), upper -dt l_{j+1}
    for j in range(n):
        lower = -dt * to_right[j] if j > 0 else 0.0
        diag = 1.0 + dt * (to_left[j] + to_right[j + 1])
        upper = -dt * to_left[j + 1] if j < n - 1 else 0.0
        denom[j] = diag - (lower * ratio[j - 1] if j > 0 else 0.0)
        ratio[j] = upper / denom[j]
    for o in range(outer):
        base = o * n * inner
        # forward elimination into work (row j at j * inner), all lines of a row at once
        for j in range(n):
            row = base + j * inner
            lower = -dt * to_right[j] if j > 0 else 0.0
            inv = 1.0 / denom[j]
            if j == 0:
                for t in range(inner):
                    work[t] = src[row + t] * inv
            else:
                for t in range(inner):
                    work[j * inner + t] = (src[row + t]
                                           - lower * work[(j - 1) * inner + t]) * inv
        for j in range(n - 2, -1, -1):
            for t in range(inner):
                work[j * inner + t] -= ratio[j] * work[(j + 1) * inner + t]
        # face fluxes (times dt) of the solution; flux-form update from src
        for t in range(inner):
            line = o * inner + t
            below = 0.0
            for j in range(n):
                row = base + j * inner
                if j < n - 1:
                    above = dt * (to_right[j + 1] * work[j * inner + t]
                                  - to_left[j + 1] * work[(j + 1) * inner + t])
                else:
                    above = dt * to_right[n] * work[j * inner + t]
                dst[row + t] = _kept(src[row + t] + below - above)
                if watch_face == j + 1 and watch_face < n:
                    watched[line] += max(above, 0.0)
                below = above
            if top_mode == TOP_FIRE:
                crossed[line] += below


@njit(cache=True)
def _diffuse(src, dst, conn_shift, conn_rate, conn_diffusion, step, dt, outer, n, inner,
             top_mode, coef, work, crossed, watch_face, watched):
    """The diffusion inputs of one sub-step (summed drift and diffusion), ``src`` into
    ``dst`` (a copy when there are none)."""
    drive = 0.0
    diffusion = 0.0
    for c in range(conn_shift.shape[0]):
        if conn_diffusion[c] == 1:
            rate = conn_rate[c, step]
            drive += rate * conn_shift[c]
            diffusion += 0.5 * rate * conn_shift[c] * conn_shift[c]
    if diffusion <= 0.0:
        for i in range(src.shape[0]):
            dst[i] = src[i]
        return
    diffusion_lines(src, dst, outer, n, inner, drive, diffusion, dt, top_mode, coef, work,
                    crossed, watch_face, watched)


@njit(cache=True)
def _total(state, pipe):
    """Mass on the grid plus mass waiting in the refractory pipeline."""
    total = 0.0
    for i in range(state.shape[0]):
        total += state[i]
    for r in range(pipe.shape[0]):
        for s in range(pipe.shape[1]):
            total += pipe[r, s]
    return total


class Axes(NamedTuple):
    """The ``(outer, n, inner)`` view of each axis, (D,) int each (module docstring)."""

    outer: np.ndarray
    n: np.ndarray
    inner: np.ndarray


class Drift(NamedTuple):
    """The drift sweeps' tables.

    Face departure positions of axis ``d`` at ``departure[offset[d]:offset[d + 1]]`` for
    the forward sweep order and at ``offset[D + d]`` for the backward one (they differ in
    how the other axes are frozen), ``departure`` (F,) float, ``offset`` (2 D + 1,) int;
    ``sweep_mode`` (2 D,) int per table: ``SWEEP_LOCAL`` (every departure point within
    one cell of its face: :func:`drift_sweep_local`) or ``SWEEP_GATHER`` (any distance:
    :func:`drift_sweep_gather`).
    """

    departure: np.ndarray
    offset: np.ndarray
    sweep_mode: np.ndarray


class Inputs(NamedTuple):
    """The input connections, whose events move ``axis``.

    ``edges`` (2,) int: what jumps do with mass carried past the upper face of ``axis``
    (``TOP_REFLECT``, ``TOP_FIRE``, ``TOP_ABSORB``) and past its lower face (0: piles into
    the first cell, 1: lost). Per connection, (C,): the jump ``shift`` in cells of
    ``axis`` (``scale == 1``), or for a conductance synapse the one-event map
    ``x -> scale x + shift`` (cell units); its event ``rate`` per step (C, n_steps) in
    Hz; ``diffusion`` 1 for a diffusion input (0: jumps).
    """

    axis: int
    edges: np.ndarray
    shift: np.ndarray
    scale: np.ndarray
    rate: np.ndarray
    diffusion: np.ndarray


class Firing(NamedTuple):
    """Spikes and the refractory pipeline.

    ``spike_axis``, ``spike_face``: the spike plane (face index along ``spike_axis``),
    ``-1`` for none (reset model). ``reset_axis``: threshold axis of a reset model (its
    upper face), ``-1`` for none. Sparse reset map (E,): a released slice cell
    ``reset_source[e]`` (index over the other axes) puts ``reset_weight[e]`` of its mass
    into cell ``reset_target[e]``. Mass fired in a sub-step is released at the start of
    the sub-steps ``release_offset`` (2,) later, split by ``release_weight`` (2,).
    ``pipe`` (L, S) and ``pipe_head`` (1,): the refractory ring buffer of released slices
    and its current row (state, updated in place).
    """

    spike_axis: int
    spike_face: int
    reset_axis: int
    reset_source: np.ndarray
    reset_target: np.ndarray
    reset_weight: np.ndarray
    release_offset: np.ndarray
    release_weight: np.ndarray
    pipe: np.ndarray
    pipe_head: np.ndarray


class Outputs(NamedTuple):
    """Per step (n_steps,): mean ``rates`` (Hz), ``refractory`` fraction at its end and
    mass lost in it through absorbing or outflow faces, ``absorbed`` (computed only when
    non-empty). Densities (mass times ``inverse_volume``) at the start of the steps
    ``record_steps`` go to the rows of ``record`` from the cursor ``record_next`` (1,)
    on."""

    rates: np.ndarray
    refractory: np.ndarray
    absorbed: np.ndarray
    record_steps: np.ndarray
    record_next: np.ndarray
    record: np.ndarray
    inverse_volume: float


@njit(cache=True)
def advance_nd(step_begin, step_end, stepping, mass, axes, drift, inputs, firing, out,
               tiles):
    """Advance one population over steps ``step_begin .. step_end - 1``.

    Each reporting step is ``n_sub`` sub-steps of ``dt_sub``. A sub-step is: release of
    refractory mass due now, then drift sweeps over the axes and the jump stage of every
    connection, the order reversed on odd sub-steps (symmetric pairs, so the splitting
    error is second order over two sub-steps). Connections whose events make the same
    jump are one Poisson stream at their summed rate (superposition), so they share one
    jump stage.

    Parameters
    ----------
    stepping : popdens.kernels.stepper.Stepping
        ``n_sub`` sub-steps of ``dt_sub`` per step, limiter ``scheme``, Poisson series
        cut where the tail is below ``tail``.
    mass : (M,) float
        Cell masses, updated in place.
    axes : Axes
    drift : Drift
    inputs : Inputs
    firing : Firing
        Its ``pipe`` and ``pipe_head`` are updated in place.
    out : Outputs
        Written for the steps advanced.
    tiles : popdens.kernels.nd_tiles.TilePlan
        With ``tiles.enabled``, every stage acts only on the columns of tiles that hold
        mass (:mod:`popdens.kernels.nd_tiles`; bit-identical to the full sweep; not with
        diffusion inputs).
    """
    # the groups unpacked once: the loop below reads plain locals (its body is the
    # one of the ungrouped kernel; scratch stays allocated here, where the compiler
    # sees fresh arrays)
    n_sub, dt_sub, scheme, tail = stepping
    axis_outer, axis_n, axis_inner = axes
    departure, departure_offset, sweep_mode = drift
    jump_axis, jump_edges, conn_shift, conn_scale, conn_rate, conn_diffusion = inputs
    (spike_axis, spike_face, reset_axis, reset_source, reset_target, reset_weight,
     release_offset, release_weight, pipe, pipe_head) = firing
    (rates_out, refractory_out, absorbed_out, record_steps, record_next, record_out,
     inverse_volume) = out
    num_cells = mass.shape[0]
    ndim = axis_n.shape[0]
    num_conns = conn_shift.shape[0]
    state = mass.copy()
    # the tiled stages write only where mass can arrive: the other buffer starts at 0
    other = np.zeros(num_cells) if tiles.enabled else np.empty(num_cells)
    if tiles.enabled:
        mark_tiles(state, tiles, tiles.flags)
    slopes = np.zeros(num_cells)
    max_inner = 1
    for d in range(ndim):
        max_inner = max(max_inner, axis_inner[d])
    max_n = 1
    for d in range(ndim):
        max_n = max(max_n, axis_n[d])
    scratch = np.zeros(2 * max(max_inner, max_n + 1))
    cum = np.zeros(num_cells + max_inner)
    lines_spike = 1
    if spike_axis >= 0:
        lines_spike = num_cells // axis_n[spike_axis]
    watched = np.zeros(lines_spike)
    slice_size = pipe.shape[1]
    fired_slice = np.zeros(slice_size)
    pipe_length = pipe.shape[0]
    weights = np.zeros(MAX_TERMS)
    has_diffusion = False
    for c in range(num_conns):
        has_diffusion = has_diffusion or conn_diffusion[c] == 1
    diff_coef = np.zeros(4 * (axis_n[jump_axis] + 1))
    diff_work = np.zeros((axis_n[jump_axis] + 1) * axis_inner[jump_axis])
    # connections with the same one-event map (shift and scale) share one jump stage
    merged_into = np.arange(num_conns)
    for c in range(num_conns):
        for c2 in range(c):
            if (conn_shift[c2] == conn_shift[c] and conn_scale[c2] == conn_scale[c]
                    and conn_diffusion[c2] == conn_diffusion[c]):
                merged_into[c] = merged_into[c2]
                break
    # several jump inputs onto a threshold axis: the 1D engine's exact mixture of their
    # events (in sequence, all excitation of a sub-step would act before any inhibition)
    map_shift = np.zeros(num_conns)
    map_scale = np.ones(num_conns)
    map_lam = np.zeros(num_conns)
    mix_buffers = np.zeros((4, axis_n[jump_axis]))
    mixable = (jump_edges[0] == TOP_FIRE and jump_edges[1] != 1
               and not (spike_axis == jump_axis and spike_face > 0))
    step_length = n_sub * dt_sub
    ja = jump_axis
    j_outer = axis_outer[ja]
    j_n = axis_n[ja]
    j_inner = axis_inner[ja]
    jump_watch = spike_face if spike_axis == ja else -1
    top_mode = jump_edges[0]
    bottom_absorb = jump_edges[1] == 1
    track_loss = absorbed_out.shape[0] > 0

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
        if track_loss:
            held_before = _total(state, pipe)
        for sub in range(n_sub):
            # refractory mass due at the start of this sub-step
            if reset_axis >= 0:
                head = pipe_head[0]
                for e in range(reset_source.shape[0]):
                    released = reset_weight[e] * pipe[head, reset_source[e]]
                    state[reset_target[e]] += released
                    if tiles.enabled and released != 0.0:
                        add_to_tile(tiles, axis_n, reset_target[e])
                for s in range(slice_size):
                    pipe[head, s] = 0.0
            for i in range(lines_spike):
                watched[i] = 0.0
            for s in range(slice_size):
                fired_slice[s] = 0.0
            # alternate globally (not per reporting step, which may hold one sub-step)
            forward = (step * n_sub + sub) % 2 == 0
            # whether masses below TINY may be left: the drift sweeps and the whole-cell
            # jump clear them on the way, the fractional and conductance jumps do not
            untidy = True
            for stage in range(ndim + 1):
                # forward: axes 0 .. D-1 then jumps; backward: jumps then axes D-1 .. 0
                if forward:
                    d = stage
                elif stage == 0:
                    d = ndim
                else:
                    d = ndim - stage
                if d == ndim and not forward and has_diffusion:
                    _diffuse(state, other, conn_shift, conn_rate, conn_diffusion, step,
                             dt_sub, j_outer, j_n, j_inner, top_mode, diff_coef,
                             diff_work, fired_slice, jump_watch, watched)
                    state, other = other, state
                if d == ndim:
                    # Poisson superposition: connections with the same jump are one
                    # stream at the summed rate (one pass instead of several)
                    num_maps, total_lam = jump_maps(conn_shift, conn_scale, conn_rate,
                                                    conn_diffusion, merged_into, step,
                                                    dt_sub, map_shift, map_scale, map_lam)
                    sequential = num_maps
                    if mixable and num_maps >= 2:
                        _mixture_stage(state, other, num_maps, total_lam, map_shift,
                                       map_scale, map_lam, tail, scheme, j_outer, j_n,
                                       j_inner, fired_slice, weights, mix_buffers, tiles)
                        state, other = other, state
                        untidy = True
                        sequential = 0
                    for a in range(sequential):
                        count = poisson_weights(map_lam[a], weights, tail)
                        shift = map_shift[a]
                        scale = map_scale[a]
                        m = int(round(shift))
                        tidy = False
                        if tiles.enabled:
                            kind = STAGE_FRACTIONAL
                            if scale != 1.0:
                                kind = STAGE_AFFINE
                            elif abs(shift - m) < 1e-9:
                                kind = STAGE_WHOLE
                                tidy = True
                            tiled_stage(kind, state, other, slopes, departure, ja, INT0, j_n,
                                        j_inner, scheme, tiles, cum, scratch, jump_watch,
                                        watched, m, shift, scale, weights, count,
                                        top_mode, bottom_absorb, fired_slice)
                        elif scale != 1.0:
                            axis_slopes(state, slopes, j_outer, j_n, j_inner, scheme)
                            jump_affine(state, other, slopes, j_outer, j_n, j_inner,
                                        scale, shift, weights, count, top_mode,
                                        bottom_absorb, fired_slice, jump_watch, watched)
                        elif abs(shift - m) < 1e-9:
                            jump_whole(state, other, j_outer, j_n, j_inner, m, weights,
                                       count, top_mode, bottom_absorb, fired_slice,
                                       jump_watch, watched, scratch)
                            tidy = True
                        else:
                            axis_slopes(state, slopes, j_outer, j_n, j_inner, scheme)
                            jump_fractional(state, other, slopes, j_outer, j_n, j_inner,
                                            shift, weights, count, top_mode,
                                            bottom_absorb, fired_slice, jump_watch,
                                            watched)
                        state, other = other, state
                        untidy = not tidy
                    if forward and has_diffusion:
                        _diffuse(state, other, conn_shift, conn_rate, conn_diffusion, step,
                                 dt_sub, j_outer, j_n, j_inner, top_mode, diff_coef,
                                 diff_work, fired_slice, jump_watch, watched)
                        state, other = other, state
                    continue
                outer = axis_outer[d]
                n = axis_n[d]
                inner = axis_inner[d]
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
                mode = sweep_mode[table]
                if tiles.enabled:
                    tiled_stage(STAGE_LOCAL if mode == SWEEP_LOCAL else STAGE_GATHER,
                                state, other, slopes, dep, d, table, n, inner, scheme,
                                tiles, cum, scratch, watch_face, target, INT0, 0.0, 1.0,
                                weights, INT0, INT0, FALSE, fired_slice)
                elif mode == SWEEP_LOCAL:
                    drift_sweep_local(state, other, dep, outer, n, inner, scheme, scratch,
                                      watch_face, target)
                else:
                    drift_sweep_gather(state, other, dep, outer, n, inner, scheme, cum,
                                       scratch, watch_face, target)
                state, other = other, state
                untidy = False
            # masses below TINY -> 0: subnormal tails are ~100x slower to compute with
            # (see kernels.stepper.TINY)
            if untidy and tiles.enabled:
                clear_tiny(state, tiles, tiles.flags, TINY)
            elif untidy:
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
        if track_loss:
            # grid + refractory pipeline change only by what the open faces let out
            absorbed_out[step] = max(held_before - _total(state, pipe), 0.0)
    for i in range(num_cells):
        mass[i] = state[i]
