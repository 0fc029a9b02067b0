"""Coupled populations in the density backend: coupling, delays, conductance synapses."""

import numpy as np
import pytest

import popdens as pd

LIF = pd.LIF(tau_m=0.02, v_th=0.02, v_reset=0.01, t_ref=0.002)
GRID = pd.Grid(v=(-0.01, 0.02, 300))
DT = 1e-4


def _chain(delay, t_end=0.3, pre_rate=None):
    """Source -> A -> B; or, with ``pre_rate``, B driven by a source that replays it."""
    net = pd.Network()
    ext = net.add_poisson("ext", rate=pd.piecewise([0.0, 0.1], [800.0, 1600.0]))
    b = net.add_population("B", LIF, grid=GRID)
    if pre_rate is None:
        a = net.add_population("A", LIF, grid=GRID)
        net.connect(ext, a, weight=1e-3, n_syn=1.2)
        net.connect(a, b, weight=0.5e-3, n_syn=100, delay=delay)
    else:
        times = np.arange(pre_rate.size) * DT
        replay = net.add_poisson("A", rate=pd.piecewise(times, 100 * pre_rate))
        net.connect(replay, b, weight=0.5e-3, delay=delay)
    net.connect(ext, b, weight=0.5e-3, n_syn=0.5)
    return net.run(t_end, DT)


@pytest.mark.parametrize("delay", [0.0015, 0.00235, pd.delays.uniform(1e-3, 3e-3),
                                   pd.delays.gamma(2e-3, 3.0, offset=5e-4)])
def test_coupling_equals_replayed_rate(delay):
    """B driven by population A equals B driven by a source replaying A's rate through
    the same delay (one internal step per step, delays of at least one step: the
    explicit coupling then sees exactly what the source replay sees)."""
    coupled = _chain(delay)
    assert coupled.info["n_sub"] == 1
    assert coupled.mean_rate("B", 0.2) > 50.0          # B is driven, not silent
    replay = _chain(delay, pre_rate=coupled.rates["A"])
    # the same input up to round-off of the replayed rate table (measured 7.9e-11 abs, 5.9e-11 rel)
    np.testing.assert_allclose(coupled.rates["B"], replay.rates["B"], rtol=1e-8,
                               atol=1e-8 * coupled.rates["B"].max())


def test_zero_delay_acts_as_one_internal_step():
    coupled = _chain(0.0)
    one_step = _chain(DT)
    # the same arithmetic in another order (measured 1.4e-12 abs, 4.7e-11 rel)
    np.testing.assert_allclose(coupled.rates["B"], one_step.rates["B"], rtol=1e-12,
                               atol=1e-12 * coupled.rates["B"].max())


def test_exponential_delay_of_a_step_is_analytic():
    """The rate seen through an exponential delay of a step input is
    r0 + (r1 - r0) (1 - exp(-(t - t_s) / tau)), averaged over each step."""
    net = pd.Network()
    tau, t_s = 3e-3, 0.01
    src = net.add_poisson("s", rate=pd.piecewise([0.0, t_s], [100.0, 300.0]))
    pop = net.add_population("P", LIF, grid=GRID)
    conn = net.connect(src, pop, weight=1e-4, n_syn=2, delay=pd.delays.exponential(tau))
    t0 = np.arange(0.0, 0.05, DT)
    seen = net.source_rate_table(conn, t0, DT)

    def integral(t):   # of the delayed rate from 0
        s = np.maximum(t - t_s, 0.0)
        # the piecewise rate is 0 before t = 0: two delayed steps, at 0 and at t_s
        return 100.0 * (t - tau * (1.0 - np.exp(-t / tau))) + \
            200.0 * (s - tau * (1.0 - np.exp(-s / tau)))

    exact = 2 * (integral(t0 + DT) - integral(t0)) / DT
    # round-off: differences of exponentials of O(1) (measured 1.1e-13 relative)
    np.testing.assert_allclose(seen, exact, rtol=1e-9)


def test_conductance_far_reversal_equals_current_jump():
    """With the reversal potential far away, w (E - v) is the constant jump w E (here a
    whole number of cells, moved exactly by the current-synapse kernel; the affine
    remap must reproduce it up to its tiny v-dependence, 1e-7 cells)."""
    def run(reversal):
        net = pd.Network()
        ext = net.add_poisson("ext", rate=2500.0)
        pop = net.add_population("P", LIF, grid=GRID)
        if reversal is None:
            net.connect(ext, pop, weight=0.4e-3)
        else:
            net.connect(ext, pop, weight=0.4e-3 / reversal, reversal=reversal)
        return net.run(0.2, DT)

    current = run(None)
    conductance = run(1e6)
    assert current.mean_rate("P", 0.1) > 10.0      # precondition: the comparison has content
    # w (E - v) differs from the current jump by v / E ~ 2e-8 (measured 3.2e-06 abs, 1.9e-06 rel)
    np.testing.assert_allclose(conductance.rates["P"], current.rates["P"], rtol=1e-5,
                               atol=1e-6)


def test_conductance_mean_potential_is_first_order_and_extrapolates_to_exact():
    """Leak plus excitatory and inhibitory conductance shot noise, threshold out of
    reach: the stationary mean solves 0 = (e_l - m) / tau + sum_c s_c w_c (E_c - m)
    exactly. The snapshot after a Lie-split sub-step is first order in the sub-step
    (measured), and its Richardson extrapolation hits the exact mean."""
    lif = pd.LIF(tau_m=0.02, v_th=0.2, v_reset=0.0, e_l=0.0)

    def mean_potential(max_substep):
        net = pd.Network()
        ext = net.add_poisson("ext", rate=2000.0)
        inh = net.add_poisson("inh", rate=500.0)
        pop = net.add_population("P", lif, grid=pd.Grid(v=(-0.08, 0.2, 1400)))
        net.connect(ext, pop, weight=0.02, reversal=0.06)
        net.connect(inh, pop, weight=0.05, reversal=-0.07)
        res = net.run(0.3, DT, record_times=[0.3], max_substep=max_substep)
        ax = res.grids["P"].axes[0]
        density = res.densities["P"][-1]
        assert res.mean_rate("P") == 0.0
        # round-off: sum of the grid cells
        assert np.sum(density) * ax.width == pytest.approx(1.0, abs=1e-12)
        return np.sum(ax.centers * density) * ax.width

    exact = (2000.0 * 0.02 * 0.06 + 500.0 * 0.05 * -0.07) / (1.0 / 0.02 + 2000.0 * 0.02
                                                              + 500.0 * 0.05)
    coarse, medium, fine = (mean_potential(h) for h in (1e-4, 5e-5, 2.5e-5))
    order = np.log2((coarse - medium) / (medium - fine))
    # Lie splitting: first order in the sub-step (measured order 1.0045)
    assert order == pytest.approx(1.0, abs=0.1)
    # first-order error at the coarsest step (measured 0.0025)
    assert abs(coarse / exact - 1.0) < 0.005
    # Richardson extrapolation removes the O(h) term (measured 4.5e-07 relative)
    assert 2.0 * fine - medium == pytest.approx(exact, rel=1e-4)


def test_recurrent_conservation_and_positivity():
    """A strongly coupled E-I pair with delays: the mass of each population (cells +
    refractory) stays 1 and nothing is negative."""
    net = pd.Network()
    ext = net.add_poisson("ext", rate=pd.sinusoid(2000.0, 1500.0, 20.0))
    e = net.add_population("E", LIF, grid=GRID)
    i = net.add_population("I", LIF, grid=GRID)
    for post in (e, i):
        net.connect(ext, post, weight=0.5e-3)
        net.connect(e, post, weight=0.2e-3, n_syn=50, delay=pd.delays.exponential(2e-3))
        net.connect(i, post, weight=-0.6e-3, n_syn=20, delay=1e-3)
    sim = pd.backends.density.prepare(net, 0.2, DT)
    res = sim.run(record_times=[0.1, 0.2])
    for q, name in enumerate(sim.names):
        lo, hi = sim.pop_offset[q], sim.pop_offset[q + 1]
        in_transit = sim.pipe_start[sim.pipe_offset[q]:sim.pipe_offset[q + 1]].sum() + \
            sim.pipe_mid[sim.pipe_offset[q]:sim.pipe_offset[q + 1]].sum()
        # round-off: masses on the grid plus in transit
        assert sim.mass[lo:hi].sum() + in_transit == pytest.approx(1.0, abs=1e-12)
        assert sim.mass[lo:hi].min() >= 0.0
        assert res.densities[name].min() >= 0.0
        assert res.mean_rate(name, 0.05) > 1.0     # precondition: every population fires


# --- bad input -----------------------------------------------------------------------------
def _two_pops():
    net = pd.Network()
    return net, net.add_population("A", LIF, grid=GRID), net.add_population("B", LIF,
                                                                            grid=GRID)


def test_bad_connections_and_delay_kernels_raise_errors_naming_the_value():
    net, a, b = _two_pops()
    other = pd.Network().add_population("X", LIF, grid=GRID)
    with pytest.raises(ValueError, match="'X' belongs to another network"):
        net.connect(other, b, weight=1e-3)
    with pytest.raises(ValueError, match="'nope' is not a population"):
        net.connect("nope", b, weight=1e-3)
    with pytest.raises(ValueError, match="delay must be >= 0, got -0.001"):
        net.connect(a, b, weight=1e-3, delay=-1e-3)
    with pytest.raises(ValueError, match="n_syn must be >= 0, got -2"):
        net.connect(a, b, weight=1e-3, n_syn=-2)
    with pytest.raises(ValueError, match="must sum to 1"):
        pd.delays.kernel([0.2, 0.2], bin_width=1e-3)
    with pytest.raises(ValueError, match=r"must be >= 0, got weights\[1\] = -0.1"):
        pd.delays.kernel([1.1, -0.1], bin_width=1e-3)
    with pytest.raises(ValueError, match="weight in \\(0, 1\\)"):
        net.connect(a, b, weight=1.5, reversal=0.0)
    with pytest.raises(TypeError, match="delay must be a float"):
        net.connect(a, b, weight=1e-3, delay="2 ms")


def test_jump_leaving_the_grid_is_an_error():
    net, a, b = _two_pops()
    net.connect(a, b, weight=-0.05)
    with pytest.raises(ValueError, match="spans the whole grid of 'B'"):
        net.run(0.01, DT)
    net, a, b = _two_pops()
    net.connect(a, b, weight=0.9, reversal=-1.0)
    with pytest.raises(ValueError, match="below the grid of 'B'"):
        net.run(0.01, DT)


# --- self-consistent steady state ------------------------------------------------------------
def _brunel(g, eta, input, cells=1600, source_rates=None):
    """Brunel (2000) model A as two populations; ``source_rates`` replaces the recurrent
    inputs by Poisson sources at those population rates (open loop)."""
    j, c_e, c_i, tau, theta = 1e-4, 1000, 250, 0.02, 0.02
    nu_thr = theta / (j * c_e * tau)
    lif = pd.LIF(tau_m=tau, v_th=theta, v_reset=0.01, t_ref=0.002)
    net = pd.Network()
    ext = net.add_poisson("ext", rate=eta * nu_thr)
    grid = pd.Grid(v=(-0.02, 0.02, cells))
    pops = {name: net.add_population(name, lif, grid=grid) for name in ("E", "I")}
    pre = pops if source_rates is None else {
        name: net.add_poisson(name + "_src", rate=source_rates[name]) for name in pops}
    for post in pops.values():
        net.connect(ext, post, weight=j, n_syn=c_e, input=input)
        net.connect(pre["E"], post, weight=j, n_syn=c_e, delay=1.5e-3, input=input)
        net.connect(pre["I"], post, weight=-g * j, n_syn=c_i, delay=1.5e-3, input=input)
    return net


def test_steady_state_of_brunel_network_is_the_mean_field_fixed_point():
    """Diffusion input: the density fixed point is Brunel's self-consistent Siegert rate;
    it is a fixed point where plain iteration r <- F(r) diverges (|F'| > 1)."""
    st = pd.steady_state(_brunel(5.0, 2.0, "diffusion"))
    nu_ext = 2.0 * 0.02 / (1e-4 * 1000 * 0.02)
    expected = pd.brunel_mean_field_rate(nu_ext, 5.0)
    # diffusion density vs the mean-field formula (measured 1.5e-06 relative)
    assert st.rates["E"] == pytest.approx(expected, rel=1e-4)
    # E and I are identical populations: round-off
    assert st.rates["I"] == pytest.approx(st.rates["E"], rel=1e-12)
    # open loop at the fixed point reproduces it; its slope makes plain iteration diverge
    r = st.rates["E"]

    def open_loop(rate):
        return pd.steady_state(_brunel(5.0, 2.0, "diffusion",
                                       source_rates={"E": rate, "I": rate})).rates["E"]

    # the steady-state root finder's tolerance (measured 5.1e-13 relative)
    assert open_loop(r) == pytest.approx(r, rel=1e-7)
    slope = (open_loop(r * 1.001) - open_loop(r * 0.999)) / (0.002 * r)
    # below -1, plain iteration r -> open_loop(r) diverges (the point of the fixed-point
    # solver)
    assert slope < -1.0


def test_coupled_steady_state_equals_long_run():
    """Jump input on a coarse grid: the self-consistent steady state is the long-time
    limit of the coupled run (same internal step)."""
    net = _brunel(4.0, 2.0, "jump", cells=400)
    st = pd.steady_state(net)
    res = net.run(1.0, 1e-4)
    assert st.rates["E"] > 5.0      # precondition: a firing fixed point
    # run to 0.8 s relaxes to the fixed point (measured 7.9e-13 relative)
    assert res.mean_rate("E", 0.8) == pytest.approx(st.rates["E"], rel=1e-6)
