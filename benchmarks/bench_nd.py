"""Benchmark of the N-D density engine: cell-updates per second on synthetic grids, and
the models: a ReducedHH run, an E/I network of two 200 x 200 LIFSynaptic grids (the size
of the conductance-LIF example quoted for another simulator: 16 ms per step, i.e. 200 ns
per cell-step) and the HodgkinHuxley default grid.

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


class SmoothField(pd.Model):
    """A nonlinear drift (not affine along any axis: Runge-Kutta departure points),
    spike plane at x = 0.5; input jumps along x."""

    spike_rule = pd.SpikeSurface("x", 0.5)

    def __init__(self, ndim):
        self.state_vars = ("x", "y", "z", "w")[:ndim]

    @property
    def resting_state(self):
        return (0.3,) * self.ndim

    def default_grid(self, inputs=()):
        raise NotImplementedError("the benchmark passes its grids")

    def params(self):
        return {"ndim": self.ndim}

    def drift(self, *coords):
        coords = np.broadcast_arrays(*[np.asarray(c, float) for c in coords])
        total = sum(coords)
        return tuple(0.4 * np.sin(3.0 * total + d) + 0.3 * np.cos(2.0 * c)
                     for d, c in enumerate(coords))

    def validate_grid(self, grid):
        pass


def cell_update_rate(shape, scheme, repeats):
    model = SmoothField(len(shape))
    grid = pd.Grid(**{n: (0.0, 1.0, s) for n, s in zip(model.state_vars, shape)})
    # at least 2e7 cell-updates per run, so that the fixed cost of a run (assembly
    # excluded: array checks between compiled calls) does not weigh on small grids
    steps = max(20, int(2e7 // grid.num_cells))
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


def ei_network(cells=200):
    """Two coupled LIFSynaptic populations (E, I) on ``cells x cells`` grids, each driven
    by external Poisson input, recurrent excitation and inhibition (three input
    connections per population; 2 ms delays)."""
    grid = pd.Grid(v=(-0.01, 0.02, cells), i_syn=(-3.0, 3.0, cells))
    model = pd.LIFSynaptic(tau_m=20e-3, tau_syn=5e-3, v_th=20e-3, v_reset=10e-3,
                           t_ref=2e-3)
    net = pd.Network()
    exc = net.add_population("E", model, grid=grid)
    inh = net.add_population("I", model, grid=grid)
    ext = net.add_poisson("ext", 8000.0)
    for pop in (exc, inh):
        net.connect(ext, pop, weight=0.15e-3)
        net.connect(exc, pop, weight=0.15e-3, n_syn=100, delay=2e-3)
        net.connect(inh, pop, weight=-0.6e-3, n_syn=25, delay=2e-3)
    return net


def model_step_cost(net, t_end, repeats, dt=1e-4):
    """Median wall time per reporting step and per cell-step of a network run."""
    NDDensitySimulation(net, 10 * dt, dt).run()     # compile
    walls = []
    for _ in range(repeats):
        sim = NDDensitySimulation(net, t_end, dt)
        res = sim.run()
        walls.append(res.wall_time)
    wall = float(np.median(walls))
    steps = round(t_end / dt)
    cells = sum(p.grid.num_cells for p in sim.pops)
    return wall / steps, wall / (steps * sim.n_sub * cells), res


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
    per_step, per_cell, res = model_step_cost(ei_network(), 0.05 if args.quick else 0.3,
                                              repeats)
    lines += ["", "## E/I network of two 200 x 200 LIFSynaptic grids", "",
              f"dt = 0.1 ms (one sub-step), three input connections per population "
              f"(two jump stages: the external and the recurrent excitatory events make "
              f"the same jump, so they are one Poisson stream): "
              f"{per_step * 1e3:.3g} ms per step, {per_cell * 1e9:.3g} ns per cell-step, "
              f"{200e-9 / per_cell:.1f}x faster per cell-step than the quoted 16 ms per "
              f"step for two 200 x 200 conductance-LIF grids (200 ns per cell-step); "
              f"rates E / I over the second half {res.mean_rate('E', res.t[-1] / 2):.1f} / "
              f"{res.mean_rate('I', res.t[-1] / 2):.1f} Hz."]
    print(lines[-1])
    hh = pd.Network()
    pop = hh.add_population("HH", pd.HodgkinHuxley())
    hh.connect(hh.add_poisson("ext", 2000.0), pop, weight=2e-3)
    per_step, per_cell, res = model_step_cost(hh, 0.005 if args.quick else 0.02, 1)
    cells = res.grids["HH"].num_cells
    lines += ["", "## HodgkinHuxley, default grid", "",
              f"{' x '.join(map(str, res.grids['HH'].shape))} = {cells:.3g} cells, 2 mV "
              f"jumps at 2 kHz, dt = 0.1 ms: {per_step:.3g} s per step, "
              f"{per_cell * 1e9:.3g} ns per cell-step ({1 / per_cell:.3g} cell-updates/s), "
              f"{per_step * 1e4:.0f} s per simulated second."]
    print(lines[-1])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
