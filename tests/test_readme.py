"""The README's Python examples run as written (in order, one namespace)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_readme_python_blocks_run(monkeypatch, tmp_path):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)   # noqa: S102
    import matplotlib.pyplot as plt
    plt.close("all")


def test_readme_scenario_snippets_are_valid(tmp_path):
    from popdens.scenario import load_scenario
    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks
    for k, block in enumerate(blocks):
        path = tmp_path / f"snippet{k}.toml"
        path.write_text(block)
        scenario = load_scenario(path)
        assert scenario.network.populations
