"""Which Monte Carlo engine, and which entry point of the compiled loop, a network runs
on (popdens.backends.montecarlo_nd): built-in models on the disk-cached loop, one
generated equation model on the loop cached with its module, several on the loop
compiled per process, white-noise inputs to equation models on the NumPy engine."""

from __future__ import annotations

import numpy as np

import popdens as pd
from popdens.backends import montecarlo_nd
from popdens.equations import mc_codegen
from popdens.kernels import mc_engine

LIF_DRIFT = "dv/dt = (e_l - v)/tau_m"
LIF_VALUES = dict(e_l=0.0, tau_m=0.02, v_th=0.02, v_reset=0.01)


def _lif_text(extra=""):
    return pd.EquationModel(f"{LIF_DRIFT}{extra} : volt", threshold="v > v_th", reset="v = v_reset",
                            refractory=2e-3, parameters=LIF_VALUES)


def test_loop_entry_for_built_in_and_generated_models():
    hh = pd.HodgkinHuxley().compiled_params()
    text = _lif_text().compiled_params()
    other = _lif_text(" + 0*v/tau_m").compiled_params()
    assert montecarlo_nd._loop_for((hh,)) is mc_engine.simulate
    # one generated class (beside built-in ones): its module's cached entry point
    module = mc_codegen.compiled_module(_lif_text())
    assert montecarlo_nd._loop_for((text, hh)) is module.simulate
    assert montecarlo_nd._loop_for((text, text)) is module.simulate
    # two generated classes: a cache index of one module would name the other's class
    assert montecarlo_nd._loop_for((text, other)) is mc_engine.simulate_uncached


def test_white_noise_inputs_to_equation_models_stay_on_the_numpy_engine():
    net = pd.Network()
    pop = net.add_population("E", _lif_text(), grid=pd.Grid(v=(-0.01, 0.02, 30)))
    net.connect(net.add_poisson("x", 1000.0), pop, weight=0.9e-3, input="diffusion")
    assert montecarlo_nd._on_numpy_engine(net)
    res = net.run(2e-3, 1e-4, backend="montecarlo", n_neurons=50, seed=1)
    assert "first order" in res.info["integrator"]["E"]   # the interface engine's text
    jumps = pd.Network()
    pop = jumps.add_population("E", _lif_text(), grid=pd.Grid(v=(-0.01, 0.02, 30)))
    jumps.connect(jumps.add_poisson("x", 1000.0), pop, weight=0.9e-3)
    assert not montecarlo_nd._on_numpy_engine(jumps)


def test_conductance_jumps_of_an_equation_model_move_its_input_variable():
    """A conductance event moves the input variable a fraction ``weight`` toward the
    reversal, whatever its name: with u starting at 0 and events toward 1 V, u after
    k events is 1 - (1 - w)^k on the compiled loop (u does not move otherwise)."""
    model = pd.EquationModel("du/dt = 0*u/tau : volt", spike_surface="u crosses u_s upward",
                             parameters=dict(tau=1.0, u_s=2.0), resting_state=0.0)
    net = pd.Network()
    pop = net.add_population("U", model, grid=pd.Grid(u=(-1.0, 3.0, 4)))
    net.connect(net.add_poisson("x", 100.0), pop, weight=0.1, reversal=1.0)
    res = net.run(0.05, 1e-3, backend="montecarlo", n_neurons=200, seed=1)
    u = res.info["state"]["y"][:, 0]
    counts = np.log1p(-u) / np.log1p(-0.1)
    assert res.info["input_events"]["U"] > 500
    # whole event counts per neuron (round-off of the logarithms: 1e-9), summing to the
    # events the loop counted
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-9)
    assert int(np.round(counts).sum()) == res.info["input_events"]["U"]
    # the surface at 2 V is never reached (the exact flow of du/dt = 0): no spikes
    assert res.rates["U"].sum() == 0.0


def test_a_surface_counts_each_upward_crossing_once():
    """du/dt = r (exact flow, constant drift) through the surface u = 1 from u = 0: one
    spike per neuron, at t = 1 / r = 25 ms, however long it stays above."""
    model = pd.EquationModel("du/dt = r : volt", spike_surface="u crosses u_s upward",
                             parameters=dict(r=40.0, u_s=1.0), resting_state=0.0)
    net = pd.Network()
    net.add_population("U", model, grid=pd.Grid(u=(-1.0, 3.0, 4)))
    res = net.run(0.05, 1e-3, backend="montecarlo", n_neurons=10, seed=1)
    # 10 spikes, all in step 24, which ends at t = 25 ms
    assert res.rates["U"].sum() * 10 * 1e-3 == 10.0
    assert np.flatnonzero(res.rates["U"]).tolist() == [24]
