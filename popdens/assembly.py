"""Assembly: turn model + grid + connections into the plain arrays the kernels take.

Nothing here steps in time. The density backend and the stationary solver both build on
these arrays, so they discretise the same operator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .grid import Grid
from .kernels.stepper import INPUT_DIFFUSION, INPUT_JUMP, MODE_DIFFUSION, MODE_REMAP
from .kernels.transport import SCHEME_MC, SCHEME_UPWIND, SCHEME_VANLEER, departure_table

__all__ = ["SCHEMES", "scheme_code", "point_mass_weights", "initial_masses",
           "PopulationArrays", "population_arrays", "substeps", "release_stencil",
           "weight_at_threshold", "intrinsic_diffusion_1d"]

SCHEMES = {"upwind": SCHEME_UPWIND, "mc": SCHEME_MC, "vanleer": SCHEME_VANLEER}

# Largest internal step as a fraction of the membrane time constant: keeps the
# transport/jump operator splitting error of transients well under 1 % (measured in
# tests/backends/test_density.py::test_substep_convergence).
SUBSTEP_FRACTION = 1.0 / 100.0
# A sub-step never carries more than this many expected events per connection, so the
# compound-Poisson series stays short.
MAX_EVENTS_PER_SUBSTEP = 20.0
# Largest drift displacement at threshold per sub-step, in units of the smallest
# excitatory jump (see ``substeps``).
JUMP_CFL = 0.5


def scheme_code(scheme: str) -> int:
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {tuple(SCHEMES)}, got {scheme!r}")
    return SCHEMES[scheme]


def point_mass_weights(grid: Grid, position: float) -> tuple[int, float]:
    """Represent a point mass at ``position`` on a 1D grid.

    Returns ``(cell, frac_hi)``: the mass goes ``1 - frac_hi`` into ``cell`` and
    ``frac_hi`` into ``cell + 1``, split linearly between the two nearest cell centers so
    the first moment is exact (clamped at the edge cells)."""
    ax = grid.axes[0]
    x = (position - ax.lower) / ax.width - 0.5
    if x <= 0.0:
        return 0, 0.0
    if x >= ax.num_cells - 1:
        return ax.num_cells - 1, 0.0
    cell = int(math.floor(x))
    return cell, float(x - cell)


def initial_masses(grid: Grid, model, init) -> np.ndarray:
    """Initial cell masses (sum 1) from ``init`` (None: model resting state)."""
    n = grid.num_cells
    mass = np.zeros(n)
    if init is None:
        cell, frac = point_mass_weights(grid, model.resting_state)
        mass[cell] += 1.0 - frac
        if frac > 0.0:
            mass[cell + 1] += frac
        return mass
    values = np.asarray(init(*grid.centers()), dtype=float)
    if values.shape != grid.shape:
        values = np.broadcast_to(values, grid.shape).astype(float)
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError("init must return finite, non-negative values on the cell "
                         "centers")
    total = values.sum()
    if not total > 0:
        raise ValueError("init must be positive somewhere on the grid; its sum is 0")
    return (values / total).ravel()


def weight_at_threshold(conn) -> float:
    """The jump of one event of ``conn`` at the target's threshold: ``weight``, or
    ``weight (E - threshold)`` for a conductance synapse."""
    if conn.reversal is None:
        return conn.weight
    return conn.weight * (conn.reversal - conn.post.model.spike_rule.threshold)


def intrinsic_diffusion_1d(model) -> float:
    """The diffusion coefficient (V^2/s) of a 1D model's own white noise along its axis
    (0 if none): it enters the density exactly as an always-on diffusion input."""
    return float(model.intrinsic_diffusion().get(model.state_vars[0], 0.0))


def substeps(dt: float, populations) -> int:
    """Internal sub-steps per reporting step ``dt``.

    ``populations`` is a list of ``(model, inputs)`` with ``inputs`` a list of
    ``(peak_rate, weight, kind)``. Three limits, all measured (tests/accuracy/test_accuracy.py,
    tests/accuracy/test_agreement.py):

    * ``dt_sub <= model.time_scale / 100`` (``tau_m`` for the LIF) keeps the
      transport/jump splitting error of transients well under 1 %;
    * the drift at threshold may carry mass at most half the smallest excitatory jump
      per sub-step: mass just below threshold must meet a jump stage while it is
      within one jump of threshold (otherwise firing is overestimated, by percents when
      the drift carries a whole jump per sub-step);
    * at most ``MAX_EVENTS_PER_SUBSTEP`` expected events per connection.
    """
    n_sub = 1
    for model, inputs in populations:
        n_sub = max(n_sub, math.ceil(dt / (SUBSTEP_FRACTION * model.time_scale) - 1e-9))
        speed = abs(float(model.drift(model.spike_rule.threshold)))
        jumps = [w for (_, w, kind) in inputs if kind == "jump" and w > 0]
        if jumps and speed > 0:
            n_sub = max(n_sub, math.ceil(dt * speed / (JUMP_CFL * min(jumps)) - 1e-9))
        for rate, _, _ in inputs:
            n_sub = max(n_sub, math.ceil(rate * dt / MAX_EVENTS_PER_SUBSTEP - 1e-9))
    return n_sub


@dataclass
class PopulationArrays:
    """The arrays of one 1D population for a given sub-step (see
    :func:`release_stencil` for the refractory release)."""

    grid: Grid
    mode: int
    dx: float
    departure: np.ndarray      # (N+1,) departure positions of the faces, cell units
    departure_cell: np.ndarray  # (N+1,) int: cell holding each departure point
    departure_frac: np.ndarray  # (N+1,) its fraction inside that cell
    departure_quad: np.ndarray  # (N+1,) frac (frac - 1) / 2
    face_velocity: np.ndarray  # (N+1,) deterministic drift at the faces (V/s)
    reset_cell: int            # where released mass re-enters (cell, fraction to cell+1)
    reset_frac_hi: float
    immediate_reset: bool      # no refractory period: reset within the jump stage
    stencils: tuple            # release stencils of transport, jump and diffusion firing


def population_arrays(model, grid: Grid, dt_sub: float, has_diffusion: bool
                      ) -> PopulationArrays:
    """Arrays of one population: transport over ``dt_sub``, reset target, refractory
    delay in sub-steps."""
    ax = grid.axes[0]
    faces = ax.faces
    # clipped: departure points outside the grid carry no mass (reflecting lower face,
    # nothing above threshold)
    departure = np.clip((model.flow(faces, -dt_sub) - ax.lower) / ax.width, 0.0,
                        ax.num_cells)
    departure[0] = 0.0
    if np.any(np.diff(departure) < 0):
        raise ValueError("the model's flow is not monotone over one sub-step")
    n = ax.num_cells
    cell = np.zeros(n + 1, dtype=np.int64)
    frac = np.zeros(n + 1)
    quad = np.zeros(n + 1)
    departure_table(departure, n, cell, frac, quad)
    rule = model.spike_rule
    reset_cell, reset_frac = point_mass_weights(grid, rule.reset)
    # transport firing happens, on average, half a sub-step before the jump stage
    transport = release_stencil(rule.refractory / dt_sub - 0.5, 0, grid, model, dt_sub)
    jumps = release_stencil(rule.refractory / dt_sub, 1, grid, model, dt_sub)
    diffusion = implicit_release_stencil(rule.refractory / dt_sub, grid, model)
    return PopulationArrays(
        grid=grid,
        mode=MODE_DIFFUSION if has_diffusion else MODE_REMAP,
        dx=ax.width,
        departure=departure,
        departure_cell=cell,
        departure_frac=frac,
        departure_quad=quad,
        face_velocity=model.drift(faces),
        reset_cell=reset_cell,
        reset_frac_hi=reset_frac,
        immediate_reset=rule.refractory == 0.0,
        stencils=(transport, jumps, diffusion),
    )


def release_stencil(delay: float, kind: int, grid: Grid, model, dt_sub: float
                    ) -> list[tuple[int, int, float, int, float]]:
    """Where mass that crossed threshold re-enters, for the density stepper.

    ``delay`` is the release time after the end of the current sub-step, in sub-steps
    (>= -1/2). Within the Lie-split stepper a sub-step ``i`` has two release points: its
    start (type 0: the mass then drifts for the whole sub-step and receives its jump
    stage) and just before its jump stage (type 1: no drift, the whole jump stage). The
    jump stage of a sub-step stands for the events of the sub-step centred on it. A
    release at fraction ``f`` into sub-step ``i`` is split over neighbouring points so
    that the released mass receives on average the drift time ``(1 - f) dt_sub`` and
    the fraction of events that follow it:

    * ``f <= 1/2``: ``1/2 - f`` before the jump stage of sub-step ``i - 1``, ``1/2`` at
      the start of ``i``, ``f`` before the jump stage of ``i``;
    * ``f > 1/2``: ``1 - f`` at the start of ``i``, ``1/2`` before its jump stage,
      ``f - 1/2`` at the start of ``i + 1``.

    Points already past when the mass crosses (only for short refractory periods) are
    replaced: a missed start by the pre-jump point of the current sub-step with the reset
    position carried by the flow over that sub-step (transport firing), a missed pre-jump
    point by the next start (jump firing; the events it would have received are lost, an
    O(t_ref / dt_sub) effect only when ``0 < t_ref < dt_sub``).

    Returns ``(offset, type, weight, cell, frac_hi)`` entries; offset counts sub-steps
    from the current one, and offset 0 means: reinject now at ``cell``.
    """
    whole = math.floor(delay + 1e-12)
    f = max(delay - whole, 0.0)
    i = whole + 1
    if f <= 0.5:
        raw = [(i - 1, 1, 0.5 - f), (i, 0, 0.5), (i, 1, f)]
    else:
        raw = [(i, 0, 1.0 - f), (i, 1, 0.5), (i + 1, 0, f - 0.5)]
    v_reset = model.spike_rule.reset
    reset = point_mass_weights(grid, v_reset)
    advanced = point_mass_weights(grid, float(model.flow(v_reset, dt_sub)))
    entries: dict = {}
    for offset, kind_of_point, weight in raw:
        if weight <= 0.0:
            continue
        position = reset
        if offset <= 0 and kind_of_point == 0:
            # missed start of the current sub-step (transport firing only)
            offset, kind_of_point, position = 0, 1, advanced
        if offset <= 0 and kind == 1:
            offset, kind_of_point = 1, 0
        key = (max(offset, 0), kind_of_point, position)
        entries[key] = entries.get(key, 0.0) + weight
    return [(o, t, w, pos[0], pos[1]) for (o, t, pos), w in entries.items()]


def implicit_release_stencil(delay: float, grid: Grid, model
                             ) -> list[tuple[int, int, float, int, float]]:
    """Release stencil for mass that crossed in an implicit (backward-Euler) diffusion
    step. That step has no splitting shift: the outflux belongs to the sub-step end and
    the stationary backward-Euler state is the generator's null vector when the mass
    waits exactly ``delay`` sub-steps, so release at sub-step starts, split linearly
    (offset 0: at once, into the state after the implicit step)."""
    reset = point_mass_weights(grid, model.spike_rule.reset)
    whole = math.floor(delay + 1e-12)
    f = max(delay - whole, 0.0)
    entries = []
    for offset, weight in ((whole, 1.0 - f), (whole + 1, f)):
        if weight > 0.0:
            entries.append((offset, 0 if offset > 0 else 1, weight, reset[0], reset[1]))
    return entries


INPUT_CODES = {"jump": INPUT_JUMP, "diffusion": INPUT_DIFFUSION}
