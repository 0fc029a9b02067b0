"""pd.LIF in the model-agnostic compiled Monte Carlo loop (kernels/mc_engine.py with
kernels/mc_lif.py, run through backends/montecarlo_nd.py) against the 1D LIF kernel
(kernels/montecarlo.py, what backend="montecarlo" runs for LIF networks).

Both draw the same random numbers in the same order (Exp(1) event targets, a uniform per
event to pick the connection, Exp(1) at each release), so with one seed they simulate the
same spikes wherever round-off does not change a threshold decision; with different
seeds their rates must agree within sampling error."""

from __future__ import annotations

import math

import numpy as np
import pytest

import popdens as pd
from popdens.backends import montecarlo_nd

from ..reference import assert_z_agree

DT = 1e-4


def _demo():
    net = pd.Network()
    ext = net.add_poisson("ext", rate=800.0)
    pop = net.add_population("E", pd.LIF(tau_m=0.05, v_th=1.0, v_reset=0.0))
    net.connect(ext, pop, weight=0.03)
    return net


def _ei_network(conductance=False):
    """Excitatory and inhibitory LIF populations with jump input, recurrent connections
    with a fixed and a gamma-distributed delay, optionally a conductance input."""
    lif = pd.LIF(tau_m=20e-3, v_th=20e-3, v_reset=10e-3, e_l=0.0, t_ref=2e-3)
    net = pd.Network()
    drive = net.add_poisson("ext", rate=2400.0)
    exc = net.add_population("E", lif, grid=pd.Grid(v=(-0.01, 0.02, 300)))
    inh = net.add_population("I", lif, grid=pd.Grid(v=(-0.01, 0.02, 300)))
    for post in (exc, inh):
        net.connect(drive, post, weight=0.5e-3)
        net.connect(exc, post, weight=0.2e-3, n_syn=40, delay=1e-3)
        net.connect(inh, post, weight=-0.5e-3, n_syn=20,
                    delay=pd.delays.gamma(mean=3e-3, shape=4.0))
    if conductance:
        net.connect(net.add_poisson("ampa", 500.0), exc, weight=0.01, reversal=60e-3)
    return net


def _kernel(net, t_end, n, seed, **options):
    return net.run(t_end, DT, backend="montecarlo", n_neurons=n, seed=seed, **options)


def _loop(net, t_end, n, seed, **options):
    res = montecarlo_nd.run(net, t_end, DT, n_neurons=n, seed=seed, **options)
    assert res.info["integrator"]["E"].startswith("exact")   # the compiled LIF update
    return res


def _binned_counts(res, name, n, settle, bin_steps):
    """Spike counts of population ``name`` in bins of ``bin_steps`` steps after
    ``settle`` seconds."""
    counts = np.round(res.rates[name] * n * DT)[int(round(settle / DT)):]
    bins = counts.size // bin_steps
    return counts[:bins * bin_steps].reshape(bins, bin_steps).sum(axis=1)


def test_demo_network_same_spikes_with_one_seed_same_statistics_with_two():
    net, n, t_end = _demo(), 5000, 0.3
    kernel = _kernel(net, t_end, n, seed=1)
    # the same random numbers, the same operations up to round-off: identical spikes
    np.testing.assert_array_equal(_loop(net, t_end, n, seed=1).rates["E"], kernel.rates["E"])
    other = _loop(net, t_end, n, seed=2)
    a, b = (_binned_counts(r, "E", n, 0.05, 20) for r in (kernel, other))
    # independent neurons, counts of ~120 per 2 ms bin: Poisson z-scores (measured mean
    # z 0.001, mean z^2 0.99)
    assert_z_agree((a - b) / np.sqrt(a + b), "demo")


def test_rate_coupled_ei_network_is_identical_with_one_seed():
    """connectivity="poisson": events at the measured, delayed rate of the other
    population; the loop reproduces the kernel spike for spike (measured: identical
    counts in all 1000 steps of both populations)."""
    net, n, t_end = _ei_network(), 2000, 0.1
    kernel = _kernel(net, t_end, n, seed=3, connectivity="poisson")
    loop = _loop(net, t_end, n, seed=3, connectivity="poisson")
    for name in ("E", "I"):
        assert kernel.mean_rate(name, 0.02) > 10.0
        np.testing.assert_array_equal(loop.rates[name], kernel.rates[name])


@pytest.mark.parametrize("conductance", [False, True])
def test_fixed_indegree_ei_network_rates_agree_within_three_standard_errors(conductance):
    """A spiking network with drawn synapses: round-off in the ring buffers' sums makes
    the two diverge chaotically, so runs of different seeds are compared. The population
    rate fluctuates collectively (bins are not Poisson: measured variance 1.6-49 times
    the count), so the standard error of the mean difference comes from the spread of
    the binned differences themselves (10 ms bins, roughly independent)."""
    net, n, t_end, settle = _ei_network(conductance), 3000, 0.35, 0.05
    kernel = _kernel(net, t_end, n, seed=1, connectivity="fixed_indegree")
    loop = _loop(net, t_end, n, seed=2, connectivity="fixed_indegree")
    assert loop.info["synapses"] == kernel.info["synapses"]
    for name in ("E", "I"):
        a, b = (_binned_counts(r, name, n, settle, 100) for r in (kernel, loop))
        diff = a - b
        se = np.std(diff, ddof=1) / math.sqrt(diff.size)
        assert a.mean() > 10 * 100 * n * DT      # above 10 Hz
        # bias: 3 standard errors of the mean of 30 bins (measured 0.79, 0.53 SE for E, I;
        # 0.03, -0.06 SE with the conductance input)
        assert abs(diff.mean()) < 3 * se, (name, diff.mean() / se)


def test_lif_beside_an_hh_population_runs_compiled_and_fires_as_alone():
    """An LIF population in a network with a ReducedHH population runs in the compiled
    loop (before: the first-order NumPy engine); unconnected, its rate is that of the
    LIF alone in the 1D kernel within sampling error."""
    alone = _demo()
    mixed = _demo()
    hh = mixed.add_population("H", pd.ReducedHH(),
                              grid=pd.Grid(v=(-0.082, 0.057, 139), n=(0.0, 1.0, 50)))
    mixed.connect(mixed.add_poisson("drive", 2000.0), hh, weight=2e-3)
    n, t_end = 4000, 0.3
    res = mixed.run(t_end, DT, backend="montecarlo", n_neurons={"E": n, "H": 20}, seed=4)
    assert res.info["integrator"]["E"].startswith("exact")
    ref = _kernel(alone, t_end, n, seed=5)
    a, b = (_binned_counts(r, "E", n, 0.05, 20) for r in (ref, res))
    # independent neurons: Poisson z-scores (measured mean z 0.02, mean z^2 1.04)
    assert_z_agree((a - b) / np.sqrt(a + b), "mixed")
