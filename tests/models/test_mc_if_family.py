"""The compiled Monte Carlo of the integrate-and-fire family and FitzHugh-Nagumo
(popdens/kernels/mc_if_family.py in the loop of popdens/kernels/mc_engine.py).

- single-neuron traces of the compiled functions against naive NumPy twins written
  from the models' own ``drift`` and ``refractory_map`` (the NumPy engine's
  Runge-Kutta step, events splitting the step, spikes interpolated linearly in ``v``);
- networks: the compiled loop against the NumPy interface engine
  (popdens/backends/montecarlo_generic.py) with the same network, seed and step, bin
  by bin within 3 combined standard errors and without bias, and fixed in-degree
  wiring against Poisson wiring;
- FitzHugh-Nagumo's spike surface: an event that carries ``v`` across the plane is a
  spike in all three engines (compiled, NumPy, density).

The transients of AdEx and Izhikevich against the density run on the compiled loop in
tests/models/test_if_family_2d.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import popdens as pd
from popdens.backends import montecarlo_generic, montecarlo_nd
from popdens.kernels import mc_engine
from popdens.models.base import ThresholdReset, rk4_step

from ..reference import assert_z_agree

DT = 1e-4

# (model, Poisson rate (Hz), weight): each fires under its input; mean rates over the
# first 100 ms from rest with the recurrent excitation of _network (measured)
MODELS = {
    "eif": (pd.EIF(), 2000.0, 0.5e-3),                         # 58 Hz
    "qif": (pd.QIF(t_ref=1e-3), 1000.0, 0.5e-3),               # 13 Hz
    "adex": (pd.AdEx(t_ref=2e-3), 6000.0, 0.5e-3),             # 37 Hz, adapting
    "izhikevich": (pd.Izhikevich(t_ref=0.5e-3), 3000.0, 4e-3),  # 48 Hz, adapting
    "fhn": (pd.FitzHughNagumo(), 2000.0, 0.1),                 # 25 Hz, noisy oscillation
}


# --- naive NumPy twins of one neuron ------------------------------------------------
def _twin_step(model, x, h):
    """One Runge-Kutta step of the model's own drift (the NumPy engine's step)."""
    if h == 0.0:
        return list(x)
    with np.errstate(over="ignore", invalid="ignore"):
        return [float(np.asarray(c).reshape(-1)[0]) for c in
                rk4_step(model.drift_components, [np.array([c]) for c in x], h)]


def _twin_spike_time(model, x, x_new, duration):
    """When the segment ``x -> x_new`` fires, or None (threshold: reached from below
    within the segment or already past it after an event; plane: crossed upward)."""
    rule = model.spike_rule
    v, v_new = x[0], x_new[0]
    if not isinstance(rule, ThresholdReset):
        return duration * (rule.level - v) / (v_new - v) if v < rule.level <= v_new \
            else None
    if v >= rule.threshold:
        return 0.0
    if v_new < rule.threshold:
        return None
    lo, v_lo, hi, v_hi = 0.0, v, duration, v_new
    # an overshoot beyond the distance below (or an overflow): shorten the step
    while not v_hi - rule.threshold <= rule.threshold - v_lo:
        mid = 0.5 * (lo + hi)
        v_mid = _twin_step(model, x, mid)[0]
        if v_mid < rule.threshold:
            lo, v_lo = mid, v_mid
        else:
            hi, v_hi = mid, v_mid
    return lo + (hi - lo) * (rule.threshold - v_lo) / (v_hi - v_lo)


def _twin_trace(model, y0, t_end, h, event_times, event_weights):
    """States after every internal step and the spike count of one neuron."""
    rule = model.spike_rule
    resets = isinstance(rule, ThresholdReset)
    x, t, held_until, e, spikes = [float(c) for c in y0], 0.0, None, 0, 0
    states = [list(x)]
    for s in range(int(math.ceil(t_end / h - 1e-9))):
        t_b = min((s + 1) * h, t_end)
        while True:
            if held_until is not None:
                if held_until >= t_b:
                    break
                t, x[0], held_until = max(held_until, t), rule.reset, None
                while e < event_times.size and event_times[e] < t:
                    e += 1                     # events while refractory are lost
            at_event = e < event_times.size and event_times[e] < t_b
            t_next = max(event_times[e], t) if at_event else t_b
            x_new = _twin_step(model, x, t_next - t)
            s_spike = _twin_spike_time(model, x, x_new, t_next - t)
            if s_spike is not None:
                spikes += 1
                if resets:
                    at_spike = _twin_step(model, x, s_spike)
                    others = model.refractory_map(*at_spike[1:]) if len(x) > 1 else ()
                    x = [math.inf, *np.atleast_1d(others).tolist()]
                    t += s_spike
                    held_until = t + rule.refractory
                    continue
            x, t = x_new, t_next
            if not at_event:
                break
            before = x[0]
            x[0] += event_weights[e]
            if not resets and before < rule.level <= x[0]:
                spikes += 1                    # an event across the plane
            e += 1
        states.append(list(x))
    return np.array(states), spikes


def _events(seed, rate, t_end, weight):
    rng = np.random.default_rng(seed)
    times = np.sort(rng.uniform(0.0, t_end, rng.poisson(rate * t_end)))
    return times, np.full(times.size, weight)


@pytest.mark.parametrize("name", list(MODELS))
def test_single_neuron_trace_matches_its_numpy_twin(name):
    model, rate, weight = MODELS[name]
    t_end, h = 0.15, 2e-5
    events = _events(7, rate, t_end, weight)
    y0 = np.atleast_1d(np.asarray(model.resting_state, dtype=float))
    _, states, spikes = mc_engine.trace(model.compiled_params(), y0, t_end, h, *events)
    twin, twin_spikes = _twin_trace(model, y0, t_end, h, *events)
    assert spikes == twin_spikes and spikes >= 2, (spikes, twin_spikes)
    held = np.isinf(twin[:, 0])
    assert np.array_equal(np.isinf(states[:, 0]), held)
    # the same operations on both sides, math.exp against np.exp: measured <= 1e-12
    # relative over 7500 steps with resets (a spike time moves every later state)
    scale = np.max(np.abs(twin[~held]), axis=0)
    np.testing.assert_allclose(states[~held] / scale, twin[~held] / scale, rtol=0,
                               atol=1e-9)


def test_eif_runaway_past_the_cut_off_is_timed_within_the_step():
    """From 1 mV below the EIF's cut-off one 10 us Runge-Kutta step overflows to
    infinity; bisecting the step length times the spike at the free flow's crossing."""
    model = pd.EIF()
    x0 = [model.v_cut - 1e-3]
    with np.errstate(over="ignore", invalid="ignore"):
        assert not np.isfinite(_twin_step(model, x0, 1e-5)[0])
    _, states, spikes = mc_engine.trace(model.compiled_params(), np.array(x0), 1e-5, 1e-5,
                                        np.zeros(0), np.zeros(0))
    assert spikes == 1 and np.isinf(states[-1, 0])      # fired, held
    t, v = 0.0, x0[0]
    while v < model.v_cut:                               # reference: 1 ns Euler steps
        v += 1e-9 * float(model.drift(v))
        t += 1e-9
    spike = _twin_spike_time(model, x0, _twin_step(model, x0, 1e-5), 1e-5)
    # measured 0.6182 us against 0.6200 us, the reference's 1 ns resolution
    assert abs(spike - t) < 1e-8, (spike, t)


def test_fitzhugh_nagumo_event_across_the_plane_is_one_spike():
    """From rest, an event of +1.5 lands at v = 0.3 (past the plane v = 0): one spike,
    at the event; an event of +0.9 lands below the plane, past the excitation
    threshold, and the flow carries it across: one spike too. Afterwards the neuron
    returns along the left branch (no second upward crossing within 20 ms)."""
    model = pd.FitzHughNagumo()
    prm = model.compiled_params()
    y0 = np.asarray(model.resting_state)
    for weight in (1.5, 0.9):
        _, states, spikes = mc_engine.trace(prm, y0, 0.02, 1e-5, np.array([1e-3]),
                                            np.array([weight]))
        assert spikes == 1, (weight, spikes)
        assert states[-1, 0] < 0.0


# --- networks: compiled loop against the NumPy engine --------------------------------
def _network(name, recurrent=0.0, n_syn=10):
    model, rate, weight = MODELS[name]
    net = pd.Network()
    pop = net.add_population("E", model)
    net.connect(net.add_poisson("ext", rate), pop, weight=weight)
    if recurrent:
        net.connect(pop, pop, weight=recurrent * weight, n_syn=n_syn, delay=1e-3)
    return net


def _binned(rates, n, bin_steps):
    """Spike counts per bin and the rate (Hz) they give."""
    counts = np.round(rates * n * DT).reshape(-1, bin_steps).sum(axis=1)
    return counts, counts / (n * DT * bin_steps)


def _z_two_samples(a, b, n, bin_steps):
    """Per-bin z of two independent Monte Carlo runs of ``n`` neurons: the difference of
    the spike counts over its Poisson standard error."""
    ca, _ = _binned(a, n, bin_steps)
    cb, _ = _binned(b, n, bin_steps)
    return (ca - cb) / np.sqrt(np.maximum(ca + cb, 1.0))


@pytest.mark.parametrize("name", list(MODELS))
def test_compiled_loop_matches_the_numpy_engine(name):
    """Same network (Poisson input and recurrent excitation, Poisson wiring), seed and
    internal step; the compiled loop times events exactly, the NumPy engine at step
    ends (a first-order bias, measured below 0.3 % at 10 us)."""
    net = _network(name, recurrent=0.2)
    n, t_end = 1000, 0.1
    options = dict(n_neurons=n, seed=3, internal_dt=1e-5)
    compiled = montecarlo_nd.run(net, t_end, DT, **options)
    assert "Runge-Kutta" in compiled.info["integrator"]["E"]    # ran on the compiled loop
    numpy_run = montecarlo_generic.run(net, t_end, DT, **options)
    z = _z_two_samples(compiled.rates["E"], numpy_run.rates["E"], n, 50)
    # 20 bins of 5 ms; measured |mean z| <= 0.24, mean z^2 <= 0.89, max |z| 2.68
    assert_z_agree(z, name)
    assert np.sum(compiled.rates["E"]) > 0.0


def test_runs_without_input_are_identical_on_both_engines():
    """Where the random streams are shared -- initial states from ``init``, no input --
    the two engines take the same Runge-Kutta steps: AdEx neurons below threshold
    (drift only) end in the same histogram cells, and driven Izhikevich neurons fire
    their first spikes in the same reporting steps (both in the same internal step;
    the compiled loop interpolates the time, the NumPy engine fires at the step's
    end). After a reset the two differ by that rounding: a later spike can move to a
    neighbouring reporting step."""
    quiet = pd.Network()
    quiet.add_population("E", pd.AdEx(), init=lambda v, w: np.where(v < -0.06, 1.0, 0.0))
    options = dict(n_neurons=500, seed=4, internal_dt=1e-5, record_times=[0.02])
    a = montecarlo_nd.run(quiet, 0.02, DT, **options)
    b = montecarlo_generic.run(quiet, 0.02, DT, **options)
    np.testing.assert_array_equal(a.densities["E"], b.densities["E"])
    assert np.sum(a.densities["E"]) > 0.0

    n = 200
    driven = pd.Network()
    driven.add_population("E", pd.Izhikevich(i_e=10.0),
                          init=lambda v, u: np.where(v < -0.06, 1.0, 0.0))
    options = dict(n_neurons=n, seed=5, internal_dt=1e-5)
    a = np.round(montecarlo_nd.run(driven, 0.05, DT, **options).rates["E"] * n * DT)
    b = np.round(montecarlo_generic.run(driven, 0.05, DT, **options).rates["E"] * n * DT)
    # the first volley (measured: 67 spikes, one per neuron, before the first
    # difference at 14.9 ms) fires in identical steps
    assert a[:140].sum() >= n / 4 and np.array_equal(a[:140], b[:140])
    # later, shifted spikes move by one reporting step at most: measured 121 spikes on
    # both, the cumulative counts at most 1 apart
    assert np.max(np.abs(np.cumsum(a) - np.cumsum(b))) <= 2


@pytest.mark.parametrize("name", list(MODELS))
def test_fixed_indegree_wiring_runs_and_matches_poisson_wiring(name):
    """Recurrent excitation through 10 synapses per neuron: fixed in-degree wiring
    delivers every spike to its drawn targets (synapse count exact) and, the coupling
    being weak, fires at the Poisson-wiring rate within 3 standard errors."""
    net = _network(name, recurrent=0.2)
    n, t_end = 1000, 0.1
    fixed = montecarlo_nd.run(net, t_end, DT, n_neurons=n, seed=6,
                              connectivity="fixed_indegree")
    poisson = montecarlo_nd.run(net, t_end, DT, n_neurons=n, seed=7)
    assert fixed.info["synapses"]["'E' -> 'E'"] == 10 * n
    spikes = np.sum(fixed.rates["E"]) * n * DT
    assert fixed.info["delivered_events"]["'E' -> 'E'"] > 0 and spikes > 0
    # every spike reaches its out-going synapses, 10 per spike on average: the binomial
    # out-degrees (SD ~3) weighted by ~5 spikes per neuron spread this by ~1 % (SD);
    # measured within 0.22 % for all five models
    assert fixed.info["delivered_events"]["'E' -> 'E'"] == pytest.approx(10 * spikes,
                                                                          rel=0.05)
    z = _z_two_samples(fixed.rates["E"], poisson.rates["E"], n, 1000)
    # one bin, the whole run: 3 combined SE (measured |z| <= 0.26 for the five models)
    assert abs(z[0]) < 3.0, z


def test_fitzhugh_nagumo_jump_spikes_agree_on_all_three_engines():
    """Rare large events (+1.5 at 40 Hz) kick resting neurons straight past the plane,
    so nearly every spike is an event crossing it: the compiled loop, the NumPy engine
    and the density count them alike (total spikes over the run)."""
    model = pd.FitzHughNagumo()
    net = pd.Network()
    pop = net.add_population("E", model, grid=pd.Grid(v=(-4.0, 4.0, 320),
                                                      w=(-1.0, 2.0, 120)))
    net.connect(net.add_poisson("ext", 40.0), pop, weight=1.5)
    n, t_end = 2000, 0.1
    compiled = montecarlo_nd.run(net, t_end, DT, n_neurons=n, seed=8, internal_dt=1e-5)
    numpy_run = montecarlo_generic.run(net, t_end, DT, n_neurons=n, seed=8,
                                       internal_dt=1e-5)
    density = net.run(t_end, DT)
    counts = [np.sum(r.rates["E"]) * n * DT for r in (compiled, numpy_run)]
    expected = np.sum(density.rates["E"]) * n * DT
    for count in counts:
        # Poisson SE of the Monte Carlo count (3 SE); the density's grid error on this
        # total measured below 1 %
        assert abs(count - expected) < 3.0 * math.sqrt(expected) + 0.01 * expected, (
            counts, expected)


def test_a_subclass_that_changes_the_physics_leaves_the_compiled_loop():
    """A subclass of pd.AdEx with its own drift would be simulated wrongly by the
    compiled AdEx update: it has no compiled parameters and its networks run on the
    NumPy engine; a subclass that changes only the default grid keeps them."""
    class SlowerAdEx(pd.AdEx):
        def drift(self, v, w):
            dv, dw = super().drift(v, w)
            return 0.5 * dv, dw

    class OtherGrid(pd.AdEx):
        def default_grid(self, inputs=()):
            return super().default_grid(inputs)

    assert SlowerAdEx().compiled_params() is None
    assert OtherGrid().compiled_params() == pd.AdEx().compiled_params()
    net = pd.Network()
    net.add_population("E", SlowerAdEx())
    res = net.run(1e-3, DT, backend="montecarlo", n_neurons=10, seed=0)
    assert "first order" in res.info["integrator"]["E"]     # the NumPy engine's
