"""Error against cost, density solver vs Monte Carlo, for a network and an HH population.

The companion of ``bench_error_cost.py`` (single LIF populations), with the same
measures, fits and figure layout:

- **brunel**: Brunel's (2000) model A, g = 5, eta = 2 (asynchronous irregular), finite
  jumps (J = 0.1 mV, -0.5 mV), D = 1.5 ms; both populations start uniform on
  [0, 20) mV (no synchronous first volley); 0.4 s simulated. Error: |mean E rate over
  [0.1, 0.4) s - reference|, the reference being the density network on 0.025 mV cells
  (1600 per population; 400 cells move the rate by 2e-5 Hz against it). Density grids:
  0.8, 0.4, 0.2, 0.1 mV cells on [-20, 20] mV. Monte Carlo: the same network with
  ``connectivity="poisson"`` (each neuron receives Poisson input at n_syn r_pre(t - D):
  the exact stochastic counterpart of the density equations) and exact event timing,
  N = N_E = N_I = 1e3, 1e4 (and 3e4 without ``--quick``), and without ``--quick`` its
  cost alone at N = 1e5 and 1e6 (one 10 ms run each: an accuracy run at N = 1e6 would
  take hours; the figure puts these points at their Poisson standard error). Exact
  timing costs about
  0.5 us per neuron-step here (6.8 input events per neuron and step); the 40x cheaper
  ``timing="grid"`` (input counted per 0.1 ms step, as NEST and Brian2 do) is biased by
  O(dt / tau_m): measured 0.28 Hz (0.7 %) at N = 1e5, more than the density's error on
  0.2 mV cells, so it cannot serve as the accuracy reference here.
- **reduced_hh**: ``pd.models.ReducedHH`` (v, n) driven by 2 mV jumps at 4 kHz from rest;
  0.1 s simulated. Error: |mean rate over [0.03, 0.1) s - reference|. The reference is
  Monte Carlo with N = 1e5 neurons (``--quick``: 3e4; its own seed), not a fine density:
  the density's spatial and temporal errors have opposite signs here (at dt_sub = 0.1 ms
  the rate rises by 0.26 and 0.14 Hz on the next two grid refinements from 140 x 50,
  while at 280 x 100 it falls by 0.43 and 0.31 Hz on halving the internal step twice),
  so no density run is a converged reference; the Monte Carlo's own step error is
  0.07 Hz (10 us against 2.5 us internal step, same events). Density grids 70 x 25 ..
  280 x 100 at the default internal step. Monte Carlo: second-order Rush-Larsen, 10 us
  internal step, N = 1e3, 1e4 (and 3e4 without ``--quick``); cost alone at N = 1e5 and
  1e6 as for Brunel.

Cost is the integration wall time (``Result.wall_time``, numba compilation excluded by a
warm-up run) per simulated second, median over repeats / seeds. Speed-up at equal
accuracy as in ``bench_error_cost.py``: Monte Carlo error fitted as ``c / sqrt(N)``,
cost as ``a + b N``.

Run::

    python benchmarks/bench_error_cost_models.py            # about 9 minutes (AMD EPYC)
    python benchmarks/bench_error_cost_models.py --quick    # about 6 minutes

Writes ``benchmarks/results/error_cost_models.md`` and the log-log figure
``benchmarks/results/error_vs_cost_models.png``.

The 4D Hodgkin-Huxley density is not in the figure: on grids affordable today its rate
is 20-63 % below Monte Carlo (numerical diffusion along coarse gate axes; README, N-D
section), so there is no converged density reference to measure against.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
from pathlib import Path

from _machine import cpu_name  # benchmarks/ is on sys.path when a script runs
from bench_error_cost import DT, Scenario, figure, measure_scenario, scenario_table

import popdens as pd
from popdens.examples import brunel_network

RESULTS = Path(__file__).resolve().parent / "results"
FIGURE = RESULTS / "error_vs_cost_models.png"
TABLE = RESULTS / "error_cost_models.md"

# Simulated time of the cost-only Monte Carlo runs at N = 1e5 and 1e6.
TIMING_T_END = 0.01

# --- Brunel ------------------------------------------------------------------------------
BRUNEL_LOWER, BRUNEL_UPPER = -0.02, 0.02
BRUNEL_CELLS = (50, 100, 200, 400)
BRUNEL_REFERENCE_CELLS = 1600
BRUNEL_T_END, BRUNEL_WINDOW = 0.4, 0.1


def _uniform_below_threshold(v):
    return ((v > 0.0) & (v < 0.02)).astype(float)


def brunel(cells: int | None) -> pd.Network:
    """Brunel A, g = 5, eta = 2, on ``cells`` cells per population (None: 400)."""
    grid = pd.Grid(v=(BRUNEL_LOWER, BRUNEL_UPPER, cells or 400))
    return brunel_network(g=5.0, eta=2.0, grid=grid, init=_uniform_below_threshold)


def brunel_scenario() -> Scenario:
    ref_run = brunel(BRUNEL_REFERENCE_CELLS).run(BRUNEL_T_END, DT)
    ref = ref_run.mean_rate("E", BRUNEL_WINDOW)
    window = BRUNEL_T_END - BRUNEL_WINDOW
    return Scenario(
        "brunel", "Brunel E/I network, g = 5, eta = 2 (error: |stationary E rate - "
        "converged|)", brunel, BRUNEL_T_END, BRUNEL_CELLS,
        lambda n: f"{(BRUNEL_UPPER - BRUNEL_LOWER) / n * 1e3:.3g} mV",
        lambda res: abs(res.mean_rate("E", BRUNEL_WINDOW) - ref),
        f"density network, {BRUNEL_REFERENCE_CELLS} cells per population (0.025 mV): "
        f"E rate {ref:.4f} Hz over [{BRUNEL_WINDOW:g}, {BRUNEL_T_END:g}) s",
        lambda n: math.sqrt(ref / (n * window)),
        mc_options={"connectivity": "poisson", "timing": "exact"})


# --- reduced HH ----------------------------------------------------------------------------
HH_V = (-0.083, 0.057)
HH_GRIDS = ((70, 25), (140, 50), (280, 100))
HH_RATE, HH_WEIGHT = 4000.0, 2e-3
HH_T_END, HH_WINDOW = 0.1, 0.03
HH_REFERENCE_SEED = 1000   # the measured Monte Carlo runs use seeds 1, 2, ...


def reduced_hh(cells: tuple[int, int] | None) -> pd.Network:
    """Reduced HH under 2 mV jumps at 4 kHz on ``cells = (v cells, n cells)``."""
    grid = None if cells is None else pd.Grid(v=(*HH_V, cells[0]), n=(0.0, 1.0, cells[1]))
    net = pd.Network()
    src = net.add_poisson("ext", HH_RATE)
    pop = net.add_population("P", pd.models.ReducedHH(), grid=grid)
    net.connect(src, pop, weight=HH_WEIGHT)
    return net


def reduced_hh_scenario(reference_n: int) -> Scenario:
    ref_run = reduced_hh(None).run(HH_T_END, DT, backend="montecarlo", n_neurons=reference_n,
                                   seed=HH_REFERENCE_SEED)
    ref = ref_run.mean_rate("P", HH_WINDOW)
    window = HH_T_END - HH_WINDOW
    return Scenario(
        "reduced_hh", "Reduced HH (v, n), 2 mV jumps at 4 kHz (error: |rate - Monte Carlo "
        "reference|)", reduced_hh, HH_T_END, HH_GRIDS,
        lambda c: f"{(HH_V[1] - HH_V[0]) / c[0] * 1e3:.3g} mV x 1/{c[1]}",
        lambda res: abs(res.mean_rate("P", HH_WINDOW) - ref),
        f"Monte Carlo, N = {reference_n:.0e}, 10 us internal step, seed "
        f"{HH_REFERENCE_SEED}: {ref:.4f} Hz over [{HH_WINDOW:g}, {HH_T_END:g}) s (Poisson "
        f"standard error {math.sqrt(ref / (reference_n * window)):.2g} Hz, an upper bound "
        f"for these regular spikes)",
        lambda n: math.sqrt(ref / (n * window)), population="P")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smaller Monte Carlo sizes (about 6 minutes)")
    parser.add_argument("--seeds", type=int, default=3,
                        help="Monte Carlo seeds per N (default 3)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="density runs per grid, median wall time (default 3)")
    parser.add_argument("--output", type=Path, default=FIGURE, help="figure path")
    args = parser.parse_args(argv)
    if args.seeds < 2:
        parser.error("--seeds must be >= 2 (the Monte Carlo error is measured across seeds)")
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 30_000]
    # N = 1e5 and 1e6: cost alone (accuracy runs there would take hours)
    timing_sizes = [] if args.quick else [100_000, 1_000_000]
    plan = [brunel_scenario, lambda: reduced_hh_scenario(30_000 if args.quick else 100_000)]

    lines: list[str] = []

    def out(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    import numba

    out("# Error against cost: density vs Monte Carlo (Brunel network, reduced HH)")
    out()
    given = sys.argv[1:] if argv is None else list(argv)
    out(f"- command: `python {' '.join(['benchmarks/bench_error_cost_models.py', *given])}`")
    out(f"- machine: {cpu_name()}, python {platform.python_version()}, numba "
        f"{numba.__version__}, popdens {pd.__version__}; dt = {DT * 1e3:g} ms; cost = "
        f"integration wall time per simulated second (median); Monte Carlo error: RMS "
        f"over {args.seeds} seeds; Brunel: N neurons in each of E and I")
    panels = []
    for make in plan:
        panels.append(measure_scenario(make(), sizes, args.repeats, args.seeds,
                                       timing_sizes, TIMING_T_END))
        for line in scenario_table(*panels[-1], density_cost_ms=False):
            out(line)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    figure(panels, args.output)
    TABLE.parent.mkdir(parents=True, exist_ok=True)
    TABLE.write_text("\n".join(lines) + "\n")
    print(f"\nwritten to {TABLE} and {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
