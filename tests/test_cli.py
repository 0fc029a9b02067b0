"""The ``popdens demo`` command and the plotting helpers."""

from __future__ import annotations

import io
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import popdens as pd  # noqa: E402
from popdens import cli, plot  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_demo_prints_rates_writes_png_and_backends_agree(tmp_path, capsys, monkeypatch):
    returned = {}
    original = cli.demo

    def recording_demo(**kwargs):
        returned.update(original(**kwargs))
        return returned

    monkeypatch.setattr(cli, "demo", recording_demo)
    png = tmp_path / "d.png"
    status = cli.main(["demo", "--t-end", "0.1", "--neurons", "20000", "--output", png])
    assert status == 0
    text = capsys.readouterr().out

    image = mpimg.imread(png)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image.std() > 0  # not a blank canvas

    for key in ("density_steady_rate", "montecarlo_steady_rate", "density_peak_rate",
                "montecarlo_peak_rate", "montecarlo_standard_error"):
        assert f"{returned[key]:.3f}" in text, key
    assert "density" in text and "Monte Carlo" in text and "wall time" in text

    se = returned["montecarlo_standard_error"]
    assert se > 0
    assert returned["density_steady_rate"] > 0
    diff = returned["density_steady_rate"] - returned["montecarlo_steady_rate"]
    assert abs(diff) <= 4 * se, (diff, se)
    assert returned["density"].n_neurons is None
    assert returned["montecarlo"].n_neurons == 20000
    assert returned["output"] == png


def test_demo_no_plot_writes_nothing(tmp_path, capsys):
    png = tmp_path / "none.png"
    numbers = cli.demo(t_end=0.02, n_neurons=500, seed=3, output=None)
    assert numbers["output"] is None and not png.exists()
    assert "steady rate" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["demo", "--neurons", "0"], ["demo", "--t-end", "-1"],
                                  ["demo", "--t-end", "1e-6"], ["demo", "--seed", "x"],
                                  ["demo", "--output", "/no/such/folder/d.png"], []])
def test_invalid_arguments_exit_with_status_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert "popdens" in capsys.readouterr().err


def test_python_dash_m_popdens():
    done = subprocess.run([sys.executable, "-m", "popdens", "--version"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    assert done.stdout.strip() == f"popdens {pd.__version__}"


# --- plotting ---------------------------------------------------------------------------
def _network():
    net = pd.Network()
    ext = net.add_poisson("ext", rate=pd.piecewise([0.0, 0.02], [900.0, 1500.0]))
    lif = pd.LIF(tau_m=20e-3, v_th=20e-3, v_reset=10e-3, t_ref=2e-3)
    net.add_population("E", lif, grid=pd.Grid(v=(0.0, 20e-3, 200)))
    net.connect(ext, "E", weight=0.5e-3)
    return net


@pytest.fixture(scope="module")
def runs():
    net = _network()
    record = [0.0, 0.01, 0.02, 0.03, 0.04]
    res = net.run(t_end=0.04, dt=1e-4, record_times=record)
    mc = net.run(t_end=0.04, dt=1e-4, backend="montecarlo", n_neurons=2000, seed=5,
                 record_times=record)
    return net, res, mc


def _assert_drawn(ax):
    assert ax.get_xlabel() and ax.get_ylabel()
    assert "(" in ax.get_xlabel() and "(" in ax.get_ylabel()   # units
    assert ax.lines or ax.patches or ax.collections
    buffer = io.BytesIO()
    ax.figure.savefig(buffer, format="png")
    assert buffer.getbuffer().nbytes > 1000


def test_rates_plot_density_and_montecarlo_band(runs):
    _, res, mc = runs
    ax = plot.rates([res, mc])
    _assert_drawn(ax)
    assert len(ax.lines) == 1                       # the density line
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("Monte Carlo" in s for s in labels) and any("SE" in s for s in labels)
    # +-2 SE band around the Monte Carlo bins
    band = [c for c in ax.collections if c.get_label() == "±2 SE"]
    assert len(band) == 1


def test_rates_plot_single_result_given_axes_and_unbinned(runs):
    _, res, _ = runs
    fig, ax = plt.subplots()
    assert plot.rates(res, names="E", bin_width=None, ax=ax) is ax
    _assert_drawn(ax)
    assert ax.lines[0].get_xydata().shape[0] == res.t.size


def test_rates_plot_rejects_unknown_population(runs):
    _, res, _ = runs
    with pytest.raises(ValueError, match="'I'"):
        plot.rates(res, names="I")


def test_density_plot_with_montecarlo_overlay(runs):
    _, res, mc = runs
    ax = plot.density(res, "E", other=mc, index=2)
    _assert_drawn(ax)
    assert "0.02" in ax.get_title()
    centers = res.centers("E")
    np.testing.assert_allclose(ax.lines[0].get_xdata(), centers)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), res.densities["E"][2])
    assert ax.patches   # the Monte Carlo histogram as steps


def test_density_plot_of_a_steady_state(runs):
    net, res, _ = runs
    steady = pd.steady_state(net, at=0.03)
    ax = plot.density(res, "E", other=steady)
    _assert_drawn(ax)
    assert len(ax.lines) == 2


def test_density_plot_needs_recorded_densities():
    res = _network().run(t_end=0.005, dt=1e-4)
    with pytest.raises(ValueError, match="record_times"):
        plot.density(res, "E")


def test_density_heatmap(runs):
    _, res, mc = runs
    for result in (res, mc):
        ax = plot.density_heatmap(result, "E")
        _assert_drawn(ax)
        mesh = ax.collections[0]
        assert mesh.get_array().size == res.densities["E"].size
    cbar_axes = [a for a in ax.figure.axes if a is not ax]
    assert cbar_axes and cbar_axes[0].get_ylabel()
