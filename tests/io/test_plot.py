"""Plot functions render under Agg, return their Axes/Figure and label every axis."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import popdens as pd  # noqa: E402
from popdens import plot  # noqa: E402


def _network():
    net = pd.Network()
    ext = net.add_poisson("ext", rate=2500.0)
    lif = pd.LIF(tau_m=20e-3, v_th=20e-3, v_reset=10e-3, t_ref=2e-3)
    net.add_population("E", lif, grid=pd.Grid(v=(0.0, 20e-3, 100)))
    net.connect(ext, "E", weight=0.5e-3)
    return net


@pytest.fixture(scope="module")
def runs():
    net = _network()
    res = net.run(t_end=0.03, dt=1e-4, record_times=[0.03])
    mc = net.run(t_end=0.03, dt=1e-4, backend="montecarlo", n_neurons=1000, seed=4,
                 record_times=[0.03], record_spikes=50)
    return res, mc


def _result_2d(times=(0.01, 0.02)):
    """A hand-made result of a population with two state variables (v, n)."""
    grid = pd.Grid(v=(-0.08, 0.04, 40), n=(0.0, 1.0, 20))
    v, n = np.meshgrid(grid.axes[0].centers, grid.axes[1].centers, indexing="ij")
    blob = np.exp(-((v + 0.065) / 0.01) ** 2 - ((n - 0.3) / 0.1) ** 2)
    blob /= blob.sum() * grid.cell_volume
    t = np.arange(300) * 1e-4
    return pd.Result(t=t, dt=1e-4, rates={"HH": np.full(t.size, 5.0)},
                     record_times=np.array(times), densities={"HH": np.stack([blob] * 2)},
                     grids={"HH": grid}, backend="density")


def _png_bytes(fig) -> int:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getbuffer().nbytes


def _assert_labelled(ax):
    for label in (ax.get_xlabel(), ax.get_ylabel()):
        assert label and "(" in label and ")" in label, label   # a unit in brackets


def test_rate_bands_with_confidence_band(runs):
    res, mc = runs
    ax = plot.rate_bands([res, mc])
    assert isinstance(ax, Axes)
    _assert_labelled(ax)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "95 % band (±1.96 SE)" in labels
    band = ax.collections[0]
    # the band spans mean +- 1.96 SE
    t, r = mc.binned_rates("E", 1e-3)
    se = mc.standard_error("E", 1e-3)
    vertices = np.concatenate([p.vertices for p in band.get_paths()])
    # the band drawn from the same numbers (default approx)
    assert vertices[:, 1].max() == pytest.approx((r + 1.96 * se).max())
    assert _png_bytes(ax.figure) > 5000


def test_rate_bands_rejects_bad_arguments(runs):
    res, _ = runs
    with pytest.raises(ValueError, match="bin_width"):
        plot.rate_bands(res, bin_width=0.0)
    with pytest.raises(ValueError, match="'X'"):
        plot.rate_bands(res, names="X")


def test_raster_of_recorded_spikes(runs):
    res, mc = runs
    ax = plot.raster(mc, "E")
    _assert_labelled(ax)
    times, indices = mc.info["spikes"]["E"]
    assert indices.size and indices.max() < 50
    offsets = ax.collections[0].get_offsets()
    assert len(offsets) == times.size
    assert _png_bytes(ax.figure) > 3000
    ax = plot.raster(mc, "E", max_neurons=10, time_range=(0.01, 0.03))
    assert len(ax.collections[0].get_offsets()) == int(
        np.count_nonzero((indices < 10) & (times >= 0.01) & (times <= 0.03)))
    with pytest.raises(ValueError, match="no recorded spikes"):
        plot.raster(res, "E")


def test_marginals_of_a_2d_density():
    result = _result_2d()
    fig = plot.marginals(result, "HH", other=result)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    for ax in fig.axes:
        _assert_labelled(ax)
    grid = result.grids["HH"]
    v_curve = fig.axes[0].lines[0].get_ydata()
    # each marginal integrates to 1
    assert np.sum(v_curve) * grid.axes[0].width == pytest.approx(1.0)
    n_curve = fig.axes[1].lines[0].get_ydata()
    # normalised marginals (default approx)
    assert np.sum(n_curve) * grid.axes[1].width == pytest.approx(1.0)
    assert fig.axes[0].get_xlabel() == "membrane potential v (V)"
    assert fig.axes[1].get_ylabel() == "marginal density (1)"
    assert _png_bytes(fig) > 5000


def test_marginals_of_a_1d_result(runs):
    res, mc = runs
    fig = plot.marginals(res, "E", other=mc)
    assert len(fig.axes) == 1
    # the plotted line is the result's array (default rtol 1e-7; nothing is recomputed)
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), res.densities["E"][-1])


def test_phase_plane_with_nullclines():
    result = _result_2d()
    v = np.linspace(-0.08, 0.04, 50)
    ax = plot.phase_plane(result, "HH", nullclines={"dv/dt = 0": (v, 0.5 + 2 * v),
                                                    "dn/dt = 0": (v, 0.3 + 0 * v)})
    assert isinstance(ax, Axes)
    assert ax.get_xlabel() == "membrane potential v (V)"
    assert ax.get_ylabel() == "K activation n (1)"
    assert len(ax.lines) == 2
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["dv/dt = 0", "dn/dt = 0"]
    colorbar = [a for a in ax.figure.axes if a is not ax][0]
    assert colorbar.get_ylabel() == "probability density (1/V)"
    mesh = ax.collections[0]
    assert mesh.get_array().size == 40 * 20
    assert _png_bytes(ax.figure) > 5000
    swapped = plot.phase_plane(result, "HH", x="n", y="v", index=0)
    assert swapped.get_xlabel().endswith("n (1)")
    with pytest.raises(ValueError, match="state variable"):
        plot.phase_plane(result, "HH", x="w")


def test_phase_plane_needs_two_variables(runs):
    res, _ = runs
    with pytest.raises(ValueError, match=">= 2 state variables"):
        plot.phase_plane(res, "E")


@pytest.mark.parametrize("which", [0, 1])
def test_summary_figure_has_two_labelled_axes_and_draws(runs, which):
    result = runs[which]
    fig = plot.summary(result)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    for ax in fig.axes:
        _assert_labelled(ax)
    assert _png_bytes(fig) > 5000


def test_no_function_calls_show(monkeypatch, runs):
    def fail(*args, **kwargs):
        raise AssertionError("plt.show called")

    monkeypatch.setattr(plt, "show", fail)
    res, mc = runs
    plot.rate_bands([res, mc])
    plot.raster(mc, "E")
    plot.marginals(_result_2d(), "HH")
    plot.phase_plane(_result_2d(), "HH")
    plot.summary(mc)
    plot.rates([res, mc])
    plot.density(res, "E", other=mc)
