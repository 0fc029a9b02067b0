"""Benchmark of the N-D density engine: cell-updates per second and a ReducedHH run.

A cell-update is one cell advanced by one full internal sub-step (every drift sweep and
the jump stage). Timings are medians of repeats with the JIT compilation excluded (one
warm-up run first). Writes ``benchmarks/results/nd.md``.

Usage::

    python benchmarks/bench_nd.py            # full
    python benchmarks/bench_nd.py --quick    # small grids, one repeat
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings
from pathlib import Path

import numpy as np
from _machine import cpu_name  # benchmarks/ is on sys.path when a script runs

import popdens as pd
from popdens.backends.density_nd import NDDensitySimulation
from popdens.models import ReducedHH

RESULTS = Path(__file__).parent / "results" / "nd.md"


class SmoothField:
    """A nonlinear drift (not affine along any axis: Runge-Kutta departure points),
    spike plane at x = 0.5; input jumps along x."""

    def __init__(self, ndim):
        self.ndim = ndim
        self.state_vars = ("x", "y", "z", "w")[:ndim]
        self.input_var = "x"
        self.spike_surface = ("x", 0.5)
        self.resting_state = (0.3,) * ndim

    def drift(self, *coords):
        coords = np.broadcast_arrays(*[np.asarray(c, float) for c in coords])
        total = sum(coords)
        return tuple(0.4 * np.sin(3.0 * total + d) + 0.3 * np.cos(2.0 * c)
                     for d, c in enumerate(coords))

    def validate_grid(self, grid):
        pass


def cell_update_rate(shape, scheme, repeats, steps=20):
    model = SmoothField(len(shape))
    grid = pd.Grid(**{n: (0.0, 1.0, s) for n, s in zip(model.state_vars, shape)})
    net = pd.Network()
    pop = net.add_population("P", model, grid=grid,
                             init=lambda *c: np.exp(-sum((x - 0.4) ** 2 for x in c) / 0.02))
    net.connect(net.add_poisson("ext", 200.0), pop, weight=2.0 / shape[0])
    dt = 1e-3
    times = []
    for r in range(repeats + 1):
        sim = NDDensitySimulation(net, steps * dt, dt, scheme=scheme, max_substep=dt)
        start = time.perf_counter()
        with warnings.catch_warnings():
            # this synthetic field piles mass at the grid end; irrelevant to the timing
            warnings.filterwarnings("ignore", "population 'P'", RuntimeWarning)
            sim.run()
        if r > 0:     # the first run includes compilation
            times.append(time.perf_counter() - start)
    wall = float(np.median(times))
    return grid.num_cells * steps * sim.n_sub / wall, wall / (steps * sim.n_sub)


def reduced_hh_run(shape, t_end, repeats):
    model = ReducedHH()
    grid = pd.Grid(v=(-0.083, 0.057, shape[0]), n=(0.0, 1.0, shape[1]))
    net = pd.Network()
    pop = net.add_population("P", model, grid=grid)
    net.connect(net.add_poisson("ext", pd.piecewise([0.0, t_end / 2], [2000.0, 4000.0])),
                pop, weight=2e-3)
    NDDensitySimulation(net, 1e-3, 1e-4).run()     # compile
    walls, preps = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        sim = NDDensitySimulation(net, t_end, 1e-4)
        preps.append(time.perf_counter() - start)
        res = sim.run()
        walls.append(res.wall_time)
    return (float(np.median(walls)), float(np.median(preps)), sim.n_sub,
            res.mean_rate("P", t_end / 2, t_end))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small grids, one repeat")
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else 3
    sizes = {2: [(64, 64), (256, 256)], 3: [(32, 32, 32), (64, 64, 64)],
             4: [(16, 16, 16, 16), (32, 24, 24, 24)]}
    if args.quick:
        sizes = {2: [(64, 64)], 3: [(24, 24, 24)], 4: [(12, 12, 12, 12)]}
    lines = ["# N-D density engine benchmark", "",
             f"Machine: {cpu_name()}, python {platform.python_version()}, "
             f"one thread; median of {repeats} run(s), compilation excluded.", "",
             "## Cell-updates per second (one cell, one full sub-step: every drift sweep "
             "+ jump stage)", "",
             "| grid | scheme | cell-updates/s | s per sub-step |", "| --- | --- | --- | --- |"]
    for ndim in (2, 3, 4):
        for shape in sizes[ndim]:
            for scheme in ("mc", "upwind"):
                rate, per = cell_update_rate(shape, scheme, repeats)
                lines.append(f"| {'x'.join(map(str, shape))} | {scheme} | {rate:.3g} | "
                             f"{per:.3g} |")
                print(lines[-1], flush=True)
    t_end = 0.1 if args.quick else 1.0
    # 0.5 mV cells: the 2 mV jumps are whole cells (a fractional jump takes the slower,
    # line-wise remap path)
    wall, prep, n_sub, rate = reduced_hh_run((280, 100), t_end, 1)
    lines += ["", "## ReducedHH", "",
              f"280 x 100 cells, 2 mV jumps at 2 kHz then 4 kHz, dt = 0.1 ms "
              f"(n_sub = {n_sub}): {t_end:g} s simulated in {wall:.1f} s "
              f"(+ {prep:.1f} s assembly; rate in the second half {rate:.1f} Hz)."]
    print(lines[-1])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
