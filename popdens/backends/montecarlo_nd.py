"""Monte Carlo backend for multi-dimensional neuron models.

Simulates populations of :class:`popdens.HodgkinHuxley`, :class:`popdens.ReducedHH` and
:class:`popdens.LIFSynaptic` neurons one by one, for validating the N-D density solver.
The 1D Monte Carlo backend (``backend="montecarlo"``) hands networks of these models to
:func:`run`. Numerics (exact event times, second-order Rush-Larsen steps for the HH
models, exact integration of LIFSynaptic) are described in
:mod:`popdens.kernels.montecarlo_nd`.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .._checks import UnknownOptionError, check_positive
from ..delays import delayed_rates
from ..kernels import montecarlo_nd as kernels
from ..models.hh import HodgkinHuxley, ReducedHH
from ..models.lif_synaptic import LIFSynaptic
from ..network import PoissonSource
from ..progress import run_chunks
from ..result import Result
from . import montecarlo_generic
from .common import MC_DEFAULT_INTERNAL_DT
from .common import check_seed as _check_seed
from .common import check_sizes as _check_sizes
from .common import initial_states as _initial_states
from .common import record_steps as _record_steps

__all__ = ["run", "DEFAULT_INTERNAL_DT"]

OPTIONS = ("n_neurons", "seed", "record_times", "internal_dt", "connectivity")

DEFAULT_INTERNAL_DT = MC_DEFAULT_INTERNAL_DT
"""Default internal step (s) of the Hodgkin-Huxley integrators. Measured
(``tests/test_models_nd.py``): relative firing-rate error 1.9e-4 (HodgkinHuxley, 68.31
against 68.32 Hz at 10 uA/cm^2) and 5.2e-4 (ReducedHH) at 10 us, below the Monte Carlo
noise of populations up to ~10^6 neurons; 40 us gives 2.6e-3 and 4.7e-3."""

_KINDS = ((HodgkinHuxley, kernels.KIND_HH), (ReducedHH, kernels.KIND_REDUCED_HH),
          (LIFSynaptic, kernels.KIND_LIF_SYNAPTIC))


def _compiled(model) -> bool:
    """Whether a compiled single-neuron kernel of this backend simulates ``model``."""
    return any(isinstance(model, cls) for cls, _ in _KINDS)


def run(network, t_end: float, dt: float, n_neurons: int = 10_000, seed=None,
        record_times=(), internal_dt: float | None = None, connectivity: str = "poisson",
        **options) -> Result:
    """Simulate ``network`` neuron by neuron.

    Parameters
    ----------
    network : popdens.Network
        Populations of :class:`popdens.HodgkinHuxley`, :class:`popdens.ReducedHH` or
        :class:`popdens.LIFSynaptic` neurons driven by Poisson sources with
        ``input="jump"`` connections (current jumps; conductance jumps ``reversal=`` for
        the HH models).
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
        Largest internal step (s) of the HH integrators, default
        :data:`DEFAULT_INTERNAL_DT` (10 us); each reporting step is split into
        ``ceil(dt / internal_dt)`` equal steps. LIFSynaptic is integrated exactly and
        ignores it.
    connectivity : {"poisson"}
        Connections from populations: each post neuron receives independent Poisson
        events at rate ``n_syn * (delayed rate of pre)``, the pre population's measured
        rate per step convolved with the delay's exact lag weights (the part of the
        delay within the current step uses the previous step's rate), timed exactly
        within the step -- the stochastic counterpart of the density equations, as in
        the LIF Monte Carlo backend. The populations advance together in blocks of the
        shortest coupling lag. Fixed in-degree wiring (spike delivery along synapses) is
        not implemented for these models.

    Returns
    -------
    Result
        ``rates`` (Hz): spikes per neuron and second in each step (HH: upward crossings of
        the spike surface; LIFSynaptic: threshold crossings); ``densities``: histograms on
        the grid's cells, ``counts / (n_neurons * cell_volume)``, shape
        ``(len(record_times), *grid.shape)``, integrating to the fraction on the grid
        (refractory neurons and those outside the grid, ``info["outside_grid"]``, are
        not counted); ``refractory``: fraction refractory at each step's end.

    Raises
    ------
    ValueError, TypeError
        Invalid options (naming option and value).
    NotImplementedError
        ``connectivity="fixed_indegree"``, ``input="diffusion"``, outflow / absorbing
        ``boundaries`` (a density-grid setting), or a model this backend does not
        simulate (e.g. :class:`popdens.LIF` mixed into the same network).
    """
    if not all(_compiled(pop.model) for pop in network.populations.values()):
        # user-written models (or LIF beside N-D models): the interface-only engine
        return montecarlo_generic.run(network, t_end, dt, n_neurons=n_neurons, seed=seed,
                                      record_times=record_times, internal_dt=internal_dt,
                                      connectivity=connectivity, **options)
    if options:
        unknown = ", ".join(sorted(options))
        raise UnknownOptionError(f"unknown option(s) for the N-D montecarlo backend: "
                                 f"{unknown}; valid options are {', '.join(OPTIONS)}")
    if connectivity == "fixed_indegree":
        raise NotImplementedError(
            "connectivity='fixed_indegree' (spike delivery along drawn synapses) is not "
            "implemented for HodgkinHuxley, ReducedHH and LIFSynaptic populations; use "
            "connectivity='poisson' (independent Poisson input at the measured, delayed "
            "rate of the pre population)")
    if connectivity != "poisson":
        raise ValueError(f"connectivity must be 'poisson' for N-D populations, got "
                         f"{connectivity!r}")
    for pop in network.populations.values():
        opened = {name: kinds for name, kinds in pop.boundaries.items()
                  if "outflow" in kinds or "absorb" in kinds}
        if opened:
            raise NotImplementedError(
                f"population {pop.name!r}: boundaries {opened} are faces of the density "
                f"grid; Monte Carlo neurons have no grid, so outflow / absorbing faces "
                f"are not simulated (run backend='density', or drop the boundaries)")
    t_end = check_positive("t_end", t_end)
    dt = check_positive("dt", dt)
    if dt > t_end:
        raise ValueError(f"dt must be <= t_end, got dt={dt!r}, t_end={t_end!r}")
    sizes = _check_sizes(network, n_neurons)
    seed = _check_seed(seed)
    internal_dt = DEFAULT_INTERNAL_DT if internal_dt is None else check_positive(
        "internal_dt", internal_dt)
    n_sub = max(1, math.ceil(dt / internal_dt - 1e-9))
    n_steps = max(1, math.ceil(t_end / dt - 1e-9))
    step_starts = np.arange(n_steps) * dt
    record_steps = _record_steps(record_times, t_end, dt, n_steps)

    prep = _prepare(network, t_end, dt, step_starts)
    n_pop = len(prep["names"])
    counts = np.array([sizes[name] for name in prep["names"]], dtype=np.int64)
    pop_offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    total = int(pop_offsets[-1])
    seeds = np.random.SeedSequence(seed)
    init_seq, kernel_seq = seeds.spawn(2)
    init_rng = np.random.default_rng(init_seq)
    y = np.zeros((total, kernels.MAX_STATE_VARS))
    for p, (pop, grid) in enumerate(zip(prep["pops"], prep["grids"])):
        rows = slice(pop_offsets[p], pop_offsets[p + 1])
        y[rows, :grid.ndim] = _initial_states(pop, grid, int(counts[p]), init_rng)
    target = np.empty(total)
    ref_end = np.full(total, -np.inf)
    lam = np.zeros(n_pop)
    state = kernels.seed_targets(kernel_seq.generate_state(1, dtype=np.uint64)[0], target)

    spike_counts = np.zeros((n_pop, n_steps), dtype=np.int64)
    refractory_counts = np.zeros((n_pop, n_steps), dtype=np.int64)
    event_counts = np.zeros(n_pop, dtype=np.int64)
    hist_counts = np.zeros((record_steps.size, int(prep["grid_offsets"][-1])), dtype=np.int64)
    outside_counts = np.zeros((record_steps.size, n_pop), dtype=np.int64)

    def simulate(begin, end, record_at, generator_state):
        return kernels.simulate_nd(
            begin, end, dt, n_sub, np.uint64(generator_state), prep["kinds"], pop_offsets,
            prep["params"], y, target, ref_end, lam, prep["jump_offsets"],
            prep["jump_weight"], prep["jump_reversal"], prep["jump_rate"], record_at,
            prep["grid_ndim"], prep["grid_lower"], prep["grid_width"], prep["grid_cells"],
            prep["grid_offsets"], spike_counts, refractory_counts, event_counts,
            hist_counts, outside_counts)

    # zero steps change nothing but compile (or load from numba's cache) the kernel, so
    # that wall_time measures the simulation only
    simulate(0, 0, record_steps[:0], state)
    started = time.perf_counter()
    coupling = prep["coupling"]
    # slices of at most the shortest coupling lag: within one, every input rate is known
    block = min((int(np.flatnonzero(lags)[0]) for *_, lags in coupling), default=None)

    def advance(step, stop):
        nonlocal state
        for row, pre, n_syn, lags in coupling:
            measured = spike_counts[pre] / (counts[pre] * dt)
            prep["jump_rate"][row, step:stop] = n_syn * delayed_rates(measured, lags,
                                                                      step, stop)
        state = simulate(step, stop, record_steps, state)
        return stop

    done, interrupted = run_chunks(advance, 0, n_steps, "montecarlo (N-D)",
                                   progress=False, max_chunk=block, dt=dt)
    wall_time = time.perf_counter() - started
    if interrupted:
        # the first `done` steps and the records taken before step `done`
        kept = record_steps < done
        step_starts, record_steps = step_starts[:done], record_steps[kept]
        spike_counts, refractory_counts = spike_counts[:, :done], refractory_counts[:, :done]
        hist_counts, outside_counts = hist_counts[kept], outside_counts[kept]
    rates, refractory, densities, outside = {}, {}, {}, {}
    for p, name in enumerate(prep["names"]):
        grid = prep["grids"][p]
        size = int(counts[p])
        rates[name] = spike_counts[p] / (size * dt)
        refractory[name] = refractory_counts[p] / size
        cols = slice(prep["grid_offsets"][p], prep["grid_offsets"][p + 1])
        densities[name] = (hist_counts[:, cols] / (size * grid.cell_volume)).reshape(
            (record_steps.size, *grid.shape))
        outside[name] = outside_counts[:, p] / size
    neuron_steps = sum(int(c) * done * (n_sub if kind != kernels.KIND_LIF_SYNAPTIC else 1)
                       for c, kind in zip(counts, prep["kinds"]))
    common = set(sizes.values())
    return Result(
        t=step_starts, dt=dt, rates=rates, record_times=record_steps * dt,
        densities=densities, grids=dict(zip(prep["names"], prep["grids"])),
        backend="montecarlo", wall_time=wall_time,
        n_neurons=common.pop() if len(common) == 1 else dict(sizes),
        refractory=refractory,
        info={"seed": seed, "n_steps": n_steps, "n_neurons": dict(sizes),
              "interrupted": interrupted, "steps_done": done,
              "connectivity": connectivity,
              "internal_dt": dt / n_sub,
              "internal_steps_per_step": n_sub,
              "integrator": {name: _INTEGRATOR[int(kind)]
                             for name, kind in zip(prep["names"], prep["kinds"])},
              "input_events": dict(zip(prep["names"], event_counts.tolist())),
              "outside_grid": outside,
              # internal steps for the HH models, reporting steps for LIFSynaptic
              "neuron_steps_per_second": neuron_steps / max(wall_time, 1e-12)})


_INTEGRATOR = {
    kernels.KIND_HH: "second-order Rush-Larsen (exponential midpoint), exact event times",
    kernels.KIND_REDUCED_HH: "second-order Rush-Larsen (exponential midpoint), exact event "
                             "times",
    kernels.KIND_LIF_SYNAPTIC: "exact (closed-form flow, bisection for threshold times)",
}


def _kind_of(name, model) -> int:
    for cls, kind in _KINDS:
        if isinstance(model, cls):
            return kind
    raise NotImplementedError(
        f"the N-D montecarlo backend simulates HodgkinHuxley, ReducedHH and LIFSynaptic "
        f"populations; population {name!r} has {type(model).__name__} (LIF populations "
        f"cannot share a Monte Carlo run with N-D ones yet)")


# --- preparation ---------------------------------------------------------------------------
def _prepare(network, t_end, dt, step_starts) -> dict:
    """Flatten the network into the kernel's arrays."""
    names, pops, grids, kinds, params = [], [], [], [], []
    jump_weight, jump_reversal, jump_rate, jump_offsets = [], [], [], [0]
    coupling = []
    for name, pop in network.populations.items():
        model = pop.model
        kind = _kind_of(name, model)
        grid = network.grid_of(pop, t_end, dt)
        names.append(name)
        pops.append(pop)
        grids.append(grid)
        kinds.append(kind)
        params.append(model.mc_parameters())
        for conn in network.inputs_of(pop):
            if conn.input != "jump":
                raise NotImplementedError(
                    f"connection {conn.label}: input={conn.input!r} is not supported by the "
                    f"N-D montecarlo backend; use input='jump'")
            if conn.reversal is not None and kind == kernels.KIND_LIF_SYNAPTIC:
                raise ValueError(
                    f"connection {conn.label}: LIFSynaptic takes current input on i_syn; a "
                    f"conductance synapse (reversal={conn.reversal!r}) is not defined for it")
            jump_weight.append(conn.weight)
            jump_reversal.append(np.nan if conn.reversal is None else conn.reversal)
            if isinstance(conn.pre, PoissonSource):
                jump_rate.append(network.source_rate_table(conn, step_starts, dt))
            else:
                # filled block by block from the pre population's measured rate
                coupling.append((len(jump_weight) - 1, conn.pre.name, conn.n_syn,
                                 conn.delay.explicit_lag_weights(dt)))
                jump_rate.append(np.zeros(step_starts.size))
        jump_offsets.append(len(jump_weight))
    n_pop = len(names)
    width = max(p.size for p in params)
    param_table = np.zeros((n_pop, width))
    for p, values in enumerate(params):
        param_table[p, :values.size] = values
    lower = np.zeros((n_pop, kernels.MAX_STATE_VARS))
    widths = np.ones((n_pop, kernels.MAX_STATE_VARS))
    cells = np.ones((n_pop, kernels.MAX_STATE_VARS), dtype=np.int64)
    for p, grid in enumerate(grids):
        for d, axis in enumerate(grid.axes):
            lower[p, d] = axis.lower
            widths[p, d] = axis.width
            cells[p, d] = axis.num_cells
    return {
        "names": names, "pops": pops, "grids": grids,
        "coupling": [(row, names.index(pre), n_syn, lags)
                     for row, pre, n_syn, lags in coupling],
        "kinds": np.asarray(kinds, dtype=np.int64), "params": param_table,
        "jump_offsets": np.asarray(jump_offsets, dtype=np.int64),
        "jump_weight": np.asarray(jump_weight, dtype=float),
        "jump_reversal": np.asarray(jump_reversal, dtype=float),
        "jump_rate": (np.ascontiguousarray(jump_rate, dtype=float) if jump_rate
                      else np.zeros((0, step_starts.size))),
        "grid_ndim": np.array([g.ndim for g in grids], dtype=np.int64),
        "grid_lower": lower, "grid_width": widths, "grid_cells": cells,
        "grid_offsets": np.concatenate([[0], np.cumsum([g.num_cells for g in grids])]
                                       ).astype(np.int64),
    }

