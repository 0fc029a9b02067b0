"""Compiled single-neuron update of :class:`popdens.LIF` for the Monte Carlo loop
(:mod:`popdens.kernels.mc_engine`).

Exact integration: between events ``v`` relaxes to ``e_l``,
``v(s) = e_l + (v - e_l) exp(-s / tau_m)``, which is monotone, so a segment that starts
below ``v_th`` crosses it iff it ends at or above it, at
``s = tau_m log((e_l - v) / (e_l - v_th))`` (only possible for ``e_l > v_th``). A neuron
pushed to or above ``v_th`` by an event fires at once. A current synapse moves ``v`` by
its weight, a conductance synapse by ``weight (reversal - v)``. While refractory a neuron
is held off the grid with ``v = +inf`` (the loop ignores its input) and released at
``v_reset`` after ``t_ref``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from . import mc_interface

__all__ = ["LIFParams", "lif_params", "lif_segment"]

REFRACTORY = np.inf
"""Value of ``v`` while a neuron is refractory."""


class LIFParams(NamedTuple):
    """Compiled parameters of :class:`popdens.LIF` (:func:`lif_params`)."""

    tau_m: float
    v_th: float
    v_reset: float
    e_l: float
    t_ref: float
    leak_rate: float   # 1 / tau_m: a multiplication in every segment, not a division

    exact = True
    integrator = "exact (exponential relaxation, closed-form threshold times)"


def lif_params(tau_m, v_th, v_reset, e_l, t_ref) -> LIFParams:
    """The compiled parameters of an LIF neuron."""
    return LIFParams(float(tau_m), float(v_th), float(v_reset), float(e_l), float(t_ref),
                     1.0 / float(tau_m))


@njit(cache=True, inline="always")
def _relax(v, decay, e_l):
    """``v`` after a segment whose leak factor is ``decay = exp(-duration / tau_m)``."""
    return e_l + (v - e_l) * decay


@njit(cache=True, inline="always")
def _crossing_time(v, v_end, duration, tau_m, v_th, e_l):
    """Threshold time of the segment from ``v`` to ``v_end`` (``0`` if it starts at or
    above ``v_th``), or -1.0."""
    if v >= v_th:
        return 0.0
    if v_end < v_th:
        return -1.0
    if e_l <= v_th:   # ends above threshold only by round-off: at its end
        return duration
    s = tau_m * math.log((e_l - v) / (e_l - v_th))
    return min(max(s, 0.0), duration)


@njit(cache=True)
def lif_segment(v, duration, p):
    """``(v at the end, threshold time or -1.0)`` of one segment without events
    (compiled twin of the loop's functions, for tests)."""
    v_end = _relax(v, math.exp(-duration * p.leak_rate), p.e_l) if duration > 0.0 else v
    return v_end, _crossing_time(v, v_end, duration, p.tau_m, p.v_th, p.e_l)


# --- the Monte Carlo interface (popdens.kernels.mc_interface) ------------------------------
def _load(p, y, i):
    return (y[i, 0],)


def _store(p, y, i, x):
    y[i, 0] = x[0]


def _advance(p, x, duration):
    if duration > 0.0:
        return (_relax(x[0], math.exp(-duration * p.leak_rate), p.e_l),)
    return x


def _prepare_step(p, duration):
    return math.exp(-duration * p.leak_rate)


def _advance_step(p, x, prepared):
    return (_relax(x[0], prepared, p.e_l),)


def _split_step(p, prepared, first, rest):
    decay_first = mc_interface.prepare_step(p, first)
    if decay_first > 1e-200:   # a division instead of an exponential
        return decay_first, prepared / decay_first
    return decay_first, mc_interface.prepare_step(p, rest)


def _crossing(p, x, x_new, duration):
    return _crossing_time(x[0], x_new[0], duration, p.tau_m, p.v_th, p.e_l)


def _jump(p, x, weight, reversal):
    if reversal != reversal:    # NaN: a current synapse
        return (x[0] + weight,)
    return (x[0] + weight * (reversal - x[0]),)


def _resets(p):
    return True


def _hold(p, x):
    return (REFRACTORY,)


def _is_held(p, x):
    return x[0] == REFRACTORY


def _release(p, x):
    return (p.v_reset,)


def _refractory_period(p):
    return p.t_ref


mc_interface.register(LIFParams, load=_load, store=_store, advance=_advance,
                      crossing=_crossing, jump=_jump, prepare_step=_prepare_step,
                      advance_step=_advance_step, split_step=_split_step, resets=_resets,
                      hold=_hold, is_held=_is_held, release=_release,
                      refractory_period=_refractory_period)
