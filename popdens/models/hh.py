"""Hodgkin-Huxley neurons: the classic 4D squid-axon model and its 2D (v, n) reduction.

Both models have no threshold and reset: a neuron moves along its limit cycle, and the
firing rate is the upward probability flux through the *spike surface*, a plane of the
slow potassium gate ``n`` that every action potential crosses exactly once (see
:attr:`HodgkinHuxley.spike_rule`).

Units are SI throughout: potentials in volts, time in seconds, rates in 1/s, the membrane
capacitance per area in F/m^2, conductances per area in S/m^2 and the bias current
density in A/m^2 (1 uF/cm^2 = 1e-2 F/m^2, 1 mS/cm^2 = 10 S/m^2, 1 uA/cm^2 = 1e-2 A/m^2).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.optimize import brentq

from .._checks import as_real, check_nonnegative, check_positive
from ..grid import Grid
from ..kernels.mc_hh import HHParams, ReducedHHParams
from .base import Model, SpikeSurface, check_axis

__all__ = ["HodgkinHuxley", "ReducedHH", "hh_rate_functions"]

# |x| below this uses the Taylor series of x / (1 - exp(-x)) = 1 + x/2 + x^2/12 - x^4/720;
# above it the closed form loses at most ~1e-16 / |x| relative precision to the
# cancellation in 1 - exp(-x), i.e. < 1e-12.
_SERIES_LIMIT = 1e-4

# Default grid resolution (density solver): cells per millivolt of v, cells over [0, 1] of
# each gate. The spike levels below are multiples of 1 / 20 so that they fall on a face.
_V_CELLS_PER_MV = 0.5
_GATE_CELLS = 30
# ReducedHH: with strong input noise the rate error sits in the n axis, not v
# (benchmarks/diag_space_time_nd.py), and 1 v cell per mV has the error of 4 per mV at a
# sixth of the CPU time (+0.421 vs +0.440 Hz at 2 mV x 4 kHz, +0.285 vs +0.255 Hz at
# 2 mV x 2 kHz). With weaker noise numerical diffusion along v adds noise too (1 mV at
# 4 kHz, 4e-3 V^2/s: +0.40 vs +0.27 Hz), so below _REDUCED_NOISE_COARSE_V (and without
# jump input) v keeps 4 cells per mV (benchmarks/bench_rhh_default_grid.py).
_REDUCED_V_CELLS_PER_MV = 1.0
_REDUCED_V_CELLS_PER_MV_WEAK = 4.0
_REDUCED_NOISE_COARSE_V = 8e-3
_REDUCED_GATE_CELLS = 200
# Input noise (variance rate sum r w^2 of the v jumps, V^2/s, from peak rates). Weak noise
# leaves the neurons near threshold with little diffusion, and the numerical diffusion
# across the gate axes then acts as extra noise and raises the rate. Measured for
# ReducedHH at a mean drive of 4 V/s, rate over [30, 100) ms from rest vs Monte Carlo
# (N = 2e4): on 200 n cells +0.4 / +0.5 / +2.0 / +8.0 / +81 % at 8e-3 / 4e-3 / 2e-3 /
# 1e-3 / 4e-4 V^2/s; on 400 n cells +0.4 / +0.4 / +1.0 / +2.7 / +18 %; on 800, +9 % at
# 4e-4. Below _REDUCED_NOISE_VALIDATED the default n axis is refined in proportion (up to
# _REDUCED_MAX_REFINE times); below _REDUCED_NOISE_WARN a default grid warns.
_REDUCED_NOISE_VALIDATED = 2e-3
_REDUCED_MAX_REFINE = 4
_REDUCED_NOISE_WARN = 1e-3
# The 4D default (30 cells per gate) was validated for 2 mV jumps at 2 and 4 kHz
# (8e-3 and 1.6e-2 V^2/s); well below that a default grid warns.
_HH_NOISE_WARN = 4e-3
# Margin (V) added beyond the reversal potentials, which bound v under the drift alone
_V_MARGIN = 5e-3


def _x_over_one_minus_exp(x):
    """``x / (1 - exp(-x))`` for arrays, continuous through its removable singularity at
    ``x = 0`` (value 1): the series ``1 + x/2 + x^2/12`` for ``|x| < 1e-4``."""
    x = np.asarray(x, dtype=float)
    small = np.abs(x) < _SERIES_LIMIT
    safe = np.where(small, 1.0, x)  # keeps the unused branch free of 0/0 warnings
    with np.errstate(over="ignore"):
        closed = safe / -np.expm1(-safe)
    return np.where(small, 1.0 + x * (0.5 + x / 12.0), closed)


def hh_rate_functions(v):
    r"""The six Hodgkin-Huxley opening and closing rates at potential ``v`` (V), in 1/s.

    With :math:`u = 1000 v` (mV) and rates per millisecond (Hodgkin & Huxley 1952, in the
    modern convention with rest near -65 mV):

    .. math::

        \alpha_m &= \frac{0.1 (u + 40)}{1 - e^{-(u + 40)/10}}, &
        \beta_m &= 4 e^{-(u + 65)/18},\\
        \alpha_h &= 0.07 e^{-(u + 65)/20}, &
        \beta_h &= \frac{1}{1 + e^{-(u + 35)/10}},\\
        \alpha_n &= \frac{0.01 (u + 55)}{1 - e^{-(u + 55)/10}}, &
        \beta_n &= 0.125 e^{-(u + 65)/80}.

    The removable singularities of :math:`\alpha_m` (-40 mV) and :math:`\alpha_n`
    (-55 mV) are evaluated by a series, so the result is smooth and finite there.

    Returns
    -------
    dict of ndarray
        Keys ``alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n`` (1/s).
    """
    rates = {}
    for gate in "mhn":
        rates[f"alpha_{gate}"], rates[f"beta_{gate}"] = _gate_rates(gate, v)
    return rates


def _common_shape(values, args):
    """``values`` broadcast to the common shape of ``args`` (a tuple)."""
    shape = np.broadcast_shapes(*(np.shape(a) for a in args))
    return tuple(x if np.shape(x) == shape else np.broadcast_to(x, shape) for x in values)


def _gate_rates(gate, v):
    """``(alpha, beta)`` of one gate (``"m"``, ``"h"`` or ``"n"``) at ``v`` (V), in 1/s:
    the formulas of :func:`hh_rate_functions`."""
    u = 1e3 * np.asarray(v, dtype=float)
    with np.errstate(over="ignore"):
        if gate == "m":
            return (1e3 * _x_over_one_minus_exp((u + 40.0) / 10.0),
                    4e3 * np.exp(-(u + 65.0) / 18.0))
        if gate == "h":
            return (70.0 * np.exp(-(u + 65.0) / 20.0),
                    1e3 / (1.0 + np.exp(-(u + 35.0) / 10.0)))
        return (1e2 * _x_over_one_minus_exp((u + 55.0) / 10.0),
                125.0 * np.exp(-(u + 65.0) / 80.0))


def _steady_gates(v):
    """``(m_inf, h_inf, n_inf)`` at ``v`` (V)."""
    r = hh_rate_functions(v)
    return (r["alpha_m"] / (r["alpha_m"] + r["beta_m"]),
            r["alpha_h"] / (r["alpha_h"] + r["beta_h"]),
            r["alpha_n"] / (r["alpha_n"] + r["beta_n"]))


def _v_axis(lower_rev, upper_rev, inputs, cells_per_mv):
    """A v axis from ``lower_rev`` to ``upper_rev`` (the drift-invariant interval) widened
    by a margin and by the largest inhibitory / excitatory jump; its cell width divides
    the smallest jump so that jumps move mass by whole cells."""
    inputs = list(inputs)
    dx = 1e-3 / cells_per_mv
    weights = [float(w) for (_, w, _) in inputs if w != 0.0]
    jumps = [abs(w) for (_, w, kind) in inputs if kind == "jump" and w != 0.0]
    if jumps:
        h = min(jumps)
        dx = h / math.ceil(h / dx - 1e-9)
    lower = lower_rev - _V_MARGIN - max([-w for w in weights if w < 0.0], default=0.0)
    upper = upper_rev + _V_MARGIN + max([w for w in weights if w > 0.0], default=0.0)
    num_cells = max(2, math.ceil((upper - lower) / dx - 1e-9))
    # keep the upper end and snap the lower one, so jumps stay whole cells
    return (upper - num_cells * dx, upper, num_cells)


def input_noise(inputs) -> float:
    """Variance rate ``sum r w^2`` (V^2/s) of the jump inputs ``(peak_rate, weight,
    kind)``, the diffusion coefficient of v they impose (0 without jumps)."""
    return sum(float(r) * float(w) ** 2 for (r, w, kind) in inputs if kind == "jump")


def _warn_weak_noise(model_name, noise, validated):
    warnings.warn(
        f"{model_name}.default_grid: input noise sum(rate * weight^2) = {noise:.3g} V^2/s "
        f"is below the range where the default grid was validated against Monte Carlo "
        f"({validated}); with weak noise the numerical diffusion across the gate axes "
        f"raises the rate (ReducedHH at 4e-4 V^2/s: +81 % on 200 n cells, +18 % on 400, "
        f"+9 % on 800). Pass a grid with finer gate axes and check against "
        f"backend='montecarlo'.", RuntimeWarning, stacklevel=3)


def _check_level(name, value):
    value = as_real(name, value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be a gate level in (0, 1), got {value!r}")
    return value


class _HHBase(Model):
    """Parameters and ionic currents shared by the full and the reduced model."""


    def __init__(self, c_m, g_na, g_k, g_l, e_na, e_k, e_l, i_ext, spike_level):
        self.c_m = check_positive("c_m", c_m)
        self.g_na = check_nonnegative("g_na", g_na)
        self.g_k = check_nonnegative("g_k", g_k)
        self.g_l = check_positive("g_l", g_l)
        self.e_na = as_real("e_na", e_na)
        self.e_k = as_real("e_k", e_k)
        self.e_l = as_real("e_l", e_l)
        self.i_ext = as_real("i_ext", i_ext)
        self.spike_level = _check_level("spike_level", spike_level)
        if not self.e_k < self.e_na:
            raise ValueError(f"e_k must be < e_na, got e_k={self.e_k!r}, e_na={self.e_na!r}")
        self._rest = (None, None)  # (parameters it was computed for, state)

    def params(self) -> dict:
        return {"c_m": self.c_m, "g_na": self.g_na, "g_k": self.g_k, "g_l": self.g_l,
                "e_na": self.e_na, "e_k": self.e_k, "e_l": self.e_l, "i_ext": self.i_ext,
                "spike_level": self.spike_level}

    @property
    def spike_rule(self) -> SpikeSurface:
        """Upward crossings of ``n = spike_level``: the rate is the upward flux through
        this plane."""
        return SpikeSurface("n", self.spike_level)

    def _dv_dt(self, v, m, h, n):
        """``(i_ext - i_Na - i_K - i_L) / c_m`` (V/s)."""
        i_ion = (self.g_na * m ** 3 * h * (v - self.e_na) + self.g_k * n ** 4 * (v - self.e_k)
                 + self.g_l * (v - self.e_l))
        return (self.i_ext - i_ion) / self.c_m

    def _v_range(self):
        """Interval of v that the drift alone never leaves (any gate values): below
        ``min(e_k, e_l)`` all currents depolarise, above ``max(e_na, e_l)`` all
        repolarise, widened by the bias current over the leak conductance."""
        bias = self.i_ext / self.g_l
        return (min(self.e_k, self.e_l, self.e_l + bias), max(self.e_na, self.e_l,
                                                              self.e_l + bias))

    def _stationary_current(self, v):
        """Net depolarising current density (A/m^2) with every gate at steady state."""
        raise NotImplementedError

    @property
    def resting_state(self) -> tuple[float, ...]:
        """The most hyperpolarised fixed point of the drift: ``v`` (V) and the gates at
        their steady state there (root finding, repeated only when a parameter changed)."""
        key = tuple(self.params().values())
        if self._rest[0] != key:
            lo, hi = self._v_range()
            grid = np.linspace(lo, hi, 4001)
            f = self._stationary_current(grid)
            sign_change = np.flatnonzero(np.sign(f[:-1]) * np.sign(f[1:]) <= 0)
            if sign_change.size == 0:
                raise ValueError(f"{self!r} has no fixed point in v in [{lo:g}, {hi:g}] V")
            k = int(sign_change[0])
            v0 = float(brentq(lambda x: float(self._stationary_current(x)), grid[k],
                              grid[k + 1], xtol=1e-15, rtol=1e-15))
            self._rest = (key, self._state_at(v0))
        return self._rest[1]

    def _compiled_fields(self) -> tuple:
        return (1.0 / self.c_m, self.g_na, self.g_k, self.g_l, self.e_na, self.e_k,
                self.e_l, self.i_ext, self.spike_level)


class HodgkinHuxley(_HHBase):
    r"""Classic Hodgkin-Huxley squid-axon neuron (4D state ``v, m, h, n``).

    .. math::

        c_m \frac{dv}{dt} &= i_{ext} - g_{Na} m^3 h (v - E_{Na}) - g_K n^4 (v - E_K)
                             - g_L (v - E_L) + c_m \sum_k w_k\,\delta(t - t_k),\\
        \frac{dx}{dt} &= \alpha_x(v) (1 - x) - \beta_x(v)\, x, \qquad x \in \{m, h, n\},

    with the rate functions of :func:`hh_rate_functions`. Each synaptic event at
    :math:`t_k` moves ``v`` by the connection's ``weight`` (V), or by
    ``weight * (reversal - v)`` for a conductance synapse; the gates do not jump. With the
    defaults the resting state is ``v = -65.0 mV``, ``(m, h, n) = (0.053, 0.596, 0.318)``
    and a constant ``i_ext = 0.1 A/m^2`` (10 uA/cm^2) gives repetitive firing at about
    68 Hz.

    Spikes. There is no threshold or reset. A spike is the upward crossing of the plane
    ``n = spike_level`` (default 0.6): the firing rate is the probability flux through
    that plane with ``dn/dt > 0``. The slow gate ``n`` rises once per action potential
    and does not jump with the input, so a depolarising event on the falling phase that
    pushes ``v`` back above 0 mV about 1 ms after a spike (while ``n`` is still high)
    is not counted, and subthreshold fluctuations, which move ``n`` little, are not
    counted either. On the plane, ``dn/dt > 0`` exactly where ``n_inf(v) > spike_level``
    (``v`` above -46.5 mV for 0.6).

    Measured (single-neuron traces at 10 us steps, 5 s per condition; checked in
    ``tests/models/test_models_nd.py``): with Poisson 2 mV jumps at 1-16 kHz, 0.5 mV at 20-40
    kHz, 4 mV at 3 kHz and mixed excitation/inhibition, the counts at every level from
    0.55 to 0.7 equal exactly the upward crossings of v = 0 mV with a 2 ms dead time
    (0.5 over-counts at 16 kHz, 0.45 at 8 kHz), whereas raw v = 0 crossings exceed them by
    up to 35 %. Action potentials take ``n`` to 0.72-0.75; between spikes of repetitive
    firing up to 117 Hz it falls below 0.51; away from action potentials it stayed below
    0.44. 0.6 lies in the middle of the working range. Limitation: in depolarisation
    block (e.g. a constant 1 A/m^2 = 100 uA/cm^2), ``n`` oscillates between 0.58 and 0.69
    with small ``v`` oscillations that never reach 0 mV, and those are counted.

    Parameters
    ----------
    c_m : float, default 1e-2
        Membrane capacitance per area (F/m^2; 1 uF/cm^2).
    g_na, g_k, g_l : float, default 1200, 360, 3
        Maximal sodium, potassium and leak conductances per area (S/m^2; 120, 36 and
        0.3 mS/cm^2).
    e_na, e_k, e_l : float, default 0.05, -0.077, -0.054387
        Reversal potentials (V).
    i_ext : float, default 0.0
        Constant bias current density (A/m^2), depolarising when positive.
    spike_level : float, default 0.6
        Level of ``n`` whose upward crossing is a spike, in (0, 1).

    Attributes
    ----------
    state_vars : ("v", "m", "h", "n")
    input_var : "v"
        Variable that synaptic events jump; a connection's ``weight`` is in volts.
    spike_rule : SpikeSurface("n", spike_level)
    resting_state : tuple of float

    References
    ----------
    Hodgkin & Huxley (1952), J Physiol 117:500-544.
    """

    state_vars = ("v", "m", "h", "n")
    state_units = {"v": "V", "m": "1", "h": "1", "n": "1"}

    def __init__(self, c_m: float = 1e-2, g_na: float = 1200.0, g_k: float = 360.0,
                 g_l: float = 3.0, e_na: float = 0.05, e_k: float = -0.077,
                 e_l: float = -0.054387, i_ext: float = 0.0, spike_level: float = 0.6):
        super().__init__(c_m, g_na, g_k, g_l, e_na, e_k, e_l, i_ext, spike_level)

    def compiled_params(self) -> HHParams:
        """Parameters of the compiled single-neuron update (:mod:`popdens.kernels.mc_hh`)."""
        return HHParams(*self._compiled_fields())

    def drift(self, v, m, h, n):
        """Deterministic velocities ``(dv/dt, dm/dt, dh/dt, dn/dt)`` (V/s and 1/s).

        Vectorised over broadcastable arrays (each component broadcast to their common
        shape); finite for any finite ``v`` of the grid."""
        return _common_shape([self.drift_along(axis, v, m, h, n) for axis in range(4)],
                             (v, m, h, n))

    def drift_along(self, axis, v, m, h, n):
        """One component of :meth:`drift` (``dv/dt`` needs no rate function, a gate
        only its own two)."""
        check_axis(axis, 4, type(self).__name__)
        v, m, h, n = (np.asarray(x, dtype=float) for x in (v, m, h, n))
        if axis == 0:
            return self._dv_dt(v, m, h, n)
        gate = "mhn"[axis - 1]
        x = (m, h, n)[axis - 1]
        alpha, beta = _gate_rates(gate, v)
        return alpha * (1.0 - x) - beta * x

    def _stationary_current(self, v):
        m, h, n = _steady_gates(v)
        return self.c_m * self._dv_dt(np.asarray(v, dtype=float), m, h, n)

    def _state_at(self, v):
        m, h, n = _steady_gates(v)
        return (v, float(m), float(h), float(n))

    def default_grid(self, inputs=(), v_cells_per_mv: float = _V_CELLS_PER_MV,
                     gate_cells: int = _GATE_CELLS) -> Grid:
        """A grid holding every state the neurons reach for the given inputs.

        Parameters
        ----------
        inputs : iterable of (peak_rate, weight, kind)
            Peak Poisson rate (Hz), jump of ``v`` (V) and ``"jump"`` / ``"diffusion"`` of
            every connection onto the population.
        v_cells_per_mv : float, default 0.5
            Resolution of ``v``; the cell width is shrunk so that the smallest jump is a
            whole number of cells.
        gate_cells : int, default 30
            Cells over ``[0, 1]`` of each gate (an invariant interval of the gating
            equations). The default puts ``n = spike_level`` on a face when the level is a
            multiple of 1/30 (the default 0.6 is).

        Notes
        -----
        The default resolution is set by accuracy against Monte Carlo, not by cost: the
        gate axes carry the error (numerical diffusion across them damps the limit
        cycle). For 2 mV jumps at 2 and 4 kHz the rate is 19 % / 12 % low on 20 cells
        per gate, 10 % / 7 % on 25 and 2 % / 4 % on 30 (2 mV v cells; 1 mV v cells change
        it by under 2 Hz); the default grid has 1.9e6 cells and simulates 0.2 s in about
        1.5 minutes on one core (``benchmarks/bench_hh4d.py``). With much weaker input
        noise (``sum r w^2`` of the jumps below 4e-3 V^2/s) the grid is outside that
        validated range and a RuntimeWarning says so (see :meth:`ReducedHH.default_grid`
        for how the error grows there).

        ``v`` spans ``[min(E_K, E_L) - 5 mV, E_Na + 5 mV]`` (the drift alone never leaves
        ``[min(E_K, E_L), E_Na]``), widened by the largest inhibitory and excitatory jump.
        """
        inputs = list(inputs)
        v_axis = _v_axis(*self._v_range(), inputs, check_positive("v_cells_per_mv",
                                                                     v_cells_per_mv))
        gates = (0.0, 1.0, _check_cells("gate_cells", gate_cells))
        noise = input_noise(inputs)
        if 0.0 < noise < _HH_NOISE_WARN:
            _warn_weak_noise("HodgkinHuxley", noise,
                             "2 mV jumps at 2 and 4 kHz: 8e-3 and 1.6e-2 V^2/s")
        return Grid(v=v_axis, m=gates, h=gates, n=gates)


class ReducedHH(_HHBase):
    r"""Two-dimensional reduction of the Hodgkin-Huxley neuron (state ``v, n``).

    The fast sodium activation is instantaneous, :math:`m = m_\infty(v)`, and the sodium
    inactivation follows the potassium activation linearly (Rinzel 1985; the fit
    :math:`h = 0.89 - 1.1 n` of Izhikevich 2007, sec. 5.2), kept non-negative:

    .. math::

        c_m \frac{dv}{dt} &= i_{ext} - g_{Na} m_\infty(v)^3 \max(0.89 - 1.1 n, 0)
                             (v - E_{Na}) - g_K n^4 (v - E_K) - g_L (v - E_L)
                             + c_m \sum_k w_k \delta(t - t_k),\\
        \frac{dn}{dt} &= \alpha_n(v)(1 - n) - \beta_n(v)\, n,

    with the currents, parameters and rate functions of :class:`HodgkinHuxley`
    (``h_intercept = 0.89``, ``h_slope = 1.1`` are parameters). Synaptic events move
    ``v`` as in the full model.

    Spikes are upward crossings of ``n = spike_level`` (default 0.6), as for
    :class:`HodgkinHuxley`. Measured the same way: counts at levels 0.55-0.7 equal the
    v = 0 mV crossings with a 2 ms dead time for Poisson drives up to 2 mV at 16 kHz
    (0.5 under-counts at 16 kHz); action potentials take ``n`` to 0.73-0.75, between spikes it
    falls below 0.52 up to 170 Hz (0.59 at 240 Hz: the limit of the definition), and
    away from action potentials it stayed below 0.39.

    Parameters
    ----------
    c_m, g_na, g_k, g_l, e_na, e_k, e_l, i_ext
        As for :class:`HodgkinHuxley` (SI units).
    h_intercept, h_slope : float, default 0.89, 1.1
        ``h = max(h_intercept - h_slope * n, 0)``.
    spike_level : float, default 0.6
        Level of ``n`` whose upward crossing is a spike.

    Attributes
    ----------
    state_vars : ("v", "n")
    input_var : "v"
    spike_rule : SpikeSurface("n", spike_level)
    resting_state : tuple of float
    """

    state_vars = ("v", "n")
    state_units = {"v": "V", "n": "1"}

    def __init__(self, c_m: float = 1e-2, g_na: float = 1200.0, g_k: float = 360.0,
                 g_l: float = 3.0, e_na: float = 0.05, e_k: float = -0.077,
                 e_l: float = -0.054387, i_ext: float = 0.0, h_intercept: float = 0.89,
                 h_slope: float = 1.1, spike_level: float = 0.6):
        super().__init__(c_m, g_na, g_k, g_l, e_na, e_k, e_l, i_ext, spike_level)
        self.h_intercept = as_real("h_intercept", h_intercept)
        self.h_slope = as_real("h_slope", h_slope)

    def params(self) -> dict:
        out = super().params()
        out.update(h_intercept=self.h_intercept, h_slope=self.h_slope)
        return out

    def h_of_n(self, n):
        """Sodium inactivation tied to ``n``: ``max(h_intercept - h_slope n, 0)``."""
        return np.maximum(self.h_intercept - self.h_slope * np.asarray(n, dtype=float), 0.0)

    def m_inf(self, v):
        """Instantaneous sodium activation ``alpha_m / (alpha_m + beta_m)`` at ``v`` (V)."""
        return _steady_gates(v)[0]

    def n_inf(self, v):
        """Steady-state potassium activation at ``v`` (V)."""
        return _steady_gates(v)[2]

    def drift(self, v, n):
        """Deterministic velocities ``(dv/dt, dn/dt)`` (V/s, 1/s), vectorised over
        broadcastable arrays (the rates are computed once per value of ``v``)."""
        return _common_shape([self.drift_along(0, v, n), self.drift_along(1, v, n)], (v, n))

    def drift_along(self, axis, v, n):
        """One component of :meth:`drift` (``dv/dt`` needs only ``m``'s rates, ``dn/dt``
        only ``n``'s)."""
        check_axis(axis, 2, type(self).__name__)
        v, n = np.asarray(v, dtype=float), np.asarray(n, dtype=float)
        if axis == 0:
            alpha_m, beta_m = _gate_rates("m", v)
            m = alpha_m / (alpha_m + beta_m)
            return self._dv_dt(v, m, self.h_of_n(n), n)
        alpha_n, beta_n = _gate_rates("n", v)
        return alpha_n * (1.0 - n) - beta_n * n

    def _stationary_current(self, v):
        v = np.asarray(v, dtype=float)
        m, _, n = _steady_gates(v)
        return self.c_m * self._dv_dt(v, m, self.h_of_n(n), n)

    def _state_at(self, v):
        return (v, float(self.n_inf(v)))

    def nullclines(self, v) -> dict:
        """The nullclines as ``n`` values over the potentials ``v`` (V).

        Returns
        -------
        dict
            ``"v"``: the ``n`` where ``dv/dt = 0`` (NaN where no ``n`` in [0, 1] makes it
            vanish); ``"n"``: ``n_inf(v)``, where ``dn/dt = 0``. For ``v`` in
            ``(E_K, E_Na)``, ``dv/dt`` decreases with ``n`` (more potassium, less sodium
            current), so the v-nullcline is unique there and found by bisection.
        """
        v = np.asarray(v, dtype=float)
        lo = np.zeros_like(v)
        hi = np.ones_like(v)
        f_lo = self.drift(v, lo)[0]
        f_hi = self.drift(v, hi)[0]
        bracketed = np.sign(f_lo) * np.sign(f_hi) <= 0
        for _ in range(60):  # 2^-60 of the unit interval: round-off level
            mid = 0.5 * (lo + hi)
            f_mid = self.drift(v, mid)[0]
            same = np.sign(f_mid) == np.sign(f_lo)
            lo = np.where(same, mid, lo)
            f_lo = np.where(same, f_mid, f_lo)
            hi = np.where(same, hi, mid)
        return {"v": np.where(bracketed, 0.5 * (lo + hi), np.nan), "n": self.n_inf(v)}

    def default_grid(self, inputs=(), v_cells_per_mv: float | None = None,
                     gate_cells: int | None = None) -> Grid:
        """A ``(v, n)`` grid for the given inputs.

        Parameters
        ----------
        inputs : iterable of (peak_rate, weight, kind)
            As for :meth:`HodgkinHuxley.default_grid`.
        v_cells_per_mv : float, optional
            Resolution of ``v``, shrunk so that jumps are whole cells. Default: 1 (1 mV
            cells) when the input noise ``D = sum r w^2`` of the jumps (peak rates) is at
            least 8e-3 V^2/s, else 4 (0.25 mV cells).
        gate_cells : int, optional
            Cells of ``n`` over ``[0, 1]``. Default: 200 when the input noise
            ``D = sum r w^2`` of the jumps (peak rates) is at least 2e-3 V^2/s, else
            ``200 k`` with ``k = ceil(2e-3 / D)``, at most 800 (a multiple of 200 keeps
            ``spike_level`` on a face when it is a multiple of 0.005).

        Notes
        -----
        Weak input noise leaves the neurons near threshold with little diffusion, and the
        numerical diffusion across ``n`` then acts as extra noise and raises the rate.
        Measured at a mean drive of 4 V/s (rate over [30, 100) ms from rest against
        Monte Carlo with N = 2e4): on 200 n cells +0.4 / +0.5 / +2.0 / +8.0 / +81 % at
        D = 8e-3 / 4e-3 / 2e-3 / 1e-3 / 4e-4 V^2/s; on 400 cells +2.7 % at 1e-3 and +18 %
        at 4e-4; on 800 cells +9 % at 4e-4. Below D = 1e-3 a default grid warns (the
        refinement no longer reaches a few percent at an affordable size).

        With strong noise the ``v`` axis carries little of the error: for 2 mV jumps at
        4 kHz (1.6e-2 V^2/s) 1 mV cells give +0.49 % against +0.51 % on 0.25 mV cells at
        a sixth of the CPU time, at 2 kHz (8e-3) +0.43 % against +0.39 %; at 1 mV x 4 kHz
        (4e-3) +0.67 % against +0.45 %, so weaker noise keeps 0.25 mV cells.
        """
        inputs = list(inputs)
        noise = input_noise(inputs)
        if v_cells_per_mv is None:
            v_cells_per_mv = (_REDUCED_V_CELLS_PER_MV if noise >= _REDUCED_NOISE_COARSE_V
                              else _REDUCED_V_CELLS_PER_MV_WEAK)
        v_axis = _v_axis(*self._v_range(), inputs, check_positive("v_cells_per_mv",
                                                                     v_cells_per_mv))
        if gate_cells is None:
            refine = 1
            if 0.0 < noise < _REDUCED_NOISE_VALIDATED:
                refine = min(_REDUCED_MAX_REFINE,
                             math.ceil(_REDUCED_NOISE_VALIDATED / noise - 1e-9))
            gate_cells = _REDUCED_GATE_CELLS * refine
        if 0.0 < noise < _REDUCED_NOISE_WARN:
            _warn_weak_noise("ReducedHH", noise,
                             "within 3 % for sum(rate * weight^2) >= 1e-3 V^2/s")
        return Grid(v=v_axis, n=(0.0, 1.0, _check_cells("gate_cells", gate_cells)))

    def compiled_params(self) -> ReducedHHParams:
        """Parameters of the compiled single-neuron update (:mod:`popdens.kernels.mc_hh`)."""
        return ReducedHHParams(*self._compiled_fields(), self.h_intercept, self.h_slope)


def _check_cells(name, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < 2:
        raise ValueError(f"{name} must be >= 2, got {value!r}")
    return int(value)
