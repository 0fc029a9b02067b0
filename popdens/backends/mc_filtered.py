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
count as sources) through current synapses (``input="jump"``, no ``reversal``), filtered
or not; every population runs on its own. Other networks raise ``NotImplementedError``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.linalg import expm

from .._checks import check_int
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
        if not isinstance(conn.pre, PoissonSource):
            raise NotImplementedError(f"synapses='state': connection {conn.label} comes from "
                                      f"a population; only sources (and rate units) drive "
                                      f"populations here")
        if conn.input != "jump" or conn.reversal is not None:
            raise NotImplementedError(f"synapses='state': connection {conn.label} must be "
                                      f"a current synapse with input='jump'")


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
    rates = {}
    for q, (name, pop) in enumerate(network.populations.items()):
        conns = [c for c in network.connections if c.post is pop]
        params = population_params(pop.model, conns, dt)
        # events arrive at the unfiltered, delayed rate: the filter is in the state
        means = np.array([network.source_rate_table(
            replace(c, delay=c.transmission_delay or c.delay, synapse=None), t0, dt) * dt
            for c in conns]).reshape(len(conns), n_steps)
        x = np.zeros((n_neurons, params.propagator.shape[0]))
        ref = np.zeros(n_neurons, dtype=np.int64)
        spikes = np.zeros(n_steps, dtype=np.int64)
        kernel.seed_numba(int(np.random.SeedSequence([seed, q]).generate_state(1)[0]))
        kernel.simulate(x, ref, means, params, spikes)
        rates[name] = spikes / (n_neurons * dt)
    return Result(t=t0, dt=dt, rates=rates, record_times=np.zeros(0), densities={},
                  grids={}, backend="montecarlo", n_neurons=n_neurons,
                  info={"seed": seed, "synapses": "state"})
