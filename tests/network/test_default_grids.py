"""Default 1D grids in a network are sized at its self-consistent rates (issue 15).

The cortical column (8 LIF populations, inhibition-dominated recurrence): sized at 100 Hz
per presynaptic synapse, two populations got a lower edge at -0.7 mV (mass piled there);
taking the lower of that guess and the mean-field sizing gave 10^4 cells to three
populations. Sized at ``Network.grid_rates`` (Siegert mean field), every grid holds its
population: from a spread start, a grid reaching 60 mV further down changes no rate. (From
rest, the synchronous volley sends the column to the low-rate state on the default grids,
as in a Monte Carlo run, but to a high-activity state on that wider grid: the start, not
the grid's reach, is then what differs; see the README.)
"""

import math
import warnings

import numpy as np
import pytest

import popdens as pd
from popdens.examples import column_network
from popdens.models.lif import transient_lower_edge

T_END, DT = 0.3, 1e-4
TAIL = 1000                                       # steps of the last 0.1 s


def spread(v):
    """A start near the stationary state (no synchronous volley from one cell)."""
    return np.exp(-0.5 * ((v - 0.005) / 0.004) ** 2)


def run_quietly(net):
    with warnings.catch_warnings():
        # the 1D engine warns when mass piles in the lowest cell: must not happen here
        warnings.simplefilter("error", RuntimeWarning)
        return net.run(T_END, DT, progress=False)


def _input_rates_and_weights(net, pop, rates):
    """``(total rate, weight)`` of every connection onto ``pop`` at the rates ``rates``."""
    return [(c.n_syn * (rates[c.pre.name] if c.pre.name in rates else c.pre.rate),
             c.weight) for c in net.inputs_of(pop)]


def test_grid_rates_are_the_siegert_fixed_point():
    net = column_network()
    rates = net.grid_rates()
    for pop in net.populations.values():
        m = pop.model
        inputs = _input_rates_and_weights(net, pop, rates)
        mu = m.e_l + m.tau_m * sum(r * w for r, w in inputs)
        sigma = math.sqrt(m.tau_m * sum(r * w * w for r, w in inputs))
        again = pd.theory.siegert_rate(mu, sigma, m.tau_m, m.v_th, m.v_reset, m.t_ref)
        # 1e-6: the root finder's tolerance (measured residual below 1e-9 Hz)
        assert again == pytest.approx(rates[pop.name], rel=1e-6, abs=1e-9), pop.name


def test_column_default_grids_reach_six_sd_below_the_self_consistent_state():
    net = column_network()
    rates = net.grid_rates()
    for pop in net.populations.values():
        m = pop.model
        inputs = _input_rates_and_weights(net, pop, rates)
        mean = m.e_l + m.tau_m * sum(r * w for r, w in inputs)
        var = m.tau_m * sum(r * w * w for r, w in inputs) / 2.0
        ax = net.grid_of(pop, dt=DT).axes[0]
        edge = transient_lower_edge(m.resting_state, mean, var)
        # the edge rounds down to a whole number of cells below the threshold
        assert edge - ax.width < ax.lower <= edge, pop.name
        # sized at the state, not at 100 Hz guesses: 870-1184 cells (were up to 10564)
        assert ax.num_cells < 1300, pop.name


def test_column_rates_on_default_grids_equal_those_on_a_much_wider_grid():
    """Same cell width (0.035 mV, 5 cells per excitatory jump), lower edge at -60 mV
    instead of -15 to -26 mV. Measured: rates equal to 5e-10 relative."""
    default = column_network()
    wide = column_network(grid=pd.Grid(v=(0.015 - 2143 * 0.035e-3, 0.015, 2143)))
    for net in (default, wide):
        for pop in net.populations.values():
            pop.init = spread
    a, b = run_quietly(default), run_quietly(wide)
    # precondition: the wide grid has the default's cell width (equal up to round-off,
    # pytest.approx's default rel 1e-6), so only the extent differs
    assert a.grids["L23e"].axes[0].width == pytest.approx(b.grids["L23e"].axes[0].width)
    for name in default.populations:
        # 1e-6: the mass below the default edge is ~1e-9 (6 sd); measured 5e-10
        assert a.rates[name][-TAIL:].mean() == pytest.approx(
            b.rates[name][-TAIL:].mean(), rel=1e-6), name


def test_column_from_rest_on_default_grids_does_not_pile_and_settles():
    """From rest (every neuron in one cell) the column fires a synchronous volley, then
    settles in the low-rate state that a Monte Carlo run from rest also reaches (N = 4000
    per population, exact timing, 25-ms means after 50 ms: L23e 0.3-0.4, L5e 12.2-13.8,
    L6i 9.2-9.4 Hz); the default grids hold the volley without piling."""
    rest = run_quietly(column_network())
    spread_start = column_network()
    for pop in spread_start.populations.values():
        pop.init = spread
    ref = run_quietly(spread_start)
    for name in rest.rates:
        # 1e-6: both runs reach the same stationary state (measured to ~1e-9)
        assert rest.rates[name][-TAIL:].mean() == pytest.approx(
            ref.rates[name][-TAIL:].mean(), rel=1e-6), name


def test_grid_rates_follow_a_changed_network():
    """The estimate is kept between calls only while what it reads is unchanged."""
    net = column_network()
    before = net.grid_rates()["L23e"]
    assert net.grid_rates()["L23e"] == before
    net.sources["bg_L23e"].rate = 10.0          # more background drive onto L23e
    assert net.grid_rates()["L23e"] > before
