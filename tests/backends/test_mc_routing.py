"""Which Monte Carlo engine, and which entry point of the compiled loop, a network runs
on (popdens.backends.montecarlo_nd): built-in models on the disk-cached loop, one
generated equation model on the loop cached with its module, several on the loop
compiled per process, white-noise inputs to equation models on the NumPy engine."""

from __future__ import annotations

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
    assert not montecarlo_nd._engine_supports(net)
    res = net.run(2e-3, 1e-4, backend="montecarlo", n_neurons=50, seed=1)
    assert "first order" in res.info["integrator"]["E"]   # the interface engine's text
    jumps = pd.Network()
    pop = jumps.add_population("E", _lif_text(), grid=pd.Grid(v=(-0.01, 0.02, 30)))
    jumps.connect(jumps.add_poisson("x", 1000.0), pop, weight=0.9e-3)
    assert montecarlo_nd._engine_supports(jumps)
