"""An LIF written as equations (``pd.EquationModel``) against the built-in ``pd.LIF``.

Scenario: ``LIF(tau_m=20 ms, v_th=20 mV, v_reset=10 mV, t_ref=2 ms)`` driven by Poisson
jumps of 0.5 mV at 2.5 kHz and -0.3 mV at 400 Hz, dt = 0.1 ms, on the grid
``v = (-10, 20) mV`` with 300 cells; the equation model is

    dv/dt = (e_l - v)/tau_m : volt,  threshold "v > v_th",  reset "v = v_reset".

- Density: both run on the same 1D engine (the text's affine drift gets the exact flow),
  so the cost should match; wall time is the median of ``--repeats`` runs
  (``Result.wall_time``, compilation excluded by a warm-up run), 1 s simulated.
- Monte Carlo: the built-in LIF runs on the 1D LIF kernel (``kernels/montecarlo.py``:
  events at exact times, event-free stretches skipped); the equation model on the
  compiled model-agnostic loop (``kernels/mc_engine.py``) with the update generated from
  its text (``equations/mc_codegen.py``): the same exact exponential flow and exact
  event and threshold times, advanced from event to event. Cost per neuron and simulated
  second, median of ``--repeats`` runs, compilation excluded by a warm-up run (the
  generated module's loop is also cached on disk across processes).

Run::

    python benchmarks/bench_equation_lif.py            # about a minute
    python benchmarks/bench_equation_lif.py --quick

Prints a markdown table and writes ``benchmarks/results/equation_lif.md``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
from pathlib import Path

import numpy as np
from _machine import cpu_name  # benchmarks/ is on sys.path when a script runs

import popdens as pd

PARAMS = dict(tau_m=0.02, v_th=0.02, v_reset=0.01, e_l=0.0, t_ref=2e-3)
GRID = pd.Grid(v=(-0.01, 0.02, 300))
DT = 1e-4
RESULTS = Path(__file__).resolve().parent / "results" / "equation_lif.md"


def equation_lif() -> pd.EquationModel:
    values = {k: v for k, v in PARAMS.items() if k != "t_ref"}
    return pd.EquationModel("dv/dt = (e_l - v)/tau_m : volt", threshold="v > v_th",
                            reset="v = v_reset", refractory=PARAMS["t_ref"],
                            parameters=values)


def network(model) -> pd.Network:
    net = pd.Network()
    pop = net.add_population("E", model, grid=GRID)
    net.connect(net.add_poisson("x", 2500.0), pop, weight=0.5e-3)
    net.connect(net.add_poisson("i", 400.0), pop, weight=-0.3e-3)
    return net


def median_wall(run, repeats: int) -> tuple[float, object]:
    run()   # warm-up: compilation
    results = [run() for _ in range(repeats)]
    return statistics.median(r.wall_time for r in results), results[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    t_density = 0.5 if args.quick else 1.0
    n_mc, t_mc = (2000, 0.1) if args.quick else (10_000, 0.2)

    rows = []
    walls = {}
    for name, model in (("built-in LIF", pd.LIF(**PARAMS)), ("EquationModel", equation_lif())):
        net = network(model)
        wall, res = median_wall(lambda net=net: net.run(t_density, DT, progress=False),
                                args.repeats)
        walls[("density", name)] = wall
        rows.append(("density", name, "1D density", f"{wall * 1e3:.1f} ms per {t_density:g} s",
                     f"{np.mean(res.rates['E'][len(res.rates['E']) // 2:]):.3f}"))
    # alternated runs (a loaded machine's slow phases hit both), after a warm-up each
    nets = {"built-in LIF": network(pd.LIF(**PARAMS)), "EquationModel": network(equation_lif())}

    def run_mc(name):
        return nets[name].run(t_mc, DT, backend="montecarlo", n_neurons=n_mc, seed=1)
    for name in nets:
        run_mc(name)
    samples = {name: [] for name in nets}
    for _ in range(args.repeats):
        for name in nets:
            samples[name].append(run_mc(name))
    for name, results in samples.items():
        per = statistics.median(r.wall_time for r in results) / (n_mc * t_mc) * 1e6
        walls[("mc", name)] = per
        rates = results[-1].rates["E"][len(results[-1].rates["E"]) // 4:]
        engine = "1D LIF kernel" if name == "built-in LIF" else "compiled loop, generated"
        rows.append(("Monte Carlo", name, engine, f"{per:.2f} us per neuron-second",
                     f"{np.mean(rates):.2f}"))

    density_ratio = walls[("density", "EquationModel")] / walls[("density", "built-in LIF")]
    mc_ratio = walls[("mc", "EquationModel")] / walls[("mc", "built-in LIF")]
    lines = [
        "# Equation-defined LIF vs built-in LIF",
        "",
        f"Machine: {cpu_name()} ({platform.machine()}), one core. "
        f"{'--quick' if args.quick else 'full'} run, median of {args.repeats}; shared "
        f"machine (other jobs running: compare ratios, not absolute times).",
        "",
        "| backend | model | engine | wall time | rate [Hz] |",
        "|---|---|---|---|---|",
        *[f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows],
        "",
        f"Density: EquationModel / built-in = {density_ratio:.2f} (same engine; target "
        f"within 1.2).",
    ]
    lines.append(f"Monte Carlo: EquationModel / built-in = {mc_ratio:.2f} (target within "
                 f"1.2; the built-in LIF runs on its own 1D kernel, the text in the "
                 f"compiled model-agnostic loop).")
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
