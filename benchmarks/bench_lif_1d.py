"""Density vs Monte Carlo on the 1D LIF demo: cost, accuracy, speed-up at equal accuracy.

Scenario: the demo model ``LIF(tau_m=0.05, v_th=1, v_reset=0)`` driven by Poisson jumps of
0.03 at 800 Hz (0.08 events per neuron per 0.1 ms step, about 12 Hz output), every neuron
starting at v = 0, dt = 0.1 ms, 1 s simulated (the rise from rest included).

- Density backend on the grids ``Grid(v=(1 - n dx, 1, n))`` with ``dx = 0.03 / k``
  (a jump is ``k`` whole cells) for ``k = 6, 30, 150`` (n = 200, 1000, 5001: 5000 cells
  of 0.0002 end 1e-16 above v_reset in floating point, so one cell is added). Wall time is
  the median of ``--repeats`` runs of ``Result.wall_time`` (numba compilation excluded by
  a warm-up run); cell-updates per second = cells x steps x sub-steps / wall time.
- Monte Carlo backend for N = 1e4, 1e5 (and 1e6 without ``--quick``) neurons, median of
  ``--mc-repeats`` seeds.
- Accuracy: RMS over the run of the error of 1-ms-bin rates (``binned_rates("E", 1e-3)``)
  against a converged reference, a density run on a much finer grid and internal step
  (k = 600, max_substep 5 us; ``--quick``: k = 300). Its own error is estimated by the
  RMS difference to the next coarser reference (k = 300 resp. 150).
- Speed-up at equal accuracy: a Monte Carlo run of N neurons has, in a 1-ms bin of true
  rate r, the Poisson standard error sqrt(r / (N 1 ms)); its expected RMS error over the
  bins is sqrt(mean_bins(r) / (N 1 ms)) (r from the reference; the table also shows the
  measured Monte Carlo errors to check this). The N for which that equals the density's
  RMS error is costed by a straight-line fit of the measured Monte Carlo wall times
  against N, and divided by the density's wall time.

Run::

    python benchmarks/bench_lif_1d.py            # full table (about 5 minutes)
    python benchmarks/bench_lif_1d.py --quick    # no N = 1e6, coarser reference

The table is printed and written to ``benchmarks/results/lif_1d.md``.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import sys
from pathlib import Path

import numba
import numpy as np
from _machine import cpu_name  # benchmarks/ is on sys.path when a script runs

import popdens as pd

RATE = 800.0        # Hz
WEIGHT = 0.03       # jump of v per event
DT = 1e-4           # s
T_END = 1.0         # s
BIN = 1e-3          # s
DENSITY_K = (6, 30, 150)
RESULTS = Path(__file__).resolve().parent / "results" / "lif_1d.md"


def model() -> pd.LIF:
    return pd.LIF(tau_m=0.05, v_th=1.0, v_reset=0.0)


def grid_for(k: int) -> pd.Grid:
    """Grid ending at threshold whose cells are ``0.03 / k`` wide, reaching v = 0."""
    dx = WEIGHT / k
    n = math.ceil(1.0 / dx - 1e-9)
    if 1.0 - n * dx > 0.0:      # round-off left the lower face above v_reset
        n += 1
    return pd.Grid(v=(1.0 - n * dx, 1.0, n))


def network(grid: pd.Grid | None) -> pd.Network:
    net = pd.Network()
    ext = net.add_poisson("ext", RATE)
    pop = net.add_population("E", model(), grid=grid)
    net.connect(ext, pop, weight=WEIGHT)
    return net


def binned(res) -> np.ndarray:
    return res.binned_rates("E", BIN)[1]


def rms(a, b) -> float:
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def measure_density(k: int, repeats: int) -> dict:
    grid = grid_for(k)
    net = network(grid)
    net.run(10 * DT, DT)                       # compile (or load) the kernels
    walls, res = [], None
    for _ in range(repeats):
        res = net.run(T_END, DT)
        walls.append(res.wall_time)
    wall = statistics.median(walls)
    cells = grid.num_cells
    updates = cells * res.t.size * res.info["n_sub"]
    return {"k": k, "cells": cells, "dx": WEIGHT / k, "wall": wall, "n_sub": res.info["n_sub"],
            "updates_per_s": updates / wall, "rates": binned(res)}


def measure_montecarlo(n_neurons: int, repeats: int) -> dict:
    net = network(None)
    net.run(2 * DT, DT, backend="montecarlo", n_neurons=10, seed=0)   # compile
    walls, first = [], None
    for seed in range(repeats):
        res = net.run(T_END, DT, backend="montecarlo", n_neurons=n_neurons, seed=seed)
        walls.append(res.wall_time)
        if first is None:
            first = res
    wall = statistics.median(walls)
    return {"n": n_neurons, "wall": wall,
            "updates_per_s": n_neurons * first.t.size / wall, "rates": binned(first)}


def reference(k: int, max_substep: float) -> np.ndarray:
    return binned(network(grid_for(k)).run(T_END, DT, max_substep=max_substep))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5,
                        help="density runs per grid (median wall time), >= 5")
    parser.add_argument("--mc-repeats", type=int, default=3,
                        help="Monte Carlo runs (seeds) per N (median wall time)")
    parser.add_argument("--quick", action="store_true",
                        help="skip N = 1e6 and use a coarser reference")
    args = parser.parse_args(argv)
    if args.repeats < 5:
        parser.error("--repeats must be >= 5")
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    ref_levels = [(150, 1e-5), (300, 5e-6)] if args.quick else [(300, 5e-6), (600, 5e-6)]

    lines = []

    def out(text=""):
        print(text, flush=True)
        lines.append(text)

    command = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    out("# 1D LIF: density vs Monte Carlo")
    out()
    out(f"- command: `{command}`")
    processor = platform.processor()
    arch = platform.machine() + (f", {processor}" if processor and processor != cpu_name()
                                 and processor != platform.machine() else "")
    out(f"- machine: {cpu_name()} ({arch}), python {platform.python_version()}, "
        f"numba {numba.__version__}, popdens {pd.__version__}")
    out(f"- scenario: LIF(tau_m=0.05, v_th=1, v_reset=0), Poisson {RATE:g} Hz, jump "
        f"{WEIGHT:g}, all neurons at v=0, dt = {DT * 1e3:g} ms, {T_END:g} s simulated; "
        f"errors are RMS over the run of 1-ms-bin rates")

    coarse_ref = reference(*ref_levels[0])
    ref = reference(*ref_levels[1])
    ref_error = rms(coarse_ref, ref)
    mean_rate = float(np.mean(ref))
    out(f"- reference: density, k = {ref_levels[1][0]} ({grid_for(ref_levels[1][0]).num_cells}"
        f" cells), max_substep {ref_levels[1][1] * 1e6:g} us; RMS difference to k = "
        f"{ref_levels[0][0]}, max_substep {ref_levels[0][1] * 1e6:g} us: "
        f"{ref_error:.2g} Hz; mean rate over the run {mean_rate:.3f} Hz")

    dens = [measure_density(k, args.repeats) for k in DENSITY_K]
    mcs = [measure_montecarlo(n, args.mc_repeats) for n in sizes]

    # Monte Carlo cost per simulated second: straight line a + b N through the timings
    ns = np.array([m["n"] for m in mcs], dtype=float)
    walls = np.array([m["wall"] for m in mcs]) / T_END
    slope, intercept = np.polyfit(ns, walls, 1)
    intercept = max(intercept, 0.0)

    def mc_cost(n: float) -> float:
        return intercept + slope * n

    def mc_expected_error(n: float) -> float:
        return math.sqrt(mean_rate / (n * BIN))

    out()
    out("| backend | size | wall / simulated s | updates / s | RMS error (Hz) "
        "| MC N at equal error | MC cost at that N | speed-up |")
    out("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for d in dens:
        err = rms(d["rates"], ref)
        n_equal = mean_rate / (BIN * err ** 2)
        cost = mc_cost(n_equal)
        out(f"| density | {d['cells']} cells (dx = {d['dx']:.2g}), {d['n_sub']} sub-step"
            f"{'s' if d['n_sub'] > 1 else ''} / dt | {d['wall'] / T_END * 1e3:.1f} ms | "
            f"{d['updates_per_s']:.3g} cell-updates | {err:.2g} | {n_equal:.2g} | "
            f"{cost:.3g} s | {cost / (d['wall'] / T_END):.2g} |")
    for m in mcs:
        err = rms(m["rates"], ref)
        out(f"| Monte Carlo | N = {m['n']:.0e} | {m['wall'] / T_END:.2f} s | "
            f"{m['updates_per_s']:.3g} neuron-steps | {err:.2g} (expected "
            f"{mc_expected_error(m['n']):.2g}) | | | |")
    out()
    out(f"Monte Carlo cost model: {intercept:.3g} s + {slope * 1e6:.3g} us x N per simulated "
        f"second (fit to the rows above); expected Monte Carlo error "
        f"sqrt(mean rate / (N x 1 ms)). Wall times are medians of {args.repeats} (density) "
        f"and {args.mc_repeats} (Monte Carlo) runs.")
    finest = rms(dens[-1]["rates"], ref)
    if finest < 3 * ref_error:
        out(f"Note: the finest density error ({finest:.2g} Hz) is within 3x of the "
            f"reference's own estimated error ({ref_error:.2g} Hz); it is an upper bound.")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
