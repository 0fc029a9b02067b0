"""Synaptic filters: analytic step responses, unit area, filtered-rate drive."""

import math

import numpy as np
import pytest
from scipy import integrate

import popdens as pd
from popdens.rate_units import rate_step

TAU = 5e-3
DT = 1e-4
T_ON = 0.01          # a step of the source rate, on the step grid
DELAY = 1.5e-3       # transmission delay, not a whole number of steps


def _integrated_step(kind, x):
    """int_0^x S(u) du for the unit step response S of each filter, written out."""
    x = np.maximum(x, 0.0)
    if kind == "exponential":          # S = 1 - e^{-t/tau}
        return x - TAU * (1.0 - np.exp(-x / TAU))
    if kind == "alpha":                # S = 1 - (1 + t/tau) e^{-t/tau}
        return x - 2.0 * TAU + (2.0 * TAU + x) * np.exp(-x / TAU)
    r, d = 2e-3, 8e-3                  # S = 1 - (d e^{-t/d} - r e^{-t/r}) / (d - r)
    return x - (d * d * (1 - np.exp(-x / d)) - r * r * (1 - np.exp(-x / r))) / (d - r)


FILTERS = {"exponential": pd.synapses.psc(TAU, n=0), "alpha": pd.synapses.psc(TAU, n=1),
           "biexponential": pd.synapses.biexponential(2e-3, 8e-3)}


@pytest.mark.parametrize("kind", FILTERS)
def test_filtered_step_equals_the_analytic_filter_response(kind):
    net = pd.Network()
    E = net.add_population("E", pd.LIF(tau_m=20e-3, v_th=20e-3, v_reset=10e-3))
    src = net.add_poisson("src", pd.piecewise([0.0, T_ON], [0.0, 1000.0]))
    conn = net.connect(src, E, weight=1e-4, n_syn=3, delay=DELAY, synapse=FILTERS[kind])
    t0 = np.arange(600) * DT
    got = net.source_rate_table(conn, t0, DT)
    start = t0 - T_ON - DELAY
    want = 3 * 1000.0 * (_integrated_step(kind, start + DT) - _integrated_step(kind, start)) / DT
    # step means of the filtered rate are exact (lag weights from the integrated CDF):
    # round-off of differences of G over one step, 1e-9 of the 3 kHz level
    np.testing.assert_allclose(got, want, rtol=0, atol=3e-6)
    assert got[-1] == pytest.approx(3000.0, rel=5e-3)   # 48.5 ms after onset: nearly settled
    assert got[int((T_ON + DELAY) / DT) - 1] == 0.0      # causal, after the delay


@pytest.mark.parametrize("kind", FILTERS)
def test_filters_have_unit_area(kind):
    f = FILTERS[kind]
    area, err = integrate.quad(f.impulse_response, 0.0, np.inf, limit=200)
    assert area == pytest.approx(1.0, abs=1e-9)          # quad's own error is ~1e-10
    # the step response is closed form: round-off
    assert f.step_response(1.0) == pytest.approx(1.0, abs=1e-12)
    for step in (1e-4, 1e-3):
        # lag weights are differences of the closed-form step response: they telescope to 1
        assert f.lag_weights(step).sum() == pytest.approx(1.0, abs=1e-14)
    mean = integrate.quad(lambda t: t * f.impulse_response(t), 0.0, np.inf, limit=200)[0]
    # quad's error on a smooth integrand (measured 2.4e-15 relative)
    assert mean == pytest.approx(f.mean, rel=1e-8)


def test_psc_kappa_and_peak():
    for n in range(4):
        f = pd.synapses.psc(TAU, n=n)
        # closed-form kappa: round-off of one product
        assert f.kappa == pytest.approx(1.0 / (math.factorial(n) * TAU ** (n + 1)), rel=1e-15)
        if n:
            t = np.linspace(0.0, 10 * TAU, 100001)
            # the peak located on a grid of spacing 5e-7 s: 1e-6 is two spacings
            assert t[np.argmax(f.impulse_response(t))] == pytest.approx(n * TAU, abs=1e-6)


def _filtered_population(drive):
    net = pd.Network()
    E = net.add_population("E", pd.LIF(tau_m=20e-3, v_th=20e-3, v_reset=10e-3),
                           grid=pd.Grid(v=(-0.01, 0.02, 300)))
    net.connect(net.add_poisson("base", 5000.0), E, weight=0.2e-3)
    drive(net, E)
    return net


def test_density_target_is_driven_by_the_filtered_rate():
    """The filtered connection equals a source of the analytic filtered step means."""
    def filtered(net, E):
        src = net.add_poisson("src", pd.piecewise([0.0, T_ON], [0.0, 1000.0]))
        net.connect(src, E, weight=0.2e-3, n_syn=3, delay=DELAY, synapse=FILTERS["alpha"])

    def replayed(net, E):
        t0 = np.arange(400) * DT
        start = t0 - T_ON - DELAY
        means = 3000.0 * (_integrated_step("alpha", start + DT)
                          - _integrated_step("alpha", start)) / DT
        net.connect(net.add_poisson("src", pd.piecewise(t0, np.maximum(means, 0.0))), E,
                    weight=0.2e-3)
    one = _filtered_population(filtered).run(0.04, DT, progress=False)
    two = _filtered_population(replayed).run(0.04, DT, progress=False)
    assert one.rates["E"][-1] > 5.0      # precondition: it fires, equality has content
    # the same filtered input, replayed from a rate table (measured 4.2e-09 abs, 6.1e-11 rel)
    np.testing.assert_allclose(one.rates["E"], two.rates["E"], rtol=1e-8, atol=1e-8)


def test_rate_unit_input_is_filtered():
    """A rate unit with a linear transfer sees exactly the filtered rate as its input
    (the ODE step is checked in test_rate_units; here its inputs are): with tau = 1 us
    << dt it follows the filtered rate to 1 % at the onset, 1e-5 once settled."""
    net = pd.Network()
    R = net.add_rate_population("R", tau=1e-6, transfer=pd.transfer.relu(gain=1.0))
    src = net.add_poisson("src", pd.piecewise([0.0, T_ON], [0.0, 1000.0]))
    conn = net.connect(src, R, weight=0.5, synapse=FILTERS["biexponential"])
    res = net.run(0.05, DT)
    want = 0.5 * net.source_rate_table(conn, res.t, DT)
    assert want[-1] > 400.0         # precondition: the filter has settled near 0.5 x 1000
    r, means = 0.0, []
    for f in want:
        r, mean = rate_step(r, f, 1e-6, DT)
        means.append(mean)
    # the same ODE step replayed in NumPy: round-off (measured 0 abs, 0 rel)
    np.testing.assert_allclose(res.rates["R"], means, rtol=1e-13, atol=1e-12)
    # tau = 1 us << dt: 1 % at the onset, 1e-5 once settled (docstring)
    np.testing.assert_allclose(res.rates["R"], want, rtol=1.01e-2, atol=1e-9)
    np.testing.assert_allclose(res.rates["R"][-100:], want[-100:], rtol=1e-5)


def test_monte_carlo_filtered_drive():
    net = _filtered_population(lambda net, E: net.connect(
        net.add_poisson("src", 3000.0), E, weight=0.2e-3, synapse=pd.synapses.psc(TAU)))
    with pytest.raises(NotImplementedError, match="synaptic filter.*connectivity='poisson'"):
        pop = pd.Network()
        a = pop.add_population("A", pd.LIF(tau_m=20e-3, v_th=20e-3, v_reset=10e-3))
        pop.connect(a, a, weight=1e-4, synapse=pd.synapses.psc(TAU))
        pop.run(0.001, DT, backend="montecarlo", n_neurons=10)
    mc = net.run(0.1, DT, backend="montecarlo", n_neurons=4000, seed=2)
    den = net.run(0.1, DT, progress=False)
    # stationary rates from t = 50 ms: 4000 neurons x 50 ms, standard error about 2 %;
    # allowed 3 standard errors (density vs Monte Carlo agree to ~1 % for these jumps)
    m, d = mc.rates["E"][500:].mean(), den.rates["E"][500:].mean()
    assert m == pytest.approx(d, rel=0.06)


def test_bad_synaptic_filters_raise_errors_naming_the_value():
    with pytest.raises(ValueError, match="tau_s must be > 0, got 0"):
        pd.synapses.psc(0.0)
    with pytest.raises(ValueError, match="n must be an integer >= 0.*got 1.5"):
        pd.synapses.psc(1e-3, n=1.5)
    with pytest.raises(ValueError, match="tau_rise < tau_decay.*tau_rise=0.005"):
        pd.synapses.biexponential(5e-3, 5e-3)
    net = pd.Network()
    E = net.add_population("E", pd.LIF(tau_m=20e-3, v_th=20e-3, v_reset=10e-3))
    with pytest.raises(TypeError, match="synapse must be a popdens.synapses filter"):
        net.connect(E, E, weight=1e-4, synapse=5e-3)
    with pytest.raises(NotImplementedError, match="distributed delay"):
        net.connect(E, E, weight=1e-4, synapse=pd.synapses.psc(TAU),
                    delay=pd.delays.exponential(1e-3))
    assert net.connections == []
    conn = net.connect(E, E, weight=1e-4, delay=2e-3, synapse=pd.synapses.alpha(TAU))
    assert pd.describe(net)["connections"][0]["delay"] == 2e-3
    assert conn.delay.offset == 2e-3 and conn.synapse.offset == 0.0
