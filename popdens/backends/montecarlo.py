"""Monte Carlo backend: every neuron of every population simulated one by one.

It runs the same :class:`popdens.Network` description as the density backend and is the
ground truth for validating it. Input events are timed exactly within a step (time
rescaling of the population's Poisson input), leak and refractory ends are exact, and
``input="diffusion"`` connections are simulated as white noise with a Brownian-bridge
threshold correction; see :mod:`popdens.kernels.montecarlo`.
"""

from __future__ import annotations

import math
import numbers
import time

import numpy as np

from .._checks import UnknownOptionError, check_int, check_positive
from ..kernels import montecarlo as kernels
from ..models.lif import LIF
from ..network import PoissonSource, register_backend
from ..result import Result

__all__ = ["run", "UnknownOptionError"]


OPTIONS = ("n_neurons", "seed", "record_times", "bridge")


def run(network, t_end: float, dt: float, n_neurons: int = 10_000, seed=None,
        record_times=(), bridge: bool = True, **options) -> Result:
    """Simulate ``network`` neuron by neuron.

    Parameters
    ----------
    network : popdens.Network
        Populations of :class:`popdens.LIF` neurons driven by Poisson sources.
    t_end : float
        Duration (s). The run has ``ceil(t_end / dt)`` steps.
    dt : float
        Reporting step (s). Input events, spikes and refractory ends are timed exactly
        within a step; ``dt`` only sets the output resolution and, for
        ``input="diffusion"`` connections, the white-noise step.
    n_neurons : int, default 10000
        Neurons per population.
    seed : int or None
        Non-negative seed; the same seed gives identical results. ``None`` draws one from
        the operating system; either way it is kept in ``Result.info["seed"]``.
    record_times : float or sequence of float
        Times in ``[0, t_end]`` (s) at which to histogram the neurons. Each is recorded at
        the first step start ``k dt >= time`` (``k = n_steps`` is the final state);
        ``Result.record_times`` holds those actual times, in the order requested.
    bridge : bool, default True
        Correct white-noise threshold crossings between steps with the Brownian-bridge
        probability. ``False`` tests the threshold only at step ends, which biases the
        rate low by O(sqrt(dt / tau_m)); it exists to measure that bias.

    Returns
    -------
    Result
        ``rates`` (Hz): spikes in ``[t_k, t_k + dt)`` per neuron and second;
        ``densities`` (1/V): histograms of the non-refractory neurons on the grid cells,
        ``counts / (n_neurons * dx)``, so each integrates to the non-refractory fraction
        minus the fraction below the grid's lower face (``info["below_grid"]``);
        ``refractory``: fraction refractory at the end of each step.

    Raises
    ------
    ValueError, TypeError
        For invalid options, naming the option and the offending value.
    """
    if options:
        unknown = ", ".join(sorted(options))
        raise UnknownOptionError(f"unknown option(s) for backend 'montecarlo': {unknown}; "
                                 f"valid options are {', '.join(OPTIONS)}")
    t_end = check_positive("t_end", t_end)
    dt = check_positive("dt", dt)
    n_neurons = check_int("n_neurons", n_neurons, 1)
    seed = _check_seed(seed)
    if not isinstance(bridge, (bool, np.bool_)):
        raise TypeError(f"bridge must be True or False, got {bridge!r}")
    n_steps = max(1, math.ceil(t_end / dt - 1e-9))
    step_starts = np.arange(n_steps) * dt
    record_steps = _record_steps(record_times, t_end, dt, n_steps)

    prepared = _prepare(network, t_end, dt, n_neurons, step_starts)
    seeds = np.random.SeedSequence(seed)
    init_seq, kernel_seq = seeds.spawn(2)
    init_rng = np.random.default_rng(init_seq)
    n_pop = len(prepared["names"])
    v = np.concatenate([_initial_states(pop, grid, n_neurons, init_rng)
                        for pop, grid in zip(prepared["pops"], prepared["grids"])])
    target = np.empty(n_pop * n_neurons)
    ref_end = np.full(n_pop * n_neurons, -np.inf)
    lam = np.zeros(n_pop)
    state = kernels.seed_state(kernel_seq.generate_state(1, dtype=np.uint64)[0], target)

    spike_counts = np.zeros((n_pop, n_steps), dtype=np.int64)
    refractory_counts = np.zeros((n_pop, n_steps), dtype=np.int64)
    event_counts = np.zeros(n_pop, dtype=np.int64)
    hist_counts = np.zeros((record_steps.size, int(prepared["grid_offsets"][-1])),
                           dtype=np.int64)
    below_counts = np.zeros((record_steps.size, n_pop), dtype=np.int64)

    def simulate(steps, record_at):
        return kernels.simulate_lif(
            0, steps, dt, np.uint64(state), prepared["pop_offsets"], prepared["tau_m"],
            prepared["v_th"], prepared["v_reset"], prepared["e_l"], prepared["t_ref"],
            prepared["jump_offsets"], prepared["jump_weight"], prepared["jump_rate"],
            prepared["diffusion_mean"], prepared["diffusion_variance"], bool(bridge), v,
            target, ref_end, lam, record_at, prepared["grid_lower"], prepared["grid_width"],
            prepared["grid_offsets"], spike_counts, refractory_counts, event_counts,
            hist_counts, below_counts)

    # zero steps and no records change nothing but compile the kernel (or load numba's
    # cache) for these argument types, so that wall_time measures the simulation only
    simulate(0, record_steps[:0])
    started = time.perf_counter()
    simulate(n_steps, record_steps)
    wall_time = time.perf_counter() - started

    rates, refractory, densities, below = {}, {}, {}, {}
    for p, name in enumerate(prepared["names"]):
        rates[name] = spike_counts[p] / (n_neurons * dt)
        refractory[name] = refractory_counts[p] / n_neurons
        cols = slice(prepared["grid_offsets"][p], prepared["grid_offsets"][p + 1])
        densities[name] = hist_counts[:, cols] / (n_neurons * prepared["grid_width"][p])
        below[name] = below_counts[:, p] / n_neurons
    return Result(
        t=step_starts, dt=dt, rates=rates, record_times=record_steps * dt,
        densities=densities, grids=dict(zip(prepared["names"], prepared["grids"])),
        backend="montecarlo", wall_time=wall_time, n_neurons=n_neurons,
        refractory=refractory,
        info={"seed": seed, "n_steps": n_steps, "bridge": bool(bridge),
              "input_events": dict(zip(prepared["names"], event_counts.tolist())),
              "below_grid": below,
              "neuron_steps_per_second": n_pop * n_neurons * n_steps / max(wall_time, 1e-12)})


# --- validation ----------------------------------------------------------------------------
def _check_seed(seed) -> int:
    if seed is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be a non-negative integer or None, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed!r}")
    return int(seed)


def _record_steps(record_times, t_end: float, dt: float, n_steps: int) -> np.ndarray:
    if record_times is None:
        record_times = ()
    try:
        times = np.atleast_1d(np.asarray(record_times, dtype=float))
    except (TypeError, ValueError):
        raise TypeError(f"record_times must be a sequence of times (s), got "
                        f"{record_times!r}") from None
    if times.ndim != 1:
        raise ValueError(f"record_times must be 1D, got shape {times.shape}")
    bad = ~np.isfinite(times) | (times < 0.0) | (times > t_end * (1 + 1e-12))
    if np.any(bad):
        raise ValueError(f"record_times must lie in [0, t_end={t_end!r}], got "
                         f"{times[bad][0]!r}")
    # first step start at or after each time; round-off must not push k dt = time past it
    steps = np.ceil(times / dt - 1e-9).astype(np.int64)
    return np.clip(steps, 0, n_steps)


# --- preparation ---------------------------------------------------------------------------
def _prepare(network, t_end, dt, n_neurons, step_starts) -> dict:
    """Flatten the network into the kernel's per-population and per-connection arrays."""
    names, pops, grids = [], [], []
    params = {key: [] for key in ("tau_m", "v_th", "v_reset", "e_l", "t_ref")}
    jump_weight, jump_rate, jump_offsets = [], [], [0]
    n_steps = step_starts.size
    diffusion_mean = np.zeros((len(network.populations), n_steps))
    diffusion_variance = np.zeros((len(network.populations), n_steps))
    for p, (name, pop) in enumerate(network.populations.items()):
        model = pop.model
        if not isinstance(model, LIF):
            raise NotImplementedError(f"the montecarlo backend simulates LIF populations; "
                                      f"population {name!r} has {type(model).__name__}")
        grid = network.grid_of(pop, t_end, dt)
        if grid.ndim != 1:
            raise ValueError(f"population {name!r}: an LIF grid must be 1D, got {grid!r}")
        names.append(name)
        pops.append(pop)
        grids.append(grid)
        for key in params:
            params[key].append(getattr(model, key))
        for conn in network.inputs_of(pop):
            if not isinstance(conn.pre, PoissonSource):
                raise NotImplementedError(
                    f"population {name!r}: input from population {conn.pre.name!r} is not "
                    f"supported yet by the montecarlo backend")
            rate = network.source_rate_table(conn, step_starts, dt)
            if conn.input == "jump":
                jump_weight.append(conn.weight)
                jump_rate.append(rate)
            else:
                diffusion_mean[p] += rate * conn.weight
                diffusion_variance[p] += rate * conn.weight ** 2
        jump_offsets.append(len(jump_weight))
        _check_firing_period(name, model, diffusion_mean[p], dt)
    n_cells = [g.axes[0].num_cells for g in grids]
    return {
        "names": names, "pops": pops, "grids": grids,
        "pop_offsets": np.arange(len(names) + 1, dtype=np.int64) * n_neurons,
        **{key: np.asarray(vals, dtype=float) for key, vals in params.items()},
        "jump_offsets": np.asarray(jump_offsets, dtype=np.int64),
        "jump_weight": np.asarray(jump_weight, dtype=float),
        "jump_rate": (np.ascontiguousarray(jump_rate, dtype=float) if jump_rate
                      else np.zeros((0, n_steps))),
        "diffusion_mean": diffusion_mean, "diffusion_variance": diffusion_variance,
        "grid_lower": np.array([g.axes[0].lower for g in grids]),
        "grid_width": np.array([g.axes[0].width for g in grids]),
        "grid_offsets": np.concatenate([[0], np.cumsum(n_cells)]).astype(np.int64),
    }


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


def _initial_states(pop, grid, n_neurons: int, rng: np.random.Generator) -> np.ndarray:
    """Initial ``v`` of each neuron: the model's resting state, or samples of ``init``
    (a cell with probability proportional to ``init(centers)``, uniform within it)."""
    model = pop.model
    if pop.init is None:
        return np.full(n_neurons, model.resting_state)
    axis = grid.axes[0]
    centers = axis.centers
    try:
        weights = np.asarray(pop.init(centers), dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"init of population {pop.name!r} must return numbers for the "
                         f"cell centers: {err}") from err
    if weights.shape != centers.shape:
        try:
            weights = np.broadcast_to(weights, centers.shape)
        except ValueError:
            raise ValueError(f"init of population {pop.name!r} returned shape "
                             f"{weights.shape}; expected {centers.shape} (one value per "
                             f"cell center)") from None
    if np.any(np.isnan(weights)):
        raise ValueError(f"init of population {pop.name!r} returned NaN")
    weights = np.clip(weights, 0.0, None)
    total = float(np.sum(weights))
    if not (math.isfinite(total) and total > 0.0):
        raise ValueError(f"init of population {pop.name!r} must have a positive, finite "
                         f"sum over the grid cells; got {total!r}")
    cells = rng.choice(axis.num_cells, size=n_neurons, p=weights / total)
    v = axis.lower + (cells + rng.random(n_neurons)) * axis.width
    # a neuron must start strictly below threshold (the grid's upper face)
    return np.minimum(v, np.nextafter(model.v_th, -np.inf))


register_backend("montecarlo", run)
