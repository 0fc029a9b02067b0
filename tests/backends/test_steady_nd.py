"""The N-D step operator (pd.step_operator) and the N-D stationary solver.

The operator is built by probing the engine's own step with groups of cells; it is
checked against probing one cell at a time and against the step itself. The stationary
state is checked against long runs of the same grid (the run's time-averaged rate after
its transient, and its final density)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import popdens as pd
from popdens.backends import steady_nd
from popdens.backends.operator_nd import PopulationStepper, step_matrix


def _lif_synaptic_network(cells=(20, 12), rate=3000.0, weight=1.2e-3):
    net = pd.Network()
    model = pd.LIFSynaptic(tau_m=20e-3, tau_syn=5e-3, v_th=20e-3, v_reset=10e-3,
                           t_ref=2e-3)
    pop = net.add_population("P", model, grid=pd.Grid(v=(0.0, 20e-3, cells[0]),
                                                      i_syn=(-1.0, 4.0, cells[1])))
    net.connect(net.add_poisson("ext", rate), pop, weight=weight)
    return net


def _stepper(net, scheme, rate=3000.0):
    sim = steady_nd._prepare(net, 0.0, 1e-4, scheme, None)
    return PopulationStepper(sim.pops[0], [rate], sim.dt_sub, scheme)


def _naive(stepper, forward, about=None):
    """One engine step per unit vector (no grouping)."""
    size = stepper.size
    out = np.zeros((size, size))
    m = stepper.pop.grid.num_cells
    base = None
    if about is not None:
        q0 = stepper.released(about)
        scale = steady_nd.step_matrix.__globals__["JACOBIAN_EPS"] * q0.max()
        mass, pipe, _ = stepper.stages(q0, forward)
        base = np.concatenate([mass, pipe.ravel()])
    for i in range(size):
        e = np.zeros(size)
        e[i] = 1.0
        if about is None:
            out[:, i] = stepper.step(e, forward)[0]
        elif i < m:
            mass, pipe, _ = stepper.stages(q0 + scale * e[:m], forward)
            out[:, i] = (np.concatenate([mass, pipe.ravel()]) - base) / scale
    if about is not None:
        # pipeline columns: release at reset, then the grid columns; rows move down
        length, slots = stepper.pipe_shape
        out[:, m:m + slots] = out[:, :m] @ stepper.release.toarray()
        for k in range(1, length):
            for s in range(slots):
                out[m + (k - 1) * slots + s, m + k * slots + s] = 1.0
    return out


@pytest.mark.parametrize("forward", [True, False])
def test_upwind_step_matrix_equals_one_cell_probing_and_the_step(forward):
    stepper = _stepper(_lif_synaptic_network(), "upwind")
    op = step_matrix(stepper, forward)
    dense = op.matrix.toarray()
    # grouped probes give the same columns as one probe per cell (round-off only)
    assert np.abs(dense - _naive(stepper, forward)).max() < 1e-12
    # fewer engine steps than cells (here 84 for 504 state entries)
    assert op.probes < stepper.pop.grid.num_cells / 2
    # the step is linear: the matrix applied to random states is the step, and it
    # conserves mass (cells + pipeline) column by column
    rng = np.random.default_rng(3)
    for _ in range(3):
        x = rng.random(stepper.size)
        # round-off of a matrix-vector product over ~250 O(1) entries (measured 4.4e-16)
        assert np.abs(op.matrix @ x - stepper.step(x, forward)[0]).max() < 1e-12 * x.sum()
    # column sums of a conservative step: round-off (measured 4.4e-16)
    assert np.abs(dense.sum(axis=0) - 1.0).max() < 1e-12


@pytest.mark.parametrize("forward", [True, False])
def test_limited_step_jacobian_equals_one_cell_probing_and_maps_the_state(forward):
    stepper = _stepper(_lif_synaptic_network(), "mc")
    rng = np.random.default_rng(4)
    x = rng.random(stepper.size)
    x /= x.sum()
    op = step_matrix(stepper, forward, about=x)
    # one probe per cell with the same difference size: equal up to the round-off of
    # the differences (1e-16 of the state / 1e-6)
    assert np.abs(op.matrix.toarray() - _naive(stepper, forward, about=x)).max() < 1e-8
    # the limited step is positively homogeneous: J(x) x = S(x), up to the same
    # round-off (outputs are ~4e-3)
    assert np.abs(op.matrix @ x - stepper.step(x, forward)[0]).max() < 1e-10


def test_spike_surface_step_matrix_equals_one_cell_probing():
    """ReducedHH: gather sweeps along v (departure points far away), no pipeline."""
    net = pd.Network()
    pop = net.add_population("H", pd.ReducedHH(),
                             grid=pd.Grid(v=(-0.082, 0.057, 28), n=(0.0, 1.0, 10)))
    net.connect(net.add_poisson("ext", 4000.0), pop, weight=2e-3)
    stepper = _stepper(net, "upwind", 4000.0)
    op = step_matrix(stepper, True)
    assert op.pipe_shape == (0, 0)
    # grouped probes vs one probe per cell: round-off only (measured equal)
    assert np.abs(op.matrix.toarray() - _naive(stepper, True)).max() < 1e-12
    rng = np.random.default_rng(5)
    x = rng.random(stepper.size)
    # round-off of a matrix-vector product (measured 5.3e-15)
    assert np.abs(op.matrix @ x - stepper.step(x, True)[0]).max() < 1e-12 * x.sum()


def _long_run(net, t_end, scheme="mc"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # edge-mass warnings
        return net.run(t_end, 1e-4, scheme=scheme, record_times=[t_end], progress=False)


@pytest.mark.parametrize("scheme", ["upwind", "mc"])
def test_lif_synaptic_steady_state_is_the_long_run_limit(scheme):
    net = _lif_synaptic_network(cells=(40, 30))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ss = pd.steady_state(net, scheme=scheme)
    res = _long_run(net, 1.0, scheme)
    late = res.rates["P"][5000:].mean()
    # the run has relaxed to round-off by 0.5 s (measured: upwind 7e-13, mc 7e-10
    # relative); the limited solve stops at a state change of 1e-7
    assert abs(ss.rates["P"] - late) < 1e-7 * late
    mass = ss.densities["P"] * res.grids["P"].cell_volume
    # the solve's 1e-7 stopping change, summed over cells (measured 5.3e-13 upwind,
    # 3.4e-8 mc)
    assert np.abs(mass - res.densities["P"][-1] * res.grids["P"].cell_volume).sum() < 1e-6
    # same (measured 3.3e-10 relative)
    assert ss.refractory["P"] == pytest.approx(res.refractory["P"][-1], rel=1e-6)
    # independent: stationary refractory mass is rate * t_ref up to half a step's firing
    assert ss.refractory["P"] == pytest.approx(ss.rates["P"] * 2e-3, abs=ss.rates["P"] * 1e-4)


def test_reduced_hh_steady_state_is_the_long_run_limit():
    """A spike-surface model (no reset): mass circulates on the limit cycle."""
    net = pd.Network()
    pop = net.add_population("H", pd.ReducedHH(),
                             grid=pd.Grid(v=(-0.082, 0.057, 70), n=(0.0, 1.0, 25)))
    net.connect(net.add_poisson("ext", 4000.0), pop, weight=2e-3)
    ss = pd.steady_state(net, tol=1e-6)
    res = _long_run(net, 0.6)
    late = res.rates["H"][3000:].mean()
    # stopping residual 1e-6 of the mass per step pair; the run's transient has decayed
    # below that by 0.3 s (measured: rates of the two halves of [0.3, 0.6) agree to 1e-7)
    assert abs(ss.rates["H"] - late) < 1e-5 * late
    cell = res.grids["H"].cell_volume
    # L1 distance of the masses, the same stopping residual summed (measured 6.0e-7)
    assert np.abs(ss.densities["H"] - res.densities["H"][-1]).sum() * cell < 1e-4


def test_coupled_nd_network_fixed_point_is_the_long_run_limit():
    """E excites I, I inhibits E (LIFSynaptic, 1 ms delays): the Newton fixed point
    of the rates against the long run of the same network."""
    net = pd.Network()
    model = pd.LIFSynaptic(tau_m=20e-3, tau_syn=5e-3, v_th=20e-3, v_reset=10e-3,
                           t_ref=2e-3)
    grid = pd.Grid(v=(0.0, 20e-3, 30), i_syn=(-2.0, 4.0, 24))
    e = net.add_population("E", model, grid=grid)
    i = net.add_population("I", model, grid=grid)
    ext = net.add_poisson("ext", 3000.0)
    net.connect(ext, e, weight=1.2e-3)
    net.connect(ext, i, weight=1.0e-3)
    net.connect(e, i, weight=0.5e-3, n_syn=10, delay=1e-3)
    net.connect(i, e, weight=-0.5e-3, n_syn=10, delay=1e-3)
    ss = pd.steady_state(net, tol=1e-7)
    res = _long_run(net, 1.0)
    for name in ("E", "I"):
        late = res.rates[name][5000:].mean()
        # measured: 3.2e-5 (E) and 1.7e-5 (I) relative, while the run itself settles
        # to 1e-11 between [0.25, 0.5) and [0.5, 1). Cause: the fixed point feeds every
        # step the mean rate; in the run even steps fire 3.7 % below odd ones and the
        # 10-step delay feeds each step its own parity's rate (README, limits)
        assert abs(ss.rates[name] - late) < 1e-4 * late, name
    # inhibition lowers E below its uncoupled rate (135.0 Hz at these inputs, 40 x 30)
    assert ss.rates["E"] < 120.0


def test_step_operator_errors_name_the_parameter():
    net = _lif_synaptic_network()
    with pytest.raises(ValueError, match="name must be a population.*'Q'"):
        pd.step_operator(net, "Q")
    with pytest.raises(ValueError, match="about must be a state vector"):
        pd.step_operator(net, "P", about=np.ones(3))
    open_net = pd.Network()
    pop = open_net.add_population("A", pd.ReducedHH(),
                                  grid=pd.Grid(v=(-0.082, 0.057, 28), n=(0.0, 1.0, 10)),
                                  boundaries={"n": ("absorb", "reflect")})
    open_net.connect(open_net.add_poisson("ext", 4000.0), pop, weight=2e-3)
    with pytest.raises(NotImplementedError, match="no stationary state"):
        pd.steady_state(open_net)
