"""Backend-agnostic network description: sources, populations, connections.

A :class:`Network` only describes; ``Network.run`` hands it to a backend
(``"density"`` or ``"montecarlo"``) that prepares arrays and integrates.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from . import _limits, refine
from ._checks import as_real, check_nonnegative, check_positive
from .delays import Delay, as_delay
from .description import describe
from .grid import Grid
from .models.base import Model, ThresholdReset
from .rates import piecewise, sinusoid
from .synapses import with_delay

__all__ = ["Network", "PoissonSource", "Population", "RatePopulation", "Connection",
           "piecewise", "sinusoid", "rate_table", "register_backend",
           "register_coupled_runner", "INPUT_KINDS", "BACKENDS"]

INPUT_KINDS = ("jump", "diffusion")
RATE_METHODS = ("exact", "euler")
# Presynaptic rate (Hz) assumed when a default grid is sized for input from a population
# and the network's self-consistent rates are unknown (Network.grid_rates is None)
GRID_GUESS_RATE = 100.0
BACKENDS = ("density", "montecarlo")
# Steps of dt over which default grids read the sources' peak rates: a fixed window (not
# the run's length, so that split runs get the whole run's grid), never a table of a
# (possibly huge) whole run
GRID_WINDOW_STEPS = 20_000


def _check_rate_spec(name: str, rate):
    if isinstance(rate, (piecewise, sinusoid)) or callable(rate):
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
    if isinstance(rate, (piecewise, sinusoid)):
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


BOUNDARY_KINDS = ("reflect", "outflow", "absorb")


def _check_boundaries(model, boundaries) -> dict:
    """``{axis name: (lower kind, upper kind)}`` with defaults filled in, validated."""
    if boundaries is None:
        return {}
    if not isinstance(boundaries, dict):
        raise TypeError(f"boundaries must be a dict {{state variable: (lower, upper)}}, "
                        f"got {boundaries!r}")
    names = tuple(model.state_vars)
    if boundaries and len(names) < 2:
        raise NotImplementedError(
            f"boundaries apply to N-D populations; {type(model).__name__} is 1D (its grid "
            f"has a reflecting lower face and the threshold as upper face)")
    rule = model.spike_rule
    threshold = rule.var if isinstance(rule, ThresholdReset) else None
    out = {}
    for name, kinds in boundaries.items():
        if name not in names:
            raise ValueError(f"boundaries: {name!r} is not a state variable of "
                             f"{type(model).__name__} {names}")
        if kinds is None or isinstance(kinds, str):
            kinds = (kinds, kinds)
        if not isinstance(kinds, (tuple, list)) or len(kinds) != 2:
            raise ValueError(f"boundaries[{name!r}] must be a kind or a (lower, upper) "
                             f"pair of {BOUNDARY_KINDS}, got {kinds!r}")
        lower, upper = kinds
        if name == threshold:
            if upper not in (None, "threshold"):
                raise ValueError(f"boundaries[{name!r}]: the upper face of {name!r} is the "
                                 f"threshold of {type(model).__name__} (it fires); set "
                                 f"only the lower face, e.g. ({lower!r}, None)")
            upper = "threshold"
        for side, kind in (("lower", lower), ("upper", upper)):
            if kind is not None and kind not in BOUNDARY_KINDS and not (
                    side == "upper" and name == threshold):
                raise ValueError(f"boundaries[{name!r}] {side} face: {kind!r} is not one "
                                 f"of {BOUNDARY_KINDS}")
        out[name] = (lower or "reflect", upper or "reflect")
    return out


@dataclass(eq=False)
class Population:
    """A population of identical neurons of one ``model`` on a phase-space ``grid``."""

    name: str
    model: object
    grid: Grid | None
    init: object
    network: Network = field(repr=False)
    # per state variable: (lower, upper) face kind, see Network.add_population
    boundaries: dict = field(default_factory=dict)


@dataclass(eq=False)
class RatePopulation:
    r"""A rate unit: a deterministic firing rate ``r(t)`` (Hz) obeying

    .. math:: \tau \frac{dr}{dt} = -r + f\Big(b + I(t) + \sum_c w_c\, n_c\,
              (p_c * r_{\mathrm{pre}(c)})(t)\Big),

    with ``f`` the transfer function, ``b`` the bias, ``I`` the external drive and the
    sum over the connections into it (weight ``w_c`` per Hz of presynaptic rate, ``n_c``
    synapses, delay or synaptic kernel ``p_c``). See :meth:`Network.add_rate_population`.
    """

    name: str
    tau: float
    transfer: object
    bias: float
    drive: object
    r0: float
    method: str
    network: Network = field(repr=False)


@dataclass(eq=False)
class Connection:
    """Input from ``pre`` (source or population) to ``post`` (population).

    ``post`` receives Poisson events at rate ``n_syn * rate_pre(t - delay)`` (convolved
    with the delay distribution when ``delay`` is one); each moves ``v`` by ``weight``
    (V) with ``input="jump"``, or by ``weight * (reversal - v)`` (``weight``
    dimensionless) for a conductance synapse (``reversal`` not None), or the connection
    is replaced by its diffusion (Fokker-Planck) limit with ``input="diffusion"``.
    With a ``synapse`` filter, ``delay`` is the connection's whole causal kernel (the
    filter shifted by ``transmission_delay``): the backends read ``delay`` only.
    """

    pre: PoissonSource | Population
    post: Population
    weight: float
    n_syn: float
    delay: Delay
    input: str
    reversal: float | None = None
    # a synaptic filter (popdens.synapses); ``delay`` is then the filter after the
    # transmission delay, which is kept in ``transmission_delay``
    synapse: object = None
    transmission_delay: Delay | None = None

    @property
    def label(self) -> str:
        return f"{self.pre.name!r} -> {self.post.name!r}"


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
        # (what the estimate depends on, the estimate): grid_rates runs a root finder
        self._grid_rates_memo: tuple = (None, None)
        self.rate_populations: dict[str, RatePopulation] = {}

    # --- building ---------------------------------------------------------------------
    def _check_new_name(self, name):
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty string, got {name!r}")
        if name in self.sources or name in self.populations or name in self.rate_populations:
            raise ValueError(f"name {name!r} is already used in this network")

    def add_poisson(self, name: str, rate) -> PoissonSource:
        """Add an external Poisson source of ``rate`` Hz (float, callable t -> Hz, or
        :class:`piecewise`)."""
        self._check_new_name(name)
        src = PoissonSource(name, _check_rate_spec(name, rate), self)
        self.sources[name] = src
        return src

    def add_population(self, name: str, model, grid: Grid | None = None,
                       init=None, boundaries: dict | None = None) -> Population:
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
        boundaries : dict or None
            Outer faces of the grid of an N-D population (dimension >= 2), per state
            variable: ``{"n": ("absorb", "reflect")}`` sets its lower and upper face, a
            single kind sets both, ``None`` keeps a face's default. Kinds:
            ``"reflect"`` (default: no flux; jumps past the face pile into the edge
            cell), ``"outflow"`` (the drift carries mass out where the flow leaves the
            grid; jumps still pile) and ``"absorb"`` (drift and jumps both remove the
            mass that crosses). Removed mass is reported per step in
            ``Result.info["absorbed"]``. The threshold face of a reset model (upper face
            of ``v`` of LIFSynaptic) always fires: leave it ``None`` (it is recorded as
            ``"threshold"``). The density backend
            only: Monte Carlo neurons have no grid (non-default boundaries raise there).
        """
        self._check_new_name(name)
        if not isinstance(model, Model):
            raise TypeError(f"model must be a popdens.Model (LIF, HodgkinHuxley, ... or "
                            f"a subclass of popdens.Model), got {type(model).__name__}")
        if grid is not None:
            model.validate_grid(grid)
        if init is not None and not callable(init):
            raise TypeError(f"init must be None or a callable on cell centers, got {init!r}")
        pop = Population(name, model, grid, init, self, _check_boundaries(model, boundaries))
        self.populations[name] = pop
        return pop

    def add_rate_population(self, name: str, tau: float, transfer, bias: float = 0.0,
                            drive=None, r0: float = 0.0, method: str = "exact"
                            ) -> RatePopulation:
        r"""Add a rate unit, :math:`\tau\, dr/dt = -r + f(b + I(t) + \sum_c w_c n_c
        r_c(t))` (see :class:`RatePopulation`).

        Inputs come from :meth:`connect` with the unit as ``post``: from a source, a
        spiking population (its firing rate) or another rate unit, each adding
        ``weight * n_syn`` times the (delayed, filtered) presynaptic rate to the argument
        of ``f``. As ``pre`` of a spiking population, the unit drives it as a Poisson
        source of rate ``n_syn * r(t)`` (with jumps of ``weight``), on both backends; in
        the Monte Carlo the unit itself stays deterministic.

        Parameters
        ----------
        name : str
        tau : float
            Time constant (s), > 0.
        transfer : callable
            ``f``: input -> rate (Hz), elementwise, values finite and >= 0; e.g.
            ``pd.transfer.sigmoid(max_rate=100.0, gain=2.0, threshold=1.0)``.
        bias : float, default 0
            Constant added to the input.
        drive : None, float, callable t -> input, or pd.piecewise
            External input ``I(t)`` (the transfer's input units), averaged over each
            step; numbers and callables may be negative (``pd.piecewise`` may not).
        r0 : float, default 0
            Rate at t = 0 (Hz), >= 0. The rate before t = 0, seen through delays, is 0
            (as for spiking populations).
        method : {"exact", "euler"}
            ``"exact"``: exponential integration, exact for an input constant over each
            step (:func:`popdens.rate_units.rate_step`); ``"euler"``: forward Euler, first
            order in ``dt / tau`` (kept to show that error).
        """
        self._check_new_name(name)
        tau = check_positive("tau", tau)
        if not callable(transfer):
            raise TypeError(f"transfer must be a callable input -> rate (Hz), e.g. "
                            f"pd.transfer.sigmoid(...), got {transfer!r}")
        bias = as_real("bias", bias)
        if drive is not None and not callable(drive) and not hasattr(drive, "mean"):
            drive = as_real("drive", drive)
        r0 = check_nonnegative("r0", r0)
        if method not in RATE_METHODS:
            raise ValueError(f"method must be one of {RATE_METHODS}, got {method!r}")
        unit = RatePopulation(name, tau, transfer, bias, drive, r0, method, self)
        self.rate_populations[name] = unit
        return unit

    def _resolve(self, obj, role: str, allow_source: bool):
        if isinstance(obj, str):
            if obj in self.rate_populations:
                return self.rate_populations[obj]
            if obj in self.populations:
                return self.populations[obj]
            if allow_source and obj in self.sources:
                return self.sources[obj]
            raise ValueError(f"{role} {obj!r} is not a population"
                             f"{' or source' if allow_source else ''} of this network")
        if isinstance(obj, (Population, PoissonSource, RatePopulation)):
            if obj.network is not self:
                raise ValueError(f"{role} {obj.name!r} belongs to another network")
            if isinstance(obj, PoissonSource) and not allow_source:
                raise ValueError(f"{role} {obj.name!r} is a source; it cannot receive input")
            return obj
        raise TypeError(f"{role} must be a population, a source or a name, got {obj!r}")

    def connect(self, pre, post, weight: float, n_syn: float = 1, delay=0.0,
                input: str = "jump", reversal: float | None = None,
                synapse=None) -> Connection:
        """Connect ``pre`` to ``post``.

        Parameters
        ----------
        pre : PoissonSource, Population or name
            A source, or a population whose firing rate drives ``post`` (any graph,
            self-connections included).
        post : Population or name
        weight : float
            Jump of ``v`` per event (V); negative is inhibitory. With ``reversal``: the
            dimensionless fraction ``w`` in ``v -> v + w (reversal - v)``, 0 < w < 1.
        n_syn : float, default 1
            Number of synapses: ``post`` sees Poisson rate ``n_syn * rate_pre``. The
            Monte Carlo network with ``connectivity="fixed_indegree"`` needs an integer.
        delay : float or popdens.delays distribution, default 0
            Transmission delay (s), >= 0, or a distribution (``pd.delays.exponential``,
            ``gamma``, ``uniform``, ``kernel``): ``post`` sees the pre rate convolved with
            it. In the density backend a delay shorter than one internal step acts as one
            internal step when ``pre`` is a population (the coupling is explicit).
        input : {"jump", "diffusion"}
            Exact finite jumps, or their diffusion (Fokker-Planck) approximation.
        reversal : float, optional
            Reversal potential (V) of a conductance synapse.
        synapse : popdens.synapses filter, optional
            ``pd.synapses.psc(tau_s, n)`` or ``biexponential(tau_rise, tau_decay)``:
            ``post`` sees ``n_syn`` times the presynaptic rate filtered by the kernel
            (after the fixed ``delay``). For a spiking ``post`` this is the filtered
            rate as Poisson drive (see :mod:`popdens.synapses`); the Monte Carlo needs
            ``connectivity="poisson"`` for it.
        """
        conn = self._make_connection(pre, post, weight, n_syn, delay, input, reversal,
                                     synapse)
        self.connections.append(conn)
        return conn

    def _make_connection(self, pre, post, weight, n_syn, delay, input, reversal,
                         synapse=None) -> Connection:
        """A validated :class:`Connection` (not yet added to the network)."""
        pre = self._resolve(pre, "pre", allow_source=True)
        post = self._resolve(post, "post", allow_source=False)
        weight = as_real("weight", weight)
        if weight == 0.0:
            raise ValueError("weight must be nonzero, got 0.0")
        n_syn = as_real("n_syn", n_syn)
        if n_syn < 0:
            raise ValueError(f"n_syn must be >= 0, got {n_syn!r}")
        delay = as_delay(delay)
        if input not in INPUT_KINDS:
            raise ValueError(f"input must be one of {INPUT_KINDS}, got {input!r}")
        if isinstance(post, RatePopulation) and (input != "jump" or reversal is not None):
            raise ValueError(f"connection to rate unit {post.name!r}: a rate unit sums "
                             f"weight * n_syn * rate; input={input!r} and "
                             f"reversal={reversal!r} apply to spiking populations only")
        if reversal is not None:
            reversal = as_real("reversal", reversal)
            if not 0.0 < weight < 1.0:
                raise ValueError(f"a conductance synapse (reversal={reversal!r}) needs a "
                                 f"dimensionless weight in (0, 1), got weight={weight!r}")
            if input != "jump":
                raise ValueError("conductance synapses (reversal=...) take input='jump'; "
                                 "their diffusion limit is not implemented")
        if synapse is None:
            return Connection(pre, post, weight, n_syn, delay, input, reversal)
        return Connection(pre, post, weight, n_syn, with_delay(synapse, delay), input,
                          reversal, synapse, delay)

    def connect_matrix(self, pres, posts, W, n_syn=1, delay=0.0, **kw) -> list[Connection]:
        r"""Connect every pair with a nonzero weight: ``W[i, j]`` from ``pres[j]`` to
        ``posts[i]``.

        .. math:: \text{post}_i \text{ sees Poisson rate } \sum_j n_{ij}\,
                  (p_{ij} * r_j)(t) \text{ with jumps } W_{ij} \quad (W_{ij} \neq 0),

        as :meth:`connect` would give for each pair. Zero entries of ``W`` make no
        connection (whatever ``n_syn`` or ``delay`` hold there). Pairs are connected
        presynaptic population first (column ``j`` outer, row ``i`` inner). Everything
        is checked before any connection is added: on an error the network is unchanged.

        Parameters
        ----------
        pres, posts : sequence of Population, PoissonSource or name
            Presynaptic (columns of ``W``) and postsynaptic (rows of ``W``) populations.
        W : array_like, shape (len(posts), len(pres))
            Weights (V per event; dimensionless with ``reversal=``).
        n_syn : float or array_like of that shape, default 1
        delay : float, popdens.delays distribution, or array_like of that shape
            (an object array may hold distributions).
        **kw
            Passed to :meth:`connect` for every pair (``input``, ``reversal``,
            ``synapse``).

        Returns
        -------
        list of Connection
            The connections added, in the order above.
        """
        unknown = set(kw) - {"input", "reversal", "synapse"}
        if unknown:
            raise TypeError(f"connect_matrix got unknown keyword(s) {sorted(unknown)}; "
                            f"known: input, reversal, synapse")
        pres, posts = _as_list("pres", pres), _as_list("posts", posts)
        shape = (len(posts), len(pres))
        W = _matrix("W", W, shape, dtype=float)
        if not np.all(np.isfinite(W)):
            i, j = np.argwhere(~np.isfinite(W))[0]
            raise ValueError(f"W[{i}, {j}] must be finite, got {W[i, j]!r}")
        n_syn = _matrix("n_syn", n_syn, shape, dtype=float)
        delay = _matrix("delay", delay, shape, dtype=object)
        made = []
        for j, pre in enumerate(pres):
            for i, post in enumerate(posts):
                if W[i, j] == 0.0:
                    continue
                try:
                    made.append(self._make_connection(
                        pre, post, float(W[i, j]), float(n_syn[i, j]), delay[i, j],
                        kw.get("input", "jump"), kw.get("reversal"), kw.get("synapse")))
                except (TypeError, ValueError) as err:
                    raise type(err)(f"W[{i}, {j}] ({_name(pre)} -> {_name(post)}): "
                                    f"{err}") from err
        self.connections.extend(made)
        return made

    @classmethod
    def from_matrix(cls, models, W, names=None, n_syn=1, delay=0.0, grid=None,
                    init=None, sources=None, W_in=None, n_syn_in=1, delay_in=0.0,
                    **kw) -> Network:
        """A network of ``len(W)`` populations coupled by the square weight matrix ``W``.

        ``W[i, j]`` (V per event) connects population ``j`` to population ``i``, as in
        :meth:`connect_matrix`; zero entries make no connection.

        Parameters
        ----------
        models : Model or sequence of Model
            One model for all populations, or one per population.
        W : array_like, shape (N, N)
        names : sequence of str, optional
            Population names (default ``"P0"``, ``"P1"``, ...).
        n_syn, delay :
            Scalars or (N, N) arrays, as in :meth:`connect_matrix`.
        grid, init :
            One value for all populations or a sequence of N (see :meth:`add_population`).
        sources : dict, optional
            ``{name: rate}`` Poisson sources (:meth:`add_poisson`), S of them.
        W_in : array_like, shape (N, S), optional
            ``W_in[i, k]`` from source ``k`` (in the order of ``sources``) to population
            ``i``; required with ``sources``.
        n_syn_in, delay_in :
            Scalars or (N, S) arrays for the source connections. These are added before
            the recurrent ones.
        **kw
            ``input``, ``reversal``: passed to every connection.

        Examples
        --------
        >>> import numpy as np, popdens as pd
        >>> lif = pd.LIF(tau_m=0.02, v_th=0.02, v_reset=0.01)
        >>> net = pd.Network.from_matrix(lif, np.array([[0.1e-3, -0.4e-3], [0.1e-3, 0.0]]),
        ...                              names=["E", "I"], n_syn=[[40, 10], [40, 0]])
        >>> [c.label for c in net.connections]
        ["'E' -> 'E'", "'E' -> 'I'", "'I' -> 'E'"]
        """
        W = np.asarray(W, dtype=float) if not isinstance(W, np.ndarray) else W
        if W.ndim != 2 or W.shape[0] != W.shape[1]:
            raise ValueError(f"W must be a square (N, N) matrix of N populations, got "
                             f"shape {W.shape}")
        n = W.shape[0]
        names = [f"P{k}" for k in range(n)] if names is None else list(names)
        if len(names) != n:
            raise ValueError(f"names has {len(names)} entries; W has shape {W.shape}, "
                             f"so {n} populations")
        per = {key: _per_population(key, value, n)
               for key, value in (("models", models), ("grid", grid), ("init", init))}
        if (sources is None) != (W_in is None):
            raise ValueError("sources and W_in go together: give both or neither")
        net = cls()
        pops = [net.add_population(names[k], per["models"][k], grid=per["grid"][k],
                                   init=per["init"][k]) for k in range(n)]
        if sources is not None:
            if not isinstance(sources, dict):
                raise TypeError(f"sources must be a dict {{name: rate}}, got {sources!r}")
            srcs = [net.add_poisson(name, rate) for name, rate in sources.items()]
            net.connect_matrix(srcs, pops, W_in, n_syn=n_syn_in, delay=delay_in, **kw)
        net.connect_matrix(pops, pops, W, n_syn=n_syn, delay=delay, **kw)
        return net

    # --- queries used by backends --------------------------------------------------------
    def subnetwork(self, names) -> Network:
        """The populations ``names`` with every source and the connections onto them
        (the same objects: a view for running part of a network on its own). Connections
        from populations outside ``names`` must not exist."""
        names = set(names)
        sub = Network()
        sub.sources = dict(self.sources)
        sub.populations = {n: p for n, p in self.populations.items() if n in names}
        sub.connections = [c for c in self.connections if c.post.name in names]
        for c in sub.connections:
            if isinstance(c.pre, Population) and c.pre.name not in names:
                raise ValueError(f"connection {c.label} comes from outside the subnetwork")
        return sub

    def inputs_of(self, pop: Population) -> list[Connection]:
        return [c for c in self.connections if c.post is pop]

    def source_rate_table(self, conn: Connection, t0: np.ndarray, dt: float) -> np.ndarray:
        """Poisson event rate ``n_syn * rate(t - delay)`` seen by ``conn.post`` in each
        step ``[t0[k], t0[k] + dt)`` (Hz)."""
        src = conn.pre
        if not isinstance(src, PoissonSource):
            raise TypeError(f"connection {conn.label} comes from a population; its rate is "
                            f"known only while the network runs")
        t0 = np.asarray(t0, dtype=float)
        if conn.delay.is_fixed:
            return conn.n_syn * rate_table(src.name, src.rate, t0 - conn.delay.offset, dt)
        # distributed delay: the step means convolved with the exact lag weights
        lags = conn.delay.lag_weights(dt)
        history = np.arange(-(lags.size - 1), 0) * dt + (t0[0] if t0.size else 0.0)
        times = np.concatenate([history, t0])
        rates = rate_table(src.name, src.rate, times, dt)
        return conn.n_syn * np.convolve(rates, lags)[lags.size - 1:lags.size - 1 + t0.size]

    @staticmethod
    def effective_weight(conn: Connection) -> float:
        """Jump size in the target's units: ``weight``, or for a conductance synapse its
        jump from the middle of the model's reset-threshold range (for grid sizing)."""
        if conn.reversal is None:
            return conn.weight
        model = conn.post.model
        rule = model.spike_rule
        middle = (0.5 * (rule.reset + rule.threshold) if isinstance(rule, ThresholdReset)
                  else 0.0)
        return float(model.conductance_jump(conn.weight, conn.reversal, middle))

    def grid_of(self, pop: Population, *, dt: float = 1e-4,
                pre_rates: dict | None = None) -> Grid:
        """The population's grid, or the model's default for its inputs.

        Input from a population is sized at ``n_syn`` times its rate in ``pre_rates``
        (Hz by population name), by default :meth:`grid_rates`, the network's
        self-consistent stationary rates; where those are unknown, at
        ``n_syn * GRID_GUESS_RATE``. Sources are sized at their largest rate over the
        first ``GRID_WINDOW_STEPS`` steps of ``dt``, whatever the run's length: a run
        continued from a result keeps the grid of its first part, which must be the grid
        the whole run would have had."""
        if pop.grid is not None:
            return pop.grid
        if pre_rates is None and any(isinstance(c.pre, Population)
                                     for c in self.inputs_of(pop)):
            pre_rates = self.grid_rates()
        return self._default_grid(pop, dt, pre_rates)

    def grid_rates(self) -> dict | None:
        """Stationary rates (Hz) of the populations for sizing default grids.

        The self-consistent rates of the diffusion approximation: every LIF population
        fires at the Siegert rate (:func:`popdens.theory.siegert_rate`) of the mean and
        variance of all its inputs, the rates of the populations included. Sources are
        read at their largest rate over the first second.

        Returns
        -------
        dict or None
            Rate by population name; ``None`` if a population is not an LIF or the
            fixed-point iteration fails (default grids then assume
            ``GRID_GUESS_RATE`` per synapse).
        """
        from .models.lif import LIF
        if not all(isinstance(p.model, LIF) for p in self.populations.values()):
            return None
        key = _grid_rates_key(self)
        if self._grid_rates_memo[0] != key:
            self._grid_rates_memo = (key, _mean_field_rates(self))
        return self._grid_rates_memo[1]

    def _default_grid(self, pop: Population, dt: float,
                      pre_rates: dict | None) -> Grid:
        t0 = np.arange(GRID_WINDOW_STEPS) * dt
        inputs = []
        for c in self.inputs_of(pop):
            if isinstance(c.pre, PoissonSource):
                peak = float(np.max(self.source_rate_table(c, t0, dt))) if t0.size else 0.0
            else:
                # unknown before the run: the estimate given, or a generous guess
                rate = GRID_GUESS_RATE if pre_rates is None else pre_rates[c.pre.name]
                peak = c.n_syn * rate
            inputs.append((peak, self.effective_weight(c), c.input))
        grid = pop.model.default_grid(inputs)
        pop.model.validate_grid(grid)
        return grid

    # --- running ------------------------------------------------------------------------
    def describe(self) -> dict:
        """The JSON-able description of this network (:func:`popdens.describe`): the
        layout of a scenario file, rate units and synaptic filters included."""
        return describe(self)

    def run(self, t_end: float, dt: float, backend: str = "density", **options):
        """Simulate the network from t = 0 to ``t_end`` with output step ``dt``.

        Parameters
        ----------
        t_end, dt : float
            Duration and reporting step (s); ``t_end`` a whole number of ``dt``.
        backend : {"density", "montecarlo"}
        **options
            ``max_memory`` (bytes, or a string such as ``"8GB"``; default 4 GiB or half
            the physical memory if smaller) and ``max_steps`` (internal steps, default
            1e9): the run is sized before anything is allocated or compiled and refused
            beyond these (:class:`popdens.ResourceLimitError`, naming the parameter and
            the estimate). Backend options. Both: ``record_times``. Density: ``scheme``,
            ``record_every``, ``max_substep``, ``progress``. Monte Carlo: ``n_neurons``
            (int or dict per population), ``seed``, ``connectivity``
            (``"fixed_indegree"`` or ``"poisson"``), ``record_spikes``, ``timing``,
            ``bridge``; for N-D models ``internal_dt``. Density, accuracy
            (:mod:`popdens.refine`): ``error_estimate=True`` runs a companion with every
            axis coarsened by 2 and the internal step doubled and puts the Richardson
            estimate of the mean rate's error in ``info["rate_error"]`` (Hz per
            population; over ``error_window=(t_from, t_to)``, default the whole run);
            ``rtol`` (and ``atol``, Hz) doubles the cells per axis and halves the internal
            step, at most ``max_refinements`` times (default 4), until every estimate is
            within ``rtol * |rate| + atol``. See
            :func:`popdens.backends.density.run` and
            :func:`popdens.backends.montecarlo.run`.

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
        steps = t_end / dt
        if abs(steps - round(steps)) > 1e-9 * steps:   # 1e-9: decimal inputs like 0.3 / 1e-4
            raise ValueError(f"t_end must be a whole number of steps dt, got t_end={t_end!r}, "
                             f"dt={dt!r} ({steps:.6g} steps); nearest valid t_end = "
                             f"{round(steps) * dt:.12g}")
        accuracy = {key: options.pop(key) for key in _ACCURACY_OPTIONS if key in options}
        if accuracy:
            return self._run_estimated(t_end, dt, backend, options, **accuracy)
        if self.rate_populations:
            if "rate_units" not in _COUPLED_RUNNERS:
                raise ValueError("rate populations need popdens.backends.rate_units "
                                 "(imported by popdens)")
            result = _COUPLED_RUNNERS["rate_units"](self, t_end, dt, backend, options)
            result.description = describe(self)
            _common_info(result, t_end, dt)
            return result
        if not self.populations:
            raise ValueError("the network has no populations; add one with add_population")
        if backend not in _BACKEND_RUNNERS:
            raise ValueError(f"backend {backend!r} is not available (not imported)")
        run_limits = _limits.limits(options.pop("max_memory", None),
                                    options.pop("max_steps", None))
        _limits.check_run(self, t_end, dt, backend, options, run_limits)
        with _limits.active(run_limits):
            result = _BACKEND_RUNNERS[backend](self, t_end, dt, **options)
        result.description = describe(self)
        _common_info(result, t_end, dt)
        return result

    def _run_estimated(self, t_end, dt, backend, options, error_estimate=False, rtol=None,
                       atol=0.0, error_window=None, max_refinements=refine.MAX_REFINEMENTS):
        """``run`` with a coarse companion (``error_estimate``) or refined to ``rtol``."""
        if backend != "density":
            raise ValueError(f"error_estimate and rtol need backend='density', got "
                             f"backend={backend!r}")
        if not isinstance(error_estimate, bool):
            raise TypeError(f"error_estimate must be True or False, got {error_estimate!r}")
        window = refine.check_window(error_window, t_end)
        if rtol is None:
            if not error_estimate:
                return self.run(t_end, dt, backend, **options)
            return refine.estimate_run(self, self.run, t_end, dt, options, window=window)
        rtol, atol, max_refinements = refine.check_tolerance(rtol, atol, max_refinements)
        return refine.run_to_tolerance(self, self.run, t_end, dt, options, rtol, atol,
                                       window, max_refinements)


# Options of Network.run handled above the backends (popdens.refine).
_ACCURACY_OPTIONS = ("error_estimate", "rtol", "atol", "error_window", "max_refinements")


def _common_info(result, t_end: float, dt: float) -> None:
    """The ``Result.info`` keys every backend and dimension reports (README, "Result.info"):
    ``interrupted``, ``steps_done`` and ``n_steps`` (report steps done and planned) and
    ``dt_sub`` (the internal step; per population where parts of a network differ)."""
    info = getattr(result, "info", None)
    if info is None:      # a backend stand-in without the Result fields
        return
    info.setdefault("interrupted", False)
    info.setdefault("n_steps", int(round(t_end / dt)))
    info.setdefault("steps_done", int(result.t.size))
    info.setdefault("dt_sub", info.get("internal_dt", dt))


def _name(obj) -> str:
    return repr(obj if isinstance(obj, str) else getattr(obj, "name", obj))


def _as_list(role: str, items) -> list:
    if isinstance(items, (str, Population, PoissonSource)) or not hasattr(items, "__len__"):
        raise TypeError(f"{role} must be a sequence of populations (or names), got "
                        f"{items!r}")
    return list(items)


def _matrix(name: str, value, shape: tuple, dtype) -> np.ndarray:
    """``value`` as an array of ``shape``: a scalar (or a Delay) is repeated."""
    if dtype is object and not isinstance(value, (list, tuple, np.ndarray)):
        out = np.empty(shape, dtype=object)
        out.fill(value)
        return out
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a number or an array of numbers, got "
                        f"{value!r}") from exc
    if arr.ndim == 0:
        return np.full(shape, arr.item(), dtype=dtype)
    if arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}; expected {shape} = "
                         f"(len(posts), len(pres))")
    return arr


def _per_population(name: str, value, n: int) -> list:
    """One value per population: a sequence of ``n``, or one value for all."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{name} has {len(value)} entries; W has {n} populations")
        return list(value)
    return [value] * n


# Backends register their runner here when imported (popdens/__init__ imports them), so
# this description layer never imports the solvers above it.
_BACKEND_RUNNERS: dict = {}
# Runners of networks with more than spiking populations (rate units), same mechanism.
_COUPLED_RUNNERS: dict = {}


def register_backend(name: str, runner) -> None:
    """Register ``runner(network, t_end, dt, **options) -> Result`` as ``backend=name``."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend name {name!r}; expected one of {BACKENDS}")
    _BACKEND_RUNNERS[name] = runner


def register_coupled_runner(name: str, runner) -> None:
    """Register ``runner(network, t_end, dt, backend, options) -> Result`` for networks
    holding ``name`` (``"rate_units"``: rate populations)."""
    _COUPLED_RUNNERS[name] = runner


def _mean_field_rates(network: Network) -> dict | None:
    """The Siegert fixed point of :meth:`Network.grid_rates` (LIF populations), or None."""
    from scipy.optimize import root

    from .theory import siegert_rate
    pops = list(network.populations.values())
    if not all(isinstance(c.pre, (Population, PoissonSource)) for c in network.connections):
        return None
    names = [p.name for p in pops]
    t0 = np.arange(0.0, 1.0, 1e-3)
    drive = {p.name: [] for p in pops}
    for c in network.connections:
        weight = Network.effective_weight(c)
        if isinstance(c.pre, Population):
            drive[c.post.name].append((c.pre.name, c.n_syn, weight))
        else:
            peak = float(np.max(network.source_rate_table(c, t0, 1e-3)))
            drive[c.post.name].append((None, peak, weight))

    def rates_of(r):
        rate = dict(zip(names, np.maximum(r, 0.0)))
        out = np.empty(len(pops))
        for k, p in enumerate(pops):
            m = p.model
            s = [(n if pre is None else n * rate[pre], w) for pre, n, w in drive[p.name]]
            mu = m.e_l + m.tau_m * sum(x * w for x, w in s)
            sigma = np.sqrt(m.tau_m * sum(x * w * w for x, w in s))
            out[k] = siegert_rate(mu, sigma, m.tau_m, m.v_th, m.v_reset, m.t_ref)
        return out

    with np.errstate(all="ignore"):
        try:
            start = rates_of(np.zeros(len(pops)))
            sol = root(lambda r: rates_of(r) - r, start, method="hybr")
        except (ValueError, ArithmeticError):
            return None
    if not sol.success or not np.all(np.isfinite(sol.x)):
        return None
    return dict(zip(names, np.maximum(sol.x, 0.0)))


def _grid_rates_key(network: Network) -> tuple:
    """Everything :func:`_mean_field_rates` reads, hashable: the models' parameters and
    every connection (a source's rate by identity, or its value when a number)."""
    def source_rate(pre):
        if not isinstance(pre, PoissonSource):
            return None
        rate = pre.rate
        return rate if isinstance(rate, numbers.Real) else id(rate)

    return (tuple((p.name, type(p.model), tuple(sorted(p.model.params().items())))
                  for p in network.populations.values()),
            tuple((c.pre.name, c.post.name, c.n_syn, c.weight, c.reversal, c.input,
                   source_rate(c.pre), id(c.delay)) for c in network.connections))
