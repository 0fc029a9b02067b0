"""The N-D engine's internal step does not depend on the report step (issue 15).

The internal step comes from the model, grid, inputs and ``max_substep`` only; report
steps shorter, longer, or not a multiple of it are read off the same numerical solution
(fired mass accumulated per internal step, interpolated at the report boundaries)."""

from __future__ import annotations

import numpy as np
import pytest

import popdens as pd
from popdens.backends.density_nd import NDDensitySimulation, report_levels, report_means


def _reduced_hh(t_end, dt, **options):
    net = pd.Network()
    ext = net.add_poisson("ext", rate=pd.piecewise([0.0, 0.01], [2000.0, 4000.0]))
    pop = net.add_population("H", pd.ReducedHH(),
                             grid=pd.Grid(v=(-0.082, 0.057, 70), n=(0.0, 1.0, 25)))
    net.connect(ext, pop, weight=2e-3)
    net.connect(net.add_poisson("inh", 500.0), pop, weight=0.1, reversal=-0.08)
    return NDDensitySimulation(net, t_end, dt, **options).run(progress=False, **{
        "record_times": [0.0124, t_end]})


def _hh4d(t_end, dt):
    net = pd.Network()
    grid = pd.Grid(v=(-0.084, 0.057, 47), m=(0.0, 1.0, 10), h=(0.0, 1.0, 10),
                   n=(0.0, 1.0, 10))
    pop = net.add_population("H", pd.HodgkinHuxley(), grid=grid)
    net.connect(net.add_poisson("ext", pd.piecewise([0.0, 0.003], [4000.0, 6000.0])), pop,
                weight=2e-3)
    return NDDensitySimulation(net, t_end, dt).run(progress=False)


def _lif_synaptic_ei(t_end, dt):
    model = pd.LIFSynaptic(tau_m=20e-3, tau_syn=5e-3, v_th=20e-3, v_reset=10e-3,
                           t_ref=2e-3)
    net = pd.Network()
    ext = net.add_poisson("ext", rate=16000.0)
    grid = pd.Grid(v=(-0.005, 0.02, 25), i_syn=(-1.0, 3.0, 40))
    e = net.add_population("E", model, grid=grid)
    i = net.add_population("I", model, grid=grid)
    for post in (e, i):
        net.connect(ext, post, weight=0.1e-3)
        net.connect(e, post, weight=0.1e-3, n_syn=50, delay=1.5e-3)
        net.connect(i, post, weight=-0.2e-3, n_syn=20, delay=2e-3)
    return NDDensitySimulation(net, t_end, dt).run(progress=False)


def _fired(res, name):
    """Cumulative fired mass at the report boundaries."""
    return np.concatenate([[0.0], np.cumsum(res.rates[name] * res.dt)])


def test_report_means_naive_twin():
    """Against a direct overlap sum: each internal step's amount spread uniformly over
    it, each report step takes the part of every internal step it overlaps."""
    rng = np.random.default_rng(3)
    per_step = rng.uniform(0.0, 1.0, 37)
    h = 0.1
    for dt in (0.1, 0.05, 0.3, 0.073, 0.1234):
        n_report = int(np.floor(37 * h / dt + 1e-9))
        naive = np.zeros(n_report)
        for i in range(n_report):
            a, b = i * dt, (i + 1) * dt
            for k in range(37):
                overlap = max(0.0, min(b, (k + 1) * h) - max(a, k * h))
                naive[i] += per_step[k] * overlap / h
        # round-off: the same overlaps summed in another order (measured 4.4e-15 abs, 1.4e-12 rel)
        np.testing.assert_allclose(report_means(per_step, h, dt, n_report), naive,
                                   rtol=1e-12, atol=1e-14)
        levels = report_levels(per_step, h, dt, n_report, start=0.5)
        at = (np.arange(n_report) + 1) * dt
        # linear interpolation done two ways: round-off (measured 1.3e-13 relative)
        np.testing.assert_allclose(levels, np.interp(at, np.arange(38) * h,
                                                     np.r_[0.5, per_step]), rtol=1e-12)


@pytest.mark.parametrize("dt", [5e-5, 2e-5, 2e-4])
def test_reduced_hh_answer_does_not_depend_on_the_report_step(dt):
    """Same internal step (0.1 ms, from the model) whatever ``dt``: the fired mass at
    every common report boundary agrees to round-off (1e-12: summation order only)."""
    ref = _reduced_hh(0.02, 1e-4)
    res = _reduced_hh(0.02, dt)
    # the same model-chosen sub-step, computed from dt: round-off
    assert ref.info["dt_sub"] == res.info["dt_sub"] == pytest.approx(1e-4, rel=1e-15)
    stride = 1e-4 / dt
    if stride >= 1:
        fired = _fired(res, "H")[::int(round(stride))]
        # summation order only (docstring; measured 2.7e-20 abs, 2.1e-16 rel)
        np.testing.assert_allclose(fired, _fired(ref, "H"), rtol=1e-12, atol=1e-15)
    else:
        fired = _fired(ref, "H")[::int(round(1 / stride))]
        # summation order only (docstring; measured 0 abs, 0 rel)
        np.testing.assert_allclose(_fired(res, "H"), fired, rtol=1e-12, atol=1e-15)
    assert ref.mean_rate("H", 0.01, 0.02) > 30.0      # it fires: the check has content
    # the same internal steps: round-off at most (measured equal, 0.0)
    np.testing.assert_allclose(res.densities["H"], ref.densities["H"], rtol=0,
                               atol=1e-12 * ref.densities["H"].max())


def test_report_step_that_is_not_a_multiple_of_the_internal_step():
    """dt = 73 us against the internal 100 us: the cumulative fired mass at each report
    boundary is the reference's piecewise-linear cumulative there (1e-12), the rates
    average it exactly, and a record inside an internal step is the linear
    interpolation of the two states around it (mass 1 to 1e-12)."""
    ref = _reduced_hh(0.0219, 1e-4)
    res = _reduced_hh(0.0219, 7.3e-5)
    times = np.arange(res.t.size + 1) * 7.3e-5
    expected = np.interp(times, np.arange(ref.t.size + 1) * 1e-4, _fired(ref, "H"))
    # piecewise-linear cumulative: round-off (docstring; measured 4.4e-16 abs, 2.1e-15 rel)
    np.testing.assert_allclose(_fired(res, "H"), expected, rtol=1e-12, atol=1e-15)
    grid = res.grids["H"]
    # record at 12.4 ms: the report boundary 12.41 ms (first at or after it), a tenth of
    # the way from internal step 124 to 125
    assert res.record_times[0] == pytest.approx(170 * 7.3e-5)
    assert res.densities["H"][0].sum() * grid.cell_volume == pytest.approx(1.0, abs=1e-12)
    assert res.densities["H"].min() >= 0.0


def test_hh4d_answer_does_not_depend_on_the_report_step():
    """Cheap 4D HH grid (47 x 10^3 cells): dt = 1e-4 and 5e-5 give the same rates per
    0.1 ms to round-off (issue 15: 4 % apart before, the internal step was dt)."""
    ref = _hh4d(0.006, 1e-4)
    res = _hh4d(0.006, 5e-5)
    # pairs of half steps vs one step: round-off (measured 5.7e-14 abs, 2.1e-16 rel)
    pairs = res.rates["H"].reshape(-1, 2).mean(axis=1)
    np.testing.assert_allclose(pairs, ref.rates["H"], rtol=1e-12,
                               atol=1e-12 * ref.rates["H"].max())
    assert ref.mean_rate("H", 0.0, 0.006) > 1.0       # it fires (measured 138 Hz)


def test_coupled_network_answer_does_not_depend_on_the_report_step():
    """Coupling runs on the internal step (lag weights at h, not at dt), so an E/I
    network with delays gives the same rates for dt = 1e-4 and 5e-5 (round-off)."""
    ref = _lif_synaptic_ei(0.03, 1e-4)
    res = _lif_synaptic_ei(0.03, 5e-5)
    for name in ("E", "I"):
        # pairs of half steps vs one step: round-off (measured 2.8e-14 abs, 2.2e-16 rel)
        pairs = res.rates[name].reshape(-1, 2).mean(axis=1)
        np.testing.assert_allclose(pairs, ref.rates[name], rtol=1e-12,
                                   atol=1e-12 * ref.rates[name].max())
    assert ref.mean_rate("E", 0.02, 0.03) > 1.0       # it fires (measured 91 Hz)
