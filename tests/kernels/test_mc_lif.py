"""The compiled single-neuron update of pd.LIF (kernels/mc_lif.py) against naive NumPy
twins, and the compiled loop's reset, refractory and jump handling of LIF neurons against
closed-form results."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pytest
from numba import njit

import popdens as pd
from popdens.backends import montecarlo_nd
from popdens.kernels import mc_engine, mc_interface, mc_lif


def naive_crossing_time(model, v, duration):
    """First time in ``[0, duration]`` at which the flow from ``v`` reaches ``v_th``, by
    bisection on ``model.flow`` (NumPy; no closed form), or -1.0."""
    if v >= model.v_th:
        return 0.0
    if float(model.flow(v, duration)) < model.v_th:
        return -1.0   # the flow is monotone: below at the end, below throughout
    lo, hi = 0.0, duration
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if float(model.flow(v, mid)) >= model.v_th:
            hi = mid
        else:
            lo = mid
    return hi


@pytest.mark.parametrize("e_l", [0.0, 0.015, 0.025, 0.06])
def test_segment_matches_the_numpy_flow_and_a_bisected_crossing(e_l):
    model = pd.LIF(tau_m=0.02, v_th=0.02, v_reset=0.01, e_l=e_l, t_ref=0.002)
    p = model.compiled_params()
    rng = np.random.default_rng(3)
    crossed = 0
    for v, duration in zip(rng.uniform(-0.01, 0.025, 300), rng.uniform(0.0, 0.03, 300)):
        v_end, s = mc_lif.lif_segment(v, duration, p)
        # the same closed form in NumPy, up to round-off (measured 5e-15 relative)
        assert v_end == pytest.approx(float(model.flow(v, duration)), rel=1e-13, abs=1e-16)
        want = naive_crossing_time(model, v, duration)
        if want < 0.0:
            assert s == -1.0
        else:
            crossed += v < model.v_th
            # 200 bisection steps reach round-off of the segment (measured < 4e-18 s)
            assert s == pytest.approx(want, abs=1e-15)
    # the threshold is reachable without input only for e_l > v_th
    assert (crossed > 0) == (e_l > model.v_th)


def test_trace_of_current_jumps_matches_numpy_event_by_event():
    """``mc_engine.trace`` (advance and current jump of the interface) against the
    NumPy flow with jumps at the event times."""
    model = pd.LIF(tau_m=0.02, v_th=1.0, v_reset=0.0, e_l=0.1)
    rng = np.random.default_rng(7)
    times = np.sort(rng.uniform(0.0, 0.05, 40))
    weights = rng.normal(0.0, 0.05, 40)
    t, states, spikes = mc_engine.trace(model.compiled_params(), np.array([0.3]), 0.05,
                                        1e-3, times, weights)
    assert spikes == 0
    v, t_now, expected = 0.3, 0.0, []
    for t_end in t[1:]:
        for ti, wi in zip(times, weights):
            if t_now <= ti < t_end:
                v = float(model.flow(v, ti - t_now)) + wi
                t_now = ti
        v = float(model.flow(v, t_end - t_now))
        t_now = t_end
        expected.append(v)
    # the same operations in another order: round-off (measured 1e-16)
    np.testing.assert_allclose(states[1:, 0], expected, rtol=0, atol=1e-13)


def test_suprathreshold_drive_fires_periodically_with_exact_reset_and_refractory_period():
    """No input, e_l above threshold: every neuron starts at v_reset (the resting state
    when e_l >= v_th) and fires at T1 = tau log((e_l - v_reset) / (e_l - v_th)), then
    every T1 + t_ref. Deterministic: the spike steps are known exactly."""
    tau, v_th, v_reset, e_l, t_ref = 0.02, 0.02, 0.01, 0.03, 0.004
    net = pd.Network()
    net.add_population("P", pd.LIF(tau_m=tau, v_th=v_th, v_reset=v_reset, e_l=e_l,
                                   t_ref=t_ref))
    dt, n = 1e-4, 50
    res = montecarlo_nd.run(net, t_end=0.1, dt=dt, n_neurons=n, seed=0)
    first = tau * math.log((e_l - v_reset) / (e_l - v_th))
    times = first + (first + t_ref) * np.arange(10)
    times = times[times < 0.1]
    expected = np.zeros(res.t.size)
    expected[np.floor(times / dt + 1e-9).astype(int)] = 1.0 / dt
    np.testing.assert_array_equal(res.rates["P"], expected)
    # refractory for t_ref after each spike: that fraction of the steps, to one step each
    held_steps = np.sum(res.refractory["P"] == 1.0)
    assert abs(held_steps - times.size * t_ref / dt) <= times.size


def test_current_and_conductance_jumps_give_the_exact_stationary_mean():
    """The mean of v obeys d<v>/dt = (e_l - v)/tau + r1 w1 + r2 w2 (E - v) exactly (linear
    in v); with the threshold out of reach the Monte Carlo mean at 10 tau is its fixed
    point to within sampling error."""
    tau, e_l = 0.02, 0.0
    r1, w1, r2, w2, reversal = 2000.0, 0.5e-3, 1000.0, 0.02, -0.01
    net = pd.Network()
    pop = net.add_population("P", pd.LIF(tau_m=tau, v_th=0.1, v_reset=0.0, e_l=e_l),
                             grid=pd.Grid(v=(-0.05, 0.1, 1500)))
    net.connect(net.add_poisson("exc", r1), pop, weight=w1)
    net.connect(net.add_poisson("cond", r2), pop, weight=w2, reversal=reversal)
    n = 20_000
    res = montecarlo_nd.run(net, t_end=0.2, dt=1e-3, n_neurons=n, seed=5,
                            record_times=[0.2])
    assert res.info["outside_grid"]["P"][0] == 0.0 and res.mean_rate("P") == 0.0
    density = res.densities["P"][0] * res.grids["P"].cell_volume
    centers = res.grids["P"].axes[0].centers
    mean = float(np.sum(density * centers))
    sd = math.sqrt(float(np.sum(density * centers ** 2)) - mean ** 2)
    want = (e_l / tau + r1 * w1 + r2 * w2 * reversal) / (1.0 / tau + r2 * w2)
    # 4 standard errors of the mean of n samples (measured 1.2, 0.08, 0.17 SE for seeds
    # 5, 6, 7; the 0.1 mV cells bias the mean from centers by O(cell^2), negligible)
    assert abs(mean - want) < 4 * sd / math.sqrt(n)


@pytest.mark.parametrize("given, message", [
    ({"prepare_step": lambda p, duration: duration},
     "prepare_step and advance_step come together"),
    ({"split_step": lambda p, prepared, first, rest: None},
     "split_step needs prepare_step and advance_step"),
])
def test_register_refuses_step_functions_without_their_partners(given, message):
    class Lone(NamedTuple):
        rate: float

    required = {name: (lambda *args: None) for name in
                ("load", "store", "advance", "crossing", "jump")}
    with pytest.raises(TypeError, match=message):
        mc_interface.register(Lone, **given, **required)


@njit
def _split_then_advance(prm, x, whole, first):
    """The loop's one-event path without the event: the two pieces of a split step."""
    rest = whole - first
    c_first, c_rest = mc_interface.split_step(prm, mc_interface.prepare_step(prm, whole),
                                              first, rest)
    return mc_interface.advance_step(prm, mc_interface.advance_step(prm, x, c_first),
                                     c_rest)


@pytest.mark.parametrize("model, x", [
    (pd.LIF(tau_m=0.02, v_th=0.02, v_reset=0.01, e_l=0.0, t_ref=2e-3), (0.013,)),
    (pd.LIFSynaptic(tau_m=20e-3, tau_syn=5e-3, v_th=20e-3, v_reset=10e-3), (0.012, 0.5)),
    (pd.ReducedHH(), None),   # no split_step: the default (prepare each piece)
])
@pytest.mark.parametrize("first", [0.0, 3e-5, 1e-4])
def test_split_step_pieces_compose_to_the_flow(model, x, first):
    """advance over the two pieces of a split step equals advance over the whole step
    (the flow's semigroup property), and a split with nothing left is advance over the
    first piece."""
    prm = model.compiled_params()
    x = tuple(float(value) for value in (model.resting_state if x is None else x))
    whole = 1e-4
    exact = getattr(type(prm), "exact", False)
    # exact flows: a few roundings; ReducedHH's midpoint step over two pieces differs
    # from one step by its local error, O(h^3) of a 0.1 ms step
    rtol = 1e-14 if exact else 1e-6
    np.testing.assert_allclose(_split_then_advance(prm, x, whole, first),
                               _advance(prm, x, whole), rtol=rtol, atol=1e-21)
    np.testing.assert_allclose(_split_then_advance(prm, x, first, first),
                               _advance(prm, x, first), rtol=1e-14, atol=1e-21)


@njit
def _advance(prm, x, duration):
    return mc_interface.advance(prm, x, duration)


@njit
def _called_and_inlined(prm, x, x_new, duration, weight, reversal):
    return (mc_interface.crossing(prm, x, x_new, duration),
            mc_interface.crossing_inlined(prm, x, x_new, duration),
            mc_interface.jump(prm, x, weight, reversal),
            mc_interface.jump_inlined(prm, x, weight, reversal))


@pytest.mark.parametrize("model, x, x_new", [
    (pd.LIF(tau_m=0.02, v_th=0.02, v_reset=0.01, e_l=0.03, t_ref=2e-3), (0.013,), (0.025,)),
    (pd.LIF(tau_m=0.02, v_th=0.02, v_reset=0.01, e_l=0.0, t_ref=2e-3), (0.013,), (0.012,)),
    (pd.LIFSynaptic(tau_m=20e-3, tau_syn=5e-3, v_th=20e-3, v_reset=10e-3), (0.019, 0.5),
     (0.021, 0.45)),
])
@pytest.mark.parametrize("reversal", [np.nan, -0.07])
def test_inlined_twins_equal_the_called_functions(model, x, x_new, reversal):
    """register gives crossing and jump an IR-inlined twin for the loop's fast paths:
    the same implementation, so the same bits (a spike and no spike; current and
    conductance jumps)."""
    crossed, crossed_inlined, jumped, jumped_inlined = _called_and_inlined(
        model.compiled_params(), x, x_new, 1e-4, 2e-3, reversal)
    assert crossed == crossed_inlined
    assert jumped == jumped_inlined
