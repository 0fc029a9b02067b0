"""The fused time stepper: advances every population of a network for a chunk of steps.

All populations live in one concatenated mass array (``pop_offset``); connections are
rows of parallel arrays. One reporting step is ``n_sub`` sub-steps of ``dt_sub``; each
sub-step, for every population, in this fixed order:

1. deterministic transport: exact-flow remap (``mode 0``), or an implicit
   Scharfetter-Gummel step of leak + diffusion inputs (``mode 1``);
2. every jump connection: the exact compound-Poisson propagator of its events;
3. the mass that crossed threshold is scheduled for release after the refractory
   period; released mass re-enters at the reset potential either at the start of a
   sub-step or just before its jump stage.

Timing. The Lie sequence transport-then-jumps is a Strang splitting shifted by half a
sub-step: each jump stage stands for the events of the sub-step *centred* on it. Jump
firing is therefore timed at the jump stage, transport firing half a sub-step earlier,
and a release at time T is spread over the neighbouring start / pre-jump points so that
the released mass receives, on average, exactly the drift time and the fraction of
events that follow T (a three-point stencil computed in ``assembly``). This keeps
stationary rates second order in the sub-step. Without refractory period, events after
a crossing act on the reset neuron within the same sub-step
(``jumps.mixture_jump`` with in-step reset).

Performance. The time loop works on a private copy of ``mass`` followed by a scratch
region (``state``, copied back before returning): the stages of a sub-step write out of
place, alternating between a population's home cells and the scratch region by swapping
two offsets, so no stage copies. It calls the ``transport._*_at`` kernels, which address
cells by offset instead of taking array views: every view, and every array passed to a
function that is not inlined, costs atomic reference-count updates, each about as much
as the arithmetic of a few cells. The remap uses departure-cell runs
(``transport.departure_runs``) prepared once per call; the Poisson weights of a
connection are recomputed only when its event count per sub-step changes. In networks
with several inputs per population the jump mixture dominates (one pass of the grid per
term of the Poisson series, 14-17 terms in the cortical column): see ``jumps`` for its
gather form. (numba's cache does not see changes in called kernels: after editing one,
touch this file or clear ``__pycache__``, or the old machine code keeps running.)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from .jumps import mixture_jump
from .transport import (
    SCHEME_UPWIND,
    _compound_whole_at,
    _compound_whole_reset_at,
    _remap_runs_at,
    _slopes_at,
    compound_jump,
    departure_runs,
    limited_slopes,
    poisson_weights,
    remap_flux_form_into,
    sg_coefficients,
    sg_implicit_step,
)
from .typed import INT0, INT1, TRUE

__all__ = ["advance", "Stepping", "Populations", "Faces", "Refractory", "Connections",
           "Outputs", "MODE_REMAP", "MODE_DIFFUSION", "INPUT_JUMP", "INPUT_DIFFUSION"]

MODE_REMAP = 0
MODE_DIFFUSION = 1
INPUT_JUMP = 0
INPUT_DIFFUSION = 1
# Runs of faces with the same departure-cell offset shorter than this on average: the
# remap gathers per face instead of working run by run (see
# ``transport.remap_flux_form_runs``).
MIN_RUN_LENGTH = 16
# Longest Poisson series per connection (terms).
MAX_TERMS = 512
# Cell masses below this are set to 0 after every sub-step. Far tails of the density
# otherwise decay into the subnormal floating-point range, and products of two tiny
# numbers (limiter sign tests, reconstructions) underflow; both take a slow microcode
# path on x86 (measured: fractional jumps 150x slower, 2 -> 320 us per step on 400
# cells). Products of two masses >= 1e-150 stay normal. The mass removed is below
# 1e-147 per population and sub-step, far under round-off.
TINY = 1e-150


@njit(cache=True, inline="always")
def _reinject(p, cell, frac_hi, mass):
    """Add the point mass ``mass`` at ``p[cell]`` (fraction ``frac_hi`` to
    ``p[cell + 1]``)."""
    p[cell] += (1.0 - frac_hi) * mass
    if frac_hi > 0.0:
        p[cell + 1] += frac_hi * mass


class Stepping(NamedTuple):
    """The sub-step: ``n_sub`` sub-steps of ``dt_sub`` per report step; limiter
    ``scheme``; Poisson series cut where the tail is below ``tail``."""

    n_sub: int
    dt_sub: float
    scheme: int
    tail: float


class Populations(NamedTuple):
    """Per population (P,): cells ``offset[q] .. offset[q + 1]`` of the mass array
    (``offset`` (P+1,)), transport ``mode``, cell width ``dx``, the model's own constant
    ``diffusion`` coefficient (added to that of the diffusion inputs), the reset cell and
    its fraction into the next cell, and ``immediate_reset`` (in-step reset for jumps, no
    refractory period)."""

    offset: np.ndarray
    mode: np.ndarray
    dx: np.ndarray
    diffusion: np.ndarray
    reset_cell: np.ndarray
    reset_frac_hi: np.ndarray
    immediate_reset: np.ndarray


class Faces(NamedTuple):
    """Face arrays (M+P,), population q's faces from ``offset[q] + q``: the departure
    points of the faces over one sub-step (``transport.departure_table``) and the
    deterministic drift ``velocity``."""

    departure_cell: np.ndarray
    departure_frac: np.ndarray
    departure_quad: np.ndarray
    velocity: np.ndarray


class Refractory(NamedTuple):
    """Refractory ring buffers ``pipe_start``/``pipe_mid`` (population q's at
    ``pipe_offset[q]``, ring position ``pipe_head[q]``) and the release stencils
    (P, 3, 3) per firing kind (see ``_schedule``)."""

    pipe_start: np.ndarray
    pipe_mid: np.ndarray
    pipe_offset: np.ndarray
    pipe_head: np.ndarray
    stencil_count: np.ndarray
    stencil_offset: np.ndarray
    stencil_type: np.ndarray
    stencil_weight: np.ndarray
    stencil_cell: np.ndarray
    stencil_frac: np.ndarray


class Connections(NamedTuple):
    """Connection rows (C,): target ``post``, input ``kind``, jump in cells ``shift``
    (for a conductance synapse ``scale`` = 1 - w != 1: an event maps
    ``x -> scale x + shift`` in cell units), ``weight``, per-step event rates ``rate``
    (C, n_steps) in Hz of source connections (``pre`` = -1). A connection from population
    ``pre[c] >= 0`` sees ``n_syn[c]`` times that population's past sub-step rates
    weighted by ``lag_weight[lag_offset[c] + l - 1]`` for lags ``l = 1, 2, ...``
    (``history`` (P, H): ring buffer of sub-step rates, write position
    ``history_cursor[0]``)."""

    post: np.ndarray
    kind: np.ndarray
    shift: np.ndarray
    scale: np.ndarray
    weight: np.ndarray
    rate: np.ndarray
    pre: np.ndarray
    n_syn: np.ndarray
    lag_offset: np.ndarray
    lag_weight: np.ndarray
    history: np.ndarray
    history_cursor: np.ndarray


class Outputs(NamedTuple):
    """Rates and refractory mass per report step (P, n_steps); density snapshots
    ``record`` (R, M) taken at the start of the steps in ``record_steps``
    (``record_next``: a 1-element cursor)."""

    rates: np.ndarray
    refractory: np.ndarray
    record_steps: np.ndarray
    record_next: np.ndarray
    record: np.ndarray


class Workspace(NamedTuple):
    """Scratch arrays of one :func:`advance` call (see :func:`_workspace`)."""

    state: np.ndarray
    slopes: np.ndarray
    work: np.ndarray
    cumulative: np.ndarray
    face_flux: np.ndarray
    to_right: np.ndarray
    to_left: np.ndarray
    velocity: np.ndarray
    work_c: np.ndarray
    work_d: np.ndarray
    work_old: np.ndarray
    weights: np.ndarray
    weight_count: np.ndarray
    weight_lam: np.ndarray
    jump_scratch: np.ndarray
    mix_shift: np.ndarray
    mix_scale: np.ndarray
    mix_prob: np.ndarray
    mix_weights: np.ndarray
    rate_now: np.ndarray
    by_post: np.ndarray
    by_post_offset: np.ndarray
    run_start: np.ndarray
    run_offset: np.ndarray
    num_runs: np.ndarray


@njit(cache=True, inline="always")
def _schedule(p, p0, q, kind, mass, head, length, base, pipe_start, pipe_mid,
              stencil_count, stencil_offset, stencil_type, stencil_weight, stencil_cell,
              stencil_frac):
    """Distribute ``mass`` that crossed threshold over its release points.

    Entry ``e`` of population ``q``'s stencil for this ``kind`` (0: transport, 1: jumps,
    2: implicit diffusion step) releases ``stencil_weight`` of it ``stencil_offset``
    sub-steps on, at the start (type 0) or before the jump stage (type 1) of that
    sub-step. Offset 0, type 1 means now (before this sub-step's jumps), at its own
    reset cell, into the current state ``p[p0 ..]``."""
    for e in range(stencil_count[q, kind]):
        w = stencil_weight[q, kind, e] * mass
        offset = stencil_offset[q, kind, e]
        if offset == 0:
            _reinject(p, p0 + stencil_cell[q, kind, e], stencil_frac[q, kind, e], w)
        elif stencil_type[q, kind, e] == 0:
            pipe_start[base + (head + offset) % length] += w
        else:
            pipe_mid[base + (head + offset) % length] += w


@njit(cache=True)
def _connections_by_post(post, num_pops):
    """Connection indices grouped by target population, in their original order, and
    each population's slice of them."""
    num_conns = post.shape[0]
    by_post = np.zeros(max(num_conns, 1), dtype=np.int64)
    by_post_offset = np.zeros(num_pops + 1, dtype=np.int64)
    for c in range(num_conns):
        by_post_offset[post[c] + 1] += 1
    for q in range(num_pops):
        by_post_offset[q + 1] += by_post_offset[q]
    filled = by_post_offset[:num_pops].copy()
    for c in range(num_conns):
        by_post[filled[post[c]]] = c
        filled[post[c]] += 1
    return by_post, by_post_offset


@njit(cache=True)
def _departure_runs(pops, faces, total):
    """Departure cells as runs of constant offset (population q's at offset[q] + 2 q); a
    population whose flow has many short runs uses the per-face gather instead
    (``num_runs`` 0)."""
    num_pops = pops.mode.shape[0]
    run_start = np.zeros(total + 2 * num_pops, dtype=np.int64)
    run_offset = np.zeros(total + 2 * num_pops, dtype=np.int64)
    num_runs = np.zeros(num_pops, dtype=np.int64)
    for q in range(num_pops):
        lo = pops.offset[q]
        n = pops.offset[q + 1] - lo
        if pops.mode[q] != MODE_REMAP:
            continue
        starts = run_start[lo + 2 * q:lo + 2 * q + n + 1]
        offsets = run_offset[lo + 2 * q:lo + 2 * q + n + 1]
        count = departure_runs(faces.departure_cell[lo + q:lo + q + n + 1], starts, offsets)
        if count * MIN_RUN_LENGTH <= n:
            num_runs[q] = count
    return run_start, run_offset, num_runs


@njit(cache=True)
def _workspace(mass, pops, faces, conns):
    """The scratch arrays of one call. ``state``: every population's masses, then a
    scratch region that the out-of-place stages alternate with (one array, so that
    swapping the two is swapping offsets)."""
    num_pops = pops.mode.shape[0]
    num_conns = conns.post.shape[0]
    max_cells = 0
    for q in range(num_pops):
        max_cells = max(max_cells, pops.offset[q + 1] - pops.offset[q])
    total = mass.shape[0]
    state = np.empty(total + max_cells)
    for i in range(total):
        state[i] = mass[i]
    rows = max(num_conns, 1)
    by_post, by_post_offset = _connections_by_post(conns.post, num_pops)
    run_start, run_offset, num_runs = _departure_runs(pops, faces, total)
    return Workspace(
        state, np.zeros(max_cells), np.zeros(max_cells), np.zeros(max_cells + 1),
        np.zeros(max_cells + 1), np.zeros(max_cells + 1), np.zeros(max_cells + 1),
        np.zeros(max_cells + 1), np.zeros(max_cells), np.zeros(max_cells),
        np.zeros(max_cells),
        # Poisson weights per connection (row c at c * MAX_TERMS), for the lam they
        # were made for
        np.zeros(rows * MAX_TERMS), np.zeros(rows, dtype=np.int64), np.full(rows, -1.0),
        np.zeros(2 * MAX_TERMS),
        np.zeros(rows), np.ones(rows), np.zeros(rows), np.zeros(MAX_TERMS),
        np.zeros(rows), by_post, by_post_offset, run_start, run_offset, num_runs)


@njit(cache=True)
def advance(step_begin, step_end, st, mass, pops, faces, refr, conns, out):
    """Advance steps ``step_begin .. step_end - 1`` in place (``mass``, the ring buffers
    and cursors, ``out``); see the module docstring and the named tuples
    :class:`Stepping`, :class:`Populations`, :class:`Faces`, :class:`Refractory`,
    :class:`Connections` and :class:`Outputs` for the arguments.

    The time loop stays one function on purpose: its stages address the unpacked arrays
    directly. Split into inlined functions taking the named tuples it ran 35 % slower
    (1000-cell LIF: 28 instead of 20.5 ms CPU per simulated second), as passing or
    taking a member of a tuple of arrays costs reference-count updates per sub-step.
    """
    n_sub, dt_sub, scheme, tail = st
    (pop_offset, pop_mode, pop_dx, pop_diffusion, reset_cell, reset_frac_hi,
     immediate_reset) = pops
    departure_cell, departure_frac, departure_quad, face_velocity = faces
    (pipe_start, pipe_mid, pipe_offset, pipe_head, stencil_count, stencil_offset,
     stencil_type, stencil_weight, stencil_cell, stencil_frac) = refr
    (conn_post, conn_kind, conn_shift, conn_scale, conn_weight, conn_rate, conn_pre,
     conn_n_syn, lag_offset, lag_weight, history, history_cursor) = conns
    rates_out, refractory_out, record_steps, record_next, record_out = out
    (state, slopes, work, cumulative, face_flux, to_right, to_left, velocity, work_c,
     work_d, work_old, weights, weight_count, weight_lam, jump_scratch, mix_shift,
     mix_scale, mix_prob, mix_weights, rate_now, by_post, by_post_offset, run_start,
     run_offset, num_runs) = _workspace(mass, pops, faces, conns)
    num_pops = pop_mode.shape[0]
    num_conns = conn_post.shape[0]
    total = mass.shape[0]
    step_length = n_sub * dt_sub
    history_length = history.shape[1]
    coupled = False
    for c in range(num_conns):
        if conn_pre[c] >= 0:
            coupled = True

    for step in range(step_begin, step_end + 1):
        while record_next[0] < record_steps.shape[0] and record_steps[record_next[0]] == step:
            r = record_next[0]
            for q in range(num_pops):
                for i in range(pop_offset[q], pop_offset[q + 1]):
                    record_out[r, i] = state[i] / pop_dx[q]
            record_next[0] += 1
        if step == step_end:
            break
        for q in range(num_pops):
            rates_out[q, step] = 0.0
        for _ in range(n_sub):
            cursor = history_cursor[0]
            for c in range(num_conns):
                pre = conn_pre[c]
                if pre < 0:
                    rate_now[c] = conn_rate[c, step]
                    continue
                # explicit coupling: lags >= 1 sub-step, so the order of the populations
                # within a sub-step does not matter
                seen = 0.0
                for e in range(lag_offset[c], lag_offset[c + 1]):
                    lag = e - lag_offset[c] + 1
                    seen += lag_weight[e] * history[pre, (cursor - lag) % history_length]
                rate_now[c] = conn_n_syn[c] * seen
            for q in range(num_pops):
                lo = pop_offset[q]
                n = pop_offset[q + 1] - lo
                # the current masses are state[c0:c0 + n]; the next stage writes
                # state[x0:x0 + n] (the scratch region, or back home)
                c0 = lo
                x0 = total
                faces = lo + q
                base = pipe_offset[q]
                length = pipe_offset[q + 1] - base
                head = pipe_head[q]
                reset = reset_cell[q]
                reset_hi = reset_frac_hi[q]
                fired = 0.0
                # 0. refractory mass due at the start of this sub-step
                _reinject(state, c0 + reset, reset_hi, pipe_start[base + head])
                pipe_start[base + head] = 0.0
                # 1. deterministic transport
                if pop_mode[q] == MODE_REMAP:
                    _slopes_at(state, c0, n, slopes, scheme)
                    if num_runs[q] > 0:
                        crossed = _remap_runs_at(state, c0, n, slopes, run_start, run_offset,
                                                 lo + 2 * q, num_runs[q], departure_frac,
                                                 departure_quad, faces, cumulative,
                                                 face_flux, state, x0)
                    else:
                        crossed = remap_flux_form_into(
                            state[c0:c0 + n], slopes[:n], departure_cell[faces:faces + n + 1],
                            departure_frac[faces:faces + n + 1],
                            departure_quad[faces:faces + n + 1], cumulative[:n + 1],
                            face_flux[:n + 1], state[x0:x0 + n])
                    c0, x0 = x0, c0
                    kind = 0
                else:
                    drive = 0.0
                    diffusion = pop_diffusion[q]
                    for e in range(by_post_offset[q], by_post_offset[q + 1]):
                        c = by_post[e]
                        if conn_kind[c] == INPUT_DIFFUSION:
                            s = rate_now[c]
                            drive += s * conn_weight[c]
                            diffusion += 0.5 * s * conn_weight[c] * conn_weight[c]
                    for j in range(n + 1):
                        velocity[j] = face_velocity[faces + j] + drive
                    sg_coefficients(velocity[:n + 1], diffusion, pop_dx[q],
                                    to_right[:n + 1], to_left[:n + 1])
                    crossed = sg_implicit_step(state[c0:c0 + n], to_right[:n + 1],
                                               to_left[:n + 1], dt_sub, work_c[:n],
                                               work_d[:n], work_old[:n])
                    kind = 2
                fired += crossed
                _schedule(state, c0, q, kind, crossed, head, length, base, pipe_start,
                          pipe_mid, stencil_count, stencil_offset, stencil_type,
                          stencil_weight, stencil_cell, stencil_frac)
                # refractory mass due before this sub-step's jumps
                _reinject(state, c0 + reset, reset_hi, pipe_mid[base + head])
                pipe_mid[base + head] = 0.0
                # 2. jump inputs. Several active inputs: the exact mixture of their
                # events in random order (one input after the other would let all
                # excitation of a sub-step act before any inhibition)
                num_active = INT0
                total_lam = 0.0
                affine = False
                for e in range(by_post_offset[q], by_post_offset[q + 1]):
                    c = by_post[e]
                    if conn_kind[c] == INPUT_JUMP and rate_now[c] > 0.0:
                        lam = rate_now[c] * dt_sub
                        total_lam += lam
                        if conn_scale[c] != 1.0:
                            affine = True
                        # inputs with the same one-event map are one Poisson input
                        same = -1
                        for a in range(num_active):
                            if mix_shift[a] == conn_shift[c] and mix_scale[a] == conn_scale[c]:
                                same = a
                        if same >= 0:
                            mix_prob[same] += lam
                            continue
                        mix_shift[num_active] = conn_shift[c]
                        mix_scale[num_active] = conn_scale[c]
                        mix_prob[num_active] = lam
                        num_active += 1
                if num_active >= 2 or affine:
                    for e in range(num_active):
                        mix_prob[e] /= total_lam
                    count = poisson_weights(total_lam, mix_weights, tail)
                    crossed = mixture_jump(state[c0:c0 + n], slopes[:n], mix_shift,
                                           mix_scale, mix_prob, num_active, mix_weights,
                                           count, state[x0:x0 + n], work[:n], scheme,
                                           immediate_reset[q], reset, reset_hi)
                    c0, x0 = x0, c0
                    if not immediate_reset[q]:
                        _schedule(state, c0, q, 1, crossed, head, length, base, pipe_start,
                                  pipe_mid, stencil_count, stencil_offset, stencil_type,
                                  stencil_weight, stencil_cell, stencil_frac)
                    fired += crossed
                for e in range(by_post_offset[q], by_post_offset[q + 1]):
                    c = by_post[e]
                    if conn_kind[c] != INPUT_JUMP or num_active >= 2 or affine:
                        continue
                    lam = rate_now[c] * dt_sub
                    if lam <= 0.0:
                        continue
                    w0 = c * MAX_TERMS
                    if lam != weight_lam[c]:
                        weight_count[c] = poisson_weights(lam, weights[w0:w0 + MAX_TERMS],
                                                          tail)
                        weight_lam[c] = lam
                    count = weight_count[c]
                    shift = conn_shift[c]
                    m = int(round(shift))
                    whole = abs(shift - m) < 1e-9
                    if immediate_reset[q]:
                        # no refractory period: later events act again after the reset
                        if whole:
                            crossed = _compound_whole_reset_at(state, c0, n, m, weights, w0,
                                                               count, state, x0, reset,
                                                               reset_hi, jump_scratch)
                        else:
                            # the one-input Poisson mixture (the mix_* rows are free here)
                            mix_shift[0] = shift
                            mix_scale[0] = 1.0
                            mix_prob[0] = 1.0
                            crossed = mixture_jump(
                                state[c0:c0 + n], slopes[:n], mix_shift, mix_scale, mix_prob,
                                INT1, weights[w0:w0 + MAX_TERMS], count, state[x0:x0 + n],
                                work[:n], scheme, TRUE, reset, reset_hi)
                        c0, x0 = x0, c0
                    else:
                        if whole:
                            crossed = _compound_whole_at(state, c0, n, m, weights, w0, count,
                                                         state, x0)
                        else:
                            if scheme != SCHEME_UPWIND:
                                limited_slopes(state[c0:c0 + n], slopes[:n], scheme)
                            crossed = compound_jump(state[c0:c0 + n], slopes[:n], shift,
                                                    weights[w0:w0 + MAX_TERMS], count,
                                                    state[x0:x0 + n])
                        c0, x0 = x0, c0
                        _schedule(state, c0, q, 1, crossed, head, length, base, pipe_start,
                                  pipe_mid, stencil_count, stencil_offset, stencil_type,
                                  stencil_weight, stencil_cell, stencil_frac)
                    fired += crossed
                # flush masses below TINY to 0 (copying back home from scratch after an
                # odd number of out-of-place stages)
                home = np.uint64(lo)
                source = np.uint64(c0)
                for i in range(np.uint64(n)):
                    value = state[source + i]
                    state[home + i] = value if value >= TINY else 0.0
                pipe_head[q] = (head + 1) % length
                rates_out[q, step] += fired / step_length
                if coupled:
                    history[q, cursor] = fired / dt_sub
            history_cursor[0] = (cursor + 1) % history_length
        for q in range(num_pops):
            pending = 0.0
            for i in range(pipe_offset[q], pipe_offset[q + 1]):
                pending += pipe_start[i] + pipe_mid[i]
            refractory_out[q, step] = pending
    for i in range(total):
        mass[i] = state[i]
