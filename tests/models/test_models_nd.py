"""N-D neuron models (HodgkinHuxley, ReducedHH, LIFSynaptic) and their Monte Carlo backend.

Reference numbers in the assertions were measured with these kernels; the tolerances come
from the Monte Carlo standard errors or from the measured discretisation errors.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import popdens as pd
from popdens.backends import montecarlo_nd as mc_nd
from popdens.kernels import mc_engine, mc_hh, mc_lif_synaptic
from popdens.models.hh import hh_rate_functions

# Regression value: Hz at i_ext = 10 uA/cm^2, measured with popdens' own HH kernel at
# 1.25 us steps (68.32); checked against the independent ODE solve below
# (test_hh_reference_rate_from_an_independent_ode_solve).
HH_FI_10UA = 68.3


def _hh_rate_by_solve_ivp(i_ext_ua_cm2: float, t_end_ms: float = 250.0) -> float:
    """Steady firing rate (Hz) of the classic HH neuron in mV / ms / uA/cm^2 units, the
    textbook equations written out here (nothing from popdens), integrated with scipy's
    adaptive DOP853 at rtol 1e-10; spikes are upward v = 0 mV crossings (events)."""
    from scipy.integrate import solve_ivp

    def rates(v):
        am = 0.1 * (v + 40.0) / (1.0 - math.exp(-(v + 40.0) / 10.0))
        bm = 4.0 * math.exp(-(v + 65.0) / 18.0)
        ah = 0.07 * math.exp(-(v + 65.0) / 20.0)
        bh = 1.0 / (1.0 + math.exp(-(v + 35.0) / 10.0))
        an = 0.01 * (v + 55.0) / (1.0 - math.exp(-(v + 55.0) / 10.0))
        bn = 0.125 * math.exp(-(v + 65.0) / 80.0)
        return am, bm, ah, bh, an, bn

    def field(_, y):
        v, m, h, n = y
        am, bm, ah, bh, an, bn = rates(v)
        current = (120.0 * m ** 3 * h * (v - 50.0) + 36.0 * n ** 4 * (v + 77.0)
                   + 0.3 * (v + 54.387))
        return [i_ext_ua_cm2 - current, am * (1 - m) - bm * m, ah * (1 - h) - bh * h,
                an * (1 - n) - bn * n]

    def spike(_, y):
        return y[0]

    spike.direction = 1.0
    am, bm, ah, bh, an, bn = rates(-65.0)
    rest = [-65.0, am / (am + bm), ah / (ah + bh), an / (an + bn)]
    # reference ODE solve: far tighter than the rate checks it serves
    out = solve_ivp(field, (0.0, t_end_ms), rest, method="DOP853", events=spike,
                    rtol=1e-10, atol=1e-12)
    times = out.t_events[0]
    return 1e3 / float(np.mean(np.diff(times[5:])))


# --- helpers ------------------------------------------------------------------------------
def _poisson_events(rng, rate, t_end, weight):
    count = rng.poisson(rate * t_end)
    return np.sort(rng.uniform(0.0, t_end, count)), np.full(count, weight)


def _merge(*trains):
    times = np.concatenate([t for t, _ in trains])
    weights = np.concatenate([w for _, w in trains])
    order = np.argsort(times, kind="stable")
    return times[order], weights[order]


def _v_crossings_with_dead_time(t, v, dead_time, level=0.0):
    """Upward crossings of ``v = level``, ignoring those within ``dead_time`` of the last
    counted one."""
    idx = np.flatnonzero((v[:-1] < level) & (v[1:] >= level)) + 1
    count, last = 0, -np.inf
    for i in idx:
        if t[i] - last > dead_time:
            count += 1
            last = t[i]
    return count, idx.size


def _trace(model, t_end, h, events=None, y0=None):
    events = (np.zeros(0), np.zeros(0)) if events is None else events
    y0 = np.asarray(type(model)().resting_state if y0 is None else y0, dtype=float)
    return mc_engine.trace(model.compiled_params(), y0, t_end, h, *events)


def _single_population(model, rate=None, weight=None, grid=None, init=None, **conn):
    net = pd.Network()
    pop = net.add_population("P", model, grid=grid, init=init)
    if rate is not None:
        src = net.add_poisson("ext", rate=rate)
        net.connect(src, pop, weight=weight, **conn)
    return net


# --- Hodgkin-Huxley physics ------------------------------------------------------------------
def test_hh_resting_state_is_a_fixed_point_near_minus_65_mv():
    hh = pd.HodgkinHuxley()
    rest = hh.resting_state
    assert len(rest) == hh.ndim == 4
    # the textbook rest (-65 mV; m, h, n = 0.0530, 0.5961, 0.3177) to its quoted digits
    assert rest[0] == pytest.approx(-65.0e-3, abs=0.05e-3)
    assert rest[1:] == pytest.approx((0.0530, 0.5961, 0.3177), abs=2e-4)
    dv, dm, dh, dn = hh.drift(*rest)
    assert abs(dv) < 1e-9   # V/s; a 1 uV offset would give ~3e-4 V/s
    # gate rates (1/s) at rest: round-off of the rest solve (measured 1.4e-14)
    assert max(abs(dm), abs(dh), abs(dn)) < 1e-9
    # a depolarised state is pushed back (dv/dt < 0 just above rest, gates at rest)
    assert hh.drift(rest[0] + 1e-3, *rest[1:])[0] < 0.0


def test_reduced_hh_rest_lies_on_both_nullclines():
    model = pd.ReducedHH()
    v_rest, n_rest = model.resting_state
    # the rest quoted to 0.1 mV (measured -65.094 mV); drift there: measured 1.1e-14
    assert v_rest == pytest.approx(-65.1e-3, abs=0.1e-3)
    assert max(abs(x) for x in model.drift(v_rest, n_rest)) < 1e-9
    lines = model.nullclines(np.array([v_rest]))
    # both nullclines pass through the rest (measured 1.7e-16 and 0)
    assert lines["v"][0] == pytest.approx(n_rest, abs=1e-9)
    assert lines["n"][0] == pytest.approx(n_rest, abs=1e-12)
    # dv/dt changes sign across the v-nullcline
    v = np.linspace(-0.075, -0.045, 7)
    n_v = model.nullclines(v)["v"]
    assert np.all(model.drift(v, n_v - 0.01)[0] > 0.0)
    assert np.all(model.drift(v, n_v + 0.01)[0] < 0.0)


@pytest.mark.parametrize("name, v_sing, limit", [("alpha_m", -40e-3, 1e3),
                                                  ("alpha_n", -55e-3, 1e2)])
def test_removable_singularities_are_continuous(name, v_sing, limit):
    offsets = np.array([-1e-3, -1e-5, -1e-7, -1e-9, -1e-12, 0.0, 1e-12, 1e-9, 1e-7, 1e-5,
                        1e-3])
    values = hh_rate_functions(v_sing + offsets)[name]
    assert np.all(np.isfinite(values))
    # the removable singularity's limit: round-off
    assert values[5] == pytest.approx(limit, rel=1e-12)
    # x / (1 - exp(-x)) = 1 + x/2 + x^2/12 - x^4/720 + O(x^6), x = offset / 10 mV
    x = 1e3 * offsets / 10.0
    expected = limit * (1.0 + x / 2.0 + x ** 2 / 12.0 - x ** 4 / 720.0)
    # the next series term, x^6 / 30240, is 3e-11 at the largest x = 0.1
    np.testing.assert_allclose(values, expected, rtol=1e-10)


def test_drift_finite_on_and_around_default_grids():
    for model in (pd.HodgkinHuxley(), pd.ReducedHH()):
        grid = model.default_grid([(4000.0, 2e-3, "jump"), (1000.0, -2e-3, "jump")])
        faces = [np.concatenate([[a.lower - a.width], a.faces, [a.upper + a.width]])
                 for a in grid.axes]
        mesh = np.meshgrid(*faces, indexing="ij", sparse=True)
        with np.errstate(all="raise"):
            velocities = model.drift(*mesh)
        assert len(velocities) == model.ndim
        assert all(np.all(np.isfinite(a)) for a in velocities)


def test_compiled_drift_matches_model_drift():
    rng = np.random.default_rng(7)
    v = np.concatenate([rng.uniform(-0.1, 0.06, 2000), [-0.04, -0.055, -0.04 + 1e-9]])
    gates = rng.uniform(0.0, 1.0, (3, v.size))
    hh = pd.HodgkinHuxley(i_ext=0.05)
    # the same formulas compiled by numba: round-off (drift up to ~1e4) (measured 4.3e-10 abs)
    np.testing.assert_allclose(mc_hh.hh_drift(v, *gates, hh.compiled_params()),
                               np.array(hh.drift(v, *gates)), rtol=1e-10, atol=1e-9)
    red = pd.ReducedHH(i_ext=0.05)
    # likewise for ReducedHH (measured 4.9e-10 abs)
    np.testing.assert_allclose(mc_hh.reduced_hh_drift(v, gates[2], red.compiled_params()),
                               np.array(red.drift(v, gates[2])), rtol=1e-10, atol=1e-9)


# --- spikes: n-level crossings ------------------------------------------------------------------
def test_hh_reference_rate_from_an_independent_ode_solve():
    # the textbook HH at 10 uA/cm^2: 68.32 Hz from scipy (measured), so the regression
    # value HH_FI_10UA = 68.3 is right to its 0.1 Hz tolerance, independently of popdens
    independent = _hh_rate_by_solve_ivp(10.0)
    assert independent == pytest.approx(HH_FI_10UA, abs=0.05)   # 0.05: rounding of 68.3


def test_hh_constant_current_rate_matches_known_value():
    """Classic HH at 10 uA/cm^2 fires about 68 Hz; the MC backend counts exactly the
    v = 0 upward crossings of the same neuron's trace on this noise-free train."""
    hh = pd.HodgkinHuxley(i_ext=0.1)
    grid = hh.default_grid()
    # start from the rest of the unstimulated neuron (a current step at t = 0)
    net = _single_population(hh, grid=grid,
                             init=_point_init(grid, pd.HodgkinHuxley().resting_state))
    res = mc_nd.run(net, t_end=1.2, dt=1e-3, n_neurons=3, seed=1)
    t, states, spikes = _trace(hh, 1.2, 1e-5)
    v_count, raw = _v_crossings_with_dead_time(t, states[:, 0], 2e-3)
    assert v_count == raw == spikes
    # the point init samples inside one cell around rest: the same spike count
    counts = res.rates["P"] * 3 * res.dt
    # at most one spike more or less per neuron from the init's spread (measured equal)
    assert counts.sum() == pytest.approx(3 * spikes, abs=3)
    # steady rate from the inter-spike interval
    n = states[:, 3]
    idx = np.flatnonzero((n[:-1] < 0.6) & (n[1:] >= 0.6))
    frac = (0.6 - n[idx]) / (n[idx + 1] - n[idx])
    crossing_times = t[idx] + frac * (t[idx + 1] - t[idx])
    rate = 1.0 / np.mean(np.diff(crossing_times[5:]))
    # HH_FI_10UA to 0.1 Hz (measured 68.311 Hz; an independent ODE solve: 68.32)
    assert rate == pytest.approx(HH_FI_10UA, abs=0.1)


def _point_init(grid, point):
    """An init callable that puts all mass in the cell containing ``point``."""
    def init(*centers):
        mask = np.ones(np.broadcast_shapes(*(c.shape for c in centers)), dtype=bool)
        for axis, c, x in zip(grid.axes, centers, point):
            mask &= (c - 0.5 * axis.width <= x) & (x < c + 0.5 * axis.width)
        return mask.astype(float)
    return init


@pytest.mark.parametrize("model_cls", [pd.HodgkinHuxley, pd.ReducedHH])
def test_spike_counted_once_per_action_potential_with_noisy_input(model_cls):
    """n-level crossings equal v = 0 crossings with a 2 ms dead time, while raw v = 0
    crossings count extra re-crossings on the falling phase."""
    model = model_cls()
    rng = np.random.default_rng(11)
    t_end = 2.0
    raw_total = counted_total = 0
    for rate, weight in ((2000.0, 2e-3), (8000.0, 2e-3), (3000.0, 4e-3)):
        events = _poisson_events(rng, rate, t_end, weight)
        t, states, spikes = _trace(model, t_end, 1e-5, events)
        counted, raw = _v_crossings_with_dead_time(t, states[:, 0], 2e-3)
        assert spikes == counted
        assert spikes > 50
        raw_total += raw
        counted_total += counted
    # the test is sensitive: the naive v = 0 count is clearly larger
    assert raw_total > 1.05 * counted_total
    # mixed excitation and inhibition
    events = _merge(_poisson_events(rng, 8000.0, t_end, 2e-3),
                    _poisson_events(rng, 2000.0, t_end, -2e-3))
    t, states, spikes = _trace(model, t_end, 1e-5, events)
    assert spikes == _v_crossings_with_dead_time(t, states[:, 0], 2e-3)[0]


def test_subthreshold_fluctuations_stay_below_the_spike_level():
    """Away from action potentials (3 ms before to 15 ms after any v = 0 crossing) n stays
    well below the level, so the plane is never reached without a spike."""
    rng = np.random.default_rng(5)
    for model, limit in ((pd.HodgkinHuxley(), 0.47), (pd.ReducedHH(), 0.45)):
        events = _poisson_events(rng, 1500.0, 3.0, 2e-3)
        t, states, _ = _trace(model, 3.0, 1e-5, events)
        v, n = states[:, 0], states[:, -1]
        away = np.ones(t.size, dtype=bool)
        for i in np.flatnonzero((v[:-1] < 0.0) & (v[1:] >= 0.0)):
            away[max(0, i - 300):i + 1500] = False
        assert away.sum() > t.size // 10
        assert n[away].max() < limit < model.spike_level


# --- Monte Carlo integrator convergence -------------------------------------------------
@pytest.mark.parametrize("model_cls, min_order", [
    (pd.HodgkinHuxley, 1.75), (pd.ReducedHH, 1.4)])
def test_rush_larsen_step_is_second_order(model_cls, min_order):
    """Global error of v at t = 30 ms (firing at 10 uA/cm^2) against a 0.3125 us run.
    Measured orders for steps 80 -> 5 us: HH 1.61, 1.80, 1.90, 1.96; reduced 1.36, 1.50,
    1.63, 1.74 (pre-asymptotic). Firing-rate error at the default 10 us: 1.9e-4 (HH) and
    5.2e-4 (reduced) relative."""
    model = model_cls(i_ext=0.1)
    ref = _trace(model, 0.03, 0.3125e-6)[1][-1, 0]
    steps = [40e-6, 20e-6, 10e-6, 5e-6]
    errors = np.array([abs(_trace(model, 0.03, h)[1][-1, 0] - ref) for h in steps])
    orders = np.log2(errors[:-1] / errors[1:])
    # pre-asymptotic orders tending to 2 (docstring; measured up to 1.96 here): above
    # min_order and not beyond 2 by more than a step's noise
    assert np.all(orders[1:] > min_order)
    assert np.all(orders < 2.3)
    assert errors[2] < 1e-4  # V, at the default 10 us (measured 2.1e-5 and 3.8e-5)


def test_mc_rate_converges_with_internal_dt():
    """Same seed, same events: the noisy population rate converges as the internal step
    shrinks."""
    net = _single_population(pd.HodgkinHuxley(), rate=4000.0, weight=2e-3)
    counts = {}
    for h in (100e-6, 20e-6, 10e-6, 2.5e-6):
        res = mc_nd.run(net, t_end=0.1, dt=1e-3, n_neurons=100, seed=3, internal_dt=h)
        # the option echoed back: round-off
        assert res.info["internal_dt"] == pytest.approx(h)
        counts[h] = res.rates["P"].sum() * 100 * 1e-3
    ref = counts[2.5e-6]
    assert ref > 300            # precondition: enough spikes to count a difference
    deviation = {h: abs(c - ref) for h, c in counts.items()}
    # at the default 10 us at most 2 spikes or 0.2 % of the count (measured 0)
    assert deviation[10e-6] <= max(2, 0.002 * ref)
    # converges: the coarse step is no closer (measured 5 against 0 spikes)
    assert deviation[100e-6] >= deviation[10e-6]


# --- HH 4D density against Monte Carlo ---------------------------------------------------
@pytest.mark.slow
def test_hh_4d_default_grid_density_matches_monte_carlo():
    """The 4D density on the model's default grid (2 mV x 30 x 30 x 30 cells) against
    Monte Carlo (N = 2e4): 2 mV jumps at 4 kHz from rest, rate over [30, 60) ms. The
    issue's bar for a default grid is 10 %; measured -5.1 % here, -1.7 % / -3.8 % on the
    full 2 kHz / 4 kHz scenario of ``benchmarks/bench_hh4d.py``; 20 cells per gate are
    13.5 % low, so the test also tells a finer default from a coarser one."""
    hh = pd.HodgkinHuxley()
    net = _single_population(hh, rate=4000.0, weight=2e-3)
    assert net.grid_of(net.populations["P"]).shape == (70, 30, 30, 30)
    density = net.run(t_end=0.06, dt=1e-4).mean_rate("P", 0.03, 0.06)
    n_neurons = 20_000
    mc = net.run(t_end=0.06, dt=1e-4, backend="montecarlo", n_neurons=n_neurons, seed=3)
    reference = mc.mean_rate("P", 0.03, 0.06)
    se = math.sqrt(reference / (n_neurons * 0.03))   # 0.33 Hz
    assert abs(density - reference) < 0.10 * reference + 3 * se
    assert density < reference  # gate-axis diffusion damps the cycle: approached from below


# --- LIF with synaptic current -----------------------------------------------------------------
def test_lif_synaptic_flow_and_kernel_twin_agree():
    model = pd.LIFSynaptic(tau_m=20e-3, tau_syn=5e-3, v_th=20e-3, v_reset=10e-3, e_l=1e-3)
    v, i = model.flow(5e-3, 2.0, 3e-3)
    kv, ki = mc_lif_synaptic.lif_synaptic_flow(5e-3, 2.0, 3e-3, 1e-3, 20e-3, 5e-3)
    # the same closed form compiled by numba: round-off
    assert (v, i) == pytest.approx((kv, ki), rel=1e-13)
    # the flow solves the ODE: compare with a fine RK4 integration
    y = np.array([5e-3, 2.0])
    h = 3e-3 / 3000
    for _ in range(3000):
        k1 = np.array(model.drift(*y))
        k2 = np.array(model.drift(*(y + 0.5 * h * k1)))
        k3 = np.array(model.drift(*(y + 0.5 * h * k2)))
        k4 = np.array(model.drift(*(y + h * k3)))
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    # RK4 with a fine step: its error (measured 4.4e-13 relative)
    assert (float(v), float(i)) == pytest.approx(tuple(y), rel=1e-10)
    # equal time constants: the limit t exp(-t / tau)
    same = pd.LIFSynaptic(tau_m=10e-3, tau_syn=10e-3, v_th=1.0, v_reset=0.0)
    assert same.kernel(4e-3) == pytest.approx(4e-3 * math.exp(-0.4), rel=1e-12)


def test_lif_synaptic_threshold_crossing_inside_a_step_is_found():
    """A neuron that overshoots the threshold and falls back within one reporting step
    spikes once (exact integration, not a check at step ends)."""
    model = pd.LIFSynaptic(tau_m=20e-3, tau_syn=2e-3, v_th=20e-3, v_reset=0.0, t_ref=50e-3)
    # from v = 15 mV, i_syn = 5.5 V/s: peak 20.7 mV after 3.3 ms, 10 mV at 20 ms
    v_peak = max(model.flow(15e-3, 5.5, s)[0] for s in np.linspace(0.0, 0.02, 2001))
    # precondition: above threshold (20 mV) but only just (measured 20.7 mV)
    assert 20.5e-3 < v_peak < 21e-3
    # the peak quoted above (20.7 mV), bracketed to 0.5 mV; the decay below 11 mV
    assert model.flow(15e-3, 5.5, 0.02)[0] < 11e-3
    grid = pd.Grid(v=(0.0, 20e-3, 200), i_syn=(0.0, 10.0, 100))
    # neurons start uniformly in the cell [15, 15.1] mV x [5.5, 5.6] V/s
    net = _single_population(model, grid=grid, init=_point_init(grid, (15.05e-3, 5.55)))
    res = mc_nd.run(net, t_end=0.04, dt=0.02, n_neurons=50, seed=0)
    assert res.rates["P"][0] * 50 * 0.02 == 50
    assert res.refractory["P"][0] == 1.0


def test_lif_synaptic_current_mean_and_variance_under_poisson_input():
    """Stationary i_syn: mean s w, variance s w^2 / (2 tau_syn) (shot noise)."""
    tau_syn, rate, weight = 5e-3, 2000.0, 0.3e-3
    model = pd.LIFSynaptic(tau_m=20e-3, tau_syn=tau_syn, v_th=1.0, v_reset=0.0)
    grid = model.default_grid([(rate, weight, "jump")], i_cells=1000)
    net = _single_population(model, rate=rate, weight=weight, grid=grid)
    n = 20_000
    res = mc_nd.run(net, t_end=0.1, dt=1e-3, n_neurons=n, seed=2, record_times=[0.1])
    marginal = res.densities["P"][0].sum(axis=0) * grid.cell_volume
    assert marginal.sum() == pytest.approx(1.0, abs=1e-12)   # nobody left the grid
    centers = grid.axes[1].centers
    mean = float(np.sum(marginal * centers))
    var = float(np.sum(marginal * centers ** 2)) - mean ** 2
    expected_mean = rate * weight
    expected_var = rate * weight ** 2 / (2 * tau_syn)
    # t = 20 tau_syn: the transient (mean * exp(-20)) is negligible
    se = math.sqrt(expected_var / n)
    # 4 standard errors of a sample mean
    assert abs(mean - expected_mean) < 4 * se
    # the variance to 5 % (about 5 SE of a variance of 2e4 samples)
    assert var == pytest.approx(expected_var, rel=0.05)
    # v: mean e_l + tau_m * s * w far below the (unreachable) threshold
    v_marginal = res.densities["P"][0].sum(axis=1) * grid.cell_volume
    v_mean = float(np.sum(v_marginal * grid.axes[0].centers))
    # mean of the v marginal on the grid (measured 0.021 relative)
    assert v_mean == pytest.approx(20e-3 * rate * weight, rel=0.03)


def test_lif_synaptic_tends_to_lif_as_tau_syn_shrinks():
    """Rates of LIFSynaptic approach the 1D LIF rate for the same input as tau_syn -> 0,
    the gap shrinking like sqrt(tau_syn) (colored-noise correction). Measured (N = 4000,
    0.5 s): LIF 28.68 Hz; tau_syn = 1, 0.1, 0.01 ms: 25.40, 27.73, 28.42 Hz (+-0.12)."""
    lif = pd.LIF(tau_m=20e-3, v_th=20e-3, v_reset=10e-3, t_ref=2e-3)
    n, t_end = 4000, 0.6
    r_lif = _single_population(lif, rate=5500.0, weight=0.2e-3).run(
        t_end=t_end, dt=1e-3, backend="montecarlo", n_neurons=n, seed=3).mean_rate("P", 0.1)
    rates = {}
    for tau_syn in (1e-3, 1e-4, 1e-5):
        model = pd.LIFSynaptic(tau_m=20e-3, tau_syn=tau_syn, v_th=20e-3, v_reset=10e-3,
                               t_ref=2e-3)
        net = _single_population(model, rate=5500.0, weight=0.2e-3)
        rates[tau_syn] = mc_nd.run(net, t_end=t_end, dt=1e-3, n_neurons=n,
                                   seed=4).mean_rate("P", 0.1)
    se = math.sqrt(r_lif / (n * (t_end - 0.1)))
    gaps = {ts: r_lif - r for ts, r in rates.items()}
    assert gaps[1e-3] > gaps[1e-4] > 0.0
    # sqrt(10) = 3.16, with room for the Monte Carlo noise of the gaps (measured 3.42)
    assert 2.0 < gaps[1e-3] / gaps[1e-4] < 5.0
    # the sqrt(tau_syn) law predicts 1 % (0.30 Hz) at 0.01 ms; 2 % leaves 0.27 Hz, 2 SE
    # of a rate, for the noise (measured 0.9 %)
    assert abs(gaps[1e-5]) < 0.02 * r_lif
    # extrapolation with the sqrt law from the two smallest tau_syn
    extrapolated = rates[1e-5] + (rates[1e-5] - rates[1e-4]) / (math.sqrt(10.0) - 1.0)
    # 4 SE of a difference of two Monte Carlo rates (measured 0.058 Hz of 28.7 Hz)
    assert extrapolated == pytest.approx(r_lif, abs=4 * math.sqrt(2.0) * se)


def test_lif_synaptic_refractory_ignores_input_and_decays_current():
    """Right after a spike the neuron is refractory for t_ref; it re-enters at v_reset
    with i_syn * exp(-t_ref / tau_syn)."""
    model = pd.LIFSynaptic(tau_m=20e-3, tau_syn=4e-3, v_th=20e-3, v_reset=10e-3,
                           t_ref=5e-3)
    grid = pd.Grid(v=(0.0, 20e-3, 100), i_syn=(0.0, 10.0, 1000))
    # just below threshold with a strong current: spikes almost at once
    init = _point_init(grid, (20e-3 - 1e-4, 8.0))
    net = _single_population(model, grid=grid, init=init)
    res = mc_nd.run(net, t_end=6e-3, dt=1e-3, n_neurons=200, seed=1,
                    record_times=[2e-3, 6e-3])
    assert res.refractory["P"][0] == 1.0
    assert res.densities["P"][0].sum() == 0.0          # all refractory, off the grid
    # released at about 5 ms after the spike at ~0.05 ms, then relaxing for ~1 ms
    i_marginal = res.densities["P"][1].sum(axis=0) * grid.cell_volume
    # a normalised histogram: round-off (measured 1.1e-16)
    assert i_marginal.sum() == pytest.approx(1.0, rel=1e-12)
    i_mean = float(np.sum(i_marginal * grid.axes[1].centers))
    spike_time = 1e-4 / 8.0 * 1.0  # v rises at ~ i_syn = 8 V/s through the last 0.1 mV
    expected = 8.0 * math.exp(-(6e-3 - spike_time) / 4e-3)
    # the spike time is only estimated (v rising through 0.1 mV): 1 % (measured 0.31 %)
    assert i_mean == pytest.approx(expected, rel=0.01)


# --- backend behaviour --------------------------------------------------------------------------
def test_hh_population_density_integrates_to_one_and_init_is_honoured():
    hh = pd.HodgkinHuxley()
    grid = hh.default_grid([(2000.0, 2e-3, "jump")])
    point = (-0.0603, 0.112, 0.512, 0.362)  # inside cells, off the faces
    net = _single_population(hh, rate=2000.0, weight=2e-3, grid=grid,
                             init=_point_init(grid, point))
    res = mc_nd.run(net, t_end=0.02, dt=1e-3, n_neurons=500, seed=4,
                    record_times=[0.0, 0.02])
    dens = res.densities["P"]
    assert dens.shape == (2, *grid.shape)
    # a normalised histogram of the neurons: round-off (measured equal)
    assert dens[0].sum() * grid.cell_volume == pytest.approx(1.0, rel=1e-12)
    assert dens[1].sum() * grid.cell_volume == pytest.approx(1.0, rel=1e-12)
    cell = tuple(int((x - a.lower) // a.width) for x, a in zip(point, grid.axes))
    # every neuron starts in the one cell: round-off (measured equal)
    assert dens[0][cell] * grid.cell_volume == pytest.approx(1.0, rel=1e-12)
    assert res.info["outside_grid"]["P"].tolist() == [0.0, 0.0]
    assert np.all(res.refractory["P"] == 0.0)
    # a Poisson count of 2e4 events, SE 0.7 %: 5 % is 7 SE (measured 0.0022 relative)
    assert res.info["input_events"]["P"] == pytest.approx(500 * 2000 * 0.02, rel=0.05)


def test_same_seed_same_result_and_conductance_synapses_run():
    model = pd.ReducedHH()
    net = pd.Network()
    pop = net.add_population("R", model)
    net.connect(net.add_poisson("e", rate=3000.0), pop, weight=0.03, reversal=0.0)
    net.connect(net.add_poisson("i", rate=1000.0), pop, weight=0.03, reversal=-0.08)
    a = mc_nd.run(net, t_end=0.05, dt=1e-3, n_neurons=300, seed=9)
    b = mc_nd.run(net, t_end=0.05, dt=1e-3, n_neurons=300, seed=9)
    np.testing.assert_array_equal(a.rates["R"], b.rates["R"])
    assert a.info["seed"] == 9
    # excitation of 3000 * 0.03 * (0 - v) ~ 6 V/s near rest drives firing
    assert a.mean_rate("R") > 5.0


def test_mc_hh_speed_is_reported():
    net = _single_population(pd.HodgkinHuxley(), rate=2000.0, weight=2e-3)
    res = mc_nd.run(net, t_end=0.01, dt=1e-4, n_neurons=2000, seed=1)
    # 2000 neurons x 100 steps x 10 internal steps; the rate depends on the machine
    assert res.info["internal_steps_per_step"] == 10
    assert res.info["neuron_steps_per_second"] > 1e5


# --- validation -------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:HodgkinHuxley.default_grid")
def test_hh_validate_grid_rejects_wrong_axes_and_short_gates():
    hh = pd.HodgkinHuxley()
    gates = (0.0, 1.0, 10)
    with pytest.raises(ValueError, match="wrong order"):
        hh.validate_grid(pd.Grid(v=(-0.09, 0.06, 10), n=gates, m=gates, h=gates))
    with pytest.raises(ValueError, match="do not match"):
        hh.validate_grid(pd.Grid(v=(-0.09, 0.06, 10), n=gates))
    with pytest.raises(ValueError, match="spike surface n = 0.6"):
        hh.validate_grid(pd.Grid(v=(-0.09, 0.06, 10), m=gates, h=gates, n=(0.0, 0.5, 10)))
    with pytest.raises(TypeError, match="popdens.Grid"):
        hh.validate_grid("grid")
    red = pd.ReducedHH()
    with pytest.raises(ValueError, match="wrong order"):
        red.validate_grid(pd.Grid(n=gates, v=(-0.09, 0.06, 10)))
    with pytest.raises(ValueError, match="spike surface"):
        red.validate_grid(pd.Grid(v=(-0.09, 0.06, 10), n=(0.6, 1.0, 10)))
    syn = pd.LIFSynaptic(tau_m=0.02, tau_syn=0.005, v_th=0.02, v_reset=0.01)
    with pytest.raises(ValueError, match="wrong order"):
        syn.validate_grid(pd.Grid(i_syn=(-1.0, 1.0, 10), v=(0.0, 0.02, 10)))
    with pytest.raises(ValueError, match="threshold"):
        syn.validate_grid(pd.Grid(v=(0.0, 0.03, 10), i_syn=(-1.0, 1.0, 10)))
    with pytest.raises(ValueError, match="v_reset"):
        syn.validate_grid(pd.Grid(v=(0.012, 0.02, 10), i_syn=(-1.0, 1.0, 10)))
    for model in (hh, red, syn):
        model.validate_grid(model.default_grid())
        model.validate_grid(model.default_grid([(3000.0, 1e-3, "jump")]))
    with pytest.raises(ValueError, match="spike surface"):
        pd.Network().add_population("X", hh, grid=pd.Grid(v=(-0.09, 0.06, 10), m=gates,
                                                           h=gates, n=(0.7, 1.0, 10)))


def test_default_gate_axes_follow_the_input_noise():
    """ReducedHH refines its n axis as the input noise sum(r w^2) falls below 2e-3 V^2/s
    (at most 4x), and both HH models warn when the noise is below the range their default
    grid was validated for; strong noise or no input: the plain grid, no warning."""
    red = pd.ReducedHH()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert red.default_grid([(2000.0, 2e-3, "jump")]).shape[1] == 200     # 8e-3
        assert red.default_grid([(8000.0, 0.5e-3, "jump")]).shape[1] == 200    # 2e-3
        assert red.default_grid([(16000.0, 0.25e-3, "jump")]).shape[1] == 400  # 1e-3
        assert red.default_grid().shape[1] == 200
        assert red.default_grid([(16000.0, 0.25e-3, "jump")], gate_cells=100).shape[1] == 100
        pd.HodgkinHuxley().default_grid([(2000.0, 2e-3, "jump")])
    with pytest.warns(RuntimeWarning, match=r"ReducedHH.*0\.0004 V\^2/s"):
        grid = red.default_grid([(40000.0, 0.1e-3, "jump")])
    assert grid.shape[1] == 800
    with pytest.warns(RuntimeWarning, match="HodgkinHuxley.*below the range"):
        pd.HodgkinHuxley().default_grid([(40000.0, 0.1e-3, "jump")])


@pytest.mark.parametrize("peak_rate, jump, v_width", [
    (4000.0, 2e-3, 1e-3),        # 1.6e-2 V^2/s: 1 mV cells
    (2000.0, 2e-3, 1e-3),        # 8e-3: the lowest noise on 1 mV cells
    (3999.0, 1.4e-3, 1.4e-3 / 6),  # 7.8e-3: 0.25 mV cells, shrunk to divide the jump
    (4000.0, 1e-3, 0.25e-3),     # 4e-3: 0.25 mV cells
])
def test_reduced_hh_default_v_cells_follow_the_input_noise(peak_rate, jump, v_width):
    """ReducedHH's default v axis has 1 mV cells for input noise sum(r w^2) of at least
    8e-3 V^2/s, 0.25 mV below (numerical diffusion along v then matters), each shrunk to
    divide the smallest jump; without jump input, 0.25 mV."""
    grid = pd.ReducedHH().default_grid([(peak_rate, jump, "jump")])
    # cell widths are differences of float bounds (round-off, measured < 1e-14 relative)
    assert grid.axes[0].width == pytest.approx(v_width, rel=1e-9)
    assert pd.ReducedHH().default_grid().axes[0].width == pytest.approx(0.25e-3, rel=1e-9)


@pytest.mark.slow
def test_reduced_hh_weak_noise_default_grid_matches_monte_carlo():
    """0.25 mV jumps at 16 kHz (noise 1e-3 V^2/s, 8x below the 2 mV examples): the
    default grid (refined to 400 n cells) within 4 % of Monte Carlo (N = 2e4, SE 0.4 %;
    measured +2.7 %), where the unrefined 200 n cells are off by +8 %."""
    model = pd.ReducedHH()

    def network(grid=None):
        net = pd.Network()
        pop = net.add_population("P", model, grid=grid)
        net.connect(net.add_poisson("ext", 16000.0), pop, weight=0.25e-3)
        return net

    density = network().run(t_end=0.1, dt=1e-4).mean_rate("P", 0.03)
    coarse_grid = model.default_grid([(16000.0, 0.25e-3, "jump")], gate_cells=200)
    coarse = network(coarse_grid).run(t_end=0.1, dt=1e-4).mean_rate("P", 0.03)
    mc = network().run(t_end=0.1, dt=1e-4, backend="montecarlo", n_neurons=20000,
                       seed=3).mean_rate("P", 0.03)
    se = math.sqrt(mc / (20000 * 0.07))
    # 4 % (the grid's bias, docstring) plus 3 SE of the Monte Carlo
    assert abs(density - mc) < 0.04 * mc + 3 * se
    assert abs(coarse - mc) > abs(density - mc) + 3 * se


def test_default_grids_put_levels_and_jumps_on_faces():
    hh = pd.HodgkinHuxley()
    grid = hh.default_grid([(4000.0, 2e-3, "jump")])
    v_axis, n_axis = grid.axis("v"), grid.axis("n")
    assert n_axis.face_index(hh.spike_level) is not None
    # a whole number of cells per jump: round-off of one division
    assert 2e-3 / v_axis.width == pytest.approx(round(2e-3 / v_axis.width), abs=1e-9)
    assert v_axis.lower < hh.e_k and v_axis.upper > hh.e_na
    syn = pd.LIFSynaptic(tau_m=0.02, tau_syn=0.005, v_th=0.02, v_reset=0.01)
    g = syn.default_grid([(1000.0, 0.2e-3, "jump"), (500.0, -0.4e-3, "jump")])
    jump = 0.2e-3 / 0.005
    # a whole number of cells per jump: round-off of one division
    assert jump / g.axes[1].width == pytest.approx(round(jump / g.axes[1].width), abs=1e-9)
    assert g.axes[1].lower < -0.4e-3 / 0.005 < 0.0 < 1000 * 0.2e-3 < g.axes[1].upper
    assert syn.default_grid([(1000.0, 0.2e-3, "jump")]).axes[1].lower == 0.0


def test_parameter_errors_name_the_parameter():
    with pytest.raises(ValueError, match="tau_syn"):
        pd.LIFSynaptic(tau_m=0.02, tau_syn=0.0, v_th=0.02, v_reset=0.01)
    with pytest.raises(ValueError, match="v_reset"):
        pd.LIFSynaptic(tau_m=0.02, tau_syn=0.005, v_th=0.01, v_reset=0.02)
    with pytest.raises(ValueError, match="spike_level"):
        pd.HodgkinHuxley(spike_level=1.2)
    with pytest.raises(TypeError, match="g_na"):
        pd.HodgkinHuxley(g_na="120")
    with pytest.raises(ValueError, match="c_m"):
        pd.ReducedHH(c_m=-1.0)


@pytest.mark.filterwarnings("ignore:HodgkinHuxley.default_grid")
def test_montecarlo_nd_rejects_bad_options_and_fractional_n_syn():
    hh = pd.HodgkinHuxley()
    net = _single_population(hh, rate=1000.0, weight=1e-3)
    with pytest.raises(TypeError, match="unknown option"):
        mc_nd.run(net, t_end=0.01, dt=1e-3, bridge=True)
    with pytest.raises(ValueError, match="internal_dt"):
        mc_nd.run(net, t_end=0.01, dt=1e-3, internal_dt=0.0)
    with pytest.raises(ValueError, match="n_neurons"):
        mc_nd.run(net, t_end=0.01, dt=1e-3, n_neurons=0)
    coupled = _single_population(hh, rate=1000.0, weight=1e-3)
    coupled.connect("P", "P", weight=1e-3)
    fractional = _single_population(hh, rate=1000.0, weight=1e-3)
    fractional.connect("P", "P", weight=1e-3, n_syn=2.5)
    with pytest.raises(ValueError, match="integer n_syn"):
        fractional.run(t_end=0.01, dt=1e-3, backend="montecarlo",
                       connectivity="fixed_indegree")
    with pytest.raises(ValueError, match="connectivity must be one of"):
        mc_nd.run(coupled, t_end=0.01, dt=1e-3, connectivity="random")
    diffusive = _single_population(hh, rate=1000.0, weight=1e-3, input="diffusion")
    # white noise: the compiled loop has none, so the interface-only engine runs it
    ran = mc_nd.run(diffusive, t_end=0.01, dt=1e-3, n_neurons=10, seed=1)
    assert "first order" in ran.info["integrator"]["P"]
    syn = pd.LIFSynaptic(tau_m=0.02, tau_syn=0.005, v_th=0.02, v_reset=0.01)
    conductance = _single_population(syn, rate=1000.0, weight=0.1, reversal=0.05)
    with pytest.raises(ValueError, match="conductance"):
        mc_nd.run(conductance, t_end=0.01, dt=1e-3)
    with pytest.raises(ValueError, match="conductance synapse .* takes input on 'i_syn'"):
        conductance.run(t_end=0.01, dt=1e-3)
    mixed = _single_population(hh, rate=1000.0, weight=1e-3)
    mixed.add_population("L", pd.LIF(tau_m=0.02, v_th=0.02, v_reset=0.01))
    # LIF beside HH: both in the compiled loop (pd.LIF has compiled_params)
    ran = mc_nd.run(mixed, t_end=0.01, dt=1e-3, n_neurons=10, seed=1)
    assert ran.info["integrator"]["L"].startswith("exact")
    bad_init = _single_population(syn, init=lambda v, i: np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match="init"):
        mc_nd.run(bad_init, t_end=0.01, dt=1e-3)


def test_models_expose_the_density_interface():
    for model, names, rule, var in (
            (pd.HodgkinHuxley(), ("v", "m", "h", "n"), pd.SpikeSurface("n", 0.6), "v"),
            (pd.ReducedHH(), ("v", "n"), pd.SpikeSurface("n", 0.6), "v"),
            (pd.LIFSynaptic(0.02, 0.005, 0.02, 0.01, t_ref=0.002), ("v", "i_syn"),
             pd.ThresholdReset("v", 0.02, 0.01, 0.002), "i_syn")):
        assert isinstance(model, pd.Model)
        assert model.state_vars == names and model.ndim == len(names)
        assert model.spike_rule == rule
        assert model.input_var == var
        assert len(model.resting_state) == model.ndim
        grid = model.default_grid()
        assert grid.names == names
        velocities = model.drift(*np.meshgrid(*grid.centers(), indexing="ij", sparse=True))
        assert len(velocities) == model.ndim
        assert all(np.shape(a) == grid.shape for a in velocities)
    syn = pd.LIFSynaptic(0.02, 0.005, 0.02, 0.01, t_ref=0.002)
    assert (syn.v_th, syn.v_reset, syn.t_ref) == (0.02, 0.01, 0.002)
    # the same exponential decay over t_ref: round-off (measured equal)
    np.testing.assert_allclose(syn.refractory_map(np.array([1.0, -2.0])),
                               np.array([1.0, -2.0]) * math.exp(-0.4), rtol=1e-14)
    # one division: round-off
    assert syn.jump_size(0.2e-3) == pytest.approx(0.04)
    assert pd.HodgkinHuxley().jump_size(2e-3) == 2e-3


def test_network_run_dispatches_and_mixed_models_share_a_run():
    """``net.run(backend="montecarlo")`` hands N-D models to this backend; populations of
    different models and sizes run together, each seeing its own input."""
    net = pd.Network()
    src = net.add_poisson("ext", rate=4000.0)
    hh = net.add_population("HH", pd.HodgkinHuxley())
    syn = net.add_population("S", pd.LIFSynaptic(tau_m=20e-3, tau_syn=2e-3, v_th=20e-3,
                                                 v_reset=10e-3, t_ref=2e-3))
    net.connect(src, hh, weight=2e-3)
    net.connect(src, syn, weight=0.2e-3, n_syn=1.5)
    res = net.run(t_end=0.05, dt=1e-3, backend="montecarlo",
                  n_neurons={"HH": 200, "S": 1000}, seed=5)
    assert res.backend == "montecarlo"
    assert res.n_neurons == {"HH": 200, "S": 1000}
    events = res.info["input_events"]
    # a Poisson count of 4e4 events, SE 0.5 %: 3 % is 6 SE (measured 0.0018 relative)
    assert events["HH"] == pytest.approx(200 * 4000 * 0.05, rel=0.03)
    # refractory LIFSynaptic neurons ignore input: somewhat fewer than 1000 * 6000 * 0.05
    assert 0.9 * 1000 * 6000 * 0.05 < events["S"] < 1000 * 6000 * 0.05 * 1.01
    assert res.mean_rate("HH", 0.02) > 20.0
    assert np.all(res.refractory["HH"] == 0.0)
    assert res.refractory["S"].max() > 0.0


# --- fixed in-degree wiring ---------------------------------------------------------------------
def _lif_synaptic_ei():
    model = pd.LIFSynaptic(tau_m=20e-3, tau_syn=5e-3, v_th=20e-3, v_reset=10e-3, t_ref=2e-3)
    net = pd.Network()
    ext = net.add_poisson("ext", rate=16000.0)
    grid = pd.Grid(v=(-0.005, 0.02, 50), i_syn=(-1.0, 3.0, 80))
    E = net.add_population("E", model, grid=grid)
    I = net.add_population("I", model, grid=grid)
    for post in (E, I):
        net.connect(ext, post, weight=0.1e-3)
        net.connect(E, post, weight=0.1e-3, n_syn=50, delay=1.5e-3)
        net.connect(I, post, weight=-0.2e-3, n_syn=20, delay=pd.delays.uniform(1e-3, 3e-3))
    return net


def test_fixed_indegree_matches_poisson_statistics():
    """Spikes delivered along drawn synapses give the mean rates of independent Poisson
    input at the measured rate (measured: E 61.94 vs 62.37 Hz, I 62.08 vs 62.23 Hz; the
    same network without recurrent input fires 59.2 Hz, outside the tolerance), and
    every spike reaches its drawn synapses."""
    net = _lif_synaptic_ei()
    n, t_end, settle = 4000, 0.15, 0.05
    runs = {c: net.run(t_end=t_end, dt=1e-4, backend="montecarlo", n_neurons=n, seed=4,
                       connectivity=c) for c in ("poisson", "fixed_indegree")}
    wired = runs["fixed_indegree"]
    for name in ("E", "I"):
        rates = [r.mean_rate(name, settle, t_end) for r in runs.values()]
        se = math.sqrt(sum(rates) / (n * (t_end - settle)))
        assert rates[0] > 20.0      # precondition: the populations fire
        # 3 SE of the difference plus 1 % for the correlations the drawn synapses add
        # (docstring: measured 0.7 % and 0.2 %; without recurrence 4.5 % off)
        assert abs(rates[1] - rates[0]) < 3 * se + 0.01 * rates[0]
    assert wired.info["connectivity"] == "fixed_indegree"
    assert wired.info["synapses"]["'E' -> 'I'"] == 50 * n
    # each spike of E goes to 50 * n / n synapses per connection on average
    spikes_e = wired.rates["E"].sum() * n * 1e-4
    delivered = wired.info["delivered_events"]["'E' -> 'E'"]
    # out-degrees vary around 50 per spike (measured 2.1e-05 relative)
    assert delivered == pytest.approx(50 * spikes_e, rel=0.05)


def test_fixed_indegree_runs_hh_models_with_conductance_synapses():
    net = pd.Network()
    ext = net.add_poisson("ext", rate=4000.0)
    pop = net.add_population("H", pd.ReducedHH())
    net.connect(ext, pop, weight=2e-3)
    net.connect(pop, pop, weight=0.02, reversal=-0.08, n_syn=20, delay=1e-3)
    runs = {c: net.run(t_end=0.06, dt=1e-4, backend="montecarlo", n_neurons=2000, seed=2,
                       connectivity=c) for c in ("poisson", "fixed_indegree")}
    rates = [r.mean_rate("H", 0.02, 0.06) for r in runs.values()]
    se = math.sqrt(sum(rates) / (2000 * 0.04))
    assert rates[0] > 10.0          # precondition: the population fires
    # 4 SE of the difference plus 3 % for what drawn synapses change (shared inputs
    # correlate the neurons; 2000 neurons, 20 synapses each)
    assert abs(rates[1] - rates[0]) < 4 * se + 0.03 * rates[0]
    assert runs["fixed_indegree"].info["delivered_events"]["'H' -> 'H'"] > 0
