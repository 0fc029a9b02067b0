"""The two-dimensional models of the integrate-and-fire family (pd.AdEx, pd.Izhikevich)
and pd.FitzHughNagumo: parameters, reset maps, and the density (N-D engine) against the
Monte Carlo (the compiled loop, popdens/kernels/mc_if_family.py) along transients with
Poisson jump input.

Agreement is judged bin by bin: z = (Monte Carlo - density) / SE with the Poisson
standard error of the Monte Carlo count expected from the density rate; all |z| < 3,
the mean z within 3 / sqrt(bins) of 0 (no bias) and the spread of z near 1.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import popdens as pd

DT = 1e-4


def _network(model, rate, weight, grid=None):
    net = pd.Network()
    pop = net.add_population("E", model, grid=grid)
    net.connect(net.add_poisson("ext", rate), pop, weight=weight)
    return net


def _z_scores(density, mc, n, start, stop, bin_width):
    """Per-bin z of the Monte Carlo rate against the density over [start, stop)."""
    per_bin = int(round(bin_width / DT))
    a, b = int(round(start / DT)), int(round(stop / DT))
    d = density[a:b].reshape(-1, per_bin).mean(axis=1)
    m = mc[a:b].reshape(-1, per_bin).mean(axis=1)
    se = np.sqrt(np.maximum(d, 1e-12) * n * bin_width) / (n * bin_width)
    return (m - d) / se, d, m


def _assert_agreement(z):
    n = z.size
    assert np.all(np.abs(z) < 3.0), np.round(z, 2)
    # no bias: the mean of n unit-variance z within 3 of its standard error 1/sqrt(n)
    assert abs(z.mean()) < 3.0 / math.sqrt(n), np.round(z, 2)
    # spread: neither hidden errors (> 1.6) nor a suspiciously exact match (< 0.4)
    assert 0.4 < z.std() < 1.6, np.round(z, 2)


# --- parameters ----------------------------------------------------------------------
def test_adex_defaults_are_brette_gerstner_2005():
    m = pd.AdEx()
    assert (m.c_m, m.g_l, m.e_l, m.v_t, m.delta_t) == (281e-12, 30e-9, -70.6e-3,
                                                        -50.4e-3, 2e-3)
    assert (m.a, m.tau_w, m.b, m.v_reset) == (4e-9, 144e-3, 80.5e-12, -70.6e-3)
    # one sum of the default parameters: round-off (measured equal)
    assert m.v_cut == pytest.approx(-40.4e-3, rel=1e-15)
    v, w = np.array([-0.07, -0.05]), np.array([0.0, 1e-10])
    dv, dw = m.drift(v, w)
    # the same AdEx formula evaluated in NumPy: round-off
    np.testing.assert_allclose(dv, (-m.g_l * (v - m.e_l) + m.g_l * m.delta_t * np.exp(
        (v - m.v_t) / m.delta_t) - w) / m.c_m, rtol=1e-14)
    np.testing.assert_allclose(dw, (m.a * (v - m.e_l) - w) / m.tau_w, rtol=1e-14)
    # the rest is a fixed point: dv/dt changes by -107 V/s per volt off rest, so 1e-12 V/s
    # is a rest found to 1e-14 V (measured dv/dt -6.3e-16 V/s)
    dv_rest, dw_rest = m.drift(*m.resting_state)
    assert abs(dv_rest) < 1e-12
    # dw/dt changes by a / tau_w = 2.8e-8 A/s per volt off rest: 1e-21 A/s is 4e-14 V
    # (measured 0.0; dw/dt is 1e-11 A/s 1 mV away)
    assert abs(dw_rest) < 1e-21
    # w += b at a spike: one addition, round-off (measured equal); abs=0 as w ~ 1e-10
    assert m.refractory_map(1e-10) == pytest.approx(1e-10 + 80.5e-12, rel=1e-14, abs=0.0)
    # with t_ref the held neuron's w relaxes toward a (v_reset - e_l)
    held = pd.AdEx(t_ref=2e-3, v_reset=-60e-3)
    target = held.a * (-60e-3 - held.e_l)
    # closed-form relaxation of w over t_ref: round-off (measured equal); abs=0 as w ~ 8e-11
    assert held.refractory_map(0.0) == pytest.approx(
        target + (held.b - target) * math.exp(-2e-3 / 144e-3), rel=1e-12, abs=0.0)
    adapting = pd.AdEx.naud2008("adapting")
    assert (adapting.c_m, adapting.g_l, adapting.tau_w, adapting.b) == (200e-12, 12e-9,
                                                                        0.3, 60e-12)
    with pytest.raises(ValueError, match="pattern must be one of"):
        pd.AdEx.naud2008("chaotic")


def test_izhikevich_regular_spiking_in_si_units():
    m = pd.Izhikevich()
    # the paper's units: dv/dt (mV/ms) = 0.04 v^2 + 5 v + 140 - u + I, v in mV
    v_mv, u = -60.0, -12.0
    dv, du = m.drift(v_mv * 1e-3, u)
    assert dv == pytest.approx(0.04 * v_mv ** 2 + 5 * v_mv + 140 - u, rel=1e-12)  # mV/ms
    assert du == pytest.approx(1e3 * 0.02 * (0.2 * v_mv - u), rel=1e-12)          # (mV/ms)/s
    # the smaller root of 0.04 v^2 + 4.8 v + 140 = 0 is -70 mV exactly, u = b v: round-off
    # (measured 0.0 and 1.8e-15)
    assert m.resting_state == pytest.approx((-0.07, -14.0), rel=1e-12, abs=0.0)
    assert m.refractory_map(-10.0) == -2.0
    assert m.spike_rule == pd.ThresholdReset("v", 0.03, -0.065, 0.0)


def test_fitzhugh_nagumo_fixed_point_and_surface():
    m = pd.FitzHughNagumo()
    # the fixed point found by a root finder (measured 5.6e-13)
    np.testing.assert_allclose(m.drift(*m.resting_state), (0.0, 0.0), atol=1e-9)
    assert m.spike_rule == pd.SpikeSurface("v", 0.0)
    assert m.resting_state[0] < -1.0            # on the left branch, below the knee


@pytest.mark.parametrize("cls, kwargs, message", [
    (pd.AdEx, dict(c_m=-1e-12), "c_m must be > 0, got -1e-12"),
    (pd.AdEx, dict(tau_w=0.0), "tau_w must be > 0, got 0.0"),
    (pd.AdEx, dict(v_cut=-0.06), "v_cut must be > v_t"),
    (pd.AdEx, dict(v_reset=-0.03), "v_reset must be < v_cut"),
    (pd.Izhikevich, dict(a=0.0), "a must be > 0, got 0.0"),
    (pd.Izhikevich, dict(c=0.04), "c .the reset. must be < v_peak"),
    (pd.FitzHughNagumo, dict(tau=0.0), "tau must be > 0, got 0.0"),
    (pd.FitzHughNagumo, dict(b=-0.1), "b must be >= 0, got -0.1"),
])
def test_parameter_errors_name_parameter_and_value(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


# --- density against Monte Carlo ---------------------------------------------------------
def test_adex_adaptation_transient_density_matches_monte_carlo():
    """A step of input at 0.1 s: a synchronous first volley, then the rate decays as w
    builds up (tau_w = 144 ms)."""
    net = _network(pd.AdEx(), pd.piecewise([0.0, 0.1], [2000.0, 6000.0]), 0.5e-3)
    n = 2000
    res = net.run(0.4, DT)
    mc = net.run(0.4, DT, backend="montecarlo", n_neurons=n, seed=1, internal_dt=2e-5)
    z, d, m = _z_scores(res.rates["E"], mc.rates["E"], n, 0.1, 0.4, 0.02)
    _assert_agreement(z)
    # adaptation: the first 20 ms after the step fire far above the last 20 ms
    # (measured: density 48.5 -> 19.6 Hz, Monte Carlo 48.0 -> 20.2 Hz)
    assert d[0] > 2.0 * d[-1] and m[0] > 2.0 * m[-1]
    # 2000 Hz alone is subthreshold: no Monte Carlo spike, density rate < 1e-6 Hz
    assert np.all(mc.rates["E"][:1000] == 0.0) and res.rates["E"][:1000].max() < 1e-6


def test_izhikevich_transient_density_matches_monte_carlo():
    """Regular spiking from rest under a step of 12 mV/ms of mean drive (4 mV jumps at
    3 kHz): a synchronous volley, then adaptation of u (d = 8 mV/ms per spike) to
    ~33 Hz. (With 2 mV jumps at 6 kHz the Monte Carlo neurons stay synchronised for
    over 100 ms and the density's numerical diffusion damps that ringing faster: |z| up
    to 4.5.)"""
    net = _network(pd.Izhikevich(), 3000.0, 4e-3)
    n = 2000
    res = net.run(0.15, DT)
    mc = net.run(0.15, DT, backend="montecarlo", n_neurons=n, seed=1, internal_dt=2e-5)
    z, d, m = _z_scores(res.rates["E"], mc.rates["E"], n, 0.0, 0.15, 0.01)
    _assert_agreement(z)
    # adaptation: measured density 165.8 Hz in the first 10 ms, 33.2 Hz in the last
    # (Monte Carlo 166.9, 32.8 Hz)
    assert d[0] > 3.0 * d[-1] and m[0] > 3.0 * m[-1]


def test_fitzhugh_nagumo_density_matches_monte_carlo():
    """Excitable FHN kicked by 0.1 jumps at 2 kHz: a synchronous first spike through
    the plane v = 0, then noisy oscillation."""
    model = pd.FitzHughNagumo()
    grid = pd.Grid(v=(-2.6, 2.6, 400), w=(-1.0, 2.0, 240))   # 4 % grid error, see model
    net = _network(model, 2000.0, 0.1, grid=grid)
    n = 2000
    res = net.run(0.1, DT)
    mc = net.run(0.1, DT, backend="montecarlo", n_neurons=n, seed=2, internal_dt=1e-5)
    z, d, m = _z_scores(res.rates["E"], mc.rates["E"], n, 0.0, 0.1, 0.01)
    _assert_agreement(z)
    assert d[0] > 50.0 and m[0] > 50.0             # the first, synchronous spike
