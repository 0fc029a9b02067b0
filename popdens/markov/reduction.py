r"""The binned Markov reduction (the "dsODE" of Chang et al. 2025) and the unbinned Markov
(SDE) approximation of the MIF network.

Markov approximation (the paper's one assumption: the synaptic pools decorrelate fast).
The pools of a class are replaced by their class mean and variance, advanced with the
population spike counts :math:`n_P` of each step by the exact moment map of the spiking
pool update (Binomial arrivals, Poisson drain :math:`d = dt/\tau_{QP}`):

.. math::

    \bar H' = (1 - d)\bar H + p_{QP} n_P, \qquad
    \mathrm{Var}\,H' = (1 - d)^2 \mathrm{Var}\,H + d\,\bar H + p_{QP}(1 - p_{QP})\,n_P,

the discrete form of :math:`\dot{\bar H} = -\bar H/\tau + p r`,
:math:`\dot{\mathrm{Var}} = -2\mathrm{Var}/\tau + \bar H/\tau + p(1-p) r`. A neuron at
voltage :math:`V` then receives, per step, an independent Gaussian input with

.. math::

    \mu(V) = \lambda dt + a_{E}\bar H_{QE} - a_{I}\, g(V) \bar H_{QI}, \qquad
    \sigma^2(V) = \lambda dt + \frac{\tau_c}{dt}\left(a_E^2 \mathrm{Var} H_{QE}
        + a_I^2 g(V)^2 \mathrm{Var} H_{QI}\right),

:math:`a_E = S_{QE} dt/\tau_{QE}`, :math:`a_I = S_{QI} dt/\tau_I`. The pool term treats the
pool fluctuation as white noise of correlation time :math:`\tau_c`; the authors' code
(in ms) has :math:`\tau_c` = 1 ms (their :math:`dt\,S^2 \mathrm{Var} H/\tau^2`), the
default; :math:`\tau_c = 2\tau` would give the long-time variance of a pool of
correlation time :math:`\tau`, :math:`\tau_c = dt` a fresh pool draw every step.

- :class:`MarkovSDE`: every neuron of a network of the same size follows
  :math:`V' = V + \mu(V) + \sigma(V)\,\zeta` (:math:`\zeta` standard normal), with the
  spiking network's threshold, reset and refractory release; the pool moments are driven
  by the SDE population's own spike counts. This isolates the Markov approximation.
- :class:`MarkovODE`: the voltage axis is cut into bins of width ``bin_width`` from
  ``v_min`` to the threshold (the lowest bin open below); the state is the number of
  neurons and their mean voltage per bin, the refractory count and the pool moments.
  Every bin is mapped in closed form (:mod:`popdens.markov.transfer`, uniform within the
  bin, :math:`g` at the bin mean) and the expected number of neurons above threshold
  spikes. Deterministic: finite-size noise is gone. Refractory release (count :math:`R`
  after adding the step's spikes :math:`n_f`): ``"textbook"``, the expectation of the
  spiking rule, :math:`R(1 - e^{-dt/\tau_{ref}})`; ``"authors"``, the rule of the authors'
  ``dsODE_module_bins.m``, :math:`|R\,dt/\tau_{ref} - n_f\,dt/1\,\mathrm{ms}|` (their
  :math:`|dR/dt|\,dt` with :math:`dR/dt = -R/\tau_{ref} + n_f` and times in ms). Released
  neurons re-enter the bin of ``reset`` at ``reset``.
"""

from __future__ import annotations

import math
import time
from typing import NamedTuple

import numpy as np
from numba import njit

from .._checks import check_int, check_positive
from ._model import MarkovResult, MIFNetwork
from .transfer import transfer_bin, uniform_support

__all__ = ["MarkovODE", "MarkovSDE", "ReductionParams", "ode_kernel", "sde_kernel",
           "pool_moments_step", "REFRACTORY_RULES"]

REFRACTORY_RULES = ("authors", "textbook")
# Bins holding fewer neurons than this are not transferred (their mass is kept: it is
# added back to the same bin).
_TINY = 1e-13


class ReductionParams(NamedTuple):
    """Constants of the reduction kernels besides :class:`~popdens.markov.MIFParams`.

    ``noise = tau_c / dt``; ``ext_var = lambda dt``; ``ref_euler = dt / tau_ref`` and
    ``fired_weight = dt / 1 ms`` (the authors' refractory rule); ``rule`` 0: authors,
    1: textbook; ``lower`` / ``edges``: lower and upper edges of the bins (the last upper
    edge is the threshold; bin 0 is open below); ``reset_bin``: the bin of ``reset``.
    """

    noise: float
    ext_var: float
    ref_euler: float
    fired_weight: float
    rule: int
    lower: np.ndarray
    edges: np.ndarray
    reset_bin: int


@njit(cache=True)
def pool_moments_step(mean, var, arrivals, p_arrive, drain):
    """Exact moment map of one pool step (class mean and variance of H)."""
    new_mean = (1.0 - drain) * mean + p_arrive * arrivals
    new_var = ((1.0 - drain) ** 2 * var + drain * mean
               + p_arrive * (1.0 - p_arrive) * arrivals)
    return new_mean, new_var


@njit(cache=True)
def advance_pools(p, pools, fired):
    """pools[q, r, 0/1]: mean / variance of pool r (0: E, 1: I) of class q."""
    for q in range(2):
        pools[q, 0, 0], pools[q, 0, 1] = pool_moments_step(
            pools[q, 0, 0], pools[q, 0, 1], fired[0], p.p_exc[q], p.d_exc[q])
        pools[q, 1, 0], pools[q, 1, 1] = pool_moments_step(
            pools[q, 1, 0], pools[q, 1, 1], fired[1], p.p_inh[q], p.d_inh[q])


@njit(cache=True)
def input_moments(p, r, pools, q, v):
    """Mean and standard deviation of one step's Gaussian input at voltage ``v``."""
    g = (v - p.v_rev) / (p.threshold - p.v_rev)
    mu = p.ext_mean + p.a_exc[q] * pools[q, 0, 0] - p.a_inh[q] * g * pools[q, 1, 0]
    var = r.ext_var + r.noise * (p.a_exc[q] ** 2 * max(pools[q, 0, 1], 0.0)
                                 + (p.a_inh[q] * g) ** 2 * max(pools[q, 1, 1], 0.0))
    return mu, math.sqrt(var)


@njit(cache=True)
def release(p, r, ref_count, fired):
    """Neurons leaving the refractory state this step (``ref_count``: before the step's
    ``fired`` spikes were added)."""
    total = ref_count + fired
    if r.rule == 1:
        return total * p.ref_exit
    return min(abs(total * r.ref_euler - fired * r.fired_weight), total)


@njit(cache=True)
def _ode_class(p, r, q, pools, n_q, m_q, new_n, new_s):
    """Transfer every bin of class q; returns the expected number of spikes."""
    n_bins = r.edges.shape[0]
    new_n[:] = 0.0
    new_s[:] = 0.0
    for k in range(n_bins):
        w = n_q[k]
        if w < _TINY:
            new_n[k] += w
            new_s[k] += w * m_q[k]
            continue
        mu, sigma = input_moments(p, r, pools, q, m_q[k])
        a, b = uniform_support(m_q[k], r.lower[k], r.edges[k])
        transfer_bin(w, a * (1.0 - p.leak), b * (1.0 - p.leak), mu, sigma, r.edges,
                     new_n, new_s)
    return new_n[n_bins]


@njit(cache=True)
def _store_bins(r, new_n, new_s, n_q, m_q):
    """New counts and mean voltages (kept inside their bins; midpoint when empty)."""
    for k in range(r.edges.shape[0]):
        n_q[k] = new_n[k]
        lo, hi = r.lower[k], r.edges[k]
        if new_n[k] > _TINY:
            mean = new_s[k] / new_n[k]
            m_q[k] = min(mean, hi) if k == 0 else min(max(mean, lo), hi)
        else:
            m_q[k] = 0.5 * (lo + hi)


@njit(cache=True)
def ode_kernel(p, r, n_steps, n_bins_state, m_bins_state, ref, pools, counts):
    """Advance the binned reduction ``n_steps`` steps from the given state (in place).

    ``n_bins_state[q, k]``, ``m_bins_state[q, k]``: neurons and mean voltage in bin k of
    class q; ``ref[q]``: refractory neurons; ``pools[q, r, 0/1]``: pool moments;
    ``counts[step, q]``: expected spikes of class q in each step.
    """
    n_bins = r.edges.shape[0]
    new_n = np.zeros((2, n_bins + 1))
    new_s = np.zeros((2, n_bins + 1))
    fired = np.zeros(2)
    for step in range(n_steps):
        for q in range(2):
            fired[q] = _ode_class(p, r, q, pools, n_bins_state[q], m_bins_state[q],
                                  new_n[q], new_s[q])
        for q in range(2):
            leave = release(p, r, ref[q], fired[q])
            ref[q] = ref[q] + fired[q] - leave
            new_n[q, r.reset_bin] += leave
            new_s[q, r.reset_bin] += leave * p.reset
            _store_bins(r, new_n[q], new_s[q], n_bins_state[q], m_bins_state[q])
            counts[step, q] = fired[q]
        advance_pools(p, pools, fired)


@njit(cache=True)
def sde_kernel(p, r, n_steps, seed, counts):
    """Markov SDE of every neuron from rest over ``n_steps`` steps.

    Per step: voltages of the non-refractory neurons in index order (E first), one
    normal draw each, V' = (1 - dt/tau_m) V + N(mu(V), sigma(V)^2); the pool
    moments with the step's spike counts; the refractory release (one uniform draw per
    refractory neuron, in index order) as in the spiking network.
    """
    np.random.seed(seed)  # noqa: NPY002 (numba: the generator of the compiled kernel)
    n_tot = p.n[0] + p.n[1]
    v = np.full(n_tot, p.reset)
    refr = np.zeros(n_tot, dtype=np.bool_)
    pools = np.zeros((2, 2, 2))
    fired = np.zeros(2)
    for step in range(n_steps):
        fired[:] = 0.0
        for k in range(n_tot):
            if refr[k]:
                continue
            q = 0 if k < p.n[0] else 1
            mu, sigma = input_moments(p, r, pools, q, v[k])
            v_new = v[k] - p.leak * v[k] + np.random.normal(mu, sigma)  # noqa: NPY002
            if v_new > p.threshold:
                fired[q] += 1.0
                v[k] = p.reset
                refr[k] = True
            else:
                v[k] = v_new
        advance_pools(p, pools, fired)
        for k in range(n_tot):
            if refr[k] and np.random.random() < p.ref_exit:  # noqa: NPY002
                refr[k] = False
        counts[step, 0] = fired[0]
        counts[step, 1] = fired[1]


def _reduction_params(net, tau_c, rule, lower, edges, reset_bin) -> ReductionParams:
    return ReductionParams(tau_c / net.dt, net.lam * net.dt, net.dt / net.tau_ref,
                           net.dt / 1e-3, rule, lower, edges, reset_bin)


def _check_net(net):
    if not isinstance(net, MIFNetwork):
        raise TypeError(f"net must be a MIFNetwork, got {type(net).__name__}")
    return net


class MarkovSDE:
    """Unbinned Markov (SDE) approximation of ``net`` (see the module docstring).

    Parameters
    ----------
    net : MIFNetwork
    tau_c : float
        Correlation time (s) of the white-noise pool input; 1 ms: the authors' scaling.
    """

    method = "sde"

    def __init__(self, net: MIFNetwork, tau_c: float = 1e-3):
        self.net = _check_net(net)
        self.tau_c = check_positive("tau_c", tau_c)

    def reduction_params(self) -> ReductionParams:
        """The :class:`ReductionParams` of the kernels (one bin, no refractory rule: the
        SDE releases neurons as the network does)."""
        return _reduction_params(self.net, self.tau_c, 1, np.zeros(1),
                                 np.array([self.net.threshold]), 0)

    def run(self, t_end=3.0, seed=0) -> MarkovResult:
        """Simulate ``net.n_E + net.n_I`` SDE neurons from rest for ``t_end`` seconds."""
        net = self.net
        steps = net.steps(t_end)
        seed = check_int("seed", seed, 0)
        if seed >= 2**32:
            raise ValueError(f"seed must be < 2**32, got {seed}")
        counts = np.zeros((steps, 2))
        start = time.perf_counter()
        sde_kernel(net.params(), self.reduction_params(), steps, seed, counts)
        info = {"wall_time": time.perf_counter() - start, "seed": seed,
                "tau_c": self.tau_c}
        return MarkovResult(self.method, net.dt * np.arange(steps),
                            {"E": counts[:, 0], "I": counts[:, 1]}, net.sizes, net.dt, info)


class MarkovODE(MarkovSDE):
    """Binned Markov reduction of ``net`` ("dsODE"; see the module docstring).

    Parameters
    ----------
    net : MIFNetwork
    refractory : {"authors", "textbook"}
        Refractory release rule.
    bin_width : float
        Voltage bin width (4, the authors' choice); ``(threshold - v_min) / bin_width``
        must be a whole number.
    v_min : float
        Lower edge of the lowest bin (-40; that bin also holds everything below).
    tau_c : float
        As for :class:`MarkovSDE`.
    """

    method = "ode"

    def __init__(self, net: MIFNetwork, refractory: str = "authors", bin_width: float = 4.0,
                 v_min: float = -40.0, tau_c: float = 1e-3):
        super().__init__(net, tau_c)
        if refractory not in REFRACTORY_RULES:
            raise ValueError(f"refractory must be one of {REFRACTORY_RULES}, "
                             f"got {refractory!r}")
        self.refractory = refractory
        self.bin_width = check_positive("bin_width", bin_width)
        self.v_min = float(v_min)
        if not self.v_min <= net.reset - self.bin_width:
            raise ValueError(f"v_min={v_min!r} must be at least one bin_width below "
                             f"reset={net.reset!r}")
        n_bins = (net.threshold - self.v_min) / self.bin_width
        if abs(n_bins - round(n_bins)) > 1e-9 * n_bins:
            raise ValueError(f"(threshold - v_min) / bin_width must be a whole number, got "
                             f"({net.threshold} - {v_min}) / {bin_width} = {n_bins}")

    def bins(self):
        """(lower edges, upper edges, index of the bin holding ``reset``)."""
        net = self.net
        n_bins = int(round((net.threshold - self.v_min) / self.bin_width))
        edges = self.v_min + self.bin_width * np.arange(1, n_bins + 1)
        edges[-1] = net.threshold
        lower = np.concatenate([[self.v_min], edges[:-1]])
        reset_bin = int(np.searchsorted(edges, net.reset, side="right"))
        return lower, edges, reset_bin

    def reduction_params(self) -> ReductionParams:
        """The :class:`ReductionParams` of :func:`ode_kernel` (bins, refractory rule)."""
        return _reduction_params(self.net, self.tau_c,
                                 REFRACTORY_RULES.index(self.refractory), *self.bins())

    def initial_state(self):
        """Every neuron at ``reset`` (its bin, mean ``reset``), no refractory neuron,
        empty pools: (counts (2, K), means (2, K), refractory (2,), pools (2, 2, 2))."""
        lower, edges, reset_bin = self.bins()
        counts = np.zeros((2, edges.size))
        counts[:, reset_bin] = [self.net.n_E, self.net.n_I]
        means = np.tile(0.5 * (lower + edges), (2, 1))
        means[:, reset_bin] = self.net.reset
        return counts, means, np.zeros(2), np.zeros((2, 2, 2))

    def run(self, t_end=3.0, state=None) -> MarkovResult:
        """Integrate from ``state`` (default :meth:`initial_state`, copied) for ``t_end``
        seconds; ``info["state"]`` holds the final state."""
        net = self.net
        steps = net.steps(t_end)
        counts, means, ref, pools = [np.array(x, dtype=float) for x in
                                     (state if state is not None else self.initial_state())]
        out = np.zeros((steps, 2))
        start = time.perf_counter()
        ode_kernel(net.params(), self.reduction_params(), steps, counts, means, ref,
                   pools, out)
        info = {"wall_time": time.perf_counter() - start, "refractory": self.refractory,
                "tau_c": self.tau_c, "state": (counts, means, ref, pools)}
        return MarkovResult(f"ode-{self.refractory}", net.dt * np.arange(steps),
                            {"E": out[:, 0], "I": out[:, 1]}, net.sizes, net.dt, info)
