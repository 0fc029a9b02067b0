"""Property tests (hypothesis) over random models, grids, inputs and steps: the density
backends (coupled 1D networks, N-D ReducedHH and LIFSynaptic) conserve mass to round-off
and keep the density finite and non-negative; the Monte Carlo backends (1D and N-D) give
identical results for identical seeds. The single 1D population is covered by
tests/backends/test_density.py::test_conservation_positivity_finiteness.

Small grids, short runs and few examples: each test takes a few seconds."""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import popdens as pd

# 1e-12: a few hundred sub-steps of round-off on sums of order 1 (measured at most 9.7e-14
# over 450 examples); a scheme error would show at the size of a cell's mass, >= 1e-4
MASS_TOL = 1e-12
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])

positive_rates = st.floats(100.0, 6000.0)


@settings(max_examples=15, **SETTINGS)
@given(
    tau=st.floats(0.005, 0.05),
    t_ref=st.floats(0.0, 0.005),
    cells=st.integers(20, 200),
    rate=positive_rates,
    weight=st.floats(0.2e-3, 3e-3),
    coupling=st.lists(st.tuples(st.sampled_from([(0, 1), (1, 0), (0, 0), (1, 1)]),
                                st.floats(-2e-3, 2e-3).filter(lambda w: abs(w) > 1e-5),
                                st.floats(1.0, 50.0), st.floats(0.0, 5e-3)),
                      min_size=1, max_size=3),
    dt=st.floats(2e-5, 1e-3),
)
def test_coupled_1d_density_conserves_mass_and_stays_positive(tau, t_ref, cells, rate,
                                                               weight, coupling, dt):
    lif = pd.LIF(tau_m=tau, v_th=0.02, v_reset=0.01, t_ref=t_ref)
    net = pd.Network()
    ext = net.add_poisson("ext", rate=rate)
    pops = [net.add_population(name, lif, grid=pd.Grid(v=(-0.03, 0.02, cells)))
            for name in ("A", "B")]
    for pop in pops:
        net.connect(ext, pop, weight=weight)
    for (pre, post), w, n_syn, delay in coupling:
        net.connect(pops[pre], pops[post], weight=w, n_syn=n_syn, delay=delay)
    res = net.run(30 * dt, dt, record_times=[30 * dt])
    for name in ("A", "B"):
        total = res.info["final_mass"][name] + res.refractory[name][-1]
        # round-off (MASS_TOL's comment; measured up to 2.8e-14 over the examples)
        assert abs(total - 1.0) < MASS_TOL, (name, total)
        assert np.all(np.isfinite(res.rates[name])) and np.all(res.rates[name] >= 0)
        density = res.densities[name]
        assert np.all(np.isfinite(density)) and np.all(density >= 0)


@settings(max_examples=12, **SETTINGS)
@given(
    model=st.sampled_from(["ReducedHH", "LIFSynaptic"]),
    i_ext=st.floats(0.0, 0.1),
    tau_syn=st.floats(1e-3, 1e-2),
    v_cells=st.integers(10, 60),
    other_cells=st.integers(4, 20),
    inputs=st.lists(st.tuples(positive_rates, st.floats(-3e-3, 3e-3)
                              .filter(lambda w: abs(w) > 1e-4)), min_size=1, max_size=2),
    dt=st.floats(2e-5, 5e-4),
    scheme=st.sampled_from(["mc", "vanleer", "upwind"]),
)
def test_nd_density_conserves_mass_and_stays_positive(model, i_ext, tau_syn, v_cells,
                                                       other_cells, inputs, dt, scheme):
    if model == "ReducedHH":
        neuron = pd.ReducedHH(i_ext=i_ext)
        grid = pd.Grid(v=(-0.09, 0.06, v_cells), n=(0.0, 1.0, other_cells))
    else:
        neuron = pd.LIFSynaptic(tau_m=0.02, tau_syn=tau_syn, v_th=0.02, v_reset=0.01,
                                t_ref=0.002)
        grid = pd.Grid(v=(-0.02, 0.02, v_cells), i_syn=(-2.0, 2.0, other_cells))
    net = pd.Network()
    pop = net.add_population("P", neuron, grid=grid)
    for k, (rate, weight) in enumerate(inputs):
        net.connect(net.add_poisson(f"s{k}", rate=rate), pop, weight=weight)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # mass at a grid edge
        res = net.run(20 * dt, dt, scheme=scheme, record_times=[20 * dt])
    total = res.info["final_mass"]["P"] + res.info["refractory_mass"]["P"]
    # round-off (MASS_TOL's comment; measured up to 1.3e-14 over the examples)
    assert abs(total - 1.0) < MASS_TOL, total
    assert np.all(np.isfinite(res.rates["P"])) and np.all(res.rates["P"] >= 0)
    density = res.densities["P"]
    assert np.all(np.isfinite(density)) and np.all(density >= 0)


def _same(a, b):
    for name in a.rates:
        np.testing.assert_array_equal(a.rates[name], b.rates[name])
        np.testing.assert_array_equal(a.densities[name], b.densities[name])
    assert a.info["seed"] == b.info["seed"]


@settings(max_examples=10, **SETTINGS)
@given(
    seed=st.integers(0, 2**63),
    tau=st.floats(0.005, 0.05),
    t_ref=st.floats(0.0, 0.005),
    rate=positive_rates,
    weight=st.floats(-2e-3, 5e-3).filter(lambda w: abs(w) > 1e-5),
    n=st.integers(1, 300),
    connectivity=st.sampled_from(["fixed_indegree", "poisson"]),
    timing=st.sampled_from(["exact", "grid"]),
)
def test_montecarlo_same_seed_same_result(seed, tau, t_ref, rate, weight, n, connectivity,
                                          timing):
    lif = pd.LIF(tau_m=tau, v_th=0.02, v_reset=0.01, t_ref=t_ref)
    net = pd.Network()
    ext = net.add_poisson("ext", rate=rate)
    pop = net.add_population("E", lif, grid=pd.Grid(v=(-0.03, 0.02, 50)))
    net.connect(ext, pop, weight=weight)
    net.connect(ext, pop, weight=3e-3)       # something to fire
    net.connect(pop, pop, weight=1e-3, n_syn=1, delay=1e-3)

    def run():
        return net.run(0.02, 1e-4, backend="montecarlo", n_neurons=n, seed=seed,
                       connectivity=connectivity, timing=timing, record_times=[0.02],
                       record_spikes=5)

    a, b = run(), run()
    _same(a, b)
    assert a.info["interrupted"] is False
    for (ta, ia), (tb, ib) in zip(a.info["spikes"].values(), b.info["spikes"].values()):
        np.testing.assert_array_equal(ta, tb)
        np.testing.assert_array_equal(ia, ib)


@settings(max_examples=6, **SETTINGS)
@given(seed=st.integers(0, 2**63), rate=positive_rates, weight=st.floats(1e-3, 4e-3),
       n=st.integers(1, 40), model=st.sampled_from(["ReducedHH", "LIFSynaptic"]))
def test_montecarlo_nd_same_seed_same_result(seed, rate, weight, n, model):
    neuron = pd.ReducedHH() if model == "ReducedHH" else pd.LIFSynaptic(
        tau_m=0.02, tau_syn=0.005, v_th=0.02, v_reset=0.01, t_ref=0.002)
    net = pd.Network()
    pop = net.add_population("P", neuron)
    net.connect(net.add_poisson("ext", rate=rate), pop, weight=weight)

    def run():
        return net.run(0.005, 1e-4, backend="montecarlo", n_neurons=n, seed=seed,
                       record_times=[0.005])

    _same(run(), run())


def test_montecarlo_tiny_refractory_period_is_accepted():
    # found by test_montecarlo_same_seed_same_result: t_ref = 5e-324 made dt / t_ref
    # infinite and the spike-record sizing raised OverflowError
    net = pd.Network()
    pop = net.add_population("E", pd.LIF(tau_m=0.02, v_th=0.02, v_reset=0.01,
                                         t_ref=5e-324))
    net.connect(net.add_poisson("ext", rate=3000.0), pop, weight=3e-3)
    res = net.run(0.005, 1e-4, backend="montecarlo", n_neurons=20, seed=1,
                  record_spikes=5)
    assert res.rates["E"].size == 50
