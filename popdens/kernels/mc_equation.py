"""Compiled building blocks of the Monte Carlo updates generated from model equations
(:mod:`popdens.equations.mc_codegen`): one step of the second-order Rush-Larsen scheme,
threshold-crossing times and the Brownian-bridge correction of white noise.

Rush-Larsen (as :mod:`popdens.kernels.mc_hh`, whose exponential it shares): each state
variable's drift is written ``a(x) - b(x) y`` where ``y`` enters the text linearly (``b =
0`` where it does not: that variable then takes explicit midpoint steps). A step of
``h`` predicts the midpoint by a semi-implicit Euler half step, ``(y + (h/2) a) / (1 +
(h/2) b)``, and ends with the exact solution of ``dy/dt = a - b y`` over ``h`` with the
coefficients frozen at the midpoint: second order for any split.

The NumPy twins are in ``tests/models/test_equation_mc.py``.
"""

from __future__ import annotations

import math

from numba import njit

# the Taylor-polynomial exp(-z) of the hand-written HH kernel, so that an HH written as
# text takes the same steps (tests/models/test_equation_mc.py)
from .mc_hh import _exp_minus
from .montecarlo import _crossing_check, _normal

__all__ = ["predict", "relax", "linear_crossing", "surface_crossing", "exact_flow",
           "exact_crossing", "exact_step_constants", "exact_split_constants", "exact_step",
           "bridge_crossing", "normal"]

# Below |b h| = 1e-3 the relaxation uses the series of (1 - exp(-z)) / z (next term
# z^5 / 720 < 2e-18): y_inf = a / b would lose digits to cancellation, or divide by 0.
_SERIES_LIMIT = 1e-3

normal = _normal


@njit(cache=True, inline="always")
def predict(y, a, b, h):
    """Semi-implicit Euler step of ``dy/dt = a - b y``: ``(y + h a) / (1 + h b)``
    (``b = 0``: explicit Euler)."""
    return (y + h * a) / (1.0 + h * b)


@njit(cache=True, inline="always")
def relax(y, a, b, h):
    """Exact solution of ``dy/dt = a - b y`` after ``h`` (any sign of ``b``; ``b = 0``:
    ``y + h a``)."""
    z = b * h
    if abs(z) < _SERIES_LIMIT:
        # (1 - exp(-z)) / z = 1 - z/2 + z^2/6 - z^3/24 + z^4/120
        phi = 1.0 - z * (0.5 - z * (1.0 / 6.0 - z * (1.0 / 24.0 - z / 120.0)))
        return y + h * (a - b * y) * phi
    y_inf = a / b
    # _exp_minus's polynomial is only for z >= 0 (decay)
    return y_inf + (y - y_inf) * (_exp_minus(z) if z > 0.0 else math.exp(-z))


@njit(cache=True, inline="always")
def linear_crossing(y0, y1, level, duration):
    """Time in ``[0, duration]`` at which ``y`` reaches ``level`` on the straight segment
    from ``y0`` to ``y1``: 0 if it starts there or above (an input jump crossed it, even
    if the flow would bring it back), ``duration`` if ``y1`` is not finite (a run-away
    past the cut-off); -1.0 if it starts and ends below."""
    if y0 >= level:     # a jump put it there: it fires at once, wherever the flow goes
        return 0.0
    if y1 < level:
        return -1.0
    if not math.isfinite(y1):
        return duration
    return min(duration * (level - y0) / (y1 - y0), duration)


@njit(cache=True, inline="always")
def surface_crossing(y0, y1, level, duration):
    """Time of an upward crossing of ``level`` within the step (linear in ``y``), or
    -1.0 (a spike surface: a neuron that stays above it does not fire again)."""
    if y0 < level <= y1:
        return duration * (level - y0) / (y1 - y0)
    return -1.0


@njit(cache=True, inline="always")
def exact_flow(y, duration, fixed, rate, drift):
    """The flow of ``dy/dt = rate (y - fixed) + drift`` with ``drift = 0`` where
    ``rate != 0`` and ``fixed = 0`` where ``rate = 0`` (the generated constants):
    ``fixed + (y - fixed) exp(rate s) + drift s``, without a branch (the terms that
    vanish are exact zeros and ones, so each case gets its own closed form to the bit)."""
    return exact_step(y, exact_step_constants(duration, rate, drift), fixed)


@njit(cache=True, inline="always")
def exact_step_constants(duration, rate, drift):
    """What :func:`exact_flow` over ``duration`` computes once for every neuron:
    ``(exp(rate * duration), drift * duration)``."""
    return math.exp(rate * duration), drift * duration


@njit(cache=True, inline="always")
def exact_split_constants(constants, first, rest, rate, drift):
    """The :func:`exact_step_constants` of the pieces ``first`` and ``rest`` of the step
    of ``constants``: ``exp(rate * rest)`` as a quotient (one exponential, not two)
    unless ``exp(rate * first)`` is out of range."""
    growth_first = math.exp(rate * first)
    if 1e-200 < growth_first < 1e200:
        growth_rest = constants[0] / growth_first
    else:
        growth_rest = math.exp(rate * rest)
    return (growth_first, drift * first), (growth_rest, drift * rest)


@njit(cache=True, inline="always")
def exact_step(y, constants, fixed):
    """:func:`exact_flow` with the constants of :func:`exact_step_constants`: the same
    operations, so the same result to the bit; branch-free, so that the loop's neurons
    without input stream through it."""
    return fixed + (y - fixed) * constants[0] + constants[1]


@njit(cache=True, inline="always")
def exact_crossing(y0, y1, level, duration, fixed, rate, drift):
    """Time at which the exact (monotone) flow from ``y0`` reaches ``level``, given its
    end ``y1``: 0 if it starts there or above (an input jump crossed it); -1.0 if it
    starts and ends below."""
    if y0 >= level:     # a jump put it there: it fires at once
        return 0.0
    if y1 < level:
        return -1.0
    if rate == 0.0:
        s = (level - y0) / drift
    else:
        s = math.log((level - fixed) / (y0 - fixed)) / rate
    return min(max(s, 0.0), duration)


@njit(cache=True, inline="always")
def bridge_crossing(y0, y1, level, variance, duration, state):
    """Crossing time of a white-noise path from ``y0`` to ``y1`` (increment variance
    ``variance`` over ``duration``): at the end above the level, a Brownian-bridge
    hitting time; below it, a crossing with the bridge probability ``exp(-2 d0 d1 /
    variance)`` (:func:`popdens.kernels.montecarlo._crossing_check`). Returns ``(time or
    -1.0, state)``."""
    if not math.isfinite(y1):
        return linear_crossing(y0, y1, level, duration), state
    if y0 >= level:
        return 0.0, state
    return _crossing_check(y0, y1, variance, duration, level, True, state)
