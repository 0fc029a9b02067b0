"""Direct simulation of the MIF network (:class:`~popdens.markov.MIFNetwork`), numba."""

from __future__ import annotations

import time

import numpy as np
from numba import njit

from .._checks import check_int
from .result import MarkovResult

__all__ = ["simulate", "spiking_kernel", "external_kick"]


@njit(cache=True)
def external_kick(p):
    """One step of external drive: N(lambda dt, lambda dt) or Poisson(lambda dt) kicks."""
    if p.ext_kind == 0:
        return np.random.normal(p.ext_mean, np.sqrt(p.ext_mean))  # noqa: NPY002
    return float(np.random.poisson(p.ext_mean))  # noqa: NPY002


@njit(cache=True)
def _integrate(p, pop, v, ref, h_exc, h_inh, fired):
    """Voltage step of every non-refractory neuron; spikes reset and turn refractory."""
    span = p.threshold - p.v_rev
    for k in range(v.shape[0]):
        if ref[k]:
            continue
        q = pop[k]
        g = (v[k] - p.v_rev) / span
        v_new = (v[k] - p.leak * v[k] + external_kick(p) + p.a_exc[q] * h_exc[k]
                 - p.a_inh[q] * g * h_inh[k])
        if v_new > p.threshold:
            fired[q] += 1
            v[k] = p.reset
            ref[k] = True
        else:
            v[k] = v_new


@njit(cache=True)
def _pool_step(h, arrivals, p_arrive, drain):
    """One pool: + Binomial(arrivals, p_arrive) - Poisson(h drain), clipped at 0. No draw
    is made for zero arrivals or an empty pool (both would return 0)."""
    new = h
    if arrivals > 0:
        new += np.random.binomial(arrivals, p_arrive)  # noqa: NPY002
    if h > 0:
        new -= np.random.poisson(h * drain)  # noqa: NPY002
    return max(new, 0)


@njit(cache=True)
def _pools(p, pop, h_exc, h_inh, fired):
    """Arrivals and drain of every neuron's E pool, then its I pool."""
    for k in range(h_exc.shape[0]):
        q = pop[k]
        h_exc[k] = _pool_step(h_exc[k], fired[0], p.p_exc[q], p.d_exc[q])
        h_inh[k] = _pool_step(h_inh[k], fired[1], p.p_inh[q], p.d_inh[q])


@njit(cache=True)
def spiking_kernel(p, n_steps, seed, counts, pool_means):
    """Advance the network from rest over ``n_steps`` steps.

    Per step: (1) voltages of the non-refractory neurons in index order (E first), with
    the pools of the previous step, one external draw each; (2) pools of every neuron,
    E pool then I pool, arrivals then drain; (3) release of the refractory neurons, one
    uniform draw each in index order. ``counts[step, q]``: spikes of class q;
    ``pool_means[step, 2q + r]``: class-q mean of pool r (0: E, 1: I) after the step.
    """
    np.random.seed(seed)  # noqa: NPY002 (numba: the generator of the compiled kernel)
    n_tot = p.n[0] + p.n[1]
    pop = np.zeros(n_tot, dtype=np.int64)
    pop[p.n[0]:] = 1
    v = np.full(n_tot, p.reset)
    ref = np.zeros(n_tot, dtype=np.bool_)
    h_exc = np.zeros(n_tot, dtype=np.int64)
    h_inh = np.zeros(n_tot, dtype=np.int64)
    fired = np.zeros(2, dtype=np.int64)
    for step in range(n_steps):
        fired[:] = 0
        _integrate(p, pop, v, ref, h_exc, h_inh, fired)
        _pools(p, pop, h_exc, h_inh, fired)
        for k in range(n_tot):
            if ref[k] and np.random.random() < p.ref_exit:  # noqa: NPY002
                ref[k] = False
        counts[step, 0] = fired[0]
        counts[step, 1] = fired[1]
        for q in range(2):
            lo = 0 if q == 0 else p.n[0]
            hi = p.n[0] if q == 0 else n_tot
            pool_means[step, 2 * q] = h_exc[lo:hi].mean()
            pool_means[step, 2 * q + 1] = h_inh[lo:hi].mean()


def simulate(net, t_end=3.0, seed=0, record_pools=False) -> MarkovResult:
    """Simulate the spiking network ``net`` from rest (all neurons at ``reset``, empty
    pools, none refractory) for ``t_end`` seconds.

    Returns a :class:`~popdens.markov.MarkovResult` with integer spike counts per step;
    ``record_pools=True`` adds ``info["pool_means"]`` (steps x 4: E neurons' E and I pool,
    I neurons' E and I pool, after each step).
    """
    steps = net.steps(t_end)
    seed = check_int("seed", seed, 0)
    if seed >= 2**32:
        raise ValueError(f"seed must be < 2**32, got {seed}")
    counts = np.zeros((steps, 2), dtype=np.int64)
    pools = np.zeros((steps, 4))
    start = time.perf_counter()
    spiking_kernel(net.params(), steps, seed, counts, pools)
    wall = time.perf_counter() - start
    info = {"wall_time": wall, "seed": seed}
    if record_pools:
        info["pool_means"] = pools
    return MarkovResult("spiking", net.dt * np.arange(steps),
                        {"E": counts[:, 0], "I": counts[:, 1]}, net.sizes, net.dt, info)
