"""Density backend for populations in any number of dimensions (HH, reduced HH, LIF
with synaptic current, ...): one compiled engine, :func:`popdens.kernels.nd.advance_nd`.

Time: the internal step ``h`` (``info["dt_sub"]``) comes from the models, grids, inputs
and ``max_substep`` only (:func:`popdens.assembly_nd.internal_step`; default at most
0.1 ms), never from the report step ``dt``, so a run's numerical solution is the same for
every ``dt``. Input rates are means over internal steps, coupling delays act on the
internal step, and the rate of a report step is the fired mass accumulated per internal
step, interpolated linearly inside the internal steps that hold report boundaries (report
steps may be shorter, longer or not multiples of ``h``).

Scheme, per internal step ``h``:

1. release of refractory mass due now (reset models) through the sparse reset map;
2. dimension splitting: one drift sweep per axis, then the jump stage of every input
   connection; odd sub-steps run the same stages in reverse order, so two sub-steps form
   a symmetric (Strang-type) pair and the splitting error is second order.

Drift sweep along axis ``d``: the other coordinates are frozen at cell centers and each
grid line is remapped by the 1D flow of ``a_d`` over ``dt_sub`` in flux form (the 1D
solver's flux-form semi-Lagrangian remap with MC / van Leer limited slopes, or donor cell
for ``scheme="upwind"``). Face departure points are computed once: exactly
(exponential flow) on axes where ``a_d`` is affine in ``x_d`` -- gating variables
``dm/dt = alpha(v) (1 - m) - beta(v) m``, synaptic currents -- also when it is affine
only face by face, with the other coordinates frozen at their (anchored) values there
(``v`` of HH, whose gates' anchored means vary along a ``v`` line) -- and by backward RK4
elsewhere. Conservation holds by construction (face-flux differences), positivity
because the remap hands on pieces of non-negative profiles of a monotone map.

Stiffness. Any axis whose drift is affine in its own coordinate -- every gate of HH
(``dm/dt = alpha(v)(1 - m) - beta(v) m``), the membrane potential of conductance-based
models (``c dv/dt = I - g(m, h, n)(v - E)``), synaptic currents -- is advanced by its
exact exponential flow, and the other sweeps see it through its mean over the sub-step
(anchored before or after, by sweep order), so the fast gate ``m`` (tau ~ 0.1 ms) and a
synaptic current with tau_syn -> 0 cost nothing: HH 4D runs with dt_sub = dt = 0.1 ms.
Non-affine axes (``v`` of ReducedHH, where ``m = m_inf(v)``) use backward RK4 departure
points; no Courant limit applies to them (a face may come from hundreds of cells away:
the gather-form sweep then costs O(1) per cell); the sub-step is bounded by their
median self-relaxation rate (``assembly_nd.SPLIT_RATE``), for accuracy only.

Inputs: Poisson jumps along ``model.input_var`` with the exact compound-Poisson
propagator per sub-step (``sum_k P(k) T^k``, whole-cell shifts exact, fractional shifts
remapped conservatively). Past the lower face mass piles into the first cell; past the
upper face it fires (threshold axis of a reset model) or stays in the top cell
(reflecting; spike-surface models must have grids that cover the limit cycle).

Outer faces (``Network.add_population(..., boundaries=)``): reflecting by default (zero
drift flux; jumps pile as above); ``"outflow"`` opens a face to the drift (its departure
point is the true backward-flow position, so the flow carries mass out); ``"absorb"``
also drops the jumps that cross it. The mass lost per step (the drop of grid plus
refractory mass) is ``Result.info["absorbed"]``.

Firing (``model.spike_rule``): a :class:`SpikeSurface` ``(var, level)`` fires the upward
flux through the grid face nearest to ``level`` of axis ``var``, summed over the plane's
faces (drift and jumps); mass keeps moving. A :class:`ThresholdReset` fires the outflux
through the upper face (the threshold) of its axis, kept per cell of the (N-1)-D
threshold slice in a ring buffer for the refractory period and re-injected at the reset
(other coordinates mapped by ``model.refractory_map``).

Conductance synapses (``reversal=E``, models whose input variable is ``v``): one event
maps ``v -> v + w (E - v)``; ``k`` events are again an affine contraction toward ``E``,
so the compound-Poisson propagator is a sum of conservative affine remaps of the limited
reconstruction (mass mapped past a face handled as for current jumps).

Coupling: a connection from a population delivers Poisson events at rate
``n_syn * (delayed rate of pre)``, the pre population's rate per internal step convolved
with the delay's exact lag weights (``Delay.explicit_lag_weights(h)``: the part of the
delay within the current internal step uses the previous one's rate, as the Monte Carlo
backends' ``connectivity="poisson"``; a zero delay acts as one internal step, as in the
1D engine). The populations advance together in blocks of the
shortest coupling lag, each by one compiled call per block.

Not implemented (raise ``NotImplementedError``): ``input="diffusion"`` onto N-D
populations.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np

from .. import _limits
from .._checks import as_real
from ..assembly import scheme_code
from ..assembly_nd import (
    affine_axes,
    axis_views,
    face_departures,
    initial_masses_nd,
    internal_step,
    model_kind,
    release_schedule,
    reset_map,
    sweep_anchors,
    tile_plan,
)
from ..delays import delayed_rates
from ..grid import Grid
from ..kernels.nd import (
    SWEEP_GATHER,
    SWEEP_LOCAL,
    TOP_ABSORB,
    TOP_FIRE,
    TOP_REFLECT,
    Axes,
    Drift,
    Firing,
    Inputs,
    Outputs,
    advance_nd,
)
from ..kernels.stepper import Stepping
from ..network import GRID_GUESS_RATE, Network, PoissonSource
from ..progress import run_chunks
from ..result import Result
from .common import POISSON_TAIL, no_conductance_message, record_steps_for
from .continuation import Checkpointer, saved_grids, stamp, write_atomically

__all__ = ["NDDensitySimulation"]

# Mass fraction in an edge slice of the input axis above which a run warns that jumps
# pile mass against the end of the grid.
EDGE_WARNING = 1e-3
# No loss bookkeeping for populations whose outer faces all reflect.
_NOTHING = np.zeros(0)
# Peak input rates (for the internal step) are taken over windows of this length (s), at
# most PEAK_SAMPLES of them over the run.
PEAK_WINDOW = 1e-4
PEAK_SAMPLES = 100_000
# Cell-steps per compiled call: Python checks the state only between chunks.
CHUNK_CELL_STEPS = 2e8
# Grids of at least this many cells advance only their active tiles by default
# (kernels.nd_tiles; the same numbers as the full sweep).
TILES_FROM = 100_000


class _Population:
    """Arrays and state of one population."""

    def __init__(self, pop, grid, dt_sub, conn_rate, conns, tiles):
        model = pop.model
        self.name = pop.name
        self.grid = grid
        self.info = model_kind(model, grid)
        info = self.info
        self.outer, self.n, self.inner = axis_views(grid.shape)
        departures = []
        sweep_mode = []
        affine = affine_axes(model, grid)
        self.exact_axes = [name for name, a in zip(grid.names, affine) if a]
        # (lower, upper) kind of the outer faces of every axis
        self.faces = [pop.boundaries.get(name, ("reflect", "reflect")) for name in grid.names]
        self.has_open = any(k in ("outflow", "absorb") for kinds in self.faces for k in kinds)
        # tables for the forward sweep order, then for the backward one
        for forward in (True, False):
            for axis in range(grid.ndim):
                lower, upper = self.faces[axis]
                dep, _ = face_departures(model, grid, axis, dt_sub,
                                         open_upper=(axis == info.reset_axis
                                                     or upper != "reflect"),
                                         anchors=sweep_anchors(affine, axis, forward),
                                         open_lower=lower != "reflect")
                departures.append(dep.ravel())
                offsets = np.abs(dep - np.arange(grid.shape[axis] + 1).reshape(
                    [-1 if k == axis else 1 for k in range(grid.ndim)]))
                # Courant number <= 1 everywhere: the vectorised local kernel
                sweep_mode.append(SWEEP_LOCAL if offsets.max() <= 1.0 else SWEEP_GATHER)
        self.departure = np.concatenate(departures)
        # diffusion inputs solve whole lines at once: no tiles for them
        use_tiles = (tiles if tiles is not None else grid.num_cells >= TILES_FROM) and not any(
            conn.input == "diffusion" for conn in conns)
        self.tiles = tile_plan(grid.shape, departures, enabled=bool(use_tiles))
        self.sweep_mode = np.array(sweep_mode, dtype=np.int64)
        self.departure_offset = np.concatenate(
            [[0], np.cumsum([d.size for d in departures])]).astype(np.int64)
        lower, upper = self.faces[info.jump_axis]
        top = (TOP_FIRE if info.jump_axis == info.reset_axis else
               TOP_ABSORB if upper == "absorb" else TOP_REFLECT)
        self.jump_edges = np.array([top, 1 if lower == "absorb" else 0], dtype=np.int64)
        axis = grid.axes[info.jump_axis]
        width = axis.width
        self.conn_shift = np.zeros(len(conns))
        self.conn_scale = np.ones(len(conns))
        self.conn_diffusion = np.array([conn.input == "diffusion" for conn in conns],
                                       dtype=np.int64)
        for c, conn in enumerate(conns):
            if conn.reversal is None:
                self.conn_shift[c] = float(model.jump_size(conn.weight)) / width
            else:
                # v -> (1 - w) v + w E, in cell units of the v axis
                w = conn.weight
                self.conn_scale[c] = 1.0 - w
                self.conn_shift[c] = w * (conn.reversal - axis.lower) / width
        self.conn_rate = conn_rate
        if info.reset_axis >= 0:
            self.reset_source, self.reset_target, self.reset_weight = reset_map(
                model, grid, info.reset_axis)
            t_ref = model.spike_rule.refractory
            self.release_offset, self.release_weight, length = release_schedule(t_ref, dt_sub)
            slice_size = grid.num_cells // grid.shape[info.reset_axis]
        else:
            self.reset_source = np.zeros(0, dtype=np.int64)
            self.reset_target = np.zeros(0, dtype=np.int64)
            self.reset_weight = np.zeros(0)
            self.release_offset = np.array([1, 2], dtype=np.int64)
            self.release_weight = np.array([1.0, 0.0])
            length, slice_size = 3, 1
        self.pipe = np.zeros((length, slice_size))
        self.pipe_head = np.zeros(1, dtype=np.int64)
        self.mass = initial_masses_nd(grid, model, pop.init)
        self.edge_mass = {"lower": 0.0, "upper": 0.0}
        self.edge_warned = set()

    def kernel_groups(self) -> tuple[Axes, Drift, Inputs, Firing]:
        """The population's arrays grouped as :func:`advance_nd` takes them."""
        info = self.info
        return (Axes(self.outer, self.n, self.inner),
                Drift(self.departure, self.departure_offset, self.sweep_mode),
                Inputs(info.jump_axis, self.jump_edges, self.conn_shift, self.conn_scale,
                       self.conn_rate, self.conn_diffusion),
                Firing(info.spike_axis, info.spike_face, info.reset_axis, self.reset_source,
                       self.reset_target, self.reset_weight, self.release_offset,
                       self.release_weight, self.pipe, self.pipe_head))


def _check_connections(network) -> None:
    """Refuse inputs the N-D engine cannot take, with the reason."""
    for conn in network.connections:
        if conn.input == "diffusion" and conn.reversal is not None:
            raise NotImplementedError(f"connection {conn.label}: conductance synapses "
                                      f"(reversal=) with input='diffusion' are not "
                                      f"implemented for N-D populations")
        if conn.reversal is not None and not conn.post.model.conductance_input:
            raise ValueError(no_conductance_message(conn))


def _population_step(network, pop, grid, t_end, max_substep) -> float:
    """Internal step one population needs: from its model, grid, the peak rates and
    jumps of its inputs over ``[0, t_end)``, and ``max_substep`` (never from the report
    step)."""
    inputs = []
    # the peak input rate: means over windows of PEAK_WINDOW (at most PEAK_SAMPLES)
    window = max(PEAK_WINDOW, t_end / PEAK_SAMPLES)
    t0 = np.arange(int(math.ceil(t_end / window - 1e-9))) * window
    for conn in network.inputs_of(pop):
        if isinstance(conn.pre, PoissonSource):
            peak = float(np.max(network.source_rate_table(conn, t0, window)))
        else:
            peak = conn.n_syn * GRID_GUESS_RATE
        if conn.input == "jump":
            inputs.append((peak, conn.weight))
    return internal_step(pop.model, grid, model_kind(pop.model, grid), inputs, max_substep)


def report_means(per_step: np.ndarray, h: float, dt: float, n_report: int,
                 start: float = 0.0, first_report: int = 0, first_index: int = 0
                 ) -> np.ndarray:
    """Amounts per report step from amounts per internal step.

    ``per_step[k]`` is what happened in internal step ``[k h, (k + 1) h)`` (fired or
    lost mass); its cumulative sum at the internal step boundaries is interpolated
    linearly (uniform within an internal step) at the report boundaries ``i dt``, and
    differenced. Report steps may be shorter or longer than ``h``; the sum over report
    steps is the sum over internal steps, and over any window whose ends are
    internal-step boundaries the result does not depend on ``dt`` (to round-off).
    ``start`` is the cumulative amount before ``per_step[0]``.

    Parameters
    ----------
    per_step : (K,) float
        Amount per internal step, from internal step ``first_index`` on.
    h, dt : float
        Internal and report step (s).
    n_report : int
        Report steps wanted, from report step ``first_report`` on (their end must not
        pass ``(first_index + K) h``).
    start : float
        Cumulative amount of the internal steps before ``first_index``.
    first_report, first_index : int
        Absolute indices of the first report step and the first internal step (a
        continued run; the cumulative sum is continued in the same order, so the
        numbers equal those of one uninterrupted run).

    Returns
    -------
    (n_report,) float
    """
    cumulative = np.cumsum(np.concatenate([[start], per_step]))
    return np.diff(_at_report_times(cumulative, h, dt, n_report + 1, first_report,
                                    first_index))


def report_levels(level_after: np.ndarray, h: float, dt: float, n_report: int,
                  start: float = 0.0, first_report: int = 0, first_index: int = 0
                  ) -> np.ndarray:
    """Level at the end of each report step from the levels at the end of each internal
    step (``start`` at the start of internal step ``first_index``), interpolated
    linearly in time."""
    levels = np.concatenate([[start], level_after])
    return _at_report_times(levels, h, dt, n_report + 1, first_report, first_index)[1:]


def _at_report_times(values: np.ndarray, h: float, dt: float, count: int,
                     first_report: int = 0, first_index: int = 0) -> np.ndarray:
    """``values`` given at ``k h`` (k = first_index .. first_index + K), linearly
    interpolated at ``i dt``, ``i = first_report .. first_report + count - 1``;
    positions within 1e-9 of an internal boundary snap to it, so report steps that are
    multiples of ``h`` take the internal values exactly."""
    position = np.arange(first_report, first_report + count) * (dt / h)
    nearest = np.round(position)
    position = np.where(np.abs(position - nearest) < 1e-9, nearest, position)
    return np.interp(position, first_index + np.arange(values.size), values)


def _write(path, result) -> None:
    # looked up at call time, so tests can watch the checkpoints written
    write_atomically(path, result)


class NDDensitySimulation:
    """A network of N-D (any dimension) populations prepared for density integration.

    The internal step ``h`` (``self.dt_sub``) is chosen from the populations' models,
    grids, inputs and ``max_substep`` only (:func:`popdens.assembly_nd.internal_step`),
    never from the report step ``dt``: the numerical solution is one and the same for
    every ``dt``. Report steps may be shorter or longer than ``h`` and need not be
    multiples of it: the mass fired per internal step is accumulated and the rate of a
    report step is the cumulative fired mass, interpolated linearly within the internal
    step holding each report boundary, differenced and divided by ``dt``; densities
    recorded at a time inside an internal step are the linear interpolation of the two
    states around it (mass-conserving and non-negative).

    Parameters
    ----------
    network : popdens.Network
        Populations of models with ``state_vars``/``drift`` (see
        :mod:`popdens.backends.density_nd`), driven by Poisson sources and by each
        other (rate coupling with delays).
    t_end, dt : float
        Duration and reporting step (s).
    scheme : {"mc", "vanleer", "upwind"}, default "mc"
        Reconstruction inside cells for the drift sweeps and fractional jumps.
    max_substep : float, optional
        Upper bound on the internal step (s), smaller or larger than ``dt``; default
        ``assembly_nd.DEFAULT_STEP`` (0.1 ms).
    tiles : bool, optional
        Advance only the tiles of the grid that hold mass (:mod:`popdens.kernels.nd_tiles`,
        the same numbers as sweeping every cell). Default: for grids of at least
        ``TILES_FROM`` cells without diffusion inputs.

    Raises
    ------
    NotImplementedError
        Diffusion inputs.
    ValueError
        Invalid grids, spike surfaces, options.
    """

    def __init__(self, network: Network, t_end: float, dt: float, scheme: str = "mc",
                 max_substep: float | None = None, start: dict | None = None,
                 tiles: bool | None = None):
        if not isinstance(network, Network):
            raise TypeError(f"network must be a popdens.Network, got {network!r}")
        t_end = as_real("t_end", t_end)
        dt = as_real("dt", dt)
        if t_end <= 0 or dt <= 0 or dt > t_end:
            raise ValueError(f"need 0 < dt <= t_end, got dt={dt!r}, t_end={t_end!r}")
        if max_substep is not None:
            max_substep = as_real("max_substep", max_substep)
            if max_substep <= 0:
                raise ValueError(f"max_substep must be > 0, got {max_substep!r}")
        self.network = network
        self.t_end = t_end
        self.dt = dt
        self.scheme = scheme
        self.scheme_code = scheme_code(scheme)
        self.n_steps = int(round(t_end / dt))
        if abs(self.n_steps * dt - t_end) > 1e-9 * t_end:
            self.n_steps = int(np.ceil(t_end / dt))
        pops = list(network.populations.values())
        if not pops:
            raise ValueError("the network has no populations")
        _check_connections(network)
        # a continued run (``start``) counts report and internal steps from where the
        # result it continues stopped, and keeps that result's grids and internal step
        self.first_report = int(start["step"]) if start is not None else 0
        first_internal = int(start["internal_step"]) if start is not None else 0
        if start is not None:
            saved = saved_grids(start)
            grids = [Grid(**{ax: tuple(limits) for ax, limits in
                             zip(pop.model.state_vars, saved[pop.name])}) for pop in pops]
            self.dt_sub = float(start["dt_sub"])
        else:
            # default grids sized from input rates sampled at PEAK_WINDOW, not at dt
            grids = [network.grid_of(pop, dt=PEAK_WINDOW) for pop in pops]
            self.dt_sub = min(_population_step(network, pop, grid, t_end, max_substep)
                              for pop, grid in zip(pops, grids))
        h = self.dt_sub
        # internal steps covering every report step (absolute: the arrays per internal
        # step start at time 0 also in a continued run)
        self.n_report_end = self.first_report + self.n_steps
        self.n_internal = max(1, int(math.ceil(self.n_report_end * dt / h - 1e-9)))
        # report steps per internal step's worth (a whole number when dt is a multiple)
        ratio = dt / h
        self.n_sub = int(round(ratio)) if abs(ratio - round(ratio)) < 1e-9 else ratio
        _limits.check_substeps(network, self.n_internal - first_internal, 1, h, max_substep)
        t0 = np.arange(first_internal, self.n_internal) * h
        index = {id(pop): q for q, pop in enumerate(pops)}
        # population -> population inputs: (post, row, pre, n_syn, explicit lag weights),
        # all in internal steps
        self.coupling = []
        self.pops = []
        for q, (pop, grid) in enumerate(zip(pops, grids)):
            conns = network.inputs_of(pop)
            rate = np.zeros((len(conns), self.n_internal))
            for c, conn in enumerate(conns):
                if isinstance(conn.pre, PoissonSource):
                    rate[c, first_internal:] = network.source_rate_table(conn, t0, h)
                else:
                    # filled block by block while the network runs
                    self.coupling.append((q, c, index[id(conn.pre)], conn.n_syn,
                                          conn.delay.explicit_lag_weights(h)))
            self.pops.append(_Population(pop, grid, h, rate, conns, tiles))
        self.names = [p.name for p in self.pops]
        # per internal step: rate (Hz), refractory mass at its end, mass lost in it
        self.rates = np.zeros((len(self.pops), self.n_internal))
        self.refractory = np.zeros((len(self.pops), self.n_internal))
        self.absorbed = {q: np.zeros(self.n_internal) for q, p in enumerate(self.pops)
                         if p.has_open}
        self.step = first_internal
        # the per-internal-step series kept before ``first_internal`` (delays, report
        # interpolation): from internal step ``tail_start``, with the cumulative fired
        # and lost mass and the refractory level there
        self.tail_start = first_internal
        self.fired_before = np.zeros(len(self.pops))
        self.absorbed_before = np.zeros(len(self.pops))
        self.refractory_before = np.zeros(len(self.pops))
        self.stamp = stamp(network, "density", "nd", dt, dict(zip(self.names, grids)),
                           scheme=scheme)
        if start is not None:
            self._restore(start)

    def run(self, record_times=(), progress: bool = True, checkpoint=None,
            checkpoint_every: float = 60.0) -> Result:
        """Integrate all remaining internal steps and return a :class:`popdens.Result`.

        Parameters
        ----------
        record_times : sequence of float
            Times (s, from the start of this part of the run) at which to store the
            densities (per unit phase-space volume).
        progress : bool, default True
            Show a progress bar (on a terminal only).
        checkpoint : str or path, optional
            A ``.npz`` file written (atomically) every ``checkpoint_every`` seconds of
            wall time with the result so far, marked ``info["checkpoint"]`` and
            ``info["interrupted"]``, and with the finished result at the end.
        checkpoint_every : float, default 60

        Notes
        -----
        Ctrl-C stops the run at the end of the compiled call running (within about
        ``progress.CHUNK_SECONDS``) and returns the report steps done, marked
        ``info["interrupted"]`` (see :func:`popdens.progress.run_chunks`).
        ``info["state"]`` holds what ``init=`` needs to continue the run.
        """
        first_step = self.step
        record_steps = self.first_report + record_steps_for(record_times, self.t_end,
                                                            self.dt, self.n_steps)
        plan = self._record_plan(record_steps)
        if plan[0].size and plan[0][0] < first_step:
            raise ValueError(f"record_times: the density at t={record_steps[0] * self.dt!r}"
                             f" s needs the state of internal step {plan[0][0]}, before the "
                             f"step {first_step} this continued run starts from")
        records = [np.zeros((plan[0].size, p.grid.num_cells)) for p in self.pops]
        cursors = [np.zeros(1, dtype=np.int64) for _ in self.pops]
        start = time.perf_counter()
        saver = Checkpointer(checkpoint, checkpoint_every, writer=_write)
        # every population advances by one compiled call per slice; with coupling, a slice
        # is at most the shortest coupling lag (as NEST's min-delay communication): within
        # it every input rate is already known
        cells = sum(p.grid.num_cells for p in self.pops)
        longest = max(1, int(CHUNK_CELL_STEPS / cells))
        if self.coupling:
            longest = min(longest, min(int(np.flatnonzero(w)[0]) for *_, w in self.coupling))

        def result(done, interrupted):
            return self._result(done, interrupted, first_step, record_steps, plan, records,
                                time.perf_counter() - start)

        def advance(step, stop):
            for q_post, c, q_pre, n_syn, lags in self.coupling:
                self.pops[q_post].conn_rate[c, step:stop] = n_syn * delayed_rates(
                    self.rates[q_pre], lags, step, stop)
            for q in range(len(self.pops)):
                # the records at the last internal step are taken on the last call
                self._advance(q, step, stop, plan[0], cursors[q], records[q])
                self._check_state(q, stop)
            self.step = stop
            if stop < self.n_internal and saver.due():
                saver.save_partial(result(stop, True))
            return stop

        done, interrupted = run_chunks(advance, self.step, self.n_internal,
                                       "density (N-D)", progress=progress,
                                       max_chunk=longest, dt=self.dt_sub)
        out = result(done, interrupted)
        saver.save_final(out)
        return out

    def _result(self, done, interrupted, first_step, record_steps, plan, records, wall
                ) -> Result:
        """The result of internal steps ``.. done`` (report steps from
        ``self.first_report``)."""
        h, dt, first = self.dt_sub, self.dt, self.first_report
        internal, lower, upper, frac = plan
        reported = min(self.n_report_end, int(math.floor(done * h / dt + 1e-9)))
        # a record is complete when both internal states around its time are
        # (``upper`` indexes the recorded internal steps, which are sorted)
        available = int(np.searchsorted(internal[upper], done, side="right"))
        densities = {}
        for q, p in enumerate(self.pops):
            rec = records[q]
            blended = ((1.0 - frac[:available, None]) * rec[lower[:available]]
                       + frac[:available, None] * rec[upper[:available]])
            densities[p.name] = blended.reshape((-1, *p.grid.shape))
        tail = slice(self.tail_start, done)
        count = reported - first

        def means(per_step, before):
            return report_means(per_step[tail] * h, h, dt, count, before, first,
                                self.tail_start)
        return Result(
            t=np.arange(first, reported) * dt,
            dt=dt,
            rates={n: means(self.rates[q], self.fired_before[q]) / dt
                   for q, n in enumerate(self.names)},
            record_times=record_steps[:available] * dt,
            densities=densities,
            grids={p.name: p.grid for p in self.pops},
            backend="density",
            wall_time=wall,
            refractory={n: report_levels(self.refractory[q, tail], h, dt, count,
                                         self.refractory_before[q], first, self.tail_start)
                        for q, n in enumerate(self.names)},
            info={"scheme": self.scheme, "n_sub": self.n_sub, "dt_sub": h,
                  "internal_steps": done - first_step,
                  "interrupted": interrupted, "steps_done": reported - max(first, min(
                      self.n_report_end, int(math.floor(first_step * h / dt + 1e-9)))),
                  "exact_axes": {p.name: tuple(p.exact_axes) for p in self.pops},
                  "final_mass": {p.name: float(p.mass.sum()) for p in self.pops},
                  "refractory_mass": {p.name: float(p.pipe.sum()) for p in self.pops},
                  # mass lost per report step through outflow / absorbing faces
                  "absorbed": {self.pops[q].name: report_means(
                      a[tail], h, dt, count, self.absorbed_before[q], first,
                      self.tail_start) for q, a in self.absorbed.items()},
                  # largest mass fraction seen in the input axis' edge slices that
                  # jumps push towards (checked between compiled calls)
                  "jump_edge_mass": {p.name: dict(p.edge_mass) for p in self.pops},
                  "state": self.state(done, reported)},
        )

    def state(self, done: int, reported: int) -> dict:
        """What a continued run needs (``Result.info["state"]``) after internal step
        ``done`` and report step ``reported``: the cell masses and refractory ring
        buffers, the per-internal-step series a continued run still reads (delayed
        rates; the internal steps around the last report boundary) with the
        cumulative fired and lost mass before them, the internal step and a stamp of
        the network."""
        h, dt = self.dt_sub, self.dt
        position = reported * (dt / h)
        nearest = round(position)
        below = nearest if abs(position - nearest) < 1e-9 else math.floor(position)
        # at least one step: netCDF files cannot hold empty arrays
        longest = max([w.size for *_, w in self.coupling], default=1)
        tail = max(self.tail_start, min(below, done - longest))
        per = slice(self.tail_start, tail)

        def before(per_step, start):
            # the cumulative sum continued in the order of one uninterrupted run
            return float(np.cumsum(np.concatenate([[start], per_step[per]]))[-1])
        return {
            "stamp": self.stamp, "step": reported, "internal_step": done, "dt_sub": h,
            "tail_start": tail,
            "fired_before": np.array([before(self.rates[q] * h, self.fired_before[q])
                                      for q in range(len(self.pops))]),
            "absorbed_before": np.array([before(self.absorbed[q], self.absorbed_before[q])
                                         if q in self.absorbed else 0.0
                                         for q in range(len(self.pops))]),
            "refractory_before": np.array([self.refractory[q, tail - 1]
                                           if tail > self.tail_start else
                                           self.refractory_before[q]
                                           for q in range(len(self.pops))]),
            "rates": self.rates[:, tail:done].copy(),
            "refractory": self.refractory[:, tail:done].copy(),
            "absorbed": {self.names[q]: a[tail:done].copy()
                         for q, a in self.absorbed.items()},
            "mass": {p.name: p.mass.copy() for p in self.pops},
            "pipe": {p.name: p.pipe.copy() for p in self.pops},
            "pipe_head": {p.name: int(p.pipe_head[0]) for p in self.pops}}

    def _restore(self, start: dict) -> None:
        """Load the state of :meth:`state` (shapes checked)."""
        begin, end = int(start["tail_start"]), int(start["internal_step"])
        pairs = [(self.rates[:, begin:end], start["rates"]),
                 (self.refractory[:, begin:end], start["refractory"])]
        pairs += [(self.absorbed[q][begin:end], start["absorbed"][self.names[q]])
                  for q in self.absorbed]
        for p in self.pops:
            pairs += [(p.mass, start["mass"][p.name]), (p.pipe, start["pipe"][p.name])]
            p.pipe_head[0] = int(start["pipe_head"][p.name])
        for target, saved in pairs:
            saved = np.asarray(saved)
            if saved.shape != target.shape:
                raise ValueError(f"init: the saved state has an array of shape "
                                 f"{saved.shape} where this network needs {target.shape} "
                                 f"(a changed network, grid or delay cannot continue a run)")
            target[...] = saved
        self.tail_start = begin
        self.fired_before = np.asarray(start["fired_before"], dtype=float).copy()
        self.absorbed_before = np.asarray(start["absorbed_before"], dtype=float).copy()
        self.refractory_before = np.asarray(start["refractory_before"], dtype=float).copy()

    def _record_plan(self, record_steps):
        """Internal steps to record and, per report record, the two recorded states
        around its time (indices into the internal records) and the weight of the
        later one."""
        position = record_steps * (self.dt / self.dt_sub)
        nearest = np.round(position)
        position = np.where(np.abs(position - nearest) < 1e-9, nearest, position)
        position = np.minimum(position, self.n_internal)
        below = np.floor(position).astype(np.int64)
        frac = position - below
        above = np.where(frac > 0.0, np.minimum(below + 1, self.n_internal), below)
        internal = np.union1d(below, above).astype(np.int64)
        lower = np.searchsorted(internal, below)
        upper = np.searchsorted(internal, above)
        return internal, lower, upper, frac

    def _advance(self, q, begin, end, record_steps, cursor, record_out):
        pop = self.pops[q]
        # one internal step per kernel step (n_sub = 1): the kernel's rates and records
        # are per internal step
        out = Outputs(self.rates[q], self.refractory[q], self.absorbed.get(q, _NOTHING),
                      record_steps, cursor, record_out, 1.0 / pop.grid.cell_volume)
        advance_nd(begin, end, Stepping(1, self.dt_sub, self.scheme_code, POISSON_TAIL),
                   pop.mass, *pop.kernel_groups(), out, pop.tiles)

    def _check_state(self, q: int, step: int) -> None:
        # conservative and positive by construction: a violation means corrupted input
        pop = self.pops[q]
        self._check_edges(pop, step)
        if not np.all(np.isfinite(pop.mass)) or not np.all(np.isfinite(self.rates[q, :step])):
            raise FloatingPointError(f"population {pop.name!r}: density became non-finite "
                                     f"before t={step * self.dt:g} s")
        if pop.mass.min() < -1e-12:
            raise FloatingPointError(f"population {pop.name!r}: density became negative "
                                     f"({pop.mass.min():.3g}) before t={step * self.dt:g} s")

    def _check_edges(self, pop, step: int) -> None:
        """Warn (once per edge) when mass gathers in an edge slice of the input axis that
        jumps push towards: there jumps pile mass against the grid's end, so the input
        it should have received is lost (the grid is too short for this input)."""
        axis = pop.info.jump_axis
        ax = pop.grid.axes[axis]
        mass = pop.mass.reshape(pop.grid.shape)
        current = pop.conn_scale == 1.0
        # a conductance event pushes towards its reversal potential (cell units)
        reversal = pop.conn_shift[~current] / (1.0 - pop.conn_scale[~current])
        sides = []
        if np.any(pop.conn_shift[current] < 0) or np.any(reversal < 1.0):
            sides.append(("lower", 0, ax.lower))
        if axis != pop.info.reset_axis and (np.any(pop.conn_shift[current] > 0)
                                            or np.any(reversal > ax.num_cells - 1)):
            sides.append(("upper", ax.num_cells - 1, ax.upper))
        kinds = dict(zip(("lower", "upper"), pop.faces[axis]))
        for side, cell, edge in sides:
            if kinds[side] == "absorb":
                continue    # jumps past an absorbing face remove the mass, none piles
            held = float(np.take(mass, cell, axis=axis).sum())
            pop.edge_mass[side] = max(pop.edge_mass[side], held)
            if held > EDGE_WARNING and side not in pop.edge_warned:
                pop.edge_warned.add(side)
                warnings.warn(
                    f"population {pop.name!r}: {held:.2%} of the mass sits in the "
                    f"{side} edge cells of axis {ax.name!r} ({ax.name}={edge:g}) at "
                    f"t={step * self.dt:g} s; input jumps pile mass there, so the grid is "
                    f"too short for this input: extend the {side} end of {ax.name!r}",
                    RuntimeWarning, stacklevel=4)
