"""Compiled kernels that had no naive numpy twin, each against one on random inputs: the
whole-cell jump paths of the fused stepper (with and without in-step reset), the run-wise
flux-form remap, the conductance remap ``remap_affine``, the Poisson jump mixture and the
N-D fractional jump ``nd.jump_fractional``. The private ``_at`` kernels address a
population inside larger arrays by offsets, so they are called here at nonzero offsets
with sentinels around the region they may write."""

from __future__ import annotations

import numpy as np
import pytest

from popdens.kernels import transport as tk
from popdens.kernels.jumps import mixture_jump, remap_affine
from popdens.kernels.nd import (
    TOP_ABSORB,
    TOP_FIRE,
    TOP_REFLECT,
    jump_fractional,
    jump_maps,
    jump_mixture,
)

from .. import reference as ref

SENTINEL = -7.0


def random_masses(rng, n, zeros=0.2):
    p = rng.random(n) ** 3
    p[rng.random(n) < zeros] = 0.0
    return p / p.sum()


def random_weights(rng, count):
    w = rng.random(count)
    return w / w.sum()


def embedded(values, before, after, fill=SENTINEL):
    """``values`` inside a larger array: ``before`` fill values in front, ``after`` behind."""
    return np.concatenate([np.full(before, fill), values, np.full(after, fill)])


# --- naive twins -----------------------------------------------------------------------------
def naive_whole_shift(p, m):
    """Shift by ``m`` whole cells: past the top is returned as crossed, below the bottom
    piles into cell 0."""
    n = p.size
    out = np.zeros(n)
    target = np.arange(n) + m
    inside = (target >= 0) & (target < n)
    np.add.at(out, target[inside], p[inside])
    out[0] += p[target < 0].sum()
    return out, p[target >= n].sum()


def naive_compound_whole(p, m, weights):
    """``sum_k weights[k] S^k p`` and the mass moved past the top, term by term."""
    out = np.zeros(p.size)
    fired = 0.0
    for k, w in enumerate(weights):
        moved, crossed = naive_whole_shift(p, k * m)
        out += w * moved
        fired += w * crossed
    return out, fired


def naive_compound_whole_reset(p, m, weights, reset_cell, frac_hi):
    """The same with in-step reset, event by event: what crosses at an event goes back to
    the reset point at once and moves with the later events; each crossing counts once."""
    reset = np.zeros(p.size)
    reset[reset_cell] += 1.0 - frac_hi
    if frac_hi > 0.0:
        reset[reset_cell + 1] += frac_hi
    state = p.copy()
    out = weights[0] * p
    crossed_so_far = fired = 0.0
    for w in weights[1:]:
        state, crossed = naive_whole_shift(state, m)
        state = state + crossed * reset
        crossed_so_far += crossed
        out = out + w * state
        fired += w * crossed_so_far
    return out, fired


# --- whole-cell jumps of one input (transport._compound_*_at) ------------------------------
WHOLE_CASES = [(3, 6), (1, 9), (5, 2), (0, 7), (-2, 8), (-1, 3), (7, 13), (45, 4), (-45, 5)]


@pytest.mark.parametrize("m, count", WHOLE_CASES)
def test_compound_whole_at_matches_term_by_term_twin(m, count):
    rng = np.random.default_rng([100, m + 50, count])
    n, p0, o0, w0 = 40, 5, 3, 2
    p = random_masses(rng, n)
    weights = random_weights(rng, count)
    src = embedded(p, p0, 4)
    out = np.full(n + o0 + 6, SENTINEL)
    fired = tk._compound_whole_at(src, p0, n, m, embedded(weights, w0, 1), w0, count, out, o0)
    expected, expected_fired = naive_compound_whole(p, m, weights)
    # round-off: the same weighted sums in another order (measured 1.1e-16)
    np.testing.assert_allclose(out[o0:o0 + n], expected, rtol=0, atol=1e-15)
    assert fired == pytest.approx(expected_fired, rel=1e-13, abs=1e-16)
    assert np.all(out[:o0] == SENTINEL) and np.all(out[o0 + n:] == SENTINEL)
    np.testing.assert_array_equal(src, embedded(p, p0, 4))    # input untouched
    if m <= 0:
        assert fired == 0.0
    # conservation of masses summing to 1: round-off
    assert out[o0:o0 + n].sum() + fired == pytest.approx(1.0, abs=1e-14)


@pytest.mark.parametrize("m, count", WHOLE_CASES)
def test_compound_shift_whole_at_overwrites_out(m, count):
    """``out`` is overwritten, not added to, whatever it held."""
    rng = np.random.default_rng([200, m + 50, count])
    n = 25
    p = random_masses(rng, n)
    weights = random_weights(rng, count)
    out = rng.random(n) * 1e3
    tk._compound_shift_whole_at(p, 0, n, m, weights, 0, count, out, 0)
    # round-off: the same weighted sums in another order (measured 0)
    np.testing.assert_allclose(out, naive_compound_whole(p, m, weights)[0], rtol=0,
                               atol=1e-15)


@pytest.mark.parametrize("m, count", [(3, 6), (1, 12), (4, 2), (6, 9), (2, 30), (0, 5),
                                      (-3, 6)])
@pytest.mark.parametrize("reset_cell, frac_hi", [(10, 0.0), (10, 0.35), (32, 0.6),
                                                 (38, 0.5), (0, 0.0)])
def test_compound_whole_reset_at_matches_event_by_event_twin(m, count, reset_cell, frac_hi):
    rng = np.random.default_rng([300, m + 50, count, reset_cell])
    n, p0, o0, w0 = 40, 6, 2, 3
    p = random_masses(rng, n)
    weights = random_weights(rng, count)
    src = embedded(p, p0, 3)
    out = np.full(n + o0 + 5, SENTINEL)
    scratch = np.zeros(2 * count)
    fired = tk._compound_whole_reset_at(src, p0, n, m, embedded(weights, w0, 2), w0, count,
                                        out, o0, reset_cell, frac_hi, scratch)
    expected, expected_fired = naive_compound_whole_reset(p, m, weights, reset_cell, frac_hi)
    # round-off: the same weighted sums, reset mass spread (measured 5.6e-17)
    np.testing.assert_allclose(out[o0:o0 + n], expected, rtol=0, atol=1e-14)
    assert fired == pytest.approx(expected_fired, rel=1e-12, abs=1e-16)
    assert np.all(out[:o0] == SENTINEL) and np.all(out[o0 + n:] == SENTINEL)
    # every crossing is already back at the reset point: nothing leaves
    assert out[o0:o0 + n].sum() == pytest.approx(1.0, abs=1e-14)


# --- flux-form remap, per face and run-wise -------------------------------------------------
def smooth_departures(n, amplitude, rng):
    """A monotone departure map whose offset ``d(j) - j`` sweeps from about ``-amplitude``
    to ``+amplitude`` cells (runs of every offset class), clipped to the grid."""
    j = np.arange(n + 1, dtype=float)
    phase = rng.random() * 2 * np.pi
    departure = j + amplitude * np.sin(2 * np.pi * j / n + phase)
    departure[0] = 0.0
    return np.clip(departure, 0.0, float(n))


@pytest.mark.parametrize("amplitude", [0.4, 2.5, 9.0, 30.0])
@pytest.mark.parametrize("scheme", [0, 1, 2])
def test_remap_runs_at_matches_naive_remap(amplitude, scheme):
    rng = np.random.default_rng([400, int(10 * amplitude), scheme])
    n, s0, d0, r0, f0 = 300, 4, 7, 3, 5
    p = random_masses(rng, n)
    g = ref.slopes(p, scheme)
    departure = smooth_departures(n, amplitude, rng)
    cell = np.zeros(n + 1, dtype=np.int64)
    frac, quad = np.zeros(n + 1), np.zeros(n + 1)
    tk.departure_table(departure, n, cell, frac, quad)
    starts = np.zeros(n + 1, dtype=np.int64)
    offsets = np.zeros(n, dtype=np.int64)
    runs = tk.departure_runs(cell, starts, offsets)
    assert 1 <= runs <= n
    expected, expected_out = ref.remap(p, g, departure)
    src = embedded(p, s0, 2)
    dst = np.full(n + d0 + 3, SENTINEL)
    out = tk._remap_runs_at(src, s0, n, g, embedded(starts, r0, 0, 0).astype(np.int64),
                            embedded(offsets, r0, 0, 0).astype(np.int64), r0, runs,
                            embedded(frac, f0, 0), embedded(quad, f0, 0), f0,
                            np.zeros(n + 1), np.zeros(n + 1), dst, d0)
    # round-off: the same partial-cell integrals (measured 2.8e-16)
    np.testing.assert_allclose(dst[d0:d0 + n], expected, rtol=0, atol=1e-14)
    assert out == pytest.approx(expected_out, abs=1e-14)
    assert np.all(dst[:d0] == SENTINEL) and np.all(dst[d0 + n:] == SENTINEL)
    # the per-face form gives the same, in place
    q = p.copy()
    out2 = tk.remap_flux_form_into(q, g, cell, frac, quad, np.zeros(n + 1), np.zeros(n + 1),
                                   q)
    # the in-place form: the same integrals (measured 3.6e-16)
    np.testing.assert_allclose(q, expected, rtol=0, atol=1e-14)
    assert out2 == pytest.approx(expected_out, abs=1e-14)


def test_departure_runs_split_faces_by_offset():
    cell = np.array([0, 1, 2, 4, 5, 6, 6, 7, 7, 9], dtype=np.int64)   # faces 0 .. 9
    starts = np.zeros(10, dtype=np.int64)
    offsets = np.zeros(9, dtype=np.int64)
    runs = tk.departure_runs(cell, starts, offsets)
    offset = cell[1:] - np.arange(1, 10)
    change = np.flatnonzero(np.diff(offset)) + 2
    np.testing.assert_array_equal(starts[:runs + 1], np.r_[1, change, 10])
    np.testing.assert_array_equal(offsets[:runs], offset[np.r_[1, change] - 1])


# --- conductance remap (jumps.remap_affine) -------------------------------------------------
@pytest.mark.parametrize("scale, offset", [(0.8, 4.8), (0.5, 0.0), (0.95, -3.2), (1.0, 2.6),
                                           (1.0, -1.4), (1.3, -2.0), (0.2, 35.0)])
@pytest.mark.parametrize("scheme", [0, 1])
def test_remap_affine_matches_naive_remap(scale, offset, scheme):
    """Cell ``j`` gets the reconstructed mass of its preimage ``[(j - o)/s, (j + 1 - o)/s]``;
    below the lower face piles into cell 0; past the upper face is returned."""
    rng = np.random.default_rng([500, int(100 * scale), int(10 * offset) + 500, scheme])
    n, weight = 30, 0.7
    p = random_masses(rng, n)
    g = ref.slopes(p, scheme)
    before = rng.random(n)
    out = before.copy()
    fired = remap_affine(p, g, scale, offset, out, weight)
    moved, over = ref.remap(p, g, (np.arange(n + 1) - offset) / scale)
    # round-off: one affine remap of O(1) masses (measured 4.3e-16)
    np.testing.assert_allclose(out - before, weight * moved, rtol=0, atol=1e-14)
    assert fired == pytest.approx(weight * over, abs=1e-14)
    # conservation of the remapped weight: round-off (measured 2.2e-16)
    assert (out - before).sum() + fired == pytest.approx(weight, abs=1e-14)


# --- the Poisson jump mixture (jumps.mixture_jump) ------------------------------------------
@pytest.mark.parametrize("shifts, lams", [([3.0, -2.0], [0.6, 0.3]), ([2.4, -1.7], [0.9, 0.5]),
                                          ([4.0], [1.2]), ([1.5, 2.5, -3.0], [0.2, 0.4, 0.3])])
@pytest.mark.parametrize("immediate", [False, True])
def test_mixture_jump_matches_horner_twin(shifts, lams, immediate):
    rng = np.random.default_rng([600, len(shifts), int(10 * lams[0]), immediate])
    n, scheme, reset_cell, frac_hi = 40, 1, 12, 0.3
    p = random_masses(rng, n)
    kmax = 60
    total = sum(lams)
    expected_weights = ref.poisson.pmf(np.arange(kmax), total)
    weights = expected_weights.copy()
    weights[-1] += 1.0 - weights.sum()
    num = len(shifts)
    out, g, work = np.zeros(n), np.zeros(n), np.zeros(n)
    fired = mixture_jump(p, g, np.array(shifts), np.ones(num), np.array(lams) / total, num,
                         weights, kmax, out, work, scheme, immediate, reset_cell, frac_hi)
    reset = None
    if immediate:
        reset = np.zeros(n)
        reset[reset_cell], reset[reset_cell + 1] = 1.0 - frac_hi, frac_hi
    expected, expected_fired = ref.mixture_jump(p, shifts, lams, scheme, reset, kmax=kmax)
    # both sum the same 60 Poisson terms (Horner vs direct): round-off (measured 9.7e-17)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-13)
    assert fired == pytest.approx(expected_fired, abs=1e-13)


# --- the N-D jump mixture (nd.jump_mixture, nd.jump_maps) -----------------------------------
@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("shifts, lams", [([2.4, -1.7], [0.9, 0.5]),
                                          ([1.5, 3.0, -3.0], [0.2, 0.4, 0.3])])
def test_jump_mixture_matches_the_line_by_line_twin(axis, shifts, lams):
    """Every line along the axis gets the reference mixture (Horner with slopes per
    pass, crossed mass fired per line); empty lines stay empty."""
    rng = np.random.default_rng([800, axis, len(shifts)])
    shape = [3, 4, 5]
    n = 24
    shape[axis] = n
    p = rng.random(shape)
    p[p < 0.3] = 0.0
    np.moveaxis(p, axis, -1)[0, 0, :] = 0.0      # one empty line
    kmax = 60
    total = sum(lams)
    weights = ref.poisson.pmf(np.arange(kmax), total)
    weights[-1] += 1.0 - weights.sum()
    outer = int(np.prod(shape[:axis]))
    inner = int(np.prod(shape[axis + 1:]))
    dst = np.full(p.size, SENTINEL)
    fired = np.zeros(outer * inner)
    jump_mixture(p.ravel().copy(), dst, outer, n, inner, np.array(shifts),
                 np.ones(len(shifts)), np.array(lams) / total, len(shifts), weights, kmax, 1,
                 fired, np.zeros((4, n)))
    lines_in = np.moveaxis(p, axis, -1).reshape(-1, n)
    lines_out = np.moveaxis(dst.reshape(shape), axis, -1).reshape(-1, n)
    for line, (src, got) in enumerate(zip(lines_in, lines_out)):
        expected, expected_fired = ref.mixture_jump(src, shifts, lams, 1, kmax=kmax)
        # the 60 Poisson terms of the 1D twin test, per line: round-off (measured 1e-16)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-13)
        assert fired[line] == pytest.approx(expected_fired, abs=1e-13)
    assert np.all(lines_out[0] == 0.0) and fired[0] == 0.0


def test_jump_maps_merges_equal_maps_and_skips_silent_and_diffusion_inputs():
    shift = np.array([2.0, -1.5, 2.0, 0.7, 3.0])
    scale = np.array([1.0, 1.0, 1.0, 1.0, 0.9])
    rate = np.array([[100.0], [50.0], [300.0], [0.0], [40.0]])
    diffusion = np.array([0, 0, 0, 0, 1])
    merged = np.array([0, 1, 0, 3, 4])      # connection 2 has connection 0's map
    mix = np.zeros(5), np.ones(5), np.zeros(5)
    num, total = jump_maps(shift, scale, rate, diffusion, merged, 0, 1e-3, *mix)
    assert num == 2 and total == pytest.approx(0.45, abs=1e-15)
    np.testing.assert_array_equal(mix[0][:2], [2.0, -1.5])
    np.testing.assert_allclose(mix[2][:2], [0.4, 0.05], rtol=1e-15)


# --- N-D fractional jump (nd.jump_fractional) -----------------------------------------------
def naive_fractional_line(line, g, shift, weights, top_mode, bottom_absorb, watch_face):
    """One line: ``sum_k weights[k]`` x (the reconstruction moved by ``k shift`` cells),
    with the mass past the top fired, kept in the top cell or lost, and the mass below
    the bottom piled into cell 0 or lost; also the mass crossing ``watch_face`` upward."""
    n = line.size
    out = weights[0] * line
    fired = watched = 0.0
    for k in range(1, weights.size):
        s = k * shift
        moved, over = ref.remap(line, g, np.arange(n + 1) - s)
        if bottom_absorb:
            moved[0] -= ref.cumulative_mass(line, g, -s)     # [0, -s) lands below cell 0
        if top_mode == TOP_FIRE:
            fired += weights[k] * over
        elif top_mode == TOP_REFLECT:
            moved[-1] += over
        if s > 0.0 and watch_face > 0:
            watched += weights[k] * (ref.cumulative_mass(line, g, watch_face)
                                     - ref.cumulative_mass(line, g, watch_face - s))
        out = out + weights[k] * moved
    return out, fired, watched


@pytest.mark.parametrize("top_mode, bottom_absorb", [(TOP_FIRE, False), (TOP_REFLECT, False),
                                                     (TOP_ABSORB, True)])
@pytest.mark.parametrize("shift", [1.6, -2.3, 0.45, 6.7])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_jump_fractional_matches_line_by_line_twin(axis, shift, top_mode, bottom_absorb):
    rng = np.random.default_rng([700, int(10 * shift) + 100, axis, top_mode])
    shape = [4, 5, 6]
    n = 18
    shape[axis] = n
    p = rng.random(shape)
    p[p < 0.25] = 0.0
    lines_in = np.moveaxis(p, axis, -1).reshape(-1, n)
    slopes = np.stack([ref.slopes(line, 1) for line in lines_in])
    g = np.moveaxis(slopes.reshape(np.moveaxis(p, axis, -1).shape), -1, axis)
    outer = int(np.prod(shape[:axis]))
    inner = int(np.prod(shape[axis + 1:]))
    weights = np.array([0.45, 0.3, 0.15, 0.07, 0.03])
    flat = p.ravel().copy()
    dst = np.full(flat.size, SENTINEL)
    fired, watched = np.zeros(outer * inner), np.zeros(outer * inner)
    watch = 13
    jump_fractional(flat, dst, g.ravel().copy(), outer, n, inner, shift, weights,
                    weights.size, top_mode, bottom_absorb, fired, watch, watched)
    lines_out = np.moveaxis(dst.reshape(shape), axis, -1).reshape(-1, n)
    # lines in kernel order: line = o * inner + t, the order of moveaxis(.., axis, -1)
    total_kept = 0.0
    for line, (src, gl, got) in enumerate(zip(lines_in, slopes, lines_out)):
        expected, out_fired, out_watched = naive_fractional_line(
            src, gl, shift, weights, top_mode, bottom_absorb, watch)
        # round-off: the same reconstruction integrals per line (measured 1.8e-15)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-14)
        # the fired and watched masses: sums of the same integrals, the same round-off
        # (measured 1.3e-15 and 1.1e-15)
        assert fired[line] == pytest.approx(out_fired, abs=1e-14)
        assert watched[line] == pytest.approx(out_watched, abs=1e-14)
        total_kept += got.sum()
    if top_mode == TOP_REFLECT and not bottom_absorb:
        # conservation over 20 to 30 lines of O(1) masses: round-off (measured 2.3e-16 relative)
        assert total_kept == pytest.approx(flat.sum(), rel=1e-13)
    if top_mode == TOP_FIRE and not bottom_absorb:
        # conservation, fired mass included: round-off (measured 2.3e-16 relative)
        assert total_kept + fired.sum() == pytest.approx(flat.sum(), rel=1e-13)
