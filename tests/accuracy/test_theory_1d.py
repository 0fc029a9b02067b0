"""Threshold integration for a general 1D drift (theory.threshold_integration_1d).

Independent references: the Siegert formula (LIF), the mean first-passage time of the
diffusion as a double quadrature (EIF; backward equation, not the forward sweep), and the
exact noiseless QIF period (low-noise limit and cut-off convergence).
"""

import math

import numpy as np
import pytest
from scipy import integrate

from popdens.theory import (
    convergence_order,
    richardson_extrapolate,
    siegert_rate,
    threshold_integration,
    threshold_integration_1d,
)

LIF = dict(tau=20e-3, v_th=20e-3, v_reset=10e-3, t_ref=2e-3)
EIF = dict(mu=-55e-3, v_t=-50e-3, delta_t=3.5e-3)  # Fourcaud-Trocme et al. (2003) scale
EIF_RUN = dict(sigma=5e-3, tau=20e-3, v_th=-30e-3, v_reset=-60e-3, v_lower=-100e-3,
               t_ref=2e-3)
QIF_TAU, QIF_D, QIF_MU = 10e-3, 1e-3, 1e-3  # tau dV/dt = V^2 / D + mu


def eif_drift(v):
    return -(v - EIF["mu"]) + EIF["delta_t"] * np.exp((v - EIF["v_t"]) / EIF["delta_t"])


def eif_potential(v):  # antiderivative of the drift
    return (-(v - EIF["mu"]) ** 2 / 2.0
            + EIF["delta_t"] ** 2 * math.exp((v - EIF["v_t"]) / EIF["delta_t"]))


def qif_drift(v):
    return v * v / QIF_D + QIF_MU


def qif_noiseless_rate(v_cut):
    """Period of tau dV/dt = V^2/D + mu from -v_cut to v_cut, inverted."""
    scale = math.sqrt(QIF_D * QIF_MU)
    return 1.0 / (2.0 * QIF_TAU * math.sqrt(QIF_D / QIF_MU) * math.atan(v_cut / scale))


def mfpt_rate(potential, drift, sigma, tau, v_th, v_reset, v_lower, t_ref):
    r"""1/(t_ref + T), T the mean first-passage time from v_reset to v_th:
    T = (2 tau / sigma^2) int_{v_r}^{v_th} dy int_{v_lower}^{y} exp(Phi(z) - Phi(y)) dz,
    Phi = 2 U / sigma^2, U' = F (reflecting at v_lower)."""
    s2 = sigma * sigma

    def inner(y):
        phi_y = 2.0 * potential(y) / s2
        f = float(drift(y))
        width = s2 / (2.0 * f) if f > 0.0 else sigma  # decay length of the integrand below y
        pts = [p for p in (y - 30.0 * width, y - 3.0 * width) if v_lower < p < y]
        return integrate.quad(lambda z: math.exp(2.0 * potential(z) / s2 - phi_y), v_lower, y,
                              points=pts or None, limit=400, epsabs=0.0, epsrel=1e-11)[0]

    t = integrate.quad(inner, v_reset, v_th, limit=400, epsabs=0.0, epsrel=1e-10)[0]
    return 1.0 / (t_ref + 2.0 * tau / s2 * t)


def test_lif_drift_reproduces_the_lif_solver_exactly():
    mu, sigma = 15e-3, 4e-3
    general = threshold_integration_1d(lambda v: mu - v, sigma, v_lower=-20e-3,
                                       num_cells=3000, **LIF)
    special = threshold_integration(mu, sigma, LIF["tau"], LIF["v_th"], LIF["v_reset"],
                                    LIF["t_ref"], v_lower=-20e-3, num_cells=3000)
    # same recursion with H = -2F/sigma^2 = 2(V - mu)/sigma^2: equal up to rounding of H
    assert general.rate == pytest.approx(special.rate, rel=1e-13)
    assert np.allclose(general.density, special.density, rtol=1e-12, atol=0.0)


def test_lif_first_order_convergence_to_siegert():
    mu, sigma = 15e-3, 4e-3
    exact = siegert_rate(mu, sigma, LIF["tau"], LIF["v_th"], LIF["v_reset"], LIF["t_ref"])
    ns = np.array([800, 1600, 3200])
    dv = (LIF["v_th"] - LIF["v_reset"]) / ns
    rates = [threshold_integration_1d(lambda v: mu - v, sigma, v_lower=-20e-3,
                                      num_cells=int(n), **LIF).rate for n in ns]
    assert 0.95 <= convergence_order(rates, dv) <= 1.05  # the frozen-H scheme is O(dv)
    # the first-order error is removed by extrapolation: what is left is O(dv^2)
    assert richardson_extrapolate(rates[1:], dv[1:], 1) == pytest.approx(exact, rel=1e-6)


def test_eif_against_first_passage_quadrature():
    reference = mfpt_rate(eif_potential, eif_drift, EIF_RUN["sigma"], EIF_RUN["tau"],
                          EIF_RUN["v_th"], EIF_RUN["v_reset"], EIF_RUN["v_lower"],
                          EIF_RUN["t_ref"])
    assert reference == pytest.approx(4.15261, abs=1e-5)  # the documented value
    ns = np.array([5000, 10000, 20000])
    dv = (EIF_RUN["v_th"] - EIF_RUN["v_reset"]) / ns
    rates = [threshold_integration_1d(eif_drift, num_cells=int(n), **EIF_RUN).rate for n in ns]
    order = convergence_order(rates, dv)
    assert 0.95 <= order <= 1.05  # measured 1.003
    # O(dv) error at 20000 cells: measured 9e-6 relative
    assert rates[-1] == pytest.approx(reference, rel=2e-5)
    # extrapolated: measured agreement 1e-11 (quadrature tolerance 1e-10)
    assert richardson_extrapolate(rates, dv, 1) == pytest.approx(reference, rel=1e-8)


def test_eif_density_normalised_and_zero_at_cutoff():
    st = threshold_integration_1d(eif_drift, num_cells=4000, **EIF_RUN)
    dv = st.v[1] - st.v[0]
    assert st.density[-1] == 0.0
    # non-refractory mass + refractory mass = 1 exactly by construction of r
    assert dv * st.density.sum() + st.rate * EIF_RUN["t_ref"] == pytest.approx(1.0, rel=1e-12)
    assert np.all(st.density >= 0.0)


def test_qif_low_noise_limit_is_the_noiseless_rate():
    v_cut = 0.1
    deviations = []
    for sigma in (4e-4, 2e-4, 1e-4):
        rate = threshold_integration_1d(qif_drift, sigma, QIF_TAU, v_cut, -v_cut,
                                        -v_cut - 0.01, num_cells=20000).rate
        deviations.append(rate / qif_noiseless_rate(v_cut) - 1.0)
    # the noise correction is O(sigma^4): measured ratios 15.8 and 16.0 per halving
    assert 3.8 <= math.log2(deviations[0] / deviations[1]) <= 4.2
    assert 0.0 < deviations[-1] < 1e-5  # noise speeds the passage; measured 3e-6


def test_qif_cutoff_convergence():
    # r(v_c) -> 1/(pi tau sqrt(D/mu)) with relative error 2 sqrt(D mu) / (pi v_c)
    infinite = 1.0 / (math.pi * QIF_TAU * math.sqrt(QIF_D / QIF_MU))
    cuts = np.array([0.05, 0.1, 0.2])
    errors = []
    for v_cut in cuts:
        rate = threshold_integration_1d(qif_drift, 1e-4, QIF_TAU, v_cut, -v_cut,
                                        -v_cut - 0.01, num_cells=40000).rate
        assert rate == pytest.approx(qif_noiseless_rate(v_cut), rel=2e-5)  # sigma^4 term
        errors.append(rate / infinite - 1.0)
    order = math.log2(errors[0] / errors[1]), math.log2(errors[1] / errors[2])
    assert all(0.95 <= p <= 1.05 for p in order)  # error ~ 1/v_cut


def test_threshold_integration_1d_rejects_bad_arguments():
    run = dict(sigma=5e-3, tau=20e-3, v_th=-30e-3, v_reset=-60e-3, v_lower=-100e-3)
    with pytest.raises(TypeError, match="drift must be a callable"):
        threshold_integration_1d(1.0, **run)
    with pytest.raises(ValueError, match="drift is not finite at v="):
        threshold_integration_1d(lambda v: np.exp(-v / 1e-4), **run)
    with pytest.raises(ValueError, match="shape"):
        threshold_integration_1d(lambda v: v[:3], **run)
    with pytest.raises(ValueError, match="v_lower must be <= v_reset"):
        threshold_integration_1d(eif_drift, **{**run, "v_lower": 0.0})
    with pytest.raises(ValueError, match="sigma must be > 0"):
        threshold_integration_1d(eif_drift, **{**run, "sigma": 0.0})
    with pytest.raises(ValueError, match="v_reset must be < v_th"):
        threshold_integration_1d(eif_drift, **{**run, "v_reset": -20e-3})
    with pytest.raises(ValueError, match="overflowed"):  # drift pushing down everywhere
        threshold_integration_1d(lambda v: -1.0 + 0.0 * v, **{**run, "sigma": 1e-4})
