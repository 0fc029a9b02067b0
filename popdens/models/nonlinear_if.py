"""One-dimensional nonlinear integrate-and-fire neurons: exponential (EIF) and quadratic
(QIF), each spiking at a cut-off where its membrane potential runs away."""

from __future__ import annotations

import math

import numpy as np

from .._checks import as_real, check_nonnegative, check_positive
from ..grid import Grid
from ..kernels.mc_if_family import EIFParams, QIFParams
from .base import Model, ThresholdReset, keeps_physics

__all__ = ["EIF", "QIF", "input_moments"]

# Default resolution: cells between reset and cut-off. The EIF's stationary rate on its
# default grid (tests/models/test_if_family.py) is within 0.5 % of threshold integration.
_EIF_CELLS_PER_GAP = 400
_QIF_CELLS_PER_GAP = 1000
_MAX_DEFAULT_CELLS = 20_000
# With inhibition or white noise the lower edge lies this many standard deviations of
# the free-membrane (diffusion) estimate below the mean drive, as for the LIF.
_LOWER_SDS = 6.0


def input_moments(inputs, tau: float) -> tuple[float, float, list, list]:
    """Mean drive ``tau sum r w`` (V), stationary standard deviation
    ``sqrt(tau sum r w^2 / 2)`` (V) of a free membrane of time constant ``tau`` under the
    connections ``inputs`` (``(rate, weight, kind)``), and the excitatory / inhibitory
    jump sizes."""
    inputs = [(float(r), float(w), kind) for (r, w, kind) in inputs]
    mean = tau * sum(r * w for (r, w, _) in inputs)
    sd = math.sqrt(max(tau * sum(r * w * w for (r, w, _) in inputs) / 2.0, 0.0))
    up = [w for (_, w, kind) in inputs if kind == "jump" and w > 0.0]
    down = [-w for (_, w, kind) in inputs if kind == "jump" and w < 0.0]
    return mean, sd, up, down


def _grid_1d(upper: float, lower: float, dx: float, jumps) -> Grid:
    """A ``v`` grid ending at ``upper`` with cells of about ``dx``, shrunk so that the
    smallest jump is a whole number of cells (jumps then move mass exactly)."""
    if jumps:
        h = min(jumps)
        dx = h / math.ceil(h / dx - 1e-9)
    num_cells = math.ceil((upper - lower) / dx - 1e-9)
    if num_cells > _MAX_DEFAULT_CELLS:
        num_cells = _MAX_DEFAULT_CELLS
        dx = (upper - lower) / num_cells
    num_cells = max(num_cells, 2)
    return Grid(v=(upper - num_cells * dx, upper, num_cells))


class EIF(Model):
    r"""Exponential integrate-and-fire neuron (Fourcaud-Trocmé et al. 2003).

    .. math::

        \tau_m \frac{dv}{dt} = e_l - v + \Delta_T\, e^{(v - v_T)/\Delta_T}
            + \tau_m \sum_k h_k\,\delta(t - t_k).

    Below ``v_t`` the exponential is small and the neuron is leaky; above it the
    potential runs away and reaches infinity in finite time. A spike is registered when
    ``v`` reaches the cut-off ``v_cut`` (the upper face of the grid), after which the
    neuron is refractory for ``t_ref`` and restarts at ``v_reset``. The time from a
    cut-off ``v_cut`` to infinity is about :math:`\tau_m \Delta_T e^{-(v_{cut} -
    v_T)/\Delta_T}` (8 us at the defaults), so the rate hardly depends on it. Synaptic
    events of ``weight`` :math:`h_k` (V) jump ``v``; ``input="diffusion"`` connections
    give the white-noise limit.

    Parameters
    ----------
    tau_m : float, default 10e-3
        Membrane time constant (s), > 0.
    e_l : float, default -65e-3
        Leak reversal potential (V).
    v_t : float, default -59.9e-3
        Spike initiation threshold (V): the potential of the drift's minimum.
    delta_t : float, default 3.48e-3
        Slope factor (V), > 0.
    v_cut : float, default -30e-3
        Cut-off (V) at which a spike is counted, > ``v_t``.
    v_reset : float, default -68e-3
        Reset potential (V), < ``v_cut``.
    t_ref : float, default 1.7e-3
        Refractory period (s), >= 0.

    Notes
    -----
    Defaults: ``v_t`` and ``delta_t`` are the EIF fit to the Wang-Buzsáki interneuron of
    Fourcaud-Trocmé, Hansel, van Vreeswijk & Brunel (2003), J. Neurosci. 23:11628, with
    that model's leak (``e_l = -65 mV``, ``tau_m = C / g_L = 1 uF/cm^2 / 0.1 mS/cm^2 =
    10 ms``); ``v_cut``, ``v_reset`` and ``t_ref`` are this library's choices (those of
    the README's user-written EIF).

    Examples
    --------
    >>> import popdens as pd
    >>> m = pd.EIF()
    >>> round(float(m.drift(m.v_t)) * m.tau_m * 1e3, 2)     # tau dv/dt at v_t, mV
    -1.62
    """

    state_vars = ("v",)
    state_units = {"v": "V"}

    def __init__(self, tau_m: float = 10e-3, e_l: float = -65e-3, v_t: float = -59.9e-3,
                 delta_t: float = 3.48e-3, v_cut: float = -30e-3, v_reset: float = -68e-3,
                 t_ref: float = 1.7e-3):
        self.tau_m = check_positive("tau_m", tau_m)
        self.e_l = as_real("e_l", e_l)
        self.v_t = as_real("v_t", v_t)
        self.delta_t = check_positive("delta_t", delta_t)
        self.v_cut = as_real("v_cut", v_cut)
        self.v_reset = as_real("v_reset", v_reset)
        self.t_ref = check_nonnegative("t_ref", t_ref)
        if not self.v_cut > self.v_t:
            raise ValueError(f"v_cut must be > v_t (the cut-off lies where the potential "
                             f"runs away), got v_cut={self.v_cut!r}, v_t={self.v_t!r}")
        if not self.v_reset < self.v_cut:
            raise ValueError(f"v_reset must be < v_cut, got v_reset={self.v_reset!r}, "
                             f"v_cut={self.v_cut!r}")

    def params(self) -> dict:
        return {"tau_m": self.tau_m, "e_l": self.e_l, "v_t": self.v_t,
                "delta_t": self.delta_t, "v_cut": self.v_cut, "v_reset": self.v_reset,
                "t_ref": self.t_ref}

    def compiled_params(self) -> EIFParams | None:
        """Parameters of the compiled single-neuron update
        (:mod:`popdens.kernels.mc_if_family`); None for a subclass that changes the
        physics (:func:`popdens.models.base.keeps_physics`)."""
        if not keeps_physics(self, EIF):
            return None
        return EIFParams(self.tau_m, self.e_l, self.v_t, self.delta_t, self.v_cut,
                         self.v_reset, self.t_ref)

    def potential_drift(self, v):
        r"""``F(v) = e_l - v + delta_t exp((v - v_t)/delta_t)`` (V): ``tau_m dv/dt``
        without input (the drift callable of :func:`popdens.threshold_integration_1d`)."""
        v = np.asarray(v, dtype=float)
        with np.errstate(over="ignore"):
            return self.e_l - v + self.delta_t * np.exp((v - self.v_t) / self.delta_t)

    def drift(self, v):
        """Deterministic velocity ``F(v) / tau_m`` (V/s), vectorised."""
        return self.potential_drift(v) / self.tau_m

    @property
    def spike_rule(self) -> ThresholdReset:
        """Spike at ``v_cut``, reset ``v_reset``, refractory period ``t_ref``."""
        return ThresholdReset("v", self.v_cut, self.v_reset, self.t_ref)

    @property
    def time_scale(self) -> float:
        """``tau_m``."""
        return self.tau_m

    @property
    def resting_state(self) -> float:
        """The stable fixed point of the drift (below ``v_t``) when there is one, i.e.
        when ``e_l < v_t - delta_t``; otherwise (a tonically firing neuron)
        ``v_reset``."""
        if not self.e_l < self.v_t - self.delta_t:
            return self.v_reset
        v = min(self.e_l, self.v_t - self.delta_t)
        for _ in range(60):   # Newton from below: F convex, decreasing there
            f = float(self.potential_drift(v))
            slope = -1.0 + math.exp((v - self.v_t) / self.delta_t)
            step = f / slope
            v -= step
            if abs(step) < 1e-15:
                break
        return v

    def default_grid(self, inputs=()) -> Grid:
        """A ``v`` grid from below the resting range to ``v_cut``.

        Parameters
        ----------
        inputs : iterable of (rate, weight, kind)
            Peak Poisson rate (Hz), weight (V) and ``"jump"`` / ``"diffusion"`` of every
            connection.

        Notes
        -----
        Cells of ``(v_cut - v_reset) / 400`` (shrunk so the smallest jump is a whole
        number of cells). The lower edge is ``min(e_l, v_reset)``; with inhibition or
        white noise, 6 standard deviations of the free-membrane estimate below
        ``e_l`` + mean drive, and one inhibitory jump below the reset.
        """
        mean, sd, up, down = input_moments(inputs, self.tau_m)
        lower = min(self.e_l, self.v_reset)
        if any(kind != "jump" or w < 0.0 for (_, w, kind) in inputs):
            lower = min(lower, self.e_l + mean - _LOWER_SDS * sd,
                        self.v_reset - max(down, default=0.0))
        dx = (self.v_cut - self.v_reset) / _EIF_CELLS_PER_GAP
        return _grid_1d(self.v_cut, lower, dx, up + down)


class QIF(Model):
    r"""Quadratic integrate-and-fire neuron in its normal form (the theta neuron).

    .. math::

        \tau_m \frac{dv}{dt} = \frac{v^2}{\delta} + \eta
            + \tau_m \sum_k h_k\,\delta(t - t_k),

    ``v`` measured from the saddle-node point (V). With :math:`\eta < 0` the neuron is
    excitable: it rests at :math:`-\sqrt{-\eta\delta}` below the unstable point
    :math:`+\sqrt{-\eta\delta}`; with :math:`\eta > 0` it fires tonically with period
    :math:`\pi \tau_m \sqrt{\delta/\eta}` (spike at :math:`+\infty`, reset at
    :math:`-\infty`). A spike is counted at the cut-off ``v_cut`` (the upper face of the
    grid), after which the neuron restarts at ``v_reset`` (default ``-v_cut``, the
    normal-form reset) after ``t_ref``. The cut-off shortens the period by about
    :math:`2 \tau_m \delta / v_{cut}` (time from :math:`\pm v_{cut}` to
    :math:`\pm\infty` each), so rates converge as ``1 / v_cut``.

    Parameters
    ----------
    tau_m : float, default 10e-3
        Membrane time constant (s), > 0.
    delta : float, default 10e-3
        Voltage scale of the curvature (V), > 0.
    eta : float, default -2.5e-3
        Excitability (V): constant drive; rest and unstable point at -5 mV and +5 mV by
        default.
    v_cut : float, default 0.1
        Cut-off (V), > 0.
    v_reset : float, optional
        Reset (V), < ``v_cut``; default ``-v_cut``.
    t_ref : float, default 0.0
        Refractory period (s), >= 0.

    Examples
    --------
    >>> import popdens as pd
    >>> m = pd.QIF(eta=1e-3)
    >>> round(1.0 / m.noiseless_period(), 3)       # Hz, with the cut-off at 0.1 V
    10.273
    """

    state_vars = ("v",)
    state_units = {"v": "V"}

    def __init__(self, tau_m: float = 10e-3, delta: float = 10e-3, eta: float = -2.5e-3,
                 v_cut: float = 0.1, v_reset: float | None = None, t_ref: float = 0.0):
        self.tau_m = check_positive("tau_m", tau_m)
        self.delta = check_positive("delta", delta)
        self.eta = as_real("eta", eta)
        self.v_cut = check_positive("v_cut", v_cut)
        self.v_reset = -self.v_cut if v_reset is None else as_real("v_reset", v_reset)
        self.t_ref = check_nonnegative("t_ref", t_ref)
        if not self.v_reset < self.v_cut:
            raise ValueError(f"v_reset must be < v_cut, got v_reset={self.v_reset!r}, "
                             f"v_cut={self.v_cut!r}")
        if self.eta < 0.0 and not math.sqrt(-self.eta * self.delta) < self.v_cut:
            raise ValueError(f"v_cut={self.v_cut!r} must lie above the unstable fixed point "
                             f"sqrt(-eta delta)={math.sqrt(-self.eta * self.delta)!r}")

    def params(self) -> dict:
        return {"tau_m": self.tau_m, "delta": self.delta, "eta": self.eta,
                "v_cut": self.v_cut, "v_reset": self.v_reset, "t_ref": self.t_ref}

    def compiled_params(self) -> QIFParams | None:
        """Parameters of the compiled single-neuron update
        (:mod:`popdens.kernels.mc_if_family`); None for a subclass that changes the
        physics (:func:`popdens.models.base.keeps_physics`)."""
        if not keeps_physics(self, QIF):
            return None
        return QIFParams(self.tau_m, self.delta, self.eta, self.v_cut, self.v_reset,
                         self.t_ref)

    def potential_drift(self, v):
        """``F(v) = v^2 / delta + eta`` (V): ``tau_m dv/dt`` without input."""
        v = np.asarray(v, dtype=float)
        return v * v / self.delta + self.eta

    def drift(self, v):
        """Deterministic velocity ``F(v) / tau_m`` (V/s), vectorised."""
        return self.potential_drift(v) / self.tau_m

    @property
    def spike_rule(self) -> ThresholdReset:
        """Spike at ``v_cut``, reset ``v_reset``, refractory period ``t_ref``."""
        return ThresholdReset("v", self.v_cut, self.v_reset, self.t_ref)

    @property
    def time_scale(self) -> float:
        """``tau_m``."""
        return self.tau_m

    @property
    def resting_state(self) -> float:
        """``-sqrt(-eta delta)`` when excitable (``eta < 0``), else ``v_reset``."""
        if self.eta < 0.0:
            return max(-math.sqrt(-self.eta * self.delta), self.v_reset)
        return self.v_reset

    def noiseless_period(self, mu: float = 0.0) -> float:
        """Interspike interval (s) without noise under a constant extra drive ``mu`` (V):
        the time from ``v_reset`` to ``v_cut`` plus ``t_ref``; ``inf`` when the neuron
        does not fire (``eta + mu <= 0``)."""
        e = self.eta + as_real("mu", mu)
        if e <= 0.0:
            return math.inf
        s = math.sqrt(self.delta * e)
        return self.t_ref + self.tau_m * self.delta / s * (
            math.atan(self.v_cut / s) - math.atan(self.v_reset / s))

    def default_grid(self, inputs=()) -> Grid:
        """A ``v`` grid from just below ``v_reset`` to ``v_cut``.

        Notes
        -----
        ``1000`` cells between reset and cut-off (0.2 mV at the defaults), shrunk so the
        smallest jump is a whole number of cells. Below the reset the drift pushes up
        (``v^2/delta`` dominates there), so the lower edge is the reset less one largest
        inhibitory jump, at least 2 % of the reset-to-cut-off gap; an excitable neuron's
        grid also reaches 6 free-membrane standard deviations (and one inhibitory jump)
        below its resting point.
        """
        _, sd, up, down = input_moments(inputs, self.tau_m)
        gap = self.v_cut - self.v_reset
        lower = self.v_reset - max(max(down, default=0.0), 0.02 * gap)
        if self.eta < 0.0:   # excitable: room below the resting point for the noise
            lower = min(lower, -math.sqrt(-self.eta * self.delta) - _LOWER_SDS * sd
                        - max(down, default=0.0))
        return _grid_1d(self.v_cut, lower, gap / _QIF_CELLS_PER_GAP, up + down)
