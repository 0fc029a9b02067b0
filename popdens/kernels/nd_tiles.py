"""Active tiles: the N-D kernels of :mod:`popdens.kernels.nd` applied only where there is
mass.

The grid is cut into tiles (boxes of cells, ``TilePlan.size`` per axis). A tile is
*active* when it may hold a nonzero mass; inactive tiles hold exactly 0 (masses below
``TINY`` are set to 0 by every stage, so empty tiles stay exactly empty). A stage along
axis ``d`` (a drift sweep or a jump) moves mass only along lines of that axis, so it acts
on the *columns* of tiles along ``d`` (tiles that share their coordinates on the other
axes) holding at least one active tile, and within a column only on the cells that can
receive mass in that stage:

* drift, local form (departure points within one cell of their face): the active tiles
  of the column plus one tile on each side;
* drift, gather form (departure points any distance away): from the departure points'
  range at the tile boundaries of the column (``TilePlan.dep_lo/dep_hi``, the lowest and
  highest departure point of any line of the column): a face whose departure point lies
  at or above every nonzero cell receives the whole line's mass below it, so the cells
  beyond it receive nothing (and below likewise);
* whole-cell jumps by ``m`` cells: the active tiles and the ``(count - 1) |m|`` cells
  that the truncated Poisson series can reach beyond them (an edge cell that mass can
  pile into is then in range too); fractional and conductance jumps: whole lines.

Every cell outside that range receives exactly 0 in the full sweep too, and inside it
the arithmetic is the full sweep's, operation for operation (prefix sums over zeros add
nothing, limited slopes of empty cells are 0), so the tiled stages reproduce the full
sweep to the last bit. After a stage the active flags of the processed tiles are set
from the new masses (any nonzero), and the tiles of the previous buffer are zeroed, so
a buffer is all zero outside its active tiles.

A column's lines are stored as *bundles*: lines of the column that are adjacent in the
contiguous (last) axis, ``width`` of them from index ``t0`` of the axis view ``(o, j,
t)``, so that the kernels' innermost loops stay contiguous.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from .nd_core import (
    SCHEME_MC,
    SCHEME_UPWIND,
    SCHEME_VANLEER,
    _kept,
    _limited,
    _local_flux,
    _mass_between,
)

__all__ = ["TilePlan", "local_bundle", "gather_bundle", "whole_jump_bundle",
           "fractional_jump_bundle", "affine_jump_bundle", "bundle_slopes",
           "mark_tiles", "clear_tiny", "add_to_tile"]

# Stage kinds of tiled_stage
STAGE_LOCAL = 0
STAGE_GATHER = 1
STAGE_WHOLE = 2
STAGE_FRACTIONAL = 3
STAGE_AFFINE = 4


class TilePlan(NamedTuple):
    """Tiles of a grid and, per axis, its columns and their line bundles (assembled by
    :func:`popdens.assembly_nd.tile_plan`). ``enabled == 0``: the full sweep.

    Attributes
    ----------
    enabled : int
        1 to advance only active tiles.
    size, counts, strides : (D,) int
        Cells per tile along each axis, tiles along each axis, tile-index stride of each
        axis (C order over ``counts``).
    flags : (T,) uint8
        1 for tiles that may hold mass (state of the run, updated in place).
    new_flags : (T,) uint8
        Scratch of the same size.
    run_offset, run_start, run_length : (T + 1,), (R,), (R,) int
        Cells of tile ``k``: the contiguous runs ``run_offset[k] .. run_offset[k+1]``.
    col_offset : (D + 1,) int
        Columns of axis ``d`` are ``col_offset[d] .. col_offset[d + 1]``.
    col_first : (K,) int
        Tile index of the column's tile 0 along its axis.
    bundle_offset : (K + 1,) int
        Bundles of column ``c``.
    bundle_base, bundle_fbase, bundle_t0, bundle_width : (B,) int
        Cell offset ``o n inner`` and face offset ``o (n + 1) inner`` of the bundle's
        axis view row ``o``, first line ``t0`` and number of lines.
    dep_offset : (2 D + 1,) int
        Departure ranges of table ``k`` at ``dep_lo/dep_hi[dep_offset[k]:]``, one row of
        ``counts[d] + 1`` tile boundaries per column.
    dep_lo, dep_hi : float
        Lowest / highest departure point (cell units) over the column's lines at the
        face ``min(b size[d], n)`` of tile boundary ``b``.
    """

    enabled: int
    size: np.ndarray
    counts: np.ndarray
    strides: np.ndarray
    flags: np.ndarray
    new_flags: np.ndarray
    run_offset: np.ndarray
    run_start: np.ndarray
    run_length: np.ndarray
    col_offset: np.ndarray
    col_first: np.ndarray
    bundle_offset: np.ndarray
    bundle_base: np.ndarray
    bundle_fbase: np.ndarray
    bundle_t0: np.ndarray
    bundle_width: np.ndarray
    dep_offset: np.ndarray
    dep_lo: np.ndarray
    dep_hi: np.ndarray


# --- bundle kernels: the kernels of kernels.nd on `width` lines from t0, cells lo .. hi ---
# Indices are unsigned in the hot loops (numba wraps negative signed indices, a branch per
# access), as in kernels.nd.


@njit(cache=True)
def _slope(src, k, j, n, stride, scheme):
    """Limited slope of cell ``j`` of the line through flat index ``k`` (0 at the edges)."""
    if j == 0 or j == n - 1:
        return 0.0
    p = src[k]
    return _limited(p - src[k - stride], src[k + stride] - p, scheme)


@njit(cache=True)
def _finish(src, dst, start, stride, width, a, b, lo, hi, flags, first, tstride, size):
    """After a bundle: its source cells ``a .. b - 1`` (all its mass) become 0, and the
    tiles of the cells ``lo .. hi - 1`` it wrote are flagged where they hold mass."""
    for j in range(np.uint64(a), np.uint64(b)):
        row = start + j * stride
        for t in range(width):
            src[row + t] = 0.0
    for j in range(lo, hi):
        row = start + np.uint64(j) * stride
        held = 0
        for t in range(width):
            held += dst[row + t] != 0.0
        if held:
            flags[first + (j // size) * tstride] = 1


@njit(cache=True, error_model="numpy")
def local_bundle(src, dst, departure, base, fbase, stride, t0, width, n, lo, hi, scheme,
                 scratch, watch_face, watched, line0):
    """:func:`popdens.kernels.nd.drift_sweep_local` on the cells ``lo .. hi - 1`` of
    ``width`` lines from ``t0`` (the faces ``lo`` and ``hi`` computed from the cells
    around them, as in the full sweep). ``scratch``: ``2 width`` entries; the upward flux
    through ``watch_face`` is added to ``watched[line0 + i]``."""
    if scheme == SCHEME_MC:
        _local_bundle(src, dst, departure, base, fbase, stride, t0, width, n, lo, hi,
                      SCHEME_MC, scratch, watch_face, watched, line0)
    elif scheme == SCHEME_VANLEER:
        _local_bundle(src, dst, departure, base, fbase, stride, t0, width, n, lo, hi,
                      SCHEME_VANLEER, scratch, watch_face, watched, line0)
    else:
        _local_bundle(src, dst, departure, base, fbase, stride, t0, width, n, lo, hi,
                      SCHEME_UPWIND, scratch, watch_face, watched, line0)


@njit(cache=True)
def _local_bundle(src, dst, departure, base, fbase, stride, t0, width, n, lo, hi, scheme,
                  scratch, watch_face, watched, line0):
    w = np.uint64(width)
    st = np.uint64(stride)
    start = np.uint64(base + t0)
    fstart = np.uint64(fbase + t0)
    lines = np.uint64(line0)
    if lo == 0:
        for t in range(w):
            scratch[t] = -departure[fstart + t] * src[start + t]
            scratch[w + t] = 0.0
    else:
        row = start + np.uint64(lo) * st
        frow = fstart + np.uint64(lo) * st
        for t in range(w):
            k = row + t
            g = _slope(src, k, lo, n, st, scheme)
            scratch[t] = _local_flux(lo - departure[frow + t], src[k - st],
                                     _slope(src, k - st, lo - 1, n, st, scheme), src[k], g)
            scratch[w + t] = g
    if watch_face == lo:
        for t in range(w):
            watched[lines + t] += max(scratch[t], 0.0)
    for j in range(lo, hi):
        row = start + np.uint64(j) * st
        frow = fstart + np.uint64(j + 1) * st
        if j + 2 < n:
            level = j + 1.0
            for t in range(w):
                p = src[row + t]
                p_above = src[row + st + t]
                g_above = _limited(p_above - p, src[row + st + st + t] - p_above, scheme)
                flux = _local_flux(level - departure[frow + t], p, scratch[w + t],
                                   p_above, g_above)
                dst[row + t] = _kept(p + scratch[t] - flux)
                scratch[t] = flux
                scratch[w + t] = g_above
        elif j + 1 < n:     # cell j + 1 is the top edge cell: slope 0
            level = j + 1.0
            for t in range(w):
                p = src[row + t]
                flux = _local_flux(level - departure[frow + t], p, scratch[w + t],
                                   src[row + st + t], 0.0)
                dst[row + t] = _kept(p + scratch[t] - flux)
                scratch[t] = flux
        else:
            top = float(n)
            for t in range(w):
                p = src[row + t]
                flux = (top - departure[frow + t]) * p
                dst[row + t] = _kept(p + scratch[t] - flux)
                scratch[t] = flux
        if watch_face == j + 1:
            for t in range(w):
                watched[lines + t] += max(scratch[t], 0.0)


@njit(cache=True)
def _below_range(p, cum, k0, stride, width, t, n, a, b, x, scheme):
    """Mass of the reconstruction of a line (cell 0 at ``k0``) below ``x``, the prefix
    sums ``cum`` kept only for cells ``a .. b - 1`` (the line is 0 outside them):
    ``cum[(i - a) width + t]`` is the mass of cells ``a .. i - 1``."""
    i = min(int(x), n - 1)
    f = x - i
    k = k0 + np.uint64(i) * stride
    below = k - stride if i > 0 else k
    above = k + stride if i < n - 1 else k
    c = p[k]
    g = _limited(c - p[below], p[above] - c, scheme)
    r = np.uint64(min(max(i, a), b) - a)
    return cum[r * width + t] + f * (c + 0.5 * (f - 1.0) * g)


@njit(cache=True, error_model="numpy")
def gather_bundle(src, dst, departure, base, fbase, stride, t0, width, n, a, b, lo, hi,
                  scheme, cum, scratch, watch_face, watched, line0):
    """:func:`popdens.kernels.nd.drift_sweep_gather` on the cells ``lo .. hi - 1`` of
    ``width`` lines from ``t0`` whose mass lies in cells ``a .. b - 1``. ``cum``:
    ``(b - a + 1) width`` entries, ``scratch``: ``width``."""
    if scheme == SCHEME_MC:
        _gather_bundle(src, dst, departure, base, fbase, stride, t0, width, n, a, b, lo,
                       hi, SCHEME_MC, cum, scratch, watch_face, watched, line0)
    elif scheme == SCHEME_VANLEER:
        _gather_bundle(src, dst, departure, base, fbase, stride, t0, width, n, a, b, lo,
                       hi, SCHEME_VANLEER, cum, scratch, watch_face, watched, line0)
    else:
        _gather_bundle(src, dst, departure, base, fbase, stride, t0, width, n, a, b, lo,
                       hi, SCHEME_UPWIND, cum, scratch, watch_face, watched, line0)


@njit(cache=True)
def _gather_bundle(src, dst, departure, base, fbase, stride, t0, width, n, a, b, lo, hi,
                   scheme, cum, scratch, watch_face, watched, line0):
    w = np.uint64(width)
    st = np.uint64(stride)
    start = np.uint64(base + t0)
    fstart = np.uint64(fbase + t0)
    for t in range(w):
        cum[t] = 0.0
    for j in range(np.uint64(0), np.uint64(b - a)):
        r = j * w
        row = start + (j + np.uint64(a)) * st
        for t in range(w):
            cum[r + w + t] = cum[r + t] + src[row + t]
    frow = fstart + np.uint64(lo) * st
    for t in range(w):
        scratch[t] = _below_range(src, cum, start + t, st, w, t, n, a, b,
                                  departure[frow + t], scheme)
    for j in range(np.uint64(lo), np.uint64(hi)):
        row = start + j * st
        frow = fstart + (j + np.uint64(1)) * st
        for t in range(w):
            upper = _below_range(src, cum, start + t, st, w, t, n, a, b,
                                 departure[frow + t], scheme)
            dst[row + t] = _kept(upper - scratch[t])
            scratch[t] = upper
    if watch_face >= 0:
        frow = fstart + np.uint64(watch_face) * st
        level = float(watch_face)
        lines = np.uint64(line0)
        for t in range(w):
            x = departure[frow + t]
            if x < level:
                watched[lines + t] += max(
                    _below_range(src, cum, start + t, st, w, t, n, a, b, level, scheme)
                    - _below_range(src, cum, start + t, st, w, t, n, a, b, x, scheme), 0.0)


@njit(cache=True, error_model="numpy")
def whole_jump_bundle(src, dst, base, stride, t0, width, n, lo, hi, m, weights, count,
                      top_mode, bottom_absorb, crossed, watch_face, watched, line0,
                      scratch):
    """:func:`popdens.kernels.nd.jump_whole` on the cells ``lo .. hi - 1`` of ``width``
    lines from ``t0`` (the edge cells must be in that range when mass reaches them).
    ``scratch``: ``2 width`` entries."""
    w_ = np.uint64(width)
    st = np.uint64(stride)
    start = np.uint64(base + t0)
    lines = np.uint64(line0)
    for j in range(lo, hi):
        row = start + np.uint64(j) * st
        w = weights[0]
        for t in range(w_):
            dst[row + t] = w * src[row + t]
        for k in range(1, count):
            source = j - k * m
            if 0 <= source < n:
                w = weights[k]
                srow = start + np.uint64(source) * st
                for t in range(w_):
                    dst[row + t] += w * src[srow + t]
        for t in range(w_):
            dst[row + t] = _kept(dst[row + t])
    if m == 0:
        return
    edge = scratch[:width]
    seen = scratch[width:2 * width]
    edge[:] = 0.0
    seen[:] = 0.0
    step = abs(m)
    for k in range(1, count):
        w = weights[k]
        for r in range((k - 1) * step, min(k * step, n)):
            row = start + np.uint64((n - 1 - r) if m > 0 else r) * st
            for t in range(w_):
                edge[t] += src[row + t]
        if m > 0:
            if top_mode == 1:       # TOP_FIRE
                for t in range(w_):
                    crossed[lines + t] += w * edge[t]
            elif top_mode == 0:     # TOP_REFLECT
                top = start + np.uint64(n - 1) * st
                for t in range(w_):
                    dst[top + t] += w * edge[t]
            if watch_face > 0:
                for r in range((k - 1) * step, min(k * step, watch_face)):
                    row = start + np.uint64(watch_face - 1 - r) * st
                    for t in range(w_):
                        seen[t] += src[row + t]
                for t in range(w_):
                    watched[lines + t] += w * seen[t]
        elif not bottom_absorb:
            for t in range(w_):
                dst[start + t] += w * edge[t]


@njit(cache=True)
def bundle_slopes(p, g, base, stride, t0, width, n, scheme):
    """:func:`popdens.kernels.nd.axis_slopes` on ``width`` lines from ``t0``."""
    start = base + t0
    for j in range(n):
        row = start + j * stride
        for t in range(width):
            g[row + t] = _slope(p, row + t, j, n, stride, scheme)


@njit(cache=True)
def fractional_jump_bundle(src, dst, g, base, stride, t0, width, n, shift, weights, count,
                           top_mode, bottom_absorb, crossed, watch_face, watched, line0):
    """:func:`popdens.kernels.nd.jump_fractional` on ``width`` whole lines from ``t0``."""
    start = base + t0
    for j in range(n):
        row = start + j * stride
        w = weights[0]
        for t in range(width):
            dst[row + t] = w * src[row + t]
    for k in range(1, count):
        w = weights[k]
        s = k * shift
        for t in range(width):
            line = line0 + t
            for j in range(n):
                lo = j - s
                if j == 0 and s < 0.0 and not bottom_absorb:
                    lo = 0.0
                dst[start + j * stride + t] += w * _mass_between(src, g, start, stride, t,
                                                                 n, lo, j + 1 - s)
            if s > 0.0:
                over = _mass_between(src, g, start, stride, t, n, n - s, float(n))
                if top_mode == 1:
                    crossed[line] += w * over
                elif top_mode == 0:
                    dst[start + (n - 1) * stride + t] += w * over
                if watch_face > 0:
                    watched[line] += w * _mass_between(src, g, start, stride, t, n,
                                                       watch_face - s, float(watch_face))


@njit(cache=True)
def affine_jump_bundle(src, dst, g, base, stride, t0, width, n, scale, offset, weights,
                       count, top_mode, bottom_absorb, crossed, watch_face, watched,
                       line0):
    """:func:`popdens.kernels.nd.jump_affine` on ``width`` whole lines from ``t0``."""
    start = base + t0
    for j in range(n):
        row = start + j * stride
        w = weights[0]
        for t in range(width):
            dst[row + t] = w * src[row + t]
    power = 1.0
    for k in range(1, count):
        w = weights[k]
        power *= scale
        shift = offset * (1.0 - power) / (1.0 - scale)
        inverse = 1.0 / power
        lo = -shift * inverse if bottom_absorb else 0.0
        for j in range(n):
            hi = (j + 1 - shift) * inverse
            row = start + j * stride
            if hi > lo and hi > 0.0 and lo < n:
                for t in range(width):
                    dst[row + t] += w * _mass_between(src, g, start, stride, t, n, lo, hi)
            lo = hi
        if lo < n:
            for t in range(width):
                over = w * _mass_between(src, g, start, stride, t, n, lo, float(n))
                if top_mode == 1:
                    crossed[line0 + t] += over
                elif top_mode == 0:
                    dst[start + (n - 1) * stride + t] += over
        if watch_face > 0:
            begin = (watch_face - shift) * inverse
            if begin < watch_face:
                for t in range(width):
                    watched[line0 + t] += w * _mass_between(
                        src, g, start, stride, t, n, begin, float(watch_face))


# --- tile bookkeeping ------------------------------------------------------------------------
@njit(cache=True)
def mark_tiles(state, plan, flags):
    """``flags[k] = 1`` for the tiles of ``state`` holding a nonzero mass, else 0."""
    for k in range(flags.shape[0]):
        flags[k] = _any_mass(state, plan, k)


@njit(cache=True)
def _any_mass(state, plan, k):
    for r in range(plan.run_offset[k], plan.run_offset[k + 1]):
        s = plan.run_start[r]
        for i in range(s, s + plan.run_length[r]):
            if state[i] != 0.0:
                return 1
    return 0


@njit(cache=True)
def clear_tiny(state, plan, flags, tiny):
    """Masses below ``tiny`` in the flagged tiles become 0 (the others are 0 already)."""
    for k in range(flags.shape[0]):
        if flags[k]:
            for r in range(plan.run_offset[k], plan.run_offset[k + 1]):
                s = plan.run_start[r]
                for i in range(s, s + plan.run_length[r]):
                    if state[i] < tiny:
                        state[i] = 0.0


@njit(cache=True)
def add_to_tile(plan, axis_n, cell):
    """Flag the tile holding flat cell index ``cell`` (mass was added there)."""
    tile = 0
    rest = cell
    for d in range(axis_n.shape[0] - 1, -1, -1):
        coord = rest % axis_n[d]
        rest //= axis_n[d]
        tile += (coord // plan.size[d]) * plan.strides[d]
    plan.flags[tile] = 1


# --- one stage along an axis -------------------------------------------------------------------
@njit(cache=True)
def _active_range(flags, first, stride, count):
    """First and last active tile of a column (-1, -1 when none)."""
    lo = -1
    hi = -1
    for k in range(count):
        if flags[first + k * stride]:
            if lo < 0:
                lo = k
            hi = k
    return lo, hi


@njit(cache=True)
def _gather_range(plan, row, count, size, n, a, b):
    """Cells that a gather sweep can fill in a column whose mass lies in cells
    ``a .. b - 1``: below the highest tile boundary whose departure points all lie at or
    below ``a`` and above the lowest one whose departure points all lie at or above
    ``b``, every cell receives exactly 0."""
    lo = 0
    for k in range(a // size, -1, -1):
        if plan.dep_hi[row + k] <= a:
            lo = k * size
            break
    hi = n
    for k in range((b + size - 1) // size, count + 1):
        if plan.dep_lo[row + k] >= b:
            hi = min(k * size, n)
            break
    return lo, hi


@njit(cache=True)
def tiled_stage(kind, src, dst, aux, departure, axis, table, n, inner, scheme, plan,
                cum, scratch, watch_face, watched, m, shift, scale, weights, count,
                top_mode, bottom_absorb, crossed):
    """One stage along ``axis`` on the active columns only (``kind``: ``STAGE_*``), then
    ``plan.flags`` := the tiles of ``dst`` holding mass, and ``src`` zeroed (``dst`` must
    be 0 outside the tiles of the columns this stage processes; ``aux``: slopes for the
    fractional and conductance jumps). Same arguments as the kernels of
    :mod:`popdens.kernels.nd`."""
    flags = plan.flags
    new = plan.new_flags
    new[:] = 0
    size = plan.size[axis]
    count_d = plan.counts[axis]
    tstride = plan.strides[axis]
    for c in range(plan.col_offset[axis], plan.col_offset[axis + 1]):
        first = plan.col_first[c]
        ta, tb = _active_range(flags, first, tstride, count_d)
        if ta < 0:
            continue
        a = ta * size
        b = min((tb + 1) * size, n)
        lo, hi = 0, n
        if kind == STAGE_LOCAL:
            lo = max(a - size, 0)
            hi = min(b + size, n)
        elif kind == STAGE_GATHER:
            row = plan.dep_offset[table] + (c - plan.col_offset[axis]) * (count_d + 1)
            lo, hi = _gather_range(plan, row, count_d, size, n, a, b)
        elif kind == STAGE_WHOLE:
            # the series moves mass by at most (count - 1) |m| cells, one way
            reach = (count - 1) * abs(m)
            lo = a if m >= 0 else max(a - reach, 0)
            hi = b if m <= 0 else min(b + reach, n)
        for q in range(plan.bundle_offset[c], plan.bundle_offset[c + 1]):
            base = plan.bundle_base[q]
            t0 = plan.bundle_t0[q]
            width = plan.bundle_width[q]
            line0 = (base // n) + t0
            if kind == STAGE_LOCAL:
                local_bundle(src, dst, departure, base, plan.bundle_fbase[q], inner, t0,
                             width, n, lo, hi, scheme, scratch, watch_face, watched, line0)
            elif kind == STAGE_GATHER:
                gather_bundle(src, dst, departure, base, plan.bundle_fbase[q], inner, t0,
                              width, n, a, b, lo, hi, scheme, cum, scratch, watch_face,
                              watched, line0)
            elif kind == STAGE_WHOLE:
                whole_jump_bundle(src, dst, base, inner, t0, width, n, lo, hi, m, weights,
                                  count, top_mode, bottom_absorb, crossed, watch_face,
                                  watched, line0, scratch)
            else:
                bundle_slopes(src, aux, base, inner, t0, width, n, scheme)
                if kind == STAGE_FRACTIONAL:
                    fractional_jump_bundle(src, dst, aux, base, inner, t0, width, n, shift,
                                           weights, count, top_mode, bottom_absorb,
                                           crossed, watch_face, watched, line0)
                else:
                    affine_jump_bundle(src, dst, aux, base, inner, t0, width, n, scale,
                                       shift, weights, count, top_mode, bottom_absorb,
                                       crossed, watch_face, watched, line0)
            _finish(src, dst, np.uint64(base + t0), np.uint64(inner), np.uint64(width), a,
                    b, lo, hi, new, first, tstride, size)
    flags[:] = new
