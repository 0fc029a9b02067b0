"""Assembly for N-dimensional populations: model + grid -> the arrays of the N-D kernels.

Nothing here steps in time. The pieces:

* :func:`axis_views`: the ``(outer, n, inner)`` view of every axis of a C-ordered grid.
* :func:`face_departures`: for every face of an axis, where the frozen-line flow of the
  model's drift over one sub-step comes from (cell units). Axes on which the drift is
  affine in the axis's own coordinate (gating variables, ``dx/dt = (x_inf - x) / tau``,
  synaptic currents) get the exact exponential flow; the others a fourth-order
  Runge-Kutta integration of the line ODE, backwards, with steps resolving its
  self-relaxation rate.
* :func:`point_mass_nd`: a point mass split multilinearly over the nearest cell centers.
* :func:`reset_map`: where mass that crossed the threshold face re-enters, per cell of
  the threshold slice.
* :func:`internal_step`: the internal step (independent of the report step).

Departure points outside the grid are clamped to its faces: the lower and upper faces of
every axis are reflecting (zero flux) unless opened (outflow or absorbing faces, chosen
per population), and the threshold face of a reset model is open, its outflux firing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .grid import Grid
from .kernels.nd_tiles import TilePlan
from .models.base import SpikeSurface

__all__ = ["axis_views", "drift_component", "affine_along_axis", "affine_axes",
           "face_departures", "sweep_anchors",
           "point_mass_nd", "initial_masses_nd", "reset_map", "release_schedule",
           "internal_step", "model_kind", "DEFAULT_STEP", "NDModelInfo", "tile_plan",
           "TILE_SIZE"]

# Default upper bound on the internal step (s): the step at which the N-D accuracy of the
# README was measured. ``max_substep`` replaces it (smaller or larger).
DEFAULT_STEP = 1e-4
# The semi-Lagrangian sweeps are stable and positive for any Courant number, so no CFL
# limit applies. The splitting error between axes is bounded by
# dt_sub <= SPLIT_RATE / median |da_d/dx_d| over the axes whose drift is not affine in
# their own coordinate (v of ReducedHH: median 2.7e4 / s, so dt_sub <= 110 us; every
# axis of the full HH model is affine). Measured for ReducedHH (default grid) vs Monte
# Carlo (2e4 neurons, 2 mV jumps at 2 then 4 kHz): dt_sub = 20, 50, 100 us agree within
# 0.29 %, 0.32 %, 0.53 % per segment (|z| < 1.7); tests/backends/test_nd.py checks it.
SPLIT_RATE = 3.0
# Largest drift displacement at the threshold face per sub-step, in units of the smallest
# jump along the threshold axis (reset models; same rule as the 1D solver).
JUMP_CFL = 0.5
# At most this many expected events per connection and sub-step (short Poisson series).
MAX_EVENTS_PER_SUBSTEP = 20.0
# Relative tolerance of the affine test along an axis.
AFFINE_RTOL = 1e-9
# Runge-Kutta steps of departure points: at most RK_RATE / |da/dx| long, at most
# RK_MAX_STEPS per sub-step.
RK_RATE = 0.2
RK_MAX_STEPS = 400
# Cells per tile along each axis (active tiles, kernels.nd_tiles).
TILE_SIZE = 2


def axis_views(shape) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(outer, n, inner)`` of every axis of a C-ordered array of ``shape``."""
    shape = tuple(int(s) for s in shape)
    outer = np.array([int(np.prod(shape[:d])) for d in range(len(shape))], dtype=np.int64)
    inner = np.array([int(np.prod(shape[d + 1:])) for d in range(len(shape))],
                     dtype=np.int64)
    return outer, np.array(shape, dtype=np.int64), inner


@dataclass(frozen=True)
class NDModelInfo:
    """How the engine treats a model: axes of input, spike plane or threshold/reset."""

    jump_axis: int
    spike_axis: int        # -1: reset model
    spike_face: int        # face index of the spike plane along spike_axis
    reset_axis: int        # -1: spike-surface model


def drift_component(model, coords, axis: int) -> np.ndarray:
    """Component ``axis`` of the model's drift at ``coords``, broadcast to their shape."""
    shape = np.broadcast_shapes(*[np.shape(c) for c in coords])
    value = np.broadcast_to(np.asarray(model.drift_along(axis, *coords), dtype=float), shape)
    if not np.all(np.isfinite(value)):
        raise ValueError(f"model.drift gave non-finite values for "
                         f"{model.state_vars[axis]!r} on the grid")
    return value


def _face_coords(grid: Grid, axis: int, positions=None) -> list[np.ndarray]:
    """Coordinates of the faces of ``axis`` (cell centers on the other axes), each
    broadcastable to the face-array shape but kept compact (length 1 on the axes it does
    not vary along), so that a drift term of one variable (the rate functions of HH's
    ``v``) is computed once per value, not once per face (``positions`` replaces the
    face positions)."""
    coords = []
    for d, ax in enumerate(grid.axes):
        values = ax.faces if d == axis else ax.centers
        view = [1] * grid.ndim
        view[d] = values.size
        coords.append(values.reshape(view))
    if positions is not None:
        coords[axis] = positions
    return coords


def affine_along_axis(velocity: np.ndarray, faces: np.ndarray, axis: int):
    """Fit ``a = alpha + beta x`` along each line of ``axis``; returns ``(beta, ok)``
    with ``ok`` whether every line is affine to ``AFFINE_RTOL``."""
    first = np.take(velocity, [0], axis=axis)
    last = np.take(velocity, [faces.size - 1], axis=axis)
    beta = (last - first) / (faces[-1] - faces[0])
    view = [1] * velocity.ndim
    view[axis] = faces.size
    fitted = first + beta * (faces.reshape(view) - faces[0])
    scale = max(float(np.max(np.abs(velocity))), 1e-300)
    ok = bool(np.max(np.abs(fitted - velocity)) <= AFFINE_RTOL * scale)
    return beta, ok


def affine_axes(model, grid: Grid) -> list[bool]:
    """For every axis, whether the model's drift along it is affine in its own
    coordinate on every grid line (then its flow is an exact exponential relaxation)."""
    out = []
    for axis, ax in enumerate(grid.axes):
        velocity = drift_component(model, _face_coords(grid, axis), axis)
        out.append(affine_along_axis(velocity, ax.faces, axis)[1])
    return out


def _relaxed_mean(x, velocity, beta, tau, anchor):
    """Mean of an affine flow ``dx/dt = a + beta (x' - x)`` over a window of length
    ``tau`` after (``anchor = +1``) or before (``-1``) the time it is at ``x``:
    ``x + anchor a tau psi(anchor beta tau)``, ``psi(z) = (e^z - 1 - z) / z^2``."""
    z = anchor * beta * tau
    small = np.abs(z) < 1e-5
    safe = np.where(small, 1.0, z)
    psi = np.where(small, 0.5 + z / 6.0, (np.expm1(safe) - safe) / (safe * safe))
    return x + anchor * velocity * tau * psi


def face_departures(model, grid: Grid, axis: int, dt_sub: float, open_upper: bool,
                    anchors=None, open_lower: bool = False) -> tuple[np.ndarray, bool]:
    """Departure positions (cell units along ``axis``, in [0, n], non-decreasing along
    every line) of the faces of ``axis`` under the model's drift component ``axis``
    over ``dt_sub``, with the other coordinates frozen on each line.

    The frozen value of another axis ``k`` is its cell center, except for axes whose
    drift is affine in their own coordinate (``anchors[k]`` = +1 or -1): those relax
    exactly in their own sweep, possibly much faster than ``dt_sub`` (fast gates,
    synaptic currents with small time constants), so this sweep sees their *mean* along
    that exponential flow over the sub-step, after the current state (+1: axis ``k`` is
    swept later in this sub-step) or before it (-1: already swept). Freezing them at
    the center instead would let ``v`` see a decayed synaptic current for a whole
    sub-step, which is wrong by O(dt_sub / tau_syn), not small in the stiff limit.

    ``open_upper`` / ``open_lower``: the face lets out the mass the flow carries through
    it (threshold of a reset model, outflow or absorbing face); otherwise it reflects
    (zero flux). Returns ``(departure, exact)``, ``exact`` when the
    drift is affine along the axis and the exponential flow was used."""
    ax = grid.axes[axis]
    coords = [np.asarray(c, dtype=float) for c in _face_coords(grid, axis)]
    for k, anchor in enumerate(anchors or ()):
        if k == axis or anchor == 0:
            continue
        other = grid.axes[k]
        here = drift_component(model, coords, k)
        shifted = list(coords)
        shifted[k] = coords[k] + other.width
        beta = (drift_component(model, shifted, k) - here) / other.width
        coords[k] = np.clip(_relaxed_mean(coords[k], here, beta, dt_sub, anchor),
                            other.lower, other.upper)
    velocity = drift_component(model, coords, axis)
    beta, affine = affine_along_axis(velocity, ax.faces, axis)
    x = np.array(coords[axis], dtype=float)
    if not affine:
        beta, affine = _affine_per_face(model, coords, axis, velocity)
    if affine:
        # exact backward flow of a = alpha + beta x: x0 = x - dt a phi(-beta dt),
        # phi(z) = (e^z - 1) / z
        z = -beta * dt_sub
        safe = np.where(np.abs(z) > 1e-12, z, 1.0)
        phi = np.where(np.abs(z) > 1e-12, np.expm1(safe) / safe, 1.0 + 0.5 * z)
        position = x - dt_sub * velocity * phi
    else:
        # RK4 steps resolve the line flow's own time scale 1 / |da/dx| (Lipschitz
        # constant from face differences), not the cell width: the flow is smooth, and
        # fast contraction (v of HH) is the only accuracy limit
        lipschitz = float(np.max(np.abs(np.diff(velocity, axis=axis)))) / ax.width
        steps = min(RK_MAX_STEPS, max(2, math.ceil(lipschitz * dt_sub / RK_RATE)))
        h = -dt_sub / steps
        position = x
        lo, hi = ax.lower, ax.upper

        def rate(pos):
            frozen = list(coords)
            frozen[axis] = np.clip(pos, lo, hi)
            return drift_component(model, frozen, axis)

        for _ in range(steps):
            k1 = rate(position)
            k2 = rate(position + 0.5 * h * k1)
            k3 = rate(position + 0.5 * h * k2)
            k4 = rate(position + h * k3)
            position = np.clip(position + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4), lo, hi)
    cells = np.clip((position - ax.lower) / ax.width, 0.0, ax.num_cells)
    index = [slice(None)] * grid.ndim
    index[axis] = 0
    if not open_lower:
        cells[tuple(index)] = 0.0
    if not open_upper:
        index[axis] = ax.num_cells
        cells[tuple(index)] = ax.num_cells
    # a 1D autonomous flow is monotone; remove round-off inversions
    cells = np.maximum.accumulate(cells, axis=axis)
    return cells, affine


def _affine_per_face(model, coords, axis: int, velocity: np.ndarray):
    """Whether the drift along ``axis`` is affine in its own coordinate at every face
    *with that face's frozen other coordinates* (which may differ from face to face, e.g.
    the anchored gates of HH, whose relaxed means depend on v): probed at both ends of the
    axis and at two interior points. Returns ``(beta, ok)`` with ``beta`` per face; then
    each face's backward flow is an exact exponential and no Runge-Kutta is needed."""
    ax_lower, ax_upper = float(np.min(coords[axis])), float(np.max(coords[axis]))
    span = ax_upper - ax_lower

    def at(position):
        probe = list(coords)
        probe[axis] = np.full(np.shape(coords[axis]), position)
        return drift_component(model, probe, axis)

    a_lo, a_hi = at(ax_lower), at(ax_upper)
    beta = (a_hi - a_lo) / span
    scale = max(float(np.max(np.abs(a_lo))), float(np.max(np.abs(a_hi))),
                float(np.max(np.abs(velocity))), 1e-300)
    checks = [(coords[axis], velocity)] + [
        (ax_lower + f * span, at(ax_lower + f * span)) for f in (1.0 / 3.0, 2.0 / 3.0)]
    for position, value in checks:
        if np.max(np.abs(a_lo + beta * (position - ax_lower) - value)) > AFFINE_RTOL * scale:
            return beta, False
    return beta, True


def sweep_anchors(affine: list[bool], axis: int, forward: bool) -> list[int]:
    """Anchors of :func:`face_departures` for the sweep of ``axis``: in the forward
    order (axes 0 .. D-1) the axes before ``axis`` are already swept (-1), those after
    not yet (+1); reversed in the backward order. Non-affine axes: 0 (cell center)."""
    out = []
    for k, is_affine in enumerate(affine):
        if not is_affine or k == axis:
            out.append(0)
        elif forward:
            out.append(-1 if k < axis else 1)
        else:
            out.append(1 if k < axis else -1)
    return out


def point_mass_nd(grid: Grid, position) -> tuple[np.ndarray, np.ndarray]:
    """Flat cell indices and weights of a unit point mass at ``position``, split
    multilinearly between the nearest cell centers (clamped at the edge cells), so the
    first moments are exact away from the edges."""
    per_axis = []
    for ax, x in zip(grid.axes, position):
        u = (float(x) - ax.lower) / ax.width - 0.5
        if u <= 0.0:
            per_axis.append([(0, 1.0)])
        elif u >= ax.num_cells - 1:
            per_axis.append([(ax.num_cells - 1, 1.0)])
        else:
            c = int(math.floor(u))
            f = u - c
            per_axis.append([(c, 1.0 - f), (c + 1, f)] if f > 0 else [(c, 1.0)])
    cells = [()]
    weights = [1.0]
    for entries in per_axis:
        cells = [c + (i,) for c in cells for (i, _) in entries]
        weights = [w * v for w in weights for (_, v) in entries]
    flat = np.ravel_multi_index(tuple(np.array(c) for c in zip(*cells)), grid.shape)
    return np.asarray(flat, dtype=np.int64), np.asarray(weights, dtype=float)


def initial_masses_nd(grid: Grid, model, init) -> np.ndarray:
    """Initial cell masses (sum 1, flat C order) from ``init`` (None: a point mass at
    the model's resting state)."""
    if init is None:
        rest = model.resting_state
        rest = tuple(np.atleast_1d(np.asarray(rest, dtype=float)))
        if len(rest) != grid.ndim:
            raise ValueError(f"model.resting_state has {len(rest)} entries for a "
                             f"{grid.ndim}-D grid")
        mass = np.zeros(grid.num_cells)
        cells, weights = point_mass_nd(grid, rest)
        np.add.at(mass, cells, weights)
        return mass
    mesh = np.meshgrid(*grid.centers(), indexing="ij")
    values = np.asarray(init(*mesh), dtype=float)
    values = np.broadcast_to(values, grid.shape).astype(float)
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError("init must return finite, non-negative values on the cell centers")
    total = values.sum()
    if not total > 0:
        raise ValueError("init must be positive somewhere on the grid; its sum is 0")
    return (values / total).ravel()


def model_kind(model, grid: Grid) -> NDModelInfo:
    """Validate the model/grid pair and locate the input axis, spike plane or threshold.

    Raises
    ------
    ValueError
        Grid axes not matching ``model.state_vars``, an input variable or spike variable
        that is not a state variable, a spike level outside the grid, or a reset model
        whose grid does not end at ``v_th``.
    """
    names = tuple(model.state_vars)
    if not isinstance(grid, Grid):
        raise TypeError(f"grid must be a popdens.Grid, got {type(grid).__name__}")
    if grid.names != names:
        raise ValueError(f"grid axes {grid.names} do not match the model's state variables "
                         f"{names} (same names, same order)")
    input_var = model.input_var
    if input_var not in names:
        raise ValueError(f"model.input_var={input_var!r} is not one of the state variables "
                         f"{names}")
    jump_axis = names.index(input_var)
    rule = model.spike_rule
    if rule.var not in names:
        raise ValueError(f"spike rule variable {rule.var!r} is not one of the state "
                         f"variables {names}")
    axis = names.index(rule.var)
    ax = grid.axes[axis]
    if isinstance(rule, SpikeSurface):
        if not ax.lower < rule.level < ax.upper:
            raise ValueError(f"spike surface level {rule.var}={rule.level!r} lies outside "
                             f"the grid {rule.var}=({ax.lower:g}, {ax.upper:g}); it must be "
                             f"strictly inside")
        # the plane is the face nearest to the level
        face = int(round((rule.level - ax.lower) / ax.width))
        face = min(max(face, 1), ax.num_cells - 1)
        return NDModelInfo(jump_axis, axis, face, -1)
    if ax.face_index(rule.threshold) != ax.num_cells:
        raise ValueError(f"grid {rule.var} upper={ax.upper!r} must equal the threshold "
                         f"{rule.threshold!r} (a reset model fires through the upper face)")
    if not ax.contains(rule.reset):
        raise ValueError(f"grid {rule.var}=({ax.lower:g}, {ax.upper:g}) must contain "
                         f"the reset {rule.reset!r}")
    return NDModelInfo(jump_axis, -1, -1, axis)


def reset_map(model, grid: Grid, reset_axis: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparse reset map ``(source, target, weight)``: mass released from slice cell
    ``source`` (flat index over the axes other than ``reset_axis``) goes ``weight`` into
    flat cell ``target``. Along the threshold axis it lands at the reset; the other
    coordinates of the slice cell's center are passed through ``model.refractory_map``
    (e.g. a synaptic current decaying during the refractory period), each split
    multilinearly over the nearest cells."""
    others = [d for d in range(grid.ndim) if d != reset_axis]
    slice_shape = tuple(grid.shape[d] for d in others)
    centers = [grid.axes[d].centers for d in others]
    mesh = [m.ravel() for m in np.meshgrid(*centers, indexing="ij")] if others else []
    if others:
        mapped = model.refractory_map(*mesh)
        if len(others) == 1 and not isinstance(mapped, (tuple, list)):
            mapped = (mapped,)
        mesh = [np.broadcast_to(np.asarray(m, dtype=float), mesh[0].shape) for m in mapped]
    num_slice = int(np.prod(slice_shape)) if others else 1
    sources, targets, weights = [], [], []
    for s in range(num_slice):
        position = [0.0] * grid.ndim
        position[reset_axis] = model.spike_rule.reset
        for k, d in enumerate(others):
            position[d] = float(mesh[k][s])
        cells, w = point_mass_nd(grid, position)
        sources.extend([s] * cells.size)
        targets.extend(cells.tolist())
        weights.extend(w.tolist())
    return (np.asarray(sources, dtype=np.int64), np.asarray(targets, dtype=np.int64),
            np.asarray(weights, dtype=float))


def release_schedule(t_ref: float, dt_sub: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Release offsets (sub-steps after the firing sub-step, at their start) and weights
    for a refractory period ``t_ref``, and the ring-buffer length.

    Mass fired during a sub-step crosses, on average, at its middle; it is due
    ``t_ref`` later, i.e. ``e = 1/2 + t_ref / dt_sub`` sub-steps after that sub-step's
    start, and is split linearly between the two sub-step starts around ``e``. The
    earliest release is the next sub-step (so ``t_ref < dt_sub / 2`` acts as
    ``dt_sub / 2``)."""
    e = 0.5 + t_ref / dt_sub
    lo = int(math.floor(e + 1e-12))
    hi_weight = max(e - lo, 0.0)
    if lo < 1:
        lo, hi_weight = 1, 0.0
    offsets = np.array([lo, lo + 1], dtype=np.int64)
    weights = np.array([1.0 - hi_weight, hi_weight])
    return offsets, weights, lo + 2


def internal_step(model, grid: Grid, info: NDModelInfo, inputs,
                  max_substep: float | None = None) -> float:
    """The internal step (s) of a population, from its model, grid and inputs only.

    The report step of a run plays no part: the same population with the same inputs
    gets the same internal step whatever ``dt`` the user asks for, so its answer does not
    move with the report step (issue 15: tied to ``dt``, the HH rate moved by 4 %
    between ``dt = 1e-4`` and ``5e-5``). The step is ``cap / n`` with ``cap =
    max_substep`` (default ``DEFAULT_STEP``) and the smallest whole ``n`` such that:

    * ``h <= SPLIT_RATE / median |da_d/dx_d|`` on every axis whose drift is *not*
      affine in its own coordinate (the affine ones, fast gates and synaptic currents
      included, are advanced by their exact exponential flow and seen by the other
      sweeps through their mean over the step, so their stiffness costs nothing);
      there is no Courant limit (semi-Lagrangian sweeps);
    * reset models: the drift at the threshold face moves at most ``JUMP_CFL`` of the
      smallest jump along the threshold axis per step (as in the 1D solver);
    * at most ``MAX_EVENTS_PER_SUBSTEP`` expected events per connection and step.

    Parameters
    ----------
    model, grid, info
        The population's model, grid and :func:`model_kind`.
    inputs : list of (float, float)
        ``(peak_rate, jump)`` per connection.
    max_substep : float, optional
        Upper bound on the step (s); default ``DEFAULT_STEP``.

    Returns
    -------
    float
        The internal step (s), ``cap`` divided by a whole number.
    """
    cap = DEFAULT_STEP if max_substep is None else float(max_substep)
    n_sub = 1
    for axis, ax in enumerate(grid.axes):
        velocity = drift_component(model, _face_coords(grid, axis), axis)
        _, affine = affine_along_axis(velocity, ax.faces, axis)
        if affine:
            continue
        # typical self-relaxation rate |da_d / dx_d| of the axis (median over the grid:
        # the maximum sits in corners of phase space that no neuron visits)
        rate = float(np.median(np.abs(np.diff(velocity, axis=axis)))) / ax.width
        if rate > 0:
            n_sub = max(n_sub, math.ceil(cap * rate / SPLIT_RATE - 1e-9))
    if info.reset_axis >= 0:
        axis = info.reset_axis
        velocity = drift_component(model, _face_coords(grid, axis), axis)
        top = np.take(velocity, [grid.shape[axis]], axis=axis)
        speed = float(np.max(np.abs(top)))
        jumps = [abs(h) for (_, h) in inputs if h != 0.0]
        if jumps and speed > 0 and info.jump_axis == axis:
            n_sub = max(n_sub, math.ceil(cap * speed / (JUMP_CFL * min(jumps)) - 1e-9))
    for rate, _ in inputs:
        n_sub = max(n_sub, math.ceil(rate * cap / MAX_EVENTS_PER_SUBSTEP - 1e-9))
    return cap / n_sub


def _mixed_radix(coords, counts) -> np.ndarray:
    """C-order index of integer coordinates (last axis of ``coords``) over ``counts``."""
    index = np.zeros(coords.shape[:-1], dtype=np.int64)
    for k, c in enumerate(counts):
        index = index * int(c) + coords[..., k]
    return index


def _bundles(shape, size, axis):
    """Line bundles of ``axis``'s columns: lines adjacent along the last axis and in the
    same tile, as ``(column, base, fbase, t0, width)`` arrays sorted by column."""
    shape = np.asarray(shape)
    ndim = shape.size
    n = int(shape[axis])
    inner = int(np.prod(shape[axis + 1:]))
    # one bundle per tile-run start on the last axis (per cell of the other axes if the
    # axis is the last one), at coordinate 0 along the axis
    ranges = [np.arange(int(s)) for s in shape]
    ranges[axis] = np.array([0])
    if axis != ndim - 1:
        ranges[-1] = np.arange(0, int(shape[-1]), int(size[-1]))
    coords = np.stack(np.meshgrid(*ranges, indexing="ij"), axis=-1).reshape(-1, ndim)
    other = [k for k in range(ndim) if k != axis]
    counts = -(-shape // size)
    column = _mixed_radix(coords[:, other] // size[other], counts[other])
    o = _mixed_radix(coords[:, :axis], shape[:axis]) if axis else np.zeros(len(coords),
                                                                           dtype=np.int64)
    t0 = (_mixed_radix(coords[:, axis + 1:], shape[axis + 1:]) if axis < ndim - 1
          else np.zeros(len(coords), dtype=np.int64))
    if axis == ndim - 1:
        width = np.ones(len(coords), dtype=np.int64)
    else:
        width = np.minimum(size[-1], shape[-1] - coords[:, -1])
    order = np.argsort(column, kind="stable")
    return (column[order], (o * n * inner)[order], (o * (n + 1) * inner)[order],
            t0[order], width[order])


def _departure_ranges(dep, shape, size, axis):
    """Lowest and highest departure point over the lines of each column of ``axis`` at
    its tile boundaries: ``(columns, counts[axis] + 1)`` arrays, columns in C order of
    the other axes' tile indices."""
    shape = np.asarray(shape)
    n = int(shape[axis])
    counts = -(-shape // size)
    faces = np.minimum(np.arange(counts[axis] + 1) * size[axis], n)
    table = np.take(dep.reshape([n + 1 if k == axis else int(s)
                                 for k, s in enumerate(shape)]), faces, axis=axis)
    table = np.moveaxis(table, axis, -1)
    other = [k for k in range(shape.size) if k != axis]
    # pad the other axes to whole tiles with edge values (min/max unchanged)
    pad = [(0, int(counts[k] * size[k] - shape[k])) for k in other] + [(0, 0)]
    table = np.pad(table, pad, mode="edge")
    split = []
    for k in other:
        split += [int(counts[k]), int(size[k])]
    split.append(faces.size)
    table = table.reshape(split)
    box = tuple(range(1, 2 * len(other), 2))
    lo = table.min(axis=box).reshape(-1, faces.size)
    hi = table.max(axis=box).reshape(-1, faces.size)
    return lo, hi


def tile_plan(shape, departures, size=None, enabled: bool = True):
    """The :class:`popdens.kernels.nd_tiles.TilePlan` of a grid.

    Parameters
    ----------
    shape : tuple of int
        Grid shape (cells per axis).
    departures : list of ndarray
        The ``2 D`` face departure tables (forward sweep order, then backward), flat.
    size : int or sequence of int, optional
        Cells per tile along each axis (default ``TILE_SIZE``, at most the axis length).
    enabled : bool
        False: a placeholder plan (the kernels sweep every cell).
    """
    shape = np.asarray(shape, dtype=np.int64)
    ndim = shape.size
    empty = np.zeros(0, dtype=np.int64)
    if not enabled:
        one = np.zeros(1, dtype=np.int64)
        return TilePlan(0, np.ones(ndim, np.int64), np.ones(ndim, np.int64),
                        np.ones(ndim, np.int64), np.zeros(1, np.uint8),
                        np.zeros(1, np.uint8), np.zeros(2, np.int64), empty, empty,
                        np.zeros(ndim + 1, np.int64), empty, one, empty, empty, empty,
                        empty, np.zeros(2 * ndim + 1, np.int64), np.zeros(0), np.zeros(0))
    size = np.broadcast_to(np.asarray(TILE_SIZE if size is None else size,
                                      dtype=np.int64), (ndim,))
    if np.any(size < 1):
        raise ValueError(f"tile sizes must be >= 1 cell, got {size.tolist()}")
    size = np.minimum(size, shape)
    counts = -(-shape // size)
    strides = np.array([int(np.prod(counts[d + 1:])) for d in range(ndim)], dtype=np.int64)
    # contiguous runs of each tile along the last axis
    ranges = [np.arange(int(s)) for s in shape]
    ranges[-1] = np.arange(0, int(shape[-1]), int(size[-1]))
    heads = np.stack(np.meshgrid(*ranges, indexing="ij"), axis=-1).reshape(-1, ndim)
    tile = _mixed_radix(heads // size, counts)
    order = np.argsort(tile, kind="stable")
    run_start = _mixed_radix(heads, shape)[order]
    run_length = np.minimum(size[-1], shape[-1] - heads[:, -1])[order]
    run_offset = np.searchsorted(tile[order], np.arange(int(counts.prod()) + 1))
    col_first, col_offset = [], [0]
    bundle = [[] for _ in range(4)]
    bundle_offset = [0]
    dep_lo, dep_hi = [[] for _ in range(2 * ndim)], [[] for _ in range(2 * ndim)]
    for axis in range(ndim):
        other = [k for k in range(ndim) if k != axis]
        grid_other = np.stack(np.meshgrid(*[np.arange(int(counts[k])) for k in other],
                                          indexing="ij"), axis=-1).reshape(-1, len(other))
        col_first.append(grid_other @ strides[other])
        col_offset.append(col_offset[-1] + len(grid_other))
        parts = _bundles(shape, size, axis)
        bundle_offset.extend(bundle_offset[-1]
                             + np.searchsorted(parts[0], np.arange(1, len(grid_other) + 1)))
        for store, part in zip(bundle, parts[1:]):
            store.append(part)
        for table in (axis, ndim + axis):
            lo, hi = _departure_ranges(np.asarray(departures[table]), shape, size, axis)
            dep_lo[table], dep_hi[table] = lo.ravel(), hi.ravel()
    dep_offset = np.concatenate([[0], np.cumsum([d.size for d in dep_lo])])
    return TilePlan(
        1, size, counts, strides, np.zeros(int(counts.prod()), np.uint8),
        np.zeros(int(counts.prod()), np.uint8), run_offset.astype(np.int64),
        run_start.astype(np.int64), run_length.astype(np.int64),
        np.array(col_offset, dtype=np.int64), np.concatenate(col_first).astype(np.int64),
        np.array(bundle_offset, dtype=np.int64),
        *[np.concatenate(b).astype(np.int64) for b in bundle],
        dep_offset.astype(np.int64), np.concatenate(dep_lo), np.concatenate(dep_hi))
