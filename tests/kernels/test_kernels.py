"""Every compiled kernel against its naive numpy twin (tests/reference.py)."""

import numpy as np
import pytest
from scipy.stats import poisson

import popdens as pd
from popdens.backends.density import POISSON_TAIL, prepare
from popdens.kernels import transport as tk

from .. import reference as ref

RNG = np.random.default_rng(12345)


def random_masses(n, rng=RNG):
    p = rng.random(n) ** 3
    p[rng.random(n) < 0.2] = 0.0
    return p / p.sum()


@pytest.mark.parametrize("scheme", [0, 1, 2])
def test_limited_slopes_match_reference_and_keep_profile_positive(scheme):
    p = random_masses(50)
    g = np.zeros_like(p)
    tk.limited_slopes(p, g, scheme)
    # round-off: the same limiter formula per cell; 1e-18 absorbs the zero cells
    np.testing.assert_allclose(g, ref.slopes(p, scheme), rtol=1e-14, atol=1e-18)
    assert np.all(np.abs(g) <= 2 * p + 1e-18)


@pytest.mark.parametrize("scheme", [0, 1])
def test_mass_between_matches_numerical_integral(scheme):
    p = random_masses(20)
    g = ref.slopes(p, scheme)
    for a, b in [(0.0, 20.0), (0.3, 0.7), (2.25, 7.5), (-3.0, 4.4), (19.1, 25.0), (5.0, 5.0)]:
        expect = ref.cumulative_mass(p, g, b) - ref.cumulative_mass(p, g, a)
        # round-off: at most three partial-cell terms of O(1/20) masses
        assert tk.mass_between(p, g, a, b) == pytest.approx(expect, rel=1e-12, abs=1e-16)


@pytest.mark.parametrize("scheme", [0, 1, 2])
def test_flux_form_remap_matches_reference(scheme):
    n = 40
    p = random_masses(n)
    g = ref.slopes(p, scheme)
    # a contracting, monotone map with departure points outside the grid at both ends
    departure = 5.0 + (np.arange(n + 1) - 5.0) * 1.37
    departure[0] = 0.0
    expect, expect_out = ref.remap(p, g, departure)
    cell = np.zeros(n + 1, dtype=np.int64)
    frac = np.zeros(n + 1)
    quad = np.zeros(n + 1)
    tk.departure_table(departure, n, cell, frac, quad)
    q = p.copy()
    out = tk.remap_flux_form_into(q, g, cell, frac, quad, np.zeros(n + 1), np.zeros(n + 1), q)
    # round-off: masses <= 1 moved by a few products per cell (masses sum to 1)
    np.testing.assert_allclose(q, expect, atol=1e-15)
    assert out == pytest.approx(expect_out, abs=1e-15)
    # conservation of masses summing to 1: round-off (measured 2.2e-16)
    assert q.sum() + out == pytest.approx(1.0, abs=1e-14)
    # the gather form gives the same
    gathered = np.zeros(n)
    out2 = tk.remap(p, g, departure, gathered, 1.0)
    # the gather form: same integrals, other order of summation (round-off)
    np.testing.assert_allclose(gathered, expect, atol=1e-15)
    assert out2 == pytest.approx(expect_out, abs=1e-15)


@pytest.mark.parametrize("shift", [3.0, -4.0, 2.37, -1.61, 0.4])
def test_shifts_match_reference(shift):
    n = 30
    p = random_masses(n)
    g = ref.slopes(p, 1)
    expect, expect_out = ref.remap(p, g, np.arange(n + 1) - shift)
    out = np.zeros(n)
    fired = tk.shift_fractional(p, g, shift, out, 1.0)
    # round-off: a few products per cell of masses summing to 1
    np.testing.assert_allclose(out, expect, atol=1e-15)
    assert fired == pytest.approx(expect_out, abs=1e-15)
    if shift == round(shift):
        out2 = np.zeros(n)
        fired2 = tk.shift_integer(p, int(shift), out2, 1.0)
        # the integer shift copies masses: round-off only from summing what fired
        np.testing.assert_allclose(out2, expect, atol=1e-15)
        # the fired mass: a sum of the copied masses, the same round-off (measured equal)
        assert fired2 == pytest.approx(expect_out, abs=1e-15)


@pytest.mark.parametrize("lam", [1e-4, 0.08, 1.0, 7.5])
def test_poisson_weights_are_poisson_and_sum_to_one(lam):
    w = np.zeros(512)
    count = tk.poisson_weights(lam, w, 1e-12)
    k = np.arange(count)
    # round-off of the recurrence lam^k / k! against scipy's pmf; the remainder is lumped
    np.testing.assert_allclose(w[:count - 1], poisson.pmf(k[:-1], lam), rtol=1e-12)
    assert w[:count].sum() == pytest.approx(1.0, abs=1e-15)
    # the truncation tail passed to the kernel (1e-12)
    assert poisson.sf(count - 1, lam) < 1e-12


@pytest.mark.parametrize("shift", [4.0, 2.6, -3.0])
def test_compound_jump_matches_reference(shift):
    n = 40
    p = random_masses(n)
    g = ref.slopes(p, 1)
    lam = 0.7
    w = np.zeros(512)
    count = tk.poisson_weights(lam, w, 1e-14)
    out = np.zeros(n)
    fired = tk.compound_jump(p, g, shift, w, count, out)
    expect, expect_fired = ref.compound_jump(p, g, shift, lam)
    # kernel tail cut at 1e-14 per term; the reference sums more terms: 1e-13 covers both
    np.testing.assert_allclose(out, expect, atol=1e-13)
    assert fired == pytest.approx(expect_fired, abs=1e-13)
    # conservation of masses summing to 1: round-off (measured 1.1e-16)
    assert out.sum() + fired == pytest.approx(1.0, abs=1e-14)


def test_bernoulli_is_finite_nonnegative_and_matches_its_twin():
    for x in [-800.0, -30.0, -1.0, -1e-12, 0.0, 1e-12, 1.0, 30.0, 800.0]:
        value = tk.bernoulli(x)
        assert np.isfinite(value) and value >= 0.0
        if abs(x) < 700:
            # both use x / expm1(x) here; the small-x branches agree to O(x^2) = 1e-24
            assert value == pytest.approx(ref.bernoulli(x) if x != 0 else 1.0, rel=1e-10)


def test_sg_implicit_step_matches_dense_solve():
    n = 25
    dx = 0.04
    p = random_masses(n)
    velocity = np.linspace(-2.0, 3.0, n + 1)
    diffusion = 0.05
    right = np.zeros(n + 1)
    left = np.zeros(n + 1)
    tk.sg_coefficients(velocity, diffusion, dx, right, left)
    q = p.copy()
    out = tk.sg_implicit_step(q, right, left, 0.01, np.zeros(n), np.zeros(n), np.zeros(n))
    expect, expect_out = ref.sg_step(p, velocity, diffusion, dx, 0.01)
    # round-off: tridiagonal (Thomas) solve vs dense LU of a well-conditioned 25x25 system
    np.testing.assert_allclose(q, expect, rtol=1e-12, atol=1e-16)
    assert out == pytest.approx(expect_out, rel=1e-12)
    # conservation of masses summing to 1: round-off (measured 0)
    assert q.sum() + out == pytest.approx(1.0, abs=1e-14)
    assert np.all(q >= 0)


def test_sg_zero_diffusion_is_upwind():
    n = 10
    velocity = np.linspace(-1.0, 1.0, n + 1)
    right = np.zeros(n + 1)
    left = np.zeros(n + 1)
    tk.sg_coefficients(velocity, 0.0, 0.1, right, left)
    # without diffusion the coefficients are the upwind velocities / dx: one division,
    # round-off (default rtol 1e-7; measured equal)
    np.testing.assert_allclose(right[1:], np.maximum(velocity[1:], 0) / 0.1)
    np.testing.assert_allclose(left[1:n], np.maximum(-velocity[1:n], 0) / 0.1)


def horner_with_reset(p, shift, lam, reset, scheme, kmax=60):
    """sum_k Poisson(k; lam) T'^k p with T' = one jump, then crossed mass to ``reset``."""
    weights = poisson.pmf(np.arange(kmax), lam)
    acc = weights[-1] * p
    fired = 0.0
    for w in weights[-2::-1]:
        moved, crossed = ref.remap(acc, ref.slopes(acc, scheme), np.arange(len(p) + 1) - shift)
        fired += crossed
        acc = moved + crossed * reset + w * p
    return acc, fired


def reference_run(sim, n_steps):
    """A numpy re-implementation of ``stepper.advance`` for one population."""
    p = sim.mass.copy()
    n = p.size
    dx = sim.pop_dx[0]
    length = sim.pipe_offset[1]
    starts = np.zeros(length)
    mids = np.zeros(length)
    head = 0
    rates = []
    departure = (sim.departure_cell + sim.departure_frac).astype(float)
    reset = np.zeros(n)
    reset[sim.reset_cell[0]] += 1 - sim.reset_frac_hi[0]
    if sim.reset_frac_hi[0] > 0:
        reset[sim.reset_cell[0] + 1] += sim.reset_frac_hi[0]

    def schedule(kind, mass):
        for e in range(sim.stencil_count[0, kind]):
            w = sim.stencil_weight[0, kind, e] * mass
            offset = sim.stencil_offset[0, kind, e]
            if offset == 0:
                cell, frac = sim.stencil_cell[0, kind, e], sim.stencil_frac[0, kind, e]
                p[cell] += (1 - frac) * w
                if frac > 0:
                    p[cell + 1] += frac * w
            elif sim.stencil_type[0, kind, e] == 0:
                starts[(head + offset) % length] += w
            else:
                mids[(head + offset) % length] += w

    for step in range(n_steps):
        total = 0.0
        for _ in range(sim.n_sub):
            p += starts[head] * reset
            starts[head] = 0.0
            if sim.pop_mode[0] == 0:
                g = ref.slopes(p, sim.scheme_code)
                p[:], fired = ref.remap(p, g, departure)
                kind = 0
            else:
                drive = diff = 0.0
                for c in range(len(sim.conn_post)):
                    if sim.conn_kind[c] == 1:
                        s = sim.conn_rate[c, step]
                        drive += s * sim.conn_weight[c]
                        diff += 0.5 * s * sim.conn_weight[c] ** 2
                p[:], fired = ref.sg_step(p, sim.face_velocity + drive, diff, dx, sim.dt_sub)
                kind = 2
            schedule(kind, fired)
            p += mids[head] * reset
            mids[head] = 0.0
            active = [c for c in range(len(sim.conn_post))
                      if sim.conn_kind[c] == 0 and sim.conn_rate[c, step] > 0]
            lams = [sim.conn_rate[c, step] * sim.dt_sub for c in active]
            shifts = [sim.conn_shift[c] for c in active]
            if len(active) >= 2 or (active and sim.immediate_reset[0]):
                p[:], f = ref.mixture_jump(p, shifts, lams, sim.scheme_code,
                                           reset if sim.immediate_reset[0] else None)
                if not sim.immediate_reset[0]:
                    schedule(1, f)
                fired += f
            elif active:
                p[:], f = ref.compound_jump(p, ref.slopes(p, sim.scheme_code), shifts[0],
                                            lams[0])
                schedule(1, f)
                fired += f
            head = (head + 1) % length
            total += fired
        rates.append(total / (sim.n_sub * sim.dt_sub))
    return p, np.array(rates), starts.sum() + mids.sum()


@pytest.mark.parametrize("t_ref", [0.0013, 0.0])
@pytest.mark.parametrize("kind", ["jump", "diffusion", "both"])
def test_fused_stepper_matches_numpy_reference(kind, t_ref):
    lif = pd.LIF(tau_m=0.02, v_th=1.0, v_reset=0.3, e_l=1.1, t_ref=t_ref)
    net = pd.Network()
    ext = net.add_poisson("ext", rate=pd.piecewise([0.0, 0.002], [900.0, 2500.0]))
    inh = net.add_poisson("inh", rate=400.0)
    pop = net.add_population("P", lif, grid=pd.Grid(v=(-0.5, 1.0, 30)))
    if kind in ("jump", "both"):
        net.connect(ext, pop, weight=0.11)
        net.connect(inh, pop, weight=-0.1)
    if kind in ("diffusion", "both"):
        net.connect(ext, pop, weight=0.05, input="diffusion")
    sim = prepare(net, t_end=0.004, dt=4e-4, max_substep=2e-4)
    p_ref, rates_ref, refractory_ref = reference_run(sim, sim.n_steps)
    res = sim.run()
    # the kernel truncates the Poisson series at a tail of POISSON_TAIL per sub-step; the
    # reference sums 60 terms, so rates may differ by up to POISSON_TAIL / dt_sub
    tail_rate = POISSON_TAIL / sim.dt_sub
    # round-off of 30 cells over 20 sub-steps plus the tail (measured 6.8e-13)
    np.testing.assert_allclose(sim.mass, p_ref, atol=1e-12)
    # the Poisson tail of each sub-step, see above (measured 2.3e-8 against 1e-6)
    np.testing.assert_allclose(res.rates["P"], rates_ref, rtol=1e-10, atol=2 * tail_rate)
    # the tail of each sub-step summed over the refractory queue (measured 2.9e-12)
    assert res.refractory["P"][-1] == pytest.approx(
        refractory_ref, abs=2 * POISSON_TAIL * sim.pipe_offset[1])


def test_shift_fractional_equals_the_reconstruction_remap():
    """The branch-free fractional shift moves exactly the mass the naive remap integrates
    from the limited linear reconstruction, edges included (pile-up in cell 0, crossing
    mass past the upper face)."""
    from popdens.kernels.transport import limited_slopes, shift_fractional
    rng = np.random.default_rng(7)
    for n in (2, 3, 5, 40):
        for shift in (0.3, 2.7, -0.4, -3.2, 6.9, -39.5, 39.2, 45.1, -50.3, 1.0, -1.0):
            p = rng.random(n)
            g = np.zeros(n)
            limited_slopes(p, g, 1)
            expected, fired_expected = ref.remap(p, g, np.arange(n + 1) - shift)
            expected, fired_expected = 0.7 * expected, 0.7 * fired_expected
            got = np.zeros(n)
            fired_got = shift_fractional(p, g, shift, got, 0.7)
            # round-off: the same reconstruction integrals, masses O(1), up to 40 cells
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-13)
            # the fired mass: a sum of the same integrals, the same round-off (measured
            # 3.3e-15)
            assert fired_got == pytest.approx(fired_expected, abs=1e-13)
