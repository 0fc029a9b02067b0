"""The Potjans-Diesmann cortical column: cost of the fused 1D stepper and of steady_state.

Network: :func:`popdens.examples.column_network` on DiPDE's grid (225 cells of 0.2 mV
per population), 8 LIF populations, 55 recurrent + 8 background connections, fractional
synapse counts. Parameters from T. C. Potjans & M. Diesmann (2014), Cereb. Cortex
24:785-806, in the reduced form of DiPDE's example
``dipde/examples/potjans_diesmann_cortical_column.py`` (AllenInstitute/dipde).

Measured, each as the median of ``--repeats`` runs (numba compilation excluded by a
warm-up run): wall time per simulated second of a density run (dt = 0.1 ms), the
cell-updates per second (cells x internal steps / wall time), and the wall and CPU time
of ``steady_state`` against a 0.5 s run (which reaches the same state; CPU time is the
fairer comparison on a shared machine, whose load is recorded), with the largest rate
difference between the two (run: mean over its last 0.1 s).

Run::

    python benchmarks/bench_column.py               # about 1 minute
    python benchmarks/bench_column.py --repeats 1   # quicker

The table is printed and written to ``benchmarks/results/column.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numba
from _machine import cpu_name  # benchmarks/ is on sys.path when a script runs

import popdens as pd
from popdens.examples import COLUMN_GRID, column_network

RESULTS = Path(__file__).resolve().parent / "results" / "column.md"
DT = 1e-4


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--t-end", type=float, default=0.5)
    args = parser.parse_args(argv)
    net = column_network(grid=COLUMN_GRID)
    net.run(10 * DT, DT, progress=False)            # compile / load the kernels
    pd.steady_state(column_network(grid=pd.Grid(v=(-0.03, 0.015, 45))))
    walls, cpus, run = [], [], None
    for _ in range(args.repeats):
        start = time.process_time()
        run = net.run(args.t_end, DT, progress=False)
        cpus.append(time.process_time() - start)
        walls.append(run.wall_time)
    wall = statistics.median(walls)
    cells = sum(g.num_cells for g in run.grids.values())
    updates = cells * run.info["n_sub"] * round(args.t_end / DT) / wall
    per_step = wall / (8 * run.info["n_sub"] * round(args.t_end / DT))
    steady_walls, steady_cpus, ss = [], [], None
    for _ in range(args.repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        ss = pd.steady_state(net)
        steady_cpus.append(time.process_time() - start_cpu)
        steady_walls.append(time.perf_counter() - start)
    steady_wall = statistics.median(steady_walls)
    tail = round(0.1 / DT)
    diff = max(abs(ss.rates[k] - run.rates[k][-tail:].mean()) for k in ss.rates)
    lines = [
        "# Cortical column (Potjans-Diesmann as in DiPDE): fused 1D stepper and steady_state",
        "",
        f"- command: `python benchmarks/bench_column.py {' '.join(argv or sys.argv[1:])}`",
        f"- machine: {cpu_name()}, python {platform.python_version()}, numba "
        f"{numba.__version__}, popdens {pd.__version__}",
        f"- network: 8 populations x {cells // 8} cells, {len(net.connections)} "
        f"connections, dt = {DT * 1e3:g} ms, {run.info['n_sub']} internal steps per dt; "
        f"medians of {args.repeats} runs",
        "- load average (1, 5, 15 min) at the end: "
        + ", ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cores",
        "",
        "| quantity | value |",
        "| --- | ---: |",
        f"| density run: wall / simulated s | {wall / args.t_end:.3f} s |",
        f"| cell-updates / s | {updates:.3g} |",
        f"| wall per population and internal step | {per_step * 1e6:.2f} us |",
        f"| {args.t_end:g} s run | {wall:.2f} s |",
        f"| steady_state | {steady_wall:.2f} s |",
        f"| {args.t_end:g} s run, CPU | {statistics.median(cpus):.2f} s |",
        f"| steady_state, CPU | {statistics.median(steady_cpus):.2f} s |",
        f"| largest rate difference steady_state vs run (last 0.1 s) | {diff:.2e} Hz |",
        "",
        "| population | steady_state (Hz) | run, last 0.1 s (Hz) |",
        "| --- | ---: | ---: |",
    ]
    for k in ss.rates:
        lines.append(f"| {k} | {ss.rates[k]:.4f} | {run.rates[k][-tail:].mean():.4f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
