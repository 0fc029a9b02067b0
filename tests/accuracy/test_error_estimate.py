"""The density run's own error estimate (``error_estimate=True``, ``rtol``) against
independent references: the Siegert rate for 1D LIF with diffusion input, and converged
Monte Carlo runs (``tests/data/errest_references.json``, block standard errors, made by
``python benchmarks/errest_references.py``) for ReducedHH and LIFSynaptic."""

import json
import sys
import warnings
from pathlib import Path

import pytest

import popdens as pd

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))
from bench_error_cost import diffusion_network, siegert_reference  # noqa: E402
from errest_references import WINDOW, lif_synaptic, reduced_hh  # noqa: E402

REFS = json.loads((Path(__file__).resolve().parents[1] / "data" /
                   "errest_references.json").read_text())
# the acceptance: the estimate within a factor 3 of the measured error
FACTOR = 3.0


def _check_estimate(res, name, window, reference, reference_se):
    measured = abs(res.mean_rate(name, *window) - reference)
    estimate = res.info["rate_error"][name]
    # the measured error must be resolved by the reference (5 standard errors)
    assert measured > 5 * reference_se, (measured, reference_se)
    assert measured / FACTOR <= estimate <= FACTOR * measured, (estimate, measured)
    return estimate / measured


@pytest.mark.parametrize("cells", [30, 60])
def test_estimate_1d_lif_against_siegert(cells):
    # measured ratio estimate / error: 0.94 (30 cells), 0.98 (60 cells)
    res = diffusion_network(cells).run(0.5, 1e-4, error_estimate=True,
                                       error_window=(0.25, 0.5))
    _check_estimate(res, "E", (0.25, 0.5), siegert_reference(), 0.0)
    assert res.info["error_grids"]["E"] == ((cells,), (cells // 2,))


def test_estimate_lif_synaptic_against_monte_carlo():
    # 50 x 30 cells: measured 0.56 Hz (0.38 %), estimate 0.35 Hz (ratio 0.62); the
    # companion runs on 25 x 15 cells at twice the internal step
    ref = REFS["lif_synaptic"]
    res = lif_synaptic(pd.Grid(v=(0.0, 0.02, 50), i_syn=(0.0, 8.0, 30))).run(
        0.1, 1e-4, error_estimate=True, error_window=WINDOW)
    _check_estimate(res, "P", WINDOW, ref["rate"], ref["standard_error"])
    assert res.info["error_dt_coarsened"] is True


def test_estimate_reduced_hh_against_monte_carlo():
    # 70 x 25 cells: measured 1.6 Hz (1.9 %), estimate 1.68 Hz (ratio 1.05); the
    # splitting limit keeps the companion's internal step at 0.1 ms (space only)
    ref = REFS["reduced_hh"]
    res = reduced_hh(pd.Grid(v=(-0.082, 0.057, 70), n=(0.0, 1.0, 25))).run(
        0.1, 1e-4, error_estimate=True, error_window=WINDOW)
    _check_estimate(res, "P", WINDOW, ref["rate"], ref["standard_error"])
    assert res.info["error_dt_coarsened"] is False


def test_rtol_refines_until_the_true_error_is_within_tolerance():
    # from 30 cells (1.4 % error) two doublings reach 120 cells: 0.087 % from Siegert
    ref = siegert_reference()
    res = diffusion_network(30).run(0.5, 1e-4, rtol=1e-3, error_window=(0.25, 0.5))
    assert res.info["rtol_met"] is True and res.info["refinements"] == 2
    assert res.info["error_grids"]["E"] == ((120,), (60,))
    # the requested rtol itself, against the independent Siegert rate (measured 8.7e-4)
    assert abs(res.mean_rate("E", 0.25, 0.5) - ref) <= 1e-3 * ref


def test_rtol_stops_at_the_resource_limit_with_a_warning():
    net = diffusion_network(30)
    with pytest.warns(RuntimeWarning, match="rtol=1e-06 not reached.*resource limit.*max_steps"):
        res = net.run(0.5, 1e-4, rtol=1e-6, max_steps=6000)
    assert res.info["rtol_met"] is False
    # the grids of the user's network are untouched
    assert net.populations["E"].grid.shape == (30,)


def test_estimate_off_by_default_and_grid_restored():
    net = lif_synaptic(pd.Grid(v=(0.0, 0.02, 20), i_syn=(0.0, 8.0, 12)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = net.run(0.01, 1e-4)
    assert "rate_error" not in plain.info


@pytest.mark.parametrize("options, match", [
    ({"rtol": -0.1}, "rtol must be a finite number >= 0, got -0.1"),
    ({"rtol": 0.0}, "rtol must be > 0"),
    ({"error_estimate": True, "error_window": (0.2, 0.1)}, "error_window must satisfy"),
    ({"error_estimate": True, "backend": "montecarlo"}, "backend='density'"),
    ({"rtol": 0.01, "max_refinements": -1}, "max_refinements must be an int >= 0"),
])
def test_bad_error_estimate_and_rtol_options_raise_value_errors(options, match):
    with pytest.raises(ValueError, match=match):
        diffusion_network(30).run(0.5, 1e-4, **options)


def test_grid_too_small_to_halve_is_refused_before_running():
    net = lif_synaptic(pd.Grid(v=(0.0, 0.02, 6), i_syn=(0.0, 8.0, 12)))
    with pytest.raises(ValueError, match="axis 'v' has 6 cells"):
        net.run(0.01, 1e-4, error_estimate=True)
