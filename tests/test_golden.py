"""The one-engine redesign changes no number: every golden scenario reproduces the outputs
recorded with the code before it (tests/golden/record.py), to 1e-12.

The recorded outputs are regression values (popdens' own numbers), not references; the
independent checks of the same engines are tests/accuracy (theory, Monte Carlo).

Where a later change alters the numerics on purpose, its commit re-records the file and
says which keys moved, by how much, and why."""

from __future__ import annotations

import numpy as np
import pytest

from .golden.record import GOLDEN_FILE
from .golden.scenarios import SCENARIOS, run_scenario

with np.load(GOLDEN_FILE) as _file:
    GOLDEN = {key: _file[key] for key in _file.files}

# Round-off only: the same operations in a different order may differ in the last bits.
RTOL = 1e-12


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_reproduces_golden_outputs(name):
    got = run_scenario(name)
    expected = {k: v for k, v in GOLDEN.items() if k.startswith(f"{name}/")}
    assert sorted(got) == sorted(expected)
    for key, want in expected.items():
        scale = max(float(np.max(np.abs(want))), 1e-300)
        # RTOL: round-off only (see its definition above)
        np.testing.assert_allclose(got[key], want, rtol=0, atol=RTOL * scale, err_msg=key)


def test_golden_outputs_are_not_trivial():
    # every scenario fires: identity of all-zero rates would prove nothing
    for name in SCENARIOS:
        rates = [v for k, v in GOLDEN.items() if k.startswith(f"{name}/") and "/rates/" in k]
        assert rates and all(r.size > 10 for r in rates)
        assert max(float(r.mean()) for r in rates) > 1.0, name
