"""The result every description of the MIF network returns: spike counts per step."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .._checks import as_real
from . import synchrony

__all__ = ["MarkovResult", "POPULATIONS"]

POPULATIONS = ("E", "I")


@dataclass
class MarkovResult:
    """Spike counts per step of one description of an :class:`MIFNetwork`.

    ``counts[pop]``: spikes of the population in each step ``[t_k, t_k + dt)`` (integers
    for the spiking network and the SDE, expected counts for the ODE);
    ``rates[pop]``: the same as Hz per neuron. ``info``: method, wall time (s), extras.
    """

    method: str
    t: np.ndarray
    counts: dict
    n_neurons: dict
    dt: float
    info: dict = dataclasses.field(default_factory=dict)

    @property
    def rates(self) -> dict:
        return {p: self.counts[p] / (self.n_neurons[p] * self.dt) for p in self.counts}

    def mean_rate(self, pop: str, t_min: float = 0.1) -> float:
        """Mean firing rate (Hz per neuron) of ``pop`` over ``t >= t_min``."""
        keep = self.t >= as_real("t_min", t_min) - 1e-12
        if not keep.any():
            raise ValueError(f"t_min={t_min!r} is past the end of the run")
        return float(self.counts[_check_pop(pop)][keep].mean()
                     / (self.n_neurons[pop] * self.dt))

    def ssi(self, pop: str, half_window: float = 0.5e-3, t_min: float = 0.1) -> float:
        """Spike synchrony index of ``pop`` over ``t >= t_min`` (:func:`ssi`)."""
        keep = self.t >= as_real("t_min", t_min) - 1e-12
        return synchrony.ssi(self.counts[_check_pop(pop)][keep], self.n_neurons[pop],
                             half_window=half_window, dt=self.dt)


def _check_pop(pop):
    if pop not in POPULATIONS:
        raise ValueError(f"pop must be one of {POPULATIONS}, got {pop!r}")
    return pop
