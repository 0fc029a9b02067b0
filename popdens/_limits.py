"""Resource limits: a run is sized before anything is allocated or compiled.

:func:`check_run` estimates the memory a run needs (time tables, grids, recorded frames,
delay buffers, Monte Carlo neurons, synapses and ring buffers) and its number of internal
steps, and refuses a run beyond the limits with a :class:`ResourceLimitError` that names
the parameter responsible, the estimate and how to raise the limit. ``Network.run`` calls
it before dispatching to a backend; the backends call :func:`check_substeps` once they know
their internal step (which may depend on the model), again before allocating.

Limits: ``max_memory`` (bytes, or a string such as ``"8GB"``; default
:func:`default_max_memory`) and ``max_steps`` (internal steps; default
:data:`DEFAULT_MAX_STEPS`), given to ``Network.run`` or to ``popdens run --max-memory``.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import numbers
import os
import re
from dataclasses import dataclass

from .backends.common import MC_DEFAULT_INTERNAL_DT, check_sizes
from .models.lif import LIF

__all__ = ["ResourceLimitError", "Limits", "parse_memory", "default_max_memory",
           "check_run", "check_substeps", "check_allocation", "current", "active",
           "DEFAULT_MAX_STEPS", "format_bytes"]

DEFAULT_MAX_MEMORY = 4 * 2**30
"""Default memory limit (bytes), lowered to half the physical memory on smaller machines."""
DEFAULT_MAX_STEPS = 10**9
"""Default limit on internal steps (reporting steps times sub-steps): about a day of
compiled stepping for a small grid."""

# Bytes per unit, from the peak resident memory of runs of 4e6 cells or neurons (numpy
# temporaries included; measured 161 per cell of a 1D grid, 241 of a 2D ReducedHH grid,
# 48 per Monte Carlo neuron, LIF or ReducedHH), rounded up.
DENSITY_1D_BYTES_PER_CELL = 200
DENSITY_ND_BYTES_PER_CELL = 150           # plus DENSITY_ND_BYTES_PER_AXIS per dimension
DENSITY_ND_BYTES_PER_AXIS = 60
MC_BYTES_PER_NEURON = 80
# per reporting step and per time table (rates, refractory fractions, input rates, and
# their copies in the Result)
BYTES_PER_TABLE_ENTRY = 8

_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40,
          "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_MEMORY = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*$")
_RAISE_HINT = ("raise the limit with net.run(..., {option}=...) or popdens run "
               "--{flag} ...")


class ResourceLimitError(ValueError):
    """A run that would exceed ``max_memory`` or ``max_steps``.

    Attributes
    ----------
    parameter : str
        The parameter that makes the run large (``"n_neurons"``, ``"t_end"``, ...).
    path : tuple
        Where that parameter sits in a scenario file (for ``popdens check``).
    estimate : float
        The estimated bytes or internal steps.
    """

    def __init__(self, message: str, parameter: str, path: tuple, estimate: float):
        super().__init__(message)
        self.parameter = parameter
        self.path = path
        self.estimate = estimate


@dataclass(frozen=True)
class Limits:
    """Memory (bytes) and internal-step limits of a run."""

    max_memory: int
    max_steps: int


def format_bytes(n: float) -> str:
    """``n`` bytes in decimal units (``"1.5 GB"``)."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def default_max_memory() -> int:
    """4 GiB, or half the physical memory where that is smaller."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return DEFAULT_MAX_MEMORY
    return int(min(DEFAULT_MAX_MEMORY, physical // 2)) if physical > 0 else \
        DEFAULT_MAX_MEMORY


def parse_memory(value, name: str = "max_memory") -> int:
    """Bytes from a number or a string such as ``"8GB"``, ``"512 MiB"``, ``"2e9"``.

    Decimal units (kB, MB, GB, TB) are powers of 1000, binary ones (KiB, MiB, GiB, TiB,
    and the bare K, M, G, T) powers of 1024.
    """
    if isinstance(value, str):
        match = _MEMORY.match(value)
        unit = match.group(2).upper() if match else None
        if match is None or unit not in _UNITS:
            raise ValueError(f"{name} must be a number of bytes or a size such as '8GB' "
                             f"or '512MiB', got {value!r}")
        size = float(match.group(1)) * _UNITS[unit]
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        size = float(value)
    else:
        raise TypeError(f"{name} must be a number of bytes or a string such as '8GB', "
                        f"got {value!r}")
    if not (math.isfinite(size) and size > 0):
        raise ValueError(f"{name} must be a finite size > 0, got {value!r}")
    return int(size)


def _parse_steps(value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not math.isfinite(float(value)) or value < 1:
        raise ValueError(f"max_steps must be a number >= 1, got {value!r}")
    return int(value)


def limits(max_memory=None, max_steps=None) -> Limits:
    """The limits of a run, defaults filled in."""
    memory = default_max_memory() if max_memory is None else parse_memory(max_memory)
    steps = DEFAULT_MAX_STEPS if max_steps is None else _parse_steps(max_steps)
    return Limits(memory, steps)


_ACTIVE: contextvars.ContextVar = contextvars.ContextVar("popdens_limits", default=None)


def current() -> Limits:
    """The limits of the run in progress (defaults outside ``Network.run``)."""
    active_limits = _ACTIVE.get()
    return limits() if active_limits is None else active_limits


@contextlib.contextmanager
def active(run_limits: Limits):
    """Make ``run_limits`` the :func:`current` limits within the block."""
    token = _ACTIVE.set(run_limits)
    try:
        yield run_limits
    finally:
        _ACTIVE.reset(token)


# --- estimates ---------------------------------------------------------------------------
@dataclass
class _Item:
    """One memory item: bytes, the parameter responsible and its scenario key path."""

    what: str
    nbytes: float
    parameter: str
    path: tuple


def _frames(record_times, record_every, n_steps: int) -> int:
    try:
        count = len(record_times) if hasattr(record_times, "__len__") else 1
    except TypeError:
        count = 1
    if isinstance(record_every, numbers.Integral) and not isinstance(record_every, bool) \
            and record_every >= 1:
        count += n_steps // int(record_every) + 1
    return count


def _sizes(network, n_neurons) -> dict:
    return check_sizes(network, n_neurons)


def _time_tables(network, n_steps: int, backend: str) -> _Item:
    n_pop = len(network.populations)
    n_conn = len(network.connections)
    # rates and refractory fractions (and their Result copies), input-rate tables, the
    # source-rate evaluation, Monte Carlo counts and diffusion tables
    tables = 4 * n_pop + 2 * n_conn + 6 + (4 * n_pop if backend == "montecarlo" else 0)
    return _Item(f"time tables ({n_steps:,} reporting steps)",
                 float(tables) * n_steps * BYTES_PER_TABLE_ENTRY, "t_end",
                 ("run", "t_end"))


def _grid_items(grids: dict, frames: int, backend: str) -> list[_Item]:
    items = []
    total_cells = sum(g.num_cells for g in grids.values())
    for name, grid in grids.items():
        per_cell = (DENSITY_1D_BYTES_PER_CELL if grid.ndim == 1 else
                    DENSITY_ND_BYTES_PER_CELL + DENSITY_ND_BYTES_PER_AXIS * grid.ndim)
        if backend == "density":
            items.append(_Item(f"grid of population {name!r} ({grid.num_cells:,} cells)",
                               float(per_cell) * grid.num_cells, f"grid of {name!r}",
                               ("populations", name, "grid")))
    if frames:
        # the recorded frames, and their per-population copies in the Result
        items.append(_Item(f"{frames:,} recorded density frames of {total_cells:,} cells",
                           2.0 * frames * total_cells * 8, "record_times",
                           ("run", "record_times")))
    return items


def _delay_steps(conn, step: float) -> float:
    try:
        return conn.delay.support_end() / step
    except (ArithmeticError, ValueError):
        return math.inf


def _lag_item(network, step: float, what: str) -> _Item | None:
    """Delay lag tables at resolution ``step`` (one weight per lag)."""

    worst, total = None, 0.0
    for k, conn in enumerate(network.connections):
        if conn.pre.name not in network.populations:
            continue
        lags = _delay_steps(conn, step) + 3
        total += 3 * lags * 8   # weights, folded copy, history column
        if worst is None or lags > worst[0]:
            worst = (lags, conn, k)
    if worst is None:
        return None
    return _Item(f"{what} (longest: {worst[1].label}, {worst[0]:.3g} lags)", total,
                 f"delay of connection {worst[1].label}", ("connections", worst[2], "delay"))


def _montecarlo_items(network, dt: float, sizes: dict, options: dict) -> list[_Item]:

    total = float(sum(sizes.values()))
    one_d = all(isinstance(p.model, LIF) for p in network.populations.values())
    items = [_Item(f"{total:,.0f} Monte Carlo neurons", MC_BYTES_PER_NEURON * total,
                   "n_neurons", ("run", "montecarlo", "n_neurons"))]
    connectivity = options.get("connectivity") or ("fixed_indegree" if one_d else "poisson")
    spiking = [(k, c) for k, c in enumerate(network.connections)
               if c.pre.name in network.populations and c.input == "jump"]
    if one_d and connectivity == "fixed_indegree" and spiking:
        synapses = 0.0
        for _, conn in spiking:
            n_syn = conn.n_syn if math.isfinite(conn.n_syn) else math.inf
            # partners, targets, per-synapse delays and their float64 draw
            synapses += n_syn * sizes.get(conn.post.name, 0) * 20
        k, conn = max(spiking, key=lambda kc: kc[1].n_syn * sizes[kc[1].post.name])
        items.append(_Item("synapses of the fixed in-degree wiring", synapses,
                           f"n_syn of connection {conn.label}", ("connections", k, "n_syn")))
        channels = 1 + len({c.reversal for _, c in spiking if c.reversal is not None})
        longest = max(_delay_steps(c, dt) for _, c in spiking)
        ring = math.floor(longest + 1.5) + 2 if math.isfinite(longest) else math.inf
        k, conn = max(spiking, key=lambda kc: _delay_steps(kc[1], dt))
        items.append(_Item(f"spike ring buffers ({channels} x {ring:.3g} steps x "
                           f"{total:,.0f} neurons)", channels * ring * total * 8,
                           f"delay of connection {conn.label} (in steps of dt)",
                           ("connections", k, "delay")))
    elif spiking:
        item = _lag_item(network, dt, "delay lag tables")
        if item is not None:
            items.append(item)
    record_spikes = options.get("record_spikes", 0)
    if isinstance(record_spikes, numbers.Integral) and record_spikes > 0:
        recorded = sum(min(int(record_spikes), n) for n in sizes.values())
        items.append(_Item(f"spike record of {recorded:,} neurons (initial)",
                           4.0 * recorded * 16, "record_spikes",
                           ("run", "montecarlo", "record_spikes")))
    return items


def _internal_steps(network, n_steps: int, dt: float, backend: str, options: dict
                    ) -> tuple[float, str, tuple]:
    """Internal steps known before the backend prepares: ``(steps, parameter, path)``."""

    if backend == "density":
        bound = options.get("max_substep")
        if isinstance(bound, numbers.Real) and not isinstance(bound, bool) and bound > 0:
            n_sub = max(1.0, math.ceil(dt / bound - 1e-9))
            if n_sub > 1:
                return n_steps * n_sub, "max_substep", ("run", "density", "max_substep")
        return float(n_steps), "t_end", ("run", "t_end")
    if all(isinstance(p.model, LIF) for p in network.populations.values()):
        return float(n_steps), "t_end", ("run", "t_end")
    internal = options.get("internal_dt")
    if isinstance(internal, numbers.Real) and not isinstance(internal, bool) and \
            internal > 0:
        n_sub = max(1.0, math.ceil(dt / internal - 1e-9))
        return n_steps * n_sub, "internal_dt", ("run", "montecarlo", "internal_dt")
    try:
        internal = MC_DEFAULT_INTERNAL_DT
    except ImportError:     # the N-D module is optional (or replaced, as in tests)
        internal = dt
    return n_steps * max(1.0, math.ceil(dt / internal - 1e-9)), "t_end", ("run", "t_end")


def _steps_error(steps: float, parameter: str, path: tuple, detail: str,
                 run_limits: Limits) -> ResourceLimitError:
    return ResourceLimitError(
        f"{parameter}: the run would take {steps:.3g} steps ({detail}), more than "
        f"max_steps = {run_limits.max_steps:.3g}; shorten the run or use a larger step, or "
        + _RAISE_HINT.format(option="max_steps", flag="max-steps"),
        parameter, path, steps)


def _memory_error(items: list[_Item], run_limits: Limits) -> ResourceLimitError:
    total = sum(item.nbytes for item in items)
    worst = max(items, key=lambda item: item.nbytes)
    return ResourceLimitError(
        f"{worst.parameter}: the run would need about {format_bytes(total)} of memory "
        f"(largest: {worst.what}, {format_bytes(worst.nbytes)}), more than max_memory = "
        f"{format_bytes(run_limits.max_memory)}; make it smaller, or "
        + _RAISE_HINT.format(option="max_memory", flag="max-memory"),
        worst.parameter, worst.path, total)


def check_run(network, t_end: float, dt: float, backend: str, options: dict,
              run_limits: Limits) -> dict:
    """Refuse a run of ``network`` that would exceed ``run_limits``; nothing is allocated.

    Parameters
    ----------
    network : popdens.Network
    t_end, dt : float
        Validated duration and reporting step (s).
    backend : {"density", "montecarlo"}
    options : dict
        The backend options (``record_times``, ``n_neurons``, ``max_substep``, ...).
    run_limits : Limits

    Returns
    -------
    dict
        ``{"memory": bytes, "steps": internal steps}``: the estimates.

    Raises
    ------
    ResourceLimitError
        Naming the parameter, the estimate and how to raise the limit.
    """
    n_steps = max(1, round(t_end / dt))
    steps, parameter, path = _internal_steps(network, n_steps, dt, backend, options)
    if n_steps > run_limits.max_steps:
        raise _steps_error(n_steps, "t_end", ("run", "t_end"),
                           f"t_end / dt = {t_end!r} / {dt!r} reporting steps", run_limits)
    if steps > run_limits.max_steps:
        raise _steps_error(steps, parameter, path, f"{n_steps:,} reporting steps of "
                           f"dt = {dt!r} s, each split by {parameter}", run_limits)
    items = [_time_tables(network, n_steps, backend)]
    grids = {name: network.grid_of(pop, dt=dt)
             for name, pop in network.populations.items()}
    frames = _frames(options.get("record_times", ()), options.get("record_every"), n_steps)
    items += _grid_items(grids, frames, backend)
    if backend == "montecarlo":
        sizes = _sizes(network, options.get("n_neurons", 10_000))
        items += _montecarlo_items(network, dt, sizes, options)
    total = sum(item.nbytes for item in items)
    if total > run_limits.max_memory:
        raise _memory_error(items, run_limits)
    return {"memory": total, "steps": steps}


def check_substeps(network, n_steps: int, n_sub: int, dt_sub: float,
                   max_substep: float | None) -> None:
    """Refuse, with the :func:`current` limits, a density run whose internal step (known
    to the backend only) makes too many steps or too long delay lag tables."""
    run_limits = current()
    steps = float(n_steps) * n_sub
    if steps > run_limits.max_steps:
        bounded = max_substep is not None and math.ceil(
            n_sub * dt_sub / max_substep - 1e-9) >= n_sub
        parameter = "max_substep" if bounded else "the populations' time constants " \
                                                  "(tau_m) and input rates"
        raise _steps_error(steps, parameter, ("run", "density", "max_substep"),
                           f"{n_steps:,} reporting steps, each split into {n_sub:.3g} "
                           f"sub-steps of {dt_sub:.3g} s", run_limits)
    item = _lag_item(network, dt_sub, "delay lag tables at the sub-step")
    if item is not None and item.nbytes > run_limits.max_memory:
        raise _memory_error([item], run_limits)


def check_allocation(nbytes: float, what: str, parameter: str) -> None:
    """Refuse to grow a buffer past the :func:`current` memory limit."""
    run_limits = current()
    if nbytes > run_limits.max_memory:
        raise _memory_error([_Item(what, float(nbytes), parameter, ())], run_limits)
