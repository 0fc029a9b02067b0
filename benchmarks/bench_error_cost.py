"""Error against cost, density solver vs Monte Carlo, for single LIF populations.

Two scenarios, the two example files of ``examples/``:

- **step** (``examples/lif_step.toml``, the ``popdens demo`` network): LIF(tau_m = 50 ms,
  v_th = 1, v_reset = 0) switched on by Poisson jumps of 0.03 at 800 Hz at t = 0, every
  neuron at rest; 0.3 s simulated (the transient and the approach to steady state).
  Error: RMS over the run of the 1-ms-bin rate against a converged density reference
  (a jump is 300 cells, internal step <= 5 us; ``--quick``: 150 cells, 10 us).
- **diffusion** (``examples/lif_diffusion.toml``): LIF(20 ms, 20 mV, 10 mV, t_ref = 2 ms)
  with excitatory and inhibitory input in the diffusion limit (mu = 16 mV, sigma = 3.9
  mV); 0.5 s simulated. Error: |mean rate over [0.25, 0.5) s - Siegert rate| (8.51 Hz,
  :func:`popdens.siegert_rate`, exact for this model).

The density backend runs on several grids (cell widths in the tables); its error is
deterministic (discretisation). Monte Carlo runs N = 1e3, 1e4, 1e5 (and 1e6 without
``--quick``) neurons with ``--seeds`` seeds; its error is the RMS over seeds of the same
error measure (statistical, plus any bias), beside the Poisson standard error expected
from the rate. Cost is the integration wall time (``Result.wall_time``, numba compilation
excluded by a warm-up run) per simulated second, median over repeats / seeds.

Speed-up at equal accuracy: the Monte Carlo error is fitted as ``c / sqrt(N)`` and its
cost as ``a + b N`` (least squares on the measured points); for each density grid the N
whose fitted error equals the density's error is costed and divided by the density's cost.

Run::

    python benchmarks/bench_error_cost.py            # with N = 1e6 (about 5 minutes)
    python benchmarks/bench_error_cost.py --quick    # under 2 minutes

Writes ``benchmarks/results/error_cost_lif.md`` and the log-log figure
``benchmarks/results/error_vs_cost_lif.png`` (error against wall time per simulated
second, both methods, one panel per scenario).
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import sys
from pathlib import Path

import numpy as np
from _machine import cpu_name  # benchmarks/ is on sys.path when a script runs

import popdens as pd

RESULTS = Path(__file__).resolve().parent / "results"
FIGURE = RESULTS / "error_vs_cost_lif.png"
TABLE = RESULTS / "error_cost_lif.md"
DT = 1e-4
BIN = 1e-3

# --- step scenario (Omurtag et al. 2000) -----------------------------------------------
STEP_RATE, STEP_WEIGHT, STEP_T_END = 800.0, 0.03, 0.3
STEP_K = (2, 6, 15, 30, 75)             # cells per jump of the density grids

# --- diffusion scenario --------------------------------------------------------------
DIFF_TAU, DIFF_TH, DIFF_RESET, DIFF_REF = 20e-3, 20e-3, 10e-3, 2e-3
DIFF_INPUTS = ((9000.0, 0.2e-3), (2500.0, -0.4e-3))    # (rate Hz, jump V)
DIFF_LOWER = -10e-3
DIFF_T_END, DIFF_WINDOW = 0.5, 0.25
DIFF_CELLS = (30, 60, 120, 300, 600)


def step_network(k: int | None) -> pd.Network:
    """The step scenario; ``k`` cells per jump (None: the model's default grid)."""
    grid = None
    if k is not None:
        dx = STEP_WEIGHT / k
        n = math.ceil(1.0 / dx - 1e-9)
        if 1.0 - n * dx > 0.0:
            n += 1
        grid = pd.Grid(v=(1.0 - n * dx, 1.0, n))
    net = pd.Network()
    ext = net.add_poisson("ext", STEP_RATE)
    pop = net.add_population("E", pd.LIF(tau_m=0.05, v_th=1.0, v_reset=0.0), grid=grid)
    net.connect(ext, pop, weight=STEP_WEIGHT)
    return net


def diffusion_network(cells: int | None) -> pd.Network:
    """The diffusion scenario on ``cells`` cells from -10 mV to threshold."""
    grid = None if cells is None else pd.Grid(v=(DIFF_LOWER, DIFF_TH, cells))
    net = pd.Network()
    pop = net.add_population("E", pd.LIF(tau_m=DIFF_TAU, v_th=DIFF_TH, v_reset=DIFF_RESET,
                                         t_ref=DIFF_REF), grid=grid)
    for k, (rate, weight) in enumerate(DIFF_INPUTS):
        src = net.add_poisson(f"in{k}", rate)
        net.connect(src, pop, weight=weight, input="diffusion")
    return net


def siegert_reference() -> float:
    mu, sigma = pd.diffusion_params([r for r, _ in DIFF_INPUTS], [w for _, w in DIFF_INPUTS],
                                    tau_m=DIFF_TAU)
    return float(pd.siegert_rate(mu, sigma, DIFF_TAU, DIFF_TH, DIFF_RESET, DIFF_REF))


class Scenario:
    """A network family, how to measure its error, and its reference."""

    def __init__(self, name, label, build, t_end, sizes, size_label, error, reference,
                 expected_mc_error, population="E", mc_options=None):
        self.name, self.label, self.build, self.t_end = name, label, build, t_end
        self.sizes, self.size_label = sizes, size_label
        self.error, self.reference = error, reference
        self.expected_mc_error = expected_mc_error
        self.population = population            # whose grid size is reported
        self.mc_options = mc_options or {}      # extra Network.run options for Monte Carlo


def _rms(a, b) -> float:
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def step_scenario(quick: bool) -> Scenario:
    k_ref, sub_ref = (150, 1e-5) if quick else (300, 5e-6)
    ref = step_network(k_ref).run(STEP_T_END, DT, max_substep=sub_ref).binned_rates("E", BIN)[1]
    mean = float(np.mean(ref))
    return Scenario(
        "step", "LIF, step of Poisson jumps (error: RMS of 1-ms-bin rates vs converged)",
        step_network, STEP_T_END, STEP_K, lambda k: f"dx = {STEP_WEIGHT / k:.3g} (jump/{k})",
        lambda res: _rms(res.binned_rates("E", BIN)[1], ref),
        f"density, jump = {k_ref} cells, internal step <= {sub_ref * 1e6:g} us; mean rate "
        f"{mean:.3f} Hz",
        lambda n: math.sqrt(mean / (n * BIN)))


def diffusion_scenario() -> Scenario:
    ref = siegert_reference()
    window = DIFF_T_END - DIFF_WINDOW
    return Scenario(
        "diffusion", "LIF, diffusion input (error: |stationary rate - Siegert|)",
        diffusion_network, DIFF_T_END, DIFF_CELLS,
        lambda n: f"dx = {(DIFF_TH - DIFF_LOWER) / n * 1e3:.3g} mV",
        lambda res: abs(res.mean_rate("E", DIFF_WINDOW) - ref),
        f"Siegert rate {ref:.4f} Hz",
        lambda n: math.sqrt(ref / (n * window)))


def measure_density(sc: Scenario, size, repeats: int) -> dict:
    net = sc.build(size)
    net.run(10 * DT, DT)                              # compile (or load) the kernels
    walls, res = [], None
    for _ in range(repeats):
        res = net.run(sc.t_end, DT)
        walls.append(res.wall_time)
    return {"size": size, "cost": statistics.median(walls) / sc.t_end,
            "error": sc.error(res), "cells": res.grids[sc.population].num_cells,
            "n_sub": res.info.get("n_sub")}


def measure_montecarlo(sc: Scenario, n: int, seeds: int) -> dict:
    net = sc.build(None)
    net.run(2 * DT, DT, backend="montecarlo", n_neurons=10, seed=0,   # compile
            **sc.mc_options)
    walls, errors = [], []
    for seed in range(seeds):
        res = net.run(sc.t_end, DT, backend="montecarlo", n_neurons=n, seed=seed + 1,
                      **sc.mc_options)
        walls.append(res.wall_time)
        errors.append(sc.error(res))
    return {"n": n, "cost": statistics.median(walls) / sc.t_end,
            "error": float(np.sqrt(np.mean(np.square(errors)))),
            "expected": sc.expected_mc_error(n)}


def measure_montecarlo_timing(sc: Scenario, n: int, t_end: float) -> dict:
    """Cost alone at a size whose accuracy runs would take hours: one seed, ``t_end``
    simulated (the error of such a run is not measured; ``error`` is None)."""
    net = sc.build(None)
    res = net.run(t_end, DT, backend="montecarlo", n_neurons=n, seed=1, **sc.mc_options)
    return {"n": n, "cost": res.wall_time / t_end, "error": None,
            "expected": sc.expected_mc_error(n), "timing_t_end": t_end}


def fit_montecarlo(mcs: list[dict]) -> tuple[float, float, float]:
    """``c`` of error = c / sqrt(N) (rows with a measured error) and ``a, b`` of
    cost = a + b N (all rows), fitted in relative terms (weights 1 / cost): costs span
    three decades, and an unweighted fit lets the largest N set the intercept, which
    then misprices the small N that equal accuracy often calls for."""
    measured = [m for m in mcs if m["error"] is not None]
    ns = np.array([m["n"] for m in measured], dtype=float)
    errors = np.array([m["error"] for m in measured])
    c = float(np.exp(np.mean(np.log(errors * np.sqrt(ns)))))
    ns = np.array([m["n"] for m in mcs], dtype=float)
    costs = np.array([m["cost"] for m in mcs])
    if ns.size > 1:
        b, a = np.polyfit(ns, costs, 1, w=1.0 / costs)
    else:
        a, b = 0.0, costs[0] / ns[0]
    return c, max(float(a), 0.0), max(float(b), 1e-300)


def speedups(dens: list[dict], mcs: list[dict]) -> list[dict]:
    c, a, b = fit_montecarlo(mcs)
    out = []
    for d in dens:
        n_equal = (c / d["error"]) ** 2 if d["error"] > 0 else math.inf
        mc_cost = a + b * n_equal
        out.append({**d, "n_equal": n_equal, "mc_cost": mc_cost,
                    "speedup": mc_cost / d["cost"]})
    return out


def measure_scenario(sc: Scenario, sizes, repeats: int, seeds: int, timing_sizes=(),
                     timing_t_end: float = 0.01):
    """Density on each of the scenario's grids, Monte Carlo at each N in ``sizes`` (cost
    and error) and at each N in ``timing_sizes`` (cost alone, ``timing_t_end``
    simulated); returns ``(sc, density rows with speed-ups, Monte Carlo rows)``, a
    figure panel."""
    dens = [measure_density(sc, size, repeats) for size in sc.sizes]
    mcs = [measure_montecarlo(sc, n, seeds) for n in sizes]
    mcs += [measure_montecarlo_timing(sc, n, timing_t_end) for n in timing_sizes]
    return sc, speedups(dens, mcs), mcs


def scenario_table(sc: Scenario, dens: list[dict], mcs: list[dict],
                   density_cost_ms: bool) -> list[str]:
    """The Markdown section of one scenario (density cost in ms or s)."""
    lines = ["", f"## {sc.label}", "", f"Reference: {sc.reference}; {sc.t_end:g} s simulated.",
             "", "| method | size | wall / simulated s | error (Hz) | expected SE (Hz) "
             "| MC N at equal error | MC cost at that N | speed-up |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for d in dens:
        cost = f"{d['cost'] * 1e3:.3g} ms" if density_cost_ms else f"{d['cost']:.3g} s"
        lines.append(f"| density | {sc.size_label(d['size'])}, {d['cells']} cells | {cost} | "
                     f"{d['error']:.2g} | | {d['n_equal']:.2g} | {d['mc_cost']:.3g} s | "
                     f"{d['speedup']:.2g} |")
    for m in mcs:
        error = (f"{m['error']:.2g}" if m["error"] is not None
                 else f"(cost only: {m['timing_t_end']:g} s run)")
        lines.append(f"| Monte Carlo | N = {m['n']:.0e} | {m['cost']:.3g} s | "
                     f"{error} | {m['expected']:.2g} | | | |")
    return lines


def figure(panels: list[tuple[Scenario, list[dict], list[dict]]], path: Path) -> None:
    """Log-log error against cost, one panel per scenario."""
    from matplotlib.figure import Figure

    # wide enough for the title also with one panel
    fig = Figure(figsize=(max(5.2 * len(panels), 7.0), 4.4), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (sc, dens, mcs) in zip(axes, panels):
        dc = [d["cost"] for d in dens]
        de = [max(d["error"], 1e-12) for d in dens]
        ax.loglog(dc, de, "o-", color="C0", label="density (grid refinement)")
        for d in dens:
            ax.annotate(f"{d['cells']}", (d["cost"], max(d["error"], 1e-12)),
                        textcoords="offset points", xytext=(4, 4), fontsize=7, color="C0")
        measured = [m for m in mcs if m["error"] is not None]
        ax.loglog([m["cost"] for m in measured], [m["error"] for m in measured], "s-",
                  color="C1", label="Monte Carlo (measured)")
        ax.loglog([m["cost"] for m in mcs], [m["expected"] for m in mcs], ":", color="C1",
                  label="Monte Carlo (Poisson SE)")
        timed = [m for m in mcs if m["error"] is None]
        if timed:
            ax.loglog([m["cost"] for m in timed], [m["expected"] for m in timed], "s",
                      color="C1", markerfacecolor="none",
                      label="Monte Carlo (cost measured, Poisson SE)")
        for m in mcs:
            y = m["error"] if m["error"] is not None else m["expected"]
            ax.annotate(f"N={m['n']:.0e}", (m["cost"], y),
                        textcoords="offset points", xytext=(4, -10), fontsize=7,
                        color="C1")
        ax.margins(x=0.12, y=0.08)      # room for the labels at the ends
        ax.set_xlabel("wall time per simulated second (s)")
        ax.set_ylabel("rate error (Hz)")
        ax.set_title(sc.label.split(" (")[0], fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(frameon=False, fontsize=8)
    fig.suptitle("Error against cost: density solver vs Monte Carlo (labels: cells, N)")
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="no N = 1e6, coarser reference (under 2 minutes)")
    parser.add_argument("--seeds", type=int, default=3,
                        help="Monte Carlo seeds per N (default 3)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="density runs per grid, median wall time (default 5)")
    parser.add_argument("--output", type=Path, default=FIGURE, help="figure path")
    args = parser.parse_args(argv)
    if args.seeds < 2:
        parser.error("--seeds must be >= 2 (the Monte Carlo error is measured across seeds)")
    sizes = [1_000, 10_000, 100_000] if args.quick else [1_000, 10_000, 100_000, 1_000_000]

    lines: list[str] = []

    def out(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    import numba

    out("# Error against cost: density vs Monte Carlo (single LIF)")
    out()
    given = sys.argv[1:] if argv is None else list(argv)
    out(f"- command: `python {' '.join(['benchmarks/bench_error_cost.py', *given])}`")
    out(f"- machine: {cpu_name()}, python {platform.python_version()}, numba "
        f"{numba.__version__}, popdens {pd.__version__}; dt = {DT * 1e3:g} ms; cost = "
        f"integration wall time per simulated second (median); Monte Carlo error: RMS "
        f"over {args.seeds} seeds")
    panels = []
    for sc in (step_scenario(args.quick), diffusion_scenario()):
        panels.append(measure_scenario(sc, sizes, args.repeats, args.seeds))
        for line in scenario_table(*panels[-1], density_cost_ms=True):
            out(line)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    figure(panels, args.output)
    TABLE.parent.mkdir(parents=True, exist_ok=True)
    TABLE.write_text("\n".join(lines) + "\n")
    print(f"\nwritten to {TABLE} and {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
