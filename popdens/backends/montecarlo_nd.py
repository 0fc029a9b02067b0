"""Monte Carlo backend for models with a compiled single-neuron update.

Simulates populations of any model whose ``compiled_params()`` is not None (the built-in
:class:`popdens.LIF`, :class:`popdens.HodgkinHuxley`, :class:`popdens.ReducedHH`,
:class:`popdens.LIFSynaptic`, :class:`popdens.EIF`, :class:`popdens.QIF`,
:class:`popdens.AdEx`, :class:`popdens.Izhikevich`, :class:`popdens.FitzHughNagumo`,
:class:`popdens.EquationModel` through its generated module
(:mod:`popdens.equations.mc_codegen`), or a user model that registers its functions,
:mod:`popdens.kernels.mc_interface`) one by one, in one model-agnostic compiled loop
(:mod:`popdens.kernels.mc_engine`), for
validating the density solver. The 1D Monte Carlo backend (``backend="montecarlo"``)
hands networks with a population of another model than LIF to :func:`run` (networks of
LIF only stay on its own kernel); networks with a model without ``compiled_params()`` or
with ``input="diffusion"`` connections (the loop has no white noise) go on to
:mod:`popdens.backends.montecarlo_generic`. Numerics: exact event times
(:mod:`popdens.kernels.mc_engine`), exact integration of LIF (:mod:`popdens.kernels.mc_lif`)
and LIFSynaptic (:mod:`popdens.kernels.mc_lif_synaptic`), second-order Rush-Larsen steps
for the HH models (:mod:`popdens.kernels.mc_hh`), the NumPy engine's Runge-Kutta step for
the integrate-and-fire family (:mod:`popdens.kernels.mc_if_family`).
"""

from __future__ import annotations

import math
import time

import numpy as np

from .._checks import UnknownOptionError, check_positive
from ..delays import delayed_rates
from ..grid import Grid
from ..kernels import mc_engine as engine
from ..network import PoissonSource
from ..progress import run_chunks
from ..result import Result
from . import montecarlo_generic
from .common import MC_DEFAULT_INTERNAL_DT, no_conductance_message
from .common import check_sizes as _check_sizes
from .common import initial_states as _initial_states
from .common import record_steps as _record_steps
from .continuation import (
    Checkpointer,
    copy_into,
    monte_carlo_start,
    saved_grids,
    shifted_record_times,
    stamp,
)
from .mc_wiring import check_indegree, wire

__all__ = ["run", "DEFAULT_INTERNAL_DT"]

OPTIONS = ("n_neurons", "seed", "record_times", "internal_dt", "connectivity", "init",
           "checkpoint", "checkpoint_every")
CONNECTIVITIES = ("poisson", "fixed_indegree")
# Places beyond twice the largest population in the spike list of fixed in-degree runs
_SPIKE_LIST_MARGIN = 1024

DEFAULT_INTERNAL_DT = MC_DEFAULT_INTERNAL_DT
"""Default internal step (s) of the Hodgkin-Huxley integrators. Measured
(``tests/models/test_models_nd.py``): relative firing-rate error 1.9e-4 (HodgkinHuxley, 68.31
against 68.32 Hz at 10 uA/cm^2) and 5.2e-4 (ReducedHH) at 10 us, below the Monte Carlo
noise of populations up to ~10^6 neurons; 40 us gives 2.6e-3 and 4.7e-3."""


def _compiled(model) -> bool:
    """Whether the model has a compiled single-neuron update (``compiled_params``)."""
    return model.compiled_params() is not None


def _on_numpy_engine(network) -> bool:
    """Whether the NumPy interface engine runs ``network``: a model without a compiled
    update, or ``input="diffusion"`` (white noise, which the compiled loop does not
    simulate)."""
    if not all(_compiled(pop.model) for pop in network.populations.values()):
        return True
    return any(conn.input == "diffusion" for conn in network.connections)


def _loop_for(models):
    """The loop's entry point: numba's disk cache for built-in models and for one
    generated equation model beside them (its module caches the loop), else a loop
    compiled once per process (user models, or several generated ones: one cache file
    would then refer to classes of other generated modules)."""
    own = [type(m) for m in models if not type(m).__module__.startswith("popdens.")]
    if not own:
        return engine.simulate
    kinds = set(own)
    loop = getattr(own[0], "cached_loop", None)
    if len(kinds) == 1 and loop is not None:
        return loop
    return engine.simulate_uncached


def run(network, t_end: float, dt: float, n_neurons: int = 10_000, seed=None,
        record_times=(), internal_dt: float | None = None, connectivity: str = "poisson",
        *, init=None, checkpoint=None, checkpoint_every: float = 60.0, **options) -> Result:
    """Simulate ``network`` neuron by neuron.

    Parameters
    ----------
    network : popdens.Network
        Populations of models with a compiled single-neuron update (e.g.
        :class:`popdens.HodgkinHuxley`, :class:`popdens.ReducedHH`,
        :class:`popdens.LIFSynaptic`, :class:`popdens.AdEx`) driven by Poisson sources
        with ``input="jump"`` connections (current jumps; conductance jumps
        ``reversal=`` for models whose input variable is ``v``).
    t_end : float
        Duration (s); the run has ``ceil(t_end / dt)`` reporting steps.
    dt : float
        Reporting step (s). Input events are timed exactly within a step.
    n_neurons : int or dict, default 10000
        Neurons per population, or ``{population name: neurons}``.
    seed : int or None
        Non-negative seed (same seed, same result); ``None`` draws one, kept in
        ``Result.info["seed"]``. The events a neuron receives do not depend on
        ``internal_dt``, so runs with one seed and different steps are directly comparable.
    record_times : float or sequence of float
        Times in ``[0, t_end]`` (s) at which to histogram the neurons, each at the first
        step start ``k dt >= time``.
    internal_dt : float, optional
        Largest internal step (s) of models without an exact flow (the HH models and
        the integrate-and-fire family),
        default :data:`DEFAULT_INTERNAL_DT` (10 us); each reporting step is split into
        ``ceil(dt / internal_dt)`` equal steps. LIFSynaptic is integrated exactly and
        ignores it.
    connectivity : {"poisson", "fixed_indegree"}, default "poisson"
        Connections from populations. ``"poisson"``: each post neuron receives
        independent Poisson events at rate ``n_syn * (delayed rate of pre)``, the pre
        population's measured rate per step convolved with the delay's exact lag weights
        (the part of the delay within the current step uses the previous step's rate),
        timed exactly within the step -- the stochastic counterpart of the density
        equations; the populations advance together in blocks of the shortest coupling
        lag. ``"fixed_indegree"``: a spiking network, as in the LIF Monte Carlo: each
        post neuron gets exactly ``n_syn`` (an integer) distinct presynaptic partners,
        each synapse its own delay from the connection's distribution; a spike at ``t``
        reaches its targets at the step boundary nearest to ``t + delay`` (at the
        earliest the next one) and is applied there (``info["delivered_events"]``).

    init, checkpoint, checkpoint_every
        Continue a result of this network (its ``info["state"]``), and write the run so
        far to a ``.npz`` checkpoint, as for the 1D Monte Carlo
        (:func:`popdens.backends.montecarlo.run`).

    Returns
    -------
    Result
        ``rates`` (Hz): spikes per neuron and second in each step (HH: upward crossings of
        the spike surface, by the flow or by an event; threshold models: crossings of the
        threshold or cut-off); ``densities``: histograms on
        the grid's cells, ``counts / (n_neurons * cell_volume)``, shape
        ``(len(record_times), *grid.shape)``, integrating to the fraction on the grid
        (refractory neurons and those outside the grid, ``info["outside_grid"]``, are
        not counted); ``refractory``: fraction refractory at each step's end.

    Raises
    ------
    ValueError, TypeError
        Invalid options (naming option and value).
    NotImplementedError
        Outflow / absorbing ``boundaries`` (a density-grid setting).
    """
    if _on_numpy_engine(network):
        # user-written models, or white-noise input, which the compiled loop lacks: the
        # interface-only engine (Euler-Maruyama steps, Brownian-bridge threshold test)
        return montecarlo_generic.run(network, t_end, dt, n_neurons=n_neurons, seed=seed,
                                      record_times=record_times, internal_dt=internal_dt,
                                      connectivity=connectivity, init=init,
                                      checkpoint=checkpoint,
                                      checkpoint_every=checkpoint_every, **options)
    _check_options(network, connectivity, options)
    t_end, dt, sizes, internal_dt = _checked_steps(network, t_end, dt, n_neurons,
                                                   internal_dt)
    settings = {"n_neurons": dict(sizes), "connectivity": connectivity,
                "internal_dt": internal_dt}
    start, seed, checkpoint_every = monte_carlo_start(init, network, "nd", dt, seed,
                                                      checkpoint, checkpoint_every,
                                                      **settings)
    # a continued run counts steps from where the result stopped (tables from step 0)
    first = int(start["step"]) if start is not None else 0
    n_steps = first + max(1, math.ceil(t_end / dt - 1e-9))
    record_steps = first + _record_steps(
        shifted_record_times(record_times, first * dt, t_end), t_end, dt, n_steps - first)
    prep = _prepare(network, dt, np.arange(first, n_steps) * dt, sizes,
                    connectivity, first, saved_grids(start) if start is not None else None)
    sim = _Simulation(prep, sizes, seed, dt, math.ceil(dt / internal_dt - 1e-9),
                      record_steps, n_steps, start)
    mark = stamp(network, "montecarlo", "nd", dt, dict(zip(prep["names"], prep["grids"])),
                 seed=seed, **settings)

    def result(done, interrupted, wall_time):
        return _result(prep, sim, sizes, seed, connectivity, first, record_steps, done,
                       interrupted, wall_time, mark)
    return _drive(sim, result, first, n_steps, dt, Checkpointer(checkpoint, checkpoint_every))


def _checked_steps(network, t_end, dt, n_neurons, internal_dt) -> tuple:
    """Validated ``(t_end, dt, population sizes, internal_dt)``."""
    t_end = check_positive("t_end", t_end)
    dt = check_positive("dt", dt)
    if dt > t_end:
        raise ValueError(f"dt must be <= t_end, got dt={dt!r}, t_end={t_end!r}")
    sizes = _check_sizes(network, n_neurons)
    internal_dt = DEFAULT_INTERNAL_DT if internal_dt is None else check_positive(
        "internal_dt", internal_dt)
    return t_end, dt, sizes, internal_dt


def _drive(sim, result, first, n_steps, dt, saver) -> Result:
    """Advance ``sim`` through all steps in interruptible, checkpointed slices;
    ``result(done, interrupted, wall_time)`` builds the Result."""
    started = time.perf_counter()

    def advance(step, stop):
        reached = sim.advance(step, stop)
        if reached < n_steps and saver.due():
            saver.save_partial(result(reached, True, time.perf_counter() - started))
        return reached
    done, interrupted = run_chunks(advance, first, n_steps, "montecarlo (N-D)",
                                   progress=False, max_chunk=sim.block, dt=dt)
    out = result(done, interrupted, time.perf_counter() - started)
    saver.save_final(out)
    return out


def _check_options(network, connectivity, options) -> None:
    if options:
        unknown = ", ".join(sorted(options))
        raise UnknownOptionError(f"unknown option(s) for the N-D montecarlo backend: "
                                 f"{unknown}; valid options are {', '.join(OPTIONS)}")
    if connectivity not in CONNECTIVITIES:
        raise ValueError(f"connectivity must be one of {CONNECTIVITIES} for N-D "
                         f"populations, got {connectivity!r}")
    for pop in network.populations.values():
        opened = {name: kinds for name, kinds in pop.boundaries.items()
                  if "outflow" in kinds or "absorb" in kinds}
        if opened:
            raise NotImplementedError(
                f"population {pop.name!r}: boundaries {opened} are faces of the density "
                f"grid; Monte Carlo neurons have no grid, so outflow / absorbing faces "
                f"are not simulated (run backend='density', or drop the boundaries)")


class _Simulation:
    """The kernel's arrays of one run and the calls that advance it."""

    def __init__(self, prep, sizes, seed, dt, n_sub, record_steps, n_steps, start=None):
        n_pop = len(prep["names"])
        counts = np.array([sizes[name] for name in prep["names"]], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        total = int(offsets[-1])
        init_seq, kernel_seq, wiring_seq, delay_seq = np.random.SeedSequence(seed).spawn(4)
        width = max(grid.ndim for grid in prep["grids"])
        y = np.zeros((total, width))
        target = np.empty(total)
        if start is None:
            init_rng = np.random.default_rng(init_seq)
            for p, (pop, grid) in enumerate(zip(prep["pops"], prep["grids"])):
                y[offsets[p]:offsets[p + 1], :grid.ndim] = _initial_states(
                    pop, grid, int(counts[p]), init_rng)
            self.state = engine.seed_targets(
                kernel_seq.generate_state(1, dtype=np.uint64)[0], target)
        self.n_sub = np.array([1 if type(m).exact else max(1, n_sub)
                               for m in prep["models"]], dtype=np.int64)
        self.counts, self.dt, self.record_steps = counts, dt, record_steps
        self.pops = engine.Populations(offsets, self.n_sub, y, target,
                                       np.full(total, -np.inf), np.zeros(n_pop))
        self.inputs = engine.Inputs(prep["jump_offsets"], prep["jump_weight"],
                                    prep["jump_reversal"], prep["jump_rate"])
        wiring = wire({"index": {n: p for p, n in enumerate(prep["names"])},
                       "pop_offsets": offsets, "rate_coupled": [],
                       "spiking": prep["spiking"], "names": prep["names"]},
                      dt, wiring_seq, np.random.default_rng(delay_seq), total)
        self.wiring_info = wiring
        inbox, channel_reversal = wiring["spiking"][11], wiring["spiking"][9]
        # a population step's spikes, delivered when half full (or at its end)
        capacity = 2 * int(np.max(counts)) + _SPIKE_LIST_MARGIN if prep["spiking"] else 0
        self.wiring = engine.Wiring(*wiring["spiking"],
                                    inbox.shape[0] // channel_reversal.size,
                                    np.zeros(capacity, dtype=np.int64), np.zeros(capacity))
        self.rec = engine.Recording(
            record_steps, prep["grid_ndim"], prep["grid_lower"], prep["grid_width"],
            prep["grid_cells"], prep["grid_offsets"],
            np.zeros((n_pop, n_steps), dtype=np.int64),
            np.zeros((n_pop, n_steps), dtype=np.int64), np.zeros(n_pop, dtype=np.int64),
            np.zeros((record_steps.size, int(prep["grid_offsets"][-1])), dtype=np.int64),
            np.zeros((record_steps.size, n_pop), dtype=np.int64))
        self.models = tuple(prep["models"])
        self.kernel = _loop_for(self.models)
        self.coupling = prep["coupling"]
        # slices of at most the shortest coupling lag: within one, every input rate is known
        self.block = min((int(np.flatnonzero(lags)[0]) for *_, lags in self.coupling),
                         default=None)
        self.first = int(start["step"]) if start is not None else 0
        if start is not None:
            self._restore(start)
        # zero steps change nothing but compile (or load from numba's cache) the kernel,
        # so that wall_time measures the simulation only
        self._simulate(self.first, self.first, self.rec._replace(steps=record_steps[:0]))

    def _arrays(self) -> dict:
        """The arrays that hold the state of the neurons and of the spikes in flight."""
        return {"y": self.pops.y, "target": self.pops.target,
                "held_until": self.pops.held_until, "lam": self.pops.lam,
                "inbox": self.wiring.inbox}

    def saved_state(self, done: int, mark: dict) -> dict:
        """What a continued run needs (``Result.info["state"]``): neuron states, event
        targets, refractory ends, cumulative intensities, spike ring buffers, the spike
        counts the delays still read, the generator state and the step reached (the
        wiring is drawn again from the seed in ``mark``)."""
        # at least one step: netCDF files cannot hold empty arrays
        longest = max((lags.size for *_, lags in self.coupling), default=1)
        out = {key: value.copy() for key, value in self._arrays().items()}
        out.update(stamp=mark, step=int(done),
                   spikes=self.rec.spikes[:, max(0, done - longest):done].copy(),
                   # a decimal string: netCDF files have no 64-bit unsigned integers
                   rng=str(int(self.state)))
        return out

    def _restore(self, start: dict) -> None:
        for key, kept in self._arrays().items():
            copy_into(kept, start[key])
        tail = np.asarray(start["spikes"])
        copy_into(self.rec.spikes[:, self.first - tail.shape[1]:self.first], tail)
        self.state = np.uint64(int(start["rng"]))

    def _simulate(self, begin, end, rec):
        self.state = self.kernel(begin, end, self.dt, np.uint64(self.state), self.models,
                                 self.pops, self.inputs, self.wiring, rec)

    def advance(self, step, stop):
        """Steps ``step .. stop - 1`` (``run_chunks``' callback)."""
        spikes = self.rec.spikes
        for row, pre, n_syn, lags in self.coupling:
            measured = spikes[pre] / (self.counts[pre] * self.dt)
            self.inputs.rate[row, step:stop] = n_syn * delayed_rates(measured, lags, step,
                                                                     stop)
        self._simulate(step, stop, self.rec)
        return stop


def _result(prep, sim, sizes, seed, connectivity, first, record_steps, done,
            interrupted, wall_time, mark) -> Result:
    """The Result of steps ``first .. done - 1`` (records taken before step ``done``, or
    at it when the run is complete)."""
    rec, dt = sim.rec, sim.dt
    n_steps = rec.spikes.shape[1]
    kept = record_steps < done if done < n_steps else np.ones(record_steps.size, bool)
    step_starts, record_steps = np.arange(first, done) * dt, record_steps[kept]
    spike_counts = rec.spikes[:, first:done]
    refractory_counts = rec.refractory[:, first:done]
    hist_counts, outside_counts = rec.hist[kept], rec.outside[kept]
    rates, refractory, densities, outside = {}, {}, {}, {}
    for p, name in enumerate(prep["names"]):
        grid = prep["grids"][p]
        size = int(sim.counts[p])
        rates[name] = spike_counts[p] / (size * dt)
        refractory[name] = refractory_counts[p] / size
        cols = slice(prep["grid_offsets"][p], prep["grid_offsets"][p + 1])
        densities[name] = (hist_counts[:, cols] / (size * grid.cell_volume)).reshape(
            (record_steps.size, *grid.shape))
        outside[name] = outside_counts[:, p] / size
    neuron_steps = int(np.sum(sim.counts * sim.n_sub)) * (done - first)
    n_sub = int(np.max(sim.n_sub))
    info = {"seed": seed, "n_steps": n_steps - first, "n_neurons": dict(sizes),
            "interrupted": interrupted, "steps_done": done - first,
            "state": sim.saved_state(done, mark),
            "connectivity": connectivity, "internal_dt": dt / n_sub,
            "internal_steps_per_step": n_sub,
            "integrator": {name: type(m).integrator
                           for name, m in zip(prep["names"], prep["models"])},
            "input_events": dict(zip(prep["names"], rec.events.tolist())),
            "outside_grid": outside,
            # internal steps for models without an exact flow, reporting steps otherwise
            "neuron_steps_per_second": neuron_steps / max(wall_time, 1e-12)}
    labels = sim.wiring_info["labels"]
    if labels:
        info["delivered_events"] = dict(zip(labels, sim.wiring.delivered.tolist()))
        info["synapses"] = dict(zip(labels, sim.wiring_info["synapses"]))
    common = set(sizes.values())
    return Result(
        t=step_starts, dt=dt, rates=rates, record_times=record_steps * dt,
        densities=densities, grids=dict(zip(prep["names"], prep["grids"])),
        backend="montecarlo", wall_time=wall_time,
        n_neurons=common.pop() if len(common) == 1 else dict(sizes),
        refractory=refractory, info=info)


# --- preparation ---------------------------------------------------------------------------
def _prepare(network, dt, step_starts, sizes, connectivity, first=0, saved=None) -> dict:
    """Flatten the network into the kernel's arrays (tables per step from step 0; a
    continued run, from step ``first``, fills those of its steps; ``saved``: the grids
    of the run it continues)."""
    names, pops, grids, models, spiking = [], [], [], [], []
    n_steps = first + step_starts.size
    jump_weight, jump_reversal, jump_rate, jump_offsets = [], [], [], [0]
    coupling = []
    for name, pop in network.populations.items():
        grid = (network.grid_of(pop, dt=dt) if saved is None else
                Grid(**{ax: tuple(limits) for ax, limits in
                        zip(pop.model.state_vars, saved[name])}))
        names.append(name)
        pops.append(pop)
        grids.append(grid)
        models.append(pop.model.compiled_params())
        for conn in network.inputs_of(pop):
            _check_connection(conn)
            if isinstance(conn.pre, PoissonSource):
                rate = np.zeros(n_steps)
                rate[first:] = network.source_rate_table(conn, step_starts, dt)
            elif connectivity == "fixed_indegree":
                check_indegree(conn, sizes)
                spiking.append(conn)
                continue
            else:
                # filled block by block from the pre population's measured rate
                coupling.append((len(jump_weight), conn.pre.name, conn.n_syn,
                                 conn.delay.explicit_lag_weights(dt)))
                rate = np.zeros(n_steps)
            jump_weight.append(conn.weight)
            jump_reversal.append(np.nan if conn.reversal is None else conn.reversal)
            jump_rate.append(rate)
        jump_offsets.append(len(jump_weight))
    return {
        "names": names, "pops": pops, "grids": grids, "models": models,
        "spiking": spiking,
        "coupling": [(row, names.index(pre), n_syn, lags)
                     for row, pre, n_syn, lags in coupling],
        "jump_offsets": np.asarray(jump_offsets, dtype=np.int64),
        "jump_weight": np.asarray(jump_weight, dtype=float),
        "jump_reversal": np.asarray(jump_reversal, dtype=float),
        "jump_rate": (np.ascontiguousarray(jump_rate, dtype=float) if jump_rate
                      else np.zeros((0, n_steps))),
        **_grid_arrays(grids)}


def _check_connection(conn) -> None:
    if conn.input != "jump":
        raise NotImplementedError(
            f"connection {conn.label}: input={conn.input!r} is not supported by the "
            f"N-D montecarlo backend; use input='jump'")
    if conn.reversal is not None and not conn.post.model.conductance_input:
        raise ValueError(no_conductance_message(conn))


def _grid_arrays(grids) -> dict:
    width = max(g.ndim for g in grids)
    lower = np.zeros((len(grids), width))
    widths = np.ones((len(grids), width))
    cells = np.ones((len(grids), width), dtype=np.int64)
    for p, grid in enumerate(grids):
        for d, axis in enumerate(grid.axes):
            lower[p, d] = axis.lower
            widths[p, d] = axis.width
            cells[p, d] = axis.num_cells
    return {"grid_ndim": np.array([g.ndim for g in grids], dtype=np.int64),
            "grid_lower": lower, "grid_width": widths, "grid_cells": cells,
            "grid_offsets": np.concatenate([[0], np.cumsum([g.num_cells for g in grids])]
                                           ).astype(np.int64)}
