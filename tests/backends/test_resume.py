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
    np.testing.assert_allclose(second.t, whole.t[400:], rtol=1e-15)
    for name in ("E", "I"):
        assert np.max(whole.rates[name]) > 1.0        # the network fires
        np.testing.assert_array_equal(np.concatenate([first.rates[name], second.rates[name]]),
                                      whole.rates[name])
        np.testing.assert_array_equal(second.densities[name], whole.densities[name])
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
