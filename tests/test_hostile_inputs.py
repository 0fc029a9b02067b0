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
def test_api(files, label):
    start = time.perf_counter()
    with pytest.raises(ScenarioError) as info:
        load_scenario(files[label])
    assert time.perf_counter() - start < LIMIT_S
    assert str(files[label]) in str(info.value)


@pytest.mark.parametrize("command", ["check", "run"])
@pytest.mark.parametrize("label", [*HOSTILE, "folder"])
def test_cli(files, label, command, capsys, tmp_path):
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
