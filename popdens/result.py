"""The :class:`Result` of a run: the same fields for every backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .grid import Grid
from .saving import save as _save
from .saving import to_xarray as _to_xarray

__all__ = ["Result"]


@dataclass
class Result:
    """Output of :meth:`popdens.Network.run`.

    Attributes
    ----------
    t : ndarray, shape (n_steps,)
        Start time of each reporting step (s).
    dt : float
        Reporting step (s).
    rates : dict[str, ndarray]
        Per population, the mean firing rate over ``[t[k], t[k] + dt)`` (Hz; spikes per
        neuron per second).
    record_times : ndarray
        Times (s) at which densities were recorded.
    densities : dict[str, ndarray]
        Per population, shape ``(len(record_times), *grid.shape)``: probability density
        per unit phase-space volume (per volt in 1D). Monte Carlo fills it with the
        normalised histogram of its neurons on the same cells. Refractory neurons are not
        on the grid, so it integrates to the non-refractory fraction.
    grids : dict[str, Grid]
        The grid of each population.
    backend : str
        ``"density"`` or ``"montecarlo"``.
    wall_time : float
        Seconds spent integrating (compilation excluded where it could be).
    n_neurons : int, dict or None
        Neurons per population (Monte Carlo only).
    refractory : dict[str, ndarray]
        Fraction of neurons refractory at the end of each step.
    info : dict
        Backend details (scheme, internal sub-steps, seed, ...).
    description : dict or None
        The network that produced the result, as :func:`popdens.io.describe` gives it
        (set by :meth:`popdens.Network.run`); saved with the result so that a figure can
        be regenerated from the file.
    saved_version : str or None
        The popdens version that wrote the file this result was loaded from
        (:func:`popdens.load`); None for a result fresh from a run.
    """

    t: np.ndarray
    dt: float
    rates: dict
    record_times: np.ndarray
    densities: dict
    grids: dict
    backend: str
    wall_time: float = 0.0
    n_neurons: int | dict | None = None
    refractory: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    description: dict | None = None
    saved_version: str | None = None

    def binned_rates(self, name: str, width: float) -> tuple[np.ndarray, np.ndarray]:
        """Rates averaged over bins of ``width`` seconds (a whole number of steps).

        Returns
        -------
        t_bins : ndarray
            Start of each bin (s).
        rates : ndarray
            Mean rate in each bin (Hz).
        """
        k = max(1, int(round(width / self.dt)))
        r = np.asarray(self.rates[name])
        n = (r.size // k) * k
        return self.t[:n:k], r[:n].reshape(-1, k).mean(axis=1)

    def standard_error(self, name: str, width: float) -> np.ndarray:
        """Poisson standard error of the Monte Carlo binned rate, ``sqrt(r / (N width))``.

        Uses the binned rate itself; only meaningful for ``backend="montecarlo"``.
        """
        if self.n_neurons is None:
            raise ValueError("standard_error needs a Monte Carlo result (n_neurons is None)")
        n = self.n_neurons[name] if isinstance(self.n_neurons, dict) else self.n_neurons
        k = max(1, int(round(width / self.dt)))
        _, r = self.binned_rates(name, width)
        return np.sqrt(np.maximum(r, 0.0) / (n * k * self.dt))

    def mean_rate(self, name: str, t_from: float = 0.0, t_to: float | None = None) -> float:
        """Mean rate over ``[t_from, t_to)`` (Hz)."""
        t_to = np.inf if t_to is None else t_to
        sel = (self.t >= t_from - 1e-12) & (self.t < t_to - 1e-12)
        return float(np.mean(np.asarray(self.rates[name])[sel]))

    def save(self, path) -> Path:
        """Write the result to ``path``: ``.npz`` (numpy) or ``.nc`` (NetCDF).

        The file holds every array, the backend details, the popdens version and the
        network :attr:`description`; :func:`popdens.load` reads it back.

        Parameters
        ----------
        path : str or Path
            File name ending in ``.npz`` (always available) or ``.nc`` (needs xarray:
            ``pip install 'popdens[xarray]'``).

        Returns
        -------
        Path
            The path written.

        Raises
        ------
        ValueError
            For another file extension.
        ImportError
            For ``.nc`` without xarray.
        """
        return _save(self, path)

    def to_xarray(self):
        """The result as an :class:`xarray.Dataset` (needs xarray); layout in
        :func:`popdens.io.to_xarray`."""
        return _to_xarray(self)

    def centers(self, name: str) -> np.ndarray:
        """Cell centers of a 1D population's grid."""
        grid: Grid = self.grids[name]
        return grid.axes[0].centers
