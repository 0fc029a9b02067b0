"""Order in time of the N-D density's firing rate (issue 15: second order across all
axes), measured at a fixed grid with the internal step halved twice, against the Monte
Carlo reference of ``tests/data/errest_references.json``.

Diagnosis (``benchmarks/diag_split_order_nd.py``, the split time stepping applied to
neurons, so without any grid): the splitting of the ReducedHH step alone converges
(rate error +0.21, +0.06, +0.00 Hz at 100, 50, 25 us, 4000 neurons against their exact
trajectories), while at a fixed grid the density's rate moves 2-7x more per halving: the
step dependence at a fixed grid is mostly a grid error that grows as the step shrinks,
and it is the ``n`` axis's (``benchmarks/diag_space_time_nd.py``)."""

import json
import math
import sys
from pathlib import Path

import pytest

import popdens as pd

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))
from errest_references import T_END, WINDOW, reduced_hh  # noqa: E402

REFS = json.loads((Path(__file__).resolve().parents[1] / "data" /
                   "errest_references.json").read_text())
STEPS = (1e-4, 5e-5, 2.5e-5)


# half the pre-rebalance default grid (4 v cells per mV, 200 n cells), the grid of the
# measurements quoted below; written out so that the default's proportions do not move it
HALF_OLD_DEFAULT = pd.Grid(v=(-0.082, 0.057, 278), n=(0.0, 1.0, 100))


@pytest.mark.xfail(strict=True, reason=(
    "issue 15: ReducedHH rate not second order in the internal step at a fixed grid. "
    "Measured on (278, 100): 86.067, 85.637, 85.331 Hz at 100, 50, 25 us (order 0.49); "
    "on (556, 200): 86.211, 85.915, 85.750, 85.611 Hz at 100 .. 12.5 us (orders 0.84, "
    "0.25; reference 85.771 +- 0.021 Hz). The v/n splitting alone converges (+0.21, "
    "+0.06, +0.00 Hz at 100, 50, 25 us without grid, benchmarks/diag_split_order_nd.py); "
    "the rest is a grid error of the n axis that grows as the step shrinks: at 12.5 us "
    "refining v (278, 556, 1112 cells at 100 n cells) gives -0.88, -0.84, -0.81 Hz, "
    "refining n (100, 200, 400 cells at 278 v cells) -0.88, -0.16, +0.01 Hz "
    "(benchmarks/diag_space_time_nd.py)"))
def test_reduced_hh_rate_second_order_in_internal_step():
    rates = [reduced_hh(HALF_OLD_DEFAULT).run(T_END, 1e-4, max_substep=h, progress=False)
             .mean_rate("P", *WINDOW) for h in STEPS]
    order = math.log2(abs(rates[0] - rates[1]) / abs(rates[1] - rates[2]))
    # the acceptance for measured orders
    assert order >= 1.8, (rates, order)
    # independent check: the finest step within 0.2 % of the Monte Carlo reference
    # (10x its block standard error of 0.021 Hz; the grid's own error is about 0.3 Hz)
    assert abs(rates[2] - REFS["reduced_hh"]["rate"]) < 2e-3 * REFS["reduced_hh"]["rate"]


# ReducedHH path with n refined 4x more than the default's proportions and the step
# halved per level (benchmarks/bench_error_cost_nd.py): (v cells, n cells, step)
N_WEIGHTED_PATH = ((70, 100, 1e-4), (139, 200, 5e-5), (278, 400, 2.5e-5))


@pytest.mark.slow
def test_reduced_hh_error_falls_monotonically_on_the_n_weighted_path():
    ref = REFS["reduced_hh"]
    errors = []
    for v_cells, n_cells, step in N_WEIGHTED_PATH:
        grid = pd.Grid(v=(-0.082, 0.057, v_cells), n=(0.0, 1.0, n_cells))
        rate = reduced_hh(grid).run(T_END, 1e-4, max_substep=step, progress=False)
        errors.append(rate.mean_rate("P", *WINDOW) - ref["rate"])
    # measured +0.177, +0.132, +0.066 Hz: the finest is 3.1 block standard errors of the
    # reference (0.021 Hz) above it; 2 SE resolves the sign of each error, so the signed
    # errors falling means |error| falls
    assert all(e > 2 * ref["standard_error"] for e in errors), errors
    assert errors[0] > errors[1] > errors[2], errors
    # the finest level within 0.1 % of the reference (measured 0.077 %)
    assert errors[2] < 1e-3 * ref["rate"], errors
