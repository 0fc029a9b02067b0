"""Error against cost for ReducedHH and LIFSynaptic: density refinement vs Monte Carlo.

Scenarios and references: ``benchmarks/errest_references.py`` (Monte Carlo, 4 blocks,
block standard errors; stored in ``tests/data/errest_references.json``). Error: |mean
rate over [0.03, 0.1) s - reference|. Density: the default grid (ReducedHH: 556 x 200,
its default before the rebalance to 1 ``v`` cell per mV) scaled by 1/8 .. 1 per
axis at the engine's internal step, and (ReducedHH) the same grids with the internal step
halved with each doubling, and (ReducedHH) a path that refines ``n`` 4x more than the
default's proportions (``(70, 100)``, ``(139, 200)``, ``(278, 400)`` cells at 100, 50, 25
us: the grid error of this scenario at small steps is the ``n`` axis's, see
``benchmarks/diag_space_time_nd.py``); each row also gives the ``error_estimate=True``
estimate.
Monte Carlo: 4 seeds per N at a 10 us internal step; its error is the RMS deviation of
the 4 block means from the reference, its cost measured at that N (never extrapolated).
Cost: ``Result.wall_time`` (integration; compilation excluded by a warm-up run), median
of 2 repeats. Run::

    python benchmarks/bench_error_cost_nd.py     # about 10 minutes on 2 shared cores

Writes ``benchmarks/results/error_cost_nd.md`` and the figure
``benchmarks/results/error_vs_cost_nd.png`` (``--plot-only`` redraws it from the table).
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
from pathlib import Path

import numpy as np
from errest_references import MC_INTERNAL_DT, SEEDS, T_END, WINDOW, lif_synaptic, reduced_hh

import popdens as pd

ROOT = Path(__file__).resolve().parent
REFS = json.loads((ROOT.parent / "tests" / "data" / "errest_references.json").read_text())
OUT = ROOT / "results" / "error_cost_nd.md"
FIGURE = ROOT / "results" / "error_vs_cost_nd.png"
_ROW = re.compile(r"^\| (density|Monte Carlo) \| (.*?) \| ([0-9.e+-]+) s \| [0-9.e+-]+ "
                  r"\(([0-9.e+-]+) %\)")
DT = 1e-4
SCALES = (1 / 8, 1 / 4, 1 / 2, 1)
MC_SIZES = {"reduced_hh": (30, 300, 3000), "lif_synaptic": (100, 1000, 10_000)}
BUILD = {"reduced_hh": reduced_hh, "lif_synaptic": lif_synaptic}
# ReducedHH is scaled from its default grid before the rebalance to 1 v cell per mV
# (4 v cells per mV, 556 x 200 here), the grid of the recorded tables
BASE_GRID = {"reduced_hh": pd.Grid(v=(-0.082, 0.057, 556), n=(0.0, 1.0, 200))}


# ReducedHH path with n refined 4x more than the default's proportions (3 levels)
N_WEIGHTED = {"scales": SCALES[:3], "weights": {"n": 4}}


def _grid(default: pd.Grid, scale: float, weights: dict) -> pd.Grid:
    return pd.Grid(**{a.name: (a.lower, a.upper,
                               max(8, round(a.num_cells * scale * weights.get(a.name, 1))))
                      for a in default.axes})


def density_rows(name: str, halve_step: bool, scales=SCALES, weights=None) -> list[str]:
    ref = REFS[name]["rate"]
    net = BUILD[name]()
    default = BASE_GRID.get(name) or net.grid_of(net.populations["P"], dt=DT)
    rows = []
    for level, scale in enumerate(scales):
        grid = _grid(default, scale, weights or {})
        step = {"max_substep": DT / 2 ** level} if halve_step else {}
        walls = []
        for _ in range(2):
            res = BUILD[name](grid).run(T_END, DT, **step)
            walls.append(res.wall_time)
        est = BUILD[name](grid).run(T_END, DT, error_estimate=True, error_window=WINDOW,
                                    **step)
        err = abs(est.mean_rate("P", *WINDOW) - ref)
        rows.append(f"| density | {grid.shape}, step {est.info['dt_sub'] * 1e6:g} us | "
                    f"{statistics.median(walls):.3g} s | {err:.3g} ({100 * err / ref:.2g} %) "
                    f"| {est.info['rate_error']['P']:.3g} |")
        print(rows[-1], flush=True)
    return rows


def mc_rows(name: str) -> list[str]:
    ref = REFS[name]["rate"]
    net = BUILD[name]()
    rows = []
    for n in MC_SIZES[name]:
        rates, walls = [], []
        for seed in SEEDS:
            res = net.run(T_END, DT, backend="montecarlo", n_neurons=n, seed=seed,
                          internal_dt=MC_INTERNAL_DT)
            rates.append(res.mean_rate("P", *WINDOW))
            walls.append(res.wall_time)
        err = float(np.sqrt(np.mean((np.asarray(rates) - ref) ** 2)))
        rows.append(f"| Monte Carlo | N = {n} | {statistics.median(walls):.3g} s | "
                    f"{err:.3g} ({100 * err / ref:.2g} %) | |")
        print(rows[-1], flush=True)
    return rows


def figure() -> None:
    """Error (%) against cost (s), log-log, one panel per model, from the table."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sections = OUT.read_text().split("\n## ")[1:]
    fig, axes = plt.subplots(1, len(sections), figsize=(5 * len(sections), 4))
    for ax, sec in zip(axes, sections):
        points = {"density": [], "Monte Carlo": []}
        for line in sec.splitlines():
            m = _ROW.match(line)
            if m:
                points[m.group(1)].append((float(m.group(3)), float(m.group(4))))
        for label, marker in (("density", "o"), ("Monte Carlo", "s")):
            cost, err = zip(*points[label])
            ax.loglog(cost, err, marker, label=label)
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.set(title=sec.splitlines()[0], xlabel="wall time per run (s)",
               ylabel="rate error (%)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(FIGURE, dpi=110)
    print("wrote", FIGURE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot-only", action="store_true",
                        help="redraw the figure from the existing table")
    if parser.parse_args().plot_only:
        figure()
        return
    reduced_hh(pd.Grid(v=(-0.082, 0.057, 20), n=(0.0, 1.0, 10))).run(0.002, DT)  # warm-up
    lif_synaptic(pd.Grid(v=(0.0, 0.02, 20), i_syn=(0.0, 8.0, 10))).run(0.002, DT)
    for name in BUILD:
        BUILD[name]().run(0.002, DT, backend="montecarlo", n_neurons=10, seed=0,
                          internal_dt=MC_INTERNAL_DT)
    lines = ["# Error against cost, N-D: density refinement vs Monte Carlo", "",
             "- command: `python benchmarks/bench_error_cost_nd.py`",
             f"- python {platform.python_version()}, popdens {pd.__version__}; "
             f"{T_END} s simulated, error of the mean rate over {WINDOW} s; cost = "
             "integration wall time per run (median of 2; Monte Carlo: median of 4 seeds)",
             ""]
    for name in BUILD:
        ref = REFS[name]
        lines += [f"## {name}", "",
                  f"Reference: Monte Carlo {len(ref['block_rates'])} x "
                  f"{ref['n_per_block']} neurons, {ref['rate']:.3f} +- "
                  f"{ref['standard_error']:.3f} Hz (block SE); "
                  f"{ref['wall_time_per_block']:.3g} s per block.", "",
                  "| method | size | cost | error (Hz) | estimate (Hz) |",
                  "| --- | --- | ---: | ---: | ---: |"]
        lines += density_rows(name, False)
        if name == "reduced_hh":
            lines += density_rows(name, True)
            lines += density_rows(name, True, **N_WEIGHTED)
        lines += mc_rows(name) + [""]
        OUT.write_text("\n".join(lines) + "\n")
    print("wrote", OUT)
    figure()


if __name__ == "__main__":
    main()
