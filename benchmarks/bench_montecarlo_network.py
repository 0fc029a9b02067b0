"""Speed of the Monte Carlo spiking network: Brunel's (2000) model A, fixed in-degree.

Scenario: ``popdens.examples.brunel_network(g=5, eta=2)`` (asynchronous irregular state,
about 37 Hz): E and I populations of LIF neurons, C_E = 1000 and C_I = 250 random
presynaptic partners per neuron, J = 0.1 mV, -gJ, D = 1.5 ms, external Poisson input at
20 kHz per neuron; dt = 0.1 ms. Sizes N_E = 2500, 5000, 10000 (and 20000 without
``--quick``) with N_I = N_E / 4; the in-degrees stay those of the model (so the smallest
network is the densest). Both engines of the backend are timed: ``timing="grid"``
(step-resolution input, as NEST and Brian2) at all sizes and ``timing="exact"`` (Poisson
events at their exact times; 5x slower here) at two (``--quick``: one), with runs half
as long. A last row times a sparser variant, C_E = 100 and J = 1 mV (10x fewer
synapses and external events per neuron, the same mean input), where the neuron update
rather than spike delivery dominates.

Each configuration runs ``--warm`` simulated seconds first (numba compilation, wiring and
the transient are outside the timing: the wiring is rebuilt, the kernel is cached), then
``--repeats`` runs of ``--duration`` simulated seconds with different seeds; the table
shows medians of

- wall time of the time loop per simulated second (``Result.wall_time``; wiring excluded),
  and its CPU time (``Result.info["cpu_time"]``, the process's CPU time in the loop, which
  is what one core delivers when the machine is shared);
- neuron-steps per second (neurons x steps / time) and delivered synaptic events per
  second (spikes x out-degree / time), both per wall and per CPU second;
- the wiring time (drawing partners and building the out-going adjacency, per run);
- the E rate over the second half of the timed run (Hz), a check of the state.

Run::

    python benchmarks/bench_montecarlo_network.py            # about 1 minute (31 s measured)
    python benchmarks/bench_montecarlo_network.py --quick    # about 10 seconds

The table is printed and written to ``benchmarks/results/montecarlo_network.md``.
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
from popdens.examples import brunel_network

DT = 1e-4
RESULTS = Path(__file__).resolve().parent / "results" / "montecarlo_network.md"


def measure(n_e: int, timing: str, duration: float, repeats: int, c_e: int = 1000) -> dict:
    """Median timings of ``repeats`` runs of ``duration`` s of the g=5, eta=2 network
    (in-degree ``c_e``, J scaled as 1000 / c_e x 0.1 mV to keep the mean input)."""
    net = brunel_network(g=5.0, eta=2.0, c_e=c_e, j=0.1e-3 * 1000 / c_e)
    sizes = {"E": n_e, "I": n_e // 4}
    n_total = sum(sizes.values())
    # warm-up: compiles (or loads) the kernels for these argument types
    net.run(5 * DT, DT, backend="montecarlo", n_neurons=sizes, seed=0, timing=timing)
    rows = []
    for seed in range(1, repeats + 1):
        started = time.perf_counter()
        res = net.run(duration, DT, backend="montecarlo", n_neurons=sizes, seed=seed,
                      timing=timing)
        total = time.perf_counter() - started
        events = sum(res.info["delivered_events"].values())
        steps = n_total * res.info["n_steps"]
        rows.append({
            "wall": res.wall_time, "cpu": res.info["cpu_time"],
            "setup": total - res.wall_time,
            "steps_wall": steps / res.wall_time, "steps_cpu": steps / res.info["cpu_time"],
            "events_wall": events / res.wall_time, "events_cpu": events / res.info["cpu_time"],
            "rate": res.mean_rate("E", duration / 2),
        })
    out = {key: statistics.median(r[key] for r in rows) for key in rows[0]}
    out.update(n_e=n_e, n_total=n_total, timing=timing, duration=duration, c_e=c_e)
    return out


def table(results: list[dict], args) -> str:
    head = [
        "# Monte Carlo spiking network: Brunel (2000) model A, fixed in-degree",
        "",
        f"- command: `python benchmarks/bench_montecarlo_network.py"
        f"{' --quick' if args.quick else ''}`",
        f"- machine: {cpu_name()} ({platform.machine()}), python "
        f"{sys.version.split()[0]}, numba {numba.__version__}, popdens {pd.__version__}; "
        f"one core (numba kernels are single-threaded)",
        "- scenario: `brunel_network(g=5, eta=2)`, C_E = 1000, C_I = 250, D = 1.5 ms, "
        "external 20 kHz per neuron, dt = 0.1 ms, N_I = N_E / 4; "
        f"{args.duration} s simulated per run with timing='grid', half that with 'exact' "
        f"(E rate over the second half of a run), median of {args.repeats} seeds",
        f"- load average when the table was written: "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} (on {os.cpu_count()} cores)",
        "- wall and CPU time of the time loop per simulated second; rates per wall second "
        "(per CPU second in brackets: on a shared machine the CPU figures are what one "
        "core delivers); wiring = drawing partners and building the adjacency, per run",
        "",
        "| timing | C_E | N_E + N_I | wall / sim. s | CPU / sim. s | neuron-steps / s | "
        "delivered events / s | wiring | E rate (Hz) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines = []
    for r in results:
        lines.append(
            f"| {r['timing']} | {r['c_e']} | {r['n_total']} | "
            f"{r['wall'] / r['duration']:.2f} s | "
            f"{r['cpu'] / r['duration']:.2f} s | {r['steps_wall']:.3g} "
            f"({r['steps_cpu']:.3g}) | {r['events_wall']:.3g} ({r['events_cpu']:.3g}) | "
            f"{r['setup']:.2f} s | {r['rate']:.1f} |")
    return "\n".join(head + lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer sizes and repeats, shorter runs")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--duration", type=float, default=None,
                        help="simulated seconds per timed run")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 2 if args.quick else 3
    if args.duration is None:
        args.duration = 0.1 if args.quick else 0.3
    # the exact engine is 5x slower at this input rate: fewer sizes, shorter runs
    plan = [("grid", n_e, args.duration, 1000) for n_e in
             ((2500, 10_000) if args.quick else (2500, 5000, 10_000, 20_000))]
    plan += [("exact", n_e, args.duration / 2, 1000) for n_e in
             ((2500,) if args.quick else (2500, 10_000))]
    # a sparser variant: 10x fewer synapses and external events per neuron
    plan += [("grid", 10_000, args.duration, 100)]
    results = []
    for timing, n_e, duration, c_e in plan:
        r = measure(n_e, timing, duration, args.repeats, c_e)
        print(f"{timing:5s} N={r['n_total']:6d}: {r['steps_wall']:.3g} neuron-steps/s "
              f"({r['steps_cpu']:.3g} per CPU s), {r['events_wall']:.3g} events/s "
              f"({r['events_cpu']:.3g}), E {r['rate']:.1f} Hz", flush=True)
        results.append(r)
    text = table(results, args)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
