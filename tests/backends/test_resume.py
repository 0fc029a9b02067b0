"""Continuing a run (``init=previous_result``): two parts equal one run bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

import popdens as pd


def _network():
    net = pd.Network()
    e = net.add_population("E", pd.LIF(tau_m=0.02, v_th=0.02, v_reset=0.01, t_ref=0.002))
    i = net.add_population("I", pd.LIF(tau_m=0.01, v_th=0.02, v_reset=0.01, t_ref=0.001))
    drive = net.add_poisson("drive", pd.piecewise([0.0, 0.03, 0.07], [2500.0, 3500.0, 2800.0]))
    noise = net.add_poisson("noise", pd.sinusoid(4000.0, 1000.0, 40.0))
    net.connect(drive, e, weight=0.5e-3)
    net.connect(noise, i, weight=0.4e-3, input="diffusion")
    net.connect(e, i, weight=0.3e-3, n_syn=20, delay=pd.delays.exponential(2e-3, 1e-3))
    net.connect(i, e, weight=-0.4e-3, n_syn=10, delay=1.5e-3)
    return net


@pytest.fixture(scope="module")
def whole():
    return _network().run(0.1, 1e-4, record_times=[0.05, 0.1])


def test_split_run_equals_the_whole_run_bit_for_bit(whole):
    net = _network()
    first = net.run(0.04, 1e-4)
    second = net.run(0.06, 1e-4, init=first, record_times=[0.05, 0.1])
    # the continued time axis: round-off of k * dt
    np.testing.assert_allclose(second.t, whole.t[400:], rtol=1e-15)
    for name in ("E", "I"):
        assert np.max(whole.rates[name]) > 1.0        # the network fires
        np.testing.assert_array_equal(np.concatenate([first.rates[name], second.rates[name]]),
                                      whole.rates[name])
        np.testing.assert_array_equal(second.densities[name], whole.densities[name])
    # round-off of k * dt
    np.testing.assert_allclose(second.record_times, [0.05, 0.1], rtol=1e-12)
    np.testing.assert_array_equal(second.info["state"]["mass"], whole.info["state"]["mass"])


def test_a_saved_result_continues_after_loading(whole, tmp_path):
    net = _network()
    first = net.run(0.04, 1e-4)
    path = tmp_path / "first.npz"
    pd.io.save(first, path)
    second = net.run(0.06, 1e-4, init=pd.load(path))
    np.testing.assert_array_equal(second.rates["E"], whole.rates["E"][400:])


def test_continuing_checks_what_it_continues():
    net = _network()
    first = net.run(0.01, 1e-4)
    with pytest.raises(ValueError, match="dt"):
        net.run(0.01, 2e-4, init=first)
    with pytest.raises(ValueError, match="scheme"):
        net.run(0.01, 1e-4, init=first, scheme="upwind")
    other = pd.Network()
    other.add_population("X", pd.LIF(tau_m=0.02, v_th=0.02, v_reset=0.01))
    with pytest.raises(ValueError, match="populations"):
        other.run(0.01, 1e-4, init=first)
    with pytest.raises(ValueError, match="density"):
        net.run(0.01, 1e-4, init=object())


def test_checkpoints_resume_a_crashed_run(whole, tmp_path, monkeypatch):
    import popdens.backends.density as density
    written = []
    real_write = density.write_atomically

    def keep_copy(path, result):
        real_write(path, result)
        written.append(pd.load(path))
    monkeypatch.setattr(density, "write_atomically", keep_copy)
    monkeypatch.setattr(density, "CHUNK_STEPS", 150)      # several chunks in 0.1 s
    path = tmp_path / "run.npz"
    final = _network().run(0.1, 1e-4, checkpoint=path, checkpoint_every=1e-9)
    partial = [r for r in written if r.info["interrupted"]]
    assert len(partial) >= 2 and all(r.info["checkpoint"] for r in partial)
    assert not pd.load(path).info["interrupted"]           # the finished run at the end
    np.testing.assert_array_equal(final.rates["E"], whole.rates["E"])
    crash = partial[1]                                     # as if the process died there
    done = crash.t.size
    rest = _network().run(0.1 - done * 1e-4, 1e-4, init=crash)
    np.testing.assert_array_equal(np.concatenate([crash.rates["E"], rest.rates["E"]]),
                                  whole.rates["E"])


def test_checkpoint_options_are_checked(tmp_path):
    with pytest.raises(ValueError, match="checkpoint_every"):
        _network().run(0.01, 1e-4, checkpoint=tmp_path / "a.npz", checkpoint_every=0)
    with pytest.raises(ValueError, match=r"\.npz"):
        _network().run(0.01, 1e-4, checkpoint=tmp_path / "a.txt")


# --- every backend and dimension ----------------------------------------------------------
class _Exponential(pd.Model):
    """Exponential integrate-and-fire neuron written as a user model (no compiled Monte
    Carlo kernel: the model-interface engine runs it)."""

    state_vars = ("v",)
    state_units = {"v": "V"}

    def __init__(self, tau_m=0.02):
        self.tau_m = tau_m

    def drift(self, v):
        v = np.asarray(v, dtype=float)
        return (-0.065 - v + 3.5e-3 * np.exp((v + 0.06) / 3.5e-3)) / self.tau_m

    @property
    def spike_rule(self):
        return pd.ThresholdReset("v", -0.03, -0.068, 0.0017)

    @property
    def resting_state(self):
        return -0.065

    def default_grid(self, inputs=()):
        return pd.Grid(v=(-0.09, -0.03, 200))

    def params(self):
        return {"tau_m": self.tau_m}


def _pair(model_e, model_i, grid=None, drive=(4000.0, 6000.0), weight=0.5e-3):
    """Two populations coupled both ways with a fixed and a distributed delay, driven by a
    source whose rate steps inside the first part of every split below."""
    net = pd.Network()
    src = net.add_poisson("ext", pd.piecewise([0.0, 0.013], list(drive)))
    e = net.add_population("E", model_e, grid=grid)
    i = net.add_population("I", model_i, grid=grid)
    net.connect(src, e, weight=weight)
    net.connect(src, i, weight=weight)
    net.connect(e, i, weight=weight, n_syn=20, delay=pd.delays.exponential(2e-3))
    net.connect(i, e, weight=-2 * weight, n_syn=10, delay=1.5e-3)
    return net


def _lif_synaptic():
    model = pd.models.LIFSynaptic(tau_m=0.02, tau_syn=0.005, v_th=0.02, v_reset=0.01,
                                  t_ref=0.002)
    return _pair(model, model, pd.Grid(v=(-0.02, 0.02, 60), i_syn=(-2.0, 5.0, 35)))


def _eif():
    net = _pair(_Exponential(), _Exponential(0.01), drive=(3000.0, 5000.0), weight=2e-3)
    net.connect(net.add_poisson("noise", 4000.0), net.populations["E"], weight=1e-3,
                input="diffusion")
    return net


# name: (network, t_end, dt, split time, run options). The N-D density splits inside an
# internal step (dt = 2.5 h), the hardest case for its report interpolation.
CASES = {
    "density N-D": (_lif_synaptic, 0.03, 2.5e-4, 0.01175, {}),
    "montecarlo 1D fixed in-degree": (
        _network, 0.06, 1e-4, 0.023, {"backend": "montecarlo", "n_neurons": 2000,
                                      "seed": 7, "record_spikes": 20}),
    "montecarlo 1D grid timing": (
        _network, 0.06, 1e-4, 0.023, {"backend": "montecarlo", "n_neurons": 2000,
                                      "seed": 7, "timing": "grid",
                                      "connectivity": "poisson"}),
    "montecarlo N-D fixed in-degree": (
        _lif_synaptic, 0.03, 1e-4, 0.012, {"backend": "montecarlo", "n_neurons": 2000,
                                           "seed": 3, "connectivity": "fixed_indegree"}),
    "montecarlo N-D poisson": (
        _lif_synaptic, 0.03, 1e-4, 0.012, {"backend": "montecarlo", "n_neurons": 2000,
                                           "seed": 3}),
    "montecarlo model interface": (
        _eif, 0.04, 5e-4, 0.0155, {"backend": "montecarlo", "n_neurons": 400, "seed": 3}),
}
_WHOLE = {}


def _whole(case):
    if case not in _WHOLE:
        make, t_end, dt, _, options = CASES[case]
        _WHOLE[case] = make().run(t_end, dt, record_times=[t_end / 2, t_end], **options)
    return _WHOLE[case]


def _assert_continues(case, parts):
    """The parts together equal the whole run bit for bit: times, rates, refractory
    fractions, and the densities recorded in the last part."""
    whole = _whole(case)
    np.testing.assert_array_equal(np.concatenate([p.t for p in parts]), whole.t)
    for name in whole.rates:
        assert np.mean(whole.rates[name]) > 1.0, name          # the network fires
        for key in ("rates", "refractory"):
            np.testing.assert_array_equal(
                np.concatenate([getattr(p, key)[name] for p in parts]),
                getattr(whole, key)[name], err_msg=f"{case}: {key} of {name}")
        later = whole.record_times >= parts[-1].t[0] - 1e-12
        np.testing.assert_array_equal(parts[-1].densities[name],
                                      whole.densities[name][later])
    # exact equality; 1e-12 s only absorbs the k * dt round-off in choosing the records on
    # or after the part's first step
    np.testing.assert_array_equal(parts[-1].record_times,
                                  whole.record_times[whole.record_times
                                                     >= parts[-1].t[0] - 1e-12])


def _records_after(t_end, start):
    """The record times of the whole run that lie in a part starting at ``start``."""
    return [t for t in (t_end / 2, t_end) if t >= start - 1e-12]


@pytest.mark.parametrize("case", CASES)
def test_split_run_equals_whole_run_on_every_backend(case, tmp_path):
    make, t_end, dt, split, options = CASES[case]
    first = make().run(split, dt, **options)
    assert first.info["state"]["step"] == first.t.size
    second = make().run(t_end - split, dt, init=first,
                        record_times=[t_end / 2, t_end], **options)
    _assert_continues(case, [first, second])
    path = tmp_path / "first.npz"
    pd.io.save(first, path)
    again = make().run(t_end - split, dt, init=pd.load(path),
                       record_times=[t_end / 2, t_end], **options)
    _assert_continues(case, [first, again])


@pytest.fixture
def fixed_slices(monkeypatch):
    """Runs go in slices of ``slices[0]`` steps, and after ``slices[1]`` slices (if set)
    a Ctrl-C arrives (the KeyboardInterrupt ``run_chunks`` honours)."""
    import popdens.progress as progress
    slices = [10, None]
    calls = []

    def next_chunk(chunk, spent, max_chunk):
        # count the slices of runs that are to be interrupted only (not of a whole
        # reference run computed first)
        if slices[1] is not None:
            calls.append(chunk)
            if len(calls) >= slices[1]:
                raise KeyboardInterrupt
        return slices[0] if max_chunk is None else min(slices[0], max_chunk)
    monkeypatch.setattr(progress, "FIRST_CHUNK", 10)
    monkeypatch.setattr(progress, "_next_chunk", next_chunk)
    return slices


@pytest.mark.parametrize("case", CASES)
def test_interrupted_run_continued_equals_whole_run(case, fixed_slices):
    make, t_end, dt, _, options = CASES[case]
    _whole(case)
    fixed_slices[1] = 3
    with pytest.warns(RuntimeWarning, match="interrupted"):
        part = make().run(t_end, dt, **options)
    assert part.info["interrupted"] and 0 < part.t.size < round(t_end / dt)
    fixed_slices[1] = None
    rest = make().run(t_end - part.t.size * dt, dt, init=part,
                      record_times=_records_after(t_end, part.t.size * dt), **options)
    assert not rest.info["interrupted"]
    _assert_continues(case, [part, rest])


@pytest.mark.parametrize("case", CASES)
def test_checkpoint_resumes_a_crashed_run_on_every_backend(case, fixed_slices, tmp_path,
                                                           monkeypatch):
    import popdens.backends.continuation as continuation
    import popdens.backends.density_nd as density_nd
    make, t_end, dt, _, options = CASES[case]
    _whole(case)
    written = []
    real_write = continuation.write_atomically

    def keep_copy(path, result):
        real_write(path, result)
        # the first files are read back (reading all would dominate the test's time)
        written.append(pd.load(path) if len(written) < 3 else result)
    monkeypatch.setattr(continuation, "write_atomically", keep_copy)
    monkeypatch.setattr(density_nd, "write_atomically", keep_copy)
    fixed_slices[0] = 50
    path = tmp_path / "run.npz"
    final = make().run(t_end, dt, checkpoint=path, checkpoint_every=1e-9,
                       record_times=[t_end / 2, t_end], **options)
    partial = [r for r in written if r.info["interrupted"]]
    # marked so that nobody takes a checkpoint for a finished run
    assert len(partial) >= 2 and all(r.info["checkpoint"] for r in partial)
    assert not pd.load(path).info["interrupted"]       # the finished run at the end
    assert not list(tmp_path.glob("*.partial.npz"))    # no temporary file left
    _assert_continues(case, [final])
    crash = partial[1]                                 # as if the process died there
    rest = make().run(t_end - crash.t.size * dt, dt, init=crash,
                      record_times=_records_after(t_end, crash.t.size * dt), **options)
    _assert_continues(case, [crash, rest])


def test_continuing_refuses_another_backend_model_grid_or_seed():
    mc = {"backend": "montecarlo", "n_neurons": 200, "seed": 7}
    density = _network().run(0.005, 1e-4)
    with pytest.raises(ValueError, match="backend='density', this run is "
                                         "backend='montecarlo'"):
        _network().run(0.005, 1e-4, init=density, **mc)
    first = _network().run(0.005, 1e-4, **mc)
    with pytest.raises(ValueError, match="backend='montecarlo', this run is "
                                         "backend='density'"):
        _network().run(0.005, 1e-4, init=first)
    with pytest.raises(ValueError, match="seed=7, this run seed=8"):
        _network().run(0.005, 1e-4, init=first, **{**mc, "seed": 8})
    with pytest.raises(ValueError, match="n_neurons"):
        _network().run(0.005, 1e-4, init=first, **{**mc, "n_neurons": 300})
    other = _network()
    other.populations["E"].model = pd.LIF(tau_m=0.03, v_th=0.02, v_reset=0.01, t_ref=0.002)
    with pytest.raises(ValueError, match=r"population 'E': params .*tau_m"):
        other.run(0.005, 1e-4, init=first, **mc)
    nd_first = _lif_synaptic().run(0.002, 2.5e-4)
    with pytest.raises(ValueError, match=r"population 'E': model 'LIFSynaptic'"):
        _network().run(0.005, 1e-4, init=nd_first)
    regridded = _lif_synaptic()
    regridded.populations["E"].grid = pd.Grid(v=(-0.02, 0.02, 50), i_syn=(-2.0, 5.0, 35))
    with pytest.raises(ValueError, match=r"population 'E': grid"):
        regridded.run(0.002, 2.5e-4, init=nd_first)
    with pytest.raises(ValueError, match="scheme='mc', this run scheme='upwind'"):
        _lif_synaptic().run(0.002, 2.5e-4, init=nd_first, scheme="upwind")
    with pytest.raises(ValueError, match=r"absolute and must lie in \[0.002, 0.004"):
        _lif_synaptic().run(0.002, 2.5e-4, init=nd_first, record_times=[0.001])


def _mixed():
    """The 1D network beside an unconnected N-D population: two density engines."""
    net = _network()
    model = pd.models.LIFSynaptic(tau_m=0.02, tau_syn=0.005, v_th=0.02, v_reset=0.01,
                                  t_ref=0.002)
    x = net.add_population("X", model, grid=pd.Grid(v=(-0.02, 0.02, 40),
                                                    i_syn=(-2.0, 5.0, 20)))
    net.connect(net.add_poisson("drive X", 5000.0), x, weight=0.5e-3)
    return net


def test_a_network_of_both_density_engines_continues_bit_for_bit(tmp_path):
    whole = _mixed().run(0.03, 2.5e-4, record_times=[0.03])
    first = _mixed().run(0.01175, 2.5e-4)
    path = tmp_path / "first.npz"
    pd.io.save(first, path)
    second = _mixed().run(0.03 - 0.01175, 2.5e-4, init=pd.load(path), record_times=[0.03])
    for name in ("E", "I", "X"):
        assert np.mean(whole.rates[name]) > 1.0, name       # it fires: content to compare
        np.testing.assert_array_equal(np.concatenate([first.rates[name], second.rates[name]]),
                                      whole.rates[name])
        np.testing.assert_array_equal(second.densities[name], whole.densities[name])
    with pytest.raises(ValueError, match="each part"):
        _mixed().run(0.01, 2.5e-4, init=_network().run(0.01, 2.5e-4))
