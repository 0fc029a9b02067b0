"""Hodgkin-Huxley 4D density against Monte Carlo: accuracy and cost per grid.

The scenario of issue 4: a population of classic HH neurons (``pd.HodgkinHuxley()``)
receiving Poisson jumps of 2 mV in v at 2 kHz for 0.1 s, then at 4 kHz for 0.1 s, all
neurons starting at rest; dt = 0.1 ms. The rate of each segment is averaged after its
first spike wave, over [0.03, 0.1) s and [0.13, 0.2) s. Reference: Monte Carlo
(second-order Rush-Larsen, 10 us internal step, spikes = upward crossings of n = 0.6)
with N = 2e4 neurons, two seeds; their standard error is estimated from the two seeds'
difference and from the Poisson formula (the larger is reported).

Density grids come from ``HodgkinHuxley.default_grid`` (v over [-83, 57] mV, gates over
[0, 1]) at several resolutions; the default grid is marked. Monte Carlo for the error
against cost: N = 1e3 and 1e4 (three other seeds each, error against the reference) and
its cost alone at N = 1e5 and 1e6 (one 10 ms run each). Error: RMS over the two segments
of the rate error. Cost is the integration wall time per simulated second
(``Result.wall_time``, compilation excluded by a warm-up run on a small grid, assembly
excluded). The speed-up at equal accuracy is that of ``bench_error_cost``: Monte Carlo's
error fitted as c / sqrt(N), its cost as a + b N. Writes ``benchmarks/results/hh4d.md``
and ``benchmarks/results/error_vs_cost_hh4d.png``.

Usage::

    python benchmarks/bench_hh4d.py           # about 14 minutes (AMD EPYC)
    python benchmarks/bench_hh4d.py --quick   # two grids, one reference seed, ~4 minutes
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import numpy as np
from _machine import cpu_name  # benchmarks/ is on sys.path when a script runs
from bench_error_cost import figure, speedups

import popdens as pd

RESULTS = Path(__file__).resolve().parent / "results" / "hh4d.md"
FIGURE = RESULTS.with_name("error_vs_cost_hh4d.png")
# simulated time of the cost-only Monte Carlo runs (N = 1e5, 1e6)
TIMING_T_END = 0.01
DT = 1e-4
T_END = 0.2
SEGMENTS = ((0.03, 0.1), (0.13, 0.2))
RATES = (2000.0, 4000.0)
WEIGHT = 2e-3
N_NEURONS = 20_000
# (v cells per mV, cells per gate); the default grid is (0.5, 30)
GRIDS = ((0.5, 20), (0.5, 25), (1.0, 20), (0.5, 30), (0.5, 40))   # by number of cells
QUICK_GRIDS = ((0.5, 20), (0.5, 25))


def build(grid):
    net = pd.Network()
    ext = net.add_poisson("ext", rate=pd.piecewise([0.0, 0.1], list(RATES)))
    pop = net.add_population("HH", pd.HodgkinHuxley(), grid=grid)
    net.connect(ext, pop, weight=WEIGHT)
    return net


def segment_rates(res) -> list[float]:
    return [res.mean_rate("HH", a, b) for a, b in SEGMENTS]


class _Panel:
    """What ``bench_error_cost.figure`` reads of a scenario: its title."""

    label = "Hodgkin-Huxley 4D (error: RMS over the two segments)"


def _rms(values) -> float:
    return float(np.sqrt(np.mean(np.square(values))))


def monte_carlo_rows(sizes, seeds, timing_sizes, reference) -> list[dict]:
    """Monte Carlo cost per simulated second and error against ``reference`` (RMS over
    seeds of the RMS over segments); cost alone (10 ms runs) at ``timing_sizes``."""
    lengths = np.array([b - a for a, b in SEGMENTS])

    def expected(n):
        return _rms(np.sqrt(reference / (n * lengths)))

    rows = []
    for n in sizes:
        runs = [build(None).run(t_end=T_END, dt=DT, backend="montecarlo", n_neurons=n,
                                seed=100 + s) for s in range(seeds)]
        errors = [_rms(np.array(segment_rates(r)) - reference) for r in runs]
        rows.append({"n": n, "cost": float(np.median([r.wall_time for r in runs])) / T_END,
                     "error": _rms(errors), "expected": expected(n)})
    for n in timing_sizes:
        res = build(None).run(t_end=TIMING_T_END, dt=DT, backend="montecarlo",
                              n_neurons=n, seed=1)
        rows.append({"n": n, "cost": res.wall_time / TIMING_T_END, "error": None,
                     "expected": expected(n), "timing_t_end": TIMING_T_END})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="two grids and one Monte Carlo seed")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--figure", type=Path, default=FIGURE)
    args = parser.parse_args(argv)
    hh = pd.HodgkinHuxley()
    inputs = [(max(RATES), WEIGHT, "jump")]
    default = hh.default_grid(inputs)

    # warm-up (compilation) on a small grid, both backends
    small = hh.default_grid(inputs, v_cells_per_mv=0.25, gate_cells=4)
    build(small).run(t_end=2e-3, dt=DT)
    build(small).run(t_end=2e-3, dt=DT, backend="montecarlo", n_neurons=10, seed=0)

    seeds = (1,) if args.quick else (1, 2)
    mc = [build(None).run(t_end=T_END, dt=DT, backend="montecarlo", n_neurons=N_NEURONS,
                          seed=s) for s in seeds]
    mc_rates = np.array([segment_rates(r) for r in mc])
    reference = mc_rates.mean(axis=0)
    poisson_se = np.sqrt(reference / (len(seeds) * N_NEURONS
                                      * np.array([b - a for a, b in SEGMENTS])))
    if len(seeds) > 1:
        seed_se = np.abs(mc_rates[0] - mc_rates[1]) / 2.0
        se = np.maximum(poisson_se, seed_se)
    else:
        se = poisson_se
    mc_cost = float(np.median([r.wall_time for r in mc]))

    lines = ["# Hodgkin-Huxley 4D density vs Monte Carlo", "",
             f"- command: `python benchmarks/bench_hh4d.py{' --quick' if args.quick else ''}`",
             f"- machine: {cpu_name()}, python {platform.python_version()}, "
             f"popdens {pd.__version__}; one core",
             f"- scenario: 2 mV jumps at {RATES[0]:g} Hz on [0, 0.1) s, {RATES[1]:g} Hz on "
             f"[0.1, 0.2) s, start at rest, dt = {DT * 1e3:g} ms; rates over "
             + ", ".join(f"[{a:g}, {b:g}) s" for a, b in SEGMENTS),
             f"- reference: Monte Carlo, N = {N_NEURONS:.0e}, seeds {list(seeds)}: "
             + ", ".join(f"{r:.2f} ± {s:.2f} Hz" for r, s in zip(reference, se))
             + f" ({mc_cost:.1f} s per 0.2 s run)",
             "- error: RMS over the two segments of |rate - reference|; cost: integration "
             "wall time per simulated second (density: the 0.2 s run; assembly excluded)",
             "",
             "| grid (v x m x h x n) | cells | density rates (Hz) | vs Monte Carlo | "
             "wall / simulated s | error (Hz) | MC N at equal error | MC cost at that N | "
             "speed-up |",
             "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for line in lines:
        print(line, flush=True)
    dens = []
    for v_per_mv, gate_cells in (QUICK_GRIDS if args.quick else GRIDS):
        grid = hh.default_grid(inputs, v_cells_per_mv=v_per_mv, gate_cells=gate_cells)
        res = build(grid).run(t_end=T_END, dt=DT)
        rates = np.array(segment_rates(res))
        shape = " x ".join(str(a.num_cells) for a in grid.axes)
        dens.append({"shape": shape + (" (default)" if grid == default else ""),
                     "cells": grid.num_cells, "rates": rates,
                     "cost": res.wall_time / T_END, "error": _rms(rates - reference)})
        print(f"{dens[-1]['shape']}: {rates}, {res.wall_time:.1f} s", flush=True)
    sizes = (1_000,) if args.quick else (1_000, 10_000)
    timing_sizes = (100_000,) if args.quick else (100_000, 1_000_000)
    mcs = monte_carlo_rows(sizes, 2 if args.quick else 3, timing_sizes, reference)
    dens = speedups(dens, mcs)
    for d in dens:
        rel = (d["rates"] - reference) / reference
        lines.append(f"| {d['shape']} | {d['cells']:.3g} | "
                     + " / ".join(f"{r:.2f}" for r in d["rates"]) + " | "
                     + " / ".join(f"{100 * e:+.1f} %" for e in rel)
                     + f" | {d['cost']:.3g} s | {d['error']:.2g} | {d['n_equal']:.2g} | "
                     f"{d['mc_cost']:.3g} s | {d['speedup']:.2g} |")
    lines += ["", "| Monte Carlo | wall / simulated s | error (Hz) | Poisson SE (Hz) |",
              "| --- | ---: | ---: | ---: |"]
    for m in mcs:
        error = (f"{m['error']:.2g}" if m["error"] is not None
                 else f"(cost only: {m['timing_t_end']:g} s run)")
        lines.append(f"| N = {m['n']:.0e} | {m['cost']:.3g} s | {error} | "
                     f"{m['expected']:.2g} |")
    for line in lines[-(len(dens) + len(mcs) + 3):]:
        print(line, flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines) + "\n")
    figure([(_Panel, dens, mcs)], args.figure)
    print(f"\nwritten to {args.output} and {args.figure}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
