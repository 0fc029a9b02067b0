"""Discretisation-error estimate of a density run, and runs refined to a tolerance.

A density run on grid ``G`` with internal step ``h`` has a firing-rate error
``e(G, h) ~ C (dx^p + dt^p)`` with ``p`` about 2 (measured: ``tests/backends/
test_nd_order.py``, and ``tests/accuracy/test_error_estimate.py`` for the rates). A
companion run with every axis coarsened by 2 and the internal step doubled has about
``2^p`` times that error, so Richardson's estimate of the error of the fine run is

    |r(G, h) - r(G/2, 2h)| / (2^p - 1),

computed per population on the mean rate over a window. Where the engine keeps the
companion's internal step below ``2h`` (its own accuracy limits, e.g. the splitting
limit of ReducedHH), the estimate covers the grid only; ``info["error_dt_coarsened"]``
says which. How good the estimate is, measured, is in the README (Error estimate).

This module only drives :meth:`popdens.Network.run` (passed in as ``run``); it knows no
backend.
"""

from __future__ import annotations

import math
import warnings

from . import _limits
from .grid import Grid

__all__ = ["ERROR_ORDER", "MAX_REFINEMENTS", "coarsened", "refined", "estimate_run",
           "run_to_tolerance", "check_window", "check_tolerance"]

ERROR_ORDER = 2.0
"""Order ``p`` used by the Richardson estimate (measured about 2 in space and time)."""
MAX_REFINEMENTS = 4
"""Default number of grid doublings ``net.run(..., rtol=...)`` may try."""
# fewest cells a coarsened axis keeps: below this the companion is not in the
# asymptotic range and the estimate would mean nothing
MIN_COARSE_CELLS = 4


def coarsened(grid: Grid, name: str) -> Grid:
    """``grid`` with every axis halved (same bounds; ``num_cells // 2`` cells)."""
    axes = {}
    for ax in grid.axes:
        cells = ax.num_cells // 2
        if cells < MIN_COARSE_CELLS:
            raise ValueError(f"error_estimate: population {name!r} axis {ax.name!r} has "
                             f"{ax.num_cells} cells; the companion grid needs at least "
                             f"{2 * MIN_COARSE_CELLS} to halve")
        axes[ax.name] = (ax.lower, ax.upper, cells)
    return Grid(**axes)


def refined(grid: Grid) -> Grid:
    """``grid`` with twice the cells on every axis (same bounds)."""
    return Grid(**{ax.name: (ax.lower, ax.upper, 2 * ax.num_cells) for ax in grid.axes})


def _window(result, window) -> tuple[float, float]:
    if window is None:
        return 0.0, float(result.t[-1]) + 1.0   # every step
    return float(window[0]), float(window[1])


def check_window(window, t_end: float):
    if window is None:
        return None
    try:
        lo, hi = (float(w) for w in window)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"error_window must be (t_from, t_to) in seconds, got "
                         f"{window!r}") from exc
    if not (0.0 <= lo < hi <= t_end + 1e-12):
        raise ValueError(f"error_window must satisfy 0 <= t_from < t_to <= t_end="
                         f"{t_end!r}, got {window!r}")
    return lo, hi


def _run_on(network, grids: dict, run, t_end, dt, options):
    """``run`` with each population's grid set to ``grids[name]`` (restored after)."""
    saved = {pop.name: pop.grid for pop in network.populations.values()}
    try:
        for pop in network.populations.values():
            pop.grid = grids[pop.name]
        return run(t_end, dt, **options)
    finally:
        for pop in network.populations.values():
            pop.grid = saved[pop.name]


def _resolved_grids(network, dt: float) -> dict:
    return {pop.name: network.grid_of(pop, dt=dt) for pop in network.populations.values()}


def estimate_run(network, run, t_end: float, dt: float, options: dict, grids=None,
                 window=None, order: float = ERROR_ORDER):
    """One run plus its coarse companion; the error estimate goes into ``info``.

    Parameters
    ----------
    network : Network
    run : callable
        ``run(t_end, dt, **options) -> Result`` (the network's plain density run).
    t_end, dt : float
        As for :meth:`Network.run` (s).
    options : dict
        Density options of the fine run.
    grids : dict, optional
        Grid per population name (default: the populations' grids or defaults).
    window : (float, float), optional
        Time window (s) of the mean rate whose error is estimated; default the whole run.
    order : float
        Richardson order ``p``.

    Returns
    -------
    Result
        The fine run, with ``info["rate_error"]`` (Hz, per population: estimated
        absolute error of the mean rate over the window), ``info["rate_coarse"]``,
        ``info["rate_extrapolated"]``, ``info["error_window"]``, ``info["error_grids"]``
        (fine and companion shapes) and ``info["error_dt_coarsened"]``.
    """
    grids = _resolved_grids(network, dt) if grids is None else grids
    coarse = {name: coarsened(g, name) for name, g in grids.items()}
    for pop in network.populations.values():   # before anything runs: a clear error
        try:
            pop.model.validate_grid(coarse[pop.name])
        except ValueError as exc:
            raise ValueError(f"error_estimate: the companion grid of population "
                             f"{pop.name!r} ({grids[pop.name].shape} halved) is invalid: "
                             f"{exc}") from exc
    fine = _run_on(network, grids, run, t_end, dt, options)
    h = float(fine.info["dt_sub"])
    companion = _run_on(network, coarse, run, t_end, dt, {**options, "max_substep": 2 * h})
    lo, hi = _window(fine, window)
    factor = 2.0 ** order - 1.0
    info = {"rate_error": {}, "rate_coarse": {}, "rate_extrapolated": {}}
    for name in grids:
        r_f, r_c = fine.mean_rate(name, lo, hi), companion.mean_rate(name, lo, hi)
        info["rate_error"][name] = abs(r_f - r_c) / factor
        info["rate_coarse"][name] = r_c
        info["rate_extrapolated"][name] = r_f + (r_f - r_c) / factor
    info["error_window"] = (lo, min(hi, t_end))
    info["error_grids"] = {name: (grids[name].shape, coarse[name].shape) for name in grids}
    # the engine may keep the companion's step finer than 2h (its own accuracy limits)
    info["error_dt_coarsened"] = bool(float(companion.info["dt_sub"]) > 1.5 * h)
    info["error_wall_time"] = fine.wall_time + companion.wall_time
    fine.info.update(info)
    return fine


def _met(result, rtol: float, atol: float) -> bool:
    return all(err <= rtol * abs(result.mean_rate(name, *result.info["error_window"]))
               + atol for name, err in result.info["rate_error"].items())


def run_to_tolerance(network, run, t_end: float, dt: float, options: dict, rtol: float,
                     atol: float = 0.0, window=None, max_refinements: int = MAX_REFINEMENTS,
                     order: float = ERROR_ORDER):
    """Refine grids and internal step until the estimated rate error is within tolerance.

    Starts from the populations' grids (or defaults) at the engine's internal step; while
    any population's :func:`estimate_run` error exceeds ``rtol * |rate| + atol``, doubles
    the cells of every axis and halves the internal step cap. Each level is sized against
    ``max_memory`` / ``max_steps`` (:mod:`popdens._limits`) before it runs; if the next
    level would exceed them, or ``max_refinements`` levels are spent, the finest run is
    returned with a ``RuntimeWarning`` and ``info["rtol_met"] = False``.

    Returns
    -------
    Result
        The accepted (finest) run, with the estimate's ``info`` keys, ``info["rtol"]``,
        ``info["rtol_met"]`` and ``info["refinements"]`` (levels beyond the start).
    """
    grids = _resolved_grids(network, dt)
    result = estimate_run(network, run, t_end, dt, options, grids, window, order)
    level, reason = 0, ""
    while not _met(result, rtol, atol):
        if level >= max_refinements:
            reason = f"max_refinements={max_refinements} spent"
            break
        finer = {name: refined(g) for name, g in grids.items()}
        step_options = {**options, "max_substep": float(result.info["dt_sub"]) / 2}
        try:
            _run_on(network, finer, _limits_check(network), t_end, dt,
                    step_options)
        except _limits.ResourceLimitError as exc:
            reason = f"the next refinement exceeds a resource limit ({exc})"
            break
        grids, level = finer, level + 1
        result = estimate_run(network, run, t_end, dt, step_options, grids, window, order)
    met = not reason
    if not met:
        worst = max(result.info["rate_error"].items(), key=lambda kv: kv[1])
        warnings.warn(f"rtol={rtol!r} not reached: estimated rate error {worst[1]:.3g} Hz "
                      f"for {worst[0]!r} on grid {grids[worst[0]].shape}; {reason}",
                      RuntimeWarning, stacklevel=3)
    result.info.update({"rtol": rtol, "rtol_met": met, "refinements": level})
    return result


def _limits_check(network):
    """A stand-in for ``run`` that only sizes the run against its limits."""
    def check(t_end_, dt_, **options):
        run_limits = _limits.limits(options.pop("max_memory", None),
                                    options.pop("max_steps", None))
        _limits.check_run(network, t_end_, dt_, "density", options, run_limits)
    return check


def check_tolerance(rtol, atol, max_refinements) -> tuple[float, float, int]:
    """Validate ``rtol``, ``atol`` and ``max_refinements`` before anything runs."""
    for name, value in (("rtol", rtol), ("atol", atol)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if rtol <= 0 and atol <= 0:
        raise ValueError(f"rtol must be > 0 (or atol > 0), got rtol={rtol!r}")
    if isinstance(max_refinements, bool) or not isinstance(max_refinements, int) or \
            max_refinements < 0:
        raise ValueError(f"max_refinements must be an int >= 0, got {max_refinements!r}")
    return float(rtol), float(atol), max_refinements
