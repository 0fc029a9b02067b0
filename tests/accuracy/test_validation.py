"""Bad input raises a clear error that names the parameter and the value."""

import numpy as np
import pytest

import popdens as pd


def simple_network(**connect):
    net = pd.Network()
    src = net.add_poisson("ext", rate=800.0)
    pop = net.add_population("P", pd.LIF(tau_m=0.05, v_th=1.0, v_reset=0.0))
    net.connect(src, pop, weight=0.03, **connect)
    return net


@pytest.mark.parametrize("kwargs, match", [
    ({"tau_m": -0.02}, "tau_m must be > 0, got -0.02"),
    ({"tau_m": 0.0}, "tau_m must be > 0"),
    ({"v_reset": 1.0}, "v_reset must be < v_th"),
    ({"v_reset": 2.0}, "v_reset must be < v_th"),
    ({"t_ref": -1e-3}, "t_ref must be >= 0"),
    ({"v_th": float("nan")}, "v_th must be finite"),
])
def test_bad_lif_parameter_raises_naming_it(kwargs, match):
    params = {"tau_m": 0.02, "v_th": 1.0, "v_reset": 0.0} | kwargs
    with pytest.raises(ValueError, match=match):
        pd.LIF(**params)


def test_lif_rejects_a_non_numeric_parameter_by_name():
    with pytest.raises(TypeError, match="tau_m must be a real number"):
        pd.LIF(tau_m="fast", v_th=1.0, v_reset=0.0)


@pytest.mark.parametrize("axis, match", [
    ((0.0, 1.0, 1), "num_cells must be >= 2, got 1"),
    ((1.0, 0.0, 10), "lower must be < upper"),
    ((0.0, float("inf"), 10), "upper must be finite"),
])
def test_bad_grid_axis_raises_naming_the_problem(axis, match):
    with pytest.raises(ValueError, match=match):
        pd.Grid(v=axis)


@pytest.mark.parametrize("grid, match", [
    (pd.Grid(v=(0.1, 1.0, 10)), "must contain v_reset=0 and v_th=1"),
    (pd.Grid(v=(0.0, 0.9, 10)), "must contain v_reset=0 and v_th=1"),
    (pd.Grid(v=(0.0, 1.2, 10)), "must equal the threshold v_th"),
    (pd.Grid(x=(0.0, 1.0, 10)), "do not match the LIF state variables"),
])
def test_grid_must_fit_the_model(grid, match):
    net = pd.Network()
    with pytest.raises(ValueError, match=match):
        net.add_population("P", pd.LIF(tau_m=0.02, v_th=1.0, v_reset=0.0), grid=grid)


def test_negative_and_nan_rates():
    net = pd.Network()
    with pytest.raises(ValueError, match="rate of source 'x' must be >= 0, got -1.0"):
        net.add_poisson("x", rate=-1.0)
    with pytest.raises(ValueError, match="piecewise rates must be finite and >= 0"):
        pd.piecewise([0.0, 1.0], [1.0, -2.0])
    src = net.add_poisson("bad", rate=lambda t: np.where(np.asarray(t) > 0.005, np.nan, 5.0))
    pop = net.add_population("P", pd.LIF(tau_m=0.02, v_th=1.0, v_reset=0.0))
    net.connect(src, pop, weight=0.1)
    for backend in ("density", "montecarlo"):
        with pytest.raises(ValueError, match=r"rate of source 'bad' must be finite.*t=0.005"):
            net.run(t_end=0.01, dt=1e-4, backend=backend, **(
                {"n_neurons": 10} if backend == "montecarlo" else {}))


def test_connect_rejects_bad_input_kind_delay_and_n_syn_by_value():
    net = simple_network()
    src, pop = net.sources["ext"], net.populations["P"]
    with pytest.raises(ValueError, match="input must be one of .*got 'gauss'"):
        net.connect(src, pop, weight=0.1, input="gauss")
    with pytest.raises(ValueError, match="delay must be >= 0, got -0.001"):
        net.connect(src, pop, weight=0.1, delay=-1e-3)
    with pytest.raises(ValueError, match="n_syn must be >= 0, got -1.0"):
        net.connect(src, pop, weight=0.1, n_syn=-1)
    with pytest.raises(ValueError, match="weight must be nonzero"):
        net.connect(src, pop, weight=0.0)
    with pytest.raises(ValueError, match="post 'Q' is not a population of this network"):
        net.connect(src, "Q", weight=0.1)
    other = pd.Network().add_poisson("foreign", rate=1.0)
    with pytest.raises(ValueError, match="pre 'foreign' belongs to another network"):
        net.connect(other, pop, weight=0.1)
    with pytest.raises(ValueError, match="is a source; it cannot receive input"):
        net.connect(pop, src, weight=0.1)


def test_run_rejects_bad_backend_t_end_dt_and_scheme_by_value():
    net = simple_network()
    with pytest.raises(ValueError, match="backend must be one of .*got 'nest'"):
        net.run(t_end=0.01, dt=1e-4, backend="nest")
    with pytest.raises(ValueError, match="t_end must be > 0"):
        net.run(t_end=-1.0, dt=1e-4)
    with pytest.raises(ValueError, match="dt must be > 0"):
        net.run(t_end=0.01, dt=0.0)
    with pytest.raises(ValueError, match="scheme must be one of .*got 'weno'"):
        net.run(t_end=0.01, dt=1e-4, scheme="weno")
    with pytest.raises(ValueError, match="unknown option.*bogus"):
        net.run(t_end=0.01, dt=1e-4, bogus=1)
    with pytest.raises(ValueError, match="record_times must lie in"):
        net.run(t_end=0.01, dt=1e-4, record_times=[0.5])


def test_montecarlo_rejects_bad_n_neurons_and_density_options():
    net = simple_network()
    with pytest.raises(ValueError, match="n_neurons must be >= 1, got 0"):
        net.run(t_end=0.01, dt=1e-4, backend="montecarlo", n_neurons=0)
    with pytest.raises(TypeError, match="n_neurons must be an integer"):
        net.run(t_end=0.01, dt=1e-4, backend="montecarlo", n_neurons=2.5)
    with pytest.raises(ValueError, match="unknown option.*scheme"):
        net.run(t_end=0.01, dt=1e-4, backend="montecarlo", scheme="mc")


def test_inhibitory_jump_spanning_the_grid():
    net = pd.Network()
    src = net.add_poisson("i", rate=100.0)
    pop = net.add_population("P", pd.LIF(tau_m=0.02, v_th=1.0, v_reset=0.0),
                             grid=pd.Grid(v=(0.0, 1.0, 10)))
    net.connect(src, pop, weight=-2.0)
    with pytest.raises(ValueError, match="spans the whole grid"):
        net.run(t_end=0.01, dt=1e-4)


def test_init_must_be_a_density():
    net = pd.Network()
    with pytest.raises(TypeError, match="init must be None or a callable"):
        net.add_population("P", pd.LIF(tau_m=0.02, v_th=1.0, v_reset=0.0), init=3.0)
    pop = net.add_population("Q", pd.LIF(tau_m=0.02, v_th=1.0, v_reset=0.0),
                             init=lambda v: -np.ones_like(v))
    net.connect(net.add_poisson("x", rate=10.0), pop, weight=0.1)
    with pytest.raises(ValueError, match="init"):
        net.run(t_end=0.01, dt=1e-4)


def test_run_without_populations_is_refused():
    with pytest.raises(ValueError, match="no populations"):
        pd.Network().run(t_end=0.01, dt=1e-4)
