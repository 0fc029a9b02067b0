"""Synchrony measures of population spike counts: the spike synchrony index (SSI) of
Chang et al. (2025) and the rate peaks of their bifurcation plots."""

from __future__ import annotations

import numpy as np

from .._checks import as_real, check_int, check_positive

__all__ = ["ssi", "ssi_poisson", "rate_peaks"]


def _window(half_window, dt) -> int:
    half_window = check_positive("half_window", half_window)
    dt = check_positive("dt", dt)
    w = int(round(half_window / dt))
    if w < 1 or abs(w * dt - half_window) > 1e-9 * half_window:
        raise ValueError(f"half_window={half_window!r} must be a positive whole number of "
                         f"dt={dt!r}")
    return w


def ssi(counts, n_neurons, half_window=0.5e-3, dt=1e-4) -> float:
    r"""Spike synchrony index of a population (Chang et al. 2025; the authors'
    ``compute_SSI.m``).

    With :math:`c_t` the spikes of the population in step :math:`t` and
    :math:`w` = ``half_window / dt`` steps,

    .. math::

        \mathrm{SSI} = \frac{1}{N}\,
            \frac{\sum_t c_t \sum_{|s - t| \le w} c_s}{\sum_t c_t},

    the spike-weighted mean fraction of the population that fires within
    ``half_window`` of a spike (the spike itself included), over the steps
    :math:`w \le t < T - w` whose window fits. 1 when the whole population fires in
    isolated single-step volleys; for independent Poisson counts of mean :math:`m` per
    step, :math:`(1 + (2w + 1) m)/N` (:func:`ssi_poisson`): near 0 for asynchronous
    firing. Expected (real-valued) counts of a deterministic reduction are accepted.
    """
    c = np.asarray(counts, dtype=float)
    if c.ndim != 1 or not np.all(np.isfinite(c)) or np.any(c < 0):
        raise ValueError("counts must be a 1D array of finite values >= 0")
    n_neurons = check_int("n_neurons", n_neurons, 1)
    w = _window(half_window, dt)
    if c.size < 2 * w + 1:
        raise ValueError(f"counts has {c.size} steps, fewer than the window's {2 * w + 1}")
    csum = np.concatenate([[0.0], np.cumsum(c)])
    t = np.arange(w, c.size - w)
    window = csum[t + w + 1] - csum[t - w]
    total = c[t].sum()
    if total == 0.0:
        raise ValueError("counts holds no spike in the evaluated steps: SSI undefined")
    return float((c[t] * window).sum() / total / n_neurons)


def ssi_poisson(mean_count, n_neurons, half_window=0.5e-3, dt=1e-4) -> float:
    """SSI of independent Poisson counts of mean ``mean_count`` per step (the
    asynchronous baseline): ``(1 + (2w + 1) mean_count) / n_neurons``."""
    w = _window(half_window, dt)
    return (1.0 + (2 * w + 1) * check_positive("mean_count", mean_count)) / n_neurons


def rate_peaks(counts, n_neurons, dt=1e-4, smooth=1e-3, min_distance=9e-3,
               min_height=0.0) -> np.ndarray:
    """Heights (Hz per neuron) of the local maxima of the rate smoothed by a moving mean
    of ``smooth`` seconds, greedily keeping the highest peaks at least ``min_distance``
    apart (as the authors' bifurcation plot, ``plot_bifurcation.m``)."""
    c = np.asarray(counts, dtype=float)
    n_neurons = check_int("n_neurons", n_neurons, 1)
    k = max(1, int(round(check_positive("smooth", smooth) / check_positive("dt", dt))))
    rate = np.convolve(c, np.ones(k) / k, mode="same") / (n_neurons * dt)
    inner = rate[1:-1]
    idx = np.flatnonzero((inner > rate[:-2]) & (inner >= rate[2:])
                         & (inner > as_real("min_height", min_height))) + 1
    sep = int(round(check_positive("min_distance", min_distance) / dt))
    taken = np.zeros(rate.size, dtype=bool)
    keep = []
    for i in idx[np.argsort(-rate[idx], kind="stable")]:
        if not taken[max(0, i - sep + 1):i + sep].any():
            keep.append(i)
            taken[i] = True
    return rate[np.sort(np.array(keep, dtype=int))]
