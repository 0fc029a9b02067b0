r"""The Markovian integrate-and-fire (MIF) E/I network of Chang et al. (2025): parameters,
validation, the kernel parameter tuple and the result shared by every description.

Units: SI for time (s) and rates (Hz); the membrane potential is dimensionless (threshold
100, reset 0, inhibitory reversal -66). Subscripts ``QP``: post-synaptic class Q, pre-
synaptic class P (``S_EI``: an inhibitory spike onto an excitatory neuron).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .._checks import as_real, check_int, check_positive
from .result import POPULATIONS, MarkovResult

__all__ = ["MIFNetwork", "MIFParams", "MarkovResult", "POPULATIONS"]

EXTERNAL_KINDS = ("gaussian", "poisson")


class MIFParams(NamedTuple):
    """Scalars and per-class arrays of the compiled kernels (index 0: E, 1: I).

    ``a_exc[q] = S_qE dt / tau_qE`` and ``a_inh[q] = S_qI dt / tau_I`` are the voltage
    steps per pending spike; ``d_exc[q] = dt / tau_qE`` and ``d_inh = dt / tau_I`` the
    drain fractions per step; ``ref_exit = 1 - exp(-dt / tau_ref)`` the probability that
    a refractory neuron is released at the end of a step; ``leak = dt / tau_m`` (0: none).
    """

    n: np.ndarray          # int64 (2,): neurons per class
    a_exc: np.ndarray      # (2,)
    a_inh: np.ndarray      # (2,)
    d_exc: np.ndarray      # (2,)
    d_inh: np.ndarray      # (2,)
    p_exc: np.ndarray      # (2,): p_QE
    p_inh: np.ndarray      # (2,): p_QI
    threshold: float
    reset: float
    v_rev: float
    ext_mean: float        # lambda dt
    ext_kind: int          # 0 Gaussian N(lambda dt, lambda dt), 1 Poisson unit kicks
    leak: float
    ref_exit: float


@dataclass(frozen=True)
class MIFNetwork:
    r"""The spiking E/I network of Chang, Li, Wang, Tao & Xiao (J. Comput. Phys. 537,
    114117, 2025; arXiv:2411.14801), with the defaults of the authors' code
    (``changjie98/dsODE``, ``main_LIF.m``).

    Each neuron of class :math:`Q \in \{E, I\}` has a voltage :math:`V` and two pools of
    pending spikes :math:`H_{QE}, H_{QI}` (integers). Per step of ``dt``, a non-refractory
    neuron moves by

    .. math::

        \Delta V = \xi + \frac{dt}{\tau_{QE}} S_{QE} H_{QE}
                   - \frac{dt}{\tau_I} S_{QI}\, g(V) H_{QI} - \frac{dt}{\tau_m} V,
        \qquad g(V) = \frac{V - V_{rev}}{V_{th} - V_{rev}},

    with external drive :math:`\xi \sim \mathcal N(\lambda dt, \lambda dt)` (or a Poisson
    number of unit kicks of mean :math:`\lambda dt`, ``external="poisson"``). A neuron
    with :math:`V > V_{th}` spikes, is set to ``reset`` and turns refractory; at the end
    of each step every refractory neuron is released with probability
    :math:`1 - e^{-dt/\tau_{ref}}` (exponential refractory period of mean ``tau_ref``).
    When :math:`n_P` neurons of class P spiked in the step, every neuron of class Q
    (refractory or not) receives :math:`\mathrm{Binomial}(n_P, p_{QP})` new pending
    spikes in :math:`H_{QP}`, and its pools drain by
    :math:`\mathrm{Poisson}(H_{QP}\, dt / \tau_{QP})` (clipped at 0), with
    :math:`\tau_{EI} = \tau_{II} = \tau_I`. A spike therefore acts from the next step.

    Parameters
    ----------
    n_E, n_I : int
        Neurons per class (300, 100).
    threshold, reset, v_rev : float
        Threshold (100), reset (0) and inhibitory reversal potential (-66).
    tau_ref : float
        Mean refractory period, s (4 ms).
    lam : float
        External kick rate, Hz (7 kicks/ms).
    external : {"gaussian", "poisson"}
        External drive per step (see above).
    dt : float
        Time step, s (0.1 ms).
    tau_EE, tau_IE, tau_I : float
        Pool time constants, s (1.4, 1.2, 4.5 ms).
    p_EE, p_EI, p_IE, p_II : float
        Release probabilities in [0, 1] (0.8).
    S_EE, S_IE, S_EI, S_II : float
        Synaptic strengths (0.95, 1.25, 2.71, 2.45).
    tau_m : float or None
        Membrane time constant, s; None (default): no leak.
    """

    n_E: int = 300
    n_I: int = 100
    threshold: float = 100.0
    reset: float = 0.0
    v_rev: float = -66.0
    tau_ref: float = 4e-3
    lam: float = 7000.0
    external: str = "gaussian"
    dt: float = 1e-4
    tau_EE: float = 1.4e-3
    tau_IE: float = 1.2e-3
    tau_I: float = 4.5e-3
    p_EE: float = 0.8
    p_EI: float = 0.8
    p_IE: float = 0.8
    p_II: float = 0.8
    S_EE: float = 0.95
    S_IE: float = 1.25
    S_EI: float = 2.71
    S_II: float = 2.45
    tau_m: float | None = None

    def __post_init__(self):
        for name in ("n_E", "n_I"):
            object.__setattr__(self, name, check_int(name, getattr(self, name), 1))
        for name in ("tau_ref", "lam", "dt", "tau_EE", "tau_IE", "tau_I"):
            object.__setattr__(self, name, check_positive(name, getattr(self, name)))
        for name in ("threshold", "reset", "v_rev", "S_EE", "S_IE", "S_EI", "S_II"):
            object.__setattr__(self, name, as_real(name, getattr(self, name)))
        for name in ("S_EE", "S_IE", "S_EI", "S_II"):
            if getattr(self, name) < 0.0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("p_EE", "p_EI", "p_IE", "p_II"):
            value = as_real(name, getattr(self, name))
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
            object.__setattr__(self, name, value)
        if not self.v_rev < self.reset < self.threshold:
            raise ValueError(f"need v_rev < reset < threshold, got v_rev={self.v_rev!r}, "
                             f"reset={self.reset!r}, threshold={self.threshold!r}")
        if self.external not in EXTERNAL_KINDS:
            raise ValueError(f"external must be one of {EXTERNAL_KINDS}, "
                             f"got {self.external!r}")
        if self.tau_m is not None:
            object.__setattr__(self, "tau_m", check_positive("tau_m", self.tau_m))
            if self.dt >= self.tau_m:
                raise ValueError(f"dt={self.dt!r} must be < tau_m={self.tau_m!r}")
        for name in ("tau_EE", "tau_IE", "tau_I"):
            if self.dt >= getattr(self, name):
                raise ValueError(f"dt={self.dt!r} must be < {name}={getattr(self, name)!r} "
                                 "(the pools drain a fraction dt/tau per step)")

    def replace(self, **changes) -> MIFNetwork:
        """A copy with some parameters changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @property
    def sizes(self) -> dict:
        return {"E": self.n_E, "I": self.n_I}

    def g(self, v):
        """Inhibitory driving-force factor :math:`g(V) = (V - V_{rev})/(V_{th} - V_{rev})`."""
        return (np.asarray(v, dtype=float) - self.v_rev) / (self.threshold - self.v_rev)

    def params(self) -> MIFParams:
        """The :class:`MIFParams` of the compiled kernels."""
        dt = self.dt
        tau_exc = np.array([self.tau_EE, self.tau_IE])
        return MIFParams(
            np.array([self.n_E, self.n_I], dtype=np.int64),
            np.array([self.S_EE, self.S_IE]) * dt / tau_exc,
            np.array([self.S_EI, self.S_II]) * dt / self.tau_I,
            dt / tau_exc, np.full(2, dt / self.tau_I),
            np.array([self.p_EE, self.p_IE]), np.array([self.p_EI, self.p_II]),
            self.threshold, self.reset, self.v_rev, self.lam * dt,
            EXTERNAL_KINDS.index(self.external),
            0.0 if self.tau_m is None else dt / self.tau_m,
            -math.expm1(-dt / self.tau_ref))

    def steps(self, t_end) -> int:
        """Number of steps of ``t_end`` (a positive whole number of ``dt``)."""
        t_end = check_positive("t_end", t_end)
        steps = int(round(t_end / self.dt))
        if steps < 1 or abs(steps * self.dt - t_end) > 1e-9 * t_end:
            raise ValueError(f"t_end={t_end!r} must be a positive whole number of "
                             f"dt={self.dt!r}")
        return steps

    def simulate(self, t_end=3.0, seed=0, record_pools=False) -> MarkovResult:
        """Spiking simulation (see :func:`popdens.markov.spiking.simulate`)."""
        from .spiking import simulate  # spiking compiles on import: only when used
        return simulate(self, t_end, seed=seed, record_pools=record_pools)
