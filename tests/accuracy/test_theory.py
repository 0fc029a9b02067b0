"""Tests of popdens.theory: Siegert rate, threshold integration, convergence helpers,
Brunel (2000) mean field. Every reference is computed by an independent route."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, special

from popdens.theory import (
    brunel_mean_field_rate,
    brunel_threshold_rate,
    convergence_order,
    diffusion_params,
    richardson_extrapolate,
    siegert_rate,
    threshold_integration,
)

TAU, THETA, V_R, T_REF = 20e-3, 20e-3, 10e-3, 2e-3
LIF = (TAU, THETA, V_R, T_REF)

# (mu, sigma) in volts, from mean-driven with little noise to deep fluctuation-driven
CASES = [
    (15e-3, 5e-3),     # ~9.5 Hz
    (12e-3, 4e-3),     # ~0.9 Hz
    (20e-3, 5e-3),     # ~27 Hz
    (25e-3, 5e-3),     # ~47 Hz
    (40e-3, 10e-3),    # ~100 Hz
    (25e-3, 1e-3),     # mean-driven, ~42 Hz
    (19e-3, 0.3e-3),   # just below threshold, little noise, ~1e-3 Hz
    (10e-3, 2e-3),     # ~2e-9 Hz
    (10e-3, 1.8e-3),   # ~6e-12 Hz
    (-10e-3, 5e-3),    # ~4e-14 Hz
]


def _deterministic_rate(mu, tau, theta, v_r, t_ref):
    return 1.0 / (t_ref + tau * math.log((mu - v_r) / (mu - theta))) if mu > theta else 0.0


def _trapezoid_rate(mu, sigma, tau, theta, v_r, t_ref, n=1_000_001):
    """Brute force: trapezoid rule on 1e6 intervals of erfcx(-u)."""
    u = np.linspace((v_r - mu) / sigma, (theta - mu) / sigma, n)
    f = special.erfcx(-u)
    integral = float(np.sum(f[1:] + f[:-1]) * 0.5 * (u[1] - u[0]))
    return 1.0 / (t_ref + tau * math.sqrt(math.pi) * integral)


# ------------------------------------------------------------------------ siegert_rate
@pytest.mark.parametrize("mu, sigma", CASES)
def test_siegert_vs_mpmath(mu, sigma):
    mpmath = pytest.importorskip("mpmath")
    with mpmath.workdps(30):
        a = mpmath.mpf(V_R - mu) / mpmath.mpf(sigma)
        b = mpmath.mpf(THETA - mu) / mpmath.mpf(sigma)
        f = lambda u: mpmath.exp(u * u) * mpmath.erfc(-u)  # noqa: E731  (= e^u^2 (1+erf u))
        pts = [a, 0, b] if a < 0 < b else [a, b]
        ref = 1 / (T_REF + TAU * mpmath.sqrt(mpmath.pi) * mpmath.quad(f, pts))
        ref = float(ref)
    # mpmath quadrature vs the closed form: both near machine precision (measured 4.5e-15 relative)
    assert siegert_rate(mu, sigma, *LIF) == pytest.approx(ref, rel=1e-11)


@pytest.mark.parametrize("mu, sigma", CASES)
def test_siegert_vs_brute_force_trapezoid(mu, sigma):
    # the brute-force trapezoid's own discretisation error (measured 1.2e-09 relative)
    assert siegert_rate(mu, sigma, *LIF) == pytest.approx(
        _trapezoid_rate(mu, sigma, *LIF), rel=1e-6)


def test_siegert_covers_target_rates():
    rates = siegert_rate([m for m, _ in CASES], [s for _, s in CASES], *LIF)
    # the case list spans > 90 Hz to < 1e-10 Hz; the last case is ~6e-12 Hz
    assert rates.max() > 90.0 and rates.min() < 1e-10
    assert 1e-12 < siegert_rate(10e-3, 1.8e-3, *LIF) < 1e-10


def test_siegert_extreme_rates():
    # far below threshold: tiny but positive and finite; beyond double range -> 0
    r = siegert_rate(0.0, 1e-3, *LIF)
    # 20 sigma below threshold: exp(-400)-scale, positive, not zero (measured 1.1e-171)
    assert 0.0 < r < 1e-160
    assert siegert_rate(-1.0, 1e-3, *LIF) == 0.0
    # enormous noise: refractory-limited
    assert siegert_rate(0.0, 1e3, *LIF) == pytest.approx(1.0 / T_REF, rel=1e-3)


@pytest.mark.parametrize("mu", [20.5e-3, 25e-3, 60e-3])
def test_siegert_small_sigma_tends_to_deterministic(mu):
    det = _deterministic_rate(mu, *LIF)
    errors = []
    for sigma in (1e-4, 1e-5, 1e-6, 1e-9):
        r = siegert_rate(mu, sigma, *LIF)
        errors.append(abs(r / det - 1.0))
    # sigma = 1e-9: the noise correction is O(sigma) ~ 1e-9 relative (measured 3.2e-13)
    assert errors[-1] < 1e-9
    assert errors[0] > errors[1] > errors[2]  # converges as sigma -> 0
    assert siegert_rate(mu, 0.0, *LIF) == det  # exact at sigma = 0


def test_siegert_sigma_zero_subthreshold_and_limit():
    assert siegert_rate(19e-3, 0.0, *LIF) == 0.0
    assert siegert_rate(THETA, 0.0, *LIF) == 0.0
    assert siegert_rate(19e-3, 1e-5, *LIF) == 0.0  # e^{-(100)^2}: underflows to zero
    # 10 sigma below threshold: negligible (measured 1.0e-41)
    assert siegert_rate(19e-3, 1e-4, *LIF) < 1e-30
    # t_ref = 0 mean-driven
    assert siegert_rate(30e-3, 0.0, TAU, THETA, V_R) == pytest.approx(
        1.0 / (TAU * math.log(2.0)), rel=1e-15)


def test_siegert_monotone_in_mu_and_sigma():
    mus = np.linspace(-5e-3, 50e-3, 221)
    r = siegert_rate(mus, 3e-3, *LIF)
    assert np.all(np.diff(r) > 0.0)
    # below threshold, more noise -> more firing
    sig = np.linspace(0.5e-3, 20e-3, 80)
    r = siegert_rate(12e-3, sig, *LIF)
    assert np.all(np.diff(r) > 0.0)
    # the refractory period bounds every rate (measured max 42 Hz of 500 Hz)
    assert np.all(r < 1.0 / T_REF)


def test_siegert_vectorised_matches_scalar():
    mu = np.array([[10e-3], [15e-3], [25e-3]])
    sigma = np.array([0.0, 1e-3, 5e-3])
    out = siegert_rate(mu, sigma, *LIF)
    assert out.shape == (3, 3)
    for i in range(3):
        for j in range(3):
            assert out[i, j] == siegert_rate(float(mu[i, 0]), float(sigma[j]), *LIF)
    assert isinstance(siegert_rate(15e-3, 5e-3, *LIF), float)


@pytest.mark.parametrize("kwargs, match", [
    ({"tau_m": 0.0}, r"tau_m must be > 0, got 0\.0"),
    ({"tau_m": -0.02}, r"tau_m must be > 0, got -0\.02"),
    ({"sigma": -1e-3}, r"sigma must be >= 0, got -0\.001"),
    ({"sigma": [1e-3, -2e-3]}, r"sigma must be >= 0, got -0\.002"),
    ({"mu": np.nan}, r"mu must be finite, got nan"),
    ({"mu": [0.0, np.inf]}, r"mu must be finite, got inf"),
    ({"v_reset": 20e-3}, r"v_reset must be < v_th, got v_reset=0\.02, v_th=0\.02"),
    ({"v_reset": 30e-3}, r"v_reset must be < v_th"),
    ({"t_ref": -1e-3}, r"t_ref must be >= 0, got -0\.001"),
    ({"v_th": math.inf}, r"v_th must be finite, got inf"),
])
def test_siegert_rejects_bad_arguments_by_name(kwargs, match):
    args = {"mu": 15e-3, "sigma": 5e-3, "tau_m": TAU, "v_th": THETA, "v_reset": V_R,
            "t_ref": T_REF}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        siegert_rate(**args)


# ------------------------------------------------------------------- diffusion_params
def test_diffusion_params_single_and_several():
    mu, sigma = diffusion_params(1500.0, 0.5e-3, TAU, e_l=-1e-3)
    # closed-form moments: round-off of a few products
    assert mu == pytest.approx(-1e-3 + TAU * 1500.0 * 0.5e-3, rel=1e-14)
    assert sigma == pytest.approx(math.sqrt(TAU * 1500.0 * 0.25e-6), rel=1e-14)
    mu, sigma = diffusion_params([8000.0, 2000.0], [0.1e-3, -0.5e-3], TAU)
    # closed-form moments of two inputs: round-off
    assert mu == pytest.approx(TAU * (0.8 - 1.0), rel=1e-12)
    assert sigma ** 2 == pytest.approx(TAU * (8000 * 1e-8 + 2000 * 25e-8), rel=1e-12)
    # Brunel (2000): mu = C_E J tau nu_ext, sigma = J sqrt(C_E nu_ext tau)
    mu, sigma = diffusion_params(1000 * 20.0, 0.1e-3, TAU)
    # Brunel's closed form: round-off
    assert (mu, sigma) == pytest.approx((1000 * 0.1e-3 * TAU * 20.0,
                                         0.1e-3 * math.sqrt(1000 * 20.0 * TAU)), rel=1e-14)


def test_diffusion_params_rejects_negative_rate_tau_and_nan_weight():
    with pytest.raises(ValueError, match=r"rate must be >= 0, got -1\.0"):
        diffusion_params([10.0, -1.0], 1e-3, TAU)
    with pytest.raises(ValueError, match=r"tau_m must be > 0, got 0\.0"):
        diffusion_params(10.0, 1e-3, 0.0)
    with pytest.raises(ValueError, match=r"weight must be finite"):
        diffusion_params(10.0, np.nan, TAU)


# -------------------------------------------------------------- threshold_integration
@pytest.mark.parametrize("mu, sigma", [c for c in CASES if c != (25e-3, 1e-3)]
                         + [(10e-3, 4e-3), (0.0, 5e-3)])
def test_threshold_integration_matches_siegert(mu, sigma):
    # the O(dv) error grows as sigma shrinks: the low-noise case needs a finer grid
    num_cells = 128_000 if sigma < 1e-3 else 32_000
    st = threshold_integration(mu, sigma, *LIF, num_cells=num_cells)
    # threshold integration is O(dv) accurate on these grids (measured 6.5e-05 relative)
    assert st.rate == pytest.approx(siegert_rate(mu, sigma, *LIF), rel=1e-3)


def test_threshold_integration_first_order():
    mu, sigma = 15e-3, 4e-3
    exact = siegert_rate(mu, sigma, *LIF)
    ns = np.array([400, 800, 1600, 3200])
    dv = (THETA - V_R) / ns
    rates = [threshold_integration(mu, sigma, *LIF, num_cells=int(n)).rate for n in ns]
    order = convergence_order(rates[1:], dv[1:])
    # first order +-0.1 (measured 1.00)
    assert 0.9 <= order <= 1.1
    errors = np.abs(np.array(rates) / exact - 1.0)
    measured = np.log2(errors[:-1] / errors[1:])  # order against the exact value
    # first order +-0.1 (measured 1.00 for each pair)
    assert np.all((measured > 0.9) & (measured < 1.1))
    # Richardson extrapolation with p = 1 removes the leading error term: what is left
    # is under 2 % of the finest error (measured 1e-4 of it, 7.2e-8 relative)
    extrap = richardson_extrapolate(rates[-2:], dv[-2:], 1)
    assert abs(extrap / exact - 1.0) < 0.02 * errors[-1]


def _analytic_density(v, rate, mu, sigma, tau, theta, v_r):
    """Brunel & Hakim (1999): P0(V) = 2 r tau / sigma * int_{max(y, y_r)}^{y_th}
    exp(u^2 - y^2) du, y = (V - mu) / sigma."""
    y, y_r, y_th = (v - mu) / sigma, (v_r - mu) / sigma, (theta - mu) / sigma
    val = integrate.quad(lambda u: math.exp((u - y) * (u + y)), max(y, y_r), y_th,
                         epsabs=0.0, epsrel=1e-12)[0]
    return 2.0 * rate * tau / sigma * val


@pytest.mark.parametrize("mu, sigma, t_ref", [(15e-3, 4e-3, 2e-3), (25e-3, 2e-3, 0.0),
                                              (8e-3, 3e-3, 5e-3)])
def test_threshold_integration_grid_and_mass_are_consistent(mu, sigma, t_ref):
    st = threshold_integration(mu, sigma, TAU, THETA, V_R, t_ref, num_cells=8000)
    rate, v, p = st
    dv = (THETA - V_R) / 8000
    # a uniform grid: round-off of the node positions
    assert np.allclose(np.diff(v), dv, rtol=1e-6, atol=0)
    assert v[-1] == THETA and V_R in v
    assert p[-1] == 0.0
    assert np.all(p[:-1] > 0.0)
    # the mass of the grid density plus the refractory mass: round-off
    assert dv * p.sum() == pytest.approx(1.0 - rate * t_ref, rel=1e-12)
    # the integral of the analytic density is 1 - r t_ref too (checks the reference)
    exact_rate = siegert_rate(mu, sigma, TAU, THETA, V_R, t_ref)
    mass = integrate.quad(lambda x: _analytic_density(x, exact_rate, mu, sigma, TAU, THETA,
                                                      V_R),
                          min(mu, V_R) - 8 * sigma, THETA, points=[V_R], limit=200)[0]
    # scipy quad of the analytic density (measured 9e-16 relative)
    assert mass == pytest.approx(1.0 - exact_rate * t_ref, rel=1e-7)
    # pointwise agreement with the analytic stationary density
    peak = p.max()
    for frac in (0.1, 0.3, 0.5, 0.7, 0.9, 0.99):
        k = int(round(frac * (len(v) - 1)))
        ref = _analytic_density(v[k], exact_rate, mu, sigma, TAU, THETA, V_R)
        # the O(dv) discretisation at 8000 cells
        assert abs(p[k] - ref) < 2e-3 * peak


def test_threshold_integration_zero_drift_node():
    # mu on the reset node makes H_k = 0 there: the limit branch must be used
    st = threshold_integration(V_R, 3e-3, *LIF, num_cells=20000)
    assert np.all(np.isfinite(st.density))
    # the limit branch at the reset node, 20000 cells (measured 0.00053 relative)
    assert st.rate == pytest.approx(siegert_rate(V_R, 3e-3, *LIF), rel=1e-3)


def test_threshold_integration_lower_bound_and_validation():
    st = threshold_integration(15e-3, 4e-3, *LIF, v_lower=V_R, num_cells=100)
    # the first node is v_lower: round-off
    assert st.v[0] == pytest.approx(V_R) and len(st.v) == 101
    with pytest.raises(ValueError, match=r"sigma must be > 0, got 0\.0"):
        threshold_integration(15e-3, 0.0, *LIF)
    with pytest.raises(ValueError, match=r"v_lower must be <= v_reset=0\.01, got 0\.015"):
        threshold_integration(15e-3, 4e-3, *LIF, v_lower=15e-3)
    with pytest.raises(ValueError, match=r"num_cells must be >= 1, got 0"):
        threshold_integration(15e-3, 4e-3, *LIF, num_cells=0)
    with pytest.raises(ValueError, match=r"would have \d+ nodes"):
        threshold_integration(0.0, 1e3, *LIF)


# -------------------------------------------------------------------- convergence helpers
@pytest.mark.parametrize("p", [1.0, 2.0, 1.5])
def test_richardson_extrapolate_exact(p):
    a, b, c = 3.25, -7.0, 11.0
    h = np.array([0.1, 0.05, 0.025])
    v = a + b * h ** p
    # exact data of the assumed form: round-off of the extrapolation
    assert richardson_extrapolate(v[:2], h[:2], p) == pytest.approx(a, rel=1e-13)
    assert richardson_extrapolate(v, h, p) == pytest.approx(a, rel=1e-12)
    # three values also eliminate the next order, in any input order
    w = a + b * h ** p + c * h ** (p + 1)
    # exact for such data: round-off (measured 2.7e-16)
    assert richardson_extrapolate(w[::-1], h[::-1], p) == pytest.approx(a, rel=1e-12)
    assert abs(richardson_extrapolate(w[:2], h[:2], p) - a) > 1e-4  # two cannot


@pytest.mark.parametrize("p", [0.5, 1.0, 2.0, 4.0])
def test_convergence_order_exact(p):
    a, b = 1.0, 0.3
    h = np.array([0.2, 0.1, 0.05, 0.025])
    # exact power-law data: round-off of the log ratios
    assert convergence_order(a + b * h ** p, h) == pytest.approx(p, rel=1e-10)
    h2 = np.array([0.3, 0.1, 0.04])  # non-uniform refinement
    # exact power-law data: round-off of a root solve (measured 5.2e-13)
    assert convergence_order(a - b * h2 ** p, h2) == pytest.approx(p, rel=1e-9)


def test_convergence_helpers_reject_sign_changes_lengths_and_repeats():
    with pytest.raises(ValueError, match="zero or change sign"):
        convergence_order([1.0, 2.0, 1.5], [0.4, 0.2, 0.1])
    with pytest.raises(ValueError, match="same length"):
        convergence_order([1.0, 2.0, 1.5], [0.4, 0.2])
    with pytest.raises(ValueError, match="at least 2 values"):
        richardson_extrapolate([1.0], [0.1], 1)
    with pytest.raises(ValueError, match="distinct"):
        richardson_extrapolate([1.0, 2.0], [0.1, 0.1], 1)


# ---------------------------------------------------------------- Brunel (2000) mean field
C_E, GAMMA, J = 1000, 0.25, 0.1e-3


def _phi(nu, nu_ext, g):
    """Transfer function written out independently of theory.brunel_*."""
    mu = C_E * J * TAU * (nu_ext + nu * (1 - g * GAMMA))
    sigma = J * math.sqrt(C_E * TAU * (nu_ext + nu * (1 + g * g * GAMMA)))
    return siegert_rate(mu, sigma, *LIF)


def test_brunel_threshold_rate():
    # Brunel's threshold rate theta / (C_E J tau) = 10 Hz: round-off
    assert brunel_threshold_rate() == pytest.approx(10.0, rel=1e-14)


@pytest.mark.parametrize("g, eta", [(5.0, 2.0), (6.0, 4.0), (4.5, 0.9)])
def test_brunel_fixed_point_residual_and_mean_field_ode(g, eta):
    nu_ext = eta * 10.0
    nu = brunel_mean_field_rate(nu_ext, g)
    # root found to the solver's tolerance (measured 3.2e-12)
    assert abs(nu - _phi(nu, nu_ext, g)) < 1e-9 * max(nu, 1.0)
    # Euler integration of tau dnu/dt = -nu + phi(nu) from below and above converges there
    dt = 0.1 * TAU
    for start in (0.0, 3.0 * nu):
        x = start
        for _ in range(400):
            x += dt / TAU * (-x + _phi(x, nu_ext, g))
        # 400 Euler steps converge to the fixed point (measured 2.1e-14 relative)
        assert x == pytest.approx(nu, rel=1e-8)


def test_brunel_model_a_asynchronous_irregular_value():
    # value quoted in the docstring, cross-checked by the residual/ODE test above; to its
    # last quoted digit (measured 2.9e-6)
    nu = brunel_mean_field_rate(2 * brunel_threshold_rate(), 5.0)
    assert nu == pytest.approx(37.9497, abs=1e-4)


def test_brunel_multiple_fixed_points():
    # weak inhibition, weak drive: quiescent, low and saturated states
    roots = brunel_mean_field_rate(5.0, 0.0, return_all=True)
    assert len(roots) == 3
    for nu in roots:
        # root found to the solver's tolerance (measured 1.3e-12)
        assert abs(nu - _phi(nu, 5.0, 0.0)) < 1e-8 * max(nu, 1.0)
    # the quiescent root and the high-rate root near 1 / t_ref (measured 450 Hz)
    assert roots[0] == 0.0 and roots[-1] > 400.0
    assert brunel_mean_field_rate(5.0, 0.0) == 0.0


def test_brunel_mean_field_rejects_negative_inputs_by_name():
    with pytest.raises(ValueError, match=r"nu_ext must be >= 0, got -1\.0"):
        brunel_mean_field_rate(-1.0, 5.0)
    with pytest.raises(ValueError, match=r"g must be >= 0, got -5\.0"):
        brunel_mean_field_rate(20.0, -5.0)
