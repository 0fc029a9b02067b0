"""One compiled Monte Carlo loop for every model with a compiled single-neuron update.

The loop owns everything that is not physics: Poisson input with exact event times,
spikes delivered along drawn synapses (fixed in-degree), spike counting, refractoriness
and recording. The model supplies the functions of :mod:`popdens.kernels.mc_interface`,
registered on the NamedTuple class of its parameters. The work of one population in one
step (:func:`_step_population`) is compiled once per model type; :func:`simulate`, the
short loop over steps and populations that calls it, once per tuple of model types (so
ReducedHH alone, two ReducedHH populations and ReducedHH beside LIF share the ReducedHH
step). Both are stored in numba's disk cache.

numba's cache keys a function on its own file only: after changing a model's compiled
functions (``mc_hh.py``, ``mc_lif.py``, ``mc_lif_synaptic.py``, ``mc_interface.py``) or
the generator of ``montecarlo.py``, bump ``KERNEL_VERSION`` here (or delete
``kernels/__pycache__``).

Input events. All neurons of a population see the same total Poisson rate ``S_k`` (Hz)
in reporting step ``k``. Each neuron keeps the value ``target`` of the cumulative
intensity ``Lambda(t) = integral_0^t S`` at which its next event happens (previous +
Exp(1), time rescaling), so events are timed exactly within a step. The connection of an
event is chosen with probability ``rate_c / S_k`` and applied by the model's ``jump``.
Which events a neuron receives does not depend on its state (except while it is
refractory), so runs with the same seed and different internal steps see the same
events: common random numbers for convergence checks. The draws (Exp(1) targets, a
uniform per event to pick the connection, Exp(1) at each release) are those of the 1D
LIF kernel in the same order, so an LIF network with ``connectivity="poisson"`` gives
the kernel's spikes with the same seed (``tests/backends/test_mc_loop_lif.py``).

Time steps. A model with ``exact = False`` advances in internal steps ``h = dt / n_sub``
aligned to ``t0 + j h``; an event splits the step it falls in. A model with an exact
flow advances from event to event. Fast path: where a reporting step is one piece (an
exact flow, or ``n_sub = 1``), a neuron without input event in the step that is not held
takes one ``advance_step`` (the model's step constants prepared once per population and
step) and, if ``crossing`` finds no spike, is done, and a neuron held beyond the step is
passed over; the others follow in the general path, in their order (the fast path draws
no random number, so the draws are those of the general path alone). There a neuron with
one event and no spike takes straight-line code (:func:`one_event`, the step split at
the event by the model's ``split_step``) before the general loop. On these two paths the
model's ``crossing`` and ``jump`` are IR-inlined (``mc_interface.crossing_inlined``,
``jump_inlined``): called, they cost about 10 ns per neuron with an event, for LIF a
third of its cost there. A spike found by the
model's ``crossing`` is counted,
delivered, and, for a reset model, the neuron is held by ``hold`` for the refractory
period (its input ignored) and then ``release``-d; by memorylessness its next event comes
Exp(1) of intensity after the release. For a model without reset, an event that carries
the state up across its spike surface is a spike too (``crossing`` asked about the jump,
with zero duration), as the density counts the jump flux through the surface; a reset
model's ``crossing`` sees a state that an event put past threshold at the start of the
next segment.

Spiking network (fixed in-degree). A spike at ``t`` of neuron ``g`` goes along the
out-going adjacency (CSR, built by :mod:`popdens.backends.mc_wiring`) into ring buffers,
at the step boundary nearest to ``t + delay`` and at the earliest the next one (as in the
1D LIF Monte Carlo, :mod:`popdens.kernels.montecarlo`). A neuron takes its buffered input
at the start of a step: current synapses add their summed weight in one ``jump``, a
conductance channel applies the composition of its events ``1 - prod(1 - w)``; a
refractory neuron ignores it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import literal_unroll, njit, types
from numba.extending import overload

from .mc_interface import (
    advance,
    advance_random,
    advance_step,
    crossing,
    crossing_inlined,
    crossing_random,
    hold,
    is_held,
    jump,
    jump_inlined,
    load,
    noisy,
    prepare_step,
    refractory_period,
    release,
    resets,
    split_step,
    store,
)
from .montecarlo import _exponential, _uniform
from .typed import INT0

__all__ = ["Populations", "Inputs", "Wiring", "Recording", "simulate", "seed_targets",
           "trace", "step_for", "KERNEL_VERSION"]

KERNEL_VERSION = 8


class Populations(NamedTuple):
    """Neurons: population ``p`` holds rows ``offsets[p]:offsets[p + 1]``."""

    offsets: np.ndarray      # int64[n_pop + 1]
    n_sub: np.ndarray        # int64[n_pop]: internal steps per reporting step
    y: np.ndarray            # float64[n_neurons, n_vars]: states, in place
    target: np.ndarray       # float64[n_neurons]: next event's cumulative intensity
    held_until: np.ndarray   # float64[n_neurons]: end of the refractory period
    lam: np.ndarray          # float64[n_pop]: cumulative intensity, in place


class Inputs(NamedTuple):
    """Poisson inputs: population ``p`` has connections ``offsets[p]:offsets[p + 1]``."""

    offsets: np.ndarray      # int64[n_pop + 1]
    weight: np.ndarray       # float64[n_jump]
    reversal: np.ndarray     # float64[n_jump]: NaN for current synapses
    rate: np.ndarray         # float64[n_jump, n_steps]: event rate per neuron (Hz)


class Wiring(NamedTuple):
    """Fixed in-degree synapses (out-going CSR) and their ring buffers; no synapses:
    ``seg_conn`` is empty."""

    out_offsets: np.ndarray       # int64[n_neurons + 1]: segments of neuron g
    seg_conn: np.ndarray          # int64[n_seg]: connection of a segment
    seg_offsets: np.ndarray       # int64[n_seg + 1]: synapses of a segment
    syn_target: np.ndarray        # uint32[n_syn]
    syn_delay: np.ndarray         # float32[n_syn]: in steps (distributed delays)
    conn_fixed: np.ndarray        # bool[n_conn]
    conn_delay_steps: np.ndarray  # float64[n_conn]
    conn_channel: np.ndarray      # int64[n_conn]: 0 current, c >= 1 conductance
    conn_value: np.ndarray        # float64[n_conn]: weight, or log(1 - w)
    channel_reversal: np.ndarray  # float64[n_channels]
    receives: np.ndarray          # bool[n_pop]
    inbox: np.ndarray             # float64[n_channels * ring_length, n_neurons]
    delivered: np.ndarray         # int64[n_conn]
    ring_length: int
    spike_ids: np.ndarray         # int64[capacity]: a population step's spikes, for
    spike_times: np.ndarray       # float64[capacity]  delivery (empty: no synapses)


class Recording(NamedTuple):
    """Counts per step and histograms at ``steps`` (grids: at most ``lower.shape[1]``
    axes; population ``p``'s cells are columns ``grid_offsets[p]:grid_offsets[p + 1]``
    of ``hist``)."""

    steps: np.ndarray         # int64[n_record]
    ndim: np.ndarray          # int64[n_pop]
    lower: np.ndarray         # float64[n_pop, max_dim]
    width: np.ndarray         # float64[n_pop, max_dim]
    cells: np.ndarray         # int64[n_pop, max_dim]
    grid_offsets: np.ndarray  # int64[n_pop + 1]
    spikes: np.ndarray        # int64[n_pop, n_steps]
    refractory: np.ndarray    # int64[n_pop, n_steps]
    events: np.ndarray        # int64[n_pop]
    hist: np.ndarray          # int64[n_record, n_cells_total]
    outside: np.ndarray       # int64[n_record, n_pop]


# --- input ----------------------------------------------------------------------------------
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


@njit(cache=True)
def _deliver(n_spikes, k, dt, w):
    """Add the first ``n_spikes`` spikes of ``w.spike_ids, w.spike_times`` (fired in step
    ``k``) to the ring buffers of their targets: at the step boundary nearest to
    ``t_spike + delay``, at least ``k + 1``. Row ``channel * ring_length + step %
    ring_length`` of ``w.inbox`` collects ``conn_value`` per event."""
    if n_spikes > w.spike_ids.size:
        raise ValueError("a neuron fired more often within one step than the spike list "
                         "holds: runaway drive or dt far too coarse")
    for s in range(n_spikes):
        _deliver_one(w.spike_ids[s], w.spike_times[s], k, dt, w)


@njit(cache=True, inline="always")
def _deliver_one(g, t_spike, k, dt, w):
    time_in_steps = t_spike / dt
    slot_now = k % w.ring_length
    for seg in range(w.out_offsets[g], w.out_offsets[g + 1]):
        c = w.seg_conn[seg]
        lo = w.seg_offsets[seg]
        hi = w.seg_offsets[seg + 1]
        w.delivered[c] += hi - lo
        value = w.conn_value[c]
        base = w.conn_channel[c] * w.ring_length
        for q in range(lo, hi):
            delay = w.conn_delay_steps[c] if w.conn_fixed[c] else w.syn_delay[q]
            ahead = max(np.int64(math.floor(time_in_steps + delay + 0.5)) - k, 1)
            slot = (slot_now + ahead) % w.ring_length
            w.inbox[base + slot, w.syn_target[q]] += value


@njit(inline="always")
def _take_inbox(prm, x, g, slot, inbox, channel_reversal, ring_length):
    """Apply and clear neuron ``g``'s buffered input of ring slot ``slot``: the summed
    current weights in one jump, each conductance channel ``E`` as one jump of
    ``1 - exp(sum log(1 - w))`` toward ``E``; a held neuron ignores it. Returns the
    state and the number of jumps that fired (:func:`_jump_counted`)."""
    held = resets(prm) and is_held(prm, x)
    fired = 0
    summed = inbox[slot, g]
    if summed != 0.0:
        inbox[slot, g] = 0.0
        if not held:
            x, fired = _jump_counted(prm, x, summed, np.nan, fired)
    for c in range(1, channel_reversal.size):
        row = c * ring_length + slot
        log_factor = inbox[row, g]
        if log_factor != 0.0:
            inbox[row, g] = 0.0
            if not held:
                x, fired = _jump_counted(prm, x, -math.expm1(log_factor),
                                         channel_reversal[c], fired)
    return x, fired


@njit(inline="always")
def _jump_counted(prm, x, weight, reversal, fired):
    """``jump``, adding to ``fired`` when the event carries a model without reset up
    across its spike surface (``crossing`` of the jump, zero duration): the density
    counts that jump flux as firing. (A reset model's ``crossing`` sees a state past
    threshold at the start of the next segment.)"""
    x_new = jump(prm, x, weight, reversal)
    if not resets(prm) and crossing(prm, x, x_new, 0.0) >= 0.0:
        fired += 1
    return x_new, fired


# --- one neuron, one population ---------------------------------------------------------------
def one_event(prm, x, next_target, state, k, t0, clock, prepared, rate, weight, reversal,
              j_lo, j_hi):
    """The usual neuron of the general path in a step taken in one piece: one input
    event and no spike, in straight-line code (the steps of :func:`_neuron_step`; the
    flow over the two pieces from the step's ``prepared`` constants and the model's
    ``split_step``: for LIF one exponential less). Compiled for models with an exact
    flow only (:func:`_one_event_for_type`).

    Returns ``(x, t, next_target, state, events, done)``: ``done`` with the state at
    the step's end; otherwise the general path goes on from ``(x, t, next_target)``
    (``events = 0``: nothing was drawn, ``x`` and ``t = t0`` as given)."""
    raise NotImplementedError("one_event is only callable from compiled code")


def _one_event(prm, x, next_target, state, k, t0, clock, prepared, rate, weight, reversal,
               j_lo, j_hi):
    n_sub, h_int, lam0, lam1, total_rate, inv_rate = clock
    t1 = t0 + h_int
    t_event = min(max(t0 + (next_target - lam0) * inv_rate, t0), t1)
    first, rest = split_step(prm, prepared, t_event - t0, t1 - t_event)
    x_event = advance_step(prm, x, first)
    if crossing_inlined(prm, x, x_event, t_event - t0) >= 0.0:
        return x, t0, next_target, state, 0, False
    j, state = _pick_connection(rate, k, j_lo, j_hi, total_rate, state)
    x = jump_inlined(prm, x_event, weight[j], reversal[j])
    e, state = _exponential(state)
    next_target += e
    if next_target < lam1:
        return x, t_event, next_target, state, 1, False
    x_end = advance_step(prm, x, rest)
    if crossing_inlined(prm, x, x_end, t1 - t_event) >= 0.0:
        return x, t_event, next_target, state, 1, False
    return x_end, t1, next_target, state, 1, True


def _no_one_event(prm, x, next_target, state, k, t0, clock, prepared, rate, weight,
                  reversal, j_lo, j_hi):
    return x, t0, next_target, state, 0, False


@overload(one_event, inline="always")
def _one_event_for_type(prm, x, next_target, state, k, t0, clock, prepared, rate, weight,
                        reversal, j_lo, j_hi):
    # models without an exact flow (HH, ReducedHH, the IF family) take the general path:
    # the straight-line code, dead for most of them, cost 10-20 % of their step's cold
    # compilation (HH 14.8 -> 17.4 s)
    if not isinstance(prm, types.BaseNamedTuple):
        return None
    return _one_event if getattr(prm.instance_class, "exact", False) else _no_one_event


@njit(inline="always")
def _neuron_step(prm, x, g, held_until, next_target, state, k, t0, t_start, clock, rate,
                 weight, reversal, j_lo, j_hi, spike_ids, spike_times, n_out):
    """Take neuron ``g`` (state ``x`` at ``t_start`` in its first internal step) through
    reporting step ``k`` = ``[t0, t0 + dt)``, appending its spikes to ``spike_ids,
    spike_times`` from ``n_out`` on (while they have room; the count goes on). ``rate,
    weight, reversal``: those of :class:`Inputs` (arrays, not the NamedTuple: no
    attribute access in the hot loop).

    ``clock = (n_sub, h_int, lam0, lam1, total_rate, inv_rate)``. Returns
    ``(x, held_until, next_target, spikes, events, n_out, state)``."""
    n_sub, h_int, lam0, lam1, total_rate, inv_rate = clock
    spikes = 0
    events = 0
    t = t_start
    for s in range(n_sub):
        t_b = t0 + (s + 1) * h_int
        lam_b = lam0 + total_rate * (t_b - t0) if s < n_sub - 1 else lam1
        while True:
            if resets(prm) and is_held(prm, x):
                if held_until >= t_b:
                    break
                t = max(held_until, t)
                x = release(prm, x)
                e, state = _exponential(state)
                next_target = lam0 + total_rate * (t - t0) + e
            at_event = next_target < lam_b
            t_next = min(max(t0 + (next_target - lam0) * inv_rate, t), t_b) if at_event \
                else t_b
            x_new, state = advance_random(prm, x, t_next - t, state)
            s_spike, state = crossing_random(prm, x, x_new, t_next - t, state)
            if s_spike >= 0.0:
                spikes += 1
                if n_out < spike_ids.size:
                    spike_ids[n_out] = g
                    spike_times[n_out] = t + s_spike
                n_out += 1
                if resets(prm):
                    x = hold(prm, advance(prm, x, s_spike))
                    t = t + s_spike
                    held_until = t + refractory_period(prm)
                    continue
            x = x_new
            t = t_next
            if not at_event:
                break
            j, state = _pick_connection(rate, k, j_lo, j_hi, total_rate, state)
            x, fired = _jump_counted(prm, x, weight[j], reversal[j], 0)
            if fired:
                spikes += 1
                if n_out < spike_ids.size:
                    spike_ids[n_out] = g
                    spike_times[n_out] = t
                n_out += 1
            e, state = _exponential(state)
            next_target += e
            events += 1
    return x, held_until, next_target, spikes, events, n_out, state


@njit(inline="always")
def _fast_pass(prm, lo, hi, lam1, prepared, step_end, step_length, y, target, held_until,
               take_input, slot, wiring, pending):
    """Advance the neurons ``lo:hi`` that have no input event in the step (``target >=
    lam1``), are not held and do not spike, in one ``advance_step`` each (after their
    buffered input, when ``take_input``), and pass over those held beyond ``step_end``;
    list the others in ``pending``. Returns ``(pending neurons, neurons held)``. A loop
    of its own: with the general path inside, it ran at half the speed."""
    inbox, channel_reversal, ring_length = wiring.inbox, wiring.channel_reversal, \
        wiring.ring_length
    n_pending = 0
    n_held = 0
    for g in range(lo, hi):
        x = load(prm, y, g)
        if take_input:
            x, _ = _take_inbox(prm, x, g, slot, inbox, channel_reversal, ring_length)
        if is_held(prm, x):
            if held_until[g] >= step_end:   # the general path would do nothing
                n_held += 1
                continue
        elif target[g] >= lam1:
            x_new = advance_step(prm, x, prepared)
            if crossing_inlined(prm, x, x_new, step_length) < 0.0:
                store(prm, y, g, x_new)
                continue
        if take_input:
            store(prm, y, g, x)   # its input taken, for the general path
        pending[n_pending] = g
        n_pending += 1
    return n_pending, n_held


def _step_population(prm, p, k, dt, state, pops, inputs, wiring, rec, pending):
    """Advance the neurons of population ``p`` (parameters ``prm``) through step ``k``
    (``pending``: scratch for the indices of the neurons the fast path leaves to the
    general one); returns the generator state."""
    j_lo = inputs.offsets[p]
    j_hi = inputs.offsets[p + 1]
    total_rate = 0.0
    for j in range(j_lo, j_hi):
        total_rate += inputs.rate[j, k]
    n_sub = pops.n_sub[p]
    t0 = k * dt
    lam0 = pops.lam[p]
    lam1 = lam0 + total_rate * dt
    h_int = dt / n_sub
    clock = (n_sub, h_int, lam0, lam1, total_rate,
             1.0 / total_rate if total_rate > 0.0 else 0.0)
    receives = wiring.receives[p]
    slot = k % wiring.ring_length
    y, held_until, target = pops.y, pops.held_until, pops.target
    lo = pops.offsets[p]
    hi = pops.offsets[p + 1]
    # the fast path: a step taken in one piece (no event, no spike: no random number
    # either, so the general path's draws are the same), its duration as _neuron_step
    # computes it
    # (reset models only: a model without reset may spike on its buffered input, which
    # the general path counts; models without noise only: it draws no random number)
    whole_step = n_sub == 1 and resets(prm) and not noisy(prm)
    step_length = (t0 + h_int) - t0
    prepared = prepare_step(prm, step_length)
    if whole_step:
        # spelled out twice: a constant take_input compiles to a loop of its own, and
        # the inbox code inside the loop without input would cost a third of its speed
        if receives:
            n_general, refractory = _fast_pass(prm, lo, hi, lam1, prepared, t0 + h_int,
                                               step_length, y, target, held_until, True,
                                               slot, wiring, pending)
        else:
            n_general, refractory = _fast_pass(prm, lo, hi, lam1, prepared, t0 + h_int,
                                               step_length, y, target, held_until, False,
                                               slot, wiring, pending)
    else:
        n_general = hi - lo
        refractory = 0
    spikes = 0
    events = 0
    n_out = INT0
    flush_at = wiring.spike_ids.size // 2
    rate, weight, reversal = inputs.rate, inputs.weight, inputs.reversal
    spike_ids, spike_times = wiring.spike_ids, wiring.spike_times
    inbox, channel_reversal = wiring.inbox, wiring.channel_reversal
    for q in range(n_general):
        g = pending[q] if whole_step else lo + q
        x = load(prm, y, g)
        if receives and not whole_step:
            x, fired = _take_inbox(prm, x, g, slot, inbox, channel_reversal,
                                   wiring.ring_length)
            for _ in range(fired):     # spikes at t0
                if n_out < spike_ids.size:
                    spike_ids[n_out] = g
                    spike_times[n_out] = t0
                n_out += 1
            spikes += fired
        t_start = t0
        next_target = target[g]
        n_ev = 0
        if whole_step and next_target < lam1 and not is_held(prm, x):
            x, t_start, next_target, state, n_ev, done = one_event(
                prm, x, next_target, state, k, t0, clock, prepared, rate, weight,
                reversal, j_lo, j_hi)
            if done:
                store(prm, y, g, x)
                target[g] = next_target
                events += n_ev
                continue
        x, held_until[g], target[g], n_spk, n_more, n_out, state = _neuron_step(
            prm, x, g, held_until[g], next_target, state, k, t0, t_start, clock, rate,
            weight, reversal, j_lo, j_hi, spike_ids, spike_times, n_out)
        n_ev += n_more
        store(prm, y, g, x)
        if n_out > flush_at and flush_at > 0:
            _deliver(n_out, k, dt, wiring)
            n_out = INT0
        spikes += n_spk
        events += n_ev
        if resets(prm) and is_held(prm, x):
            refractory += 1
    if n_out > 0 and wiring.spike_ids.size > 0:
        _deliver(n_out, k, dt, wiring)
    pops.lam[p] = lam1
    rec.spikes[p, k] = spikes
    rec.refractory[p, k] = refractory
    rec.events[p] += events
    return state


# --- recording --------------------------------------------------------------------------------
@njit(inline="always")
def _histogram(prm, p, r, pops, rec):
    """Add population ``p``'s neurons that are on its grid (not held, inside every axis)
    to row ``r`` of ``rec.hist`` (C order of the cells), and count the others that are
    not held in ``rec.outside``."""
    ndim = rec.ndim[p]
    col0 = rec.grid_offsets[p]
    outside = 0
    for g in range(pops.offsets[p], pops.offsets[p + 1]):
        if resets(prm) and is_held(prm, load(prm, pops.y, g)):
            continue
        flat = 0
        inside = True
        for d in range(ndim):
            position = (pops.y[g, d] - rec.lower[p, d]) / rec.width[p, d]
            # compared as floats: inf and huge values must not reach int()
            if not (0.0 <= position <= rec.cells[p, d]):
                inside = False
                break
            flat = flat * rec.cells[p, d] + min(int(position), rec.cells[p, d] - 1)
        if inside:
            rec.hist[r, col0 + flat] += 1
        else:
            outside += 1
    rec.outside[r, p] += outside


def _simulate(step_begin, step_end, dt, state, models, pops, inputs, wiring, rec):
    """Simulate reporting steps ``step_begin .. step_end - 1`` of ``dt``; consecutive calls
    continue one run (the state lives in the arrays).

    ``models`` is a tuple with each population's parameters NamedTuple (its type selects
    the compiled model functions); ``pops``, ``inputs``, ``wiring``, ``rec``: the
    NamedTuples :class:`Populations`, :class:`Inputs`, :class:`Wiring`,
    :class:`Recording`. Histograms are taken at the start of the steps in ``rec.steps``
    (``n_steps``: the final state, taken by the call that ends there). Returns the
    generator state (uint64) after the last step."""
    n_steps = rec.spikes.shape[1]
    largest = 0
    for p in range(pops.offsets.size - 1):
        largest = max(largest, pops.offsets[p + 1] - pops.offsets[p])
    pending = np.empty(largest, dtype=np.int64)
    for k in range(step_begin, step_end + 1):
        if k == step_end and step_end < n_steps:
            break   # the next call records at its start
        for r in range(rec.steps.size):
            if rec.steps[r] == k:
                p = 0
                for prm in literal_unroll(models):
                    _histogram(prm, p, r, pops, rec)
                    p += 1
        if k == step_end:
            break
        p = 0
        for prm in literal_unroll(models):
            state = population_step(prm, p, k, dt, state, pops, inputs, wiring, rec,
                                    pending)
            p += 1
    return state


step_population = njit(cache=True)(_step_population)
"""One population's step, compiled once per model type and cached on disk: for the
built-in models."""

step_population_uncached = njit(_step_population)
"""The same, compiled once per process: for user models, whose compiled functions
numba's cache would not see change."""


def population_step(prm, p, k, dt, state, pops, inputs, wiring, rec, pending):
    """Population ``p``'s step ``k`` in the loop: the compiled :func:`_step_population`
    of ``prm``'s model type (:func:`step_for`)."""
    raise NotImplementedError("population_step is only callable from compiled code")


def step_for(params_class):
    """The compiled population step of a model's parameters class: its own
    ``cached_step`` (a generated equation model caches it with its module), the cached
    :data:`step_population` for built-in models, else :data:`step_population_uncached`."""
    own = getattr(params_class, "cached_step", None)
    if own is not None:
        return own
    if params_class.__module__.startswith("popdens."):
        return step_population
    return step_population_uncached


@overload(population_step)
def _population_step_for_type(prm, p, k, dt, state, pops, inputs, wiring, rec, pending):
    # a call, not inlined: each model type's step compiles once and every tuple of
    # models (ReducedHH alone, beside LIF, twice, ...) reuses it; only this short
    # loop is compiled per tuple
    if not isinstance(prm, types.BaseNamedTuple):
        return None
    compiled = step_for(prm.instance_class)

    def call(prm, p, k, dt, state, pops, inputs, wiring, rec, pending):
        return compiled(prm, p, k, dt, state, pops, inputs, wiring, rec, pending)
    return call


simulate = njit(cache=True)(_simulate)
"""The loop, cached on disk: for the built-in models."""

simulate_uncached = njit(_simulate)
"""The same loop compiled once per process: for user models (it calls their
:data:`step_population_uncached`)."""


@njit(cache=True)
def seed_targets(seed_bits, target):
    """Draw every neuron's first event target (Exp(1)); returns the generator state."""
    state = seed_bits
    for i in range(target.size):
        target[i], state = _exponential(state)
    return state


def _trace(prm, y0, t_end, h_int, event_times, event_weights):
    """One neuron of a model with ``exact = False`` and given input events, for tests and
    plots: the population loop's steps (internal step ``h_int``, events splitting the
    step they fall in, a reset model held for its refractory period, ignoring the events
    that fall in it), the state recorded after every internal step. ``event_times``
    sorted; each event is a current ``jump`` of its weight.

    Returns ``(t[n_rec], states[n_rec, n_vars], spikes)``."""
    n_steps = int(math.ceil(t_end / h_int - 1e-9))
    t_out = np.empty(n_steps + 1)
    out = np.empty((n_steps + 1, y0.size))
    out[0, :] = y0
    t_out[0] = 0.0
    x = load(prm, out, 0)
    spikes = 0
    t = 0.0
    held_until = -np.inf
    e_idx = 0
    for s in range(n_steps):
        t_b = min((s + 1) * h_int, t_end)
        while True:
            if resets(prm) and is_held(prm, x):
                if held_until >= t_b:
                    break
                t = max(held_until, t)
                x = release(prm, x)
                while e_idx < event_times.size and event_times[e_idx] < t:
                    e_idx += 1
            t_next = t_b
            at_event = e_idx < event_times.size and event_times[e_idx] < t_b
            if at_event:
                t_next = max(event_times[e_idx], t)
            x_new = advance(prm, x, t_next - t)
            s_spike = crossing(prm, x, x_new, t_next - t)
            if s_spike >= 0.0:
                spikes += 1
                if resets(prm):
                    x = hold(prm, advance(prm, x, s_spike))
                    t = t + s_spike
                    held_until = t + refractory_period(prm)
                    continue
            x = x_new
            t = t_next
            if not at_event:
                break
            x, fired = _jump_counted(prm, x, event_weights[e_idx], np.nan, 0)
            spikes += fired
            e_idx += 1
        t_out[s + 1] = t_b
        store(prm, out, s + 1, x)
    return t_out, out, spikes


trace = njit(cache=True)(_trace)
