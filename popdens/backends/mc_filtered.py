"""Monte Carlo with a synaptic state per neuron: ``backend="montecarlo",
synapses="state"``.

The density engine (and the default Monte Carlo) drive a spiking target of a filtered
connection with *Poisson events at the filtered rate*, each a jump of ``v`` by
``weight``. Here instead every neuron carries the filter's state: each event of the
connection (Poisson at the unfiltered, delayed rate) enters the neuron's filter, whose
output is a current ``I(t) = weight * (h * events)(t)`` (V/s) integrated by ``v`` (so an
isolated event moves ``v`` by ``weight`` in total, less the leak). ``v`` and the filter
states advance by the exact propagator of their linear dynamics over each step
(:mod:`popdens.kernels.mc_filter`); events act at the step start, the threshold is
tested after the events and at the step end.

Scope: LIF populations driven by Poisson sources (rate units that drive populations
count as sources) and by each other through current synapses (``input="jump"``, no
``reversal``), filtered or not. Between populations the wiring is Poisson, as
``connectivity="poisson"``: each neuron receives events at ``n_syn`` times the delayed
rate of the presynaptic population in this run (explicit coupling: lag weights
``Delay.explicit_lag_weights``), the populations advancing together in blocks of the
shortest lag. Other networks raise ``NotImplementedError``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.linalg import expm

from .._checks import check_int
from ..delays import delayed_rates
from ..kernels import mc_filter as kernel
from ..models.lif import LIF
from ..network import PoissonSource
from ..result import Result
from ..synapses import Synapse
from .common import check_seed

__all__ = ["run", "filter_system"]


def filter_system(synapse: Synapse | None):
    """``(B, c, e)`` of a filter: state matrix (m, m), output row ``I = c . s`` and input
    vector ``e`` (an event of weight ``w`` adds ``w e``), such that the impulse response
    ``c . expm(B t) e`` is the filter's unit-area kernel ``h(t)``. ``None``: no state."""
    if synapse is None:
        return np.zeros((0, 0)), np.zeros(0), np.zeros(0)
    spec = synapse.spec()
    if spec["kind"] == "psc":              # a chain of n + 1 equal exponential stages
        tau, m = spec["tau_s"], spec["n"] + 1
        b = -np.eye(m) / tau + np.eye(m, k=-1) / tau
        c, e = np.zeros(m), np.zeros(m)
        c[-1], e[0] = 1.0, 1.0 / tau
        return b, c, e
    rise, decay = spec["tau_rise"], spec["tau_decay"]   # (e^-t/d - e^-t/r) / (d - r)
    b = np.diag([-1.0 / decay, -1.0 / rise])
    return b, np.array([1.0, -1.0]), np.full(2, 1.0 / (decay - rise))


def population_params(model: LIF, conns: list, dt: float) -> kernel.FilterParams:
    """The kernel's arrays for one LIF population and its input connections."""
    systems = [filter_system(c.synapse) for c in conns]
    n = 1 + sum(b.shape[0] for b, _, _ in systems)
    a = np.zeros((n, n))
    a[0, 0] = -1.0 / model.tau_m
    inputs = np.zeros((len(conns), n))
    at = 1
    for j, ((b, c, e), conn) in enumerate(zip(systems, conns)):
        m = b.shape[0]
        if m == 0:
            inputs[j, 0] = conn.weight               # an unfiltered jump of v
            continue
        a[at:at + m, at:at + m] = b
        a[0, at:at + m] = c
        inputs[j, at:at + m] = conn.weight * e
        at += m
    ref_steps = model.t_ref / dt
    if abs(ref_steps - round(ref_steps)) > 1e-9 * max(1.0, ref_steps):
        raise ValueError(f"synapses='state' needs t_ref a whole number of steps dt = {dt!r}"
                         f" s; got t_ref = {model.t_ref!r} s")
    return kernel.FilterParams(expm(a * dt), inputs, model.v_th - model.e_l,
                               model.v_reset - model.e_l, int(round(ref_steps)))


def _check(network) -> None:
    for pop in network.populations.values():
        if not isinstance(pop.model, LIF):
            raise NotImplementedError(f"synapses='state' runs LIF populations; "
                                      f"{pop.name!r} is {type(pop.model).__name__}")
        if pop.init is not None:
            raise NotImplementedError(f"synapses='state' starts at rest; population "
                                      f"{pop.name!r} has init=")
    for conn in network.connections:
        if not isinstance(conn.pre, PoissonSource) and \
                network.populations.get(conn.pre.name) is not conn.pre:
            raise NotImplementedError(f"synapses='state': connection {conn.label} comes from "
                                      f"{conn.pre.name!r}, neither a source nor a "
                                      f"population of the network")
        if conn.input != "jump" or conn.reversal is not None:
            raise NotImplementedError(f"synapses='state': connection {conn.label} must be "
                                      f"a current synapse with input='jump'")


def _source_means(network, conn, t0, dt) -> np.ndarray:
    """Mean event count per neuron and step of a source's connection (zeros for a
    population's: filled in during the run)."""
    if not isinstance(conn.pre, PoissonSource):
        return np.zeros(t0.size)
    unfiltered = replace(conn, delay=conn.transmission_delay or conn.delay, synapse=None)
    return network.source_rate_table(unfiltered, t0, dt) * dt


def _lags(conn, dt) -> np.ndarray:
    """Explicit lag weights of the connection's transmission delay (not the
    filter-shifted delay the density reads: the filter is in the state here)."""
    return (conn.transmission_delay or conn.delay).explicit_lag_weights(dt)


def run(network, t_end: float, dt: float, n_neurons=10_000, seed=None) -> Result:
    """Simulate ``network`` with a synaptic state per neuron (see the module docstring).

    Parameters
    ----------
    network : popdens.Network
    t_end, dt : float
        Duration and step (s); the step of the exact propagator and of the event counts.
    n_neurons : int, default 10000
    seed : int or None
        Kept in ``Result.info["seed"]``.

    Returns
    -------
    Result
        ``rates`` (Hz, spikes per neuron and second in each step); ``info["synapses"]``
        is ``"state"``.
    """
    _check(network)
    n_neurons = check_int("n_neurons", n_neurons, minimum=1)
    seed = check_seed(seed)
    n_steps = int(round(t_end / dt))
    t0 = np.arange(n_steps) * dt
    pops = list(network.populations.values())
    inputs = [[c for c in network.connections if c.post is pop] for pop in pops]
    params = [population_params(pop.model, conns, dt) for pop, conns in zip(pops, inputs)]
    # events arrive at the unfiltered, delayed rate: the filter is in the state
    means = [np.array([_source_means(network, c, t0, dt) for c in conns])
             .reshape(len(conns), n_steps) for conns in inputs]
    states = [(np.zeros((n_neurons, p.propagator.shape[0])),
               np.zeros(n_neurons, dtype=np.int64)) for p in params]
    spikes = np.zeros((len(pops), n_steps), dtype=np.int64)
    coupled = [(q, j, pops.index(c.pre), c.n_syn * dt, _lags(c, dt))
               for q, conns in enumerate(inputs) for j, c in enumerate(conns)
               if not isinstance(c.pre, PoissonSource)]
    if not coupled:
        # each population on its own, a generator stream each
        for q in range(len(pops)):
            kernel.seed_numba(int(np.random.SeedSequence([seed, q]).generate_state(1)[0]))
            kernel.simulate(*states[q], means[q], params[q], spikes[q])
    else:
        kernel.seed_numba(int(np.random.SeedSequence([seed]).generate_state(1)[0]))
        block = min(int(np.flatnonzero(lags)[0]) for *_, lags in coupled)
        for begin in range(0, n_steps, block):
            end = min(begin + block, n_steps)
            rates_so_far = spikes[:, :end] / (n_neurons * dt)
            for q, j, pre, scale, lags in coupled:
                means[q][j, begin:end] = scale * delayed_rates(rates_so_far[pre], lags,
                                                               begin, end)
            for q in range(len(pops)):
                kernel.simulate(*states[q], np.ascontiguousarray(means[q][:, begin:end]),
                                params[q], spikes[q, begin:end])
    rates = {pop.name: spikes[q] / (n_neurons * dt) for q, pop in enumerate(pops)}
    return Result(t=t0, dt=dt, rates=rates, record_times=np.zeros(0), densities={},
                  grids={}, backend="montecarlo", n_neurons=n_neurons,
                  info={"seed": seed, "synapses": "state"})
