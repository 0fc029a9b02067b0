"""Compiled Monte Carlo kernels for populations of leaky integrate-and-fire neurons.

Everything here works on plain arrays and scalars; :mod:`popdens.backends.montecarlo`
turns a :class:`popdens.Network` into these arrays.

Model (SI units) of one neuron of population ``p``, between input events::

    dv = ((e_l - v) / tau_m + m) dt + sqrt(s2) dW

where ``m = sum s h`` and ``s2 = sum s h**2`` collect the connections replaced by their
diffusion limit (rate ``s`` Hz, weight ``h`` V). Connections with finite jumps add
Poisson events; each moves ``v`` by its weight. ``v >= v_th`` is a spike: the neuron is
held for ``t_ref`` (input ignored, as in Brunel 2000) and restarts at ``v_reset``.

How events are timed exactly. All neurons of a population see the same total jump rate
``S_k`` (Hz) in step ``k``, constant within the step. With the cumulative intensity
``Lambda(t) = integral_0^t S``, each neuron's events are a unit-rate Poisson process in
``Lambda`` (time rescaling): a neuron keeps the value ``target`` of ``Lambda`` at which
its next event happens (previous event + Exp(1)). An event falls in step ``k`` iff
``target < Lambda(t_{k+1})``, and its time follows by linear interpolation since
``Lambda`` is linear within the step. The connection is chosen with probability
``rate_c / S_k``. A neuron without an event in a step costs one exact leak update and
two comparisons (the common "fast path"); everything else (events, spikes, refractory
ends, possibly several per step) goes event by event through :func:`_advance_to_event`.

Refractory neurons carry ``v = +inf``: the fast path's threshold comparison then routes
them to that slow path without a separate refractory array read per step; their
release time lives in ``ref_end``.

White noise is advanced by the exact Ornstein-Uhlenbeck transition; the chance that the
path crossed the threshold between two sampled points is restored with the
Brownian-bridge crossing probability ``exp(-2 d1 d2 / (s2 dt))`` (``d1``, ``d2``: the
distances of the two points below threshold), and the crossing time is drawn from the
bridge's first-passage distribution (:func:`_bridge_hitting_time`).

Random numbers come from a SplitMix64 generator (Steele, Lea & Flood 2014) whose 64-bit
state is threaded through the functions, Gaussian and exponential ones from 256-layer
ziggurats (Marsaglia & Tsang 2000, with independent bits for the layer and the value as
advised by Doornik 2005). numba's own ``np.random`` took 20 ns per uniform and 60 ns per
normal (a call into its C runtime) on the development machine; these inline into the
loops at about 1 ns per uniform and 3 ns per normal or exponential.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["seed_state", "simulate_lif", "sample_normals", "sample_exponentials",
           "sample_bridge_hitting_times"]

REFRACTORY = np.inf
"""Value of ``v`` while a neuron is refractory."""

# Below exp(-46) ~ 1e-20 a Brownian-bridge crossing is not worth a random number.
_BRIDGE_NEGLIGIBLE_EXPONENT = 46.0

# --- random numbers ------------------------------------------------------------------------
_GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_U11 = np.uint64(11)
_U27 = np.uint64(27)
_U30 = np.uint64(30)
_U31 = np.uint64(31)
_I11 = np.int64(11)
_LOW8 = np.uint64(0xFF)
_TWO_POW_M52 = 2.0**-52
_TWO_POW_M53 = 2.0**-53


def _ziggurat_tables(density, inverse, tail_area, r, num_layers=256):
    """Layer edges ``x`` (decreasing from the base strip's virtual width to 0) and
    ``density(x)`` of a 256-layer ziggurat with rightmost edge ``r`` (Marsaglia & Tsang
    2000). Every layer, the base strip (rectangle ``[0, r]`` plus the tail) included, has
    the same area."""
    area = r * density(r) + tail_area(r)
    x = np.empty(num_layers + 1)
    x[0] = area / density(r)
    x[1] = r
    for i in range(1, num_layers - 1):
        x[i + 1] = inverse(area / x[i] + density(x[i]))
    x[num_layers] = 0.0
    top = x[num_layers - 1] * (1.0 - density(x[num_layers - 1]))
    if abs(top - area) > 1e-10 * area:  # r does not close the ziggurat
        raise RuntimeError("inconsistent ziggurat constants")
    return x, np.array([density(xi) for xi in x])


_NORMAL_X, _NORMAL_F = _ziggurat_tables(
    lambda x: math.exp(-0.5 * x * x), lambda y: math.sqrt(-2.0 * math.log(y)),
    lambda r: math.sqrt(0.5 * math.pi) * math.erfc(r / math.sqrt(2.0)), 3.6541528853610088)
_NORMAL_R = float(_NORMAL_X[1])
_EXP_X, _EXP_F = _ziggurat_tables(
    lambda x: math.exp(-x), lambda y: -math.log(y), lambda r: math.exp(-r),
    7.69711747013104972)
_EXP_R = float(_EXP_X[1])


@njit(cache=True)
def _next_u64(state):
    """SplitMix64: returns (64 random bits, new state)."""
    state = state + _GOLDEN_GAMMA
    z = state
    z = (z ^ (z >> _U30)) * _MIX_1
    z = (z ^ (z >> _U27)) * _MIX_2
    return z ^ (z >> _U31), state


@njit(cache=True)
def _uniform(state):
    """Uniform double in [0, 1) with 53 random bits; returns (u, new state)."""
    bits, state = _next_u64(state)
    return (bits >> _U11) * _TWO_POW_M53, state


# Each ziggurat is split into a small common case (one table lookup, about 99 % of draws)
# and a separate rare case: kept together, the rare branches stopped LLVM from inlining the
# common case and tripled its cost.
@njit(cache=True)
def _normal(state):
    """Standard normal variate (ziggurat); returns (z, new state)."""
    bits, state = _next_u64(state)
    layer = np.intp(bits & _LOW8)
    # the top 53 bits as a signed fraction in [-1, 1); the low 8 bits chose the layer
    x = (np.int64(bits) >> _I11) * _TWO_POW_M52 * _NORMAL_X[layer]
    if abs(x) < _NORMAL_X[layer + 1]:
        return x, state
    return _normal_rare(x, layer, state)


@njit(cache=True)
def _normal_rare(x, layer, state):
    """The base strip's tail and the layers' wedges of :func:`_normal`."""
    while True:
        if layer == 0:
            # tail beyond r (Marsaglia 1964)
            while True:
                u1, state = _uniform(state)
                u2, state = _uniform(state)
                a = -math.log1p(-u1) / _NORMAL_R
                if -2.0 * math.log1p(-u2) > a * a:
                    return math.copysign(_NORMAL_R + a, x), state
        u, state = _uniform(state)
        y = _NORMAL_F[layer] + u * (_NORMAL_F[layer + 1] - _NORMAL_F[layer])
        if y < math.exp(-0.5 * x * x):
            return x, state
        bits, state = _next_u64(state)
        layer = np.intp(bits & _LOW8)
        x = (np.int64(bits) >> _I11) * _TWO_POW_M52 * _NORMAL_X[layer]
        if abs(x) < _NORMAL_X[layer + 1]:
            return x, state


@njit(cache=True)
def _exponential(state):
    """Exp(1) variate (ziggurat); returns (e, new state)."""
    bits, state = _next_u64(state)
    layer = np.intp(bits & _LOW8)
    x = (bits >> _U11) * _TWO_POW_M53 * _EXP_X[layer]
    if x < _EXP_X[layer + 1]:
        return x, state
    return _exponential_rare(x, layer, state)


@njit(cache=True)
def _exponential_rare(x, layer, state):
    """The base strip's tail and the layers' wedges of :func:`_exponential`."""
    offset = 0.0
    while True:
        if layer == 0:
            # memoryless: the tail beyond r is r + Exp(1)
            offset += _EXP_R
        else:
            u, state = _uniform(state)
            y = _EXP_F[layer] + u * (_EXP_F[layer + 1] - _EXP_F[layer])
            if y < math.exp(-x):
                return offset + x, state
        bits, state = _next_u64(state)
        layer = np.intp(bits & _LOW8)
        x = (bits >> _U11) * _TWO_POW_M53 * _EXP_X[layer]
        if x < _EXP_X[layer + 1]:
            return offset + x, state


@njit(cache=True)
def _bridge_hitting_time(d1, d2, variance, duration, state):
    """First time a Brownian bridge reaches the threshold, given that it does.

    The bridge starts ``d1 > 0`` below the threshold and ends ``d2`` below it (``d2 <= 0``:
    at or above) after ``duration``; ``variance`` is the Brownian increment's variance over
    ``duration``. The first-passage density of the time ``s`` is proportional to
    ``s^(-3/2) exp(-d1^2 / (2 q s)) (duration - s)^(-1/2) exp(-d2^2 / (2 q (duration - s)))``
    (``q = variance / duration``); with ``s = duration X / (1 + X)`` it becomes
    ``X^(-3/2) exp(-a / X - b X)``, an inverse Gaussian law of mean ``d1 / |d2|`` and shape
    ``d1^2 / variance`` (a Levy law when ``d2 = 0``), sampled as Michael, Schucany & Haas
    (1976). Returns (time in [0, duration], new state).
    """
    if d1 <= 0.0:
        return 0.0, state
    shape = d1 * d1 / variance
    z, state = _normal(state)
    y = z * z
    if abs(d2) <= 1e-12 * d1:
        if y == 0.0:
            return duration, state
        ratio = shape / y
    else:
        mean = d1 / abs(d2)
        # smaller root of the quadratic, in the form that does not cancel for large mean*y
        ratio = mean - 2.0 * mean * mean * y / (
            mean * y + math.sqrt(mean * mean * y * y + 4.0 * mean * shape * y))
        u, state = _uniform(state)
        if u * (mean + ratio) > mean:
            ratio = mean * mean / ratio
    return duration * (ratio / (1.0 + ratio)), state


# --- single-neuron dynamics ------------------------------------------------------------------
@njit(cache=True, inline="always")
def _crossing_check(x, x_new, variance, duration, v_th, bridge, state):
    """Whether a diffusing path from ``x`` to ``x_new`` (both known) crossed ``v_th``.

    ``variance`` is the Brownian increment's variance over ``duration``.
    Returns (crossing time in [0, duration] or -1.0 for none, new state)."""
    d1 = v_th - x
    d2 = v_th - x_new
    if d2 <= 0.0:
        return _bridge_hitting_time(d1, d2, variance, duration, state)
    if bridge:
        exponent = 2.0 * d1 * d2 / variance
        if exponent < _BRIDGE_NEGLIGIBLE_EXPONENT:
            # crossed with probability exp(-exponent) = P(Exp(1) > exponent); an
            # exponential variate is cheaper than a uniform and an exp
            e, state = _exponential(state)
            if e > exponent:
                return _bridge_hitting_time(d1, d2, variance, duration, state)
    return -1.0, state


@njit(cache=True)
def _relax(x, decay, duration, mu, s2, tau, v_th, bridge, state):
    """Advance ``v`` exactly for ``duration`` without input events.

    ``decay = exp(-duration / tau)``. Deterministic relaxation toward ``mu`` when
    ``s2 == 0``, else the exact Ornstein-Uhlenbeck transition with noise intensity ``s2``
    (V^2/s). Returns (v at the end, threshold-crossing time or -1.0, new state); when it
    crossed, the returned ``v`` is meaningless.
    """
    if duration <= 0.0:
        return x, -1.0, state
    if s2 == 0.0:
        x_new = mu + (x - mu) * decay
        if x_new >= v_th:
            # relaxation is monotone: solve mu + (x - mu) exp(-s / tau) = v_th for s
            if mu <= v_th:
                return x_new, duration, state
            s = tau * math.log((mu - x) / (mu - v_th))
            return x_new, min(max(s, 0.0), duration), state
        return x_new, -1.0, state
    spread = math.sqrt(0.5 * s2 * tau * (1.0 - decay) * (1.0 + decay))
    z, state = _normal(state)
    x_new = mu + (x - mu) * decay + spread * z
    t_cross, state = _crossing_check(x, x_new, s2 * duration, duration, v_th, bridge, state)
    return x_new, t_cross, state


@njit(cache=True)
def _decay_between(decay_from, decay_to, duration, tau):
    """``exp(-duration / tau)`` from the decays since the step start at both ends: a
    division instead of an ``exp`` unless those underflowed (steps of hundreds of tau)."""
    if decay_from > 1e-200:
        return decay_to / decay_from
    return math.exp(-duration / tau)


@njit(cache=True, inline="always")
def _choose_connection(jump_rate, k, j_lo, j_hi, total_rate, state):
    """Row in ``j_lo:j_hi`` of the connection that delivered an event: probability
    ``jump_rate[j, k] / total_rate``. Returns (row, new state)."""
    if j_hi - j_lo == 1:
        return j_lo, state
    u, state = _uniform(state)
    pick = u * total_rate
    j = j_lo
    acc = jump_rate[j, k]
    while pick >= acc and j < j_hi - 1:
        j += 1
        acc += jump_rate[j, k]
    # round-off may carry pick past the last connection with a nonzero rate
    while jump_rate[j, k] == 0.0 and j > j_lo:
        j -= 1
    return j, state


# Only scalars cross this function's boundary: array arguments to a call that LLVM does not
# inline cost atomic reference-count updates, which made every event several times dearer.
@njit(cache=True)
def _advance_to_event(x, t, decay_since_t0, ref_end, target, state, t0, t1, lam0, lam1,
                      total_rate, inv_rate, mu, s2, decay_step, tau, v_th, v_reset, t_ref,
                      bridge):
    """Advance one neuron from ``t`` to its next input event or to the step end ``t1``.

    Parameters
    ----------
    x : float
        ``v`` at ``t`` (``REFRACTORY`` if held until ``ref_end``); it may be at or above
        threshold just after a jump.
    t, decay_since_t0 : float
        Current time and ``exp(-(t - t0) / tau)`` (segment decays then cost a division).
    ref_end, target : float
        End of the refractory period; cumulative intensity of the next input event.
    t0, t1, lam0, lam1, total_rate, inv_rate : float
        The step, the cumulative jump intensity at its ends, the total jump rate and its
        inverse (0 when the rate is 0).
    mu, s2, decay_step, tau : float
        Relaxation target (V), white-noise intensity (V^2/s), ``exp(-(t1 - t0) / tau)``,
        membrane time constant.
    v_th, v_reset, t_ref : float
        Threshold, reset, refractory period.
    bridge : bool
        Brownian-bridge crossing correction.

    Returns
    -------
    (x, t, decay_since_t0, ref_end, target, spikes, at_event, state)
        With ``at_event`` the state is just before the event at ``t`` (its jump is the
        caller's to apply, with the next target); otherwise it is the state at ``t1``.
    """
    spikes = 0
    while True:
        if x == REFRACTORY:
            if ref_end >= t1:
                return x, t1, decay_step, ref_end, target, spikes, False, state
            # input was ignored while refractory; by memorylessness the next event comes
            # Exp(1) of intensity after the release
            t = ref_end
            x = v_reset
            decay_since_t0 = math.exp(-(t - t0) / tau)
            e, state = _exponential(state)
            target = lam0 + total_rate * (t - t0) + e
        if x >= v_th:
            t_spike = t  # a jump reached threshold
        else:
            at_event = target < lam1
            if at_event:
                t_next = min(max(t0 + (target - lam0) * inv_rate, t), t1)
                decay_next = math.exp(-(t_next - t0) / tau)
            else:
                t_next = t1
                decay_next = decay_step
            duration = t_next - t
            x_new, t_cross, state = _relax(
                x, _decay_between(decay_since_t0, decay_next, duration, tau), duration, mu,
                s2, tau, v_th, bridge, state)
            if t_cross < 0.0:
                return x_new, t_next, decay_next, ref_end, target, spikes, at_event, state
            t_spike = t + t_cross
        spikes += 1
        ref_end = t_spike + t_ref
        x = REFRACTORY


@njit(cache=True, inline="always")
def _finish_step(x, t, decay_since_t0, held_until, next_target, state, k, t0, t1, lam0,
                 lam1, total_rate, inv_rate, jump_weight, jump_rate, j_lo, j_hi, mu, s2,
                 decay, tau, v_th, v_reset, t_ref, bridge):
    """Take one neuron from ``(x, t)`` to the step end, applying every input event.

    Inlined into the population loops (numba IR) so that the weight and rate arrays never
    cross a call. Returns (v, ref_end, target, spikes, events, state) at ``t1``."""
    spikes = 0
    events = 0
    while True:
        x, t, decay_since_t0, held_until, next_target, n_spikes, at_event, state = \
            _advance_to_event(x, t, decay_since_t0, held_until, next_target, state, t0, t1,
                              lam0, lam1, total_rate, inv_rate, mu, s2, decay, tau, v_th,
                              v_reset, t_ref, bridge)
        spikes += n_spikes
        if not at_event:
            return x, held_until, next_target, spikes, events, state
        events += 1
        j, state = _choose_connection(jump_rate, k, j_lo, j_hi, total_rate, state)
        x += jump_weight[j]
        e, state = _exponential(state)
        next_target += e


@njit(cache=True)
def _step_population(v, target, ref_end, lo, hi, k, state, t0, t1, lam0, lam1, total_rate,
                     jump_weight, jump_rate, j_lo, j_hi, mu, s2, decay, spread, tau, v_th,
                     v_reset, t_ref, bridge):
    """Advance neurons ``lo:hi`` of one population through step ``[t0, t1)``.

    ``decay = exp(-(t1 - t0) / tau)``; ``spread`` is the Ornstein-Uhlenbeck standard
    deviation over the step. Returns (spikes, refractory neurons at t1, input events,
    new state)."""
    if s2 == 0.0:
        return _step_deterministic(v, target, ref_end, lo, hi, k, state, t0, t1, lam0, lam1,
                                   total_rate, jump_weight, jump_rate, j_lo, j_hi, mu, decay,
                                   tau, v_th, v_reset, t_ref)
    return _step_white_noise(v, target, ref_end, lo, hi, k, state, t0, t1, lam0, lam1,
                             total_rate, jump_weight, jump_rate, j_lo, j_hi, mu, s2, decay,
                             spread, tau, v_th, v_reset, t_ref, bridge)


@njit(cache=True)
def _step_deterministic(v, target, ref_end, lo, hi, k, state, t0, t1, lam0, lam1,
                        total_rate, jump_weight, jump_rate, j_lo, j_hi, mu, decay, tau, v_th,
                        v_reset, t_ref):
    """:func:`_step_population` without white noise: between events ``v`` relaxes
    deterministically toward ``mu``."""
    spikes = 0
    refractory = 0
    events = 0
    inv_rate = 1.0 / total_rate if total_rate > 0.0 else 0.0
    inv_rate_tau = inv_rate / tau
    for i in range(lo, hi):
        x = v[i]
        next_target = target[i]
        x_new = mu + (x - mu) * decay
        # v = inf (refractory) fails the first test
        if x_new < v_th and next_target >= lam1:
            v[i] = x_new
            continue
        t = t0
        decay_since_t0 = 1.0
        held_until = 0.0
        if x == REFRACTORY:
            # ref_end is read and written only around refractory periods
            held_until = ref_end[i]
            if held_until >= t1:
                refractory += 1
                continue
        elif next_target < lam1:
            # The usual reason to be here: one event and no spike in the step. Straight-line
            # code for it shortens the dependency chain through the event (about half the
            # cost of the general loop); any other outcome continues in that loop from the
            # state reached, so no random number is drawn twice.
            event_target = next_target
            decay_to_event = math.exp(-(event_target - lam0) * inv_rate_tau)
            x_before = mu + (x - mu) * decay_to_event
            if x_before < v_th:
                j, state = _choose_connection(jump_rate, k, j_lo, j_hi, total_rate, state)
                x = x_before + jump_weight[j]
                e, state = _exponential(state)
                next_target = event_target + e
                events += 1
                if x < v_th and next_target >= lam1:
                    x_end = mu + (x - mu) * (decay / decay_to_event)
                    if x_end < v_th:
                        v[i] = x_end
                        target[i] = next_target
                        continue
                t = min(t0 + (event_target - lam0) * inv_rate, t1)
                decay_since_t0 = decay_to_event
        x, held_until, next_target, n_spikes, n_events, state = _finish_step(
            x, t, decay_since_t0, held_until, next_target, state, k, t0, t1, lam0, lam1,
            total_rate, inv_rate, jump_weight, jump_rate, j_lo, j_hi, mu, 0.0, decay, tau,
            v_th, v_reset, t_ref, False)
        v[i] = x
        target[i] = next_target
        spikes += n_spikes
        events += n_events
        if x == REFRACTORY:
            ref_end[i] = held_until
            refractory += 1
    return spikes, refractory, events, state


@njit(cache=True)
def _step_white_noise(v, target, ref_end, lo, hi, k, state, t0, t1, lam0, lam1, total_rate,
                      jump_weight, jump_rate, j_lo, j_hi, mu, s2, decay, spread, tau, v_th,
                      v_reset, t_ref, bridge):
    """:func:`_step_population` with white noise of intensity ``s2`` (V^2/s)."""
    spikes = 0
    refractory = 0
    events = 0
    inv_rate = 1.0 / total_rate if total_rate > 0.0 else 0.0
    dt = t1 - t0
    noise_variance = s2 * dt
    bridge_limit = _BRIDGE_NEGLIGIBLE_EXPONENT * noise_variance if bridge else 0.0
    for i in range(lo, hi):
        x = v[i]
        next_target = target[i]
        held_until = 0.0
        if x == REFRACTORY:
            held_until = ref_end[i]
            if held_until >= t1:
                refractory += 1
                continue
        elif next_target >= lam1:
            z, state = _normal(state)
            x_new = mu + (x - mu) * decay + spread * z
            d2 = v_th - x_new
            # far below threshold at both ends: a bridge crossing is negligible
            if d2 > 0.0 and 2.0 * (v_th - x) * d2 >= bridge_limit:
                v[i] = x_new
                continue
            t_cross, state = _crossing_check(x, x_new, noise_variance, dt, v_th, bridge,
                                             state)
            if t_cross < 0.0:
                v[i] = x_new
                continue
            spikes += 1
            held_until = t0 + t_cross + t_ref
            x = REFRACTORY
        x, held_until, next_target, n_spikes, n_events, state = _finish_step(
            x, t0, 1.0, held_until, next_target, state, k, t0, t1, lam0, lam1, total_rate,
            inv_rate, jump_weight, jump_rate, j_lo, j_hi, mu, s2, decay, tau, v_th, v_reset,
            t_ref, bridge)
        v[i] = x
        target[i] = next_target
        spikes += n_spikes
        events += n_events
        if x == REFRACTORY:
            ref_end[i] = held_until
            refractory += 1
    return spikes, refractory, events, state


@njit(cache=True)
def _histogram(v, lo, hi, lower, width, counts, row, col0, num_cells):
    """Add neurons ``lo:hi`` that are not refractory to ``counts[row, col0:col0+num_cells]``;
    returns how many lie below ``lower`` (not counted)."""
    below = 0
    for i in range(lo, hi):
        x = v[i]
        if x == REFRACTORY:
            continue
        position = (x - lower) / width
        # compared as a float: converting a huge negative one to int is undefined
        if position < 0.0:
            below += 1
            continue
        # x < v_th = upper face, but the division can round up to num_cells
        cell = min(int(position), num_cells - 1)
        counts[row, col0 + cell] += 1
    return below


@njit(cache=True)
def seed_state(seed_bits, target):
    """Draw every neuron's first event target (Exp(1) of intensity after ``Lambda = 0``)
    and return the generator state that :func:`simulate_lif` continues from.

    ``seed_bits`` (uint64) is the generator's initial state."""
    state = seed_bits
    for i in range(target.size):
        target[i], state = _exponential(state)
    return state


@njit(cache=True)
def simulate_lif(first_step, n_steps, dt, state, pop_offsets, tau_m, v_th, v_reset, e_l,
                 t_ref, jump_offsets, jump_weight, jump_rate, diffusion_mean,
                 diffusion_variance, bridge, v, target, ref_end, lam, record_steps,
                 grid_lower, grid_width, grid_offsets, spike_counts, refractory_counts,
                 event_counts, hist_counts, below_counts):
    """Simulate LIF populations for steps ``first_step .. first_step + n_steps - 1``.

    Steps are the outer loop and populations the inner one, so that later coupling can
    compute each population's input for step ``k`` from other populations' spikes of
    earlier steps. All rate tables are indexed by ``k - first_step``.

    Parameters
    ----------
    first_step, n_steps : int
        Global index of the first step and number of steps; step ``k`` is
        ``[k dt, (k + 1) dt)``.
    dt : float
        Step (s).
    state : uint64
        Generator state (from :func:`seed_state` or a previous call).
    pop_offsets : int64[n_pop + 1]
        Neurons of population ``p`` are ``pop_offsets[p]:pop_offsets[p + 1]``.
    tau_m, v_th, v_reset, e_l, t_ref : float64[n_pop]
        LIF parameters (s, V).
    jump_offsets : int64[n_pop + 1]
        Rows ``jump_offsets[p]:jump_offsets[p + 1]`` of the jump tables belong to ``p``.
    jump_weight : float64[n_jump]
        Jump of ``v`` per event (V).
    jump_rate : float64[n_jump, n_steps]
        Poisson event rate per neuron (Hz) in each step.
    diffusion_mean, diffusion_variance : float64[n_pop, n_steps]
        ``sum s h`` (V/s) and ``sum s h^2`` (V^2/s) of the diffusion connections.
    bridge : bool
        Apply the Brownian-bridge crossing correction to white noise.
    v, target, ref_end : float64[n_neurons]
        Neuron state, updated in place: potential (``inf`` while refractory), next event
        target in cumulative intensity, end of the refractory period (s).
    lam : float64[n_pop]
        Cumulative jump intensity at the first step's start, updated in place.
    record_steps : int64[n_record]
        Histogram the state at the start of step ``record_steps[r]`` (the value
        ``first_step + n_steps`` means the state after the last step).
    grid_lower, grid_width : float64[n_pop]
        Lower face and cell width of each population's grid.
    grid_offsets : int64[n_pop + 1]
        Columns of ``hist_counts`` per population.
    spike_counts, refractory_counts : int64[n_pop, n_steps]
        Output: spikes in each step, refractory neurons at each step's end.
    event_counts : int64[n_pop]
        Output, accumulated: input events delivered.
    hist_counts : int64[n_record, n_cells_total], below_counts : int64[n_record, n_pop]
        Output, accumulated: histogram counts and neurons below the grid.

    Returns
    -------
    uint64
        The generator state after the last step.
    """
    n_pop = pop_offsets.size - 1
    n_record = record_steps.size
    decay = np.empty(n_pop)
    for p in range(n_pop):
        decay[p] = math.exp(-dt / tau_m[p])
    for kk in range(n_steps + 1):
        k = first_step + kk
        for r in range(n_record):
            if record_steps[r] == k:
                for p in range(n_pop):
                    below_counts[r, p] += _histogram(
                        v, pop_offsets[p], pop_offsets[p + 1], grid_lower[p], grid_width[p],
                        hist_counts, r, grid_offsets[p], grid_offsets[p + 1] - grid_offsets[p])
        if kk == n_steps:
            break
        t0 = k * dt
        t1 = (k + 1) * dt
        for p in range(n_pop):
            j_lo = jump_offsets[p]
            j_hi = jump_offsets[p + 1]
            total_rate = 0.0
            for j in range(j_lo, j_hi):
                total_rate += jump_rate[j, kk]
            lam0 = lam[p]
            lam1 = lam0 + total_rate * dt
            mu = e_l[p] + tau_m[p] * diffusion_mean[p, kk]
            s2 = diffusion_variance[p, kk]
            spread = math.sqrt(0.5 * s2 * tau_m[p] * (1.0 - decay[p]) * (1.0 + decay[p]))
            n_spk, n_ref, n_ev, state = _step_population(
                v, target, ref_end, pop_offsets[p], pop_offsets[p + 1], kk, state, t0, t1,
                lam0, lam1, total_rate, jump_weight, jump_rate, j_lo, j_hi, mu, s2,
                decay[p], spread, tau_m[p], v_th[p], v_reset[p], t_ref[p], bridge)
            lam[p] = lam1
            spike_counts[p, kk] = n_spk
            refractory_counts[p, kk] = n_ref
            event_counts[p] += n_ev
    return state


# --- twins for tests -----------------------------------------------------------------------
@njit(cache=True)
def sample_normals(n, seed_bits):
    """``n`` standard normal variates from the kernels' ziggurat (for tests)."""
    out = np.empty(n)
    state = seed_bits
    for i in range(n):
        out[i], state = _normal(state)
    return out


@njit(cache=True)
def sample_exponentials(n, seed_bits):
    """``n`` Exp(1) variates from the kernels' ziggurat (for tests)."""
    out = np.empty(n)
    state = seed_bits
    for i in range(n):
        out[i], state = _exponential(state)
    return out


@njit(cache=True)
def sample_bridge_hitting_times(d1, d2, variance, duration, n, seed_bits):
    """``n`` draws of :func:`_bridge_hitting_time` (for tests)."""
    out = np.empty(n)
    state = seed_bits
    for i in range(n):
        out[i], state = _bridge_hitting_time(d1, d2, variance, duration, state)
    return out
