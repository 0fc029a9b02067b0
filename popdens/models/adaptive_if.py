"""Two-dimensional integrate-and-fire neurons with an adaptation variable: the adaptive
exponential integrate-and-fire model (AdEx) and Izhikevich's simple model. Both fire
through a cut-off of ``v`` and re-enter at the reset with the adaptation variable
incremented (``w += b``, ``u += d``) through :meth:`Model.refractory_map`."""

from __future__ import annotations

import math

import numpy as np

from .._checks import as_real, check_nonnegative, check_positive
from ..grid import Grid
from ..kernels.mc_if_family import AdExParams, IzhikevichParams
from .base import Model, ThresholdReset, keeps_physics
from .nonlinear_if import input_moments

__all__ = ["AdEx", "Izhikevich", "NAUD_2008"]

# Default resolution of the (v, adaptation) grids
_V_CELL = 0.25e-3          # V
_ADAPT_CELLS = 60
_SPREAD_SDS = 6.0          # free-membrane standard deviations covered around the drive
_ADAPT_SDS = 3.0           # ... in the estimates of the adaptation range
# Cells per adaptation increment (b, d): the adaptation axis's resolution limits the
# accuracy of transients (the v sweeps see the adaptation at cell centres); measured for
# Izhikevich RS (tests/models/test_if_family.py): 60 cells over its range (d / 5 per cell) put
# the density 30 % above the Monte Carlo in the first 50 ms, d / 20 within its noise.
_CELLS_PER_INCREMENT = 16
_MAX_DEFAULT_CELLS = 4000  # per axis

#: Parameter sets of Naud, Marcille, Clopath & Gerstner (2008), Biol. Cybern.
#: 99:335-347, Table 1, in SI units; ``i_e`` is the step current of that table.
NAUD_2008 = {
    "tonic": dict(c_m=200e-12, g_l=10e-9, e_l=-70e-3, v_t=-50e-3, delta_t=2e-3, a=2e-9,
                  tau_w=30e-3, b=0.0, v_reset=-58e-3, i_e=500e-12),
    "adapting": dict(c_m=200e-12, g_l=12e-9, e_l=-70e-3, v_t=-50e-3, delta_t=2e-3,
                     a=2e-9, tau_w=300e-3, b=60e-12, v_reset=-58e-3, i_e=500e-12),
    "initial_burst": dict(c_m=130e-12, g_l=18e-9, e_l=-58e-3, v_t=-50e-3, delta_t=2e-3,
                          a=4e-9, tau_w=150e-3, b=120e-12, v_reset=-50e-3, i_e=400e-12),
    "bursting": dict(c_m=200e-12, g_l=10e-9, e_l=-58e-3, v_t=-50e-3, delta_t=2e-3,
                     a=2e-9, tau_w=120e-3, b=100e-12, v_reset=-46e-3, i_e=210e-12),
}


def _cells(lower: float, upper: float, width: float) -> int:
    return min(max(2, math.ceil((upper - lower) / width - 1e-9)), _MAX_DEFAULT_CELLS)


def _v_axis(upper: float, lower: float, jumps, dx: float = _V_CELL
            ) -> tuple[float, float, int]:
    """``(lower, upper, cells)`` of a ``v`` axis ending at ``upper`` with cells of
    ``dx`` shrunk so that the smallest jump is a whole number of cells."""
    if jumps:
        h = min(jumps)
        dx = h / math.ceil(h / dx - 1e-9)
    n = _cells(lower, upper, dx)
    return (upper - n * dx, upper, n)


class AdEx(Model):
    r"""Adaptive exponential integrate-and-fire neuron (Brette & Gerstner 2005), 2D
    state ``(v, w)``.

    .. math::

        C \frac{dv}{dt} &= -g_L (v - e_l) + g_L \Delta_T e^{(v - v_T)/\Delta_T} - w + i_e
            + C \sum_k h_k\,\delta(t - t_k),\\
        \tau_w \frac{dw}{dt} &= a (v - e_l) - w.

    ``w`` is the adaptation current (A). A spike is counted when ``v`` reaches the
    cut-off ``v_cut`` (the upper ``v`` face of the grid); then ``w += b``, ``v`` is held
    at ``v_reset`` for ``t_ref`` (while ``w`` relaxes toward :math:`a (v_{reset} -
    e_l)`, exactly) and released there. Synaptic events of ``weight`` :math:`h_k` (V)
    jump ``v``.

    Parameters
    ----------
    c_m : float, default 281e-12
        Membrane capacitance (F), > 0.
    g_l : float, default 30e-9
        Leak conductance (S), > 0.
    e_l : float, default -70.6e-3
        Leak reversal potential (V).
    v_t : float, default -50.4e-3
        Spike initiation threshold (V).
    delta_t : float, default 2e-3
        Slope factor (V), > 0.
    a : float, default 4e-9
        Subthreshold adaptation (S).
    tau_w : float, default 144e-3
        Adaptation time constant (s), > 0.
    b : float, default 80.5e-12
        Spike-triggered adaptation increment (A).
    v_reset : float, default -70.6e-3
        Reset potential (V), < ``v_cut``.
    v_cut : float, optional
        Cut-off (V), > ``v_t``; default ``v_t + 5 delta_t``.
    t_ref : float, default 0.0
        Refractory period (s), >= 0.
    i_e : float, default 0.0
        Constant injected current (A).

    Notes
    -----
    The defaults are the parameters of Brette & Gerstner (2005), J. Neurophysiol.
    94:3637-3642 (fitted to a detailed pyramidal-cell model): C = 281 pF, g_L = 30 nS,
    E_L = -70.6 mV, V_T = -50.4 mV, Delta_T = 2 mV, a = 4 nS, tau_w = 144 ms,
    b = 0.0805 nA, reset to E_L. :meth:`naud2008` builds the firing patterns of Naud et
    al. (2008) (:data:`NAUD_2008`). The cut-off ``v_t + 5 delta_t`` keeps the drift at
    the grid's upper face finite (the density engine bounds its sub-step by it); the
    time from there to infinity is about ``C / g_L * exp(-5)`` (63 us at the defaults).

    Examples
    --------
    >>> import popdens as pd
    >>> m = pd.AdEx()
    >>> round(m.v_cut * 1e3, 1), bool(m.refractory_map(0.0) == m.b)
    (-40.4, True)
    """

    state_vars = ("v", "w")
    state_units = {"v": "V", "w": "A"}

    def __init__(self, c_m: float = 281e-12, g_l: float = 30e-9, e_l: float = -70.6e-3,
                 v_t: float = -50.4e-3, delta_t: float = 2e-3, a: float = 4e-9,
                 tau_w: float = 144e-3, b: float = 80.5e-12, v_reset: float = -70.6e-3,
                 v_cut: float | None = None, t_ref: float = 0.0, i_e: float = 0.0):
        self.c_m = check_positive("c_m", c_m)
        self.g_l = check_positive("g_l", g_l)
        self.e_l = as_real("e_l", e_l)
        self.v_t = as_real("v_t", v_t)
        self.delta_t = check_positive("delta_t", delta_t)
        self.a = as_real("a", a)
        self.tau_w = check_positive("tau_w", tau_w)
        self.b = as_real("b", b)
        self.v_reset = as_real("v_reset", v_reset)
        self.v_cut = (self.v_t + 5.0 * self.delta_t if v_cut is None
                      else as_real("v_cut", v_cut))
        self.t_ref = check_nonnegative("t_ref", t_ref)
        self.i_e = as_real("i_e", i_e)
        if not self.v_cut > self.v_t:
            raise ValueError(f"v_cut must be > v_t, got v_cut={self.v_cut!r}, "
                             f"v_t={self.v_t!r}")
        if not self.v_reset < self.v_cut:
            raise ValueError(f"v_reset must be < v_cut, got v_reset={self.v_reset!r}, "
                             f"v_cut={self.v_cut!r}")

    @classmethod
    def naud2008(cls, pattern: str, **overrides) -> AdEx:
        """The AdEx with a parameter set of Naud et al. (2008): ``"tonic"``,
        ``"adapting"``, ``"initial_burst"`` or ``"bursting"`` (:data:`NAUD_2008`;
        keyword arguments override single values)."""
        if pattern not in NAUD_2008:
            raise ValueError(f"pattern must be one of {', '.join(NAUD_2008)}, got "
                             f"{pattern!r}")
        return cls(**{**NAUD_2008[pattern], **overrides})

    @property
    def tau_m(self) -> float:
        """Membrane time constant ``c_m / g_l`` (s)."""
        return self.c_m / self.g_l

    def params(self) -> dict:
        return {"c_m": self.c_m, "g_l": self.g_l, "e_l": self.e_l, "v_t": self.v_t,
                "delta_t": self.delta_t, "a": self.a, "tau_w": self.tau_w, "b": self.b,
                "v_reset": self.v_reset, "v_cut": self.v_cut, "t_ref": self.t_ref,
                "i_e": self.i_e}

    def compiled_params(self) -> AdExParams | None:
        """Parameters of the compiled single-neuron update
        (:mod:`popdens.kernels.mc_if_family`); None for a subclass that changes the
        physics (:func:`popdens.models.base.keeps_physics`)."""
        if not keeps_physics(self, AdEx):
            return None
        return AdExParams(self.c_m, self.g_l, self.e_l, self.v_t, self.delta_t, self.a,
                          self.tau_w, self.b, self.v_reset, self.v_cut, self.t_ref,
                          self.i_e, math.exp(-self.t_ref / self.tau_w))

    def drift(self, v, w):
        """Deterministic velocities ``(dv/dt, dw/dt)`` (V/s, A/s), vectorised."""
        v, w = np.broadcast_arrays(np.asarray(v, dtype=float), np.asarray(w, dtype=float))
        with np.errstate(over="ignore"):
            spike = self.g_l * self.delta_t * np.exp((v - self.v_t) / self.delta_t)
        dv = (-self.g_l * (v - self.e_l) + spike - w + self.i_e) / self.c_m
        dw = (self.a * (v - self.e_l) - w) / self.tau_w
        return dv, dw

    @property
    def spike_rule(self) -> ThresholdReset:
        """Spike at ``v_cut``, reset ``v_reset``, refractory period ``t_ref``."""
        return ThresholdReset("v", self.v_cut, self.v_reset, self.t_ref)

    def refractory_map(self, w):
        """``w`` at release of a neuron that spiked with ``w``: ``w + b``, then relaxed
        for ``t_ref`` with ``v`` held at ``v_reset`` (toward ``a (v_reset - e_l)``)."""
        w = np.asarray(w, dtype=float) + self.b
        if self.t_ref == 0.0:
            return w
        target = self.a * (self.v_reset - self.e_l)
        return target + (w - target) * math.exp(-self.t_ref / self.tau_w)

    @property
    def time_scale(self) -> float:
        """``c_m / g_l``."""
        return self.tau_m

    @property
    def resting_state(self) -> tuple[float, float]:
        """The stable fixed point ``(v*, a (v* - e_l))`` where there is one (found on
        the ``v`` nullcline below ``v_t``), else ``(v_reset, 0)``."""
        g = self.g_l + self.a   # w = a (v - e_l) on the fixed line

        def f(v):   # c_m dv/dt on the line w = a (v - e_l)
            return (-g * (v - self.e_l) + self.g_l * self.delta_t
                    * math.exp((v - self.v_t) / self.delta_t) + self.i_e)

        # f is convex; its minimum is where g = g_l exp((v - v_t)/delta_t)
        if g <= 0.0:
            return (self.v_reset, 0.0)
        v_min = self.v_t + self.delta_t * math.log(g / self.g_l)
        if not f(v_min) < 0.0:
            return (self.v_reset, 0.0)
        lo = v_min - 1.0
        hi = v_min
        for _ in range(200):   # bisection on the decreasing branch
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if f(mid) > 0.0 else (lo, mid)
        v = min(0.5 * (lo + hi), self.v_cut)
        return (v, self.a * (v - self.e_l))

    def default_grid(self, inputs=()) -> Grid:
        """A ``(v, w)`` grid for the given inputs (``(rate, weight, kind)`` per
        connection, weights in V).

        Notes
        -----
        ``w`` runs from ``min(0, a (v_lower - e_l))`` to the adaptation at which the mean
        drive ``I = i_e + C sum r h`` no longer reaches ``v_t`` even 6 free-membrane
        standard deviations up, ``I - g_l (v_t - e_l - 6 sd)``, or the subthreshold
        ``a (v_free - e_l)``, whichever is larger, plus three increments ``b``; 60
        cells. ``v`` runs from ``v_cut`` down past the reset and past the potential that
        the largest ``w`` holds the membrane at (``e_l + (I - w_max)/g_l``, 6 standard
        deviations lower), in cells of 0.25 mV (shrunk so that the smallest jump is a
        whole number of cells).
        """
        mean, sd, up, down = input_moments(inputs, self.tau_m)
        drive = self.i_e + self.g_l * mean            # mean current (A)
        v_free = self.e_l + drive / self.g_l
        w_hi = max(drive - self.g_l * (self.v_t - self.e_l - _SPREAD_SDS * sd),
                   self.a * (v_free + _SPREAD_SDS * sd - self.e_l), 0.0) + 3.0 * abs(self.b)
        v_lo = min(self.v_reset, self.e_l + (drive - w_hi) / self.g_l - _SPREAD_SDS * sd,
                   self.v_reset - max(down, default=0.0))
        w_lo = min(0.0, self.a * (v_lo - self.e_l), -0.05 * w_hi)
        if not w_hi > w_lo:
            w_hi = w_lo + self.g_l * self.delta_t
        v_axis = _v_axis(self.v_cut, v_lo, up + down)
        return Grid(v=v_axis, w=(w_lo, w_hi, _ADAPT_CELLS))


class Izhikevich(Model):
    r"""Izhikevich's simple model (Izhikevich 2003), 2D state ``(v, u)``, in SI units.

    .. math::

        \frac{dv}{dt} &= k_2 v^2 + k_1 v + k_0 - u + i_e + \sum_k h_k\,\delta(t - t_k),\\
        \frac{du}{dt} &= a (b v - u),

    with :math:`k_2 = 0.04\,\mathrm{mV^{-1} ms^{-1}} = 4\cdot10^4\,\mathrm{V^{-1}s^{-1}}`,
    :math:`k_1 = 5\,\mathrm{ms^{-1}} = 5000\,\mathrm{s^{-1}}`, :math:`k_0 =
    140\,\mathrm{mV/ms} = 140\,\mathrm{V/s}`. ``v`` in V; ``u`` and ``i_e`` are
    recovery variable and drive in V/s (the paper's mV/ms, the same number). A spike is
    counted at ``v_peak``; then ``v = c``, ``u += d`` (after ``t_ref``, during which the
    state is frozen). Events of ``weight`` :math:`h_k` (V) jump ``v``.

    Parameters
    ----------
    a : float, default 20.0
        Recovery rate (1/s), > 0 (0.02 / ms).
    b : float, default 200.0
        Sensitivity of ``u`` to ``v`` (1/s) (0.2 / ms; ``u`` in V/s, ``v`` in V).
    c : float, default -65e-3
        Reset potential (V).
    d : float, default 8.0
        Increment of ``u`` at a spike (V/s) (8 mV/ms).
    v_peak : float, default 30e-3
        Spike cut-off (V), > ``c``.
    i_e : float, default 0.0
        Constant drive (V/s), the paper's ``I`` (mV/ms).
    t_ref : float, default 0.0
        Refractory period (s), >= 0.

    Notes
    -----
    Defaults: the regular-spiking (RS) cortical neuron of Izhikevich (2003), IEEE Trans.
    Neural Netw. 14:1569-1572: a = 0.02, b = 0.2, c = -65 mV, d = 8, peak 30 mV. Without
    drive it rests at ``v = -70 mV, u = b v = -14 V/s``.

    Examples
    --------
    >>> import popdens as pd
    >>> m = pd.Izhikevich()
    >>> [round(x, 4) for x in m.resting_state]
    [-0.07, -14.0]
    """

    state_vars = ("v", "u")
    state_units = {"v": "V", "u": "V/s"}
    K2, K1, K0 = 4e4, 5e3, 140.0
    #: ``v`` cell width (V) of :meth:`default_grid`
    V_CELL = 1e-3

    def __init__(self, a: float = 20.0, b: float = 200.0, c: float = -65e-3,
                 d: float = 8.0, v_peak: float = 30e-3, i_e: float = 0.0,
                 t_ref: float = 0.0):
        self.a = check_positive("a", a)
        self.b = as_real("b", b)
        self.c = as_real("c", c)
        self.d = as_real("d", d)
        self.v_peak = as_real("v_peak", v_peak)
        self.i_e = as_real("i_e", i_e)
        self.t_ref = check_nonnegative("t_ref", t_ref)
        if not self.c < self.v_peak:
            raise ValueError(f"c (the reset) must be < v_peak, got c={self.c!r}, "
                             f"v_peak={self.v_peak!r}")

    def params(self) -> dict:
        return {"a": self.a, "b": self.b, "c": self.c, "d": self.d, "v_peak": self.v_peak,
                "i_e": self.i_e, "t_ref": self.t_ref}

    def compiled_params(self) -> IzhikevichParams | None:
        """Parameters of the compiled single-neuron update
        (:mod:`popdens.kernels.mc_if_family`); None for a subclass that changes the
        physics (:func:`popdens.models.base.keeps_physics`)."""
        if not keeps_physics(self, Izhikevich):
            return None
        return IzhikevichParams(self.a, self.b, self.c, self.d, self.v_peak, self.i_e,
                                self.t_ref, self.K2, self.K1, self.K0)

    def drift(self, v, u):
        """Deterministic velocities ``(dv/dt, du/dt)`` (V/s, V/s^2), vectorised."""
        v, u = np.broadcast_arrays(np.asarray(v, dtype=float), np.asarray(u, dtype=float))
        dv = self.K2 * v * v + self.K1 * v + self.K0 - u + self.i_e
        return dv, self.a * (self.b * v - u)

    @property
    def spike_rule(self) -> ThresholdReset:
        """Spike at ``v_peak``, reset ``c``, refractory period ``t_ref``."""
        return ThresholdReset("v", self.v_peak, self.c, self.t_ref)

    def refractory_map(self, u):
        """``u`` at release of a neuron that spiked with ``u``: ``u + d``."""
        return np.asarray(u, dtype=float) + self.d

    @property
    def time_scale(self) -> float:
        """``1 / |dF_v/dv|`` at the resting state (1.7 ms for the RS set), at most
        ``1 / a``."""
        v, _ = self.resting_state
        return 1.0 / max(abs(2.0 * self.K2 * v + self.K1), self.a)

    @property
    def resting_state(self) -> tuple[float, float]:
        """The stable fixed point (lower root of ``k2 v^2 + (k1 - b) v + k0 + i_e = 0``)
        where there is one, else ``(c, b c)``."""
        p, q, r = self.K2, self.K1 - self.b, self.K0 + self.i_e
        disc = q * q - 4.0 * p * r
        if disc <= 0.0:
            return (self.c, self.b * self.c)
        v = (-q - math.sqrt(disc)) / (2.0 * p)
        return (v, self.b * v)

    def _drive_floor(self) -> float:
        """``min_v (k2 v^2 + k1 v + k0)`` (V/s): ``dv/dt > 0`` everywhere once the drive
        less ``u`` exceeds minus this."""
        return self.K0 - self.K1 * self.K1 / (4.0 * self.K2)

    def default_grid(self, inputs=()) -> Grid:
        """A ``(v, u)`` grid for the given inputs (weights in V).

        Notes
        -----
        ``u`` runs from ``b v_lower`` (or below) to the largest recovery that can still
        hold firing, ``I + 6 sd_rate - min_v(k2 v^2 + k1 v + k0)`` with ``I`` the mean drive
        (V/s), plus three increments ``d``; 60 cells. ``v`` from the reset and 6
        standard deviations below rest (free-membrane estimate with the time scale at
        rest) up to ``v_peak``, cells of 0.5 mV (shrunk to fit the smallest jump).
        """
        v_rest, _ = self.resting_state
        tau = self.time_scale
        mean, sd, up, down = input_moments(inputs, tau)
        drive = self.i_e + mean / tau                        # V/s
        u_hi = max(drive - self._drive_floor() + _ADAPT_SDS * sd / tau,
                   self.b * (v_rest + mean), 0.0) + abs(self.d)
        v_lo = min(self.c, v_rest) - _SPREAD_SDS * sd - max(down, default=0.0) - 5e-3
        u_lo = min(self.b * (v_rest - _ADAPT_SDS * sd), self.b * self.c, 0.0) - 0.5 * abs(
            self.d)
        v_axis = _v_axis(self.v_peak, v_lo, up + down, dx=self.V_CELL)
        du = abs(self.d) / _CELLS_PER_INCREMENT if self.d else (u_hi - u_lo) / _ADAPT_CELLS
        return Grid(v=v_axis, u=(u_lo, u_hi, _cells(u_lo, u_hi, du)))
