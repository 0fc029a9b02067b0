r"""Synaptic filters on connections: causal kernels of unit area.

``net.connect(pre, post, weight, synapse=pd.synapses.psc(5e-3))`` makes ``post`` see the
presynaptic rate filtered by the postsynaptic-current kernel ``h``:

.. math:: s(t) = n_\mathrm{syn} \int_0^\infty h(u)\, r_\mathrm{pre}(t - d - u)\, du,
          \qquad h \ge 0, \quad \int_0^\infty h = 1,

with ``d`` the connection's (fixed) transmission delay. Kernels:

* :func:`psc` ``(tau_s, n)``: :math:`h(t) = \kappa\, t^n e^{-t/\tau_s}`,
  :math:`\kappa = 1 / (n!\, \tau_s^{n+1})`; ``n = 0`` exponential, ``n = 1`` alpha;
* :func:`biexponential` ``(tau_rise, tau_decay)``:
  :math:`h(t) = (e^{-t/\tau_d} - e^{-t/\tau_r}) / (\tau_d - \tau_r)`.

A unit-area kernel is a probability density of a lag, so a filter *is* a delay
distribution (:mod:`popdens.delays`): ``psc(tau_s, n)`` is the gamma distribution of shape
``n + 1`` and scale ``tau_s``, the biexponential the sum of two exponential lags. Every
filter here is a :class:`popdens.delays.Delay`, and the backends filter with the delay
machinery: exact lag weights from the integrated distribution function, so the step mean
of the filtered rate is exact for rates constant over steps (no ODE discretisation
error); from populations the lag-0 weight moves to lag 1 (explicit coupling).

**What this means for spiking targets** (an approximation, stated): the density backend
and the Monte Carlo with ``connectivity="poisson"`` drive the target with *Poisson events
at the filtered rate* (jumps of ``weight``). A real current-based synapse instead adds a
filtered *current*; for that, exact, description use a model with a synaptic state
(:class:`popdens.LIFSynaptic`, whose ``i_syn`` the events jump). The filtered-rate drive
is right for slowly varying input (the filter shapes the rate) and for rate units
(:meth:`popdens.Network.add_rate_population`), where the filtered rate is the input. The
Monte Carlo's ``connectivity="fixed_indegree"`` refuses filtered connections (drawing
one lag per synapse would not be a filter).
"""

from __future__ import annotations

import copy
import math
import numbers

import numpy as np
from scipy import special, stats

from ._checks import as_real, check_nonnegative, check_positive
from .delays import Delay

__all__ = ["Synapse", "psc", "exponential", "alpha", "biexponential"]


class Synapse(Delay):
    """A synaptic filter: a causal kernel of unit area, usable as a delay distribution."""

    def impulse_response(self, t) -> np.ndarray:
        """``h(t - offset)`` (1/s), 0 before the offset."""
        x = np.asarray(t, dtype=float) - self.offset
        out = np.zeros(x.shape)
        pos = x > 0
        out[pos] = self._impulse(x[pos])
        return out

    def step_response(self, t) -> np.ndarray:
        """``int_0^t h`` after the offset: the filtered unit step (the lag's CDF)."""
        x = np.asarray(t, dtype=float) - self.offset
        out = np.zeros(x.shape)
        pos = x > 0
        out[pos] = self._cdf(x[pos])
        return out

    def shifted(self, delay: float) -> Synapse:
        """This filter after a fixed transmission ``delay`` (s)."""
        out = copy.copy(self)
        out.offset = check_nonnegative("delay", delay)
        return out


class _PSC(Synapse):
    def __init__(self, tau_s, n):
        self.tau_s = check_positive("tau_s", tau_s)
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
            raise ValueError(f"n must be an integer >= 0 (0 exponential, 1 alpha), got {n!r}")
        self.n = int(n)
        self.shape = self.n + 1.0
        self.offset = 0.0

    @property
    def kappa(self) -> float:
        """Normalisation :math:`1 / (n!\\, \\tau_s^{n+1})` (1/s^(n+1))."""
        return 1.0 / (math.factorial(self.n) * self.tau_s ** (self.n + 1))

    @property
    def spread_mean(self):
        return self.shape * self.tau_s

    def _impulse(self, x):
        return self.kappa * x ** self.n * np.exp(-x / self.tau_s)

    def _cdf(self, x):
        return special.gammainc(self.shape, x / self.tau_s)

    def _integrated_cdf(self, x):
        # int_0^x F_k = x F_k(x) - k tau F_{k+1}(x), F_k the regularised lower gamma
        z = x / self.tau_s
        return x * special.gammainc(self.shape, z) - \
            self.shape * self.tau_s * special.gammainc(self.shape + 1.0, z)

    def _sample(self, rng, size):
        return rng.gamma(self.shape, self.tau_s, size)

    def _support_end(self, eps):
        return float(stats.gamma.isf(eps, self.shape, scale=self.tau_s))

    def spec(self) -> dict:
        """``{"kind": "psc", "tau_s", "n"}`` (the transmission delay is the connection's)."""
        return {"kind": "psc", "tau_s": self.tau_s, "n": self.n}

    def __repr__(self):
        return f"synapses.psc(tau_s={self.tau_s!r}, n={self.n!r}, offset={self.offset!r})"


class _Biexponential(Synapse):
    def __init__(self, tau_rise, tau_decay):
        self.tau_rise = check_positive("tau_rise", tau_rise)
        self.tau_decay = check_positive("tau_decay", tau_decay)
        if not self.tau_rise < self.tau_decay:
            raise ValueError(f"biexponential needs tau_rise < tau_decay, got tau_rise="
                             f"{tau_rise!r}, tau_decay={tau_decay!r} (equal: use "
                             f"psc(tau_s, n=1), the alpha function)")
        self.offset = 0.0

    @property
    def spread_mean(self):
        return self.tau_rise + self.tau_decay

    def _terms(self, x, power):
        """``(td^p e^{-x/td} - tr^p e^{-x/tr}) / (td - tr)``."""
        r, d = self.tau_rise, self.tau_decay
        return (d ** power * np.exp(-x / d) - r ** power * np.exp(-x / r)) / (d - r)

    def _impulse(self, x):
        return self._terms(x, 0)

    def _cdf(self, x):
        return 1.0 - self._terms(x, 1)

    def _integrated_cdf(self, x):
        r, d = self.tau_rise, self.tau_decay
        return x - (d * d * -np.expm1(-x / d) - r * r * -np.expm1(-x / r)) / (d - r)

    def _sample(self, rng, size):
        return rng.exponential(self.tau_rise, size) + rng.exponential(self.tau_decay, size)

    def _support_end(self, eps):
        d = self.tau_decay
        return d * math.log(d / ((d - self.tau_rise) * eps)) + 10.0 * self.tau_rise

    def spec(self) -> dict:
        """``{"kind": "biexponential", "tau_rise", "tau_decay"}``."""
        return {"kind": "biexponential", "tau_rise": self.tau_rise,
                "tau_decay": self.tau_decay}

    def __repr__(self):
        return (f"synapses.biexponential(tau_rise={self.tau_rise!r}, "
                f"tau_decay={self.tau_decay!r}, offset={self.offset!r})")


def psc(tau_s: float, n: int = 0) -> Synapse:
    r"""Postsynaptic-current kernel :math:`h(t) = \kappa\, t^n e^{-t/\tau_s}` of unit area
    (:math:`\kappa = 1/(n!\,\tau_s^{n+1})`): ``n = 0`` exponential, ``n = 1`` alpha.

    Parameters
    ----------
    tau_s : float
        Time constant (s), > 0. The kernel's mean is :math:`(n + 1)\tau_s`, its peak at
        :math:`n \tau_s`.
    n : int, default 0
        Power of ``t``, >= 0.
    """
    return _PSC(tau_s, n)


def exponential(tau_s: float) -> Synapse:
    r"""``psc(tau_s, 0)``: :math:`h(t) = e^{-t/\tau_s} / \tau_s`."""
    return _PSC(tau_s, 0)


def alpha(tau_s: float) -> Synapse:
    r"""``psc(tau_s, 1)``: :math:`h(t) = t e^{-t/\tau_s} / \tau_s^2`."""
    return _PSC(tau_s, 1)


def biexponential(tau_rise: float, tau_decay: float) -> Synapse:
    r"""Difference of exponentials of unit area,
    :math:`h(t) = (e^{-t/\tau_d} - e^{-t/\tau_r}) / (\tau_d - \tau_r)`,
    :math:`0 < \tau_r < \tau_d` (s); the convolution of two exponential kernels."""
    return _Biexponential(tau_rise, tau_decay)


def with_delay(synapse, delay: Delay) -> Synapse:
    """The kernel of a connection with ``synapse`` after the transmission ``delay``
    (fixed delays only: a distributed delay would need the convolution of the two)."""
    if not isinstance(synapse, Synapse):
        raise TypeError(f"synapse must be a popdens.synapses filter (psc, "
                        f"biexponential), got {synapse!r}")
    if not delay.is_fixed:
        raise NotImplementedError(f"a synaptic filter ({synapse!r}) with a distributed "
                                  f"delay ({delay!r}) is not implemented; give a fixed "
                                  f"delay")
    return synapse.shifted(as_real("delay", delay.offset))
