r"""Statistics of spike-count trains: the spike synchrony index, rate peaks, and the
parameter scan behind a bifurcation diagram."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .._checks import as_real, check_int, check_positive
from ._model import POPULATIONS, MIFNetwork
from .reduction import MarkovODE, MarkovSDE

__all__ = ["ssi", "ssi_poisson", "rate_peaks", "scan", "ScanResult", "METHODS"]

METHODS = ("spiking", "sde", "ode-authors", "ode-textbook")


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


def run_method(net: MIFNetwork, method: str, t_end: float, seed: int = 0, **options):
    """One run of ``method`` (:data:`METHODS`) on ``net``."""
    if method == "spiking":
        return net.simulate(t_end, seed=seed)
    if method == "sde":
        return MarkovSDE(net, **options).run(t_end, seed=seed)
    if method in ("ode-authors", "ode-textbook"):
        return MarkovODE(net, refractory=method[4:], **options).run(t_end)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


@dataclass
class ScanResult:
    """Rates (Hz), SSI and rate peaks per method (keys) and parameter value (axis 0)."""

    param: str
    values: np.ndarray
    rate: dict = field(default_factory=dict)       # method -> (n_values, 2): E, I
    ssi: dict = field(default_factory=dict)        # method -> (n_values, 2)
    peaks: dict = field(default_factory=dict)      # method -> list of arrays (E rate)
    wall_time: dict = field(default_factory=dict)  # method -> (n_values,) s


def scan(net: MIFNetwork, values, param="p_EI", t_end=3.0, methods=METHODS, seed=1,
         t_min=0.1) -> ScanResult:
    """Run each of ``methods`` at every value of ``param`` (default ``p_EI``, the
    inhibitory-to-excitatory release probability of the paper's bifurcation diagram);
    statistics over ``t >= t_min``."""
    values = np.atleast_1d(np.asarray(values, dtype=float))
    if param not in MIFNetwork.__dataclass_fields__:
        raise ValueError(f"param must be a MIFNetwork field, got {param!r}")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"methods must be among {METHODS}, got {unknown[0]!r}")
    out = ScanResult(param, values)
    for method in methods:
        rates, ssis, peaks, walls = [], [], [], []
        for value in values:
            start = time.perf_counter()
            res = run_method(net.replace(**{param: value}), method, t_end, seed)
            walls.append(time.perf_counter() - start)
            rates.append([res.mean_rate(p, t_min) for p in POPULATIONS])
            ssis.append([res.ssi(p, t_min=t_min) for p in POPULATIONS])
            keep = res.t >= t_min
            peaks.append(rate_peaks(res.counts["E"][keep], net.n_E, net.dt))
        out.rate[method], out.ssi[method] = np.array(rates), np.array(ssis)
        out.peaks[method], out.wall_time[method] = peaks, np.array(walls)
    return out
