"""Jump stage of a population with several inputs: the exact Poisson mixture.

With several jump inputs (say excitation and inhibition) the events of a step arrive in
random order. Applying one input's propagator after the other would let every excitatory
event of the step act before any inhibitory one, which overestimates firing (measured:
5 % at 1.4 events per step). The exact propagator of the merged Poisson process of total
rate ``S = sum_c s_c`` is ``sum_k P(k; S dt) T'^k`` with the one-event map
``T' = sum_c (s_c / S) T_c``; it is evaluated by Horner's rule, one pass per event count.

A one-event map is a shift by a (real) number of cells for a current synapse, or the
affine contraction ``v -> v + w (E - v)`` toward the reversal potential ``E`` for a
conductance synapse; both are monotone, so each is a conservative remap: a target cell
receives the reconstructed mass of its preimage interval.
"""

from __future__ import annotations

from numba import njit

from .transport import limited_slopes, mass_between, shift_fractional, shift_integer

__all__ = ["mixture_jump", "remap_affine"]


@njit(cache=True)
def remap_affine(p, g, scale, offset, out, weight):
    """Add ``weight`` x ``p`` mapped through ``x -> scale x + offset`` (cell units,
    ``scale > 0``) to ``out``.

    Each target cell gathers the reconstructed mass of its preimage; mass mapped below the
    lower face stays in cell 0 (reflecting). Returns ``weight`` x the mass mapped past the
    upper face."""
    n = p.shape[0]
    lo = 0.0
    inverse = 1.0 / scale
    for j in range(n):
        hi = (j + 1 - offset) * inverse
        out[j] += weight * mass_between(p, g, lo, hi)
        lo = hi
    return weight * mass_between(p, g, lo, float(n))


@njit(cache=True)
def mixture_jump(p, g, shifts, scales, probabilities, num_inputs, weights, count, out,
                 work, scheme, immediate, reset_cell, reset_frac_hi):
    """``out = sum_k weights[k] T'^k p`` with ``T' = sum_c probabilities[c] T_c``.

    ``T_c`` moves mass by ``shifts[c]`` cells (any real) when ``scales[c] == 1``, else
    maps ``x -> scales[c] x + shifts[c]`` (cell units; conductance synapse). Mass
    crossing the upper face in an event is removed (refractory neurons ignore the rest
    of the step's events) or, with ``immediate``, put back at ``reset_cell`` (fraction
    ``reset_frac_hi`` into the next cell) so that later events act on it again.
    Returns the mass that crossed (each crossing once). ``g`` and ``work`` are scratch
    arrays of ``p``'s length."""
    n = p.shape[0]
    fractional = False
    for c in range(num_inputs):
        if abs(shifts[c] - round(shifts[c])) >= 1e-9 or scales[c] != 1.0:
            fractional = True
    for j in range(n):
        out[j] = weights[count - 1] * p[j]
    fired = 0.0
    for k in range(count - 2, -1, -1):
        for j in range(n):
            work[j] = 0.0
        if fractional:
            limited_slopes(out, g, scheme)
        crossed = 0.0
        for c in range(num_inputs):
            shift = shifts[c]
            m = int(round(shift))
            if scales[c] != 1.0:
                crossed += remap_affine(out, g, scales[c], shift, work, probabilities[c])
            elif abs(shift - m) < 1e-9:
                crossed += shift_integer(out, m, work, probabilities[c])
            else:
                crossed += shift_fractional(out, g, shift, work, probabilities[c])
        fired += crossed
        if immediate:
            work[reset_cell] += (1.0 - reset_frac_hi) * crossed
            if reset_frac_hi > 0.0:
                work[reset_cell + 1] += reset_frac_hi * crossed
        for j in range(n):
            out[j] = work[j] + weights[k] * p[j]
    return fired
