"""Backend-agnostic network description: sources, populations, connections.

A :class:`Network` only describes; ``Network.run`` hands it to a backend
(``"density"`` or ``"montecarlo"``) that prepares arrays and integrates.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from ._checks import as_real, check_nonnegative, check_positive
from .grid import Grid

__all__ = ["Network", "PoissonSource", "Population", "Connection", "piecewise",
           "rate_table", "register_backend", "INPUT_KINDS", "BACKENDS"]

INPUT_KINDS = ("jump", "diffusion")
BACKENDS = ("density", "montecarlo")


class piecewise:
    """Piecewise-constant rate: ``rates[k]`` (Hz) for ``times[k] <= t < times[k+1]``.

    Before ``times[0]`` the rate is 0; after the last time it stays at ``rates[-1]``.

    Examples
    --------
    >>> step = piecewise([0.0, 0.1], [500.0, 1000.0])   # 500 Hz, then 1 kHz from 0.1 s
    """

    def __init__(self, times, rates):
        times = np.asarray(times, dtype=float)
        rates = np.asarray(rates, dtype=float)
        if times.ndim != 1 or times.size == 0 or times.shape != rates.shape:
            raise ValueError(f"piecewise needs equal-length 1D times and rates, got shapes "
                             f"{times.shape} and {rates.shape}")
        if not np.all(np.isfinite(times)) or np.any(np.diff(times) <= 0):
            raise ValueError(f"piecewise times must be finite and strictly increasing, got "
                             f"{times.tolist()}")
        if not np.all(np.isfinite(rates)) or np.any(rates < 0):
            raise ValueError(f"piecewise rates must be finite and >= 0, got {rates.tolist()}")
        self.times = times
        self.rates = rates

    def __call__(self, t):
        t = np.asarray(t, dtype=float)
        k = np.searchsorted(self.times, t, side="right") - 1
        out = np.where(k >= 0, self.rates[np.clip(k, 0, None)], 0.0)
        return out if out.ndim else float(out)

    def mean(self, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
        """Exact mean rate over each interval ``[t0, t1)``."""
        # integral of the step function from -inf: piecewise linear in t
        knots = self.times
        cum = np.concatenate([[0.0], np.cumsum(self.rates[:-1] * np.diff(knots))])

        def integral(t):
            k = np.searchsorted(knots, t, side="right") - 1
            kc = np.clip(k, 0, None)
            return np.where(k >= 0, cum[kc] + self.rates[kc] * (t - knots[kc]), 0.0)

        return (integral(t1) - integral(t0)) / (t1 - t0)

    def __repr__(self) -> str:
        return f"piecewise({self.times.tolist()}, {self.rates.tolist()})"


def _check_rate_spec(name: str, rate):
    if isinstance(rate, piecewise) or callable(rate):
        return rate
    if isinstance(rate, numbers.Real) and not isinstance(rate, bool):
        return check_nonnegative(f"rate of source {name!r}", rate)
    raise TypeError(f"rate of source {name!r} must be a float (Hz), a callable t -> Hz or "
                    f"pd.piecewise(times, rates), got {rate!r}")


def rate_table(name: str, rate, t0: np.ndarray, dt: float) -> np.ndarray:
    """Mean rate (Hz) of a rate spec over each step ``[t0[k], t0[k] + dt)``.

    Constants and :class:`piecewise` are exact; callables are averaged with 2-point
    Gauss-Legendre quadrature. Raises ``ValueError`` on NaN, inf or negative values.
    """
    t0 = np.asarray(t0, dtype=float)
    if isinstance(rate, piecewise):
        out = rate.mean(t0, t0 + dt)
    elif callable(rate):
        offset = 0.5 * dt / math.sqrt(3.0)
        vals = []
        for t in (t0 + 0.5 * dt - offset, t0 + 0.5 * dt + offset):
            try:
                v = np.asarray(rate(t), dtype=float)
            except Exception:
                # scalar-only callables
                v = np.array([float(rate(float(x))) for x in t])
            if v.shape != t.shape:
                v = np.broadcast_to(v, t.shape) if v.size == 1 else \
                    np.array([float(rate(float(x))) for x in t])
            vals.append(v)
        out = 0.5 * (vals[0] + vals[1])
    else:
        out = np.full(t0.shape, float(rate))
    bad = ~np.isfinite(out) | (out < 0)
    if np.any(bad):
        k = int(np.flatnonzero(bad)[0])
        raise ValueError(f"rate of source {name!r} must be finite and >= 0; it is "
                         f"{out[k]!r} Hz at t={t0[k]:.6g} s")
    return out


@dataclass(eq=False)
class PoissonSource:
    """External Poisson spike source; every target synapse sees an independent train.

    Attributes
    ----------
    name : str
    rate : float | callable | piecewise
        Rate in Hz.
    """

    name: str
    rate: object
    network: Network = field(repr=False)


@dataclass(eq=False)
class Population:
    """A population of identical neurons of one ``model`` on a phase-space ``grid``."""

    name: str
    model: object
    grid: Grid | None
    init: object
    network: Network = field(repr=False)


@dataclass(eq=False)
class Connection:
    """Input from ``pre`` (source or population) to ``post`` (population).

    ``post`` receives Poisson events at rate ``n_syn * rate_pre(t - delay)``; each moves
    ``v`` by ``weight`` (V) with ``input="jump"``, or the connection is replaced by its
    diffusion (Fokker-Planck) limit with ``input="diffusion"``.
    """

    pre: PoissonSource | Population
    post: Population
    weight: float
    n_syn: float
    delay: float
    input: str


class Network:
    """A network of neuron populations and Poisson sources.

    Examples
    --------
    >>> import popdens as pd
    >>> net = pd.Network()
    >>> ext = net.add_poisson("ext", rate=800.0)
    >>> pop = net.add_population("E", pd.LIF(tau_m=0.05, v_th=1.0, v_reset=0.0))
    >>> _ = net.connect(ext, pop, weight=0.03)
    """

    def __init__(self):
        self.sources: dict[str, PoissonSource] = {}
        self.populations: dict[str, Population] = {}
        self.connections: list[Connection] = []

    # --- building ---------------------------------------------------------------------
    def _check_new_name(self, name):
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty string, got {name!r}")
        if name in self.sources or name in self.populations:
            raise ValueError(f"name {name!r} is already used in this network")

    def add_poisson(self, name: str, rate) -> PoissonSource:
        """Add an external Poisson source of ``rate`` Hz (float, callable t -> Hz, or
        :class:`piecewise`)."""
        self._check_new_name(name)
        src = PoissonSource(name, _check_rate_spec(name, rate), self)
        self.sources[name] = src
        return src

    def add_population(self, name: str, model, grid: Grid | None = None,
                       init=None) -> Population:
        """Add a population of ``model`` neurons.

        Parameters
        ----------
        name : str
        model : neuron model, e.g. :class:`popdens.LIF`
        grid : Grid or None
            Phase-space grid; ``None`` lets the model choose one from its inputs at run
            time (``model.default_grid``).
        init : None or callable
            ``None`` starts every neuron at the model's resting state; a callable of the
            cell centers (one array per state variable) gives an unnormalised initial
            density, honoured by both backends.
        """
        self._check_new_name(name)
        if not hasattr(model, "state_vars"):
            raise TypeError(f"model must be a popdens neuron model, got {model!r}")
        if grid is not None:
            model.validate_grid(grid)
        if init is not None and not callable(init):
            raise TypeError(f"init must be None or a callable on cell centers, got {init!r}")
        pop = Population(name, model, grid, init, self)
        self.populations[name] = pop
        return pop

    def _resolve(self, obj, role: str, allow_source: bool):
        if isinstance(obj, str):
            if obj in self.populations:
                return self.populations[obj]
            if allow_source and obj in self.sources:
                return self.sources[obj]
            raise ValueError(f"{role} {obj!r} is not a population"
                             f"{' or source' if allow_source else ''} of this network")
        if isinstance(obj, (Population, PoissonSource)):
            if obj.network is not self:
                raise ValueError(f"{role} {obj.name!r} belongs to another network")
            if isinstance(obj, PoissonSource) and not allow_source:
                raise ValueError(f"{role} {obj.name!r} is a source; it cannot receive input")
            return obj
        raise TypeError(f"{role} must be a population, a source or a name, got {obj!r}")

    def connect(self, pre, post, weight: float, n_syn: float = 1, delay: float = 0.0,
                input: str = "jump") -> Connection:
        """Connect ``pre`` to ``post``.

        Parameters
        ----------
        pre : PoissonSource, Population or name
        post : Population or name
        weight : float
            Jump of ``v`` per event (V); negative is inhibitory.
        n_syn : float, default 1
            Number of synapses: ``post`` sees Poisson rate ``n_syn * rate_pre``.
        delay : float, default 0
            Transmission delay (s), >= 0.
        input : {"jump", "diffusion"}
            Exact finite jumps, or their diffusion (Fokker-Planck) approximation.
        """
        pre = self._resolve(pre, "pre", allow_source=True)
        post = self._resolve(post, "post", allow_source=False)
        weight = as_real("weight", weight)
        if weight == 0.0:
            raise ValueError("weight must be nonzero, got 0.0")
        n_syn = as_real("n_syn", n_syn)
        if n_syn < 0:
            raise ValueError(f"n_syn must be >= 0, got {n_syn!r}")
        delay = check_nonnegative("delay", delay)
        if input not in INPUT_KINDS:
            raise ValueError(f"input must be one of {INPUT_KINDS}, got {input!r}")
        if isinstance(pre, Population):
            raise NotImplementedError("population-to-population coupling is not available "
                                      "yet; connect Poisson sources")
        conn = Connection(pre, post, weight, n_syn, delay, input)
        self.connections.append(conn)
        return conn

    # --- queries used by backends --------------------------------------------------------
    def inputs_of(self, pop: Population) -> list[Connection]:
        return [c for c in self.connections if c.post is pop]

    def source_rate_table(self, conn: Connection, t0: np.ndarray, dt: float) -> np.ndarray:
        """Poisson event rate ``n_syn * rate(t - delay)`` seen by ``conn.post`` in each
        step ``[t0[k], t0[k] + dt)`` (Hz)."""
        src = conn.pre
        return conn.n_syn * rate_table(src.name, src.rate, np.asarray(t0) - conn.delay, dt)

    def grid_of(self, pop: Population, t_end: float = 1.0, dt: float = 1e-4) -> Grid:
        """The population's grid, or the model's default for its inputs."""
        if pop.grid is not None:
            return pop.grid
        t0 = np.arange(0.0, t_end, dt)[:20_000] if t_end > 0 else np.zeros(1)
        inputs = []
        for c in self.inputs_of(pop):
            peak = float(np.max(self.source_rate_table(c, t0, dt))) if t0.size else 0.0
            inputs.append((peak, c.weight, c.input))
        grid = pop.model.default_grid(inputs)
        pop.model.validate_grid(grid)
        return grid

    # --- running ------------------------------------------------------------------------
    def run(self, t_end: float, dt: float, backend: str = "density", **options):
        """Simulate the network from t = 0 to ``t_end`` with output step ``dt``.

        Parameters
        ----------
        t_end, dt : float
            Duration and reporting step (s).
        backend : {"density", "montecarlo"}
        **options
            Backend options: ``record_times`` (both), ``scheme`` (density),
            ``n_neurons`` and ``seed`` (montecarlo).

        Returns
        -------
        Result
        """
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        t_end = check_positive("t_end", t_end)
        dt = check_positive("dt", dt)
        if dt > t_end:
            raise ValueError(f"dt must be <= t_end, got dt={dt!r}, t_end={t_end!r}")
        if not self.populations:
            raise ValueError("the network has no populations; add one with add_population")
        if backend not in _BACKEND_RUNNERS:
            raise ValueError(f"backend {backend!r} is not available (not imported)")
        return _BACKEND_RUNNERS[backend](self, t_end, dt, **options)


# Backends register their runner here when imported (popdens/__init__ imports them), so
# this description layer never imports the solvers above it.
_BACKEND_RUNNERS: dict = {}


def register_backend(name: str, runner) -> None:
    """Register ``runner(network, t_end, dt, **options) -> Result`` as ``backend=name``."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend name {name!r}; expected one of {BACKENDS}")
    _BACKEND_RUNNERS[name] = runner
