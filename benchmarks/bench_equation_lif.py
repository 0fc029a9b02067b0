"""An LIF written as equations (``pd.EquationModel``) against the built-in ``pd.LIF``.

Scenario: ``LIF(tau_m=20 ms, v_th=20 mV, v_reset=10 mV, t_ref=2 ms)`` driven by Poisson
jumps of 0.5 mV at 2.5 kHz and -0.3 mV at 400 Hz, dt = 0.1 ms, on the grid
``v = (-10, 20) mV`` with 300 cells; the equation model is

    dv/dt = (e_l - v)/tau_m : volt,  threshold "v > v_th",  reset "v = v_reset".

- Density: both run on the same 1D engine (the text's affine drift gets the exact flow),
  so the cost should match; wall time is the median of ``--repeats`` runs
  (``Result.wall_time``, compilation excluded by a warm-up run), 1 s simulated.
- Monte Carlo: the built-in LIF runs on the compiled LIF kernel (events at exact times,
  one 0.1 ms step); the equation model on the NumPy interface engine (``internal_dt``
  10 us by default; also shown at 0.1 ms, its first-order step). Cost per neuron and
  simulated second, median of ``--repeats`` runs.

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
    n_mc, t_mc = (1000, 0.1) if args.quick else (2000, 0.2)

    rows = []
    walls = {}
    for name, model in (("built-in LIF", pd.LIF(**PARAMS)), ("EquationModel", equation_lif())):
        net = network(model)
        wall, res = median_wall(lambda net=net: net.run(t_density, DT, progress=False),
                                args.repeats)
        walls[("density", name)] = wall
        rows.append(("density", name, "-", f"{wall * 1e3:.1f} ms per {t_density:g} s",
                     f"{np.mean(res.rates['E'][len(res.rates['E']) // 2:]):.3f}"))
    mc_runs = (("built-in LIF", pd.LIF(**PARAMS), {}),
               ("EquationModel", equation_lif(), {"internal_dt": DT}),
               ("EquationModel", equation_lif(), {}))
    for name, model, options in mc_runs:
        net = network(model)
        wall, res = median_wall(lambda net=net, options=options: net.run(
            t_mc, DT, backend="montecarlo", n_neurons=n_mc, seed=1, **options),
            args.repeats)
        step = res.info.get("internal_dt", DT)
        per = wall / (n_mc * t_mc) * 1e6
        walls[("mc", name, step)] = per
        rows.append(("Monte Carlo", name, f"{step * 1e6:g} us", f"{per:.2f} us per "
                     f"neuron-second", f"{np.mean(res.rates['E'][len(res.rates['E']) // 4:]):.2f}"))

    density_ratio = walls[("density", "EquationModel")] / walls[("density", "built-in LIF")]
    builtin_mc = walls[("mc", "built-in LIF", DT)]
    lines = [
        "# Equation-defined LIF vs built-in LIF",
        "",
        f"Machine: {cpu_name()} ({platform.machine()}), one core. "
        f"{'--quick' if args.quick else 'full'} run, median of {args.repeats}.",
        "",
        "| backend | model | internal step | wall time | rate [Hz] |",
        "|---|---|---|---|---|",
        *[f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows],
        "",
        f"Density: EquationModel / built-in = {density_ratio:.2f} (same engine; target "
        f"within 1.2).",
    ]
    for key, per in walls.items():
        if key[0] == "mc" and key[1] == "EquationModel":
            lines.append(f"Monte Carlo: EquationModel at {key[2] * 1e6:g} us / built-in "
                         f"compiled LIF = {per / builtin_mc:.0f}x (NumPy interface engine, "
                         f"not compiled).")
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
