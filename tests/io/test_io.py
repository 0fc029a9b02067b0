"""Saving and loading results (.npz, .nc), xarray export, the network description."""

from __future__ import annotations

import json

import numpy as np
import pytest

import popdens as pd
from popdens.scenario import network_from_dict, ramp


def _network(rate=None):
    net = pd.Network()
    ext = net.add_poisson("ext", rate=pd.piecewise([0.0, 0.01], [800.0, 1200.0])
                          if rate is None else rate)
    wave = net.add_poisson("wave", rate=pd.sinusoid(mean=200.0, amplitude=100.0,
                                                    frequency=20.0))
    pop = net.add_population("E", pd.LIF(tau_m=0.05, v_th=1.0, v_reset=0.0, t_ref=1e-3),
                             grid=pd.Grid(v=(-0.2, 1.0, 120)))
    net.connect(ext, pop, weight=0.03)
    net.connect(wave, pop, weight=-0.02, delay=pd.delays.gamma(mean=1e-3, shape=3.0))
    return net


@pytest.fixture(scope="module")
def results():
    net = _network()
    res = net.run(t_end=0.02, dt=1e-4, record_times=[0.01, 0.02])
    mc = net.run(t_end=0.02, dt=1e-4, backend="montecarlo", n_neurons=500, seed=3,
                 record_times=[0.02])
    # the Monte Carlo backend's spike subset, as it will report it
    mc.info["spikes"] = {"E": (np.array([1e-3, 2.5e-3, 7e-3]),
                               np.array([4, 0, 4], dtype=np.int64))}
    return res, mc


def _assert_same(a, b):
    np.testing.assert_array_equal(a.t, b.t)
    assert a.dt == b.dt and a.backend == b.backend and a.n_neurons == b.n_neurons
    assert a.wall_time == b.wall_time
    np.testing.assert_array_equal(a.record_times, b.record_times)
    assert list(a.rates) == list(b.rates)
    for name in a.rates:
        np.testing.assert_array_equal(a.rates[name], b.rates[name])
        np.testing.assert_array_equal(a.refractory[name], b.refractory[name])
        assert a.densities[name].shape == b.densities[name].shape
        np.testing.assert_array_equal(a.densities[name], b.densities[name])
        assert a.grids[name] == b.grids[name]
    assert a.description == b.description
    assert set(a.info) == set(b.info)
    for key, value in a.info.items():
        if key == "spikes":
            for name, (t, i) in value.items():
                t2, i2 = b.info["spikes"][name]
                np.testing.assert_array_equal(t, t2)
                np.testing.assert_array_equal(i, i2)
                assert i2.dtype == i.dtype
        elif isinstance(value, dict):
            assert set(value) == set(b.info[key])
            for k, v in value.items():
                np.testing.assert_array_equal(v, b.info[key][k])
        else:
            assert b.info[key] == value


def test_run_attaches_the_description(results):
    res, mc = results
    d = res.description
    assert d == mc.description
    assert d["popdens_version"] == pd.__version__
    assert d["populations"]["E"] == {
        "model": "LIF", "params": {"tau_m": 0.05, "v_th": 1.0, "v_reset": 0.0, "e_l": 0.0,
                                   "t_ref": 1e-3},
        "grid": {"v": [-0.2, 1.0, 120]}, "init": None}
    assert d["sources"]["ext"]["rate"] == {"shape": "piecewise", "times": [0.0, 0.01],
                                           "rates": [800.0, 1200.0]}
    assert d["sources"]["wave"]["rate"]["shape"] == "sinusoid"
    assert d["connections"][1]["delay"] == {"distribution": "gamma", "mean": 1e-3,
                                            "shape": 3.0, "offset": 0.0}
    assert d["connections"][0]["delay"] == 0.0 and d["connections"][0]["reversal"] is None
    json.dumps(d)   # JSON-able


@pytest.mark.parametrize("suffix", [".npz", ".nc"])
def test_save_load_round_trip(results, tmp_path, suffix):
    if suffix == ".nc":
        pytest.importorskip("xarray")
    for result in results:
        path = tmp_path / f"{result.backend}{suffix}"
        assert result.save(path) == path
        back = pd.load(path)
        _assert_same(result, back)
        assert back.saved_version == pd.__version__
        assert result.saved_version is None


def test_loaded_description_rebuilds_the_network(results, tmp_path):
    res, _ = results
    res.save(tmp_path / "r.npz")
    back = pd.load(tmp_path / "r.npz")
    net = network_from_dict(back.description)
    again = net.run(t_end=0.02, dt=1e-4, record_times=[0.01, 0.02])
    # the rebuilt network repeats the same arithmetic
    np.testing.assert_allclose(again.rates["E"], res.rates["E"], rtol=1e-12, atol=1e-12)


def test_describe_marks_callables_and_knows_ramps_and_delays():
    net = pd.Network()
    f = net.add_poisson("f", rate=lambda t: 100.0 + 0.0 * t)
    r = net.add_poisson("r", rate=ramp(start=0.0, stop=0.1, final=500.0))
    pop = net.add_population("E", pd.LIF(tau_m=0.02, v_th=0.02, v_reset=0.01),
                             init=lambda v: np.ones_like(v))
    net.connect(f, pop, weight=1e-3, delay=pd.delays.exponential(2e-3, offset=1e-3))
    net.connect(r, pop, weight=0.1, reversal=0.05, delay=pd.delays.uniform(1e-3, 2e-3))
    net.connect(r, pop, weight=1e-3, delay=pd.delays.kernel([0.25, 0.75], 1e-3))
    d = pd.describe(net)
    assert d["sources"]["f"]["rate"]["note"] == "callable, not serialisable"
    assert d["populations"]["E"]["init"]["note"] == "callable, not serialisable"
    assert d["sources"]["r"]["rate"] == {"shape": "ramp", "start": 0.0, "stop": 0.1,
                                         "initial": 0.0, "final": 500.0}
    delays = [c["delay"] for c in d["connections"]]
    assert delays[0] == {"distribution": "exponential", "mean": 2e-3, "offset": 1e-3}
    assert delays[1]["distribution"] == "uniform"
    # the saved delay bounds (default approx)
    assert delays[1]["low"] == pytest.approx(1e-3) and delays[1]["high"] == pytest.approx(2e-3)
    assert delays[2] == {"distribution": "kernel", "weights": [0.25, 0.75],
                         "bin_width": 1e-3, "offset": 0.0}
    assert d["connections"][1]["reversal"] == 0.05
    json.dumps(d)
    with pytest.raises(ValueError, match="callable"):
        network_from_dict(d)


def test_to_xarray_layout(results):
    xr = pytest.importorskip("xarray")
    res, mc = results
    ds = res.to_xarray()
    assert isinstance(ds, xr.Dataset)
    np.testing.assert_array_equal(ds["time"].values, res.t)
    np.testing.assert_array_equal(ds["rate"].sel(population="E").values, res.rates["E"])
    assert ds["rate"].attrs["units"] == "Hz"
    assert ds["density__E"].dims == ("record_time", "E__v")
    np.testing.assert_array_equal(ds["E__v"].values, res.grids["E"].axes[0].centers)
    assert ds.attrs["popdens_version"] == pd.__version__
    assert json.loads(ds.attrs["description"]) == res.description
    assert json.loads(mc.to_xarray().attrs["n_neurons"]) == 500     # JSON: int or per population


def test_bad_paths_and_files(results, tmp_path):
    res, _ = results
    with pytest.raises(ValueError, match=r"\.npz"):
        res.save(tmp_path / "r.csv")
    with pytest.raises(FileNotFoundError):
        res.save(tmp_path / "no" / "such" / "r.npz")
    with pytest.raises(FileNotFoundError):
        pd.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", a=np.arange(3))
    with pytest.raises(ValueError, match="not a popdens result"):
        pd.load(tmp_path / "other.npz")


def test_netcdf_without_xarray_is_a_clear_error(results, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_xarray(name, *args, **kwargs):
        if name == "xarray" or name.startswith("xarray."):
            raise ImportError("no xarray here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_xarray)
    res, _ = results
    with pytest.raises(ImportError, match=r"popdens\[xarray\]"):
        res.save(tmp_path / "r.nc")
    with pytest.raises(ImportError, match="xarray"):
        res.to_xarray()
    assert not (tmp_path / "r.nc").exists()


class _Touch:
    """Unpickling this creates a file: the marker that a loader unpickled something."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _hostile_result_files(good, folder):
    """``{label: path}``: files that are not valid popdens results."""
    import zipfile

    raw = good.read_bytes()
    meta = json.loads(str(np.load(good, allow_pickle=False)["__meta__"][()]))
    with np.load(good, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    files = {}

    def write(label, payload, suffix=".npz"):
        path = folder / f"{label}{suffix}"
        path.write_bytes(payload) if isinstance(payload, bytes) else \
            np.savez(path, **payload)
        files[label] = path

    write("empty", b"")
    write("truncated", raw[: len(raw) // 2])
    write("text", b"t,rate\n0.0,1.0\n")
    write("random", np.random.default_rng(0).bytes(4096))
    write("random_nc", np.random.default_rng(1).bytes(512), ".nc")
    write("meta_not_json", {**arrays, "__meta__": np.array("{not json")})
    write("meta_number", {**arrays, "__meta__": np.array(3.0)})
    write("meta_list", {**arrays, "__meta__": np.array(json.dumps([1, 2]))})
    write("no_rates", {k: v for k, v in arrays.items() if not k.startswith("rates/")})
    write("short_rates", {**arrays, "rates/E": arrays["rates/E"][:5]})
    write("wrong_density_size", {**arrays, "densities/E": arrays["densities/E"][:, :7]})
    write("text_array", {**arrays, "t": np.array(["a", "b"])})
    write("bad_dt", {**arrays, "__meta__": np.array(json.dumps({**meta, "dt": -1.0}))})
    write("bad_grid", {**arrays, "__meta__": np.array(json.dumps(
        {**meta, "grids": {"E": [["v", 0.0, 1.0, 1e400]]}}).replace("Infinity", "1e999"))})
    write("deep_meta", {**arrays, "__meta__": np.array("[" * 100_000 + "]" * 100_000)})
    pickled = folder / "pickled.npz"
    marker = folder / "UNPICKLED"
    with zipfile.ZipFile(pickled, "w") as z:
        for key, value in arrays.items():
            if key == "rates/E":
                continue
            with z.open(f"{key}.npy", "w") as f:
                np.lib.format.write_array(f, value)
        with z.open("rates/E.npy", "w") as f:
            np.lib.format.write_array(f, np.array([_Touch(marker)], dtype=object),
                                      allow_pickle=True)
    files["pickled"] = pickled
    return files, marker


@pytest.fixture(scope="module")
def hostile_files(results, tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    good = results[0].save(folder / "good.npz")
    return _hostile_result_files(good, folder)


def test_load_rejects_hostile_files_naming_them(hostile_files):
    files, marker = hostile_files
    for label, path in files.items():
        with pytest.raises(pd.io.ResultFileError) as info:
            pd.load(path)
        assert str(path) in str(info.value), label
    assert not marker.exists()   # nothing was unpickled
    assert "empty" in str(pytest.raises(ValueError, pd.load, files["empty"]).value)
    assert "truncated" in str(pytest.raises(ValueError, pd.load, files["truncated"]).value)
    assert "allow_pickle" not in str(pytest.raises(ValueError, pd.load, files["text"]).value)


def test_plot_command_rejects_hostile_files(hostile_files, tmp_path, capsys):
    from popdens import cli

    files, marker = hostile_files
    for label, path in files.items():
        status = cli.main(["plot", path, "--output", tmp_path / "p.png"])
        err = capsys.readouterr().err
        assert status == 2, label
        assert str(path) in err and "Traceback" not in err, (label, err)
    assert not (tmp_path / "p.png").exists() and not marker.exists()
