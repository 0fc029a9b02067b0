"""Poisson-spiking rate units on the Monte Carlo backend (``rate_units="poisson"``)."""

from __future__ import annotations

import numpy as np
import pytest

import popdens as pd

LIF = pd.LIF(tau_m=20e-3, v_th=20e-3, v_reset=10e-3, t_ref=2e-3)


def _net(with_population=True) -> pd.Network:
    net = pd.Network()
    R = net.add_rate_population("R", tau=10e-3, transfer=pd.transfer.sigmoid(40.0, 0.5, 5.0),
                                drive=pd.piecewise([0.0, 0.02], [0.0, 10.0]))
    Q = net.add_rate_population("Q", tau=5e-3, transfer=pd.transfer.relu(gain=1.0))
    net.connect(R, Q, weight=1.0)
    if with_population:
        E = net.add_population("E", LIF, grid=pd.Grid(v=(-0.01, 0.02, 300)))
        net.connect(net.add_poisson("bg", 5000.0), E, weight=0.2e-3)
        net.connect(R, E, weight=0.2e-3, n_syn=100)
    return net


def test_spike_counts_are_poisson_at_the_deterministic_rate():
    """The intensity is the deterministic unit's rate exactly; the counts over 400 bins of
    5 steps are Poisson of it: mean z within 3/sqrt(bins) (bias), SD of z within 4 standard
    errors of 1 (a sample SD of n normals has SE 1/sqrt(2 n): 0.035 for 400 bins)."""
    net = _net()
    det = net.run(0.2, 1e-4, backend="montecarlo", n_neurons=400, seed=5,
                  connectivity="poisson")
    spk = net.run(0.2, 1e-4, backend="montecarlo", n_neurons={"E": 400, "R": 300, "Q": 300},
                  seed=5, connectivity="poisson", rate_units="poisson")
    assert det.info["rate_units_mode"] == "deterministic"
    assert spk.info["rate_units_mode"] == "poisson"
    assert spk.info["rate_unit_neurons"] == {"R": 300, "Q": 300}
    np.testing.assert_array_equal(spk.info["rate_unit_intensity"]["R"], det.rates["R"])
    counts = (spk.rates["R"] * 300 * 1e-4).round()
    np.testing.assert_allclose(counts, spk.rates["R"] * 300 * 1e-4, atol=1e-9)  # whole
    lam = spk.info["rate_unit_intensity"]["R"] * 300 * 1e-4
    bins = 400
    c, m = counts.reshape(bins, -1).sum(1), lam.reshape(bins, -1).sum(1)
    keep = m > 5.0                 # bins after the drive is on (Gaussian limit of counts)
    z = (c[keep] - m[keep]) / np.sqrt(m[keep])
    assert keep.sum() > 300
    # bias: 3 SE of the mean of the z values (measured 0.035 against 0.17)
    assert abs(z.mean()) < 3.0 / np.sqrt(keep.sum())
    # spread: 4 SE of a sample SD (measured 0.0058 against 0.16)
    assert abs(z.std() - 1.0) < 4.0 / np.sqrt(2 * keep.sum())


def test_downstream_unit_and_population_see_the_measured_rate():
    """Q's input is R's measured rate: Q's intensity is the exact solution driven by it
    (linear unit, recomputed here step by step); E gets exactly what a piecewise source
    of R's measured rates gives it (same seed: identical spikes)."""
    net = _net()
    spk = net.run(0.1, 1e-4, backend="montecarlo", n_neurons={"E": 500, "R": 200, "Q": 200},
                  seed=7, connectivity="poisson", rate_units="poisson")
    r_seen = spk.rates["R"]
    q, expected = 0.0, np.zeros(r_seen.size)
    decay = np.exp(-1e-4 / 5e-3)
    for k in range(r_seen.size):     # zero delay: explicit, Q sees R's previous step
        target = r_seen[k - 1] if k else 0.0
        expected[k] = target + (q - target) * (1.0 - decay) * 5e-3 / 1e-4
        q = target + (q - target) * decay
    np.testing.assert_allclose(spk.info["rate_unit_intensity"]["Q"], expected,
                               rtol=1e-12, atol=1e-12)   # round-off of the same formula
    twin = pd.Network()
    E = twin.add_population("E", LIF, grid=pd.Grid(v=(-0.01, 0.02, 300)))
    twin.connect(twin.add_poisson("bg", 5000.0), E, weight=0.2e-3)
    twin.connect(twin.add_poisson("R", pd.piecewise(np.arange(r_seen.size) * 1e-4, r_seen)),
                 E, weight=0.2e-3, n_syn=100)
    alone = twin.run(0.1, 1e-4, backend="montecarlo", n_neurons=500, seed=7,
                     connectivity="poisson")
    np.testing.assert_array_equal(alone.rates["E"], spk.rates["E"])


def test_units_only_and_reproducible_with_a_drawn_seed():
    net = _net(with_population=False)
    a = net.run(0.02, 1e-4, backend="montecarlo", n_neurons=100, rate_units="poisson")
    seed = a.info["rate_unit_seed"]
    b = net.run(0.02, 1e-4, backend="montecarlo", n_neurons=100, rate_units="poisson",
                seed=seed)
    np.testing.assert_array_equal(a.rates["Q"], b.rates["Q"])


@pytest.mark.parametrize("kwargs, message", [
    (dict(backend="montecarlo", rate_units="spiking"),
     r"rate_units must be one of \('deterministic', 'poisson'\), got 'spiking'"),
    (dict(backend="density", rate_units="poisson"),
     "rate_units='poisson' is a Monte Carlo option"),
    (dict(backend="montecarlo", rate_units="poisson", n_neurons={"E": 10}),
     "n_neurons has no size for the Poisson-spiking rate unit 'R'"),
    (dict(backend="montecarlo", rate_units="poisson", n_neurons={"E": 10, "R": 0, "Q": 1}),
     r"n_neurons\['R'\] must be an integer >= 1, got 0"),
])
def test_bad_options_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _net().run(0.001, 1e-4, **kwargs)
