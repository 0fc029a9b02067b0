"""Compiled single-neuron update of :class:`popdens.LIFSynaptic` for the Monte Carlo
loop (:mod:`popdens.kernels.mc_engine`).

Exact integration: between events ``i_syn`` decays exponentially and ``v`` follows the
closed-form solution, and the first threshold crossing inside a segment is located by
bisection on that solution (a segment's ``v`` has at most one extremum, found in closed
form). While refractory a neuron is held off the grid with ``v = +inf`` (the loop ignores
its input) and its ``i_syn`` is already multiplied by ``exp(-t_ref / tau_syn)``: its
value at release. Events jump ``i_syn`` by ``weight / tau_syn``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from . import mc_interface

__all__ = ["LIFSynapticParams", "lif_synaptic_params", "lif_synaptic_flow"]

REFRACTORY = np.inf
"""Value of ``v`` while a neuron is refractory."""

# Bisection for a threshold-crossing time: 2^-60 of the segment, below round-off
_BISECTION_STEPS = 60


class LIFSynapticParams(NamedTuple):
    """Compiled parameters of :class:`popdens.LIFSynaptic` and constants derived from
    them (:func:`lif_synaptic_params`)."""

    tau_m: float
    tau_syn: float
    v_th: float
    v_reset: float
    e_l: float
    t_ref: float
    refractory_decay: float   # exp(-t_ref / tau_syn)
    kernel_scale: float       # tau_m tau_syn / (tau_m - tau_syn)
    i_crit: float             # drive at which dv/dt = 0 on the threshold

    exact = True
    integrator = "exact (closed-form flow, bisection for threshold times)"


@njit(cache=True)
def _exp_minus_ratio(a, b):
    """``exp(-a / b)``, compiled: the same bits as inside the kernels."""
    return math.exp(-a / b)


def lif_synaptic_params(tau_m, tau_syn, v_th, v_reset, e_l, t_ref) -> LIFSynapticParams:
    """The compiled parameters of an LIFSynaptic neuron."""
    if abs(tau_syn - tau_m) < 1e-6 * tau_m:
        # the closed form divides by tau_syn - tau_m; a relative 1e-6 shift changes the
        # dynamics by ~1e-6 and keeps the cancellation error near 1e-10
        tau_syn = tau_m * (1.0 + 1e-6)
    return LIFSynapticParams(
        float(tau_m), float(tau_syn), float(v_th), float(v_reset), float(e_l), float(t_ref),
        float(_exp_minus_ratio(t_ref, tau_syn)), tau_m * tau_syn / (tau_m - tau_syn),
        (v_th - e_l) / tau_m)


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


# --- the Monte Carlo interface (popdens.kernels.mc_interface) ------------------------------
def _load(p, y, i):
    return y[i, 0], y[i, 1]


def _store(p, y, i, x):
    y[i, 0], y[i, 1] = x


def _advance(p, x, duration):
    if duration > 0.0:
        v, cur = x
        a = math.exp(-duration / p.tau_m)
        b = math.exp(-duration / p.tau_syn)
        return p.e_l + (v - p.e_l) * a + cur * p.kernel_scale * (a - b), cur * b
    return x


def _prepare_step(p, duration):
    return math.exp(-duration / p.tau_m), math.exp(-duration / p.tau_syn)


def _advance_step(p, x, prepared):
    # the arithmetic of _advance, so that both give the same bits
    v, cur = x
    a, b = prepared
    return p.e_l + (v - p.e_l) * a + cur * p.kernel_scale * (a - b), cur * b


def _split_step(p, prepared, first, rest):
    a, b = mc_interface.prepare_step(p, first)
    if a > 1e-200 and b > 1e-200:   # divisions instead of two exponentials
        return (a, b), (prepared[0] / a, prepared[1] / b)
    return (a, b), mc_interface.prepare_step(p, rest)


def _crossing(p, x, x_new, duration):
    # it crossed if it ends above threshold; else only if it has a maximum inside (rising
    # at the start, falling at the end) with the drive above i_crit at the start (|i_syn|
    # decays, and dv/dt <= 0 at v = v_th needs i_syn <= i_crit): the slow path locates
    # the crossing or rejects it
    v, cur = x
    v_end, cur_end = x_new
    if duration > 0.0 and (v_end >= p.v_th or (cur > p.i_crit and (
            (p.e_l - v) / p.tau_m + cur > 0.0 > (p.e_l - v_end) / p.tau_m + cur_end))):
        return _first_crossing(v, cur, duration, p.e_l, p.tau_m, p.tau_syn, p.v_th)
    return -1.0


def _jump(p, x, weight, reversal):
    return x[0], x[1] + weight / p.tau_syn


def _resets(p):
    return True


def _hold(p, x):
    return REFRACTORY, x[1] * p.refractory_decay


def _is_held(p, x):
    return x[0] == REFRACTORY


def _release(p, x):
    return p.v_reset, x[1]


def _refractory_period(p):
    return p.t_ref


mc_interface.register(LIFSynapticParams, load=_load, store=_store, advance=_advance,
                      crossing=_crossing, jump=_jump, prepare_step=_prepare_step,
                      advance_step=_advance_step, split_step=_split_step, resets=_resets,
                      hold=_hold, is_held=_is_held, release=_release,
                      refractory_period=_refractory_period)
