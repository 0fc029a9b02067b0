"""Hodgkin-Huxley 4D density: active tiles against the full sweep (issue 15).

The case of issue 15: ``pd.HodgkinHuxley()`` on its default grid (70 x 30 x 30 x 30 =
1.89e6 cells), 2 mV jumps in v at 2 kHz on [0, 0.1) s and 4 kHz on [0.1, 0.2) s, start
at rest; rates averaged over [0.05, 0.1) and [0.15, 0.2) s. Runs, in one process after a
JIT warm-up on a small grid: the tiled engine at ``dt = 1e-4`` and ``5e-5`` and the full
sweep at ``dt = 1e-4`` (baseline; its final state is compared with the tiled run's, bit
for bit). Reports the integration wall time (``Result.wall_time``, assembly excluded) and the
process CPU time of the run (on a machine shared with other jobs, the wall time includes
waiting for a core),
the segment rates against Brian2 (46.5 / 63.6 Hz, N = 2e4) and the project's HH Monte
Carlo (46.66 / 63.94 Hz), and at 50, 100 and 200 ms the fraction of cells holding more
than 0 and more than 1e-12 of the mass and the fraction of active tiles. Writes
``benchmarks/results/hh4d_tiles.md``.

Usage::

    python benchmarks/bench_hh4d_tiles.py            # about 10 minutes on 2 busy cores
    python benchmarks/bench_hh4d_tiles.py --quick    # 20 ms runs, no full-sweep baseline
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
from _machine import cpu_name  # benchmarks/ is on sys.path when a script runs

import popdens as pd
from popdens.backends.density_nd import NDDensitySimulation
from popdens.kernels.nd_tiles import mark_tiles

RESULTS = Path(__file__).resolve().parent / "results" / "hh4d_tiles.md"
T_END = 0.2
SEGMENTS = ((0.05, 0.1), (0.15, 0.2))
RATES = (2000.0, 4000.0)
WEIGHT = 2e-3
BRIAN2 = (46.5, 63.6)
MONTE_CARLO = (46.66, 63.94)
SNAPSHOTS = (0.05, 0.1, 0.2)


def build(grid=None):
    net = pd.Network()
    ext = net.add_poisson("ext", rate=pd.piecewise([0.0, 0.1], list(RATES)))
    pop = net.add_population("HH", pd.HodgkinHuxley(), grid=grid)
    net.connect(ext, pop, weight=WEIGHT)
    return net


def occupancy(sim, res):
    """Per snapshot time: fraction of cells with mass > 0, > 1e-12, of active tiles."""
    pop = sim.pops[0]
    rows = []
    volume = pop.grid.cell_volume
    for t, rho in zip(res.record_times, res.densities["HH"]):
        mass = (rho * volume).ravel()
        flags = np.zeros_like(pop.tiles.flags)
        if pop.tiles.enabled:
            mark_tiles(mass, pop.tiles, flags)
        rows.append((t, float(np.mean(mass > 0)), float(np.mean(mass > 1e-12)),
                     float(flags.mean()) if pop.tiles.enabled else 1.0))
    return rows


def run(t_end, dt, tiles):
    sim = NDDensitySimulation(build(), t_end=t_end, dt=dt, tiles=tiles)
    # two consecutive internal steps per snapshot: the sweep order alternates, and the
    # state after a backward step (v swept last) has more nonzero cells
    times = sorted({round(t - k * 1e-4, 10) for t in SNAPSHOTS + (t_end,)
                    for k in (1, 2) if t <= t_end + 1e-9})
    cpu = time.process_time()
    res = sim.run(record_times=times, progress=False)
    res.info["cpu_time"] = time.process_time() - cpu
    rates = [res.mean_rate("HH", a, b) if b <= t_end + 1e-9 else float("nan")
             for a, b in SEGMENTS]
    return sim, res, rates


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 ms runs, no baseline")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    t_end = 0.02 if args.quick else T_END
    hh = pd.HodgkinHuxley()
    small = hh.default_grid([(max(RATES), WEIGHT, "jump")], v_cells_per_mv=0.25,
                            gate_cells=6)
    for tiles in (True, False):      # JIT warm-up of both paths
        NDDensitySimulation(build(small), t_end=2e-3, dt=1e-4, tiles=tiles).run(
            progress=False)
    cases = [(1e-4, True), (5e-5, True)] + ([] if args.quick else [(1e-4, False)])
    lines = ["# Hodgkin-Huxley 4D: active tiles vs full sweep", "",
             f"- command: `python benchmarks/bench_hh4d_tiles.py"
             f"{' --quick' if args.quick else ''}`",
             f"- machine: {cpu_name()}, python {platform.python_version()}, "
             f"popdens {pd.__version__}; one core (shared with other jobs)",
             "- scenario: default grid, 2 mV jumps at 2 kHz then 4 kHz, start at rest; "
             "rates over [50, 100) and [150, 200) ms; references: Brian2 46.5 / 63.6 Hz "
             "(N = 2e4), popdens Monte Carlo 46.66 / 63.94 Hz",
             "",
             "| engine | dt (ms) | internal step (ms) | wall (s) | CPU (s) | rates (Hz) | "
             "vs Brian2 | vs Monte Carlo |",
             "| --- | ---: | ---: | ---: | ---: | --- | --- | --- |"]
    occupancy_rows = []
    finals = {}
    for dt, tiles in cases:
        sim, res, rates = run(t_end, dt, tiles)
        finals[(dt, tiles)] = sim.pops[0].mass.copy()
        name = "tiled" if tiles else "full sweep"
        rel_b = " / ".join(f"{100 * (r / b - 1):+.1f} %" for r, b in zip(rates, BRIAN2))
        rel_m = " / ".join(f"{100 * (r / m - 1):+.1f} %" for r, m in zip(rates, MONTE_CARLO))
        lines.append(f"| {name} | {dt * 1e3:g} | {res.info['dt_sub'] * 1e3:g} | "
                     f"{res.wall_time:.1f} | {res.info['cpu_time']:.1f} | "
                     + " / ".join(f"{r:.2f}" for r in rates) + f" | {rel_b} | {rel_m} |")
        print(lines[-1], flush=True)
        if tiles and dt == 1e-4:
            occupancy_rows = occupancy(sim, res)
    if (1e-4, False) in finals:
        same = np.array_equal(finals[(1e-4, False)], finals[(1e-4, True)])
        lines += ["", f"Final state of the tiled run identical to the full sweep's: {same}"]
    lines += ["", "| t (ms) | cells with mass > 0 | cells > 1e-12 | active tiles (2^4 cells) |",
              "| ---: | ---: | ---: | ---: |"]
    for t, nonzero, above, active in occupancy_rows:
        lines.append(f"| {t * 1e3:.1f} | {100 * nonzero:.2f} % | {100 * above:.2f} % | "
                     f"{100 * active:.2f} % |")
    for line in lines[-len(occupancy_rows) - 4:]:
        print(line, flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines) + "\n")
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
