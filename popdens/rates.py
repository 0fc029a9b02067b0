"""Time-dependent rate shapes for Poisson sources: :class:`piecewise` and :class:`sinusoid`
(re-exported by :mod:`popdens.network` and :mod:`popdens`)."""

from __future__ import annotations

import numpy as np

from ._checks import as_real, check_nonnegative, check_positive

__all__ = ["piecewise", "sinusoid"]


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


class sinusoid:
    """Sinusoidally modulated rate (Hz), switched on at ``start``:

    ``rate(t) = mean + amplitude * sin(2 pi frequency (t - start) + phase)`` for
    ``t >= start``, and ``before`` (default ``mean``) earlier. Interval means are exact.

    Examples
    --------
    >>> drive = sinusoid(mean=1000.0, amplitude=500.0, frequency=10.0, start=0.1)
    """

    def __init__(self, mean, amplitude, frequency, phase=0.0, start=0.0, before=None):
        self.mean_rate = check_nonnegative("mean", mean)
        self.amplitude = check_nonnegative("amplitude", amplitude)
        self.frequency = check_positive("frequency", frequency)
        self.phase = as_real("phase", phase)
        self.start = as_real("start", start)
        self.before = self.mean_rate if before is None else check_nonnegative("before",
                                                                              before)
        if self.amplitude > self.mean_rate:
            raise ValueError(f"sinusoid amplitude must be <= mean so that the rate stays "
                             f">= 0, got amplitude={amplitude!r}, mean={mean!r}")

    def __call__(self, t):
        t = np.asarray(t, dtype=float)
        on = self.mean_rate + self.amplitude * np.sin(
            2 * np.pi * self.frequency * (t - self.start) + self.phase)
        out = np.where(t >= self.start, on, self.before)
        return out if out.ndim else float(out)

    def _integral(self, t):
        # from start to t (t >= start); negative part handled by the caller
        w = 2 * np.pi * self.frequency
        s = np.maximum(t - self.start, 0.0)
        return self.mean_rate * s - self.amplitude / w * (np.cos(w * s + self.phase)
                                                           - np.cos(self.phase))

    def mean(self, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
        """Exact mean rate over each interval ``[t0, t1)``."""
        t0 = np.asarray(t0, dtype=float)
        t1 = np.asarray(t1, dtype=float)
        before = self.before * (np.clip(t1, None, self.start) - np.clip(t0, None, self.start))
        after = self._integral(t1) - self._integral(t0)
        return (np.maximum(before, 0.0) + after) / (t1 - t0)

    def __repr__(self) -> str:
        return (f"sinusoid(mean={self.mean_rate!r}, amplitude={self.amplitude!r}, "
                f"frequency={self.frequency!r}, phase={self.phase!r}, start={self.start!r})")
