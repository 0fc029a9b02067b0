"""Ctrl-C on every backend: runs are driven in slices (popdens.progress.run_chunks), the
slicing changes no number, and a SIGINT stops a run with the steps done, marked
``info["interrupted"]``; ``popdens run`` then saves that partial result and exits 130."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import popdens as pd
from popdens import cli, progress

# --- networks of every backend and dimension ----------------------------------------------


def _lif_net(coupled=False):
    net = pd.Network()
    ext = net.add_poisson("ext", rate=pd.piecewise([0.0, 0.004], [6000.0, 9000.0]))
    lif = pd.LIF(tau_m=0.02, v_th=0.02, v_reset=0.01, t_ref=0.002)
    E = net.add_population("E", lif, grid=pd.Grid(v=(0.0, 0.02, 100)))
    net.connect(ext, E, weight=0.5e-3)
    if coupled:
        I = net.add_population("I", lif, grid=pd.Grid(v=(0.0, 0.02, 100)))
        net.connect(ext, I, weight=0.5e-3)
        net.connect(E, I, weight=0.2e-3, n_syn=20, delay=pd.delays.gamma(1e-3, 3.0))
        net.connect(I, E, weight=-0.4e-3, n_syn=10, delay=0.5e-3)
    return net


def _rhh_net(coupled=False):
    net = pd.Network()
    ext = net.add_poisson("ext", rate=3000.0)
    grid = pd.Grid(v=(-0.082, 0.057, 70), n=(0.0, 1.0, 25))
    H = net.add_population("H", pd.ReducedHH(), grid=grid)
    net.connect(ext, H, weight=2e-3)
    if coupled:
        K = net.add_population("K", pd.ReducedHH(), grid=grid)
        net.connect(ext, K, weight=2e-3)
        net.connect(H, K, weight=1e-3, n_syn=5, delay=1e-3)
    return net


T_END, DT = 0.01, 1e-4
RECORD = [0.0, 0.003, 0.0055, T_END]      # 0.003 s falls on a slice boundary of 1 step
CASES = {
    "density_1d": (_lif_net, {}),
    "density_1d_coupled": (lambda: _lif_net(True), {}),
    "density_nd": (_rhh_net, {}),
    "density_nd_coupled": (lambda: _rhh_net(True), {}),
    "mc_1d_exact_spikes": (_lif_net, dict(backend="montecarlo", n_neurons=400, seed=3,
                                          record_spikes=50)),
    "mc_1d_grid_timing": (lambda: _lif_net(True), dict(
        backend="montecarlo", n_neurons=300, seed=4, timing="grid", record_spikes=30)),
    "mc_1d_indegree": (lambda: _lif_net(True), dict(backend="montecarlo", n_neurons=300,
                                                    seed=5, record_spikes=300)),
    "mc_1d_poisson": (lambda: _lif_net(True), dict(backend="montecarlo", n_neurons=300,
                                                   seed=6, connectivity="poisson")),
    "mc_nd": (_rhh_net, dict(backend="montecarlo", n_neurons=60, seed=7)),
    "mc_nd_coupled": (lambda: _rhh_net(True), dict(backend="montecarlo", n_neurons=60,
                                                   seed=8)),
}


def _run(label):
    build, options = CASES[label]
    return build().run(T_END, DT, record_times=RECORD, **options)


def _assert_identical(a, b, upto=None):
    n = a.t.size if upto is None else upto
    for name in a.rates:
        np.testing.assert_array_equal(a.rates[name][:n], b.rates[name][:n], err_msg=name)
        np.testing.assert_array_equal(a.refractory[name][:n], b.refractory[name][:n])
    kept = a.record_times < n * a.dt - 1e-12 if upto is not None else slice(None)
    np.testing.assert_array_equal(a.record_times[kept], b.record_times)
    for name in a.densities:
        np.testing.assert_array_equal(a.densities[name][kept], b.densities[name])
    if "spikes" in a.info:
        for name, (times, ids) in a.info["spikes"].items():
            mine = times < n * a.dt
            np.testing.assert_array_equal(times[mine], b.info["spikes"][name][0])
            np.testing.assert_array_equal(ids[mine], b.info["spikes"][name][1])


@pytest.mark.parametrize("label", sorted(CASES))
def test_slicing_changes_no_number(label, monkeypatch):
    # one compiled call for the whole run against slices of a single step each
    monkeypatch.setattr(progress, "FIRST_CHUNK", 10**9)
    whole = _run(label)
    monkeypatch.setattr(progress, "FIRST_CHUNK", 1)
    monkeypatch.setattr(progress, "CHUNK_SECONDS", 0.0)   # every next slice: 1 step
    sliced = _run(label)
    assert whole.info["interrupted"] is False and sliced.info["interrupted"] is False
    assert max(float(np.mean(r)) for r in whole.rates.values()) > 1.0   # it fires
    _assert_identical(whole, sliced)
    if "spikes" in whole.info:
        assert sum(t.size for t, _ in whole.info["spikes"].values()) > 10


@pytest.mark.parametrize("label", sorted(CASES))
def test_sigint_in_process_keeps_the_steps_done(label, monkeypatch):
    """A real SIGINT after the second slice of 10 steps: the run ends there, and what it
    returns is the uninterrupted run's beginning, bit for bit."""
    whole = _run(label)
    monkeypatch.setattr(progress, "FIRST_CHUNK", 10)
    monkeypatch.setattr(progress, "_next_chunk", lambda chunk, spent, most: chunk)
    original = progress.Progress.update
    calls = {"n": 0}

    def update(self, done):
        calls["n"] += 1
        if calls["n"] == 3:      # once before the first slice, then after each
            os.kill(os.getpid(), signal.SIGINT)
        original(self, done)

    monkeypatch.setattr(progress.Progress, "update", update)
    with pytest.warns(RuntimeWarning, match=r"interrupted at t=0.002 s \(Ctrl-C, 20 of "):
        part = _run(label)
    assert part.info["interrupted"] is True
    assert part.t.size == 20 and part.info["steps_done"] == 20
    np.testing.assert_allclose(part.record_times, [0.0])   # 0.003 s: not yet taken
    _assert_identical(whole, part, upto=20)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# --- a real Ctrl-C to `popdens run` in a subprocess ----------------------------------------
# The child announces its first finished slice (a patched Progress.update), so that the
# signal lands in the time loop, not in start-up.
CHILD = textwrap.dedent("""\
    import sys
    from popdens import progress
    original = progress.Progress.update
    def update(self, done):
        if done > 0 and not getattr(update, "said", False):
            update.said = True
            print("STEPPING", flush=True)
        original(self, done)
    progress.Progress.update = update
    from popdens.cli import main
    sys.exit(main(sys.argv[1:]))
    """)
SCENARIOS = {
    "density_1d": """\
        [populations.E]
        model = "LIF"
        params = { tau_m = 0.05, v_th = 1.0, v_reset = 0.0 }
        grid = { v = [-0.5, 1.0, 30000] }""",
    "density_nd": """\
        [populations.E]
        model = "ReducedHH"
        grid = { v = [-0.082, 0.057, 278], n = [0.0, 1.0, 100] }""",
    "montecarlo_1d": """\
        [run.montecarlo]
        n_neurons = 200000
        [populations.E]
        model = "LIF"
        params = { tau_m = 0.05, v_th = 1.0, v_reset = 0.0 }""",
    "montecarlo_nd": """\
        [run.montecarlo]
        n_neurons = 20000
        [populations.E]
        model = "ReducedHH\"""",
}
# 5 s from the signal to the end of the process: a slice lasts about CHUNK_SECONDS = 0.5 s,
# then the partial result is written
GONE_WITHIN_S = 5.0


def _scenario_text(label: str) -> str:
    backend = label.split("_")[0]
    weight = "0.03" if "1d" in label else "2e-3"
    return textwrap.dedent(f"""\
        [run]
        t_end = 100.0
        dt = 1e-4
        backend = "{backend}"
        """) + textwrap.dedent(SCENARIOS[label]) + textwrap.dedent(f"""
        [sources.ext]
        rate = 3000.0
        [[connections]]
        pre = "ext"
        post = "E"
        weight = {weight}
        """)


@pytest.mark.parametrize("label", sorted(SCENARIOS))
def test_ctrl_c_to_popdens_run_saves_a_marked_partial_result_and_exits_130(label, tmp_path):
    scenario = tmp_path / f"{label}.toml"
    scenario.write_text(_scenario_text(label))
    # compile (or load numba's cache) in this process first: the child then starts fast
    assert cli.main(["run", scenario, "--t-end", "0.001", "--neurons", "10"]) == 0
    npz = tmp_path / "partial.npz"
    npz.write_bytes(b"an older file")      # replaced only by a complete new one
    child = subprocess.Popen([sys.executable, "-c", CHILD, "run", str(scenario),
                              "--save", str(npz)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        assert line.strip() == "STEPPING", (line, child.stderr.read())
        child.send_signal(signal.SIGINT)
        sent = time.perf_counter()
        out, err = child.communicate(timeout=60)
        elapsed = time.perf_counter() - sent
    finally:
        child.kill()
    assert child.returncode == 130, (out, err)
    assert elapsed < GONE_WITHIN_S
    assert "Traceback" not in err and "interrupted" in out
    result = pd.load(npz)
    assert result.info["interrupted"] is True
    assert 0 < result.t.size < 1_000_000           # stopped early, steps kept
    assert result.info["steps_done"] == result.t.size
    assert not list(tmp_path.glob(".partial.npz.*"))   # no temporary file left
