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
           "PopulationArrays", "population_arrays", "substeps"]

SCHEMES = {"upwind": SCHEME_UPWIND, "mc": SCHEME_MC, "vanleer": SCHEME_VANLEER}

# Largest internal step as a fraction of the membrane time constant: keeps the
# transport/jump operator splitting error of transients well under 1 % (measured in
# tests/test_density.py::test_substep_convergence).
SUBSTEP_FRACTION = 1.0 / 100.0
# A sub-step never carries more than this many expected events per connection, so the
# compound-Poisson series stays short.
MAX_EVENTS_PER_SUBSTEP = 20.0


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


def substeps(dt: float, models, peak_event_rates) -> int:
    """Internal sub-steps per reporting step ``dt``."""
    n_sub = 1
    for model in models:
        n_sub = max(n_sub, math.ceil(dt / (SUBSTEP_FRACTION * model.tau_m) - 1e-9))
    for rate in peak_event_rates:
        n_sub = max(n_sub, math.ceil(rate * dt / MAX_EVENTS_PER_SUBSTEP))
    return n_sub


@dataclass
class PopulationArrays:
    """The arrays of one 1D population for a given sub-step."""

    grid: Grid
    mode: int
    dx: float
    departure: np.ndarray      # (N+1,) departure positions of the faces, cell units
    departure_cell: np.ndarray  # (N+1,) int: cell holding each departure point
    departure_frac: np.ndarray  # (N+1,) its fraction inside that cell
    departure_quad: np.ndarray  # (N+1,) frac (frac - 1) / 2
    face_velocity: np.ndarray  # (N+1,) deterministic drift at the faces (V/s)
    reset_cell: int
    reset_frac_hi: float
    ref_whole: int
    ref_frac: float


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
    # Mass crossing threshold in a sub-step crossed, on average, at its middle (by drift,
    # or by jumps: the Lie-split jump stage is the middle of a Strang step). So it
    # re-enters half a sub-step before ``t_ref`` is up; with ``t_ref < dt_sub / 2`` it
    # re-enters at once, moved by the flow over the time it has already been back.
    delay = model.t_ref / dt_sub - 0.5
    reset_position = model.v_reset
    if delay < 0.0:
        reset_position = float(model.flow(model.v_reset, -delay * dt_sub))
        delay = 0.0
    reset_cell, reset_frac = point_mass_weights(grid, reset_position)
    ref_whole = int(math.floor(delay + 1e-9))
    ref_frac = max(0.0, delay - ref_whole)
    if ref_frac < 1e-9:
        ref_frac = 0.0
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
        ref_whole=ref_whole,
        ref_frac=ref_frac,
    )


INPUT_CODES = {"jump": INPUT_JUMP, "diffusion": INPUT_DIFFUSION}
