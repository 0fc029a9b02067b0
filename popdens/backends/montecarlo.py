"""Monte Carlo backend: every neuron of every population simulated one by one.

It runs the same :class:`popdens.Network` description as the density backend and is the
ground truth for validating it. Input events are timed exactly within a step (time
rescaling of the population's Poisson input), leak and refractory ends are exact, and
``input="diffusion"`` connections are simulated as white noise with a Brownian-bridge
threshold correction; see :mod:`popdens.kernels.montecarlo`.

Populations drive each other either as a spiking network with a fixed in-degree (random
partners, per-synapse delays, spikes delivered through ring buffers) or, with
``connectivity="poisson"``, by independent Poisson input at the pre population's measured,
delayed rate, the exact stochastic counterpart of the density equations. Models other
than LIF go to ``popdens.backends.montecarlo_nd`` when that module exists.
"""

from __future__ import annotations

import importlib
import math
import time

import numpy as np

from .. import _limits
from .._checks import UnknownOptionError, check_int, check_positive
from ..grid import Grid
from ..kernels import montecarlo as kernels
from ..models.lif import LIF
from ..network import PoissonSource, register_backend
from ..progress import run_chunks
from ..result import Result
from .common import check_sizes as _check_sizes
from .common import initial_states
from .common import record_steps as _record_steps
from .continuation import (
    Checkpointer,
    copy_into,
    monte_carlo_start,
    saved_grids,
    shifted_record_times,
    stamp,
)
from .mc_wiring import check_indegree as _check_indegree
from .mc_wiring import wire as _wire

__all__ = ["run", "UnknownOptionError"]


OPTIONS = ("n_neurons", "seed", "record_times", "bridge", "connectivity", "record_spikes",
           "timing", "init", "checkpoint", "checkpoint_every", "synapses")
SYNAPSE_MODES = ("rate", "state")
CONNECTIVITIES = ("fixed_indegree", "poisson")
TIMINGS = ("exact", "grid")

# Module simulating non-LIF models; written separately, used when present.
_ND_MODULE = "popdens.backends.montecarlo_nd"


def run(network, t_end: float, dt: float, n_neurons=10_000, seed=None,
        record_times=(), bridge: bool = True, connectivity: str | None = None,
        record_spikes: int = 0, timing: str = "exact", *, init=None, checkpoint=None,
        checkpoint_every: float = 60.0, **options) -> Result:
    """Simulate ``network`` neuron by neuron.

    Parameters
    ----------
    network : popdens.Network
        Populations of :class:`popdens.LIF` neurons driven by Poisson sources and by each
        other. Other models are handed to ``popdens.backends.montecarlo_nd`` when that
        module exists.
    t_end : float
        Duration (s). The run has ``ceil(t_end / dt)`` steps.
    dt : float
        Reporting step (s). Poisson input events (from sources, and from populations with
        ``connectivity="poisson"``), spikes and refractory ends are timed exactly within a
        step; ``dt`` sets the output resolution, the white-noise step of
        ``input="diffusion"`` connections, and the delivery grid of spikes between
        populations with ``connectivity="fixed_indegree"``.
    n_neurons : int or dict, default 10000
        Neurons per population: one number for all, or ``{name: number}`` for each.
    seed : int or None
        Non-negative seed; the same seed gives identical results (connectivity included).
        ``None`` draws one from the operating system; either way it is kept in
        ``Result.info["seed"]``.
    record_times : float or sequence of float
        Times in ``[0, t_end]`` (s) at which to histogram the neurons. Each is recorded at
        the first step start ``k dt >= time`` (``k = n_steps`` is the final state);
        ``Result.record_times`` holds those actual times, in the order requested.
    bridge : bool, default True
        Correct white-noise threshold crossings between steps with the Brownian-bridge
        probability. ``False`` tests the threshold only at step ends, which biases the
        rate low by O(sqrt(dt / tau_m)); it exists to measure that bias.
    connectivity : {"fixed_indegree", "poisson"}, optional
        How a ``input="jump"`` connection from a population is simulated; default
        ``"fixed_indegree"`` for LIF networks and ``"poisson"`` for networks with N-D
        populations (HH, reduced HH, LIF with synaptic current), which support only it.

        ``"fixed_indegree"``: a spiking network. Each post neuron gets exactly
        ``n_syn`` (an integer ``<= n_neurons`` of ``pre``) presynaptic partners drawn at
        random *without replacement* (no multapses) from ``pre``; in a self-connection a
        neuron may be its own partner (autapses allowed, probability ``n_syn / N``).
        Every synapse gets its own delay from ``conn.delay.sample``. A spike at ``t``
        reaches a target at ``t + delay``; it is applied at the step boundary nearest to
        that time (error at most ``dt / 2``, zero on average; NEST and Brian2 use the
        grid likewise), and at the earliest at the next boundary, so a delay shorter than
        ``dt / 2`` acts one step later. All spikes arriving at a boundary are applied
        together: current synapses add their weights, conductance synapses compose
        ``v -> v + w (E - v)``; a neuron refractory at that time ignores them.

        ``"poisson"``: each post neuron receives independent Poisson events at rate
        ``n_syn * (delayed rate of pre)``, the rate being the Monte Carlo population's
        measured rate per step convolved with the delay's exact lag weights
        (``conn.delay.explicit_lag_weights(dt)``), the stochastic counterpart of the density
        equations. The part of the delay distribution within the current step (lag 0,
        e.g. a zero delay) uses the previous step's rate (explicit coupling). Events are
        timed exactly within the step like those of sources.

        ``input="diffusion"`` connections from a population are white noise with mean
        ``n_syn w r`` and variance ``n_syn w^2 r`` per second, ``r`` the delayed rate as in
        ``"poisson"``, in both modes.
    synapses : {"rate", "state"}, default "rate"
        How a connection with a synaptic filter (``synapse=``) acts on its spiking
        target. ``"rate"``: Poisson events at the filtered rate, each a jump of
        ``weight`` (the density's approximation; ``connectivity="poisson"`` only).
        ``"state"``: a filter state per neuron, events at the unfiltered rate entering it
        and its current integrated by ``v`` exactly
        (:mod:`popdens.backends.mc_filtered`; LIF populations driven by sources).
    record_spikes : int, default 0
        Record the spike times and neuron indices of the first ``record_spikes`` neurons
        of every population (fewer if a population is smaller) in
        ``Result.info["spikes"][name] = (times, indices)`` (s; indices within the
        population), sorted by time.
    timing : {"exact", "grid"}, default "exact"
        ``"exact"``: Poisson input events (sources, poisson-mode connections) act at their
        exact times within the step, as described above. ``"grid"``: a step-resolution
        engine, as NEST and Brian2 simulate networks: each step a neuron takes a Poisson
        count of events per input (exact count distribution) together with its
        delivered spikes at the step start ``t_k``, then relaxes exactly (exact
        suprathreshold crossing and refractory-end times). All of a step's input thus
        acts up to ``dt`` early (``dt / 2`` on average), an ``O(dt / tau_m)`` change of
        the dynamics, for 5-10x the speed when the input rate is high. Populations with a
        ``input="diffusion"`` input keep the exact engine.

    init : Result, optional
        Continue that run (a Monte Carlo result of this network and these options,
        finished or interrupted) for ``t_end`` more seconds from its final state
        (``info["state"]``: neuron states, event targets, refractory ends, spikes in
        flight, the generator state; the wiring is drawn again from its seed). Times and
        ``record_times`` are absolute; the two parts equal one run bit for bit.
    checkpoint : str or path, optional
        A ``.npz`` file that always holds the run so far (written atomically every
        ``checkpoint_every`` seconds of wall time, marked ``info["checkpoint"]`` and
        ``info["interrupted"]``; the finished result at the end); ``init=pd.load(...)``
        continues it after a crash.
    checkpoint_every : float, default 60
        Seconds of wall time between checkpoints.

    Returns
    -------
    Result
        ``rates`` (Hz): spikes in ``[t_k, t_k + dt)`` per neuron and second;
        ``densities`` (1/V): histograms of the non-refractory neurons on the grid cells,
        ``counts / (n_neurons * dx)``, so each integrates to the non-refractory fraction
        minus the fraction below the grid's lower face (``info["below_grid"]``);
        ``refractory``: fraction refractory at the end of each step. ``n_neurons`` is the
        common population size, or the dict of sizes when they differ. ``info`` holds
        ``input_events`` (Poisson input events per population: those applied with
        ``timing="exact"``, those drawn, refractory neurons' included, with ``"grid"``),
        ``delivered_events`` (spikes times out-degree, per spiking connection label) and
        ``synapses`` (per spiking connection) in the fixed-in-degree mode,
        ``connectivity``, ``timing``, ``grid_timing`` (engine per population),
        ``n_neurons`` (dict), ``cpu_time`` (process CPU seconds of the time loop, beside
        the wall-clock ``wall_time``) and ``spikes`` when recorded.

    Raises
    ------
    ValueError, TypeError
        For invalid options, naming the option and the offending value.
    NotImplementedError
        For models other than LIF when ``popdens.backends.montecarlo_nd`` is absent.
    """
    synapses = options.pop("synapses", "rate")
    lif_options = {"bridge": bridge, "connectivity": connectivity,
                   "record_spikes": record_spikes, "timing": timing, "init": init,
                   "checkpoint": checkpoint, "checkpoint_every": checkpoint_every}
    routed = _run_elsewhere(network, t_end, dt, n_neurons, seed, record_times, synapses,
                            lif_options, options)
    if routed is not None:
        return routed
    t_end, dt, sizes, record_spikes, settings = _checked_options(
        network, t_end, dt, n_neurons, bridge, connectivity, record_spikes, timing, options)
    start, seed, checkpoint_every = monte_carlo_start(init, network, "1d", dt, seed,
                                                      checkpoint, checkpoint_every,
                                                      **settings)
    # a continued run counts steps from where the result stopped (absolute times; the
    # per-step tables start at step 0)
    first = int(start["step"]) if start is not None else 0
    n_steps = first + max(1, math.ceil(t_end / dt - 1e-9))
    step_starts = np.arange(first, n_steps) * dt
    record_steps = first + _record_steps(
        shifted_record_times(record_times, first * dt, t_end), t_end, dt, n_steps - first)

    prepared = _prepare(network, dt, sizes, step_starts, settings["connectivity"],
                        first, saved_grids(start) if start is not None else None)
    sim = _Simulation(prepared, sizes, dt, seed, settings, record_spikes,
                      (first, n_steps, record_steps), start)
    mark = stamp(network, "montecarlo", "1d", dt, dict(zip(prepared["names"],
                                                            prepared["grids"])),
                 seed=seed, **settings)
    return sim.run(mark, Checkpointer(checkpoint, checkpoint_every))


# LIF-only options of run and their defaults (the N-D module sees only those set)
_LIF_DEFAULTS = {"bridge": True, "connectivity": None, "record_spikes": 0,
                 "timing": "exact", "init": None, "checkpoint": None,
                 "checkpoint_every": 60.0}


def _run_elsewhere(network, t_end, dt, n_neurons, seed, record_times, synapses,
                   lif_options, options) -> Result | None:
    """The result of the engine that runs ``network`` if that is not the LIF loop:
    :mod:`popdens.backends.mc_filtered` for ``synapses="state"``, the N-D module for
    networks with other models; ``None`` otherwise."""
    if synapses not in SYNAPSE_MODES:
        raise ValueError(f"synapses must be one of {SYNAPSE_MODES}, got {synapses!r}")
    if synapses == "state":   # a synaptic state per neuron: its own small engine
        from .mc_filtered import run as run_filtered
        if options or record_times or lif_options["record_spikes"]:
            raise NotImplementedError("synapses='state' takes n_neurons and seed only")
        return run_filtered(network, t_end, dt, n_neurons=n_neurons, seed=seed)
    if all(isinstance(pop.model, LIF) for pop in network.populations.values()):
        return None
    nd_run = _nd_runner()
    if nd_run is None:
        return None
    # LIF-only options go along only when set, so that the other module can reject (or
    # honour) them by name without seeing defaults it does not know
    chosen = {name: value for name, value in lif_options.items()
              if not (value is _LIF_DEFAULTS[name] or value == _LIF_DEFAULTS[name])}
    return nd_run(network, t_end, dt, n_neurons=n_neurons, seed=seed,
                  record_times=record_times, **chosen, **options)


def _checked_options(network, t_end, dt, n_neurons, bridge, connectivity, record_spikes,
                     timing, options) -> tuple:
    """Validate the options of the LIF loop: ``(t_end, dt, sizes, record_spikes,
    settings)``, ``settings`` being what a continued run must share."""
    if options:
        unknown = ", ".join(sorted(options))
        raise UnknownOptionError(f"unknown option(s) for backend 'montecarlo': {unknown}; "
                                 f"valid options are {', '.join(OPTIONS)}")
    t_end = check_positive("t_end", t_end)
    dt = check_positive("dt", dt)
    sizes = _check_sizes(network, n_neurons)
    if not isinstance(bridge, (bool, np.bool_)):
        raise TypeError(f"bridge must be True or False, got {bridge!r}")
    if connectivity is None:
        connectivity = "fixed_indegree"
    if connectivity not in CONNECTIVITIES:
        raise ValueError(f"connectivity must be one of {CONNECTIVITIES}, got "
                         f"{connectivity!r}")
    record_spikes = check_int("record_spikes", record_spikes, 0)
    if timing not in TIMINGS:
        raise ValueError(f"timing must be one of {TIMINGS}, got {timing!r}")
    settings = {"n_neurons": dict(sizes), "connectivity": connectivity, "timing": timing,
                "bridge": bool(bridge)}
    return t_end, dt, sizes, record_spikes, settings


# the grid engine's release lists, as returned by kernels.grid_release_lists
_GRID_LISTS = ("next_released", "release_head", "n_refractory")


class _Simulation:
    """The kernel's arrays of one run and its generator state, advanced in slices
    (:func:`popdens.progress.run_chunks`) by :meth:`advance`."""

    def __init__(self, prepared, sizes, dt, seed, settings, record_spikes, steps, start):
        self.prepared, self.sizes, self.dt, self.seed = prepared, sizes, dt, seed
        self.settings = settings
        self.record_spikes = record_spikes
        self.first, self.n_steps, self.record_steps = steps
        pop_offsets = prepared["pop_offsets"]
        n_pop = len(prepared["names"])
        # children 0 and 1 are those of the source-only backend, so its results are
        # unchanged
        init_seq, kernel_seq, wiring_seq, delay_seq = np.random.SeedSequence(seed).spawn(4)
        self.neurons, self.rng_state = _initial_neurons(prepared, start, init_seq,
                                                        kernel_seq)
        self.wiring = _wire(prepared, dt, wiring_seq, np.random.default_rng(delay_seq),
                            int(pop_offsets[-1]))
        self.counts = {"spikes": np.zeros((n_pop, self.n_steps), dtype=np.int64),
                       "refractory": np.zeros((n_pop, self.n_steps), dtype=np.int64),
                       "events": np.zeros(n_pop, dtype=np.int64),
                       "hist": np.zeros((self.record_steps.size,
                                         int(prepared["grid_offsets"][-1])), dtype=np.int64),
                       "below": np.zeros((self.record_steps.size, n_pop), dtype=np.int64)}
        spike_list = int(np.max(np.diff(pop_offsets))) + 2 * kernels.SPIKE_LIST_MARGIN
        self.spike_ids = np.empty(spike_list, dtype=np.int64)
        self.spike_times = np.empty(spike_list)
        self.record_limit = np.minimum(np.diff(pop_offsets), record_spikes).astype(np.int64)
        self.record_margin = int(np.sum(self.record_limit)) * _max_spikes_per_step(
            prepared["t_ref"], dt)
        self.on_grid = np.array([settings["timing"] == "grid"
                                 and not prepared["has_diffusion"][p] for p in range(n_pop)],
                                dtype=np.bool_)
        self.record = _spike_record(self.record_margin)
        self.neurons["inbox"] = self.wiring["spiking"][11]
        self.neurons["spikes"] = self.counts["spikes"]
        if start is not None:
            self.rng_state = _restore(start, self.neurons, self.first)
        # one set of grid-engine release lists for the whole run, so that the slices the
        # run is driven in give the same result as one call (a continued run: those saved)
        grid_lists = kernels.grid_release_lists(
            self.first, dt, self.neurons["v"], self.neurons["ref_end"], pop_offsets,
            prepared["t_ref"], self.on_grid)
        if start is not None:
            for kept, key in zip(grid_lists, _GRID_LISTS):
                copy_into(kept, start[key])
        self.neurons["grid_lists"] = grid_lists

    def simulate(self, first_step, last_step, records):
        """:func:`kernels.simulate_steps` on this run's arrays."""
        prepared, counts, neurons = self.prepared, self.counts, self.neurons
        return kernels.simulate_steps(
            first_step, last_step, self.dt, np.uint64(self.rng_state),
            prepared["pop_offsets"], prepared["tau_m"], prepared["v_th"],
            prepared["v_reset"], prepared["e_l"], prepared["t_ref"],
            prepared["jump_offsets"], prepared["jump_scale"], prepared["jump_shift"],
            prepared["jump_rate"], prepared["diffusion_mean"],
            prepared["diffusion_variance"], self.settings["bridge"], neurons["v"],
            neurons["target"], neurons["ref_end"], neurons["lam"],
            *self.wiring["rate_coupling"], *self.wiring["spiking"], records,
            prepared["grid_lower"], prepared["grid_width"], prepared["grid_offsets"],
            counts["spikes"], counts["refractory"], counts["events"], counts["hist"],
            counts["below"], self.record_limit, self.record_margin, self.record["times"],
            self.record["ids"], self.record["n"], self.spike_ids, self.spike_times,
            self.on_grid, *neurons["grid_lists"])

    def run(self, mark, saver) -> Result:
        """Drive the whole run (interruptible, checkpointed) and return its Result."""
        # Zero steps and no records change nothing but compile the kernel (or load numba's
        # cache) for these argument types, so that wall_time measures the simulation only.
        self.simulate(self.n_steps, self.n_steps, self.record_steps[:0])
        self.started = time.perf_counter()
        self.cpu_started = time.process_time()

        def advance(step, stop):
            return self.advance(step, stop, mark, saver)
        done, interrupted = run_chunks(advance, self.first, self.n_steps, "montecarlo",
                                       progress=False, dt=self.dt)
        kernels.end_grid_release(self.neurons["v"], self.prepared["pop_offsets"],
                                 self.on_grid)
        out = self.result(done, interrupted, mark)
        saver.save_final(out)
        return out

    def advance(self, step, stop, mark, saver) -> int:
        """Simulate steps ``step .. stop - 1`` (fewer when the spike record must grow);
        return the step reached."""
        # a slice ending before the run's end leaves the record at its end to the next
        records = (self.record_steps if stop == self.n_steps
                   else np.where(self.record_steps == stop, -1, self.record_steps))
        self.rng_state, reached, self.record["n"], status = self.simulate(step, stop,
                                                                          records)
        if status == 1:
            _grow_spike_record(self.record)
        elif status != 0:
            raise ValueError(f"the run is invalid from t = {reached * self.dt!r} s: a "
                             f"neuron fired more than {kernels.SPIKE_LIST_MARGIN} times "
                             f"within one step dt={self.dt!r} (runaway drive, t_ref = 0, "
                             f"or dt far too coarse)")
        if reached < self.n_steps and saver.due():
            saver.save_partial(self.result(reached, True, mark))
        return reached

    def result(self, done, interrupted, mark) -> Result:
        """The Result of the steps done so far."""
        wall_time = time.perf_counter() - self.started
        cpu_time = time.process_time() - self.cpu_started
        self.neurons["rng"] = self.rng_state
        counts, settings = self.counts, self.settings
        return _result(self.prepared, self.sizes, self.dt, self.first, done, interrupted,
                       self.record_steps, counts["spikes"], counts["refractory"],
                       counts["hist"], counts["below"], counts["events"], self.wiring,
                       self.record if self.record_spikes else None, wall_time, cpu_time,
                       info={"seed": self.seed, "bridge": settings["bridge"],
                             "connectivity": settings["connectivity"],
                             "timing": settings["timing"], "on_grid": self.on_grid},
                       state=_state(mark, self.neurons, done, self.wiring,
                                    self.prepared["pop_offsets"], self.on_grid))


def _initial_neurons(prepared, start, init_seq, kernel_seq) -> tuple[dict, int | None]:
    """The neuron arrays (``v``, ``target``, ``ref_end``, ``lam``) at the start and the
    generator state; a continued run's arrays are left to :func:`_restore`."""
    pop_offsets = prepared["pop_offsets"]
    n_total = int(pop_offsets[-1])
    target = np.empty(n_total)
    lam = np.zeros(len(prepared["names"]))
    ref_end = np.full(n_total, -np.inf)
    if start is not None:
        return {"v": np.empty(n_total), "target": target, "ref_end": ref_end,
                "lam": lam}, None
    init_rng = np.random.default_rng(init_seq)
    v = np.concatenate([initial_states(pop, grid, int(size), init_rng)[:, 0]
                        for pop, grid, size in zip(prepared["pops"], prepared["grids"],
                                                   np.diff(pop_offsets))])
    rng_state = kernels.seed_state(kernel_seq.generate_state(1, dtype=np.uint64)[0], target)
    return {"v": v, "target": target, "ref_end": ref_end, "lam": lam}, rng_state


def _spike_record(record_margin) -> dict:
    """An empty spike record with room for a few steps' spikes (none if not recording)."""
    size = max(4 * record_margin, 1024) if record_margin else 0
    return {"times": np.empty(size), "ids": np.empty(size, dtype=np.int64), "n": 0}


def _grow_spike_record(record) -> None:
    """Double the spike record (nearly full; the next slice goes on from here)."""
    _limits.check_allocation(2 * record["times"].size * 16 + 1,
                             "the spike record (doubled)", "record_spikes")
    for key in ("times", "ids"):
        grown = np.empty(2 * record[key].size, dtype=record[key].dtype)
        grown[:record["n"]] = record[key][:record["n"]]
        record[key] = grown


def _restore(start, neurons, first) -> int:
    """Load a saved state into the run's arrays; return the generator state."""
    for key in ("v", "target", "ref_end", "lam", "inbox"):
        copy_into(neurons[key], start[key])
    tail = np.asarray(start["spikes"])
    copy_into(neurons["spikes"][:, first - tail.shape[1]:first], tail)
    return int(start["rng"])


def _state(mark, neurons, done, wiring, pop_offsets, on_grid) -> dict:
    """What a continued run needs (``Result.info["state"]``): neuron states, event
    targets, refractory ends, cumulative intensities, the spike ring buffers, the
    grid engine's release lists, the spike counts the delays still read, the
    generator state and the step reached. The wiring is not stored: the seed
    (in the stamp) draws it again."""
    # at least one step: netCDF files cannot hold empty arrays
    longest = int(np.max(np.diff(wiring["rate_coupling"][2]), initial=1))
    v = neurons["v"].copy()
    kernels.end_grid_release(v, pop_offsets, on_grid)
    return {"stamp": mark, "step": int(done), "v": v,
            "target": neurons["target"].copy(), "ref_end": neurons["ref_end"].copy(),
            "lam": neurons["lam"].copy(), "inbox": neurons["inbox"].copy(),
            "spikes": neurons["spikes"][:, max(0, done - longest):done].copy(),
            **{key: a.copy() for key, a in zip(_GRID_LISTS, neurons["grid_lists"])},
            # a decimal string: netCDF files have no 64-bit unsigned integers
            "rng": str(int(neurons["rng"]))}


def _result(prepared, sizes, dt, first, done, interrupted, record_steps, spike_counts,
            refractory_counts, hist_counts, below_counts, event_counts, wiring, record,
            wall_time, cpu_time, info, state) -> Result:
    """The Result of steps ``first .. done - 1`` (records taken before step ``done``,
    or at it when the run is complete)."""
    n_steps = spike_counts.shape[1]
    kept = record_steps < done if done < n_steps else np.ones(record_steps.size, bool)
    rates, refractory, densities, below = {}, {}, {}, {}
    for p, name in enumerate(prepared["names"]):
        size = sizes[name]
        rates[name] = spike_counts[p, first:done] / (size * dt)
        refractory[name] = refractory_counts[p, first:done] / size
        cols = slice(prepared["grid_offsets"][p], prepared["grid_offsets"][p + 1])
        densities[name] = hist_counts[kept][:, cols] / (size * prepared["grid_width"][p])
        below[name] = below_counts[kept][:, p] / size
    n_total = int(prepared["pop_offsets"][-1])
    on_grid = info.pop("on_grid")
    info.update({"n_steps": n_steps - first, "interrupted": interrupted,
                 "steps_done": done - first, "n_neurons": dict(sizes),
                 "grid_timing": dict(zip(prepared["names"], on_grid.tolist())),
                 "input_events": dict(zip(prepared["names"], event_counts.tolist())),
                 "below_grid": below, "cpu_time": cpu_time,
                 "neuron_steps_per_second": n_total * (done - first) / max(wall_time, 1e-12),
                 "state": state})
    if wiring["labels"]:
        delivered = wiring["spiking"][-1]
        info["delivered_events"] = dict(zip(wiring["labels"], delivered.tolist()))
        info["synapses"] = dict(zip(wiring["labels"], wiring["synapses"]))
        info["delivered_events_per_second"] = int(delivered.sum()) / max(wall_time, 1e-12)
    if record is not None:
        info["spikes"] = _split_spikes(record, prepared["names"], prepared["pop_offsets"])
    common = set(sizes.values())
    return Result(
        t=np.arange(first, done) * dt, dt=dt, rates=rates,
        record_times=record_steps[kept] * dt, densities=densities,
        grids=dict(zip(prepared["names"], prepared["grids"])),
        backend="montecarlo", wall_time=wall_time,
        n_neurons=common.pop() if len(common) == 1 else dict(sizes),
        refractory=refractory, info=info)


def _nd_runner():
    """``run`` of :mod:`popdens.backends.montecarlo_nd`, or None if it does not exist."""
    try:
        module = importlib.import_module(_ND_MODULE)
    except ModuleNotFoundError as err:
        if err.name != _ND_MODULE:
            raise  # the module exists but one of its own imports failed
        return None
    return module.run


def _max_spikes_per_step(t_ref: np.ndarray, dt: float) -> int:
    """Most spikes one neuron can fire in a step (refractory periods between them)."""
    shortest = float(np.min(t_ref)) if t_ref.size else 0.0
    if shortest <= 0.0 or dt / shortest >= kernels.SPIKE_LIST_MARGIN:
        return kernels.SPIKE_LIST_MARGIN   # also a t_ref so small that dt / t_ref is inf
    return min(int(dt / shortest) + 1, kernels.SPIKE_LIST_MARGIN)


def _split_spikes(record, names, pop_offsets) -> dict:
    """``{name: (times, indices within the population)}`` sorted by time."""
    n = record["n"]
    times, ids = record["times"][:n], record["ids"][:n]
    out = {}
    for p, name in enumerate(names):
        mine = (ids >= pop_offsets[p]) & (ids < pop_offsets[p + 1])
        t, i = times[mine], ids[mine] - pop_offsets[p]
        order = np.argsort(t, kind="stable")
        out[name] = (t[order], i[order])
    return out


# --- preparation ---------------------------------------------------------------------------
def _prepare(network, dt, sizes, step_starts, connectivity, first=0, grids=None) -> dict:
    """Flatten the network into the kernel's per-population and per-connection arrays
    (tables per step from step 0; a continued run, from step ``first``, fills those of
    its own steps; ``grids``: the saved grids of the run it continues)."""
    saved = grids
    names, pops, grids = [], [], []
    params = {key: [] for key in ("tau_m", "v_th", "v_reset", "e_l", "t_ref")}
    jump_scale, jump_shift, jump_rate, jump_offsets = [], [], [], [0]
    rate_coupled, spiking, has_diffusion = [], [], []
    n_steps = first + step_starts.size
    index = {name: p for p, name in enumerate(network.populations)}
    diffusion_mean = np.zeros((len(network.populations), n_steps))
    diffusion_variance = np.zeros((len(network.populations), n_steps))
    for p, (name, pop) in enumerate(network.populations.items()):
        model = pop.model
        if not isinstance(model, LIF):
            raise NotImplementedError(f"the montecarlo backend simulates LIF populations; "
                                      f"population {name!r} has {type(model).__name__}")
        grid = (network.grid_of(pop, dt=dt) if saved is None
                else Grid(**{model.state_vars[0]: tuple(saved[name][0])}))
        if grid.ndim != 1:
            raise ValueError(f"population {name!r}: an LIF grid must be 1D, got {grid!r}")
        names.append(name)
        pops.append(pop)
        grids.append(grid)
        for key in params:
            params[key].append(model.params()[key])
        for conn in network.inputs_of(pop):
            from_population = not isinstance(conn.pre, PoissonSource)
            if from_population and conn.input == "jump" and connectivity == "fixed_indegree":
                if getattr(conn, "synapse", None) is not None:
                    raise NotImplementedError(
                        f"connection {conn.label} has a synaptic filter: the Monte Carlo "
                        f"drives it with the filtered rate, connectivity='poisson'")
                _check_indegree(conn, sizes)
                spiking.append(conn)
                continue
            if from_population:
                # filled during the run from the pre population's measured rate
                rate = np.zeros(n_steps)
                rate_coupled.append((conn, len(jump_scale) if conn.input == "jump" else -1,
                                     p))
            else:
                rate = np.zeros(n_steps)
                rate[first:] = network.source_rate_table(conn, step_starts, dt)
            if conn.input == "jump":
                scale, shift = _jump_map(conn)
                jump_scale.append(scale)
                jump_shift.append(shift)
                jump_rate.append(rate)
            else:
                diffusion_mean[p] += rate * conn.weight
                diffusion_variance[p] += rate * conn.weight ** 2
        jump_offsets.append(len(jump_scale))
        has_diffusion.append(any(c.input == "diffusion" for c in network.inputs_of(pop)))
        _check_firing_period(name, model, diffusion_mean[p], dt)
    n_cells = [g.axes[0].num_cells for g in grids]
    return {
        "names": names, "pops": pops, "grids": grids, "index": index,
        "pop_offsets": np.concatenate([[0], np.cumsum([sizes[n] for n in names])]
                                      ).astype(np.int64),
        **{key: np.asarray(vals, dtype=float) for key, vals in params.items()},
        "jump_offsets": np.asarray(jump_offsets, dtype=np.int64),
        "jump_scale": np.asarray(jump_scale, dtype=float),
        "jump_shift": np.asarray(jump_shift, dtype=float),
        "jump_rate": (np.ascontiguousarray(jump_rate, dtype=float) if jump_rate
                      else np.zeros((0, n_steps))),
        "diffusion_mean": diffusion_mean, "diffusion_variance": diffusion_variance,
        "rate_coupled": rate_coupled, "spiking": spiking, "has_diffusion": has_diffusion,
        "grid_lower": np.array([g.axes[0].lower for g in grids]),
        "grid_width": np.array([g.axes[0].width for g in grids]),
        "grid_offsets": np.concatenate([[0], np.cumsum(n_cells)]).astype(np.int64),
    }


def _jump_map(conn) -> tuple[float, float]:
    """``(a, b)`` with ``v -> a v + b`` per event: ``(1, w)`` for a current synapse,
    ``(1 - w, w E)`` for a conductance synapse ``v -> v + w (E - v)``."""
    if conn.reversal is None:
        return 1.0, conn.weight
    return 1.0 - conn.weight, conn.weight * conn.reversal


# More deterministic spikes than this per neuron and step mean a runaway drive (or a dt far
# too coarse); the exact event loop would spend that many iterations per neuron and step.
_MAX_SPIKES_PER_STEP = 1000


def _check_firing_period(name, model, diffusion_mean, dt) -> None:
    """Reject a drive so strong that a neuron fires more than ``_MAX_SPIKES_PER_STEP``
    times per step between input events (with ``t_ref = 0`` the period can round to 0)."""
    drive = model.e_l + model.tau_m * (float(np.max(diffusion_mean)) if diffusion_mean.size
                                       else 0.0)
    if drive <= model.v_th:
        return
    period = model.t_ref + model.tau_m * math.log1p(
        (model.v_th - model.v_reset) / (drive - model.v_th))
    if period * _MAX_SPIKES_PER_STEP < dt:
        raise ValueError(f"population {name!r}: its drive (e_l plus diffusion input, up to "
                         f"{drive!r} V) makes it fire every {period!r} s, more than "
                         f"{_MAX_SPIKES_PER_STEP} times per step dt={dt!r}")


register_backend("montecarlo", run)
