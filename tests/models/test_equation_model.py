"""pd.EquationModel: models written as text run on both backends.

References: threshold integration (``pd.threshold_integration_1d``, checked against the
Siegert formula and an independent quadrature in tests/accuracy/test_theory_1d.py) for the EIF
with white noise; the hand-written ``pd.LIF`` and ``pd.ReducedHH`` for the same
equations written as text.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import popdens as pd
from popdens.assembly_nd import reset_map
from popdens.equations import EquationError

EIF_TEXT = """
dv/dt = (-(v - e_l) + delta_t*exp((v - v_t)/delta_t) + mu)/tau + sigma*xi/sqrt(tau) : volt
"""
EIF_PARAMS = dict(e_l=-65e-3, v_t=-59.9e-3, delta_t=3.48e-3, v_cut=-30e-3, v_reset=-68e-3,
                  tau=20e-3, mu=9e-3, sigma=4e-3)
EIF_GRID = pd.Grid(v=(-0.09, -0.03, 600))


def issue_eif(rest=None, **changes):
    """The EIF of issue 17, exactly as written there (``changes``: other parameters)."""
    return pd.EquationModel(EIF_TEXT, threshold="v > v_cut", reset="v = v_reset",
                            refractory=1.7e-3, parameters={**EIF_PARAMS, **changes},
                            resting_state=rest)


def _eif_net(model=None):
    net = pd.Network()
    net.add_population("E", model or issue_eif(), grid=EIF_GRID)
    return net


@pytest.fixture(scope="module")
def theory_rate():
    p = EIF_PARAMS

    def drift(v):
        return -(v - p["e_l"]) + p["delta_t"] * np.exp((v - p["v_t"]) / p["delta_t"]) + p["mu"]

    return pd.threshold_integration_1d(drift, p["sigma"], p["tau"], p["v_cut"], p["v_reset"],
                                       -0.09, t_ref=1.7e-3, num_cells=20_000).rate


def test_issue_eif_structure():
    m = issue_eif()
    assert isinstance(m, pd.Model) and m.state_vars == ("v",)
    assert m.spike_rule == pd.ThresholdReset("v", -30e-3, -68e-3, 1.7e-3)
    # D = g^2 / 2 with g = sigma / sqrt(tau)
    assert m.intrinsic_diffusion() == pytest.approx({"v": 4e-3 ** 2 / (2 * 20e-3)},
                                                    rel=1e-15)
    assert pd.LIF(0.02, 0.02, 0.01).intrinsic_diffusion() == {}
    # mu = 9 mV is above rheobase (no fixed point): neurons start at the reset
    assert m.resting_state == -68e-3 and not m.exact_flow
    # below rheobase the stable fixed point: -(v - e_l) + delta_t exp(..) + mu = 0
    sub = issue_eif(mu=1e-3)
    v = sub.resting_state
    # the root finder's residual; the rest between -65 and -59.9 mV
    assert abs(float(sub.drift(v))) < 1e-9 and -65e-3 < v < -59.9e-3
    assert float(sub.drift(v - 1e-3)) > 0 > float(sub.drift(v + 1e-3))   # stable


def test_issue_eif_density_and_steady_state(theory_rate):
    net = _eif_net()
    res = net.run(0.6, 1e-4)
    steady = pd.steady_state(net).rates["E"]
    # the run has relaxed (30 tau): its stationary part is the stationary solve
    assert float(np.mean(res.rates["E"][-3000:])) == pytest.approx(steady, rel=1e-7)
    # 600 cells of 0.1 mV: measured 27.4802 vs 27.4760 Hz (1.5e-4); 2e-3 allows for it
    assert steady == pytest.approx(theory_rate, rel=2e-3)


def test_intrinsic_noise_is_exactly_a_diffusion_input():
    """The text's noise (and mu) against the drift without them plus a white-noise
    diffusion input of drift mu / tau and diffusion sigma^2 / (2 tau)."""
    quiet = issue_eif(rest=-68e-3, mu=0.0, sigma=0.0)   # both start at the reset
    assert quiet.intrinsic_diffusion() == {}
    net = pd.Network()
    pop = net.add_population("E", quiet, grid=EIF_GRID)
    w = 4e-3 ** 2 / 9e-3
    net.connect(net.add_poisson("noise", 9e-3 / (20e-3 * w)), pop, weight=w,
                input="diffusion")
    a, b = _eif_net().run(0.05, 1e-4), net.run(0.05, 1e-4)
    # same operator; drifts differ by the rounding of mu / tau added in another order
    np.testing.assert_allclose(a.rates["E"], b.rates["E"], rtol=1e-9, atol=1e-9)


def _stationary_mc_rate(net, n, t_end, t0, internal_dt):
    res = net.run(t_end, 1e-3, backend="montecarlo", n_neurons=n, seed=7,
                  internal_dt=internal_dt)
    spikes = float(np.sum(res.rates["E"][int(round(t0 / 1e-3)):])) * n * 1e-3
    return spikes / (n * (t_end - t0)), math.sqrt(spikes) / (n * (t_end - t0))


def test_issue_eif_monte_carlo(theory_rate):
    rate, se = _stationary_mc_rate(_eif_net(), n=2000, t_end=0.35, t0=0.05,
                                   internal_dt=2e-5)
    # 3 standard errors (Poisson counts); the compiled loop's step bias (Euler-Maruyama,
    # Brownian-bridge crossings) measured with 20000 neurons: 27.495 +- 0.068 Hz at 20 us,
    # 27.492 +- 0.068 at 100 us, against 27.476 Hz: below 0.1 SE of this test
    assert abs(rate - theory_rate) < 3.0 * se, (rate, theory_rate, se)


# --- equations against the hand-written models ----------------------------------------------
LIF_PARAMS = dict(tau_m=0.02, v_th=0.02, v_reset=0.01, e_l=0.0, t_ref=2e-3)


def lif_text(**extra):
    p = {k: v for k, v in LIF_PARAMS.items() if k != "t_ref"}
    return pd.EquationModel("dv/dt = (e_l - v)/tau_m : volt", threshold="v > v_th",
                            reset="v = v_reset", refractory=LIF_PARAMS["t_ref"],
                            parameters={**p, **extra})


def _lif_rates(model, kind):
    net = pd.Network()
    pop = net.add_population("E", model, grid=pd.Grid(v=(-0.01, 0.02, 300)))
    if kind == "jump":
        net.connect(net.add_poisson("x", pd.piecewise([0.0, 0.05], [1500.0, 2500.0])), pop,
                    weight=0.5e-3)
        net.connect(net.add_poisson("i", 400.0), pop, weight=-0.3e-3)
    else:
        net.connect(net.add_poisson("x", 1000.0), pop, weight=0.9e-3, input="diffusion")
    return net.run(0.1, 1e-4).rates["E"]


def test_lif_from_text_reproduces_the_lif():
    text, lif = lif_text(), pd.LIF(**LIF_PARAMS)
    v = np.linspace(-0.01, 0.02, 301)
    # the same affine drift evaluated from text: round-off
    np.testing.assert_allclose(text.drift(v), lif.drift(v), rtol=1e-12, atol=0.0)
    assert text.exact_flow and text.resting_state == lif.resting_state
    # exact exponential flow of the affine drift, the same to round-off
    np.testing.assert_allclose(text.flow(v, -3e-4), lif.flow(v, -3e-4), rtol=1e-13,
                               atol=1e-16)
    # the same time constant: round-off
    assert text.time_scale == pytest.approx(lif.time_scale, rel=1e-13)
    for kind in ("jump", "diffusion"):
        a, b = _lif_rates(text, kind), _lif_rates(lif, kind)
        assert a.max() > 5.0
        # same engine, same grid: departure points equal to rounding
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9 * b.max())


RHH_TEXT = """
dv/dt = (i_ext - (g_na*m**3*h*(v - e_na) + g_k*n**4*(v - e_k) + g_l*(v - e_l)))/c_m : volt
dn/dt = alpha_n*(1 - n) - beta_n*n : 1
u = 1000*v/volt : 1
alpha_m = 1000/second/exprel(-(u + 40)/10) : hertz
beta_m = 4000/second*exp(-(u + 65)/18) : hertz
alpha_n = 100/second/exprel(-(u + 55)/10) : hertz
beta_n = 125/second*exp(-(u + 65)/80) : hertz
m = alpha_m/(alpha_m + beta_m) : 1
h = maximum(h_intercept - h_slope*n, 0) : 1
"""


def rhh_text(rest):
    hand = pd.ReducedHH()
    p = {k: v for k, v in hand.params().items() if k != "spike_level"}
    return pd.EquationModel(RHH_TEXT, spike_surface="n crosses spike_level upward",
                            parameters={**p, "spike_level": hand.spike_level},
                            resting_state=rest)


def _rhh_rates(model):
    net = pd.Network()
    pop = net.add_population("H", model, grid=pd.Grid(v=(-0.082, 0.057, 139),
                                                      n=(0.0, 1.0, 40)))
    net.connect(net.add_poisson("ext", 4000.0), pop, weight=2e-3)
    return net.run(0.03, 1e-4).rates["H"]


def test_reduced_hh_from_text_reproduces_reduced_hh():
    hand = pd.ReducedHH()
    text = rhh_text(hand.resting_state)
    assert text.spike_rule == pd.SpikeSurface("n", 0.6)
    # the grid's faces, -40 and -55 mV (the removable 0/0 of alpha_m, alpha_n) included
    v, n = np.meshgrid(np.linspace(-0.082, 0.057, 140), np.linspace(0, 1, 41))
    for got, want in zip(text.drift(v, n), hand.drift(v, n), strict=True):
        # the same formulas from text: round-off
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())
    # Newton from the reset-free start finds the hand-written rest (brentq on v)
    found = rhh_text(None)._newton_rest(np.array([-0.065, 0.3]))
    # Newton vs brentq roots
    np.testing.assert_allclose(found, hand.resting_state, rtol=1e-9)
    a, b = _rhh_rates(text), _rhh_rates(hand)
    assert a.max() > 10.0
    # rates of identical drifts through the same solver
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9 * b.max())


# --- AdEx reset on the N-D engine ------------------------------------------------------------
ADEX_TEXT = """
dv/dt = (-g_l*(v - e_l) + g_l*delta_t*exp((v - v_t)/delta_t) - w + i_e)/c_m : volt
dw/dt = (a*(v - e_l) - w)/tau_w : amp
"""
B = 80.5e-12


def adex(b=B, refractory=0.0, tau_w=144e-3, a=4e-9):
    return pd.EquationModel(
        ADEX_TEXT, threshold="v > v_cut", reset="v = v_r; w += b", refractory=refractory,
        parameters=dict(g_l=30e-9, c_m=281e-12, e_l=-70.6e-3, v_t=-50.4e-3, delta_t=2e-3,
                        a=a, tau_w=tau_w, i_e=0.6e-9, b=b, v_r=-70.6e-3, v_cut=-40e-3),
        grid=pd.Grid(v=(-0.08, -0.04, 80), w=(-20e-12, 800e-12, 82)),
        resting_state=(-70.6e-3, 0.0))


def test_adex_reset_maps_w_on_the_nd_engine():
    m = adex()
    grid = m.default_grid()
    # one addition of b: round-off
    np.testing.assert_allclose(m.refractory_map(np.array([0.0, 1e-10])), [B, 1e-10 + B],
                               rtol=1e-15)
    src, dst, weight = reset_map(m, grid, 0)
    w_c, v_c = grid.axes[1].centers, grid.axes[0].centers
    landed_w = np.bincount(src, weight * w_c[dst % grid.shape[1]])
    landed_v = np.bincount(src, weight * v_c[dst // grid.shape[1]])
    inside = w_c + B < w_c[-1]
    # the linear split keeps the first moment: each slice cell lands at (v_r, w + b)
    np.testing.assert_allclose(landed_w[inside], (w_c + B)[inside], rtol=1e-12)
    np.testing.assert_allclose(landed_v, -70.6e-3 + 0.0 * landed_v, rtol=1e-12)
    # refractory: w then relaxes for t_ref with v held at v_r (a = 0: exp(-t_ref/tau_w))
    held = adex(refractory=2e-3, a=0.0).refractory_map(np.array([1e-10]))
    np.testing.assert_allclose(held, (1e-10 + B) * math.exp(-2e-3 / 144e-3), rtol=1e-9)


def test_adex_density_w_counts_the_spikes():
    """Without decay of w (a = 0, tau_w = 1000 s) the mean of w is b times the spikes per
    neuron so far: the reset moves w, the flux through threshold counts the spikes."""
    net = pd.Network()
    pop = net.add_population("A", adex(a=0.0, tau_w=1e3))
    net.connect(net.add_poisson("ext", 3000.0), pop, weight=1e-3)
    res = net.run(0.06, 1e-4, record_times=[0.06])
    spikes = float(np.sum(res.rates["A"]) * 1e-4)
    rho = res.densities["A"][-1]
    mean_w = float(np.sum(rho.sum(axis=0) * res.grids["A"].axes[1].centers) / rho.sum())
    assert spikes > 3.0
    # measured: relative difference 1.2e-4 (w decays by 6e-5 over the run; the mass
    # firing in the last sub-step is off the grid at the record time); bound 2e-3. A w
    # axis ending at 400 pA (5 b for 6 spikes) gave -21 %: the grid must hold w.
    assert mean_w == pytest.approx(B * spikes, rel=2e-3)


# --- errors -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, error, message", [
    (dict(threshold="v < v_cut"), EquationError, "must read 'x > level'"),
    (dict(threshold="v > v_cut + v"), EquationError, "must be a constant"),
    (dict(reset="v_reset = v"), EquationError, "not a state variable"),
    (dict(threshold="u > v_cut"), EquationError, "unknown identifier 'u'"),
    (dict(reset=None), ValueError, "needs reset= setting 'v'"),
    (dict(reset="v += v_reset"), ValueError, "exactly once with '='"),
    (dict(threshold=None, reset=None), ValueError, "needs threshold="),
    (dict(spike_surface="v crosses v_cut upward"), ValueError, "not both"),
])
def test_event_errors_name_the_problem(kwargs, error, message):
    args = dict(threshold="v > v_cut", reset="v = v_reset")
    args.update(kwargs)
    events = " ".join(str(x) for x in args.values())
    args["parameters"] = {k: x for k, x in EIF_PARAMS.items()
                          if k in EIF_TEXT or k in events}   # every parameter must be used
    with pytest.raises(error, match=message):
        pd.EquationModel(EIF_TEXT, **args)


def test_hostile_text_is_refused_with_its_position():
    with pytest.raises(EquationError, match=r"line 1, column 9.*attribute"):
        pd.EquationModel("dv/dt = os.sep : volt", threshold="v > 1*volt",
                         reset="v = 0")
    with pytest.raises(EquationError, match="names starting with '_'"):
        pd.EquationModel("dv/dt = __import__ : volt", threshold="v > 1*volt", reset="v = 0")
    with pytest.raises(EquationError, match="threshold: unknown function 'Lambda'"):
        pd.EquationModel("dv/dt = -v/second : volt", threshold="v > (lambda: 1)()",
                         reset="v = 0")


def test_unsupported_noise_and_missing_grid_are_named():
    with pytest.raises(NotImplementedError, match="multiplicative"):
        pd.EquationModel("dv/dt = -v/tau + v*xi/sqrt(tau) : volt", threshold="v > 1*volt",
                         reset="v = 0", parameters=dict(tau=0.02))
    with pytest.raises(NotImplementedError, match="correlated"):
        pd.EquationModel("dv/dt = -v/tau + s*xi/sqrt(tau) : volt\n"
                         "dw/dt = -w/tau + s*xi/sqrt(tau) : volt", threshold="v > 1*volt",
                         reset="v = 0", parameters=dict(tau=0.02, s=0.01))
    net = pd.Network()
    net.add_population("E", issue_eif())
    with pytest.raises(ValueError, match=r"no default grid: pass grid=pd.Grid\(v="):
        net.run(0.01, 1e-4)
    noisy = pd.EquationModel("dv/dt = (e_l - v - w)/tau + s*xi/sqrt(tau) : volt\n"
                             "dw/dt = -w/tau : volt", threshold="v > 0.02*volt",
                             reset="v = 0.01*volt", parameters=dict(e_l=0.0, tau=0.02, s=0.004),
                             grid=pd.Grid(v=(-0.02, 0.02, 40), w=(-0.01, 0.01, 10)))
    net = pd.Network()
    net.add_population("N", noisy)
    with pytest.raises(NotImplementedError, match="population 'N'.*1D models"):
        net.run(0.01, 1e-4)
    with pytest.raises(ValueError, match="resting_state must give one finite value"):
        pd.EquationModel(EIF_TEXT, threshold="v > v_cut", reset="v = v_reset",
                         parameters=EIF_PARAMS, resting_state=(0.0, 1.0))


# --- scenario files ---------------------------------------------------------------------------
SCENARIO = '''
[run]
t_end = 0.3

[populations.E]
grid = { v = [-0.09, -0.03, 600] }

[populations.E.model]
equations = """
dv/dt = (-(v - e_l) + delta_t*exp((v - v_t)/delta_t) + mu)/tau + sigma*xi/sqrt(tau) : volt
"""
threshold = "v > v_cut"
reset = "v = v_reset"
refractory = 1.7e-3
''' + ("parameters = { e_l = -65e-3, v_t = -59.9e-3, delta_t = 3.48e-3, v_cut = -30e-3, "
       "v_reset = -68e-3, tau = 20e-3, mu = 9e-3, sigma = 4e-3 }\n")


def test_scenario_equation_model_is_the_issue_eif(tmp_path):
    path = tmp_path / "eif.toml"
    path.write_text(SCENARIO)
    scenario = pd.load_scenario(path)
    model = scenario.network.populations["E"].model
    assert isinstance(model, pd.EquationModel)
    assert model.parsed.hash == issue_eif().parsed.hash
    assert model.parsed.parameters == issue_eif().parsed.parameters
    # the same network twice through the same solver: round-off
    assert pd.steady_state(scenario.network).rates["E"] == pytest.approx(
        pd.steady_state(_eif_net()).rates["E"], rel=1e-12)   # the same network


@pytest.mark.parametrize("old, new, where", [
    # a hostile second equation: reported at its own line of the file (11)
    ("sigma*xi/sqrt(tau) : volt\n", "sigma*xi/sqrt(tau) : volt\ndw/dt = w.real : volt\n",
     ":11: populations.E.model.equations: line 2, column 9: attribute access"),
    ('"v > v_cut"', '"v < v_cut"', ":12: populations.E.model.threshold: column 1: "
                                   "threshold: the threshold must read"),
    ("refractory = 1.7e-3", "refractory = -1.0", ":14: populations.E.model.refractory: "
                                                 "must be >= 0"),
    ("threshold =", "treshold =", ":12: populations.E.model.treshold: unknown key"),
    ("mu = 9e-3", 'mu = "9 mV"', ":15: populations.E.model.parameters.mu: must be a "
                                 "number"),
])
def test_scenario_equation_errors_have_file_and_line(tmp_path, old, new, where):
    path = tmp_path / "bad.toml"
    assert old in SCENARIO
    path.write_text(SCENARIO.replace(old, new))
    with pytest.raises(pd.scenario.ScenarioError) as info:
        pd.load_scenario(path)
    assert f"{path}{where}" in str(info.value)


def test_conductance_synapses_act_on_an_input_variable_that_is_a_potential():
    """``reversal=`` needs an input variable in volts, whatever its name, on both
    backends: with ``du/dt = 0`` and events at 100 Hz moving ``u`` a fraction 0.1 toward
    1 V from 0, the density's mean is ``1 - exp(-r t w)`` (Poisson events, exactly);
    a dimensionless input variable is refused by both, naming it."""
    def network(unit):
        model = pd.EquationModel(f"du/dt = 0*u/tau : {unit}",
                                 spike_surface="u crosses u_s upward",
                                 parameters=dict(tau=1.0, u_s=2.0), resting_state=0.0)
        net = pd.Network()
        pop = net.add_population("U", model, grid=pd.Grid(u=(-1.0, 3.0, 400)))
        net.connect(net.add_poisson("x", 100.0), pop, weight=0.1, reversal=1.0)
        return net

    res = network("volt").run(0.05, 1e-3, record_times=[0.05])
    grid = res.grids["U"]
    mean = float(np.sum(res.densities["U"][-1] * grid.axes[0].centers) * grid.cell_volume)
    # the remap places each image on cells of 0.01 V; measured -1.8e-4: a cell width bounds it
    assert mean == pytest.approx(1.0 - math.exp(-100.0 * 0.05 * 0.1), abs=0.01)
    for backend in ("density", "montecarlo"):
        with pytest.raises(ValueError, match="reversal=1.0.* takes input on 'u'"):
            network("1").run(0.01, 1e-3, backend=backend, n_neurons=10, seed=1) \
                if backend == "montecarlo" else network("1").run(0.01, 1e-3)
