"""The compiled Monte Carlo update generated from model text (popdens.equations.mc_codegen).

References: NumPy twins of each generated step (written out below from the equations),
closed forms of the exact flow and of the relaxation, the hand-written compiled HH and
reduced HH kernels (popdens.kernels.mc_hh) on the same loop with the same seed, and the
density solver within Monte Carlo standard errors.
"""

from __future__ import annotations

import ast
import math

import numpy as np
import pytest
from numba import njit

import popdens as pd
from popdens.equations import EquationError, mc_codegen
from popdens.kernels import mc_equation as k
from popdens.kernels import mc_interface
from popdens.kernels.montecarlo import _normal

from .test_equation_model import (
    ADEX_TEXT,
    LIF_PARAMS,
    B,
    adex,
    issue_eif,
    lif_text,
    rhh_text,
)

HH_TEXT = """
dv/dt = (i_ext - (g_na*m**3*h*(v - e_na) + g_k*n**4*(v - e_k) + g_l*(v - e_l)))/c_m : volt
dm/dt = alpha_m*(1 - m) - beta_m*m : 1
dh/dt = alpha_h*(1 - h) - beta_h*h : 1
dn/dt = alpha_n*(1 - n) - beta_n*n : 1
u = 1000*v/volt : 1
alpha_m = 1000/second/exprel(-(u + 40)/10) : hertz
beta_m = 4000/second*exp(-(u + 65)/18) : hertz
alpha_h = 70/second*exp(-(u + 65)/20) : hertz
beta_h = 1000/second/(1 + exp(-(u + 35)/10)) : hertz
alpha_n = 100/second/exprel(-(u + 55)/10) : hertz
beta_n = 125/second*exp(-(u + 65)/80) : hertz
"""


def hh_text(hand):
    return pd.EquationModel(HH_TEXT, spike_surface="n crosses spike_level upward",
                            parameters=dict(hand.params()), resting_state=hand.resting_state)


def module_of(model):
    return mc_codegen.compiled_module(model)


# --- the split and the building blocks ------------------------------------------------------
def _value(tree, **names):
    return eval(compile(ast.Expression(ast.fix_missing_locations(tree)), "<test>", "eval"),
                {"__builtins__": {}}, names)


def test_linear_split_finds_a_minus_b_y():
    m_eq = ast.parse("alpha*(1 - m) - beta*m", mode="eval").body
    a, c = mc_codegen.linear_split(m_eq, "m")
    # a = alpha, b = -c = alpha + beta: exact in binary for these values
    assert _value(a, alpha=3.0, beta=5.0) == 3.0 and _value(c, alpha=3.0, beta=5.0) == -8.0
    # v in a denominator, a power or a function: not affine
    for text in ("1/(v - 1)", "v**2", "exp(v) - v", "v*v"):
        assert mc_codegen.linear_split(ast.parse(text, mode="eval").body, "v") is None
    # through a sub-expression v is a coefficient (frozen at the midpoint)
    a, c = mc_codegen.linear_split(ast.parse("(i - g*m3*(v - e))/c_m", mode="eval").body, "v")
    vals = dict(i=2.0, g=4.0, m3=0.5, e=1.5, c_m=0.25)
    assert _value(a, **vals) == (2.0 + 4.0 * 0.5 * 1.5) / 0.25
    assert _value(c, **vals) == -4.0 * 0.5 / 0.25


@pytest.mark.parametrize("b", [-30.0, 0.0, 1e-6, 5.0, 2e3, 1e6])
def test_relax_is_the_exact_linear_solution(b):
    y, a, h = 0.3, 7.0, 1e-3
    # the closed form in a form without cancellation: y + (a - b y) (1 - e^{-bh}) / b
    want = y + a * h if b == 0.0 else y + (a - b * y) * -math.expm1(-b * h) / b
    # series below |b h| = 1e-3 (next term 2e-18) and exp above: round-off, the kernel's
    # a/b + (y - a/b) e^{-bh} cancels by eps/(bh) at most (2e-13 at bh = 1e-3)
    assert k.relax(y, a, b, h) == pytest.approx(want, rel=1e-12, abs=1e-15)
    # the predictor is the semi-implicit Euler step
    assert k.predict(y, a, b, h) == (y + h * a) / (1.0 + h * b)


def test_crossing_times():
    # straight line: (level - y0) / (y1 - y0) of the step, at once if it starts above
    assert k.linear_crossing(0.0, 2.0, 0.5, 1e-4) == 0.25e-4
    assert k.linear_crossing(0.6, 2.0, 0.5, 1e-4) == 0.0
    assert k.linear_crossing(0.0, 0.4, 0.5, 1e-4) == -1.0
    assert k.linear_crossing(0.0, math.inf, 0.5, 1e-4) == 1e-4
    # a jump above the level fires at once, even if the step ends below it
    assert k.linear_crossing(0.6, 0.4, 0.5, 1e-4) == 0.0
    assert k.exact_crossing(0.021, 0.015, 0.02, 1e-3, 0.0, -50.0, 0.0) == 0.0
    # a surface counts upward crossings only
    assert k.surface_crossing(0.6, 0.7, 0.5, 1e-4) == -1.0
    assert k.surface_crossing(0.4, 0.6, 0.5, 1e-4) == pytest.approx(0.5e-4, rel=1e-15)
    # exact flow v(s) = mu + (v0 - mu) exp(-s / tau) reaches 20 mV at tau log(...)
    mu, tau, v0 = 0.03, 0.02, 0.01
    end = k.exact_flow(v0, 0.05, mu, -1.0 / tau, 0.0)
    assert end == pytest.approx(mu + (v0 - mu) * math.exp(-0.05 / tau), rel=1e-15)
    s = k.exact_crossing(v0, end, 0.02, 0.05, mu, -1.0 / tau, 0.0)
    # log of the same ratio: round-off
    assert s == pytest.approx(tau * math.log((mu - v0) / (mu - 0.02)), rel=1e-14)
    assert k.exact_crossing(v0, v0 + 0.03, 0.02, 0.05, 0.0, 0.0, 0.6) == pytest.approx(
        0.01 / 0.6, rel=1e-15)
    # the fast path's split of the flow (exponential once per step) is the flow, bit for
    # bit: the same operations in the same order
    for rate, drift in ((-1.0 / tau, 0.0), (0.0, 0.6)):
        constants = k.exact_step_constants(0.05, rate, drift)
        assert k.exact_step(v0, constants, mu) == k.exact_flow(v0, 0.05, mu, rate, drift)


@pytest.mark.parametrize("rate, drift, first", [(-50.0, 0.0, 3e-5), (0.0, 0.6, 7e-5),
                                                (30.0, 0.0, 1e-4), (-1e4, 0.0, 0.09)])
def test_split_constants_are_those_of_each_piece(rate, drift, first):
    """The loop's one-event path splits a step's constants at the event: each piece's
    constants are exp(rate * piece) and drift * piece (NumPy), to round-off; the last
    case underflows exp(rate * first) and takes the second exponential."""
    whole = 0.1 if first > 1e-4 else 1e-4
    rest = whole - first
    (g1, d1), (g2, d2) = k.exact_split_constants(
        k.exact_step_constants(whole, rate, drift), first, rest, rate, drift)
    assert (g1, d1) == (np.exp(rate * first), drift * first)
    # a quotient of two exponentials: two roundings
    assert g2 == pytest.approx(np.exp(rate * rest), rel=1e-15, abs=1e-300)
    assert d2 == drift * rest


# --- generated steps against NumPy twins (single neurons) -------------------------------------
def _twin_trace(step, y0, t_end, h, events, jump_axis=0):
    """The loop of mc_engine.trace in Python: steps of ``h``, an event splits its step."""
    y = np.array(y0, dtype=float)
    out, t, e = [y.copy()], 0.0, 0
    for s in range(int(math.ceil(t_end / h - 1e-9))):
        t_b = min((s + 1) * h, t_end)
        while True:
            at_event = e < len(events) and events[e][0] < t_b
            t_next = max(events[e][0], t) if at_event else t_b
            y = step(y, t_next - t)
            t = t_next
            if not at_event:
                break
            y[jump_axis] += events[e][1]
            e += 1
        out.append(y.copy())
    return np.array(out)


def _traced(model, y0, t_end, h, events):
    prm = model.compiled_params()
    times = np.array([t for t, _ in events])
    weights = np.array([w for _, w in events])
    _, states, _ = module_of(model).trace(prm, np.array(y0, dtype=float), t_end, h, times,
                                          weights)
    return states


EVENTS = [(0.31e-3, 2e-3), (0.3105e-3, -1e-3), (1.7e-3, 3e-3)]


def test_generated_eif_step_is_explicit_midpoint():
    model = issue_eif(sigma=0.0, rest=-0.065)
    assert "Rush-Larsen" in type(model.compiled_params()).integrator

    def step(y, h):
        f = float(model.drift(y[0]))
        return np.array([y[0] + h * float(model.drift(y[0] + 0.5 * h * f))])

    got = _traced(model, [-0.062], 3e-3, 1e-5, EVENTS)
    want = _twin_trace(step, [-0.062], 3e-3, 1e-5, EVENTS)
    # the same formula in scalar and NumPy code: round-off over 300 steps
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=0.0)


def test_generated_adex_step_is_rush_larsen_in_w():
    model = adex()
    p = model.parsed.parameters

    def f_v(v, w):
        return (-p["g_l"] * (v - p["e_l"]) + p["g_l"] * p["delta_t"]
                * math.exp((v - p["v_t"]) / p["delta_t"]) - w + p["i_e"]) / p["c_m"]

    def step(y, h):
        v, w = y
        a_w, b_w = p["a"] * (v - p["e_l"]) / p["tau_w"], 1.0 / p["tau_w"]
        v_mid = v + 0.5 * h * f_v(v, w)
        w_mid = (w + 0.5 * h * a_w) / (1.0 + 0.5 * h * b_w)
        a_w = p["a"] * (v_mid - p["e_l"]) / p["tau_w"]
        w_inf = a_w / b_w
        return np.array([v + h * f_v(v_mid, w_mid), w_inf + (w - w_inf) * math.exp(-b_w * h)])

    y0 = [-0.065, 20e-12]
    got = _traced(model, y0, 3e-3, 1e-5, EVENTS)
    want = _twin_trace(step, y0, 3e-3, 1e-5, EVENTS)
    # v: round-off; w: the twin's a/b + (w - a/b) e^{-bh} cancels (b h = 7e-5), the
    # kernel's series does not: eps / (b h) ~ 3e-12 of w's step, ~1e-15 of w
    scale = np.abs(want).max(axis=0)
    np.testing.assert_array_less(np.abs(got - want).max(axis=0), 1e-12 * scale)


def test_generated_lif_is_the_exact_flow():
    model = lif_text()
    prm = model.compiled_params()
    assert type(prm).exact and "exact exponential flow" in type(prm).integrator
    assert (prm.k_flow_fixed, prm.k_flow_rate) == (0.0, -50.0)   # e_l and -1/tau_m

    def step(y, h):
        return y * math.exp(-h / 0.02)

    got = _traced(model, [0.015], 3e-3, 1e-4, EVENTS)
    want = _twin_trace(step, [0.015], 3e-3, 1e-4, EVENTS)
    # exp(-50 h) against exp(-h / 0.02): round-off
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-18)


@njit
def _reset_and_release(prm, x):
    held = mc_interface.hold(prm, x)
    return held, mc_interface.release(prm, held)


@njit
def _noisy_step(prm, x, h, state):
    return mc_interface.advance_random(prm, x, h, state), mc_interface.advance(prm, x, h)


def test_generated_hold_is_the_density_reset_map():
    """hold + release against EquationModel.refractory_map (NumPy, Runge-Kutta): 'w += b'
    at the threshold, then w's drift over t_ref with v at its reset."""
    model = adex(refractory=2e-3)
    prm = model.compiled_params()
    module_of(model)
    held, released = _reset_and_release(prm, (-0.0401, 100e-12))
    assert held[0] == math.inf and held[1] == released[1] and released[0] == -70.6e-3
    want = float(model.refractory_map(np.array([100e-12]))[0])
    # 200 Rush-Larsen steps of 10 us against the density's RK4 flow: measured 2.7e-13
    # relative (w relaxes with tau_w = 144 ms: both integrators' errors are tiny)
    assert released[1] == pytest.approx(want, rel=1e-11)


def test_generated_noise_is_an_euler_maruyama_increment():
    model = issue_eif()
    prm = model.compiled_params()
    module_of(model)
    h, state = 2e-5, np.uint64(12345)
    (noisy, _), plain = _noisy_step(prm, (-0.06,), h, state)
    z, _ = _normal(state)
    # the deterministic step plus g sqrt(h) z, g = sigma / sqrt(tau): round-off
    g = 4e-3 / math.sqrt(20e-3)
    assert noisy[0] == pytest.approx(plain[0] + g * math.sqrt(h) * z, rel=1e-15, abs=1e-18)


# --- the same loop and seed as the hand-written kernels ----------------------------------------
def _compiled_mc(model, grid, t_end=0.05, n=200):
    net = pd.Network()
    pop = net.add_population("H", model, grid=grid)
    net.connect(net.add_poisson("ext", 4000.0), pop, weight=2e-3)
    return net.run(t_end, 1e-4, backend="montecarlo", n_neurons=n, seed=3)


@pytest.mark.parametrize("kind", ["hh", "reduced"])
def test_hh_text_runs_like_the_hand_written_kernel(kind):
    if kind == "hh":
        hand = pd.HodgkinHuxley()
        text = hh_text(hand)
        grid = pd.Grid(v=(-0.09, 0.06, 30), m=(0, 1, 5), h=(0, 1, 5), n=(0, 1, 5))
    else:
        hand = pd.ReducedHH()
        text = rhh_text(hand.resting_state)
        grid = pd.Grid(v=(-0.082, 0.057, 139), n=(0.0, 1.0, 40))
    a, b = _compiled_mc(hand, grid), _compiled_mc(text, grid)
    assert a.rates["H"].sum() > 100.0 and "Rush-Larsen" in b.info["integrator"]["H"]
    # the same events (one generator stream), the same spikes in the same steps
    np.testing.assert_array_equal(a.rates["H"], b.rates["H"])
    ya, yb = a.info["state"]["y"], b.info["state"]["y"]
    # not bit-identical: the hand-written kernel computes the six rates from powers of one
    # exp (~1e-14 relative, mc_hh.hh_rates), the text calls exp/expm1 for each, and the
    # membrane's a - b v is summed in another order. Measured after 0.05 s (500 steps of
    # 10 us per 5 ms, spiking): HH 1.04e-12 of v's range, 6e-13 of the gates'; bound 3e-12
    scale = np.abs(ya).max(axis=0)
    np.testing.assert_array_less(np.abs(ya - yb).max(axis=0), 3e-12 * scale)


# --- resets in the Monte Carlo ----------------------------------------------------------------
def test_adex_monte_carlo_adds_b_at_each_spike():
    """Without decay of w (a = 0, tau_w = 1000 s) each neuron's w is b times its spikes:
    the generated hold applies 'w += b' once per spike."""
    net = pd.Network()
    pop = net.add_population("A", adex(a=0.0, tau_w=1e3, refractory=2e-3))
    net.connect(net.add_poisson("ext", 3000.0), pop, weight=1e-3)
    n = 500
    res = net.run(0.06, 1e-4, backend="montecarlo", n_neurons=n, seed=2)
    spikes = float(np.sum(res.rates["A"]) * 1e-4 * n)
    w = res.info["state"]["y"][:, 1]
    assert spikes > 3 * n
    # w decays by at most 1 - exp(-0.06 / 1000) = 6e-5 over the run: bound 1e-4
    assert float(np.sum(w)) == pytest.approx(B * spikes, rel=1e-4)


# --- Monte Carlo against the density --------------------------------------------------------
def _binned_z(density, mc, n, dt, bins):
    d = density.reshape(bins, -1).mean(axis=1)
    m = mc.reshape(bins, -1).mean(axis=1)
    se = np.sqrt(np.maximum(d, 1e-12) / (n * dt * density.size / bins))
    return (m - d) / se, d


@pytest.mark.parametrize("dt", [1e-4, 1e-3])
def test_lif_text_monte_carlo_spikes_like_the_lif_kernel(dt):
    """Same seed, same exact flow, same event and threshold times: the LIF written as
    text on the compiled loop fires the same spikes in the same steps as pd.LIF on its
    own kernel (kernels/montecarlo.py), which draws its random numbers in the same
    order."""
    rates = []
    for model in (lif_text(), pd.LIF(**LIF_PARAMS)):
        net = pd.Network()
        pop = net.add_population("E", model, grid=pd.Grid(v=(-0.01, 0.02, 300)))
        net.connect(net.add_poisson("x", 2500.0), pop, weight=0.5e-3)
        net.connect(net.add_poisson("i", 400.0), pop, weight=-0.3e-3)
        rates.append(net.run(0.1, dt, backend="montecarlo", n_neurons=2000,
                             seed=1).rates["E"])
    assert rates[1].mean() > 20.0
    np.testing.assert_array_equal(rates[0], rates[1])


def test_lif_text_monte_carlo_matches_the_density_at_a_coarse_step():
    """The exact-flow path advances from event to event, so the reporting step does not
    matter: at dt = 1 ms (one segment may outlast a jump's excursion above threshold)
    the stationary rate is the density's."""
    net = pd.Network()
    pop = net.add_population("E", lif_text(), grid=pd.Grid(v=(-0.01, 0.02, 300)))
    net.connect(net.add_poisson("x", 2500.0), pop, weight=0.5e-3)
    net.connect(net.add_poisson("i", 400.0), pop, weight=-0.3e-3)
    density = float(np.mean(net.run(0.4, 1e-4).rates["E"][1000:]))
    n, t0, t_end = 10_000, 0.1, 0.4
    mc = net.run(t_end, 1e-3, backend="montecarlo", n_neurons=n, seed=4).rates["E"][100:]
    spikes = float(np.sum(mc)) * n * 1e-3
    rate, se = spikes / (n * (t_end - t0)), math.sqrt(spikes) / (n * (t_end - t0))
    # 3 standard errors (Poisson counts, 0.11 Hz); missing spikes after jumps above
    # threshold cost 1.7 Hz here (measured before the fix)
    assert abs(rate - density) < 3.0 * se, (rate, density, se)


def test_eif_transient_monte_carlo_matches_density():
    """The issue's EIF (white noise, Euler-Maruyama with Brownian-bridge crossings)
    from its reset: the first 100 ms of the rate, Monte Carlo against the density."""
    rates = {}
    n = 4000
    for backend in ("density", "montecarlo"):
        net = pd.Network()
        net.add_population("E", issue_eif(), grid=pd.Grid(v=(-0.09, -0.03, 600)))
        options = dict(backend="montecarlo", n_neurons=n, seed=11, internal_dt=2e-5) \
            if backend != "density" else {}
        rates[backend] = net.run(0.1, 1e-4, **options).rates["E"]
    z, d = _binned_z(rates["density"], rates["montecarlo"], n, 1e-4, 20)
    assert d.max() > 30.0
    z = z[d > 0.0]
    # each bin within 3.5 SE (probability 1 % among 20 bins), mean z within 3 / sqrt(bins)
    assert np.abs(z).max() < 3.5, z
    assert abs(z.mean()) < 3.0 / math.sqrt(z.size), z


def test_adex_transient_monte_carlo_matches_density():
    """A step of input at 10 ms: the rate peaks and decays as w builds up (adaptation);
    the Monte Carlo follows the density within its Poisson standard errors."""
    model = adex(refractory=2e-3)
    rates = {}
    n = 4000
    for backend in ("density", "montecarlo"):
        net = pd.Network()
        pop = net.add_population("A", model)
        net.connect(net.add_poisson("ext", pd.piecewise([0.0, 0.01], [0.0, 3000.0])), pop,
                    weight=1e-3)
        options = dict(backend="montecarlo", n_neurons=n, seed=5) if backend != "density" \
            else {}
        rates[backend] = net.run(0.06, 1e-4, **options).rates["A"]
    z, d = _binned_z(rates["density"], rates["montecarlo"], n, 1e-4, 24)
    assert d.max() > 1.5 * d[-4:].mean() > 0.0   # adaptation: the rate decays after its peak
    z = z[d > 0.0]   # before the input neither fires
    # each bin within 3.5 SE (a 3.5 SE excursion among 20 bins has probability 1 %;
    # measured over 0.12 s: max 2.3), and no bias: the mean z within 3 / sqrt(bins)
    # (measured -0.06)
    assert np.abs(z).max() < 3.5, z
    assert abs(z.mean()) < 3.0 / math.sqrt(z.size), z


# --- the cache and the generated file ----------------------------------------------------------
def test_generated_file_is_reused_and_keyed_on_the_text(tmp_path, monkeypatch):
    monkeypatch.setenv("POPDENS_CACHE_DIR", str(tmp_path))
    folder = tmp_path / "equations"
    lif_text().compiled_params()
    files = sorted(folder.glob("*.py"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    # a second construction, and other parameter values: the same file, not rewritten
    lif_text(e_l=-1e-3).compiled_params()
    assert sorted(folder.glob("*.py")) == files and files[0].stat().st_mtime_ns == stamp
    # another text: another file
    pd.EquationModel("dv/dt = (e_l - v)/tau_m + 0*v/tau_m : volt", threshold="v > v_th",
                     reset="v = v_reset", parameters=dict(e_l=0.0, tau_m=0.02, v_th=0.02,
                                                          v_reset=0.01)).compiled_params()
    assert len(list(folder.glob("*.py"))) == 2


TEMPLATE_NAMES = {
    "math", "NamedTuple", "njit", "mc_interface", "Params", "EquationParams", "exact",
    "integrator", "float", "int", "max", "min", "abs", "range", "simulate", "p", "x", "y",
    "i", "h", "c", "half", "state", "root", "duration", "weight", "reversal", "variance",
    "x_new", "prm", "y0", "t_end", "h_int", "event_times", "event_weights", "step_begin",
    "step_end", "dt", "models", "pops", "inputs", "wiring", "rec", "step_population", "k",
    "pending"}


def test_no_user_text_reaches_the_generated_file(tmp_path, monkeypatch):
    monkeypatch.setenv("POPDENS_CACHE_DIR", str(tmp_path))
    hostile = ["dv/dt = __import__('os').system('x') : volt",
               "dv/dt = v.__class__ : volt", "dv/dt = (lambda: 1)() : volt",
               "dv/dt = v[0] : volt", "dv/dt = 10**10**10 : volt"]
    for text in hostile:
        with pytest.raises(EquationError, match="line 2"):
            pd.EquationModel("\n" + text, threshold="v > 1", reset="v = 0")
    assert not (tmp_path / "equations").exists()   # refused before any file is written
    # comments and the text's spelling stay out: only emitted trees and fixed templates
    model = pd.EquationModel(ADEX_TEXT + "# import os; os.system('rm')\n",
                             threshold="v > v_cut", reset="v = v_r; w += b",
                             parameters=dict(adex().parsed.parameters))
    model.compiled_params()
    (path,) = (tmp_path / "equations").glob("*.py")
    source = path.read_text()
    assert "import os" not in source and "system" not in source
    tree = ast.parse(source)
    allowed_modules = {"math", "typing", "numba", "popdens.kernels",
                       "popdens.kernels.mc_engine"}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            assert (node.module if isinstance(node, ast.ImportFrom) else
                    node.names[0].name) in allowed_modules
        if isinstance(node, ast.Name):
            name = node.id.split("_")[0] if node.id.startswith("EquationParams_") else node.id
            # every name is a prefixed checked name, a local of the template or a module
            assert name.startswith(("s_", "p_", "e_", "k_", "a_", "b_", "x_", "z_", "_")) or \
                name in TEMPLATE_NAMES, node.id
