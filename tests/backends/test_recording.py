"""Recording, progress and interruption of density runs."""

import io

import numpy as np
import pytest

import popdens as pd
from popdens.backends import density
from popdens.progress import Progress


def _net():
    net = pd.Network()
    ext = net.add_poisson("ext", rate=1500.0)
    pop = net.add_population("P", pd.LIF(tau_m=0.02, v_th=0.02, v_reset=0.01, t_ref=2e-3),
                             grid=pd.Grid(v=(0.0, 0.02, 200)))
    net.connect(ext, pop, weight=0.5e-3)
    return net


def test_record_every_k_steps():
    res = _net().run(0.05, 1e-4, record_every=100)
    # round-off of k * dt
    np.testing.assert_allclose(res.record_times, np.arange(0, 0.0501, 0.01), atol=1e-12)
    dx = res.grids["P"].axes[0].width
    # each snapshot integrates to the non-refractory fraction
    assert res.densities["P"].shape == (6, 200)
    assert res.densities["P"][0].sum() * dx == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="record_every must be a whole number of steps >= 1, "
                                         "got 0"):
        _net().run(0.01, 1e-4, record_every=0)


def test_ctrl_c_returns_what_was_done(monkeypatch):
    """A KeyboardInterrupt between compiled chunks ends the run cleanly: the result
    holds the finished steps, identical to an uninterrupted run's first steps."""
    full = _net().run(0.2, 1e-4, record_times=[0.0, 0.05, 0.15])
    original = density.DensitySimulation._advance
    calls = {"n": 0}

    def interrupting(self, stop, *args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        original(self, stop, *args)

    monkeypatch.setattr(density.DensitySimulation, "_advance", interrupting)
    monkeypatch.setattr(density, "CHUNK_STEPS", 100)   # chunks of 100 steps
    with pytest.warns(RuntimeWarning, match="interrupted at t=0.02 s"):
        part = _net().run(0.2, 1e-4, record_times=[0.0, 0.05, 0.15])
    assert part.info["interrupted"] is True
    assert part.t.size == 200
    np.testing.assert_array_equal(part.rates["P"], full.rates["P"][:200])
    # only the record at 0.0 was reached: equal (default rtol 1e-7, nothing to round)
    np.testing.assert_allclose(part.record_times, [0.0])
    np.testing.assert_array_equal(part.densities["P"], full.densities["P"][:1])


def test_progress_bar_text():
    stream = io.StringIO()
    with Progress(1000, description="density", force=True, stream=stream,
                  use_tqdm=False) as bar:
        bar.update(500)
        bar.update(1000)
    assert "100.0 %" in stream.getvalue() and "density" in stream.getvalue()
    with pytest.raises(TypeError, match="progress must be True or False, got 'yes'"):
        _net().run(0.01, 1e-4, progress="yes")
