"""Tests of the Monte Carlo backend against exact or independent references.

Every statistical assertion is a seeded comparison with a stated number of standard
errors; the references are the Siegert formula, renewal counts that follow from the model
exactly, a deterministic spike train, Campbell's theorem, and a naive event-driven
simulation written here in numpy.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from scipy import integrate, stats

import popdens as pd
from popdens.backends.montecarlo import run as run_montecarlo
from popdens.kernels import montecarlo as kernels
from popdens.theory import diffusion_params, siegert_rate

# Brunel (2000) neuron, SI units
TAU, THETA, V_R, T_REF = 20e-3, 20e-3, 10e-3, 2e-3
DT = 1e-4


def single(model, inputs, grid=None, init=None):
    """A network with population "P" and one Poisson source per ``(rate, weight, kind)``."""
    net = pd.Network()
    pop = net.add_population("P", model, grid=grid, init=init)
    for n, (rate, weight, kind) in enumerate(inputs):
        net.connect(net.add_poisson(f"src{n}", rate), pop, weight=weight, input=kind)
    return net


def poisson_standard_error(rate, n_neurons, duration):
    """Standard error of a rate estimated from a Poisson spike count; an upper bound for
    the more regular renewal trains (CV < 1) used below."""
    return math.sqrt(rate / (n_neurons * duration))


# ----------------------------------------------------------------------- white noise
# (mu, sigma) in volts: fluctuation-driven, near threshold, mean-driven
SIEGERT_CASES = [(15e-3, 5e-3), (19e-3, 3e-3), (25e-3, 2e-3)]


def diffusion_network(mu, sigma):
    # one diffusion connection with s h tau = mu, s h^2 tau = sigma^2
    weight = sigma ** 2 / mu
    rate = mu / (weight * TAU)
    # the inverse formula: round-off (measured 1.8e-16 rel); atol=0, as the default 1e-8
    # would admit 3e-6 of sigma
    assert np.allclose(diffusion_params(rate, weight, TAU), (mu, sigma), rtol=1e-14, atol=0.0)
    lif = pd.LIF(tau_m=TAU, v_th=THETA, v_reset=V_R, e_l=0.0, t_ref=T_REF)
    return single(lif, [(rate, weight, "diffusion")])


@pytest.mark.parametrize("mu, sigma", SIEGERT_CASES)
def test_white_noise_rate_matches_siegert(mu, sigma):
    net = diffusion_network(mu, sigma)
    n, t_end, warm = 10_000, 1.2, 0.2
    res = net.run(t_end, DT, backend="montecarlo", n_neurons=n, seed=11)
    rate = res.mean_rate("P", warm)
    expected = siegert_rate(mu, sigma, TAU, THETA, V_R, T_REF)
    se = poisson_standard_error(expected, n, t_end - warm)
    # 3 standard errors of a Poisson count (the bridge makes the rate unbiased)
    assert abs(rate - expected) < 3 * se, (rate, expected, se)


def test_without_bridge_correction_the_rate_is_biased_low():
    # Testing the threshold only at step ends misses excursions within a step: an
    # O(sqrt(dt / tau)) deficit, measured at -7 % here, against a 0.4 % standard error.
    mu, sigma = SIEGERT_CASES[0]
    net = diffusion_network(mu, sigma)
    n, t_end, warm = 10_000, 1.2, 0.2
    res = net.run(t_end, DT, backend="montecarlo", n_neurons=n, seed=11, bridge=False)
    expected = siegert_rate(mu, sigma, TAU, THETA, V_R, T_REF)
    se = poisson_standard_error(expected, n, t_end - warm)
    deficit = expected - res.mean_rate("P", warm)
    # a real bias, not noise: measured 7 % against a 0.4 % standard error (17 SE)
    assert deficit > 10 * se
    # the bridge deficit is O(sqrt(dt / tau)): measured -7 % (above); 3 to 12 % brackets it
    assert 0.03 < deficit / expected < 0.12


def test_free_membrane_moments_obey_campbell_theorem():
    # Threshold far away: v is shot noise (two jump inputs) plus an Ornstein-Uhlenbeck
    # part (one diffusion input). Exactly: mean = e_l + tau sum s h and
    # variance = tau/2 sum s h^2 over all inputs. Events split steps, so this checks the
    # noise of partial steps as well as the event timing. Starting from a Gaussian with
    # those moments, any error would move them away at rate 1/tau or 2/tau.
    e_l = -0.01
    inputs = [(3000.0, 2e-3, "jump"), (1000.0, -3e-3, "jump"), (5000.0, 1e-3, "diffusion")]
    mean = e_l + TAU * sum(s * h for s, h, _ in inputs)
    var = 0.5 * TAU * sum(s * h * h for s, h, _ in inputs)
    lif = pd.LIF(tau_m=TAU, v_th=1.0, v_reset=0.0, e_l=e_l)
    grid = pd.Grid(v=(-0.5, 1.0, 15_000))
    net = single(lif, inputs, grid=grid,
                 init=lambda v: np.exp(-0.5 * (v - mean) ** 2 / var))
    n, t_end = 40_000, 2.5 * TAU
    res = net.run(t_end, DT, backend="montecarlo", n_neurons=n, seed=5,
                  record_times=[t_end])
    centers, dx = res.centers("P"), grid.axes[0].width
    density = res.densities["P"][0]
    assert res.info["below_grid"]["P"][0] == 0.0
    # round-off: a histogram of N neurons normalised
    assert density.sum() * dx == pytest.approx(1.0, abs=1e-12)
    sample_mean = np.sum(density * centers) * dx
    sample_var = np.sum(density * (centers - sample_mean) ** 2) * dx - dx * dx / 12
    # 4 standard errors of a sample mean
    assert abs(sample_mean - mean) < 4 * math.sqrt(var / n)
    # 4 SE of a sample variance, 1.2x for shot-noise tails (measured 0.0059 against 0.034)
    assert abs(sample_var / var - 1.0) < 4 * math.sqrt(2.0 / n) * 1.2
    # every neuron received Poisson(Lambda) events (no refractoriness here)
    expected_events = n * (3000.0 + 1000.0) * t_end
    # 4 standard errors of a Poisson total
    assert abs(res.info["input_events"]["P"] - expected_events) < 4 * math.sqrt(expected_events)


# ---------------------------------------------------------------------- finite jumps
def counting_neuron(k, t_ref):
    """No leak to speak of (tau = 1e6 s, v moves by 1e-10 of itself per step) and jumps
    h = (v_th - v_reset) / (k - 1/2): exactly k net up-jumps from reset reach threshold."""
    lif = pd.LIF(tau_m=1e6, v_th=1.0, v_reset=0.0, e_l=0.0, t_ref=t_ref)
    return lif, 1.0 / (k - 0.5)


@pytest.mark.parametrize("k, excitation, inhibition, t_ref", [
    (5, 1000.0, 0.0, 2e-3),
    (4, 1500.0, 400.0, 1.3e-3),
])
def test_jump_counting_neuron_fires_at_the_renewal_rate(k, excitation, inhibition, t_ref):
    # Between spikes v does a random walk of +-h steps; it fires at the first time it is
    # k steps up, after k / (s_e - s_i) on average (Wald), then waits t_ref. Mixing the
    # two connections exercises the choice of the connection of each event.
    lif, h = counting_neuron(k, t_ref)
    inputs = [(excitation, h, "jump")]
    if inhibition:
        inputs.append((inhibition, -h, "jump"))
    net = single(lif, inputs)
    n, t_end, warm = 2000, 1.5, 0.3
    res = net.run(t_end, DT, backend="montecarlo", n_neurons=n, seed=3)
    expected = 1.0 / (t_ref + k / (excitation - inhibition))
    se = poisson_standard_error(expected, n, t_end - warm)
    # 3 standard errors of a Poisson count (renewal spikes are more regular: conservative)
    assert abs(res.mean_rate("P", warm) - expected) < 3 * se


def test_time_varying_input_rates_are_exact_per_step():
    # One event fires the neuron (h > v_th - v_reset, t_ref = 0): the spike count of step
    # k is Poisson with mean N * integral of s over the step, for a callable source
    # (averaged per step by the network) as much as a constant one.
    lif = pd.LIF(tau_m=0.02, v_th=1.0, v_reset=0.0)
    rate = lambda t: 400.0 * (1.5 + np.sin(2 * np.pi * 25.0 * t))  # noqa: E731
    net = single(lif, [(rate, 1.5, "jump")])
    n, t_end = 5000, 0.2
    res = net.run(t_end, DT, backend="montecarlo", n_neurons=n, seed=8)
    expected = net.source_rate_table(net.connections[0], res.t, DT)
    counts = res.rates["P"] * n * DT
    z = (counts - expected * n * DT) / np.sqrt(expected * n * DT)
    # bias: 3 SE of the mean of 2000 z values (measured -0.028 against 0.067; seeds 1 to
    # 3: +0.006, -0.016, +0.020)
    assert abs(z.mean()) < 3 / math.sqrt(z.size)
    # spread: 3 SE of their SD, 3 / sqrt(2 * 2000) = 0.047 (measured -0.0057; seeds 1 to
    # 3: -0.0009, +0.0057, -0.013)
    assert abs(z.std() - 1.0) < 3 / math.sqrt(2 * z.size)
    assert counts.sum() == pytest.approx(res.info["input_events"]["P"])


@pytest.mark.parametrize("timing", ["exact", "grid"])
def test_suprathreshold_leak_fires_periodically_at_exact_times(timing):
    # No input and e_l > v_th: every neuron starts at reset and fires at
    # t_n = tau ln((e_l - v_reset) / (e_l - v_th)) + n (t_ref + that time). t_ref is no
    # multiple of dt, so refractory ends and crossings fall inside steps (for the grid
    # engine: its release lists end each refractory period in the right step).
    tau, e_l, t_ref = 0.02, 1.5, 2.53e-3
    lif = pd.LIF(tau_m=tau, v_th=1.0, v_reset=0.0, e_l=e_l, t_ref=t_ref)
    net = pd.Network()
    net.add_population("P", lif)
    res = net.run(0.3, DT, backend="montecarlo", n_neurons=10, seed=0, timing=timing)
    rise = tau * math.log(e_l / (e_l - 1.0))
    spike_times = rise + np.arange(20) * (t_ref + rise)
    spike_times = spike_times[spike_times < 0.3]
    steps = np.floor(spike_times / DT).astype(int)
    # no spike time within round-off of a step boundary, so the steps are unambiguous
    assert np.min(np.abs(spike_times / DT - np.round(spike_times / DT))) > 1e-6
    expected = np.zeros(res.t.size)
    expected[steps] = 1.0 / DT
    # one spike per neuron per step set exactly: round-off of 1 / DT
    np.testing.assert_allclose(res.rates["P"], expected, rtol=1e-12)
    # refractory exactly from each spike until t_ref later
    step_ends = res.t + DT
    # no release within round-off of a step boundary either (measured 0.0225 steps)
    assert np.min(np.abs((spike_times + t_ref) / DT
                         - np.round((spike_times + t_ref) / DT))) > 1e-6
    refractory_at_end = np.zeros(res.t.size)
    for t_spike in spike_times:
        refractory_at_end[(step_ends > t_spike) & (step_ends < t_spike + t_ref)] = 1.0
    np.testing.assert_array_equal(res.refractory["P"], refractory_at_end)


def test_leak_reversal_at_threshold_never_fires():
    lif = pd.LIF(tau_m=0.02, v_th=1.0, v_reset=0.0, e_l=1.0)
    net = pd.Network()
    net.add_population("P", lif)
    res = net.run(0.5, DT, backend="montecarlo", n_neurons=10, seed=0)
    assert res.rates["P"].sum() == 0.0


def test_independent_populations_in_one_run():
    # one kernel call advances all populations; each keeps its own input and parameters
    net = pd.Network()
    # no input, e_l > v_th: periodic
    clock = net.add_population("clock", pd.LIF(tau_m=0.02, v_th=1.0, v_reset=0.0, e_l=1.5))
    lif, h = counting_neuron(3, 1e-3)
    counter = net.add_population("counter", lif)
    net.connect(net.add_poisson("ext", 600.0), counter, weight=h)
    noisy = net.add_population("noisy", pd.LIF(tau_m=TAU, v_th=THETA, v_reset=V_R,
                                               t_ref=T_REF))
    net.connect(net.add_poisson("noise", 1e3), noisy, weight=1e-3, input="diffusion")
    n, t_end, warm = 2000, 0.6, 0.1
    res = net.run(t_end, DT, backend="montecarlo", n_neurons=n, seed=9, record_times=[0.3])
    alone = pd.Network()
    alone.add_population("clock", clock.model)
    np.testing.assert_array_equal(
        res.rates["clock"],
        alone.run(t_end, DT, backend="montecarlo", n_neurons=n, seed=1).rates["clock"])
    expected = 1.0 / (1e-3 + 3 / 600.0)
    se = poisson_standard_error(expected, n, t_end - warm)
    # 3 standard errors of a Poisson count (renewal spikes: conservative)
    assert abs(res.mean_rate("counter", warm) - expected) < 3 * se
    assert res.info["input_events"]["noisy"] == 0
    expected = siegert_rate(*diffusion_params(1e3, 1e-3, TAU), TAU, THETA, V_R, T_REF)
    se = poisson_standard_error(expected, n, t_end - warm)
    # 3 standard errors of a Poisson count
    assert abs(res.mean_rate("noisy", warm) - expected) < 3 * se
    assert set(res.densities) == {"clock", "counter", "noisy"}
    for name in res.densities:
        assert res.densities[name].shape == (1, res.grids[name].num_cells)


def test_runaway_drive_is_rejected():
    # e_l so far above threshold that the period rounds to 0: it would never finish
    lif = pd.LIF(tau_m=0.02, v_th=1.0, v_reset=0.0, e_l=1e20)
    net = pd.Network()
    net.add_population("P", lif)
    with pytest.raises(ValueError, match="fire"):
        net.run(0.01, DT, backend="montecarlo", n_neurons=10, seed=0)


# ----------------------------------------------------- naive event-driven twin
def naive_event_driven_rate(lif, inputs, n, t_end, warm, rng):
    """Stationary rate of LIF neurons with Poisson jump inputs, simulated event by event
    in numpy, independently of the kernels' time rescaling and steps.

    Each neuron has its own clock. Per iteration, every neuron draws the time to its next
    input event; it relaxes exactly toward e_l, fires on the way if e_l > v_th (analytic
    crossing time), otherwise receives the event's jump (connection drawn by rate)."""
    rates = np.array([r for r, _ in inputs])
    weights = np.array([w for _, w in inputs])
    total = rates.sum()
    tau, e_l, th = lif.tau_m, lif.e_l, lif.v_th
    t = np.zeros(n)
    v = np.full(n, lif.resting_state)
    spikes = 0
    while True:
        active = t < t_end
        if not active.any():
            return spikes / (n * (t_end - warm))
        gap = rng.exponential(1.0 / total, n)
        before = e_l + (v - e_l) * np.exp(-gap / tau)
        crossed = active & (before >= th)
        with np.errstate(divide="ignore", invalid="ignore"):
            rise = tau * np.log((e_l - v) / (e_l - th))
        pick = np.searchsorted(np.cumsum(rates), rng.random(n) * total, side="right")
        jump = weights[np.minimum(pick, len(weights) - 1)]
        after = before + jump
        fired_by_jump = active & ~crossed & (after >= th)
        spike_time = np.where(crossed, t + rise, t + gap)
        fired = crossed | fired_by_jump
        spikes += int(np.sum(fired & (spike_time >= warm) & (spike_time < t_end)))
        v = np.where(fired, lif.v_reset, np.where(active, after, v))
        # after a spike the pending event is dropped: input is ignored while refractory
        # and, memoryless, the next one comes Exp(total) after the release
        t = np.where(fired, spike_time + lif.t_ref, np.where(active, t + gap, t))


TWIN_CASES = [
    # the demo model: mean-driven (e_l + tau s h = 1.2 > v_th) with leak between events
    (pd.LIF(tau_m=0.05, v_th=1.0, v_reset=0.0), [(800.0, 0.03)]),
    # fluctuation-driven, excitation and inhibition, refractory
    (pd.LIF(tau_m=TAU, v_th=THETA, v_reset=V_R, t_ref=T_REF),
     [(1500.0, 0.7e-3), (200.0, -1e-3)]),
]
TWIN_N, TWIN_T_END, TWIN_WARM = 10_000, 1.0, 0.2


@functools.cache
def twin_rate(case):
    lif, inputs = TWIN_CASES[case]
    return naive_event_driven_rate(lif, inputs, TWIN_N, TWIN_T_END, TWIN_WARM,
                                   np.random.default_rng(4))


@pytest.mark.parametrize("dt", [1e-4, 1e-3])
@pytest.mark.parametrize("case", range(len(TWIN_CASES)))
def test_jump_input_matches_naive_event_driven_simulation(case, dt):
    # Event times are exact within a step, so the rate does not depend on dt.
    lif, inputs = TWIN_CASES[case]
    net = single(lif, [(r, w, "jump") for r, w in inputs])
    res = net.run(TWIN_T_END, dt, backend="montecarlo", n_neurons=TWIN_N, seed=21)
    rate = res.mean_rate("P", TWIN_WARM)
    twin = twin_rate(case)
    se = poisson_standard_error(twin, TWIN_N, TWIN_T_END - TWIN_WARM)
    # 3 standard errors of the difference of two independent Poisson estimates
    assert abs(rate - twin) < 3 * math.sqrt(2) * se, (rate, twin, se)


# -------------------------------------------------------------- result and options
def demo_network(init=None, grid=None):
    lif = pd.LIF(tau_m=0.05, v_th=1.0, v_reset=0.0, t_ref=2e-3)
    return single(lif, [(800.0, 0.03, "jump"), (200.0, -0.02, "jump")], grid=grid,
                  init=init)


def test_same_seed_same_result_and_different_seeds_differ():
    net = demo_network()
    opts = {"backend": "montecarlo", "n_neurons": 2000, "record_times": [0.05, 0.1]}
    a = net.run(0.1, DT, seed=7, **opts)
    b = net.run(0.1, DT, seed=7, **opts)
    c = net.run(0.1, DT, seed=8, **opts)
    np.testing.assert_array_equal(a.rates["P"], b.rates["P"])
    np.testing.assert_array_equal(a.densities["P"], b.densities["P"])
    np.testing.assert_array_equal(a.refractory["P"], b.refractory["P"])
    assert not np.array_equal(a.rates["P"], c.rates["P"])
    # seed=None draws a seed and reports it, so that the run can be repeated
    d = net.run(0.1, DT, seed=None, **opts)
    e = net.run(0.1, DT, seed=d.info["seed"], **opts)
    np.testing.assert_array_equal(d.rates["P"], e.rates["P"])


@pytest.mark.parametrize("timing", ["exact", "grid"])
def test_result_fields_and_histogram_normalisation(timing):
    net = demo_network()
    n, t_end = 3000, 0.1
    res = net.run(t_end, DT, backend="montecarlo", n_neurons=n, seed=2,
                  record_times=[0.0, 0.03015, 0.05, t_end], timing=timing)
    n_steps = round(t_end / DT)
    assert res.backend == "montecarlo" and res.n_neurons == n and res.dt == DT
    # k * DT, computed alike (default rtol 1e-7; measured equal)
    np.testing.assert_allclose(res.t, np.arange(n_steps) * DT)
    assert res.rates["P"].shape == res.refractory["P"].shape == (n_steps,)
    # recorded at the first step start at or after each requested time
    steps = np.array([0, 302, 500, n_steps])
    # k * DT, computed alike (default rtol 1e-7; measured equal)
    np.testing.assert_allclose(res.record_times, steps * DT)
    grid = res.grids["P"]
    assert grid == net.grid_of(net.populations["P"], dt=DT)
    dens = res.densities["P"]
    assert dens.shape == (4, grid.num_cells) and np.all(dens >= 0)
    # each histogram integrates to the non-refractory fraction on the grid; refractory[k]
    # is the fraction at the end of step k, i.e. at the start of step k + 1
    refractory_at = np.concatenate([[0.0], res.refractory["P"]])[steps]
    mass = dens.sum(axis=1) * grid.axes[0].width
    # round-off: histogram + refractory + below-grid fractions of N neurons
    np.testing.assert_allclose(mass + refractory_at + res.info["below_grid"]["P"], 1.0,
                               rtol=0, atol=1e-12)
    assert res.refractory["P"].max() > 0
    # at t = 0 everyone is at rest (v = e_l = 0, the grid's reset face): one cell
    assert np.count_nonzero(dens[0]) == 1
    assert res.wall_time > 0 and res.info["seed"] == 2


def test_init_density_is_sampled():
    grid = pd.Grid(v=(-0.5, 1.0, 150))
    center, width = 0.3, 0.15

    def bump(v):
        return np.exp(-0.5 * ((v - center) / width) ** 2) - 0.1  # negative tails clip to 0

    net = demo_network(init=bump, grid=grid)
    n = 50_000
    res = net.run(DT, DT, backend="montecarlo", n_neurons=n, seed=4, record_times=[0.0])
    weights = np.clip(bump(grid.axes[0].centers), 0, None)
    weights /= weights.sum()
    centers, dx = grid.axes[0].centers, grid.axes[0].width
    mean = np.sum(weights * centers)
    sd = math.sqrt(np.sum(weights * (centers - mean) ** 2) + dx * dx / 12)
    dens = res.densities["P"][0]
    # round-off: a histogram of N neurons normalised
    assert dens.sum() * dx == pytest.approx(1.0, abs=1e-12)
    assert abs(np.sum(dens * centers) * dx - mean) < 4 * sd / math.sqrt(n)
    # cells where init is 0 get no neuron; the cell counts follow the weights (chi-square)
    counts = np.round(dens * n * dx).astype(int)
    assert np.all(counts[weights == 0] == 0)
    used = weights > 0
    chi2 = stats.chisquare(counts[used], weights[used] * n)
    # false-alarm probability 1e-3 (measured p = 0.46)
    assert chi2.pvalue > 1e-3


@pytest.mark.parametrize("init, message", [
    (lambda v: -np.ones_like(v), "init"),
    (lambda v: np.full_like(v, np.nan), "init"),
    (lambda v: np.ones(3), "init"),
    (lambda v: np.full_like(v, np.inf), "init"),
])
def test_bad_init_is_rejected(init, message):
    net = demo_network(init=init)
    with pytest.raises(ValueError, match=message):
        net.run(0.01, DT, backend="montecarlo", n_neurons=10, seed=0)


@pytest.mark.parametrize("options, error, message", [
    ({"n_neurons": 0}, ValueError, "n_neurons"),
    ({"n_neurons": 2.5}, TypeError, "n_neurons"),
    ({"n_neurons": "100"}, TypeError, "n_neurons"),
    ({"seed": -1}, ValueError, "seed"),
    ({"seed": 1.5}, TypeError, "seed"),
    ({"seed": True}, TypeError, "seed"),
    ({"record_times": [-0.01]}, ValueError, "record_times"),
    ({"record_times": [0.5]}, ValueError, "record_times"),
    ({"record_times": [np.nan]}, ValueError, "record_times"),
    ({"record_times": [[0.01]]}, ValueError, "record_times"),
    ({"record_times": ["soon"]}, TypeError, "record_times"),
    ({"bridge": "yes"}, TypeError, "bridge"),
    ({"n_neuron": 100}, TypeError, "n_neuron"),
    ({"n_neuron": 100}, ValueError, "valid options"),
])
def test_bad_options_are_rejected_by_name(options, error, message):
    net = demo_network()
    with pytest.raises(error, match=message):
        net.run(0.1, DT, backend="montecarlo", **options)


def test_direct_call_validates_times():
    with pytest.raises(ValueError, match="dt"):
        run_montecarlo(demo_network(), 0.1, -1e-4)


# ------------------------------------------------------------ random-number kernels
SEED_BITS = np.uint64(0x1234_5678_9ABC_DEF0)


def test_ziggurat_normals_are_standard_normal():
    z = kernels.sample_normals(400_000, SEED_BITS)
    # false-alarm probability 1e-3 (measured p = 0.76)
    assert stats.kstest(z, "norm").pvalue > 1e-3
    # the tail beyond the base strip (|z| > 3.654) comes from a separate branch
    tail = np.mean(np.abs(z) > kernels._NORMAL_R)
    expected = 2 * stats.norm.sf(kernels._NORMAL_R)
    # 4 standard errors of a Poisson count of tail samples
    assert abs(tail - expected) < 4 * math.sqrt(expected / z.size)


def test_ziggurat_exponentials_are_exponential():
    e = kernels.sample_exponentials(400_000, SEED_BITS)
    # false-alarm probability 1e-3 (measured p = 0.28)
    assert stats.kstest(e, "expon").pvalue > 1e-3
    tail = np.mean(e > kernels._EXP_R)
    # 4 standard errors of a Poisson count of tail samples, 1e-6 for its rounding
    # (measured 3.6e-5 against 1.4e-4)
    assert abs(tail - math.exp(-kernels._EXP_R)) < 4 * math.sqrt(math.exp(-kernels._EXP_R)
                                                                 / e.size) + 1e-6


@pytest.mark.parametrize("d1, d2", [(1.0, 0.5), (1.0, -0.7), (0.3, 0.0), (2.0, 1.5)])
def test_bridge_hitting_time_follows_the_first_passage_density(d1, d2):
    # Strong Markov property: given the endpoints, the first passage time s has density
    # proportional to  g(s) = first-passage density of d1 at s  x  transition density from
    # the threshold to the end point over duration - s.
    duration, variance = 1.0, 1.0

    def g(s):
        if s <= 0 or s >= duration:
            return 0.0
        q = variance / duration
        first = d1 / math.sqrt(2 * math.pi * q * s ** 3) * math.exp(-d1 * d1 / (2 * q * s))
        rest = (math.exp(-d2 * d2 / (2 * q * (duration - s)))
                / math.sqrt(2 * math.pi * q * (duration - s)))
        return first * rest

    norm = integrate.quad(g, 0, duration, limit=200)[0]

    def cdf(s):
        s = np.atleast_1d(s)
        return np.array([integrate.quad(g, 0, x, limit=200)[0] / norm for x in s])

    samples = kernels.sample_bridge_hitting_times(d1, d2, variance, duration, 4000, SEED_BITS)
    assert np.all((samples >= 0) & (samples <= duration))
    # false-alarm probability 1e-3 (measured p = 0.53 to 0.90)
    assert stats.kstest(samples, cdf).pvalue > 1e-3
