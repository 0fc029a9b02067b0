"""Rate units: the rate ODE, and rate units and spiking populations in one network."""

import math

import numpy as np
import pytest

import popdens as pd
from popdens.rate_units import rate_step

LIF = pd.LIF(tau_m=20e-3, v_th=20e-3, v_reset=10e-3, t_ref=2e-3)
TAU = 10e-3


def _exact_step_means(t, dt, r0, level, t_on):
    """Step means of r(t) for tau r' = -r + F(t), F = 0 before t_on and `level` after,
    r(0) = r0: integrals of r0 e^{-t/tau} + level (1 - e^{-(t - t_on)/tau}) H(t - t_on)."""
    def integral(x):
        decay = r0 * TAU * (1.0 - np.exp(-x / TAU))
        s = np.maximum(x - t_on, 0.0)
        return decay + level * (s - TAU * (1.0 - np.exp(-s / TAU)))
    return (integral(t + dt) - integral(t)) / dt


def _single_unit(method, dt, r0=30.0):
    net = pd.Network()
    # threshold-linear of gain 2 above 0: F = 2 * 40 = 80 Hz from t = 0.05 s
    net.add_rate_population("R", tau=TAU, transfer=pd.transfer.relu(gain=2.0), r0=r0,
                            drive=pd.piecewise([0.0, 0.05], [0.0, 40.0]), method=method)
    return net.run(0.1, dt)


def test_exact_integration_equals_the_solution_of_the_rate_ode():
    res = _single_unit("exact", 1e-4)
    want = _exact_step_means(res.t, 1e-4, 30.0, 80.0, 0.05)
    # exponential integration is exact for an input constant over steps: round-off only
    np.testing.assert_allclose(res.rates["R"], want, rtol=1e-11, atol=1e-12)
    assert res.rates["R"][-1] == pytest.approx(80.0 * (1 - math.exp(-5.0)), rel=2e-3)


def test_forward_euler_is_first_order():
    errors = []
    for dt in (2e-4, 1e-4, 5e-5):
        res = _single_unit("euler", dt)
        want = _exact_step_means(res.t, dt, 30.0, 80.0, 0.05)
        errors.append(np.max(np.abs(res.rates["R"] - want)))
    # Euler's local error dt^2 / (2 tau^2) |r''| accumulates to O(dt / tau): about
    # 30 Hz * dt / (2 tau) = 0.3 Hz at dt = 2e-4; halving dt halves it (2 +- 0.1)
    assert errors[0] > 0.1
    assert errors[0] / errors[1] == pytest.approx(2.0, abs=0.1)
    # first order: the error halves with dt, to 5 % of the ratio
    assert errors[1] / errors[2] == pytest.approx(2.0, abs=0.1)


def test_rate_step_twin_of_the_formulas():
    r, mean = rate_step(10.0, 50.0, 0.01, 1e-3, "exact")
    e = math.exp(-0.1)
    # the exact exponential step in closed form: round-off
    assert r == pytest.approx(50.0 - 40.0 * e, rel=1e-15)
    assert mean == pytest.approx(50.0 - 40.0 * (1.0 - e) / 0.1, rel=1e-14)
    assert rate_step(10.0, 50.0, 0.01, 1e-3, "euler") == (14.0, 12.0)


def _driven_population(extra=None):
    net = pd.Network()
    E = net.add_population("E", LIF, grid=pd.Grid(v=(-0.01, 0.02, 300)),
                           init=lambda v: ((v > 0.0) & (v < 0.02)) * 1.0)
    net.connect(net.add_poisson("ext", 6000.0), E, weight=0.2e-3)     # mean drive 24 mV
    if extra is not None:
        extra(net, E)
    return net


def _listener(net, E):
    Q = net.add_rate_population("Q", tau=5e-3, bias=-2.0,
                                transfer=pd.transfer.relu(gain=3.0))
    net.connect(E, Q, weight=0.1, n_syn=2.0, delay=1e-3)


def _reference_listener(rate_e, dt):
    """Q from E's recorded rates, written out: u_k = -2 + 0.2 r_E(step k - 10)."""
    r, out = 0.0, np.zeros(rate_e.size)
    e = math.exp(-dt / 5e-3)
    for k in range(rate_e.size):
        u = -2.0 + (0.2 * rate_e[k - 10] if k >= 10 else 0.0)
        f = 3.0 * max(u, 0.0)
        out[k] = f + (r - f) * (1.0 - e) * 5e-3 / dt
        r = f + (r - f) * e
    return out


@pytest.mark.parametrize("backend", ["density", "montecarlo"])
def test_rate_unit_driven_by_a_population(backend):
    net = _driven_population(_listener)
    opts = dict(n_neurons=2000, seed=3) if backend == "montecarlo" else dict(progress=False)
    res = net.run(0.05, 1e-4, backend=backend, **opts)
    assert res.rates["E"][-100:].mean() > 20.0                  # E fires, Q listens
    want = _reference_listener(res.rates["E"], 1e-4)
    assert want.max() > 5.0         # precondition: Q's expected rate is not trivially 0
    # a 1 ms delay is 10 whole steps: the explicit lag weights are exactly lag 10
    np.testing.assert_allclose(res.rates["Q"], want, rtol=1e-12, atol=1e-10)
    assert res.info["rate_units"] == ["Q"]


def _talker(net, E):
    R = net.add_rate_population("R", tau=TAU, transfer=pd.transfer.sigmoid(
        max_rate=40.0, gain=0.5, threshold=5.0), drive=lambda t: 10.0 * math.sin(60 * t))
    net.connect(R, E, weight=0.2e-3, n_syn=50, delay=pd.delays.gamma(2e-3, 3.0))


@pytest.mark.parametrize("backend", ["density", "montecarlo"])
def test_population_driven_by_a_rate_unit_equals_poisson_source_of_its_rates(backend):
    opts = dict(n_neurons=2000, seed=3) if backend == "montecarlo" else dict(progress=False)
    res = _driven_population(_talker).run(0.05, 1e-4, backend=backend, **opts)
    table = res.rates["R"]
    assert table.max() > 20.0       # precondition: R drives E noticeably

    def replay(net, E):
        src = net.add_poisson("R", pd.piecewise(np.arange(table.size) * 1e-4, table))
        net.connect(src, E, weight=0.2e-3, n_syn=50, delay=pd.delays.gamma(2e-3, 3.0))
    again = _driven_population(replay).run(0.05, 1e-4, backend=backend, **opts)
    # the same network for the backend: identical (Monte Carlo: same seed, same spikes)
    np.testing.assert_array_equal(res.rates["E"], again.rates["E"])
    assert res.rates["E"][-100:].mean() > 20.0


def test_rate_units_are_deterministic_on_both_backends():
    den = _driven_population(_talker).run(0.02, 1e-4, progress=False)
    mc = _driven_population(_talker).run(0.02, 1e-4, backend="montecarlo", n_neurons=100,
                                         seed=1)
    np.testing.assert_array_equal(den.rates["R"], mc.rates["R"])


def test_loop_population_unit_population_is_self_consistent():
    """E -> Q -> E in lockstep: Q is what E's recorded rates give it, and E is what Q's
    recorded rates (as a source) give E (1e-10: the source's step mean is computed as
    an integral difference, the loop's as the rate itself)."""
    def loop(net, E):
        _listener(net, E)
        net.connect("Q", E, weight=0.3e-3, n_syn=100)
    res = _driven_population(loop).run(0.05, 1e-4, progress=False)
    # the same listener ODE replayed in NumPy: round-off
    np.testing.assert_allclose(res.rates["Q"], _reference_listener(res.rates["E"], 1e-4),
                               rtol=1e-12, atol=1e-10)
    quiet = _driven_population().run(0.05, 1e-4, progress=False)
    assert res.rates["E"][-1] > 1.2 * quiet.rates["E"][-1]     # the loop excites E

    def replay(net, E):
        table = res.rates["Q"]
        net.connect(net.add_poisson("Q", pd.piecewise(np.arange(table.size) * 1e-4,
                                                      table)), E, weight=0.3e-3, n_syn=100)
    again = _driven_population(replay).run(0.05, 1e-4, progress=False)
    # the same input replayed through a rate table
    np.testing.assert_allclose(res.rates["E"], again.rates["E"], rtol=1e-9, atol=1e-9)


def test_loop_on_montecarlo_is_refused():
    def loop(net, E):
        _listener(net, E)
        net.connect("Q", E, weight=0.3e-3, n_syn=100)
    with pytest.raises(NotImplementedError, match="loop.*density backend only"):
        _driven_population(loop).run(0.01, 1e-4, backend="montecarlo", n_neurons=10)


def test_add_rate_population_rejects_bad_arguments_by_name():
    net = pd.Network()
    E = net.add_population("E", LIF)
    relu = pd.transfer.relu()
    with pytest.raises(ValueError, match="tau must be > 0, got -1"):
        net.add_rate_population("R", tau=-1.0, transfer=relu)
    with pytest.raises(TypeError, match="transfer must be a callable"):
        net.add_rate_population("R", tau=1e-2, transfer=3.0)
    with pytest.raises(ValueError, match="method must be one of .* got 'rk4'"):
        net.add_rate_population("R", tau=1e-2, transfer=relu, method="rk4")
    with pytest.raises(ValueError, match="name 'E' is already used"):
        net.add_rate_population("E", tau=1e-2, transfer=relu)
    R = net.add_rate_population("R", tau=1e-2, transfer=relu)
    with pytest.raises(ValueError, match="rate unit 'R'.*reversal=0.05"):
        net.connect(E, R, weight=0.5, reversal=0.05)
    bad = pd.Network()
    bad.add_rate_population("R", tau=1e-2, transfer=lambda x: -1.0)
    with pytest.raises(ValueError, match=r"rate unit 'R': transfer\(0.0\) = -1.0 at t=0 s"):
        bad.run(0.01, 1e-3)
