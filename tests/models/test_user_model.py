"""A model written by a user as a subclass of popdens.Model runs on both backends.

The model is the exponential integrate-and-fire neuron of the README (the same code);
its stationary rate under white noise is known independently by threshold integration
(popdens.theory.threshold_integration_1d, checked against the LIF's Siegert formula in
tests/accuracy/test_theory_1d.py).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import popdens as pd


class EIF(pd.Model):
    r"""Exponential integrate-and-fire neuron (Fourcaud-Trocme et al. 2003).

    .. math:: \tau_m \frac{dv}{dt} = e_l - v + \Delta_T e^{(v - v_T)/\Delta_T}

    spiking at the cut-off ``v_cut``, reset to ``v_reset``, refractory for ``t_ref``.
    """

    state_vars = ("v",)
    state_units = {"v": "V"}

    def __init__(self, tau_m=20e-3, e_l=-65e-3, v_t=-59.9e-3, delta_t=3.48e-3,
                 v_cut=-30e-3, v_reset=-68e-3, t_ref=1.7e-3):
        self.tau_m, self.e_l, self.v_t, self.delta_t = tau_m, e_l, v_t, delta_t
        self.v_cut, self.v_reset, self.t_ref = v_cut, v_reset, t_ref

    def drift(self, v):
        v = np.asarray(v, dtype=float)
        return (self.e_l - v + self.delta_t * np.exp((v - self.v_t) / self.delta_t)
                ) / self.tau_m

    @property
    def spike_rule(self):
        return pd.ThresholdReset("v", self.v_cut, self.v_reset, self.t_ref)

    @property
    def resting_state(self):
        return self.e_l

    def default_grid(self, inputs=()):
        return pd.Grid(v=(-0.09, self.v_cut, 600))

    def params(self):
        return dict(tau_m=self.tau_m, e_l=self.e_l, v_t=self.v_t, delta_t=self.delta_t,
                    v_cut=self.v_cut, v_reset=self.v_reset, t_ref=self.t_ref)


MU, SIGMA = 9e-3, 4e-3        # mean drive and noise amplitude (V) of tau dv = ... dt
TAU = 20e-3
# white noise as a diffusion input: drift r w = MU / tau, diffusion r w^2 / 2 = S^2/(2 tau)
WEIGHT = SIGMA ** 2 / MU
RATE = MU / (TAU * WEIGHT)


def _network(model):
    net = pd.Network()
    pop = net.add_population("E", model)
    net.connect(net.add_poisson("noise", RATE), pop, weight=WEIGHT, input="diffusion")
    return net


@pytest.fixture(scope="module")
def theory_rate():
    m = EIF()
    return pd.threshold_integration_1d(
        lambda v: m.e_l - v + m.delta_t * np.exp((v - m.v_t) / m.delta_t) + MU, SIGMA, TAU,
        m.v_cut, m.v_reset, -0.09, t_ref=m.t_ref, num_cells=20_000).rate


def test_user_model_is_a_model_and_gets_the_defaults():
    m = EIF()
    assert isinstance(m, pd.Model) and m.ndim == 1 and m.input_var == "v"
    # the time scale from the model's drift
    assert m.time_scale == pytest.approx(TAU / (1.0 - math.exp(-5.1 / 3.48)), rel=1e-6)
    # numerical flow (RK4) against a fine explicit integration of the same drift
    v = np.array([-0.07, -0.065, -0.058])
    exact = v.copy()
    for _ in range(20_000):
        exact = exact + 1e-7 * m.drift(exact)
    np.testing.assert_allclose(m.flow(v, 2e-3), exact, rtol=0, atol=2e-8)  # Euler O(h)
    assert repr(m).startswith("EIF(tau_m=0.02")


def test_network_refuses_objects_that_are_not_models():
    class Duck:
        state_vars = ("v",)
    with pytest.raises(TypeError, match="popdens.Model"):
        pd.Network().add_population("E", Duck())


def test_user_model_density_matches_threshold_integration(theory_rate):
    res = _network(EIF()).run(0.4, 1e-4)
    rate = float(np.mean(res.rates["E"][-1000:]))
    # 600 cells of 0.1 mV: the density's discretisation error measured at 0.4 %
    assert rate == pytest.approx(theory_rate, rel=0.01)


def _stationary_mc_rate(net, n=4000, t_end=0.5, t0=0.1):
    """Mean rate over [t0, t_end) and its standard error (spike counts of n independent
    neurons over 0.4 s: Poisson to within the ~1 % regularity correction)."""
    res = net.run(t_end, 1e-3, backend="montecarlo", n_neurons=n, seed=3,
                  internal_dt=2e-5)
    spikes = float(np.sum(res.rates["E"][int(t0 / 1e-3):])) * n * 1e-3
    return spikes / (n * (t_end - t0)), math.sqrt(spikes) / (n * (t_end - t0))


@pytest.mark.slow
def test_user_model_monte_carlo_matches_threshold_integration(theory_rate):
    rate, se = _stationary_mc_rate(_network(EIF()))
    # 3 SE; the step bias at internal_dt = 2e-5 measured 0.002 Hz (< 0.02 SE): 27.474
    # against 27.476 Hz (27.38 / 27.42 Hz at 1e-4 / 5e-5)
    assert abs(rate - theory_rate) < 3.0 * se, (rate, theory_rate, se)


@pytest.mark.slow
def test_interface_monte_carlo_runs_the_lif_at_its_siegert_rate():
    """The interface-only Monte Carlo engine (used for user models) on the built-in
    LIF, beside an EIF population so that the network is routed there."""
    net = pd.Network()
    lif = pd.LIF(tau_m=0.02, v_th=0.02, v_reset=0.01, t_ref=0.002)
    pop = net.add_population("E", lif)
    noise = net.add_poisson("noise", 1000.0)
    net.connect(noise, pop, weight=0.95e-3, input="diffusion")
    net.add_population("other", EIF())
    rate, se = _stationary_mc_rate(net)
    theory = pd.siegert_rate(0.02 * 0.95, math.sqrt(0.02 * 1000.0) * 0.95e-3, 0.02, 0.02,
                             0.01, 0.002)
    # 3 SE; measured 21.159 against 21.164 Hz at internal_dt = 2e-5
    assert abs(rate - theory) < 3.0 * se, (rate, theory, se)


@pytest.mark.parametrize("model", [pd.LIF(tau_m=0.02, v_th=0.02, v_reset=0.01),
                                   pd.ReducedHH(), pd.HodgkinHuxley()])
@pytest.mark.parametrize("axis", [-1, 4, 1.0, True])
def test_drift_along_names_a_bad_axis(model, axis):
    state = [0.0] * len(model.state_vars)
    with pytest.raises(ValueError, match=r"drift_along: axis must be an integer"):
        model.drift_along(axis, *state)
