"""Compiled single-neuron updates of the integrate-and-fire family (:class:`popdens.EIF`,
:class:`popdens.QIF`, :class:`popdens.AdEx`, :class:`popdens.Izhikevich`) and of
:class:`popdens.FitzHughNagumo` for the Monte Carlo loop (:mod:`popdens.kernels.mc_engine`).

Integrator: that of the NumPy interface engine (:mod:`popdens.backends.montecarlo_generic`),
one classic fourth-order Runge-Kutta step of the drift per segment, with the models'
formulas in the same order of operations, so a trajectory without events or spikes
follows the NumPy engine's to round-off (``tests/models/test_mc_if_family.py``). The loop
times input events exactly (an event splits the internal step it falls in); the NumPy
engine applies them at step ends.

Threshold models. A spike is counted when ``v`` reaches the cut-off within a segment, at
the time interpolated linearly in ``v`` (the NumPy engine: at the step's end), or when an
event carried ``v`` past it (at the event). Where a step overshoots the cut-off by more
than it started below it, or overflows (the EIF's runaway), the step length is bisected
first (one Runge-Kutta step from the segment's start each time), so that the line
through the end points times the spike well. The neuron is then held at ``v = +inf`` for
``t_ref`` with its other variable already at its value at release
(:meth:`Model.refractory_map`: AdEx ``w + b`` relaxed over ``t_ref`` toward
``a (v_reset - e_l)``, Izhikevich ``u + d``) and released at the reset.

FitzHugh-Nagumo (no reset). A spike is an upward crossing of the plane ``v = v_spike`` by
the flow (time interpolated linearly in ``v``) or by an event (the loop asks ``crossing``
about a jump with zero duration): the density counts the jump flux through the plane
(:mod:`popdens.kernels.nd`), the NumPy engine any step that ends above the plane having
started below it. A non-finite state raises ``FloatingPointError``, as in the NumPy
engine.

The NumPy twins of these functions are in ``tests/models/test_mc_if_family.py``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from numba import njit

from . import mc_interface
from .mc_interface import advance

__all__ = ["EIFParams", "QIFParams", "AdExParams", "IzhikevichParams",
           "FitzHughNagumoParams", "REFRACTORY"]

REFRACTORY = math.inf
"""Value of ``v`` while a neuron of a threshold model is refractory."""

# Bisection of an overflowing step to time a spike: 2^-60 of the step, below round-off
_BISECTION_STEPS = 60

_INTEGRATOR = ("classic Runge-Kutta step of the drift (as the NumPy engine), exact event "
               "times, spike times interpolated linearly in v")


class EIFParams(NamedTuple):
    """Compiled parameters of :class:`popdens.EIF` (SI units)."""

    tau_m: float
    e_l: float
    v_t: float
    delta_t: float
    v_cut: float
    v_reset: float
    t_ref: float

    exact = False
    integrator = _INTEGRATOR


class QIFParams(NamedTuple):
    """Compiled parameters of :class:`popdens.QIF` (SI units)."""

    tau_m: float
    delta: float
    eta: float
    v_cut: float
    v_reset: float
    t_ref: float

    exact = False
    integrator = _INTEGRATOR


class AdExParams(NamedTuple):
    """Compiled parameters of :class:`popdens.AdEx` (SI units) and the decay
    ``exp(-t_ref / tau_w)`` of ``w`` while refractory."""

    c_m: float
    g_l: float
    e_l: float
    v_t: float
    delta_t: float
    a: float
    tau_w: float
    b: float
    v_reset: float
    v_cut: float
    t_ref: float
    i_e: float
    refractory_decay: float

    exact = False
    integrator = _INTEGRATOR


class IzhikevichParams(NamedTuple):
    """Compiled parameters of :class:`popdens.Izhikevich` (SI units; ``k2, k1, k0``
    the coefficients of its quadratic)."""

    a: float
    b: float
    c: float
    d: float
    v_peak: float
    i_e: float
    t_ref: float
    k2: float
    k1: float
    k0: float

    exact = False
    integrator = _INTEGRATOR


class FitzHughNagumoParams(NamedTuple):
    """Compiled parameters of :class:`popdens.FitzHughNagumo`."""

    tau: float
    tau_w: float
    a: float
    b: float
    i_e: float
    v_spike: float

    exact = False
    integrator = ("classic Runge-Kutta step of the drift (as the NumPy engine), exact "
                  "event times, plane crossings interpolated linearly in v")


# --- drifts, dispatched on the parameters' class (as mc_interface) ---------------------
def velocity(p, v):
    """``dv/dt`` of a one-dimensional model (compiled code only)."""
    raise NotImplementedError("velocity is only callable from compiled code")


def velocities(p, v, w):
    """``(dv/dt, dw/dt)`` of a two-dimensional model (compiled code only)."""
    raise NotImplementedError("velocities is only callable from compiled code")


def _eif_velocity(p, v):
    return (p.e_l - v + p.delta_t * math.exp((v - p.v_t) / p.delta_t)) / p.tau_m


def _qif_velocity(p, v):
    return (v * v / p.delta + p.eta) / p.tau_m


def _adex_velocities(p, v, w):
    spike = p.g_l * p.delta_t * math.exp((v - p.v_t) / p.delta_t)
    return ((-p.g_l * (v - p.e_l) + spike - w + p.i_e) / p.c_m,
            (p.a * (v - p.e_l) - w) / p.tau_w)


def _izhikevich_velocities(p, v, w):
    # w: the recovery variable u (overloads take the stub's argument names)
    return p.k2 * v * v + p.k1 * v + p.k0 - w + p.i_e, p.a * (p.b * v - w)


def _fhn_velocities(p, v, w):
    return (v - v * v * v / 3.0 - w + p.i_e) / p.tau, (v + p.a - p.b * w) / p.tau_w


mc_interface.overload_for_params(velocity, EIFParams, _eif_velocity)
mc_interface.overload_for_params(velocity, QIFParams, _qif_velocity)
mc_interface.overload_for_params(velocities, AdExParams, _adex_velocities)
mc_interface.overload_for_params(velocities, IzhikevichParams, _izhikevich_velocities)
mc_interface.overload_for_params(velocities, FitzHughNagumoParams, _fhn_velocities)


@njit(cache=True, inline="always")
def rk4_1d(p, v, h):
    """One classic Runge-Kutta step of ``dv/dt = velocity(p, v)`` (the operations of
    :func:`popdens.models.base.rk4_step`)."""
    k1 = velocity(p, v)
    k2 = velocity(p, v + 0.5 * h * k1)
    k3 = velocity(p, v + 0.5 * h * k2)
    k4 = velocity(p, v + h * k3)
    return v + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


@njit(cache=True, inline="always")
def rk4_2d(p, v, w, h):
    """One classic Runge-Kutta step of ``(v, w)' = velocities(p, v, w)``."""
    a_v, a_w = velocities(p, v, w)
    b_v, b_w = velocities(p, v + 0.5 * h * a_v, w + 0.5 * h * a_w)
    c_v, c_w = velocities(p, v + 0.5 * h * b_v, w + 0.5 * h * b_w)
    d_v, d_w = velocities(p, v + h * c_v, w + h * c_w)
    return (v + h / 6.0 * (a_v + 2.0 * b_v + 2.0 * c_v + d_v),
            w + h / 6.0 * (a_w + 2.0 * b_w + 2.0 * c_w + d_w))


# --- spikes ----------------------------------------------------------------------------
@njit(cache=True, inline="always")
def _jump_v(v, weight, reversal):
    """``v`` after a current (``reversal`` NaN) or conductance event."""
    if reversal != reversal:
        return v + weight
    return v + weight * (reversal - v)


@njit(cache=True)
def _refined_crossing(p, x, v_new, duration, v_cut):
    """Time of the cut-off crossing in a step that overshoots the cut-off by more than
    its start lies below it, or overflows (the EIF's runaway), where a line through the
    end points would put the spike far too early: bisection on the length of one
    Runge-Kutta step from ``x`` until the overshoot is at most that distance, then
    linear interpolation in ``v``."""
    lo, v_lo = 0.0, x[0]
    hi, v_hi = duration, v_new
    for _ in range(_BISECTION_STEPS):
        if v_hi - v_cut <= v_cut - v_lo:      # False while v_hi is inf or NaN
            break
        mid = 0.5 * (lo + hi)
        v_mid = advance(p, x, mid)[0]
        if v_mid < v_cut:
            lo, v_lo = mid, v_mid
        else:
            hi, v_hi = mid, v_mid
    if not math.isfinite(v_hi):
        return hi
    return lo + (hi - lo) * (v_cut - v_lo) / (v_hi - v_lo)


@njit(cache=True, inline="always")
def _cut_off_time(p, x, v_new, duration, v_cut):
    """Spike time of a threshold model in a segment from ``x`` (``v_new``: ``v`` at its
    end), or -1.0."""
    v = x[0]
    if v >= v_cut:
        return 0.0                     # an event carried it past the cut-off
    if v_new < v_cut:                  # False for NaN: a diverged step fired
        return -1.0
    if v_new - v_cut <= v_cut - v:
        return duration * (v_cut - v) / (v_new - v)
    return _refined_crossing(p, x, v_new, duration, v_cut)


# --- the Monte Carlo interface (popdens.kernels.mc_interface) ------------------------------
def _load_1d(p, y, i):
    return (y[i, 0],)


def _store_1d(p, y, i, x):
    y[i, 0] = x[0]


def _advance_1d(p, x, duration):
    return (rk4_1d(p, x[0], duration),)


def _crossing_1d(p, x, x_new, duration):
    return _cut_off_time(p, x, x_new[0], duration, p.v_cut)


def _jump_1d(p, x, weight, reversal):
    return (_jump_v(x[0], weight, reversal),)


def _resets(p):
    return True


def _is_held(p, x):
    return x[0] == REFRACTORY


def _refractory_period(p):
    return p.t_ref


def _hold_1d(p, x):
    return (REFRACTORY,)


def _release_1d(p, x):
    return (p.v_reset,)


def _load_2d(p, y, i):
    return y[i, 0], y[i, 1]


def _store_2d(p, y, i, x):
    y[i, 0], y[i, 1] = x


def _advance_2d(p, x, duration):
    return rk4_2d(p, x[0], x[1], duration)


def _jump_2d(p, x, weight, reversal):
    return _jump_v(x[0], weight, reversal), x[1]


def _adex_crossing(p, x, x_new, duration):
    return _cut_off_time(p, x, x_new[0], duration, p.v_cut)


def _adex_hold(p, x):
    w = x[1] + p.b
    if p.t_ref == 0.0:
        return REFRACTORY, w
    target = p.a * (p.v_reset - p.e_l)
    return REFRACTORY, target + (w - target) * p.refractory_decay


def _adex_release(p, x):
    return p.v_reset, x[1]


def _izhikevich_crossing(p, x, x_new, duration):
    return _cut_off_time(p, x, x_new[0], duration, p.v_peak)


def _izhikevich_hold(p, x):
    return REFRACTORY, x[1] + p.d


def _izhikevich_release(p, x):
    return p.c, x[1]


def _fhn_crossing(p, x, x_new, duration):
    v = x[0]
    v_new = x_new[0]
    if not (math.isfinite(v_new) and math.isfinite(x_new[1])):
        raise FloatingPointError("the FitzHughNagumo state became non-finite in the Monte "
                                 "Carlo; reduce internal_dt")
    if v < p.v_spike <= v_new:
        return duration * (p.v_spike - v) / (v_new - v)
    return -1.0


_RESET_1D = dict(load=_load_1d, store=_store_1d, advance=_advance_1d,
                 crossing=_crossing_1d, jump=_jump_1d, resets=_resets, hold=_hold_1d,
                 is_held=_is_held, release=_release_1d,
                 refractory_period=_refractory_period)
mc_interface.register(EIFParams, **_RESET_1D)
mc_interface.register(QIFParams, **_RESET_1D)
_RESET_2D = dict(load=_load_2d, store=_store_2d, advance=_advance_2d, jump=_jump_2d,
                 resets=_resets, is_held=_is_held, refractory_period=_refractory_period)
mc_interface.register(AdExParams, crossing=_adex_crossing, hold=_adex_hold,
                      release=_adex_release, **_RESET_2D)
mc_interface.register(IzhikevichParams, crossing=_izhikevich_crossing,
                      hold=_izhikevich_hold, release=_izhikevich_release, **_RESET_2D)
mc_interface.register(FitzHughNagumoParams, load=_load_2d, store=_store_2d,
                      advance=_advance_2d, crossing=_fhn_crossing, jump=_jump_2d)
