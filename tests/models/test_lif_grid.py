"""The LIF default grid's lower edge (issue 15, "starting from rest").

Reference: the free membrane potential (no threshold) driven by Poisson jumps of rates
r_k and sizes w_k from v0 has, exactly (Campbell's theorem), mean
m(t) = mu + (v0 - mu) e^{-t/tau} and variance s^2(t) = sigma^2 (1 - e^{-2t/tau}) with
mu = e_l + tau sum r_k w_k and sigma^2 = tau sum r_k w_k^2 / 2. The default grid must reach
below min over t of m(t) - 6 s(t), found here by sampling t, not by the closed form that
popdens uses.
"""

import math

import numpy as np
import pytest

import popdens as pd
from popdens.models.lif import transient_lower_edge

TAU = 0.02


def sampled_edge(start, mean, var, tau=TAU):
    """min over t in [0, 40 tau] of m(t) - 6 s(t), on 400,001 times."""
    t = np.linspace(0.0, 40.0 * tau, 400_001)
    decay = np.exp(-t / tau)
    m = mean + (start - mean) * decay
    s = np.sqrt(var * (1.0 - decay ** 2))
    return float(np.min(m - 6.0 * s))


def free_moments(model, inputs):
    mean = model.e_l + model.tau_m * sum(r * w for r, w, _ in inputs)
    var = model.tau_m * sum(r * w * w for r, w, _ in inputs) / 2.0
    return mean, var


@pytest.mark.parametrize("start, mean, var", [
    (0.0, 55.5e-3, 3.2e-3 ** 2),      # the at-rest agreement test: strong drive from rest
    (0.0, 5e-3, 2e-3 ** 2),           # weak drive: the transient reaches 1 sd lower
    (0.0, 0.0, 2e-3 ** 2),            # start at the mean: the stationary edge
    (10e-3, -4e-3, 3e-3 ** 2),        # inhibition-dominated: falls to the stationary edge
])
def test_transient_edge_is_the_minimum_of_mean_minus_six_sd(start, mean, var):
    # 1e-8 V: the sampled minimum misses the true one by O((dt/tau)^2) sd = 1e-12 V
    assert transient_lower_edge(start, mean, var) == pytest.approx(
        sampled_edge(start, mean, var), abs=1e-8)


def test_transient_edge_lies_below_the_stationary_edge_when_the_mean_rises():
    mean, var = 30e-3, 2e-3 ** 2
    stationary = mean - 6.0 * math.sqrt(var)
    # 1 mV: the closed form gives 30 - sqrt(144 + 900) = -2.31 mV against 18 mV
    assert transient_lower_edge(0.0, mean, var) < stationary - 1e-3


def test_default_grid_of_the_at_rest_agreement_case_holds_the_transient():
    """The inputs of test_agreement's sinusoidal case at their peak rates: the grid that
    ended at rest (0 V) piled 0.6 % of the mass on its lower face at 1 ms."""
    lif = pd.LIF(tau_m=TAU, v_th=0.02, v_reset=0.01, t_ref=0.002)
    inputs = [(13500.0, 0.25e-3, "jump"), (2000.0, -0.3e-3, "jump")]
    ax = lif.default_grid(inputs).axes[0]
    edge = sampled_edge(lif.resting_state, *free_moments(lif, inputs))
    assert edge == pytest.approx(-3.23e-3, abs=0.01e-3)      # 55.5 - sqrt(369 + 3080) mV
    # the edge rounds down to a whole number of cells below the threshold
    assert edge - ax.width < ax.lower <= edge
    # cells keep the jump-fitting width: 0.25 mV jumps = 10 cells
    assert ax.width == pytest.approx(0.025e-3, rel=1e-12)     # round-off only


def test_default_grid_with_diffusion_input_uses_the_same_edge():
    lif = pd.LIF(tau_m=TAU, v_th=0.02, v_reset=0.01)
    inputs = [(800.0, 1e-3, "diffusion")]
    ax = lif.default_grid(inputs).axes[0]
    edge = sampled_edge(lif.resting_state, *free_moments(lif, inputs))
    assert edge - ax.width < ax.lower <= edge


def test_default_grid_with_excitation_only_starts_at_rest():
    lif = pd.LIF(tau_m=TAU, v_th=0.02, v_reset=0.01, e_l=-0.005)
    ax = lif.default_grid([(20000.0, 0.1e-3, "jump")]).axes[0]
    # jumps only move up and the leak decays to e_l: nothing goes below e_l; one cell of
    # slack for rounding to whole cells below the threshold
    assert -0.005 - ax.width < ax.lower <= -0.005


def test_default_grid_reaches_one_inhibitory_jump_below_reset():
    # weak inhibition under strong excitation: the 6-sd edge lies above reset - jump
    lif = pd.LIF(tau_m=TAU, v_th=0.02, v_reset=0.01, e_l=0.01)
    ax = lif.default_grid([(40000.0, 0.1e-3, "jump"), (10.0, -2e-3, "jump")]).axes[0]
    # 1e-12 V: round-off of the whole number of cells below the threshold
    assert ax.lower - 1e-12 <= 0.01 - 2e-3 < ax.lower + ax.width
