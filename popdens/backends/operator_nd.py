"""One internal step of the N-D density engine as a sparse matrix.

With the input rates held constant, one internal step of
:func:`popdens.kernels.nd.advance_nd` maps the state of a population -- its cell masses
plus, for a reset model, the refractory pipeline (mass waiting ``k`` sub-steps before
re-entering at the reset) -- to the next state. With ``scheme="upwind"`` that map is
linear and this module gives its matrix exactly. The limited schemes (``"mc"``,
``"vanleer"``) are piecewise linear and positively homogeneous (the limiter of a scaled
profile is the scaled limiter), so the step is ``S(x) = J(x) x`` with ``J(x)`` its
Jacobian at ``x``: the matrix returned is ``J`` at a given state (``about=``).

The matrix is built by *probing the engine's own step*, not by re-deriving its stages:
a unit mass in cell ``i`` can reach only cells within a box around ``i`` (its
footprint: the drift sweeps' departure distances, the jumps' longest Poisson series,
two cells of limiter stencil per stage, the whole axis for diffusion or conductance
inputs). Cells whose boxes cannot overlap -- same index modulo ``2 r_d + 1`` on every
axis ``d`` -- are probed together in one step, and every output is assigned to the one
probed cell whose box holds it. A step matrix therefore costs ``prod_d (2 r_d + 1)``
steps, not one step per cell. Mass that fires into the refractory pipeline counts as an
output just past the threshold face, so it is assigned the same way.

The operator is the basis of the stationary solver (its null vector of ``A - I``,
:mod:`popdens.backends.steady_nd`), of linear response and of stability analysis: the
eigenvalues ``lambda`` of the step near 1 give the population's slow relaxation rates
``log(lambda) / dt_sub``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..assembly import scheme_code
from ..assembly_nd import tile_plan
from ..kernels.nd import Outputs, advance_nd
from ..kernels.stepper import Stepping
from ..kernels.transport import poisson_weights
from .common import POISSON_TAIL

__all__ = ["StepOperator", "PopulationStepper", "probe_footprint", "step_matrix"]

_EMPTY = np.zeros(0)
_NO_RECORDS = np.zeros(0, dtype=np.int64)
# Forward-difference size of a Jacobian probe, relative to the largest mass of the
# state: small enough that limiters keep their branch where the state is resolved,
# large enough that round-off (1e-16 of the state / eps) stays near 1e-12.
JACOBIAN_EPS = 1e-6


@dataclass
class StepOperator:
    """One internal step of one population as a sparse matrix.

    The state vector is ``x = (cell masses (M,) in C order of the grid, refractory
    pipeline (L * S,))``: pipeline row ``k`` holds, per cell of the threshold slice
    (the grid without the threshold axis), the mass that re-enters at the reset at the
    start of the ``k``-th next step (row 0: this step). Spike-surface models have no
    pipeline (``pipe_shape == (0, 0)``).

    Attributes
    ----------
    matrix : scipy.sparse.csr_matrix
        ``(M + L S, M + L S)``: ``x_next = matrix @ x``.
    grid : Grid
    dt_sub : float
        The internal step (s).
    forward : bool
        Stage order (forward steps are the even internal steps of a run).
    pipe_shape : (int, int)
        ``(L, S)``.
    probes : int
        Engine steps used to build it.
    """

    matrix: sp.csr_matrix
    grid: object
    dt_sub: float
    forward: bool
    pipe_shape: tuple
    probes: int

    @property
    def num_cells(self) -> int:
        return self.grid.num_cells

    def split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cell masses (grid shape) and pipeline ``(L, S)`` of a state vector."""
        m = self.num_cells
        return x[:m].reshape(self.grid.shape), x[m:].reshape(self.pipe_shape)


class PopulationStepper:
    """One internal step of one prepared population (``density_nd._Population``) at
    constant input event rates, through :func:`advance_nd` itself.

    Parameters
    ----------
    pop : density_nd._Population
    rates : sequence of float
        Event rate of each input connection (Hz).
    dt_sub : float
    scheme : str
    """

    def __init__(self, pop, rates, dt_sub: float, scheme: str):
        self.pop = pop
        self.dt_sub = dt_sub
        # probes start from arbitrary masses: every cell swept (tiles would give the
        # same numbers only with activity flags kept from run to run)
        self.full_sweep = tile_plan(pop.grid.shape, [], enabled=False)
        self.code = scheme_code(scheme)
        rates = np.asarray(rates, dtype=float)
        # steps 0 (forward) and 1 (backward) of the kernel read column 0 and 1
        self.conn_rate = np.repeat(rates.reshape(-1, 1), 2, axis=1)
        self.rates = rates
        self.reset = pop.info.reset_axis >= 0
        length, size = pop.pipe.shape
        self.pipe_shape = (length, size) if self.reset else (0, 0)
        m = pop.grid.num_cells
        self.release = (sp.csr_matrix((pop.reset_weight, (pop.reset_target, pop.reset_source)),
                                      shape=(m, size)) if self.reset else None)

    @property
    def size(self) -> int:
        return self.pop.grid.num_cells + self.pipe_shape[0] * self.pipe_shape[1]

    def stages(self, q: np.ndarray, forward: bool, code: int | None = None):
        """The step's stages (everything after the refractory release) applied to cell
        masses ``q`` with an empty pipeline: ``(masses after, pipeline rows relative
        to the next step, fired mass)``."""
        pop = self.pop
        mass = np.array(q, dtype=float)
        pipe = np.zeros(pop.pipe.shape)
        head = np.zeros(1, dtype=np.int64)
        rate = np.zeros(2)
        step = 0 if forward else 1
        axes, drift, inputs, firing = pop.kernel_groups()
        stepping = Stepping(1, self.dt_sub, self.code if code is None else code, POISSON_TAIL)
        out = Outputs(rate, np.zeros(2), _EMPTY, _NO_RECORDS, np.zeros(1, dtype=np.int64),
                      np.zeros((0, mass.size)), 1.0)
        advance_nd(step, step + 1, stepping, mass, axes, drift,
                   inputs._replace(rate=self.conn_rate),
                   firing._replace(pipe=pipe, pipe_head=head), out, self.full_sweep)
        # ring rows relative to the next step's head
        pipe = np.roll(pipe, -int(head[0]), axis=0) if self.reset else np.zeros((0, 0))
        return mass, pipe, rate[step] * self.dt_sub

    def released(self, x: np.ndarray) -> np.ndarray:
        """Cell masses at the start of the stages: grid plus pipeline row 0 at reset."""
        m = self.pop.grid.num_cells
        q = np.array(x[:m], dtype=float)
        if self.reset:
            q += self.release @ x[m:m + self.pipe_shape[1]]
        return q

    def step(self, x: np.ndarray, forward: bool) -> tuple[np.ndarray, float]:
        """One whole internal step of state vector ``x``: ``(x_next, fired mass)``."""
        m = self.pop.grid.num_cells
        mass, pipe, fired = self.stages(self.released(x), forward)
        out = np.empty(self.size)
        out[:m] = mass
        if self.reset:
            length, size = self.pipe_shape
            # rows 1.. move down one row; row 0 was released
            pipe[:length - 1] += x[m + size:].reshape(length - 1, size)
            out[m:] = pipe.ravel()
        return out, fired


def probe_footprint(stepper: PopulationStepper) -> np.ndarray:
    """Reach ``r_d`` (cells) of one internal step along every axis: a unit mass in cell
    ``i`` ends within ``|j_d - i_d| <= r_d`` (and may fire only from within ``r_d`` of
    the threshold face). Both stage orders have the same stages, so one reach serves
    both."""
    pop = stepper.pop
    grid = pop.grid
    reach = np.zeros(grid.ndim, dtype=np.int64)
    for d in range(grid.ndim):
        for table in (d, grid.ndim + d):
            dep = pop.departure[pop.departure_offset[table]:pop.departure_offset[table + 1]]
            shape = (int(pop.outer[d]), int(pop.n[d]) + 1, int(pop.inner[d]))
            faces = np.arange(shape[1]).reshape(1, -1, 1)
            far = float(np.max(np.abs(dep.reshape(shape) - faces)))
            # two cells of limiter stencil on top of the departure distance
            reach[d] = max(reach[d], int(math.ceil(far - 1e-12)) + 2)
    ja = pop.info.jump_axis
    weights = np.zeros(512)
    done = set()
    jump_reach = 0       # the jump stages one after the other
    total_lam = 0.0
    longest = 0.0
    active = 0
    for c in range(pop.conn_shift.size):
        key = (pop.conn_shift[c], pop.conn_scale[c], pop.conn_diffusion[c])
        if key in done:
            continue
        done.add(key)
        if pop.conn_diffusion[c] or pop.conn_scale[c] != 1.0:
            # implicit diffusion lines and affine contractions act on a whole line
            reach[ja] += grid.shape[ja]
            continue
        same = [k for k in range(pop.conn_shift.size)
                if (pop.conn_shift[k], pop.conn_scale[k], pop.conn_diffusion[k]) == key]
        lam = float(stepper.rates[same].sum()) * stepper.dt_sub
        if lam <= 0.0:
            continue
        count = poisson_weights(lam, weights, POISSON_TAIL)
        jump_reach += int(math.ceil(abs(pop.conn_shift[c]) * (count - 1) - 1e-9)) + 2
        total_lam += lam
        longest = max(longest, abs(float(pop.conn_shift[c])))
        active += 1
    if active >= 2:
        # the engine may take them as one Poisson mixture (nd.jump_mixture): up to
        # count - 1 events of the longest jump, slopes recomputed before each
        count = poisson_weights(total_lam, weights, POISSON_TAIL)
        jump_reach = max(jump_reach, (count - 1) * (int(math.ceil(longest)) + 2) + 2)
    reach[ja] += jump_reach
    return np.minimum(reach, np.array(grid.shape) - 1)


def step_matrix(stepper: PopulationStepper, forward: bool, about=None) -> StepOperator:
    """The matrix of one internal step (see :class:`StepOperator`), by probing the
    engine's step with groups of cells whose footprints cannot overlap.

    Parameters
    ----------
    stepper : PopulationStepper
    forward : bool
        Stage order: the engine's even (True) or odd (False) internal steps.
    about : (M + L S,) array, optional
        State at which to linearise a limited scheme (its Jacobian there, which maps
        ``about`` to its exact next step). Without it, every probe is a step of unit
        masses from an empty grid: exact for ``scheme="upwind"``.

    Returns
    -------
    StepOperator
    """
    pop = stepper.pop
    grid = pop.grid
    m = grid.num_cells
    length, size = stepper.pipe_shape
    reach = probe_footprint(stepper)
    shape = np.array(grid.shape)
    period = np.minimum(2 * reach + 1, shape)
    index = np.indices(grid.shape).reshape(grid.ndim, -1)
    colour = np.ravel_multi_index(tuple(index % period[:, None]), tuple(period))
    # coordinates of every output: grid cells, then fired mass per slice cell, which
    # lies just past the threshold face
    out_coords = [index]
    if stepper.reset:
        axis = pop.info.reset_axis
        others = [d for d in range(grid.ndim) if d != axis]
        # (a 1D population: no other axis, one slice cell)
        s_index = np.indices([grid.shape[d] for d in others]).reshape(len(others), size)
        coords = np.empty((grid.ndim, size), dtype=np.int64)
        coords[others] = s_index
        coords[axis] = grid.shape[axis]
        out_coords.append(np.tile(coords, length))
    out_coords = np.concatenate(out_coords, axis=1)
    base = scale = None
    if about is not None:
        q0 = stepper.released(about)
        scale = JACOBIAN_EPS * max(float(np.max(q0)), 1e-300)
        base = _outputs(stepper, q0, forward)
    rows, cols, vals = [], [], []
    probes = int(np.prod(period))
    for c in range(probes):
        members = colour == c
        if about is None:
            y = _outputs(stepper, members.astype(float), forward)
        else:
            y = (_outputs(stepper, q0 + scale * members, forward) - base) / scale
        hit = np.flatnonzero(y)
        if hit.size == 0:
            continue
        code = np.array(np.unravel_index(c, tuple(period)))[:, None]
        k = out_coords[:, hit]
        # the one member of this colour within reach of output k, per axis
        owner = k + reach[:, None] - ((k + reach[:, None] - code) % period[:, None])
        owner = np.where((period == shape)[:, None], code, owner)
        valid = np.all((owner >= 0) & (owner < shape[:, None]), axis=0)
        # outside every footprint only round-off of prefix sums (gather sweeps) may show
        if np.any(np.abs(y[hit][~valid]) > 1e-9 * np.abs(y).max()):
            raise RuntimeError("step_matrix: a probe reached beyond its footprint; "
                               "the reach estimate is wrong")
        rows.append(hit[valid])
        cols.append(np.ravel_multi_index(tuple(owner[:, valid]), grid.shape))
        vals.append(y[hit][valid])
    grid_cols = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows),
                                                      np.concatenate(cols))),
                              shape=(m + length * size, m))
    blocks = [grid_cols]
    if stepper.reset:
        # pipeline row 0 is released at reset, then stepped; rows k >= 1 move to k - 1
        blocks.append(grid_cols @ stepper.release)
        shift = sp.eye(length * size, (length - 1) * size, format="csr")
        blocks.append(sp.vstack([sp.csr_matrix((m, (length - 1) * size)), shift]))
    matrix = sp.hstack(blocks).tocsr()
    matrix.eliminate_zeros()
    return StepOperator(matrix, grid, stepper.dt_sub, forward, stepper.pipe_shape, probes)


def _outputs(stepper: PopulationStepper, q: np.ndarray, forward: bool) -> np.ndarray:
    """Cell masses and fired mass per pipeline row after the stages (pipeline empty)."""
    mass, pipe, _ = stepper.stages(q, forward)
    return np.concatenate([mass, pipe.ravel()])
