"""Compiled single-neuron updates of :class:`popdens.HodgkinHuxley` and
:class:`popdens.ReducedHH` for the Monte Carlo loop (:mod:`popdens.kernels.mc_engine`).

Integrator: second-order Rush-Larsen (exponential midpoint). Every variable obeys
``dy/dt = a(x) - b(x) y`` with ``a, b`` independent of ``y`` itself (the gates:
``a = alpha``, ``b = alpha + beta``; ``v``: ``b = g_total / c_m``, ``a = (sum g E +
i_ext) / c_m``). One step of length ``h``: a semi-implicit Euler half step,
``y + (h/2)(a - b y_half)``, predicts the midpoint state (stable for any step, gates stay
in [0, 1], no ``exp``); the step is then the exact exponential update from the start with
the coefficients frozen at the midpoint, ``y_inf + (y - y_inf) exp(-b h)``. The stiff
``v`` and ``m`` relax exactly toward their moving targets, so any step is stable; the
scheme is second order (measured in ``tests/models/test_models_nd.py``: orders 1.6 -> 1.96 for
steps 80 -> 5 us; relative firing-rate error 1.9e-4 at the default 10 us). A spike is an
upward crossing of ``n = spike_level`` within a step (the gates do not jump, so every
crossing happens inside a step); its time is interpolated linearly in ``n``.

Cost: the six rate functions come from one ``exp`` (:func:`hh_rates`), and the slow gates'
decay factors from a short polynomial, about 115 ns of CPU per neuron and internal step
on the 2.5 GHz development machine (8.7e6 neuron-steps per CPU second for HH).

The NumPy twins are :func:`popdens.models.hh.hh_rate_functions` and the models'
``drift`` (compared in ``tests/models/test_models_nd.py``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from . import mc_interface

__all__ = ["HHParams", "ReducedHHParams", "hh_rates", "hh_drift", "reduced_hh_drift"]

_SERIES_LIMIT = 1e-3
_EXP_1 = math.exp(1.0)
_EXP_2_5 = math.exp(2.5)
_EXP_3 = math.exp(3.0)

_INTEGRATOR = "second-order Rush-Larsen (exponential midpoint), exact event times"


class HHParams(NamedTuple):
    """Compiled parameters of :class:`popdens.HodgkinHuxley` (SI units)."""

    inv_c_m: float
    g_na: float
    g_k: float
    g_l: float
    e_na: float
    e_k: float
    e_l: float
    i_ext: float
    spike_level: float

    exact = False
    integrator = _INTEGRATOR


class ReducedHHParams(NamedTuple):
    """Compiled parameters of :class:`popdens.ReducedHH`: those of :class:`HHParams` and
    the line ``h = max(h_intercept - h_slope n, 0)``."""

    inv_c_m: float
    g_na: float
    g_k: float
    g_l: float
    e_na: float
    e_k: float
    e_l: float
    i_ext: float
    spike_level: float
    h_intercept: float
    h_slope: float

    exact = False
    integrator = _INTEGRATOR


# --- Hodgkin-Huxley right-hand side --------------------------------------------------------
@njit(cache=True, inline="always")
def _x_over_one_minus_exp(x, exp_minus_x):
    """``x / (1 - exp(-x))`` given ``exp(-x)``; its series ``1 + x/2 + x^2/12`` (next term
    ``x^4 / 720``) for ``|x| < 1e-3``."""
    if abs(x) < _SERIES_LIMIT:
        return 1.0 + x * (0.5 + x / 12.0)
    return x / (1.0 - exp_minus_x)


@njit(cache=True, inline="always")
def hh_rates(v):
    """The six rates (1/s) at ``v`` (V): ``(alpha_m, beta_m, alpha_h, beta_h, alpha_n,
    beta_n)``, with the formulas of :func:`popdens.models.hh.hh_rate_functions`.

    All six exponentials are powers of ``q = exp(-(u + 65) / 720)`` (``u`` in mV; 720 is
    the least common multiple of the scales 10, 18, 20 and 80) times constants, so one
    ``exp`` and a few multiplications replace six ``exp`` calls (the costliest part of a
    step). The powers lose at most ~72 ulp, i.e. ~1e-14 relative; next to the removable
    singularities the series takes over for ``|x| < 1e-3``, so ``1 - exp(-x)`` keeps a
    relative accuracy better than 1e-11."""
    w = 1e3 * v + 65.0
    q = math.exp(-w / 720.0)
    q2 = q * q
    q4 = q2 * q2
    q8 = q4 * q4
    q9 = q8 * q
    q18 = q9 * q9
    q36 = q18 * q18
    q40 = q36 * q4
    q72 = q36 * q36          # exp(-(u + 65) / 10)
    alpha_m = 1e3 * _x_over_one_minus_exp((w - 25.0) / 10.0, q72 * _EXP_2_5)
    alpha_n = 1e2 * _x_over_one_minus_exp((w - 10.0) / 10.0, q72 * _EXP_1)
    beta_h = 1e3 / (1.0 + q72 * _EXP_3)
    beta_m = 4e3 * q40
    alpha_h = 70.0 * q36
    beta_n = 125.0 * q9
    return alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n


@njit(cache=True, inline="always")
def _membrane(v_gates_na, n, inv_c_m, g_na, g_k, g_l, e_na, e_k, e_l, i_ext):
    """``dv/dt = a - b v``: returns ``(a, b)`` given ``m^3 h`` (``v_gates_na``) and ``n``."""
    g_sodium = g_na * v_gates_na
    n2 = n * n
    g_potassium = g_k * n2 * n2
    g_total = g_sodium + g_potassium + g_l
    return ((g_sodium * e_na + g_potassium * e_k + g_l * e_l + i_ext) * inv_c_m,
            g_total * inv_c_m)


@njit(cache=True, inline="always")
def _exp_minus(z):
    """``exp(-z)`` for ``z >= 0``: below 0.02 (the slow gates ``h``, ``n`` at 10 us steps)
    its Taylor polynomial of degree 5 (relative error < z^6 / 720 < 1e-13), cheaper than
    the library call; above it ``math.exp``."""
    if z < 0.02:
        return 1.0 - z * (1.0 - z * (0.5 - z * (1.0 / 6.0 - z * (1.0 / 24.0 - z / 120.0))))
    return math.exp(-z)


@njit(cache=True, inline="always")
def _relax_exact(y, a, b, h):
    """Exact solution of ``dy/dt = a - b y`` (``b > 0``) after ``h``."""
    y_inf = a / b
    return y_inf + (y - y_inf) * _exp_minus(b * h)


@njit(cache=True, inline="always")
def _semi_implicit(y, a, b, h):
    """Semi-implicit Euler step of ``dy/dt = a - b y``: ``(y + h a) / (1 + h b)``.

    First order, stable for any ``h b >= 0``, tends to ``a / b`` for stiff variables and
    keeps a gate in [0, 1]; it only predicts the midpoint of a step, so it needs no
    ``exp``."""
    return (y + h * a) / (1.0 + h * b)


@njit(cache=True, inline="always")
def _hh_coefficients(p, v, m, h, n):
    am, bm, ah, bh, an, bn = hh_rates(v)
    av, bv = _membrane(m * m * m * h, n, p.inv_c_m, p.g_na, p.g_k, p.g_l, p.e_na, p.e_k,
                       p.e_l, p.i_ext)
    return av, bv, am, am + bm, ah, ah + bh, an, an + bn


@njit(cache=True, inline="always")
def _hh_step(p, x, dt):
    """One second-order Rush-Larsen step of length ``dt`` of ``x = (v, m, h, n)``."""
    v, m, h, n = x
    av, bv, am, bm, ah, bh, an, bn = _hh_coefficients(p, v, m, h, n)
    half = 0.5 * dt
    v2 = _semi_implicit(v, av, bv, half)
    m2 = _semi_implicit(m, am, bm, half)
    h2 = _semi_implicit(h, ah, bh, half)
    n2 = _semi_implicit(n, an, bn, half)
    av, bv, am, bm, ah, bh, an, bn = _hh_coefficients(p, v2, m2, h2, n2)
    return (_relax_exact(v, av, bv, dt), _relax_exact(m, am, bm, dt),
            _relax_exact(h, ah, bh, dt), _relax_exact(n, an, bn, dt))


@njit(cache=True, inline="always")
def _reduced_coefficients(p, v, n):
    am, bm, _, _, an, bn = hh_rates(v)
    m = am / (am + bm)
    h = max(p.h_intercept - p.h_slope * n, 0.0)
    av, bv = _membrane(m * m * m * h, n, p.inv_c_m, p.g_na, p.g_k, p.g_l, p.e_na, p.e_k,
                       p.e_l, p.i_ext)
    return av, bv, an, an + bn


@njit(cache=True, inline="always")
def _reduced_step(p, x, dt):
    """One second-order Rush-Larsen step of the reduced ``x = (v, n)``."""
    v, n = x
    av, bv, an, bn = _reduced_coefficients(p, v, n)
    half = 0.5 * dt
    v2 = _semi_implicit(v, av, bv, half)
    n2 = _semi_implicit(n, an, bn, half)
    av, bv, an, bn = _reduced_coefficients(p, v2, n2)
    return _relax_exact(v, av, bv, dt), _relax_exact(n, an, bn, dt)


@njit(cache=True)
def hh_drift(v, m, h, n, p):
    """Compiled twin of :meth:`popdens.HodgkinHuxley.drift` for 1D arrays (tests)."""
    out = np.empty((4, v.size))
    for i in range(v.size):
        av, bv, am, bm, ah, bh, an, bn = _hh_coefficients(p, v[i], m[i], h[i], n[i])
        out[0, i] = av - bv * v[i]
        out[1, i] = am - bm * m[i]
        out[2, i] = ah - bh * h[i]
        out[3, i] = an - bn * n[i]
    return out


@njit(cache=True)
def reduced_hh_drift(v, n, p):
    """Compiled twin of :meth:`popdens.ReducedHH.drift` for 1D arrays (tests)."""
    out = np.empty((2, v.size))
    for i in range(v.size):
        av, bv, an, bn = _reduced_coefficients(p, v[i], n[i])
        out[0, i] = av - bv * v[i]
        out[1, i] = an - bn * n[i]
    return out


# --- the Monte Carlo interface (popdens.kernels.mc_interface) ------------------------------
@njit(cache=True, inline="always")
def _jump_v(v, weight, reversal):
    """``v`` after a current (``reversal`` NaN) or conductance event."""
    if reversal != reversal:
        return v + weight
    return v + weight * (reversal - v)


@njit(cache=True, inline="always")
def _n_crossing(n_old, n_new, level, duration):
    """Time of an upward crossing of ``n = level`` within the step (linear in ``n``),
    or -1.0."""
    if n_old < level <= n_new:
        return duration * (level - n_old) / (n_new - n_old)
    return -1.0


def _hh_load(p, y, i):
    return y[i, 0], y[i, 1], y[i, 2], y[i, 3]


def _hh_store(p, y, i, x):
    y[i, 0], y[i, 1], y[i, 2], y[i, 3] = x


def _hh_advance(p, x, duration):
    return _hh_step(p, x, duration)


def _hh_crossing(p, x, x_new, duration):
    return _n_crossing(x[3], x_new[3], p.spike_level, duration)


def _hh_jump(p, x, weight, reversal):
    return _jump_v(x[0], weight, reversal), x[1], x[2], x[3]


def _reduced_load(p, y, i):
    return y[i, 0], y[i, 1]


def _reduced_store(p, y, i, x):
    y[i, 0], y[i, 1] = x


def _reduced_advance(p, x, duration):
    return _reduced_step(p, x, duration)


def _reduced_crossing(p, x, x_new, duration):
    return _n_crossing(x[1], x_new[1], p.spike_level, duration)


def _reduced_jump(p, x, weight, reversal):
    return _jump_v(x[0], weight, reversal), x[1]


mc_interface.register(HHParams, load=_hh_load, store=_hh_store, advance=_hh_advance,
                      crossing=_hh_crossing, jump=_hh_jump)
mc_interface.register(ReducedHHParams, load=_reduced_load, store=_reduced_store,
                      advance=_reduced_advance, crossing=_reduced_crossing,
                      jump=_reduced_jump)
