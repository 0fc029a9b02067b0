"""Hostile scenario inputs through the API, ``popdens check`` and ``popdens run``: each ends
in a clear message naming the file, exit status 2, no traceback, within 5 s."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from popdens import cli
from popdens.scenario import ScenarioError, load_scenario

from .test_scenario import GOOD

# 5 s: an error must come before anything is compiled or allocated, and compiling the
# density kernels alone takes longer than that on a cold cache
LIMIT_S = 5.0

HOSTILE = {
    "empty": b"",
    "binary": bytes(range(256)) * 4,
    "bom_then_garbage": b"\xef\xbb\xbf[run\n",
    "not_toml": b"t_end: 0.3\n",
    "deep_arrays": b"a = " + b"[" * 200_000 + b"]" * 200_000,
    "deep_tables": b"a = " + b"{b = " * 2000 + b"1" + b"}" * 2000,
    "long_dotted_key": b"[" + b".".join([b"a"] * 50_000) + b"]\nx = 1\n",
    "huge_int": GOOD.replace("t_end = 0.01", "t_end = " + "9" * 5000).encode(),
    "nan": GOOD.replace("weight = 0.5e-3", "weight = nan").encode(),
    "inf_rate": GOOD.replace("rate = 1500.0", "rate = inf").encode(),
    "wrong_types": b"run = 1\npopulations = [1, 2]\nconnections = 'x'\n",
    "post_is_source": GOOD.replace('post = "E"', 'post = "ext"').encode(),
    "lif_boundaries": GOOD.replace("grid = {", 'boundaries = { v = "absorb" }\ngrid = {')
    .encode(),
    "t_end_not_steps": GOOD.replace("t_end = 0.01", "t_end = 0.01005")
    .replace("record_times = [0.01]", "").encode(),
    "bad_backend_option": GOOD.replace("seed = 2", 'seed = 2\ntiming = "late"').encode(),
    "giant_grid": GOOD.replace("100] }", "10000000000000] }").encode(),
    "giant_population": GOOD.replace("n_neurons = 300", "n_neurons = 1e15").encode(),
    "code_strings": GOOD.replace("rate = 1500.0", "rate = \"__import__('os')\"").encode(),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    out = {}
    for label, data in HOSTILE.items():
        path = folder / f"{label}.toml"
        path.write_bytes(data)
        out[label] = path
    out["folder"] = folder / "a_folder.toml"
    out["folder"].mkdir()
    return out


@pytest.mark.parametrize("label", [*HOSTILE, "folder"])
def test_api_rejects_hostile_file_quickly_naming_it(files, label):
    start = time.perf_counter()
    with pytest.raises(ScenarioError) as info:
        load_scenario(files[label])
    assert time.perf_counter() - start < LIMIT_S
    assert str(files[label]) in str(info.value)


@pytest.mark.parametrize("command", ["check", "run"])
@pytest.mark.parametrize("label", [*HOSTILE, "folder"])
def test_cli_exits_2_naming_the_file_without_traceback(files, label, command, capsys, tmp_path):
    png = tmp_path / "never.png"
    argv = [command, files[label]] + (["--plot", png] if command == "run" else [])
    start = time.perf_counter()
    status = cli.main(argv)
    elapsed = time.perf_counter() - start
    captured = capsys.readouterr()
    assert status == 2, captured
    assert elapsed < LIMIT_S
    assert captured.err.startswith("popdens: error: invalid scenario "), captured.err
    assert f"{files[label]}:" in captured.err and "Traceback" not in captured.err
    assert not png.exists()


def test_subprocess_deep_nesting_has_no_traceback(files):
    done = subprocess.run([sys.executable, "-m", "popdens", "check",
                           str(files["deep_arrays"]), str(files["binary"])],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "nested deeper than 32" in done.stderr and "not UTF-8" in done.stderr


# --- resource limits: sized before anything is allocated or compiled --------------------
# Scenario files the schema accepts (within its hard bounds) but the default limits refuse.
OVERSIZED = {
    "grid_1e8_cells": (GOOD.replace("100] }", "100000000] }"), "grid of 'E'"),
    "steps_2e9": (GOOD.replace("t_end = 0.01", "t_end = 200000.0"), "t_end"),
    "neurons_1e9": (GOOD.replace("n_neurons = 300", "n_neurons = 1000000000")
                    .replace("[run.montecarlo]", 'backend = "montecarlo"\n\n[run.montecarlo]'),
                    "n_neurons"),
    "substep_1e-300": (GOOD.replace("[run.montecarlo]",
                                    "[run.density]\nmax_substep = 1e-300\n\n[run.montecarlo]"),
                       "max_substep"),
}
# 50 MB: the largest allocation allowed while refusing (the refused runs need 4 GB to 1e300
# steps); tracemalloc sees every numpy buffer
MAX_TRACED_BYTES = 50e6


@pytest.fixture(scope="module")
def oversized(tmp_path_factory):
    folder = tmp_path_factory.mktemp("oversized")
    out = {}
    for label, (text, _) in OVERSIZED.items():
        out[label] = folder / f"{label}.toml"
        out[label].write_text(text)
    return out


def _lif_network(model=None, grid=None):
    import popdens as pd

    net = pd.Network()
    ext = net.add_poisson("ext", rate=800.0)
    pop = net.add_population("E", model or pd.LIF(tau_m=0.05, v_th=1.0, v_reset=0.0),
                             grid=grid)
    net.connect(ext, pop, weight=0.03 if model is None else 2e-3)
    return net


def _api_cases():
    import popdens as pd

    rhh = pd.ReducedHH()
    return {
        "t_end_1e12_density": (lambda: _lif_network().run(1e12, 1e-4), "t_end"),
        "t_end_1e12_montecarlo": (lambda: _lif_network().run(1e12, 1e-4,
                                                               backend="montecarlo"), "t_end"),
        "n_neurons_1e12": (lambda: _lif_network().run(0.01, 1e-4, backend="montecarlo",
                                                       n_neurons=10**12), "n_neurons"),
        "grid_1e8_cells": (lambda: _lif_network(grid=pd.Grid(v=(-1.0, 1.0, 10**8)))
                           .run(0.01, 1e-4), "grid of 'E'"),
        "grid_nd_1e8_cells": (lambda: _lif_network(rhh, pd.Grid(v=(-0.082, 0.057, 10**4),
                                                                n=(0.0, 1.0, 10**4)))
                              .run(0.01, 1e-4), "grid of 'E'"),
        "max_substep_1e-300": (lambda: _lif_network().run(0.01, 1e-4, max_substep=1e-300),
                               "max_substep"),
        "tau_m_1e-300": (lambda: _lif_network(pd.LIF(tau_m=1e-300, v_th=1.0, v_reset=0.0))
                         .run(0.01, 1e-4), "tau_m"),
        "internal_dt_1e-300": (lambda: _lif_network(rhh).run(
            0.01, 1e-4, backend="montecarlo", internal_dt=1e-300), "internal_dt"),
        "records_1e5_frames": (lambda: _lif_network(grid=pd.Grid(v=(-1.0, 1.0, 10**4)))
                               .run(10.0, 1e-4, record_every=1), "record_times"),
        "delay_1e6_s_indegree": (lambda: _coupled(1e6).run(
            0.01, 1e-4, backend="montecarlo", n_neurons=1000, seed=1), "delay"),
    }


def _coupled(delay):
    import popdens as pd

    net = _lif_network()
    net.connect("E", "E", weight=1e-3, n_syn=10, delay=delay)
    assert isinstance(net.populations["E"].model, pd.LIF)
    return net


@pytest.mark.parametrize("label", sorted(_api_cases()))
def test_api_resource_limit_refuses_before_allocating(label):
    import tracemalloc

    from popdens import ResourceLimitError

    call, parameter = _api_cases()[label]
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ResourceLimitError) as info:
            call()
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert parameter in message, message
    assert ("max_memory" in message) != ("max_steps" in message), message
    assert "raise the limit" in message
    assert elapsed < LIMIT_S
    assert peak < MAX_TRACED_BYTES, peak


def test_api_limits_can_be_raised_and_lowered():
    from popdens import ResourceLimitError

    net = _lif_network()
    with pytest.raises(ResourceLimitError, match="max_memory = 1 kB"):
        net.run(0.001, 1e-4, max_memory="1kB")
    with pytest.raises(ResourceLimitError, match="t_end: the run would take 10 steps"):
        net.run(0.001, 1e-4, max_steps=9)
    res = net.run(0.001, 1e-4, max_steps=10, max_memory=10**7)
    assert res.rates["E"].size == 10
    for bad in ("lots", "-1GB", 0, float("nan"), "1 parsec"):
        with pytest.raises(ValueError, match="max_memory"):
            net.run(0.001, 1e-4, max_memory=bad)
    with pytest.raises(TypeError, match="max_memory"):
        net.run(0.001, 1e-4, max_memory=[1])


def test_parse_memory_units():
    from popdens._limits import parse_memory

    assert parse_memory("8GB") == 8 * 10**9
    assert parse_memory("512 MiB") == 512 * 2**20
    assert parse_memory("1.5G") == int(1.5 * 2**30)
    assert parse_memory(2e9) == 2 * 10**9
    assert parse_memory("1e3") == 1000


@pytest.mark.parametrize("label", sorted(OVERSIZED))
@pytest.mark.parametrize("command", ["check", "run"])
def test_cli_refuses_an_oversized_scenario_quickly_with_exit_2(oversized, label, command, capsys):
    start = time.perf_counter()
    status = cli.main([command, oversized[label]])
    elapsed = time.perf_counter() - start
    captured = capsys.readouterr()
    assert status == 2, captured
    assert elapsed < LIMIT_S
    err = captured.err
    assert err.startswith("popdens: error: invalid scenario "), err
    assert f"{oversized[label]}:" in err and "Traceback" not in err
    assert OVERSIZED[label][1] in err and "--max-" in err, err


def test_cli_max_memory_option(tmp_path, capsys):
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    assert cli.main(["check", path, "--max-memory", "1kB"]) == 2
    assert "more than max_memory = 1 kB" in capsys.readouterr().err
    assert cli.main(["run", path, "--max-steps", "5"]) == 2
    assert "more than max_steps = 5" in capsys.readouterr().err
    assert cli.main(["check", path, "--max-memory", "1GB", "--max-steps", "1000"]) == 0
    with pytest.raises(SystemExit) as info:
        cli.main(["check", path, "--max-memory", "lots"])
    assert info.value.code == 2
    assert "--max-memory must be a number of bytes" in capsys.readouterr().err
