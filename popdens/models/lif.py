"""Leaky integrate-and-fire neuron."""

from __future__ import annotations

import math

import numpy as np

from .._checks import as_real, check_nonnegative, check_positive
from ..grid import Grid
from ..kernels.mc_lif import LIFParams, lif_params
from .base import Model, ThresholdReset

__all__ = ["LIF", "transient_lower_edge"]

# Default grid resolution: cells between reset and threshold. Measured: the steady rate
# of the documented examples is within 0.5 % of the converged value from 200 cells on
# (benchmarks/bench_lif_1d.py, tests/accuracy/test_accuracy.py); 400 leaves margin.
_CELLS_PER_RESET_GAP = 400
_MAX_DEFAULT_CELLS = 20_000

# Standard deviations of the free membrane potential that a default grid holds below its
# mean: the Gaussian tail beyond is 1e-9 of the mass.
_LOWER_EDGE_SDS = 6.0


def transient_lower_edge(start: float, mean: float, var: float) -> float:
    r"""Lowest point over time of mean - 6 sd of the free membrane potential from ``start``.

    In the diffusion approximation the membrane potential without threshold is an
    Ornstein-Uhlenbeck process; started at :math:`v_0` it is Gaussian at every time with

    .. math::

        m(t) = \mu + (v_0 - \mu)\,x, \qquad s(t) = \sigma_\infty \sqrt{1 - x^2},
        \qquad x = e^{-t/\tau_m} \in (0, 1],

    where :math:`\mu` and :math:`\sigma_\infty^2` are the stationary mean and variance.
    A population started at rest below its mean drive rises with the mean while its
    spread grows almost at once, so :math:`m - 6s` dips below the stationary
    :math:`\mu - 6\sigma_\infty` during the transient. Maximising
    :math:`(\mu - v_0)x + 6\sigma_\infty\sqrt{1 - x^2}` over :math:`x` gives

    .. math::

        \min_t\,[m(t) - 6 s(t)] = \mu - \sqrt{36\,\sigma_\infty^2
        + \max(\mu - v_0, 0)^2}.

    Parameters
    ----------
    start : float
        Initial membrane potential :math:`v_0` (V).
    mean, var : float
        Stationary mean (V) and variance (V^2) of the free membrane potential.

    Returns
    -------
    float
        The lower edge (V); the stationary ``mean - 6 sqrt(var)`` when ``start >= mean``.
    """
    rise = max(mean - start, 0.0)
    return mean - math.sqrt(_LOWER_EDGE_SDS ** 2 * var + rise * rise)


class LIF(Model):
    r"""Leaky integrate-and-fire neuron with threshold, reset and refractory period.

    .. math::

        \frac{dv}{dt} = \frac{e_l - v}{\tau_m} + \sum_k h_k\,\delta(t - t_k),

    where each synaptic event at :math:`t_k` moves :math:`v` by the connection's
    ``weight`` :math:`h_k` (volts). When :math:`v` reaches ``v_th`` the neuron spikes, is
    held for ``t_ref`` (ignoring input) and restarts at ``v_reset``.

    Parameters
    ----------
    tau_m : float
        Membrane time constant (s), > 0.
    v_th : float
        Threshold (V).
    v_reset : float
        Reset potential (V), < ``v_th``.
    e_l : float, default 0.0
        Leak reversal (resting) potential (V).
    t_ref : float, default 0.0
        Absolute refractory period (s), >= 0.

    Notes
    -----
    Any consistent unit system works: the dimensionless convention of Omurtag, Knight &
    Sirovich (2000) is ``LIF(tau_m=0.02, v_th=1.0, v_reset=0.0)``.
    """

    state_vars = ("v",)
    exact_flow = True
    state_units = {"v": "V"}

    def __init__(self, tau_m: float, v_th: float, v_reset: float, e_l: float = 0.0,
                 t_ref: float = 0.0):
        self.tau_m = check_positive("tau_m", tau_m)
        self.v_th = as_real("v_th", v_th)
        self.v_reset = as_real("v_reset", v_reset)
        self.e_l = as_real("e_l", e_l)
        self.t_ref = check_nonnegative("t_ref", t_ref)
        if not self.v_reset < self.v_th:
            raise ValueError(f"v_reset must be < v_th, got v_reset={self.v_reset!r}, "
                             f"v_th={self.v_th!r}")

    def params(self) -> dict:
        return {"tau_m": self.tau_m, "v_th": self.v_th, "v_reset": self.v_reset,
                "e_l": self.e_l, "t_ref": self.t_ref}

    def compiled_params(self) -> LIFParams:
        """Parameters of the compiled single-neuron update (:mod:`popdens.kernels.mc_lif`)."""
        return lif_params(self.tau_m, self.v_th, self.v_reset, self.e_l, self.t_ref)

    @property
    def spike_rule(self) -> ThresholdReset:
        """Threshold ``v_th``, reset ``v_reset``, refractory period ``t_ref``."""
        return ThresholdReset("v", self.v_th, self.v_reset, self.t_ref)

    @property
    def time_scale(self) -> float:
        """``tau_m``."""
        return self.tau_m

    # --- physics as data -------------------------------------------------------------
    def drift(self, v):
        """Deterministic velocity ``dv/dt = (e_l - v) / tau_m`` (V/s)."""
        return (self.e_l - np.asarray(v, dtype=float)) / self.tau_m

    def flow(self, v, t: float):
        """Exact deterministic flow: where a neuron at ``v`` is after time ``t``.

        Negative ``t`` flows backwards (departure points)."""
        return self.e_l + (np.asarray(v, dtype=float) - self.e_l) * math.exp(-t / self.tau_m)

    @property
    def resting_state(self) -> float:
        """Where the density starts by default: ``e_l``, or ``v_reset`` if ``e_l`` is not
        below threshold."""
        return self.e_l if self.e_l < self.v_th else self.v_reset

    def validate_grid(self, grid: Grid) -> None:
        """Raise ``ValueError`` unless ``grid`` is a 1D ``v`` grid ending at ``v_th`` that
        contains ``v_reset``."""
        if not isinstance(grid, Grid):
            raise TypeError(f"grid must be a popdens.Grid, got {type(grid).__name__}")
        if grid.names != self.state_vars:
            raise ValueError(f"grid axes {grid.names} do not match the LIF state variables "
                             f"{self.state_vars}")
        ax = grid.axes[0]
        if not ax.contains(self.v_th) or not ax.contains(self.v_reset):
            raise ValueError(f"grid v=({ax.lower:g}, {ax.upper:g}) must contain v_reset="
                             f"{self.v_reset:g} and v_th={self.v_th:g}")
        if ax.face_index(self.v_th) != ax.num_cells:
            raise ValueError(f"grid upper={ax.upper!r} must equal the threshold v_th="
                             f"{self.v_th!r}: the threshold is the grid's upper face")
        if self.v_reset < ax.lower:
            raise ValueError(f"grid lower={ax.lower!r} lies above v_reset={self.v_reset!r}")

    def default_grid(self, inputs=()) -> Grid:
        """A grid that covers where the density lives for the given inputs.

        Parameters
        ----------
        inputs : iterable of (rate, weight, kind)
            Largest expected Poisson rate (Hz), jump size (V) and ``"jump"`` or
            ``"diffusion"`` of every connection onto the population.

        Notes
        -----
        The cell width is ``(v_th - v_reset) / 400`` shrunk so that the smallest jump is a
        whole number of cells (jumps then move mass exactly, with no splitting). The lower
        edge is ``min(e_l, v_reset)`` with excitation only; with inhibition or noise it
        extends to the lowest point of mean - 6 standard deviations of the free membrane
        potential started at rest (:func:`transient_lower_edge`; the population starts
        there), and at least one inhibitory jump below reset.
        """
        gap = self.v_th - self.v_reset
        dx = gap / _CELLS_PER_RESET_GAP
        jumps = [abs(w) for (_, w, kind) in inputs if kind == "jump" and w != 0.0]
        if jumps:
            h = min(jumps)
            dx = h / math.ceil(h / dx - 1e-9)
        lower = min(self.e_l, self.v_reset)
        excitatory_only = all(w >= 0.0 and kind == "jump" for (_, w, kind) in inputs)
        if not excitatory_only:
            mean = self.e_l + self.tau_m * sum(r * w for (r, w, _) in inputs)
            var = self.tau_m * sum(r * w * w for (r, w, _) in inputs) / 2.0
            lower = min(lower, transient_lower_edge(self.resting_state, mean, var))
            inhibitory = [-w for (_, w, _) in inputs if w < 0.0]
            if inhibitory:
                lower = min(lower, self.v_reset - max(inhibitory))
        num_cells = math.ceil((self.v_th - lower) / dx - 1e-9)
        if num_cells > _MAX_DEFAULT_CELLS:
            num_cells = _MAX_DEFAULT_CELLS
            dx = (self.v_th - lower) / num_cells
        num_cells = max(num_cells, 2)
        return Grid(v=(self.v_th - num_cells * dx, self.v_th, num_cells))
