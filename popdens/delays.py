"""Transmission-delay distributions for connections.

A connection with delay distribution ``p(s)`` delivers events to its target at rate
``n_syn * (p * r_pre)(t) = n_syn * int p(s) r_pre(t - s) ds``. Every distribution here
knows three things, which is all the backends need:

* ``integrated_cdf(x)``: ``G(x) = int_0^x F(s) ds`` with ``F`` the cumulative
  distribution. For a rate that is constant over steps of length ``h``, the mean over
  one step of the delayed rate is ``sum_l w_l r[k - l]`` with the exact lag weights
  ``w_l = (G((l+1) h) - 2 G(l h) + G((l-1) h)) / h`` (:meth:`Delay.lag_weights`);
  a fixed delay gives linear interpolation between the two neighbouring steps;
* ``sample(rng, size)``: per-synapse delays for the spiking Monte Carlo network;
* ``mean`` and ``support_end(eps)`` (where the tail mass falls below ``eps``).

Build them with :func:`fixed`, :func:`exponential`, :func:`gamma`, :func:`uniform` or
:func:`kernel`; ``Network.connect(delay=...)`` also takes a plain float (fixed delay).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special, stats

from ._checks import as_real, check_nonnegative, check_positive

__all__ = ["Delay", "fixed", "exponential", "gamma", "uniform", "kernel", "as_delay",
           "delayed_rates"]

# Tail mass beyond which lag weights are cut (the cut mass goes to the last lag, so the
# weights still sum to 1).
TAIL = 1e-12


class Delay:
    """Base class: a delay distribution ``offset + spread`` (seconds)."""

    offset: float = 0.0

    # --- to override -----------------------------------------------------------------
    def _integrated_cdf(self, x: np.ndarray) -> np.ndarray:
        """``G`` of the spread part alone, for ``x > 0``."""
        raise NotImplementedError

    def _sample(self, rng: np.random.Generator, size) -> np.ndarray:
        raise NotImplementedError

    def _support_end(self, eps: float) -> float:
        raise NotImplementedError

    @property
    def spread_mean(self) -> float:
        raise NotImplementedError

    # --- shared ----------------------------------------------------------------------
    @property
    def mean(self) -> float:
        """Mean delay (s)."""
        return self.offset + self.spread_mean

    @property
    def is_fixed(self) -> bool:
        return False

    def integrated_cdf(self, x) -> np.ndarray:
        """``G(x) = int_0^x F(s) ds`` (s), with ``F`` the delay's cumulative distribution."""
        x = np.asarray(x, dtype=float) - self.offset
        out = np.zeros(x.shape)
        pos = x > 0
        out[pos] = self._integrated_cdf(x[pos])
        return out

    def support_end(self, eps: float = TAIL) -> float:
        """A delay beyond which the probability is below ``eps`` (s)."""
        return self.offset + self._support_end(eps)

    def sample(self, rng: np.random.Generator, size) -> np.ndarray:
        """``size`` independent delays (s) drawn with ``rng``."""
        return self.offset + self._sample(rng, size)

    def lag_weights(self, step: float) -> np.ndarray:
        """Exact weights ``w[l]`` of ``r[k - l]`` in the step-mean of the delayed rate,
        for a rate constant over steps of length ``step`` (lags ``0 .. L``; sum 1)."""
        step = check_positive("step", step)
        last = int(math.ceil(self.support_end() / step)) + 1
        lags = np.arange(-1, last + 2) * step
        g = self.integrated_cdf(lags)
        w = (g[2:] - 2.0 * g[1:-1] + g[:-2]) / step
        w = np.clip(w, 0.0, None)
        # drop trailing zeros, then give the cut tail to the last lag
        nonzero = np.flatnonzero(w > 0)
        w = w[:nonzero[-1] + 1] if nonzero.size else np.array([1.0])
        w[-1] += max(1.0 - w.sum(), 0.0)
        return w / w.sum()

    def explicit_lag_weights(self, step: float) -> np.ndarray:
        """:meth:`lag_weights` with the weight of lag 0 (the step being computed, whose
        rate is not known yet) moved to lag 1: explicit coupling, as the Monte Carlo
        backends' ``connectivity="poisson"`` does. ``w[0] == 0``, length >= 2."""
        w = self.lag_weights(step)
        out = np.zeros(max(w.size, 2))
        out[:w.size] = w
        out[1] += out[0]
        out[0] = 0.0
        return out


def delayed_rates(rates: np.ndarray, weights: np.ndarray, begin: int, end: int
                  ) -> np.ndarray:
    """``sum_l weights[l] rates[k - l]`` for steps ``k = begin .. end - 1`` (rates before
    step 0 are 0). ``rates[:end - first nonzero lag]`` must be known."""
    out = np.zeros(end - begin)
    for lag in np.flatnonzero(weights):
        lo = max(begin, lag)
        if lo < end:
            out[lo - begin:] += weights[lag] * rates[lo - lag:end - lag]
    return out


class _Fixed(Delay):
    def __init__(self, delay):
        self.offset = check_nonnegative("delay", delay)

    @property
    def is_fixed(self) -> bool:
        return True

    @property
    def spread_mean(self) -> float:
        return 0.0

    def _integrated_cdf(self, x):
        return x

    def _sample(self, rng, size):
        return np.zeros(size)

    def _support_end(self, eps):
        return 0.0

    def __repr__(self):
        return f"delays.fixed({self.offset!r})"


class _Exponential(Delay):
    def __init__(self, mean, offset):
        self.scale = check_positive("mean", mean)
        self.offset = check_nonnegative("offset", offset)

    @property
    def spread_mean(self):
        return self.scale

    def _integrated_cdf(self, x):
        return x + self.scale * np.expm1(-x / self.scale)

    def _sample(self, rng, size):
        return rng.exponential(self.scale, size)

    def _support_end(self, eps):
        return -self.scale * math.log(eps)

    def __repr__(self):
        return f"delays.exponential(mean={self.scale!r}, offset={self.offset!r})"


class _Gamma(Delay):
    def __init__(self, mean, shape, offset):
        mean = check_positive("mean", mean)
        self.shape = check_positive("shape", shape)
        self.scale = mean / self.shape
        self.offset = check_nonnegative("offset", offset)

    @property
    def spread_mean(self):
        return self.shape * self.scale

    def _integrated_cdf(self, x):
        # int_0^x F_k = x F_k(x) - k theta F_{k+1}(x) (F_k: regularised lower gamma)
        z = x / self.scale
        return x * special.gammainc(self.shape, z) - \
            self.shape * self.scale * special.gammainc(self.shape + 1.0, z)

    def _sample(self, rng, size):
        return rng.gamma(self.shape, self.scale, size)

    def _support_end(self, eps):
        return float(stats.gamma.isf(eps, self.shape, scale=self.scale))

    def __repr__(self):
        return (f"delays.gamma(mean={self.spread_mean!r}, shape={self.shape!r}, "
                f"offset={self.offset!r})")


class _Uniform(Delay):
    def __init__(self, low, high):
        low = check_nonnegative("low", low)
        high = as_real("high", high)
        if not high > low:
            raise ValueError(f"uniform delay needs high > low, got low={low!r}, "
                             f"high={high!r}")
        self.offset = low
        self.width = high - low

    @property
    def spread_mean(self):
        return 0.5 * self.width

    def _integrated_cdf(self, x):
        b = self.width
        return np.where(x < b, 0.5 * x * x / b, 0.5 * b + (x - b))

    def _sample(self, rng, size):
        return rng.uniform(0.0, self.width, size)

    def _support_end(self, eps):
        return self.width

    def __repr__(self):
        return f"delays.uniform({self.offset!r}, {self.offset + self.width!r})"


class _Kernel(Delay):
    def __init__(self, weights, bin_width, offset):
        w = np.asarray(weights, dtype=float)
        if w.ndim != 1 or w.size == 0:
            raise ValueError(f"delay kernel weights must be a non-empty 1D array, got "
                             f"shape {w.shape}")
        if not np.all(np.isfinite(w)):
            raise ValueError("delay kernel weights must be finite")
        if np.any(w < 0):
            k = int(np.flatnonzero(w < 0)[0])
            raise ValueError(f"delay kernel weights must be >= 0, got weights[{k}] = "
                             f"{float(w[k])!r}")
        total = float(w.sum())
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"delay kernel weights must sum to 1 (probabilities of the "
                             f"delay bins), they sum to {total!r}")
        self.weights = w / total
        self.bin_width = check_positive("bin_width", bin_width)
        self.offset = check_nonnegative("offset", offset)
        self._cdf = np.concatenate([[0.0], np.cumsum(self.weights)])
        # G at the bin edges
        self._g = np.concatenate([[0.0], np.cumsum(
            (self._cdf[:-1] + 0.5 * self.weights) * self.bin_width)])

    @property
    def spread_mean(self):
        centers = (np.arange(self.weights.size) + 0.5) * self.bin_width
        return float(np.dot(self.weights, centers))

    def _integrated_cdf(self, x):
        h = self.bin_width
        n = self.weights.size
        j = np.minimum((x / h).astype(np.int64), n)
        u = x - j * h
        inside = j < n
        jj = np.minimum(j, n - 1)
        g = self._g[j] + self._cdf[j] * u
        return np.where(inside, g + 0.5 * self.weights[jj] * u * u / h, g)

    def _sample(self, rng, size):
        bins = rng.choice(self.weights.size, size=size, p=self.weights)
        return (bins + rng.uniform(0.0, 1.0, size)) * self.bin_width

    def _support_end(self, eps):
        return self.weights.size * self.bin_width

    def __repr__(self):
        return (f"delays.kernel(<{self.weights.size} bins>, bin_width={self.bin_width!r}, "
                f"offset={self.offset!r})")


def fixed(delay: float) -> Delay:
    """A fixed delay (s), >= 0. Not a multiple of the time step? The delayed rate is
    interpolated exactly for rates constant over steps."""
    return _Fixed(delay)


def exponential(mean: float, offset: float = 0.0) -> Delay:
    """``offset`` plus an exponentially distributed delay of the given ``mean`` (s)."""
    return _Exponential(mean, offset)


def gamma(mean: float, shape: float, offset: float = 0.0) -> Delay:
    """``offset`` plus a gamma-distributed delay with ``mean`` (s) and ``shape`` k (the
    coefficient of variation is ``1 / sqrt(k)``)."""
    return _Gamma(mean, shape, offset)


def uniform(low: float, high: float) -> Delay:
    """A delay uniform on ``[low, high]`` (s)."""
    return _Uniform(low, high)


def kernel(weights, bin_width: float, offset: float = 0.0) -> Delay:
    """A user-given delay distribution: ``weights[k]`` is the probability that the delay
    lies in ``[offset + k * bin_width, offset + (k + 1) * bin_width)`` (uniform inside
    the bin). The weights must be >= 0 and sum to 1."""
    return _Kernel(weights, bin_width, offset)


def as_delay(delay) -> Delay:
    """A :class:`Delay` from a float (fixed delay, s) or a :class:`Delay`."""
    if isinstance(delay, Delay):
        return delay
    if isinstance(delay, bool) or not isinstance(delay, (int, float, np.integer,
                                                         np.floating)):
        raise TypeError(f"delay must be a float (s) or a popdens.delays distribution, got "
                        f"{delay!r}")
    delay = float(delay)
    if not math.isfinite(delay) or delay < 0:
        raise ValueError(f"delay must be >= 0, got {delay!r} (s; finite)")
    return _Fixed(delay)
