"""The jump mixture with frozen limiters, as a linear map, for the stationary solver.

:func:`popdens.kernels.jumps.mixture_jump` recomputes the limited slopes of every Horner
iterate, so it is nonlinear. The stationary solver freezes each limiter at a given
state (slope = ``factor x`` the central difference, one factor per cell and Horner
slot), which makes the jump stage linear; :func:`frozen_mixture` applies that linear
map to many vectors at once (the unit vectors give its matrix), with the same shift
kernels as the time stepper.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from .transport import shift_fractional, shift_integer

__all__ = ["FrozenMixture", "frozen_mixture"]


class FrozenMixture(NamedTuple):
    """One population's jump stage with frozen limiters.

    ``shifts`` (C,) jump of each input in cells; ``probabilities`` (C,) its share of the
    events; ``weights`` (K,) Poisson weights of 0 .. K-1 events per sub-step;
    ``factors`` (K-1, N) limiter factor per Horner slot (slot 0 is applied first, to
    ``weights[K-1] x`` the input); ``reset`` (N,) where crossing mass re-enters when
    ``immediate`` (no refractory period), else crossings leave."""

    shifts: np.ndarray
    probabilities: np.ndarray
    weights: np.ndarray
    factors: np.ndarray
    reset: np.ndarray
    immediate: bool


@njit(cache=True)
def frozen_mixture(columns, mix, out, crossed, iterates):
    """Apply the frozen mixture to every row ``x`` of ``columns`` (M, N).

    ``out`` (M, N) receives ``sum_k weights[k] T'^k x`` evaluated by Horner's rule, with
    the one-event map ``T'`` of the frozen slopes; ``crossed`` (M,) the mass that crossed
    threshold (over all events). If ``iterates`` has K-1 rows, the Horner iterates of row
    0 (the states the limiters of the slots act on) are stored there."""
    m_rows, n = columns.shape
    count = mix.weights.shape[0]
    num_inputs = mix.shifts.shape[0]
    fractional = False
    for c in range(num_inputs):
        if abs(mix.shifts[c] - round(mix.shifts[c])) >= 1e-9:
            fractional = True
    acc = np.zeros(n)
    g = np.zeros(n)
    work = np.zeros(n)
    record = iterates.shape[0] == count - 1
    # supports: a column's Horner iterates stay within a band that grows by one event's
    # jump plus one cell (the slopes reach one cell out) per event, so each row works on
    # the cells that can hold mass (the others get exact zeros either way, the results
    # are the same); with an in-step reset the band takes in the reset cells once mass
    # has crossed
    down = 0
    up = 0
    for c in range(num_inputs):
        down = max(down, int(math.ceil(-mix.shifts[c])))
        up = max(up, int(math.ceil(mix.shifts[c])))
    reset_lo, reset_hi = n, 0
    if mix.immediate:
        for j in range(n):
            if mix.reset[j] != 0.0:
                reset_lo = min(reset_lo, j)
                reset_hi = max(reset_hi, j + 1)
    for r in range(m_rows):
        x = columns[r]
        lo, hi = n, 0
        for j in range(n):
            if x[j] != 0.0:
                lo = min(lo, j)
                hi = max(hi, j + 1)
        if hi <= lo:
            lo, hi = 0, 0
        for j in range(n):
            acc[j] = mix.weights[count - 1] * x[j]
        total = 0.0
        for slot in range(count - 1):
            k = count - 2 - slot
            if record and r == 0:
                for j in range(n):
                    iterates[slot, j] = acc[j]
            # the mass and slopes of [lo - 1, hi + 1) land in [lo - down - 1, hi + up + 1)
            a = max(0, lo - down - 1)
            b = min(n, hi + up + 1)
            if fractional:
                factor = mix.factors[slot]
                for j in range(a, b):
                    if 0 < j < n - 1:
                        g[j] = factor[j] * 0.5 * (acc[j + 1] - acc[j - 1])
                    else:
                        g[j] = 0.0
            for j in range(a, b):
                work[j] = 0.0
            moved = 0.0
            for c in range(num_inputs):
                shift = mix.shifts[c]
                whole = int(round(shift))
                if abs(shift - whole) < 1e-9:
                    moved += shift_integer(acc[a:b], whole, work[a:b], mix.probabilities[c])
                else:
                    moved += shift_fractional(acc[a:b], g[a:b], shift, work[a:b],
                                              mix.probabilities[c])
            total += moved
            for j in range(a, b):
                acc[j] = work[j] + mix.weights[k] * x[j]
            lo, hi = a, b
            if mix.immediate and moved != 0.0:
                for j in range(reset_lo, reset_hi):
                    acc[j] += mix.reset[j] * moved
                lo = min(lo, reset_lo)
                hi = max(hi, reset_hi)
        for j in range(n):
            out[r, j] = acc[j]
        crossed[r] = total
