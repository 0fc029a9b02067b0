"""Density backend against the Monte Carlo backend (seeded, N = 1e5 neurons).

Statistical tolerance: a Monte Carlo rate averaged over T seconds has standard error
sqrt(r / (N T)) (Poisson spike counts; independent neurons). Steady states must agree
within 3 standard errors. Along a transient, 1-ms bins are compared with their z-scores
z = (mc - density) / se: the mean of z^2 must be consistent with 1 (< 1.35, which a
correct density solver exceeds with probability < 1e-4 at ~200 bins) and no more than
2 % of bins may have |z| > 3 (expected 0.27 %).
"""

import numpy as np
import pytest

import popdens as pd

from ..reference import assert_z_agree

N = 100_000
TAU, THETA, RESET, T_REF = 0.02, 0.02, 0.01, 0.002
pytestmark = pytest.mark.slow


def brunel_neuron_network(inputs, t_ref=T_REF):
    net = pd.Network()
    pop = net.add_population("P", pd.LIF(tau_m=TAU, v_th=THETA, v_reset=RESET, t_ref=t_ref))
    for k, (rate, weight) in enumerate(inputs):
        net.connect(net.add_poisson(f"s{k}", rate=rate), pop, weight=weight)
    return net


def demo_network(rate=800.0):
    net = pd.Network()
    pop = net.add_population("P", pd.LIF(tau_m=0.05, v_th=1.0, v_reset=0.0))
    net.connect(net.add_poisson("ext", rate=rate), pop, weight=0.03)
    return net


STEADY_CASES = {
    # mean-driven, jumps of 3 % of the threshold distance, no refractory period
    "demo": (demo_network, 1.0),
    # mean-driven, large jumps: a fifth of theta - V_r
    "large jumps": (lambda: brunel_neuron_network([(700.0, 2e-3)]), 1.0),
    # fluctuation-driven (mean drive 17.8 mV < theta), small jumps
    "fluctuation-driven": (lambda: brunel_neuron_network([(8900.0, 0.1e-3)]), 0.6),
    # excitation and inhibition, jumps not a multiple of the cell width
    "E and I": (lambda: brunel_neuron_network([(7000.0, 0.23e-3), (1500.0, -0.41e-3)]),
                0.6),
}


@pytest.mark.parametrize("case", list(STEADY_CASES))
def test_steady_rate_agrees_with_montecarlo(case):
    make, duration = STEADY_CASES[case]
    net = make()
    density = pd.steady_state(net).rates["P"]
    burn_in = 0.2
    mc = net.run(t_end=burn_in + duration, dt=1e-4, backend="montecarlo", n_neurons=N,
                 seed=11)
    rate = mc.mean_rate("P", burn_in)
    se = np.sqrt(rate / (N * duration))
    # 3 Poisson standard errors of the N-neuron count: 0.3 % false alarms per case;
    # measured |z| 1.34, 0.69, 0.06, 0.63 (demo, large jumps, fluctuation-driven, E+I)
    assert abs(rate - density) < 3 * se, (case, density, rate, se)


def transient_z(density_result, mc_result, name="P", width=1e-3):
    _, d = density_result.binned_rates(name, width)
    _, m = mc_result.binned_rates(name, width)
    se = np.sqrt(np.maximum(d, 1e-3) / (mc_result.n_neurons * width))
    return (m - d) / se


def assert_z_consistent(z):
    assert_z_agree(z)


def test_transient_after_a_step_in_input_rate():
    """Demo population: 400 Hz, stepped to 900 Hz at 50 ms (every neuron starts at 0)."""
    net = pd.Network()
    pop = net.add_population("P", pd.LIF(tau_m=0.05, v_th=1.0, v_reset=0.0, t_ref=0.002))
    src = net.add_poisson("ext", rate=pd.piecewise([0.0, 0.05], [400.0, 900.0]))
    net.connect(src, pop, weight=0.03)
    density = net.run(t_end=0.25, dt=1e-4)
    mc = net.run(t_end=0.25, dt=1e-4, backend="montecarlo", n_neurons=N, seed=5)
    assert_z_consistent(transient_z(density, mc))


@pytest.mark.parametrize("seed", [9, 10, 11])
def test_transient_with_inhibition_and_sinusoidal_drive(seed):
    """E and I jumps, excitation modulated at 10 Hz; every neuron starts at rest (0 V, the
    default), so the first volley (9-17 ms) comes from a population concentrated in one
    cell. Measured mean z^2: 1.09, 0.92, 0.89 for seeds 9, 10, 11 on the default grid
    (930 cells down to -3.25 mV); 1.57, 1.33, 1.33 on the grid that ended at rest."""
    net = pd.Network()
    pop = net.add_population("P", pd.LIF(tau_m=TAU, v_th=THETA, v_reset=RESET, t_ref=T_REF))
    exc = net.add_poisson("e", rate=lambda t: 9000.0 * (1 + 0.5 * np.sin(2 * np.pi * 10 * t)))
    net.connect(exc, pop, weight=0.25e-3)
    net.connect(net.add_poisson("i", rate=2000.0), pop, weight=-0.3e-3)
    density = net.run(t_end=0.2, dt=1e-4)
    mc = net.run(t_end=0.2, dt=1e-4, backend="montecarlo", n_neurons=N, seed=seed)
    assert_z_consistent(transient_z(density, mc))


def test_final_density_matches_montecarlo_histogram():
    net = demo_network()
    density = net.run(t_end=0.3, dt=1e-4, record_times=[0.3])
    mc = net.run(t_end=0.3, dt=1e-4, backend="montecarlo", n_neurons=N, seed=2,
                 record_times=[0.3])
    width = density.grids["P"].axes[0].width
    d = density.densities["P"][-1] * width          # probability per cell
    m = mc.densities["P"][-1] * width
    # compare on 20 coarse bins: binomial standard error per bin
    coarse_d = d[: len(d) // 20 * 20].reshape(20, -1).sum(axis=1)
    coarse_m = m[: len(m) // 20 * 20].reshape(20, -1).sum(axis=1)
    se = np.sqrt(np.maximum(coarse_d * (1 - coarse_d), 1e-12) / N)
    # 4 binomial SE: 20 bins at 6e-5 false alarms each; the 1e-4 floor covers nearly
    # empty bins, where the binomial SE (down to 1e-6) is below one neuron in 10^4
    assert np.all(np.abs(coarse_m - coarse_d) < 4 * se + 1e-4), (coarse_d, coarse_m)
