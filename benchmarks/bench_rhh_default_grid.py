"""ReducedHH default grid before / after the rebalance (4 -> 1 ``v`` cell per mV).

Runs each case on the old proportions (``v_cells_per_mv=4``, the ``n`` axis as the default
sizes it), on 1 ``v`` cell per mV, and on the current ``ReducedHH.default_grid`` (1 per mV
for input noise of at least 8e-3 V^2/s, else 4), in the same process, and prints
the rate, its error against an independent Monte Carlo reference, and the wall and CPU
time of the density run (JIT warm-up excluded: every grid is run once before it is timed).

Cases and references:

- ``bench``: 2 mV jumps at 4 kHz from rest, rate over [30, 100) ms
  (``benchmarks/errest_references.py``: 85.771 +- 0.021 Hz, 10 x 2e4 neurons);
- ``weak-*``: the README's weak-noise table (mean drive 4 V/s, rate over [30, 100) ms,
  Monte Carlo N = 2e4 recorded in the README);
- ``ei``: notebook 04's E/I network of ReducedHH populations (conductance synapses,
  1 ms delays), rate of E over [50, 60) ms, Monte Carlo 61.6 Hz (mean of 5 seeds of
  N = 1e4, seed-to-seed SD 0.3-1.2 Hz, quoted in the notebook).

Run::

    python benchmarks/bench_rhh_default_grid.py            # all cases
    python benchmarks/bench_rhh_default_grid.py bench ei   # some
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from errest_references import T_END, WINDOW

import popdens as pd

REFS = Path(__file__).resolve().parent.parent / "tests" / "data" / "errest_references.json"
OLD_V_CELLS_PER_MV = 4.0

# (jump in V, rate in Hz, Monte Carlo rate, its SE): README weak-noise table
WEAK = {"weak-2mV": (2e-3, 2000.0, 66.07, 0.22), "weak-1mV": (1e-3, 4000.0, 60.22, 0.21),
        "weak-0.5mV": (0.5e-3, 8000.0, 51.41, 0.19),
        "weak-0.25mV": (0.25e-3, 16000.0, 37.52, 0.16)}


class FixedVResolution(pd.ReducedHH):
    """ReducedHH whose default grid has a fixed ``v`` resolution (n axis as the default)."""

    def __init__(self, v_cells_per_mv):
        super().__init__()
        self.v_cells_per_mv = v_cells_per_mv

    def default_grid(self, inputs=(), v_cells_per_mv=None, gate_cells=None):
        return super().default_grid(inputs, v_cells_per_mv=self.v_cells_per_mv,
                                    gate_cells=gate_cells)


def bench_network(model):
    """``errest_references.reduced_hh`` with the given model."""
    net = pd.Network()
    pop = net.add_population("P", model)
    net.connect(net.add_poisson("ext", 4000.0), pop, weight=2e-3)
    return net


def weak_network(model, jump, rate):
    net = pd.Network()
    pop = net.add_population("P", model)
    net.connect(net.add_poisson("ext", rate), pop, weight=jump)
    return net


def ei_network(model):
    """Notebook 04's E/I network, every population on the model's default grid."""
    net = pd.Network()
    ext = net.add_poisson("ext", rate=pd.piecewise([0.0, 0.05], [1500.0, 2500.0]))
    exc = net.add_population("E", model)
    inh = net.add_population("I", model)
    for pop in (exc, inh):
        net.connect(ext, pop, weight=2e-3)
        net.connect(exc, pop, weight=1e-3, n_syn=20, delay=1e-3)
        net.connect(inh, pop, weight=0.02, n_syn=10, delay=1e-3, reversal=-0.08)
    return net


def timed(net, t_end, pop, window):
    """Rate over ``window``, wall and CPU time (s) and grid shape of a warmed-up run."""
    net.run(2e-4, 1e-4, progress=False)   # JIT warm-up (the kernels are shared)
    cpu = time.process_time()
    res = net.run(t_end, 1e-4, progress=False)
    cpu = time.process_time() - cpu
    return res.mean_rate(pop, *window), res.wall_time, cpu, res.grids[pop].shape


def cases():
    ref = json.loads(REFS.read_text())["reduced_hh"]
    yield ("bench", lambda m: (bench_network(m), T_END, "P", WINDOW), ref["rate"],
           ref["standard_error"])
    for name, (jump, rate, mc, se) in WEAK.items():
        yield (name, lambda m, j=jump, r=rate: (weak_network(m, j, r), 0.1, "P", (0.03, 0.1)),
               mc, se)
    yield "ei", lambda m: (ei_network(m), 0.1, "E", (0.05, 0.06)), 61.6, 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="cases to run (default: all)")
    args = parser.parse_args()
    print("| case | grid | rate (Hz) | error (Hz) | error (%) | wall (s) | CPU (s) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for name, build, ref, se in cases():
        if args.names and name not in args.names:
            continue
        variants = (("old (4 per mV)", FixedVResolution(OLD_V_CELLS_PER_MV)),
                    ("1 per mV", FixedVResolution(1.0)), ("default", pd.ReducedHH()))
        for label, model in variants:
            value, wall, cpu, shape = timed(*build(model))
            err = value - ref
            print(f"| {name} (ref {ref:.3f} +- {se:.3f}) | {label} {shape[0]} x {shape[1]} "
                  f"| {value:.3f} | {err:+.3f} | {100 * err / ref:+.2f} | {wall:.2f} "
                  f"| {cpu:.2f} |", flush=True)


if __name__ == "__main__":
    main()
