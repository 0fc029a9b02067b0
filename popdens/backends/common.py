"""Helpers shared by the backends (below every backend module, so none imports another
for them)."""

from __future__ import annotations

import math
import numbers

import numpy as np

from .._checks import check_int
from ..models.base import ThresholdReset

# Default internal step (s) of the Monte Carlo integrators of non-LIF models (the
# N-D compiled kernels and the interface-only engine); see montecarlo_nd.
MC_DEFAULT_INTERNAL_DT = 1e-5

__all__ = ["POISSON_TAIL", "record_steps_for", "check_seed", "record_steps", "check_sizes",
           "initial_states", "no_conductance_message"]

# Relative probability below which the Poisson event-count series is truncated (the rest
# is lumped into the last term, so mass is still conserved exactly).
POISSON_TAIL = 1e-10


def record_steps_for(record_times, t_end: float, dt: float, n_steps: int) -> np.ndarray:
    """Step indices (0 .. n_steps) at whose start the state is recorded: the first step
    start at or after each requested time."""
    if record_times is None:
        return np.zeros(0, dtype=np.int64)
    times = np.atleast_1d(np.asarray(record_times, dtype=float))
    if times.ndim != 1 or not np.all(np.isfinite(times)):
        raise ValueError(f"record_times must be finite times, got {record_times!r}")
    if np.any(times < 0) or np.any(times > t_end * (1 + 1e-12)):
        raise ValueError(f"record_times must lie in [0, t_end={t_end}], got "
                         f"{times.tolist()}")
    steps = np.minimum(np.ceil(times / dt - 1e-9).astype(np.int64), n_steps)
    return np.sort(steps)


# --- Monte Carlo backends (1D and N-D: same options, same messages) ----------------------
def check_seed(seed) -> int:
    """The ``seed`` option as an int (a fresh entropy value for None)."""
    if seed is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be a non-negative integer or None, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed!r}")
    return int(seed)


def record_steps(record_times, t_end: float, dt: float, n_steps: int) -> np.ndarray:
    """Step indices (0 .. n_steps) of the Monte Carlo backends' ``record_times``: the
    first step start at or after each time, in the given order."""
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


def check_sizes(network, n_neurons) -> dict:
    """``{population name: neurons}`` from an int or a dict."""
    names = list(network.populations)
    if isinstance(n_neurons, dict):
        unknown = sorted(set(n_neurons) - set(names), key=str)
        if unknown:
            raise ValueError(f"n_neurons names {unknown[0]!r}, which is not a population "
                             f"of this network (populations: {names})")
        missing = [name for name in names if name not in n_neurons]
        if missing:
            raise ValueError(f"n_neurons gives no size for population {missing[0]!r}")
        return {name: check_int(f"n_neurons[{name!r}]", n_neurons[name], 1)
                for name in names}
    size = check_int("n_neurons", n_neurons, 1)
    return dict.fromkeys(names, size)


def initial_states(pop, grid, n_neurons: int, rng: np.random.Generator) -> np.ndarray:
    """Initial states, shape ``(n_neurons, ndim)``: the model's resting state, or samples
    of ``init`` (a cell with probability proportional to ``init`` at its center, uniform
    within the cell)."""
    model = pop.model
    if pop.init is None:
        return np.tile(np.asarray(model.resting_state, dtype=float), (n_neurons, 1))
    centers = np.meshgrid(*grid.centers(), indexing="ij")
    try:
        weights = np.asarray(pop.init(*centers), dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"init of population {pop.name!r} must return numbers for the "
                         f"cell centers (one array argument per state variable "
                         f"{grid.names}): {err}") from err
    if weights.shape != grid.shape:
        try:
            weights = np.broadcast_to(weights, grid.shape)
        except ValueError:
            raise ValueError(f"init of population {pop.name!r} returned shape "
                             f"{weights.shape}; expected {grid.shape} (one value per "
                             f"cell)") from None
    if np.any(np.isnan(weights)):
        raise ValueError(f"init of population {pop.name!r} returned NaN")
    weights = np.clip(weights, 0.0, None).ravel()
    total = float(np.sum(weights))
    if not (math.isfinite(total) and total > 0.0):
        raise ValueError(f"init of population {pop.name!r} must have a positive, finite "
                         f"sum over the grid cells; got {total!r}")
    flat = rng.choice(weights.size, size=n_neurons, p=weights / total)
    index = np.unravel_index(flat, grid.shape)
    states = np.empty((n_neurons, grid.ndim))
    for d, axis in enumerate(grid.axes):
        states[:, d] = axis.lower + (index[d] + rng.random(n_neurons)) * axis.width
    rule = model.spike_rule
    if isinstance(rule, ThresholdReset):
        # a neuron must start strictly below threshold (the grid's upper face)
        d = grid.names.index(rule.var)
        states[:, d] = np.minimum(states[:, d], np.nextafter(rule.threshold, -np.inf))
    return states


def no_conductance_message(conn) -> str:
    """Why a conductance synapse cannot act on the target model of ``conn``."""
    model = conn.post.model
    return (f"connection {conn.label}: a conductance synapse (reversal={conn.reversal!r}) "
            f"moves a membrane potential toward its reversal, but {type(model).__name__} "
            f"takes input on {model.input_var!r}, which is not one")
