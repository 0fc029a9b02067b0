r"""popdens's own reduction of the MIF network: the voltage density of each class on the
1D density engine, driven by the moment-closed input of the Markov approximation.

The Markov approximation (:mod:`popdens.markov.reduction`) gives a neuron of class Q at
voltage :math:`V`, per step of ``dt``, an independent Gaussian input with mean
:math:`\lambda dt + a_E \bar H_{QE} - a_I g(V) \bar H_{QI}` and variance
:math:`\lambda dt + (\tau_c/dt)(a_E^2 \mathrm{Var} H_{QE} + a_I^2 g(V)^2 \mathrm{Var} H_{QI})`.
The pool moments are linear in the past spike counts :math:`n_P` of the presynaptic class:
with the impulse responses of the exact moment map (one spike at step 0, seen by the
voltages of step :math:`k \ge 1`)

.. math::

    h_1 = p, \quad h_{k+1} = (1 - d) h_k, \qquad
    s_1 = p(1 - p), \quad s_{k+1} = (1 - d)^2 s_k + d\,h_k,

:math:`\bar H(t_j) = \sum_k h_k n_P(j - k)` and :math:`\mathrm{Var} H(t_j) = \sum_k s_k
n_P(j - k)`. Each pool therefore enters the density as two Poisson connections from the
presynaptic population whose delay kernels are these lag sequences (``pd.delays.kernel``,
bins of ``dt``, offset ``dt/2``: the step's rate lands, centred, on the next step), with
the weights solved per lag so that the first two moments of the input are exactly the
closure's:

- excitatory pool: two diffusion (Fokker-Planck) connections of weights :math:`\pm h`;
  per lag their event numbers :math:`x^\pm_k` solve :math:`h(x^+ - x^-) = a_E h_k`,
  :math:`h^2 (x^+ + x^-) = (\tau_c/dt) a_E^2 s_k` (:math:`x^- \ge 0` needs
  :math:`h \le (\tau_c/dt) a_E \min_k s_k/h_k`; :math:`h` is that bound);
- inhibitory pool: two conductance (jump) connections with reversal :math:`V_{rev}`, an
  event mapping :math:`V \to V + w (V_{rev} - V)`, so that mean and variance per event
  scale as :math:`g(V)` and :math:`g(V)^2`; weights :math:`w_1 \le w_2` bracket the
  per-lag ratio :math:`(\tau_c/dt) a_I s_k / ((V_{th} - V_{rev}) h_k)`; their event
  numbers match mean and variance per lag;
- external drive: a Poisson source of rate :math:`\lambda` with unit diffusion input
  (drift :math:`\lambda`, variance :math:`\lambda` per second).

Approximations beyond the Markov closure itself, all of the public-API kind:

- **fixed refractory period** ``tau_ref`` in place of the exponential exit of mean
  ``tau_ref``: a 1D density population has one refractory delay (``pd.ThresholdReset``);
  an exponential exit would need a distributed release in the engine's refractory
  pipeline (a small engine addition, not made here);
- continuous time: the threshold absorbs continuously (the network tests it at step
  ends), the closure's per-step input acts as drift and diffusion within the step;
- the inhibitory input is Poisson jumps of size :math:`w g(V)(V_{th} - V_{rev})`
  (0.1 - 0.6 at the defaults), not a Gaussian: only its first two moments are the
  closure's;
- when :math:`p = 1` (:math:`s_1 = 0`) the bounds are taken over the lags ``k >= 2`` and
  the first lag gets a little more variance than the closure
  (``info["variance_excess"]``).
"""

from __future__ import annotations

import math
import time

import numpy as np

from .. import delays
from .._checks import check_int, check_positive
from ..grid import Grid
from ..models.base import Model, ThresholdReset
from ..network import Network
from ._model import MarkovResult, MIFNetwork

__all__ = ["DensityReduction", "MIFVoltage", "pool_kernels"]

# Lags whose impulse response fell below this fraction of the first are cut.
_KERNEL_TAIL = 1e-12


def pool_kernels(p: float, drain: float, tail: float = _KERNEL_TAIL):
    r"""Impulse responses ``(h, s)`` of a pool's mean and variance to one presynaptic
    spike: ``h[k-1]``, ``s[k-1]`` seen by the voltages ``k`` steps later (module
    docstring), cut where ``h`` falls below ``tail * p``."""
    n = max(2, int(math.ceil(math.log(tail) / math.log1p(-drain))) + 1)
    h = p * (1.0 - drain) ** np.arange(n)
    s = np.empty(n)
    s[0] = p * (1.0 - p)
    for k in range(1, n):
        s[k] = (1.0 - drain) ** 2 * s[k - 1] + drain * h[k - 1]
    return h, s


class MIFVoltage(Model):
    r"""The dimensionless voltage of the MIF neuron as a popdens model.

    :math:`dV/dt = -V/\tau_m` (no drift without leak), a spike at ``threshold``, reset
    to ``reset`` after a fixed refractory period ``t_ref``. The default grid runs from
    ``v_min`` to the threshold in ``num_cells`` cells.
    """

    state_vars = ("v",)
    state_units = {"v": "1"}
    exact_flow = True

    def __init__(self, threshold=100.0, reset=0.0, t_ref=4e-3, tau_m=None, v_min=-66.0,
                 num_cells=332):
        self.threshold, self.reset, self.t_ref = threshold, reset, t_ref
        self.tau_m, self.v_min, self.num_cells = tau_m, v_min, num_cells

    def drift(self, v):
        v = np.asarray(v, dtype=float)
        return np.zeros_like(v) if self.tau_m is None else -v / self.tau_m

    def flow(self, v, t):
        v = np.asarray(v, dtype=float)
        return v if self.tau_m is None else v * math.exp(-float(t) / self.tau_m)

    @property
    def time_scale(self) -> float:
        # without leak nothing sets a scale; the refractory period bounds the step
        return self.t_ref if self.tau_m is None else min(self.tau_m, self.t_ref)

    @property
    def spike_rule(self):
        return ThresholdReset("v", self.threshold, self.reset, self.t_ref)

    @property
    def resting_state(self):
        return self.reset

    def default_grid(self, inputs=()):
        return Grid(v=(self.v_min, self.threshold, self.num_cells))

    def params(self):
        return dict(threshold=self.threshold, reset=self.reset, t_ref=self.t_ref,
                    tau_m=self.tau_m, v_min=self.v_min, num_cells=self.num_cells)


def _excitatory_split(mean, var):
    """Weights ``+h, -h`` and per-lag event numbers of two diffusion connections whose
    drift and variance per lag are ``mean`` and ``var`` (``h <= min var/mean``)."""
    positive = mean > 0
    h = float(np.min(var[positive] / mean[positive]))
    if h <= 0.0:
        h = float(np.min(var[var > 0] / mean[var > 0]))
    down = 0.5 * (var / h ** 2 - mean / h)
    up = np.where(down >= 0.0, 0.5 * (mean / h + var / h ** 2), mean / h)
    down = np.clip(down, 0.0, None)    # lags with var < h mean: the mean alone, on +h
    return ((h, up), (-h, down)), _excess(h * (up - down), h ** 2 * (up + down), var)


def _inhibitory_split(mean, var):
    """Conductance weights ``w1 <= w2`` and per-lag event numbers: sum of w * events is
    ``mean``, sum of w^2 * events is ``var`` (per unit of V - V_rev and its square)."""
    ratio = var / mean
    w2 = float(ratio.max())
    w1 = float(ratio[ratio > 0].min())
    if w2 - w1 < 1e-9 * w2:
        return ((w2, mean / w2),), 0.0
    y2 = (var - w1 * mean) / (w2 * (w2 - w1))
    y1 = np.where(y2 >= 0.0, (w2 * mean - var) / (w1 * (w2 - w1)), mean / w1)
    y2 = np.clip(y2, 0.0, None)        # lags with var < w1 mean: the mean alone, on w1
    return ((w1, y1), (w2, y2)), _excess(None, w1 ** 2 * y1 + w2 ** 2 * y2, var)


def _excess(_, got, want):
    """Largest relative variance excess over the closure's (lag 1 when p = 1)."""
    return float(np.max((got - want) / np.maximum(want.max(), 1e-300)))


class DensityReduction:
    r"""popdens's density description of ``net`` (see the module docstring).

    Two populations (E, I) of :class:`MIFVoltage` on the 1D density engine, coupled
    through delay kernels that reproduce the Markov closure's input moments
    (:func:`pool_kernels`), with a fixed refractory period ``net.tau_ref``.

    Parameters
    ----------
    net : MIFNetwork
    tau_c : float
        Correlation time (s) of the white-noise pool input, as for
        :class:`~popdens.markov.MarkovSDE` (1 ms: the authors' scaling).
    v_min : float
        Lower (reflecting) face of the voltage grid (default: ``v_rev``; the
        inhibitory input never moves a neuron below it).
    cell_width : float
        Voltage cell width (0.5).
    """

    method = "density"

    def __init__(self, net: MIFNetwork, tau_c: float = 1e-3, v_min: float | None = None,
                 cell_width: float = 0.5):
        if not isinstance(net, MIFNetwork):
            raise TypeError(f"net must be a MIFNetwork, got {type(net).__name__}")
        self.net = net
        self.tau_c = check_positive("tau_c", tau_c)
        self.v_min = float(net.v_rev if v_min is None else v_min)
        if not self.v_min < net.reset:
            raise ValueError(f"v_min={v_min!r} must be below reset={net.reset!r}")
        self.cell_width = check_positive("cell_width", cell_width)
        self.num_cells = check_int("number of cells", int(math.ceil(
            (net.threshold - self.v_min) / self.cell_width - 1e-9)), 2)
        self.variance_excess = 0.0

    def model(self) -> MIFVoltage:
        """The :class:`MIFVoltage` of both populations."""
        net = self.net
        return MIFVoltage(net.threshold, net.reset, net.tau_ref, net.tau_m, self.v_min,
                          self.num_cells)

    def network(self) -> Network:
        """The popdens :class:`~popdens.Network` of the reduction."""
        mif = self.net
        net = Network()
        model = self.model()
        pops = {q: net.add_population(q, model) for q in ("E", "I")}
        ext = net.add_poisson("ext", mif.lam)
        for pop in pops.values():
            net.connect(ext, pop, weight=1.0, input="diffusion")
        par = mif.params()
        self.variance_excess = 0.0
        for q, post in enumerate(pops.values()):
            self._pool(net, pops["E"], post, par.a_exc[q], par.p_exc[q], par.d_exc[q], None)
            self._pool(net, pops["I"], post, par.a_inh[q], par.p_inh[q], par.d_inh[q],
                       mif.threshold - mif.v_rev)
        return net

    def _pool(self, net, pre, post, step, p, drain, span):
        """Connections of one pool (``span`` None: excitatory, else V_th - V_rev)."""
        if p == 0.0 or step == 0.0:
            return
        h, s = pool_kernels(p, drain)
        noise = self.tau_c / self.net.dt
        n_pre = self.net.sizes[pre.name]
        if span is None:
            parts, excess = _excitatory_split(step * h, noise * step ** 2 * s)
            kind, reversal = "diffusion", None
        else:
            parts, excess = _inhibitory_split(step * h / span,
                                              noise * (step / span) ** 2 * s)
            kind, reversal = "jump", self.net.v_rev
        self.variance_excess = max(self.variance_excess, excess)
        for weight, events in parts:
            total = float(events.sum())
            if total > 0.0:
                net.connect(pre, post, weight=weight, n_syn=n_pre * total, input=kind,
                            reversal=reversal,
                            delay=delays.kernel(events / total, self.net.dt,
                                                0.5 * self.net.dt))

    def run(self, t_end=3.0) -> MarkovResult:
        """Run the density from every neuron at ``reset`` for ``t_end`` seconds.

        ``counts[pop]`` are the expected spikes per step (rate x neurons x dt);
        ``info["densities"]`` the final voltage densities, ``info["grid"]`` their grid.
        """
        mif = self.net
        steps = mif.steps(t_end)
        net = self.network()
        start = time.perf_counter()
        res = net.run(steps * mif.dt, mif.dt, record_times=[steps * mif.dt])
        wall = time.perf_counter() - start
        counts = {q: res.rates[q] * mif.sizes[q] * mif.dt for q in ("E", "I")}
        info = {"wall_time": wall, "tau_c": self.tau_c,
                "variance_excess": self.variance_excess,
                "densities": {q: res.densities[q][-1] for q in ("E", "I")},
                "grid": net.grid_of(net.populations["E"])}
        return MarkovResult(self.method, mif.dt * np.arange(steps), counts, mif.sizes,
                            mif.dt, info)
