r"""Statistics of spike-count trains: the spike synchrony index, rate peaks, and the
parameter scan behind a bifurcation diagram."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ._model import POPULATIONS, MIFNetwork
from .density import DensityReduction
from .reduction import MarkovODE, MarkovSDE
from .synchrony import rate_peaks, ssi, ssi_poisson

__all__ = ["ssi", "ssi_poisson", "rate_peaks", "scan", "ScanResult", "METHODS"]

# "density" (popdens's engine) is the slowest (~20 s per simulated second): not in the
# default scan.
METHODS = ("spiking", "sde", "ode-authors", "ode-textbook", "density")
SCAN_METHODS = METHODS[:4]


def run_method(net: MIFNetwork, method: str, t_end: float, seed: int = 0, **options):
    """One run of ``method`` (:data:`METHODS`) on ``net``."""
    if method == "spiking":
        return net.simulate(t_end, seed=seed)
    if method == "sde":
        return MarkovSDE(net, **options).run(t_end, seed=seed)
    if method in ("ode-authors", "ode-textbook"):
        return MarkovODE(net, refractory=method[4:], **options).run(t_end)
    if method == "density":
        return DensityReduction(net, **options).run(t_end)
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


def scan(net: MIFNetwork, values, param="p_EI", t_end=3.0, methods=SCAN_METHODS, seed=1,
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
