"""Compiled Monte Carlo kernels for multi-dimensional neuron models.

Plain arrays and scalars only; :mod:`popdens.backends.montecarlo_nd` turns a
:class:`popdens.Network` into them. Three model kinds:

``KIND_HH`` (:class:`popdens.HodgkinHuxley`, state ``v, m, h, n``),
``KIND_REDUCED_HH`` (:class:`popdens.ReducedHH`, state ``v, n``) and
``KIND_LIF_SYNAPTIC`` (:class:`popdens.LIFSynaptic`, state ``v, i_syn``).

Input events. All neurons of a population see the same total Poisson rate ``S_k`` (Hz)
in reporting step ``k``. Each neuron keeps the value ``target`` of the cumulative intensity
``Lambda(t) = integral_0^t S`` at which its next event happens (previous + Exp(1), time
rescaling), so events are timed exactly within a step. The connection of an event is
chosen with probability ``rate_c / S_k``; it jumps the model's input variable by its
weight (``v -> v + w``, or ``v -> v + w (E - v)`` for a conductance synapse with reversal
``E``; for LIFSynaptic ``i_syn -> i_syn + w / tau_syn``). Which events a neuron receives
does not depend on its state (except while an LIFSynaptic neuron is refractory), so runs
with the same seed and different internal steps see the same events: common random
numbers for convergence checks.

Hodgkin-Huxley integrator: second-order Rush-Larsen (exponential midpoint). Every
variable obeys ``dy/dt = a(x) - b(x) y`` with ``a, b`` independent of ``y`` itself (the
gates: ``a = alpha``, ``b = alpha + beta``; ``v``: ``b = g_total / c_m``, ``a = (sum g E +
i_ext) / c_m``). One step of length ``h``: a semi-implicit Euler half step,
``y + (h/2)(a - b y_half)``, predicts the midpoint state (stable for any step, gates stay
in [0, 1], no ``exp``); the step is then the exact exponential update from the start with
the coefficients frozen at the midpoint, ``y_inf + (y - y_inf) exp(-b h)``. The stiff
``v`` and ``m`` relax exactly toward their moving targets, so any step is stable; the
scheme is second order (measured in ``tests/test_models_nd.py``: orders 1.6 -> 1.96 for
steps 80 -> 5 us; relative firing-rate error 1.9e-4 at the default 10 us). Between events
a neuron takes steps of the internal step ``h``, aligned to the internal grid
``t0 + j h`` of the reporting step; an event splits the step it falls in. A spike is
counted when a step takes ``n`` from below the spike level to at or above it (the gates
do not jump, so every crossing happens inside a step).

Cost: the six rate functions come from one ``exp`` (:func:`hh_rates`), and the slow gates'
decay factors from a short polynomial, about 115 ns of CPU per neuron and internal step
on the 2.5 GHz development machine (8.7e6 neuron-steps per CPU second for HH).

LIFSynaptic is integrated exactly: between events ``i_syn`` decays exponentially and
``v`` follows the closed-form solution, and the first threshold crossing inside a segment
is located by bisection on that solution (a segment's ``v`` has at most one extremum, found
in closed form). While refractory a neuron is held off the grid with ``v = +inf``, ignores
input and its ``i_syn`` is already multiplied by ``exp(-t_ref / tau_syn)``: its value at
release.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# The generator of the 1D kernels (SplitMix64 and ziggurat). numba's on-disk cache keys a
# function on its own file only: if these two change, delete this module's cached kernels.
from .montecarlo import _exponential, _uniform

__all__ = ["KIND_HH", "KIND_REDUCED_HH", "KIND_LIF_SYNAPTIC", "simulate_nd", "seed_targets",
           "hh_rates", "hh_drift", "reduced_hh_drift", "hh_trace", "lif_synaptic_flow"]

KIND_HH = 0
KIND_REDUCED_HH = 1
KIND_LIF_SYNAPTIC = 2
MAX_STATE_VARS = 4

REFRACTORY = np.inf
"""Value of ``v`` while an LIFSynaptic neuron is refractory."""

_SERIES_LIMIT = 1e-3
_EXP_1 = math.exp(1.0)
_EXP_2_5 = math.exp(2.5)
_EXP_3 = math.exp(3.0)
# Bisection for a threshold-crossing time: 2^-60 of the segment, below round-off
_BISECTION_STEPS = 60


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
def _hh_coefficients(v, m, h, n, inv_c_m, g_na, g_k, g_l, e_na, e_k, e_l, i_ext):
    am, bm, ah, bh, an, bn = hh_rates(v)
    av, bv = _membrane(m * m * m * h, n, inv_c_m, g_na, g_k, g_l, e_na, e_k, e_l, i_ext)
    return av, bv, am, am + bm, ah, ah + bh, an, an + bn


@njit(cache=True, inline="always")
def _hh_step(v, m, h, n, dt, inv_c_m, g_na, g_k, g_l, e_na, e_k, e_l, i_ext):
    """One second-order Rush-Larsen step of length ``dt`` (see the module notes);
    ``inv_c_m = 1 / c_m``."""
    av, bv, am, bm, ah, bh, an, bn = _hh_coefficients(v, m, h, n, inv_c_m, g_na, g_k, g_l,
                                                      e_na, e_k, e_l, i_ext)
    half = 0.5 * dt
    v2 = _semi_implicit(v, av, bv, half)
    m2 = _semi_implicit(m, am, bm, half)
    h2 = _semi_implicit(h, ah, bh, half)
    n2 = _semi_implicit(n, an, bn, half)
    av, bv, am, bm, ah, bh, an, bn = _hh_coefficients(v2, m2, h2, n2, inv_c_m, g_na, g_k, g_l,
                                                      e_na, e_k, e_l, i_ext)
    return (_relax_exact(v, av, bv, dt), _relax_exact(m, am, bm, dt),
            _relax_exact(h, ah, bh, dt), _relax_exact(n, an, bn, dt))


@njit(cache=True, inline="always")
def _reduced_coefficients(v, n, inv_c_m, g_na, g_k, g_l, e_na, e_k, e_l, i_ext, h0, h_slope):
    am, bm, _, _, an, bn = hh_rates(v)
    m = am / (am + bm)
    h = max(h0 - h_slope * n, 0.0)
    av, bv = _membrane(m * m * m * h, n, inv_c_m, g_na, g_k, g_l, e_na, e_k, e_l, i_ext)
    return av, bv, an, an + bn


@njit(cache=True, inline="always")
def _reduced_step(v, n, dt, inv_c_m, g_na, g_k, g_l, e_na, e_k, e_l, i_ext, h0, h_slope):
    """One second-order Rush-Larsen step of the reduced (v, n) model."""
    av, bv, an, bn = _reduced_coefficients(v, n, inv_c_m, g_na, g_k, g_l, e_na, e_k, e_l,
                                           i_ext, h0, h_slope)
    half = 0.5 * dt
    v2 = _semi_implicit(v, av, bv, half)
    n2 = _semi_implicit(n, an, bn, half)
    av, bv, an, bn = _reduced_coefficients(v2, n2, inv_c_m, g_na, g_k, g_l, e_na, e_k, e_l,
                                           i_ext, h0, h_slope)
    return _relax_exact(v, av, bv, dt), _relax_exact(n, an, bn, dt)


@njit(cache=True)
def hh_drift(v, m, h, n, params):
    """Compiled twin of :meth:`popdens.HodgkinHuxley.drift` for 1D arrays (tests)."""
    out = np.empty((4, v.size))
    c_m, g_na, g_k, g_l, e_na, e_k, e_l, i_ext = params[:8]
    for i in range(v.size):
        av, bv, am, bm, ah, bh, an, bn = _hh_coefficients(v[i], m[i], h[i], n[i], 1.0 / c_m, g_na,
                                                          g_k, g_l, e_na, e_k, e_l, i_ext)
        out[0, i] = av - bv * v[i]
        out[1, i] = am - bm * m[i]
        out[2, i] = ah - bh * h[i]
        out[3, i] = an - bn * n[i]
    return out


@njit(cache=True)
def reduced_hh_drift(v, n, params):
    """Compiled twin of :meth:`popdens.ReducedHH.drift` for 1D arrays (tests)."""
    out = np.empty((2, v.size))
    c_m, g_na, g_k, g_l, e_na, e_k, e_l, i_ext, _, h0, h_slope = params[:11]
    for i in range(v.size):
        av, bv, an, bn = _reduced_coefficients(v[i], n[i], 1.0 / c_m, g_na, g_k, g_l, e_na, e_k,
                                               e_l, i_ext, h0, h_slope)
        out[0, i] = av - bv * v[i]
        out[1, i] = an - bn * n[i]
    return out


# --- input events ----------------------------------------------------------------------------
@njit(cache=True, inline="always")
def _pick_connection(jump_rate, k, j_lo, j_hi, total_rate, state):
    """Row in ``j_lo:j_hi`` chosen with probability ``jump_rate[j, k] / total_rate``."""
    if j_hi - j_lo == 1:
        return j_lo, state
    u, state = _uniform(state)
    pick = u * total_rate
    j = j_lo
    acc = jump_rate[j, k]
    while pick >= acc and j < j_hi - 1:
        j += 1
        acc += jump_rate[j, k]
    while jump_rate[j, k] == 0.0 and j > j_lo:  # round-off past the last nonzero rate
        j -= 1
    return j, state


@njit(cache=True, inline="always")
def _jump_v(v, weight, reversal):
    """``v`` after a current (``reversal`` NaN) or conductance event."""
    if reversal != reversal:
        return v + weight
    return v + weight * (reversal - v)


# --- Hodgkin-Huxley populations ---------------------------------------------------------------
@njit(cache=True)
def _step_hh_population(y, target, lo, hi, kk, state, t0, dt, n_sub, lam0, total_rate,
                        jump_weight, jump_reversal, jump_rate, j_lo, j_hi, params, kind):
    """Advance neurons ``lo:hi`` (rows of ``y``) of a (reduced) HH population through the
    reporting step ``[t0, t0 + dt)`` in ``n_sub`` internal steps.

    Returns (spikes, input events, new generator state)."""
    c_m, g_na, g_k, g_l, e_na, e_k, e_l, i_ext, level = params[:9]
    inv_c_m = 1.0 / c_m
    h0 = params[9] if kind == KIND_REDUCED_HH else 0.0
    h_slope = params[10] if kind == KIND_REDUCED_HH else 0.0
    h_int = dt / n_sub
    inv_rate = 1.0 / total_rate if total_rate > 0.0 else 0.0
    lam1 = lam0 + total_rate * dt
    spikes = 0
    events = 0
    n_col = 3 if kind == KIND_HH else 1
    for i in range(lo, hi):
        v = y[i, 0]
        m = y[i, 1] if kind == KIND_HH else 0.0
        h = y[i, 2] if kind == KIND_HH else 0.0
        n = y[i, n_col]
        next_target = target[i]
        t = t0
        for s in range(n_sub):
            t_b = t0 + (s + 1) * h_int
            lam_b = lam0 + total_rate * (t_b - t0) if s < n_sub - 1 else lam1
            while next_target < lam_b:
                t_e = min(max(t0 + (next_target - lam0) * inv_rate, t), t_b)
                n_old = n
                if kind == KIND_HH:
                    v, m, h, n = _hh_step(v, m, h, n, t_e - t, inv_c_m, g_na, g_k, g_l, e_na,
                                          e_k, e_l, i_ext)
                else:
                    v, n = _reduced_step(v, n, t_e - t, inv_c_m, g_na, g_k, g_l, e_na, e_k, e_l,
                                         i_ext, h0, h_slope)
                if n_old < level <= n:
                    spikes += 1
                t = t_e
                j, state = _pick_connection(jump_rate, kk, j_lo, j_hi, total_rate, state)
                v = _jump_v(v, jump_weight[j], jump_reversal[j])
                e, state = _exponential(state)
                next_target += e
                events += 1
            n_old = n
            if kind == KIND_HH:
                v, m, h, n = _hh_step(v, m, h, n, t_b - t, inv_c_m, g_na, g_k, g_l, e_na, e_k,
                                      e_l, i_ext)
            else:
                v, n = _reduced_step(v, n, t_b - t, inv_c_m, g_na, g_k, g_l, e_na, e_k, e_l,
                                     i_ext, h0, h_slope)
            if n_old < level <= n:
                spikes += 1
            t = t_b
        y[i, 0] = v
        if kind == KIND_HH:
            y[i, 1] = m
            y[i, 2] = h
        y[i, n_col] = n
        target[i] = next_target
    return spikes, events, state


@njit(cache=True)
def hh_trace(y0, params, kind, t_end, h_int, event_times, event_weights):
    """One (reduced) HH neuron with given input events, for tests and plots.

    Integrates from 0 to ``t_end`` with the population kernel's steps (internal step
    ``h_int``, events splitting the step they fall in) and records the state after every
    internal step. ``event_times`` must be sorted; each event jumps ``v`` by its weight.

    Returns
    -------
    t : ndarray (n_rec,)
    states : ndarray (n_rec, ndim)
    spikes : int
        Upward crossings of the spike level by ``n``.
    """
    n_steps = int(math.ceil(t_end / h_int - 1e-9))
    ndim = 4 if kind == KIND_HH else 2
    t_out = np.empty(n_steps + 1)
    out = np.empty((n_steps + 1, ndim))
    c_m, g_na, g_k, g_l, e_na, e_k, e_l, i_ext, level = params[:9]
    inv_c_m = 1.0 / c_m
    h0 = params[9] if kind == KIND_REDUCED_HH else 0.0
    h_slope = params[10] if kind == KIND_REDUCED_HH else 0.0
    v = y0[0]
    m = y0[1] if kind == KIND_HH else 0.0
    h = y0[2] if kind == KIND_HH else 0.0
    n = y0[ndim - 1]
    t_out[0] = 0.0
    out[0, :] = y0[:ndim]
    spikes = 0
    t = 0.0
    e_idx = 0
    for s in range(n_steps):
        t_b = min((s + 1) * h_int, t_end)
        while True:
            t_next = t_b
            at_event = e_idx < event_times.size and event_times[e_idx] < t_b
            if at_event:
                t_next = max(event_times[e_idx], t)
            n_old = n
            if kind == KIND_HH:
                v, m, h, n = _hh_step(v, m, h, n, t_next - t, inv_c_m, g_na, g_k, g_l, e_na, e_k,
                                      e_l, i_ext)
            else:
                v, n = _reduced_step(v, n, t_next - t, inv_c_m, g_na, g_k, g_l, e_na, e_k, e_l,
                                     i_ext, h0, h_slope)
            if n_old < level <= n:
                spikes += 1
            t = t_next
            if not at_event:
                break
            v += event_weights[e_idx]
            e_idx += 1
        t_out[s + 1] = t
        out[s + 1, 0] = v
        if kind == KIND_HH:
            out[s + 1, 1] = m
            out[s + 1, 2] = h
        out[s + 1, ndim - 1] = n
    return t_out, out, spikes


# --- LIF with synaptic current ----------------------------------------------------------------
@njit(cache=True, inline="always")
def _lif_syn_v(v0, i0, s, e_l, tau_m, tau_syn):
    """``v`` after time ``s`` without events (closed form; ``tau_syn != tau_m``)."""
    a = math.exp(-s / tau_m)
    b = math.exp(-s / tau_syn)
    return e_l + (v0 - e_l) * a + i0 * tau_m * tau_syn * (a - b) / (tau_m - tau_syn)


@njit(cache=True)
def lif_synaptic_flow(v0, i0, s, e_l, tau_m, tau_syn):
    """``(v, i_syn)`` after time ``s`` without events (compiled twin, for tests)."""
    return _lif_syn_v(v0, i0, s, e_l, tau_m, tau_syn), i0 * math.exp(-s / tau_syn)


@njit(cache=True)
def _first_crossing(v0, i0, duration, e_l, tau_m, tau_syn, v_th):
    """First time in ``(0, duration]`` at which ``v`` reaches ``v_th`` (``v0 < v_th``), or
    -1.0.

    ``v(s) = e_l + (v0 - e_l) a + i0 K`` is a sum of two exponentials, so ``dv/ds`` changes
    sign at most once, at ``s*`` with ``exp(-s* (1/tau_syn - 1/tau_m)) = ratio`` (below).
    The crossing is bracketed on the monotone rising part and found by bisection."""
    v_end = _lif_syn_v(v0, i0, duration, e_l, tau_m, tau_syn)
    # dv/ds = c_a exp(-s/tau_m) + c_b exp(-s/tau_syn)
    c_b = i0 * tau_m / (tau_m - tau_syn)
    c_a = (e_l - v0) / tau_m + i0 - c_b
    s_star = -1.0
    if c_a != 0.0 and c_b != 0.0 and -c_a / c_b > 0.0:
        s_star = -math.log(-c_a / c_b) / (1.0 / tau_syn - 1.0 / tau_m)
    lo = 0.0
    hi = duration
    if 0.0 < s_star < duration:
        v_star = _lif_syn_v(v0, i0, s_star, e_l, tau_m, tau_syn)
        if v_star >= v_th and v_star >= v_end:
            hi = s_star          # a maximum above threshold: rising before it
        elif v_end >= v_th and v_star < v_end:
            lo = s_star          # a minimum: rising after it
        else:
            return -1.0
    elif v_end < v_th:
        return -1.0
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        if _lif_syn_v(v0, i0, mid, e_l, tau_m, tau_syn) >= v_th:
            hi = mid
        else:
            lo = mid
    return hi


@njit(cache=True)
def _step_lif_syn_population(y, target, ref_end, lo, hi, kk, state, t0, dt, lam0,
                             total_rate, jump_weight, jump_rate, j_lo, j_hi, params):
    """Advance neurons ``lo:hi`` of an LIFSynaptic population exactly through
    ``[t0, t0 + dt)``. Returns (spikes, refractory at the end, events, state)."""
    tau_m, tau_syn, v_th, v_reset, e_l, t_ref = params[:6]
    if abs(tau_syn - tau_m) < 1e-6 * tau_m:
        # the closed form divides by tau_syn - tau_m; a relative 1e-6 shift changes the
        # dynamics by ~1e-6 and keeps the cancellation error near 1e-10
        tau_syn = tau_m * (1.0 + 1e-6)
    refractory_decay = math.exp(-t_ref / tau_syn)
    kernel_scale = tau_m * tau_syn / (tau_m - tau_syn)
    # drive at which dv/dt = 0 on the threshold
    i_crit = (v_th - e_l) / tau_m
    t1 = t0 + dt
    lam1 = lam0 + total_rate * dt
    inv_rate = 1.0 / total_rate if total_rate > 0.0 else 0.0
    spikes = 0
    refractory = 0
    events = 0
    for i in range(lo, hi):
        v = y[i, 0]
        cur = y[i, 1]
        next_target = target[i]
        t = t0
        while True:
            if v == REFRACTORY:
                release = ref_end[i]
                if release >= t1:
                    refractory += 1
                    break
                # input was ignored while refractory; memorylessness: the next event is
                # Exp(1) of intensity after the release
                t = max(release, t)
                v = v_reset
                e, state = _exponential(state)
                next_target = lam0 + total_rate * (t - t0) + e
            at_event = next_target < lam1
            t_next = min(max(t0 + (next_target - lam0) * inv_rate, t), t1) if at_event else t1
            duration = t_next - t
            if duration > 0.0:
                a = math.exp(-duration / tau_m)
                b = math.exp(-duration / tau_syn)
                v_end = e_l + (v - e_l) * a + cur * kernel_scale * (a - b)
                cur_end = cur * b
                # it crossed if it ends above threshold; else only if it has a maximum
                # inside (rising at the start, falling at the end) with the drive above
                # i_crit at the start (|i_syn| decays, and dv/dt <= 0 at v = v_th needs
                # i_syn <= i_crit): the slow path locates the crossing or rejects it
                if v_end >= v_th or (cur > i_crit and (
                        (e_l - v) / tau_m + cur > 0.0 > (e_l - v_end) / tau_m + cur_end)):
                    s_cross = _first_crossing(v, cur, duration, e_l, tau_m, tau_syn, v_th)
                    if s_cross >= 0.0:
                        t_spike = t + s_cross
                        spikes += 1
                        cur = cur * math.exp(-s_cross / tau_syn) * refractory_decay
                        ref_end[i] = t_spike + t_ref
                        v = REFRACTORY
                        t = t_spike
                        continue
                v = v_end
                cur = cur_end
            t = t_next
            if not at_event:
                break
            j, state = _pick_connection(jump_rate, kk, j_lo, j_hi, total_rate, state)
            cur += jump_weight[j] / tau_syn
            e, state = _exponential(state)
            next_target += e
            events += 1
        y[i, 0] = v
        y[i, 1] = cur
        target[i] = next_target
    return spikes, refractory, events, state


# --- driver ------------------------------------------------------------------------------------
@njit(cache=True)
def seed_targets(seed_bits, target):
    """Draw every neuron's first event target (Exp(1)); returns the generator state."""
    state = seed_bits
    for i in range(target.size):
        target[i], state = _exponential(state)
    return state


@njit(cache=True)
def _histogram_nd(y, lo, hi, ndim, lower, width, cells, counts, row, col0):
    """Add neurons ``lo:hi`` that are on the grid (not refractory, inside every axis) to
    ``counts[row, col0 + flat cell]`` (C order); returns how many lie outside."""
    outside = 0
    for i in range(lo, hi):
        flat = 0
        inside = True
        for d in range(ndim):
            position = (y[i, d] - lower[d]) / width[d]
            # compared as floats: inf (refractory) and huge values must not reach int()
            if not (0.0 <= position <= cells[d]):
                inside = False
                break
            flat = flat * cells[d] + min(int(position), cells[d] - 1)
        if not inside:
            if y[i, 0] != REFRACTORY:
                outside += 1
            continue
        counts[row, col0 + flat] += 1
    return outside


@njit(cache=True)
def simulate_nd(step_begin, step_end, dt, n_sub, state, kinds, pop_offsets, params, y,
                target, ref_end, lam, jump_offsets, jump_weight, jump_reversal, jump_rate,
                record_steps, grid_ndim, grid_lower, grid_width, grid_cells, grid_offsets,
                spike_counts, refractory_counts, event_counts, hist_counts, outside_counts):
    """Simulate N-D populations over reporting steps ``step_begin .. step_end - 1`` of
    ``dt``; consecutive calls continue one run (the state lives in the arrays).

    Parameters
    ----------
    step_begin, step_end, dt, n_sub : int, int, float, int
        Reporting steps, their length (s), internal steps per reporting step (HH kinds).
    state : uint64
        Generator state (from :func:`seed_targets`).
    kinds : int64[n_pop]
        ``KIND_*`` of each population.
    pop_offsets : int64[n_pop + 1]
        Neurons of population ``p`` are rows ``pop_offsets[p]:pop_offsets[p + 1]``.
    params : float64[n_pop, n_param]
        Model parameters (``model.mc_parameters()``, zero padded).
    y : float64[n_neurons, 4]
        State, updated in place (columns in the model's ``state_vars`` order).
    target, ref_end : float64[n_neurons]
        Next event's cumulative intensity; end of the refractory period (LIFSynaptic).
    lam : float64[n_pop]
        Cumulative intensity at the start, updated in place.
    jump_offsets : int64[n_pop + 1]; jump_weight, jump_reversal : float64[n_jump]
        Connections of each population; ``reversal`` NaN for current jumps.
    jump_rate : float64[n_jump, n_steps]
        Event rate per neuron (Hz) in each step.
    record_steps : int64[n_record]
        Histogram at the start of these steps (``n_steps``, the number of columns of
        ``spike_counts``: the final state, taken by the call that ends there).
    grid_ndim : int64[n_pop]; grid_lower, grid_width : float64[n_pop, 4];
    grid_cells : int64[n_pop, 4]; grid_offsets : int64[n_pop + 1]
        Each population's grid and its columns in ``hist_counts``.
    spike_counts, refractory_counts : int64[n_pop, n_steps]
    event_counts : int64[n_pop]
    hist_counts : int64[n_record, n_cells_total]; outside_counts : int64[n_record, n_pop]

    Returns
    -------
    uint64
        The generator state after the last step.
    """
    n_pop = pop_offsets.size - 1
    n_steps = spike_counts.shape[1]
    for kk in range(step_begin, step_end + 1):
        if kk == step_end and step_end < n_steps:
            break   # the next call records at its start
        for r in range(record_steps.size):
            if record_steps[r] == kk:
                for p in range(n_pop):
                    outside_counts[r, p] += _histogram_nd(
                        y, pop_offsets[p], pop_offsets[p + 1], grid_ndim[p], grid_lower[p],
                        grid_width[p], grid_cells[p], hist_counts, r, grid_offsets[p])
        if kk == step_end:
            break
        t0 = kk * dt
        for p in range(n_pop):
            j_lo = jump_offsets[p]
            j_hi = jump_offsets[p + 1]
            total_rate = 0.0
            for j in range(j_lo, j_hi):
                total_rate += jump_rate[j, kk]
            if kinds[p] == KIND_LIF_SYNAPTIC:
                n_spk, n_ref, n_ev, state = _step_lif_syn_population(
                    y, target, ref_end, pop_offsets[p], pop_offsets[p + 1], kk, state, t0, dt,
                    lam[p], total_rate, jump_weight, jump_rate, j_lo, j_hi, params[p])
            else:
                n_ref = 0
                n_spk, n_ev, state = _step_hh_population(
                    y, target, pop_offsets[p], pop_offsets[p + 1], kk, state, t0, dt, n_sub,
                    lam[p], total_rate, jump_weight, jump_reversal, jump_rate, j_lo, j_hi,
                    params[p], kinds[p])
            lam[p] += total_rate * dt
            spike_counts[p, kk] = n_spk
            refractory_counts[p, kk] = n_ref
            event_counts[p] += n_ev
    return state
