"""Compiled Monte Carlo kernels for networks of leaky integrate-and-fire neurons.

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

Networks. Populations drive each other in two ways. (1) Rate coupling: a connection's
Poisson rate in step ``k`` is ``n_syn`` times the pre population's measured rate,
delayed with the exact lag weights (:func:`_couple_rates`); the lag-0 part uses step
``k - 1``. (2) Spiking coupling (fixed in-degree): every spike goes through an out-going
adjacency in CSR form (neuron -> one segment per connection -> targets, per-synapse
delays) into ring buffers indexed by the arrival step, at the step boundary nearest to
``t_spike + delay`` (:func:`_deliver`); a neuron takes its buffered input at the start
of the step (:func:`_apply_inbox`), and a refractory neuron (``v = inf``) ignores it.
Within a step the populations are advanced one after the other; spikes only ever go to
later steps, so the order does not matter.

Two engines advance a population through a step: the exact event-driven one above, and
the step-resolution one :func:`_step_grid` (a Poisson count per input and neuron, all of a
step's input at its start, exact leak and refractory ends), 5-10x faster at the high
input rates of cortical network models. Its neuron loop is branch-free in the common
case: the Poisson counts are drawn in a loop of their own from the counter-based form of
the generator (a 4096-cell guide table answers all but ~0.2 % of draws without a
comparison), and refractory neurons carry ``v = -inf`` inside a run, which every input
and the leak leave at ``-inf``, while a linked list per step holds the neurons whose
refractory period ends in it.

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

from .typed import FALSE, INT0, INT1

__all__ = ["seed_state", "simulate_steps", "grid_release_lists", "end_grid_release",
           "draw_fixed_indegree", "fill_out_synapses",
           "sample_normals", "sample_exponentials", "sample_bridge_hitting_times",
           "sample_poisson_counts", "SPIKE_LIST_MARGIN"]

REFRACTORY = np.inf
"""Value of ``v`` while a neuron is refractory."""

GRID_REFRACTORY = -np.inf
"""Value of ``v`` of a refractory neuron inside a run of the step-resolution engine
(:func:`_step_grid`); :func:`end_grid_release` turns it back into ``REFRACTORY``."""

SPIKE_LIST_MARGIN = 1024
"""A population step returns to its caller while the spike list has this many free places;
a neuron firing more often than this within one step makes the run invalid."""

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
    (x, t, decay_since_t0, ref_end, target, spiked, at_event, state)
        With ``spiked`` the neuron fired at ``t`` and is now refractory until ``ref_end``
        (the caller records the spike and calls again); with ``at_event`` the state is just
        before the event at ``t`` (its jump is the caller's to apply, with the next
        target); otherwise it is the state at ``t1``.
    """
    while True:
        if x == REFRACTORY:
            if ref_end >= t1:
                return x, t1, decay_step, ref_end, target, False, False, state
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
                return x_new, t_next, decay_next, ref_end, target, False, at_event, state
            t_spike = t + t_cross
        return REFRACTORY, t_spike, decay_since_t0, t_spike + t_ref, target, True, False, state


@njit(cache=True, inline="always")
def _push_spike(neuron, time, spike_ids, spike_times, n_out):
    """Append a spike to the step's spike list; the count grows past the capacity so that
    the caller can detect an overflow."""
    if n_out < spike_ids.size:
        spike_ids[n_out] = neuron
        spike_times[n_out] = time
    return n_out + 1


@njit(cache=True, inline="always")
def _finish_step(x, t, decay_since_t0, held_until, next_target, state, k, t0, t1, lam0,
                 lam1, total_rate, inv_rate, jump_scale, jump_shift, jump_rate, j_lo, j_hi,
                 mu, s2, decay, tau, v_th, v_reset, t_ref, bridge, neuron, spike_ids,
                 spike_times, n_out):
    """Take one neuron from ``(x, t)`` to the step end, applying every input event.

    An event of connection ``j`` maps ``v`` to ``jump_scale[j] * v + jump_shift[j]``
    (``1, h`` for a current synapse, ``1 - w, w E`` for a conductance one). Each spike is
    appended to ``spike_ids``/``spike_times``. Inlined into the population loops (numba
    IR) so that the arrays never cross a call. Returns (v, ref_end, target, spikes,
    events, n_out, state) at ``t1``."""
    spikes = 0
    events = 0
    while True:
        x, t, decay_since_t0, held_until, next_target, spiked, at_event, state = \
            _advance_to_event(x, t, decay_since_t0, held_until, next_target, state, t0, t1,
                              lam0, lam1, total_rate, inv_rate, mu, s2, decay, tau, v_th,
                              v_reset, t_ref, bridge)
        if spiked:
            spikes += 1
            n_out = _push_spike(neuron, t, spike_ids, spike_times, n_out)
            continue
        if not at_event:
            return x, held_until, next_target, spikes, events, n_out, state
        events += 1
        j, state = _choose_connection(jump_rate, k, j_lo, j_hi, total_rate, state)
        x = jump_scale[j] * x + jump_shift[j]
        e, state = _exponential(state)
        next_target += e


@njit(cache=True)
def _step_population(v, target, ref_end, lo, hi, k, state, t0, t1, lam0, lam1, total_rate,
                     jump_scale, jump_shift, jump_rate, j_lo, j_hi, mu, s2, decay, spread,
                     tau, v_th, v_reset, t_ref, bridge, spike_ids, spike_times, n_out):
    """Advance neurons ``lo:hi`` of one population through step ``[t0, t1)``.

    ``decay = exp(-(t1 - t0) / tau)``; ``spread`` is the Ornstein-Uhlenbeck standard
    deviation over the step. A neuron may start the step at or above threshold (input
    delivered at ``t0`` by the spiking network): it fires at ``t0``. Spikes are appended
    to ``spike_ids``/``spike_times`` from position ``n_out``; when fewer than
    ``SPIKE_LIST_MARGIN`` places are left the function returns at a neuron boundary.

    Returns (spikes, refractory neurons at t1, input events, n_out, next neuron, state):
    neurons ``lo:next`` were advanced; the caller empties the list and continues."""
    if s2 == 0.0:
        return _step_deterministic(v, target, ref_end, lo, hi, k, state, t0, t1, lam0, lam1,
                                   total_rate, jump_scale, jump_shift, jump_rate, j_lo, j_hi,
                                   mu, decay, tau, v_th, v_reset, t_ref, spike_ids,
                                   spike_times, n_out)
    return _step_white_noise(v, target, ref_end, lo, hi, k, state, t0, t1, lam0, lam1,
                             total_rate, jump_scale, jump_shift, jump_rate, j_lo, j_hi, mu,
                             s2, decay, spread, tau, v_th, v_reset, t_ref, bridge, spike_ids,
                             spike_times, n_out)


@njit(cache=True)
def _step_deterministic(v, target, ref_end, lo, hi, k, state, t0, t1, lam0, lam1,
                        total_rate, jump_scale, jump_shift, jump_rate, j_lo, j_hi, mu, decay,
                        tau, v_th, v_reset, t_ref, spike_ids, spike_times, n_out):
    """:func:`_step_population` without white noise: between events ``v`` relaxes
    deterministically toward ``mu``."""
    spikes = 0
    refractory = 0
    events = 0
    inv_rate = 1.0 / total_rate if total_rate > 0.0 else 0.0
    inv_rate_tau = inv_rate / tau
    list_limit = spike_ids.size - SPIKE_LIST_MARGIN
    for i in range(lo, hi):
        if n_out > list_limit:
            return spikes, refractory, events, n_out, i, state
        x = v[i]
        next_target = target[i]
        x_new = mu + (x - mu) * decay
        # v = inf (refractory) fails the first test
        if x < v_th and x_new < v_th and next_target >= lam1:
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
        elif x < v_th and next_target < lam1:
            # The usual reason to be here: one event and no spike in the step. Straight-line
            # code for it shortens the dependency chain through the event (about half the
            # cost of the general loop); any other outcome continues in that loop from the
            # state reached, so no random number is drawn twice.
            event_target = next_target
            decay_to_event = math.exp(-(event_target - lam0) * inv_rate_tau)
            x_before = mu + (x - mu) * decay_to_event
            if x_before < v_th:
                j, state = _choose_connection(jump_rate, k, j_lo, j_hi, total_rate, state)
                x = jump_scale[j] * x_before + jump_shift[j]
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
        x, held_until, next_target, n_spikes, n_events, n_out, state = _finish_step(
            x, t, decay_since_t0, held_until, next_target, state, k, t0, t1, lam0, lam1,
            total_rate, inv_rate, jump_scale, jump_shift, jump_rate, j_lo, j_hi, mu, 0.0,
            decay, tau, v_th, v_reset, t_ref, False, i, spike_ids, spike_times, n_out)
        v[i] = x
        target[i] = next_target
        spikes += n_spikes
        events += n_events
        if x == REFRACTORY:
            ref_end[i] = held_until
            refractory += 1
    return spikes, refractory, events, n_out, hi, state


@njit(cache=True)
def _step_white_noise(v, target, ref_end, lo, hi, k, state, t0, t1, lam0, lam1, total_rate,
                      jump_scale, jump_shift, jump_rate, j_lo, j_hi, mu, s2, decay, spread,
                      tau, v_th, v_reset, t_ref, bridge, spike_ids, spike_times, n_out):
    """:func:`_step_population` with white noise of intensity ``s2`` (V^2/s)."""
    spikes = 0
    refractory = 0
    events = 0
    inv_rate = 1.0 / total_rate if total_rate > 0.0 else 0.0
    dt = t1 - t0
    noise_variance = s2 * dt
    bridge_limit = _BRIDGE_NEGLIGIBLE_EXPONENT * noise_variance if bridge else 0.0
    list_limit = spike_ids.size - SPIKE_LIST_MARGIN
    for i in range(lo, hi):
        if n_out > list_limit:
            return spikes, refractory, events, n_out, i, state
        x = v[i]
        next_target = target[i]
        held_until = 0.0
        if x == REFRACTORY:
            held_until = ref_end[i]
            if held_until >= t1:
                refractory += 1
                continue
        elif x < v_th and next_target >= lam1:
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
            n_out = _push_spike(i, t0 + t_cross, spike_ids, spike_times, n_out)
            held_until = t0 + t_cross + t_ref
            x = REFRACTORY
        x, held_until, next_target, n_spikes, n_events, n_out, state = _finish_step(
            x, t0, 1.0, held_until, next_target, state, k, t0, t1, lam0, lam1, total_rate,
            inv_rate, jump_scale, jump_shift, jump_rate, j_lo, j_hi, mu, s2, decay, tau,
            v_th, v_reset, t_ref, bridge, i, spike_ids, spike_times, n_out)
        v[i] = x
        target[i] = next_target
        spikes += n_spikes
        events += n_events
        if x == REFRACTORY:
            ref_end[i] = held_until
            refractory += 1
    return spikes, refractory, events, n_out, hi, state


@njit(cache=True)
def _histogram(v, lo, hi, lower, width, counts, row, col0, num_cells):
    """Add neurons ``lo:hi`` that are not refractory to ``counts[row, col0:col0+num_cells]``;
    returns how many lie below ``lower`` (not counted)."""
    below = 0
    for i in range(lo, hi):
        x = v[i]
        if x == REFRACTORY or x == GRID_REFRACTORY:
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
    and return the generator state that :func:`simulate_steps` continues from.

    ``seed_bits`` (uint64) is the generator's initial state."""
    state = seed_bits
    for i in range(target.size):
        target[i], state = _exponential(state)
    return state


# --- step-resolution ("grid") engine ---------------------------------------------------------
POISSON_TABLE = 64
"""Entries of the per-step Poisson cumulative tables of the grid engine; counts beyond the
table continue the recursion exactly (slower, only for more than ~40 events per step)."""
POISSON_GUIDE = 4096
"""Cells of the guide table that starts each Poisson inversion at its result."""
_GUIDE_SHIFT = np.uint64(52)  # the top log2(POISSON_GUIDE) bits select the guide cell
_GUIDE_CELL = np.uint64(1) << _GUIDE_SHIFT
_GUIDE_MIXED = np.uint8(0x80)  # flag of a cell that holds a table entry: compare there
_GUIDE_COUNT = np.uint8(0x7F)
_TWO_POW_64 = 2.0**64
_U64_MAX = np.uint64(0xFFFFFFFFFFFFFFFF)


@njit(cache=True)
def _poisson_tables(jump_rate, k, dt, j_lo, j_hi, cdf, cdf_bits, guide, expected, last_pmf):
    """Cumulative Poisson probabilities of each jump row's event count in step ``k``
    (mean ``expected[j] = rate dt``), as doubles (``cdf``) and as 64-bit thresholds
    (``cdf_bits = floor(cdf 2^64)``), and their guide table for :func:`_poisson_count`:
    ``guide[j, m]`` (uint8) is the count of the cell's lowest bits ``m 2^64 / G``, plus
    the flag ``_GUIDE_MIXED`` when a threshold lies inside the cell (so that the count
    varies across it). With G = 4096 cells, a draw lands in a mixed cell with
    probability below (table entries) / G. A row whose rate did not change keeps its
    tables."""
    width = cdf.shape[1]
    n_guide = guide.shape[1]
    for j in range(j_lo, j_hi):
        lam = jump_rate[j, k] * dt
        if lam == expected[j]:
            continue
        expected[j] = lam
        p = math.exp(-lam)
        total = p
        for n in range(width):
            if n > 0:
                p *= lam / n
                total += p
            cdf[j, n] = total
            scaled = total * _TWO_POW_64
            cdf_bits[j, n] = np.uint64(scaled) if scaled < _TWO_POW_64 else _U64_MAX
        last_pmf[j] = p
        n = 0
        for m in range(n_guide):
            cell_low = np.uint64(m) << _GUIDE_SHIFT
            while n < width - 1 and cdf_bits[j, n] <= cell_low:
                n += 1
            cell_high = cell_low + (_GUIDE_CELL - np.uint64(1))
            mixed = cdf_bits[j, n] <= cell_high  # includes "beyond the table"
            guide[j, m] = np.uint8(n) | _GUIDE_MIXED if mixed else np.uint8(n)


@njit(cache=True, inline="always")
def _poisson_count(bits, bits_row, guide_row):
    """Smallest ``n`` with ``bits < floor(P(N <= n) 2^64)``: a Poisson count by inversion
    of 64 random ``bits`` against one row of the tables of :func:`_poisson_tables`: the
    guide cell's count, compared with the table only in a mixed cell. ``bits_row.size``
    means "beyond the table": finish with :func:`_poisson_tail`."""
    cell = guide_row[bits >> _GUIDE_SHIFT]
    n = np.int64(cell & _GUIDE_COUNT)
    if cell & _GUIDE_MIXED:
        width = bits_row.size
        while n < width and bits >= bits_row[n]:
            n += 1
    return n


@njit(cache=True, inline="always")
def _splitmix_at(state, i):
    """The bits :func:`_next_u64` returns on its ``i``-th call (from 1) from ``state``: the
    generator is counter-based, so a loop can draw them in any order (and vectorise)."""
    z = state + np.uint64(i) * _GOLDEN_GAMMA
    z = (z ^ (z >> _U30)) * _MIX_1
    z = (z ^ (z >> _U27)) * _MIX_2
    return z ^ (z >> _U31)


# Not inlined: inlined, this rarely used loop made the common inversion ten times slower.
@njit(cache=True)
def _poisson_tail(bits, cdf_row, lam, last_pmf):
    """A Poisson(``lam``) count beyond the table (the pmf recursion in doubles from the
    table's last entry, whose pmf is ``last_pmf``); stops if the pmf underflows."""
    u = (bits >> _U11) * _TWO_POW_M53
    n = cdf_row.size - 1
    total = cdf_row[n]
    p = last_pmf
    while u >= total and p > 0.0:
        n += 1
        p *= lam / n
        total += p
    return n


@njit(cache=True)
def _draw_current_input(drive, n_neurons, state, j_lo, j_hi, cdf, cdf_bits, guide, expected,
                        last_pmf, jump_scale, jump_shift, cells):
    """``drive[i] = sum_j n_ij h_j`` for ``n_neurons`` neurons: Poisson counts ``n_ij`` of
    the current-synapse jump rows ``j_lo:j_hi`` in one step (grid engine), the same
    numbers as :func:`_poisson_count` on consecutive :func:`_next_u64` draws.

    Loops of their own, free of the neurons' branches, run several times faster than
    drawing inside the neuron update: the first pass looks every neuron's guide cell up
    (branch-free; ``cells`` is uint8 scratch), the second turns counts into jumps, and only
    the rare draws in mixed cells are finished against the table. Returns (whether any
    row contributed, events drawn, state)."""
    filled = False
    events = 0
    for j in range(j_lo, j_hi):
        lam = expected[j]
        if jump_scale[j] != 1.0 or lam <= 0.0:
            continue
        bits_row = cdf_bits[j]
        guide_row = guide[j]
        weight = jump_shift[j]
        seen = np.uint8(0)
        for i in range(n_neurons):
            cell = guide_row[_splitmix_at(state, i + 1) >> _GUIDE_SHIFT]
            cells[i] = cell
            seen |= cell
        row_events = 0
        for i in range(n_neurons):
            n = np.int64(cells[i] & _GUIDE_COUNT)
            row_events += n
            if filled:
                drive[i] += n * weight
            else:
                drive[i] = n * weight
        if seen & _GUIDE_MIXED:
            for i in range(n_neurons):
                if cells[i] & _GUIDE_MIXED:
                    bits = _splitmix_at(state, i + 1)
                    n = _poisson_count(bits, bits_row, guide_row)
                    if n == bits_row.size:
                        n = _poisson_tail(bits, cdf[j], lam, last_pmf[j])
                    extra = n - np.int64(cells[i] & _GUIDE_COUNT)
                    row_events += extra
                    if filled:
                        drive[i] += extra * weight
                    else:
                        drive[i] = n * weight
        events += row_events
        state = state + np.uint64(n_neurons) * _GOLDEN_GAMMA
        filled = True
    return filled, events, state


# Not inlined (nor the next two): rarely used code inlined into the neuron loop of
# _step_grid slowed its common case down.
@njit(cache=True)
def _conductance_events(x, state, j_lo, j_hi, cdf, cdf_bits, guide, expected, last_pmf,
                        jump_scale, jump_shift):
    """Apply a Poisson count of events of each conductance jump row to ``v = x``.
    Returns (x, events, state)."""
    events = 0
    for j in range(j_lo, j_hi):
        if jump_scale[j] != 1.0 and expected[j] > 0.0:
            bits, state = _next_u64(state)
            n = _poisson_count(bits, cdf_bits[j], guide[j])
            if n == cdf_bits.shape[1]:
                n = _poisson_tail(bits, cdf[j], expected[j], last_pmf[j])
            events += n
            for _ in range(n):
                x = jump_scale[j] * x + jump_shift[j]
    return x, events, state


@njit(cache=True)
def _conductance_inbox(x, i, inbox, slot, ring_length, channel_reversal):
    """Apply and clear neuron ``i``'s conductance channels of the ring buffer slot."""
    for c in range(1, channel_reversal.size):
        log_factor = inbox[c * ring_length + slot, i]
        if log_factor != 0.0:
            inbox[c * ring_length + slot, i] = 0.0
            x = channel_reversal[c] + (x - channel_reversal[c]) * math.exp(log_factor)
    return x


# Spikes and releases are rare, and their code inlined into the neuron loop
# slowed the common case down.
@njit(cache=True)
def _grid_fire(i, x, t, t1, mu, tau, v_th, v_reset, t_ref, spike_ids, spike_times, n_out):
    """Take neuron ``i`` from ``v = x`` at ``t`` (possibly at or above threshold) to
    ``t1`` with exact relaxation toward ``mu``, spikes at ``t`` or at exact crossing
    times, and refractory periods. Returns (v at t1 or REFRACTORY, refractory end,
    spikes, n_out)."""
    spikes = 0
    while True:
        if x >= v_th:
            t_spike = t
        else:
            x_end = mu + (x - mu) * math.exp(-(t1 - t) / tau)
            if x_end < v_th:
                return x_end, 0.0, spikes, n_out
            # relaxation is monotone: mu > v_th here
            s = tau * math.log((mu - x) / (mu - v_th))
            t_spike = min(t + max(s, 0.0), t1)
        spikes += 1
        n_out = _push_spike(i, t_spike, spike_ids, spike_times, n_out)
        held_until = t_spike + t_ref
        if held_until >= t1:
            return REFRACTORY, held_until, spikes, n_out
        t = held_until
        x = v_reset


@njit(cache=True)
def _release_step(held_until, dt, first):
    """The step in which a refractory period ending at ``held_until`` ends: the smallest
    ``k >= first`` with ``held_until < (k + 1) dt`` (the engine's own test)."""
    k = max(int(held_until / dt), first)
    while (k + 1) * dt <= held_until:
        k += 1
    while k > first and k * dt > held_until:
        k -= 1
    return k


@njit(cache=True)
def _schedule_release(i, held_until, dt, first, next_released, release_head, p):
    """File neuron ``i`` (refractory until ``held_until``, at least until step ``first``)
    in the release list of its release step: a singly linked list through
    ``next_released``, one head per population and step slot."""
    slot = _release_step(held_until, dt, first) % release_head.shape[1]
    next_released[i] = release_head[p, slot]
    release_head[p, slot] = i


@njit(cache=True)
def _fire_and_schedule(i, x, t, k, dt, mu, tau, v_th, v_reset, t_ref, v, ref_end,
                       next_released, release_head, p, spike_ids, spike_times, n_out):
    """:func:`_grid_fire` for neuron ``i`` in step ``k``, storing the result: a neuron
    still refractory at the step's end gets ``v = GRID_REFRACTORY`` and a place in its
    release list. Returns (spikes, still refractory?, n_out)."""
    t1 = (k + 1) * dt
    x, held_until, n_spikes, n_out = _grid_fire(i, x, t, t1, mu, tau, v_th, v_reset, t_ref,
                                                spike_ids, spike_times, n_out)
    if x == REFRACTORY:
        v[i] = GRID_REFRACTORY
        ref_end[i] = held_until
        _schedule_release(i, held_until, dt, k + 1, next_released, release_head, p)
        return n_spikes, True, n_out
    v[i] = x
    return n_spikes, False, n_out


@njit(cache=True, inline="always")
def _grid_neurons(v, ref_end, lo, hi, k, dt, mu, decay, tau, v_th, v_reset, t_ref, inbox,
                  slot, ring_length, channel_reversal, drive, drive_first, state, rows,
                  next_released, release_head, p, spike_ids, spike_times, n_out,
                  with_drive, with_inbox, with_conductance):
    """The neuron loop of :func:`_step_grid`. Inlined with constant ``with_*`` flags, each
    combination compiles to a loop of its own (LLVM does not hoist such tests out of the
    loop): the common current-synapse cases are tight loops without calls;
    ``with_conductance`` adds the conductance channels of the ring buffers and the
    conductance rows' Poisson events (``rows``: the jump-row range and Poisson tables as
    one tuple, keeping the call under CPython's 30 positional arguments, beyond which it
    is compiled as a ``*args`` call that numba cannot inline). Returns (spikes,
    refractory change, input events, n_out, next neuron, state); the next neuron is
    ``hi`` unless the spike list filled."""
    spikes = 0
    refractory_change = 0
    events = 0
    list_limit = spike_ids.size - SPIKE_LIST_MARGIN
    additive = inbox[slot]
    t0 = k * dt
    for i in range(lo, hi):
        if n_out > list_limit:
            return spikes, refractory_change, events, n_out, i, state
        x = v[i]
        if with_drive:
            x += drive[i - drive_first]
        if with_inbox:
            x += additive[i]
            additive[i] = 0.0
            if with_conductance and channel_reversal.size > 1:
                x = _conductance_inbox(x, i, inbox, slot, ring_length, channel_reversal)
        if with_conductance and x != GRID_REFRACTORY:
            x, n, state = _conductance_events(x, state, *rows)
            events += n
        x_end = mu + (x - mu) * decay
        if max(x, x_end) < v_th:  # refractory neurons (-inf) included
            v[i] = x_end
            continue
        n_spikes, held, n_out = _fire_and_schedule(
            i, x, t0, k, dt, mu, tau, v_th, v_reset, t_ref, v, ref_end, next_released,
            release_head, p, spike_ids, spike_times, n_out)
        spikes += n_spikes
        refractory_change += held
    return spikes, refractory_change, events, n_out, hi, state


@njit(cache=True)
def _step_grid(v, ref_end, lo, hi, state, k, dt, mu, decay, tau, v_th, v_reset, t_ref,
               receives, inbox, slot, ring_length, channel_reversal, drive, drive_first,
               has_drive, j_lo, j_hi, conductance_rows, cdf, cdf_bits, guide, expected,
               last_pmf, jump_scale, jump_shift, next_released, release_head, p, spike_ids,
               spike_times, n_out):
    """Advance neurons ``lo:hi`` of population ``p`` through step ``k``, ``[k dt,
    (k + 1) dt)``, on the time grid (NEST-like); then release those whose refractory
    period ends in the step.

    At ``t0 = k dt`` a neuron takes all its input of the step at once: the spikes its
    ring buffers hold for the step (when ``receives``), the current jumps
    ``drive[i - drive_first]`` drawn by :func:`_draw_current_input` (when ``has_drive``)
    and, when ``conductance_rows``, a Poisson count of events of each conductance row
    (exact count distribution, drawn by inversion), each mapping ``v`` to
    ``jump_scale * v + jump_shift``. At or above threshold it fires at ``t0``; otherwise
    it relaxes exactly toward ``mu`` and fires at the exact crossing time if ``mu > v_th``.

    A refractory neuron holds ``v = GRID_REFRACTORY = -inf``, which every input and the
    relaxation leave at ``-inf`` (it ignores the step's input) and which takes the common,
    branch-free path below threshold: the loop over neurons never tests for refractoriness
    (a test that is true for a random ~7 % of neurons costs more than the rest of the
    update). Instead each refractory neuron sits in the linked release list of the step in
    which its (exact) refractory period ends; after the loop that list's neurons restart
    from ``v_reset`` at their release time and relax to ``t1`` (and may fire again).

    Returns (spikes, refractory change, input events, n_out, next neuron, finished,
    state): when the spike list is nearly full the call returns early; call again with
    ``lo = next neuron`` (``hi`` once the neuron loop is done and only releases are left)
    until ``finished``."""
    # (numba inlines only calls with explicit arguments, hence five spelled-out calls)
    rows = (j_lo, j_hi, cdf, cdf_bits, guide, expected, last_pmf, jump_scale, jump_shift)
    if conductance_rows or channel_reversal.size > 1:
        out = _grid_neurons(
            v, ref_end, lo, hi, k, dt, mu, decay, tau, v_th, v_reset, t_ref, inbox, slot,
            ring_length, channel_reversal, drive, drive_first, state, rows, next_released,
            release_head, p, spike_ids, spike_times, n_out, has_drive, receives, True)
    elif has_drive and receives:
        out = _grid_neurons(
            v, ref_end, lo, hi, k, dt, mu, decay, tau, v_th, v_reset, t_ref, inbox, slot,
            ring_length, channel_reversal, drive, drive_first, state, rows, next_released,
            release_head, p, spike_ids, spike_times, n_out, True, True, False)
    elif has_drive:
        out = _grid_neurons(
            v, ref_end, lo, hi, k, dt, mu, decay, tau, v_th, v_reset, t_ref, inbox, slot,
            ring_length, channel_reversal, drive, drive_first, state, rows, next_released,
            release_head, p, spike_ids, spike_times, n_out, True, False, False)
    elif receives:
        out = _grid_neurons(
            v, ref_end, lo, hi, k, dt, mu, decay, tau, v_th, v_reset, t_ref, inbox, slot,
            ring_length, channel_reversal, drive, drive_first, state, rows, next_released,
            release_head, p, spike_ids, spike_times, n_out, False, True, False)
    else:
        out = _grid_neurons(
            v, ref_end, lo, hi, k, dt, mu, decay, tau, v_th, v_reset, t_ref, inbox, slot,
            ring_length, channel_reversal, drive, drive_first, state, rows, next_released,
            release_head, p, spike_ids, spike_times, n_out, False, False, False)
    spikes, refractory_change, events, n_out, lo, state = out
    list_limit = spike_ids.size - SPIKE_LIST_MARGIN
    if lo < hi:
        return spikes, refractory_change, events, n_out, lo, False, state
    # releases: the list is consumed from its head, so an early return resumes it
    release_slot = k % release_head.shape[1]
    i = release_head[p, release_slot]
    while i >= 0:
        if n_out > list_limit:
            return spikes, refractory_change, events, n_out, hi, False, state
        release_head[p, release_slot] = next_released[i]
        n_spikes, held, n_out = _fire_and_schedule(
            i, v_reset, ref_end[i], k, dt, mu, tau, v_th, v_reset, t_ref, v, ref_end,
            next_released, release_head, p, spike_ids, spike_times, n_out)
        spikes += n_spikes
        refractory_change += held - 1
        i = release_head[p, release_slot]
    return spikes, refractory_change, events, n_out, hi, True, state


# --- the spiking network -------------------------------------------------------------------
@njit(cache=True)
def draw_fixed_indegree(n_post, n_syn, n_pre, seed_bits):
    """Presynaptic partners of ``n_post`` neurons, ``n_syn`` each, drawn without replacement
    from ``0 .. n_pre - 1`` (``n_syn <= n_pre``).

    Returns int32[n_post * n_syn]: entries ``i * n_syn .. (i + 1) * n_syn - 1`` are the
    partners of post neuron ``i``. Each row is the head of a partial Fisher-Yates shuffle of
    a permutation kept between rows, which makes every row an independent uniform
    ``n_syn``-subset. Indices come from 53-bit uniforms, so their bias is below
    ``n_pre * 2**-53``."""
    partners = np.empty(n_post * n_syn, dtype=np.int32)
    perm = np.arange(n_pre)
    state = seed_bits
    for i in range(n_post):
        base = i * n_syn
        for j in range(n_syn):
            u, state = _uniform(state)
            r = j + min(int(u * (n_pre - j)), n_pre - j - 1)
            chosen = perm[r]
            perm[r] = perm[j]
            perm[j] = chosen
            partners[base + j] = chosen
    return partners


@njit(cache=True)
def fill_out_synapses(partners, n_syn, post_first, cursor, delay_steps, syn_target,
                      syn_delay):
    """Scatter one connection's synapses into the out-going adjacency (CSR).

    ``partners`` from :func:`draw_fixed_indegree`; synapse ``q`` goes from pre neuron
    ``partners[q]`` to global neuron ``post_first + q // n_syn``. ``cursor[a]`` is the next
    free place in pre neuron ``a``'s segment and advances. Synapses of one pre neuron stay
    in increasing post order, which keeps delivery's writes moving forward in memory.
    ``delay_steps`` (one per synapse, in steps) is copied to ``syn_delay`` unless empty."""
    with_delays = delay_steps.size > 0
    for q in range(partners.size):
        a = partners[q]
        pos = cursor[a]
        cursor[a] = pos + 1
        syn_target[pos] = post_first + q // n_syn
        if with_delays:
            syn_delay[pos] = delay_steps[q]


@njit(cache=True)
def _deliver(spike_ids, spike_times, n_spikes, k, dt, out_offsets, seg_conn, seg_offsets,
             syn_target, syn_delay, conn_fixed, conn_delay_steps, conn_channel, conn_value,
             inbox, ring_length, delivered):
    """Add the spikes of one population step to the ring buffers of their targets.

    A spike at time ``t`` through a synapse with delay ``d`` arrives at ``t + d``; it is
    delivered at the step boundary nearest to that time (``round((t + d) / dt)``, so the
    timing error is at most ``dt / 2`` and zero on average), and at the earliest at the
    next boundary ``k + 1``. Row ``channel * ring_length + step % ring_length`` of
    ``inbox`` collects ``conn_value`` per event (the weight for current synapses,
    ``log(1 - w)`` for conductance ones)."""
    slot_now = k % ring_length
    for s in range(n_spikes):
        g = spike_ids[s]
        time_in_steps = spike_times[s] / dt
        for seg in range(out_offsets[g], out_offsets[g + 1]):
            c = seg_conn[seg]
            lo = seg_offsets[seg]
            hi = seg_offsets[seg + 1]
            delivered[c] += hi - lo
            value = conn_value[c]
            base = conn_channel[c] * ring_length
            if conn_fixed[c]:
                ahead = np.int64(math.floor(time_in_steps + conn_delay_steps[c] + 0.5)) - k
                ahead = max(ahead, 1)
                slot = slot_now + ahead
                if slot >= ring_length:
                    slot -= ring_length
                row = inbox[base + slot]
                for q in range(lo, hi):
                    row[syn_target[q]] += value
            else:
                for q in range(lo, hi):
                    ahead = np.int64(math.floor(time_in_steps + syn_delay[q] + 0.5)) - k
                    ahead = max(ahead, 1)
                    slot = slot_now + ahead
                    if slot >= ring_length:
                        slot -= ring_length
                    inbox[base + slot, syn_target[q]] += value


@njit(cache=True)
def _apply_inbox(v, lo, hi, inbox, slot, ring_length, channel_reversal):
    """Apply and clear the input that the ring buffers hold for step ``slot`` to neurons
    ``lo:hi``: channel 0 adds its sum of weights; conductance channel ``c`` (reversal
    ``E``) maps ``v`` to ``E + (v - E) exp(sum log(1 - w))``, the composition of its
    events. A refractory neuron (``v = inf``) stays at ``inf``: it ignores the input."""
    additive = inbox[slot]
    for i in range(lo, hi):
        v[i] += additive[i]
        additive[i] = 0.0
    for c in range(1, channel_reversal.size):
        row = inbox[c * ring_length + slot]
        reversal = channel_reversal[c]
        for i in range(lo, hi):
            log_factor = row[i]
            if log_factor != 0.0:
                v[i] = reversal + (v[i] - reversal) * math.exp(log_factor)
                row[i] = 0.0


@njit(cache=True)
def _couple_rates(k, dt, pop_offsets, spike_counts, rc_pre, rc_n_syn, rc_lag_offsets,
                  rc_lags, rc_jump_row, rc_post, rc_weight, jump_rate, diffusion_mean,
                  diffusion_variance):
    """Fill step ``k`` of the rate tables of the connections driven by a population's
    measured rate: ``n_syn * sum_l w_l r_pre[k - l]`` with the delay's explicit lag
    weights ``w_l`` (``w_0 = 0``: ``r_pre[k]`` is not known yet; see
    ``Delay.explicit_lag_weights``); before the run the rate is 0."""
    for c in range(rc_pre.size):
        pre = rc_pre[c]
        first = rc_lag_offsets[c]
        acc = 0.0
        for m in range(first, rc_lag_offsets[c + 1]):
            kl = k - (m - first)
            if kl >= 0:
                acc += rc_lags[m] * spike_counts[pre, kl]
        rate = rc_n_syn[c] * acc / ((pop_offsets[pre + 1] - pop_offsets[pre]) * dt)
        row = rc_jump_row[c]
        if row >= 0:
            jump_rate[row, k] = rate
        else:
            post = rc_post[c]
            diffusion_mean[post, k] += rate * rc_weight[c]
            diffusion_variance[post, k] += rate * rc_weight[c] ** 2


@njit(cache=True, inline="always")
def _record_histograms(k, record_steps, v, pop_offsets, grid_lower, grid_width, grid_offsets,
                       hist_counts, below_counts):
    """Histogram every population for the records due at the start of step ``k``."""
    for r in range(record_steps.size):
        if record_steps[r] == k:
            for p in range(pop_offsets.size - 1):
                below_counts[r, p] += _histogram(
                    v, pop_offsets[p], pop_offsets[p + 1], grid_lower[p], grid_width[p],
                    hist_counts, r, grid_offsets[p], grid_offsets[p + 1] - grid_offsets[p])


@njit(cache=True, inline="always")
def _record_spike_list(last, n_out, spike_ids, spike_times, record_times, record_ids,
                       n_recorded):
    """Append the spikes of neurons below ``last`` in the spike list to the record;
    return its new length and whether it had room for all of them."""
    for s in range(n_out):
        if spike_ids[s] < last:
            if n_recorded >= record_times.size:
                return n_recorded, False
            record_times[n_recorded] = spike_times[s]
            record_ids[n_recorded] = spike_ids[s]
            n_recorded += 1
    return n_recorded, True


@njit(cache=True)
def _grid_scratch(pop_offsets, on_grid, n_jump):
    """The step-resolution engine's Poisson tables (one row per jump input, none made
    yet) and its per-neuron drive and cell scratch for the largest grid population."""
    cdf = np.empty((n_jump, POISSON_TABLE))
    cdf_bits = np.empty((n_jump, POISSON_TABLE), dtype=np.uint64)
    guide = np.zeros((n_jump, POISSON_GUIDE), dtype=np.uint8)
    expected = np.full(n_jump, -1.0)  # no tables yet
    last_pmf = np.zeros(n_jump)
    largest = 0
    for p in range(pop_offsets.size - 1):
        if on_grid[p]:
            largest = max(largest, pop_offsets[p + 1] - pop_offsets[p])
    return (cdf, cdf_bits, guide, expected, last_pmf, np.empty(largest),
            np.empty(largest, dtype=np.uint8))


@njit(cache=True, inline="always")
def _grid_input(jump_rate, k, dt, j_lo, j_hi, cdf, cdf_bits, guide, expected, last_pmf,
                drive, n_neurons, state, jump_scale, jump_shift, cells):
    """Draw a grid-engine population's Poisson input of step ``k`` (current inputs summed
    into ``drive``); return ``(whether any, events drawn, generator state, whether a
    conductance input must be applied event by event)``."""
    _poisson_tables(jump_rate, k, dt, j_lo, j_hi, cdf, cdf_bits, guide, expected, last_pmf)
    has_drive, n_ev, state = _draw_current_input(
        drive, n_neurons, state, j_lo, j_hi, cdf, cdf_bits, guide, expected, last_pmf,
        jump_scale, jump_shift, cells)
    conductance_rows = False
    for j in range(j_lo, j_hi):
        if jump_scale[j] != 1.0:
            conductance_rows = True
    return has_drive, n_ev, state, conductance_rows


@njit(cache=True)
def simulate_steps(first_step, n_steps, dt, state, pop_offsets, tau_m, v_th, v_reset, e_l,
                   t_ref, jump_offsets, jump_scale, jump_shift, jump_rate, diffusion_mean,
                   diffusion_variance, bridge, v, target, ref_end, lam, rc_pre, rc_n_syn,
                   rc_lag_offsets, rc_lags, rc_jump_row, rc_post, rc_weight, out_offsets,
                   seg_conn, seg_offsets, syn_target, syn_delay, conn_fixed,
                   conn_delay_steps, conn_channel, conn_value, channel_reversal,
                   receives_spikes, inbox, delivered, record_steps, grid_lower, grid_width,
                   grid_offsets, spike_counts, refractory_counts, event_counts, hist_counts,
                   below_counts, record_limit, record_margin, record_times, record_ids,
                   n_recorded, spike_ids, spike_times, on_grid, next_released, release_head,
                   n_refractory):
    """Simulate LIF populations, possibly coupled, for steps ``first_step .. n_steps - 1``.

    Steps are the outer loop and populations the inner one. In step ``k`` each population

    1. gets the rates of its rate-coupled connections (Poisson events at
       ``n_syn * r_pre`` delayed; :func:`_couple_rates`);
    2. takes the spikes that its ring buffers hold for step ``k`` at ``t_k``
       (:func:`_apply_inbox`);
    3. is advanced through ``[t_k, t_{k+1})`` with exactly timed Poisson events
       (:func:`_step_population`), its spikes collected in ``spike_ids/spike_times``;
    4. sends those spikes through the out-going adjacency (:func:`_deliver`) and records
       those of its first ``record_limit[p]`` neurons.

    Parameters
    ----------
    first_step, n_steps : int
        Steps ``first_step .. n_steps - 1`` are simulated; step ``k`` is
        ``[k dt, (k + 1) dt)``; all tables have ``n_steps`` columns (global index).
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
    jump_scale, jump_shift : float64[n_jump]
        An event maps ``v`` to ``jump_scale * v + jump_shift``.
    jump_rate : float64[n_jump, n_steps]
        Poisson event rate per neuron (Hz) in each step; rows of rate-coupled connections
        are filled during the run.
    diffusion_mean, diffusion_variance : float64[n_pop, n_steps]
        ``sum s h`` (V/s) and ``sum s h^2`` (V^2/s) of the diffusion connections; the
        rate-coupled ones are added during the run.
    bridge : bool
        Apply the Brownian-bridge crossing correction to white noise.
    v, target, ref_end : float64[n_neurons]
        Neuron state, updated in place: potential (``inf`` while refractory), next event
        target in cumulative intensity, end of the refractory period (s).
    lam : float64[n_pop]
        Cumulative jump intensity at the first step's start, updated in place.
    rc_pre, rc_n_syn, rc_lag_offsets, rc_lags, rc_jump_row, rc_post, rc_weight
        Rate-coupled connections: pre population, synapse count, lag weights
        ``rc_lags[rc_lag_offsets[c]:rc_lag_offsets[c + 1]]``, jump-table row (``-1``:
        diffusion input to population ``rc_post`` with weight ``rc_weight``).
    out_offsets, seg_conn, seg_offsets, syn_target, syn_delay
        Out-going adjacency of the spiking connections: neuron ``g`` owns segments
        ``out_offsets[g]:out_offsets[g + 1]``; segment ``s`` belongs to connection
        ``seg_conn[s]`` and holds synapses ``seg_offsets[s]:seg_offsets[s + 1]`` with
        targets ``syn_target`` (global neuron index) and, for distributed delays,
        ``syn_delay`` (steps).
    conn_fixed, conn_delay_steps, conn_channel, conn_value
        Per spiking connection: fixed delay? its delay (steps); ring-buffer channel; value
        added per event (weight, or ``log(1 - w)`` for a conductance synapse).
    channel_reversal : float64[n_channel]
        Reversal potential of each conductance channel (entry 0, the current channel,
        unused).
    receives_spikes : bool[n_pop]
        Whether population ``p`` is the target of a spiking connection.
    inbox : float64[n_channel * ring_length, n_neurons]
        Ring buffers; ``ring_length = inbox.shape[0] // n_channel`` exceeds the longest
        delay in steps.
    delivered : int64[n_spiking_connections]
        Output, accumulated: events delivered (spikes times out-degree).
    record_steps : int64[n_record]
        Histogram the state at the start of step ``record_steps[r]`` (the value
        ``n_steps`` means the state after the last step).
    grid_lower, grid_width : float64[n_pop]
        Lower face and cell width of each population's grid.
    grid_offsets : int64[n_pop + 1]
        Columns of ``hist_counts`` per population.
    spike_counts, refractory_counts : int64[n_pop, n_steps]
        Output: spikes in each step, refractory neurons at each step's end.
    event_counts : int64[n_pop]
        Output, accumulated: exactly timed Poisson input events delivered.
    hist_counts : int64[n_record, n_cells_total], below_counts : int64[n_record, n_pop]
        Output, accumulated: histogram counts and neurons below the grid.
    record_limit : int64[n_pop]
        Spikes of the first ``record_limit[p]`` neurons of each population are recorded.
    record_margin : int
        Free places in ``record_times`` needed to start a step.
    record_times, record_ids, n_recorded
        Spike record (s, global neuron index) and its length so far.
    spike_ids, spike_times
        Scratch list of one population step's spikes (more than
        ``SPIKE_LIST_MARGIN`` places).
    on_grid : bool[n_pop]
        Populations advanced by the step-resolution engine :func:`_step_grid` (no
        white noise) instead of the exact event-driven one.
    next_released, release_head, n_refractory
        The grid engine's release lists and refractory counts, from
        :func:`grid_release_lists` once per run and passed to every call of the run so
        that the lists keep their order across calls; :func:`end_grid_release` ends
        the run.

    Returns
    -------
    (state, next_step, n_recorded, status)
        ``status`` 0: done (``next_step == n_steps``); 1: the spike record needs more room
        before step ``next_step`` (grow it and call again from there); 2: a neuron fired
        more than ``SPIKE_LIST_MARGIN`` times in one step, or the spike record overflowed
        (the run is invalid).
    """
    n_pop = pop_offsets.size - 1
    n_channel = channel_reversal.size
    ring_length = inbox.shape[0] // n_channel if n_channel > 0 else 1
    has_spiking = seg_conn.size > 0
    recording = False
    for p in range(n_pop):
        if record_limit[p] > 0:
            recording = True
    decay = np.empty(n_pop)
    for p in range(n_pop):
        decay[p] = math.exp(-dt / tau_m[p])
    cdf, cdf_bits, guide, expected, last_pmf, drive, cells = _grid_scratch(
        pop_offsets, on_grid, jump_scale.size)
    for k in range(first_step, n_steps + 1):
        if recording and record_times.size - n_recorded < record_margin and k < n_steps:
            return state, k, n_recorded, 1
        _record_histograms(k, record_steps, v, pop_offsets, grid_lower, grid_width,
                           grid_offsets, hist_counts, below_counts)
        if k == n_steps:
            break
        t0 = k * dt
        t1 = (k + 1) * dt
        if rc_pre.size > 0:
            _couple_rates(k, dt, pop_offsets, spike_counts, rc_pre, rc_n_syn, rc_lag_offsets,
                          rc_lags, rc_jump_row, rc_post, rc_weight, jump_rate, diffusion_mean,
                          diffusion_variance)
        for p in range(n_pop):
            j_lo = jump_offsets[p]
            j_hi = jump_offsets[p + 1]
            total_rate = 0.0
            for j in range(j_lo, j_hi):
                total_rate += jump_rate[j, k]
            lam0 = lam[p]
            lam1 = lam0 + total_rate * dt
            mu = e_l[p] + tau_m[p] * diffusion_mean[p, k]
            s2 = diffusion_variance[p, k]
            spread = math.sqrt(0.5 * s2 * tau_m[p] * (1.0 - decay[p]) * (1.0 + decay[p]))
            lo = pop_offsets[p]
            hi = pop_offsets[p + 1]
            slot = k % ring_length
            has_drive = FALSE
            conductance_rows = FALSE
            if on_grid[p]:
                has_drive, n_ev, state, conductance_rows = _grid_input(
                    jump_rate, k, dt, j_lo, j_hi, cdf, cdf_bits, guide, expected, last_pmf,
                    drive, hi - lo, state, jump_scale, jump_shift, cells)
                event_counts[p] += n_ev
            elif receives_spikes[p]:
                _apply_inbox(v, lo, hi, inbox, slot, ring_length, channel_reversal)
            n_spk_total = 0
            n_ref_total = 0
            finished = False
            while not finished:
                if on_grid[p]:
                    n_spk, n_ref, n_ev, n_out, lo, finished, state = _step_grid(
                        v, ref_end, lo, hi, state, k, dt, mu, decay[p], tau_m[p], v_th[p],
                        v_reset[p], t_ref[p], receives_spikes[p], inbox, slot, ring_length,
                        channel_reversal, drive, pop_offsets[p], has_drive, j_lo, j_hi,
                        conductance_rows, cdf, cdf_bits, guide, expected, last_pmf,
                        jump_scale, jump_shift, next_released, release_head, p, spike_ids,
                        spike_times, INT0)
                    n_refractory[p] += n_ref
                    n_ref = 0
                else:
                    n_spk, n_ref, n_ev, n_out, lo, state = _step_population(
                        v, target, ref_end, lo, hi, k, state, t0, t1, lam0, lam1, total_rate,
                        jump_scale, jump_shift, jump_rate, j_lo, j_hi, mu, s2, decay[p],
                        spread, tau_m[p], v_th[p], v_reset[p], t_ref[p], bridge, spike_ids,
                        spike_times, INT0)
                    finished = lo >= hi
                if n_out > spike_ids.size:
                    return state, k, n_recorded, 2
                n_spk_total += n_spk
                n_ref_total += n_ref
                event_counts[p] += n_ev
                if has_spiking:
                    _deliver(spike_ids, spike_times, n_out, k, dt, out_offsets, seg_conn,
                             seg_offsets, syn_target, syn_delay, conn_fixed, conn_delay_steps,
                             conn_channel, conn_value, inbox, ring_length, delivered)
                if record_limit[p] > 0:
                    n_recorded, room = _record_spike_list(
                        pop_offsets[p] + record_limit[p], n_out, spike_ids, spike_times,
                        record_times, record_ids, n_recorded)
                    if not room:
                        return state, k, n_recorded, 2
            lam[p] = lam1
            spike_counts[p, k] = n_spk_total
            refractory_counts[p, k] = n_refractory[p] if on_grid[p] else n_ref_total
    return state, n_steps, n_recorded, 0


@njit(cache=True)
def grid_release_lists(first_step, dt, v, ref_end, pop_offsets, t_ref, on_grid):
    """The grid engine's release lists for a run (or its continuation) from
    ``first_step``: refractory neurons of grid-engine populations get
    ``v = GRID_REFRACTORY`` and wait in the list of the step in which their refractory
    period ends. Returns ``(next_released, release_head, n_refractory)``, to be passed to
    every :func:`simulate_steps` call of the run, so that the lists keep their order
    across calls."""
    n_pop = pop_offsets.size - 1
    longest = 0.0
    for p in range(n_pop):
        if on_grid[p]:
            longest = max(longest, t_ref[p])
    release_head = np.full((n_pop, int(longest / dt) + 3), -1, dtype=np.int64)
    next_released = np.full(v.size, -1, dtype=np.int64)
    n_refractory = np.zeros(n_pop, dtype=np.int64)
    for p in range(n_pop):
        if not on_grid[p]:
            continue
        for i in range(pop_offsets[p], pop_offsets[p + 1]):
            if v[i] == REFRACTORY:
                v[i] = GRID_REFRACTORY
                n_refractory[p] += 1
                _schedule_release(i, ref_end[i], dt, first_step, next_released,
                                  release_head, p)
    return next_released, release_head, n_refractory


@njit(cache=True)
def end_grid_release(v, pop_offsets, on_grid):
    """Undo :func:`grid_release_lists`' marks: refractory neurons back to
    ``v = REFRACTORY``."""
    for p in range(pop_offsets.size - 1):
        if on_grid[p]:
            for i in range(pop_offsets[p], pop_offsets[p + 1]):
                if v[i] == GRID_REFRACTORY:
                    v[i] = REFRACTORY


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


@njit(cache=True)
def sample_poisson_counts(lam, n, seed_bits):
    """``n`` Poisson(``lam``) counts drawn as the grid engine draws them (for tests)."""
    rate = np.array([[lam]])
    cdf = np.empty((1, POISSON_TABLE))
    cdf_bits = np.empty((1, POISSON_TABLE), dtype=np.uint64)
    guide = np.zeros((1, POISSON_GUIDE), dtype=np.uint8)
    expected = np.full(1, -1.0)
    last_pmf = np.zeros(1)
    _poisson_tables(rate, INT0, 1.0, INT0, INT1, cdf, cdf_bits, guide, expected, last_pmf)
    out = np.empty(n, dtype=np.int64)
    state = seed_bits
    for i in range(n):
        bits, state = _next_u64(state)
        count = _poisson_count(bits, cdf_bits[0], guide[0])
        if count == POISSON_TABLE:
            count = _poisson_tail(bits, cdf[0], expected[0], last_pmf[0])
        out[i] = count
    return out
