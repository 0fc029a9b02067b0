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
(``compound_jump_with_reset``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .transport import (
    SCHEME_UPWIND,
    compound_jump,
    compound_jump_with_reset,
    limited_slopes,
    poisson_weights,
    remap_flux_form,
    sg_coefficients,
    sg_implicit_step,
)

__all__ = ["advance", "MODE_REMAP", "MODE_DIFFUSION", "INPUT_JUMP", "INPUT_DIFFUSION"]

MODE_REMAP = 0
MODE_DIFFUSION = 1
INPUT_JUMP = 0
INPUT_DIFFUSION = 1


@njit(cache=True)
def _reinject(p, cell, frac_hi, mass):
    p[cell] += (1.0 - frac_hi) * mass
    if frac_hi > 0.0:
        p[cell + 1] += frac_hi * mass


@njit(cache=True)
def _schedule(p, q, kind, mass, head, length, base, pipe_start, pipe_mid,
              stencil_count, stencil_offset, stencil_type, stencil_weight, stencil_cell,
              stencil_frac):
    """Distribute ``mass`` that crossed threshold over its release points.

    Entry ``e`` of population ``q``'s stencil for this ``kind`` (0: transport, 1: jumps,
    2: implicit diffusion step) releases ``stencil_weight`` of it ``stencil_offset``
    sub-steps on, at the start (type 0) or before the jump stage (type 1) of that
    sub-step. Offset 0, type 1 means now (before this sub-step's jumps), at its own
    reset cell."""
    for e in range(stencil_count[q, kind]):
        w = stencil_weight[q, kind, e] * mass
        offset = stencil_offset[q, kind, e]
        if offset == 0:
            _reinject(p, stencil_cell[q, kind, e], stencil_frac[q, kind, e], w)
        elif stencil_type[q, kind, e] == 0:
            pipe_start[base + (head + offset) % length] += w
        else:
            pipe_mid[base + (head + offset) % length] += w


@njit(cache=True)
def advance(step_begin, step_end, n_sub, dt_sub, scheme, tail,
            mass, pop_offset, pop_mode, pop_dx,
            departure_cell, departure_frac, departure_quad, face_velocity,
            reset_cell, reset_frac_hi, immediate_reset,
            pipe_start, pipe_mid, pipe_offset, pipe_head,
            stencil_count, stencil_offset, stencil_type, stencil_weight, stencil_cell,
            stencil_frac,
            conn_post, conn_kind, conn_shift, conn_weight, conn_rate,
            rates_out, refractory_out,
            record_steps, record_next, record_out):
    """Advance steps ``step_begin .. step_end - 1``; see the module docstring.

    Parameters are plain arrays (shapes by population count P, connection count C, total
    cells M): ``mass`` (M,), ``pop_offset`` (P+1,), ``pop_mode``/``pop_dx`` (P,);
    face arrays (M+P,) (population p's faces start at ``pop_offset[p] + p``): the
    departure points of the faces over one sub-step as ``departure_cell``,
    ``departure_frac``, ``departure_quad`` (see ``transport.departure_table``) and the
    deterministic drift ``face_velocity``; the reset cell and fraction into the next
    cell (P,); ``immediate_reset`` (P,) selects in-step reset for jumps (no refractory
    period); refractory ring buffers ``pipe_start``/``pipe_mid`` with ``pipe_offset``
    (P+1,) and ring position ``pipe_head`` (P,); release stencils (P, 3, 3) per firing
    kind (see ``_schedule``); connection arrays (C,) and per-step event rates
    ``conn_rate`` (C, n_steps) in Hz; outputs ``rates_out``/``refractory_out``
    (P, n_steps); density snapshots ``record_out`` (R, M) taken at the start of the
    steps listed in ``record_steps`` (``record_next`` is a 1-element cursor).
    """
    num_pops = pop_mode.shape[0]
    num_conns = conn_post.shape[0]
    max_cells = 0
    for q in range(num_pops):
        max_cells = max(max_cells, pop_offset[q + 1] - pop_offset[q])
    slopes = np.zeros(max_cells)
    scratch = np.zeros(max_cells)
    work = np.zeros(max_cells)
    cumulative = np.zeros(max_cells + 1)
    face_flux = np.zeros(max_cells + 1)
    to_right = np.zeros(max_cells + 1)
    to_left = np.zeros(max_cells + 1)
    velocity = np.zeros(max_cells + 1)
    work_c = np.zeros(max_cells)
    work_d = np.zeros(max_cells)
    work_old = np.zeros(max_cells)
    weights = np.zeros(512)
    step_length = n_sub * dt_sub

    for step in range(step_begin, step_end + 1):
        while record_next[0] < record_steps.shape[0] and record_steps[record_next[0]] == step:
            r = record_next[0]
            for q in range(num_pops):
                for i in range(pop_offset[q], pop_offset[q + 1]):
                    record_out[r, i] = mass[i] / pop_dx[q]
            record_next[0] += 1
        if step == step_end:
            break
        for q in range(num_pops):
            rates_out[q, step] = 0.0
        for _ in range(n_sub):
            for q in range(num_pops):
                lo = pop_offset[q]
                n = pop_offset[q + 1] - lo
                p = mass[lo:lo + n]
                g = slopes[:n]
                out = scratch[:n]
                faces = lo + q
                base = pipe_offset[q]
                length = pipe_offset[q + 1] - base
                head = pipe_head[q]
                fired = 0.0
                # 0. refractory mass due at the start of this sub-step
                _reinject(p, reset_cell[q], reset_frac_hi[q], pipe_start[base + head])
                pipe_start[base + head] = 0.0
                # 1. deterministic transport
                if pop_mode[q] == MODE_REMAP:
                    limited_slopes(p, g, scheme)
                    crossed = remap_flux_form(p, g, departure_cell[faces:faces + n + 1],
                                              departure_frac[faces:faces + n + 1],
                                              departure_quad[faces:faces + n + 1],
                                              cumulative[:n + 1], face_flux[:n + 1])
                    kind = 0
                else:
                    drive = 0.0
                    diffusion = 0.0
                    for c in range(num_conns):
                        if conn_post[c] == q and conn_kind[c] == INPUT_DIFFUSION:
                            s = conn_rate[c, step]
                            drive += s * conn_weight[c]
                            diffusion += 0.5 * s * conn_weight[c] * conn_weight[c]
                    for j in range(n + 1):
                        velocity[j] = face_velocity[faces + j] + drive
                    sg_coefficients(velocity[:n + 1], diffusion, pop_dx[q],
                                    to_right[:n + 1], to_left[:n + 1])
                    crossed = sg_implicit_step(p, to_right[:n + 1], to_left[:n + 1],
                                               dt_sub, work_c[:n], work_d[:n],
                                               work_old[:n])
                    kind = 2
                fired += crossed
                _schedule(p, q, kind, crossed, head, length, base, pipe_start, pipe_mid,
                          stencil_count, stencil_offset, stencil_type, stencil_weight,
                          stencil_cell, stencil_frac)
                # refractory mass due before this sub-step's jumps
                _reinject(p, reset_cell[q], reset_frac_hi[q], pipe_mid[base + head])
                pipe_mid[base + head] = 0.0
                # 2. jump inputs
                for c in range(num_conns):
                    if conn_post[c] != q or conn_kind[c] != INPUT_JUMP:
                        continue
                    lam = conn_rate[c, step] * dt_sub
                    if lam <= 0.0:
                        continue
                    count = poisson_weights(lam, weights, tail)
                    shift = conn_shift[c]
                    if immediate_reset[q]:
                        # no refractory period: later events act again after the reset
                        crossed = compound_jump_with_reset(p, g, shift, weights, count, out,
                                                           work[:n], scheme, reset_cell[q],
                                                           reset_frac_hi[q])
                    else:
                        if scheme != SCHEME_UPWIND and abs(shift - round(shift)) >= 1e-9:
                            limited_slopes(p, g, scheme)
                        crossed = compound_jump(p, g, shift, weights, count, out)
                        _schedule(p, q, 1, crossed, head, length, base, pipe_start,
                                  pipe_mid, stencil_count, stencil_offset, stencil_type,
                                  stencil_weight, stencil_cell, stencil_frac)
                    fired += crossed
                    p[:] = out
                pipe_head[q] = (head + 1) % length
                rates_out[q, step] += fired / step_length
        for q in range(num_pops):
            pending = 0.0
            for i in range(pipe_offset[q], pipe_offset[q + 1]):
                pending += pipe_start[i] + pipe_mid[i]
            refractory_out[q, step] = pending
