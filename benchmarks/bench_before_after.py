"""Speed of two versions of popdens side by side: 1D density, 1D Monte Carlo, 2D and 4D density.

The four figures issue 14 asks for before and after the one-engine redesign, measured on
the same machine in the same session, each version in its own process
(``PYTHONPATH`` set to its checkout), alternately round by round so both see the same
load::

    python benchmarks/bench_before_after.py --compare /path/to/old /path/to/new
    python benchmarks/bench_before_after.py            # this checkout only

Cases (dt = 0.1 ms, every neuron at rest, one Poisson input; the simulations are what a
user writes, default options of each version):

- ``density_1d``: ``LIF(tau_m=0.05, v_th=1, v_reset=0)``, jumps of 0.03 at 800 Hz, 1000
  cells, 1 s simulated: milliseconds of wall time per simulated second;
- ``montecarlo_1d``: the same network, N = 1e5 neurons, 0.1 s: neuron-steps per second;
- ``density_2d``: ``ReducedHH()`` default grid, 2 mV jumps at 4 kHz, 20 ms: seconds per
  simulated second (the grid is 556 x 200 before the rebalance of the ReducedHH default
  to 1 ``v`` cell per mV and 139 x 200 after it: compare checkouts on one side of it);
- ``density_4d``: ``HodgkinHuxley()`` default grid, the same input, 4 ms: seconds per
  simulated second.

Compilation is excluded (a short untimed warm-up run of each case first); ``Result``'s
``wall_time`` is the time measured. Each figure is the median of ``--repeats`` runs per
round over ``--rounds`` rounds. The 4D "before" and "after" differ in more than speed:
the older engine's internal step was tied to ``dt`` (its answer moved by 4 % with ``dt``),
the newer one picks it from the model and grid alone.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CASES = ("density_1d", "montecarlo_1d", "density_2d", "density_4d")
UNITS = {"density_1d": "ms per simulated s", "montecarlo_1d": "neuron-steps per s",
         "density_2d": "s per simulated s", "density_4d": "s per simulated s"}
HIGHER_IS_BETTER = {"montecarlo_1d"}


def _network(case):
    import popdens as pd
    net = pd.Network()
    if case in ("density_1d", "montecarlo_1d"):
        pop = net.add_population("E", pd.LIF(tau_m=0.05, v_th=1.0, v_reset=0.0),
                                 grid=pd.Grid(v=(-0.5, 1.0, 1000)))
        net.connect(net.add_poisson("ext", rate=800.0), pop, weight=0.03)
        return net
    model = pd.ReducedHH() if case == "density_2d" else pd.HodgkinHuxley()
    pop = net.add_population("P", model)
    net.connect(net.add_poisson("ext", rate=4000.0), pop, weight=2e-3)
    return net


def _one_run(case, t_end):
    net = _network(case)
    if case == "montecarlo_1d":
        res = net.run(t_end, 1e-4, backend="montecarlo", n_neurons=100_000, seed=1)
        return res.info["neuron_steps_per_second"]
    res = net.run(t_end, 1e-4)
    scale = 1e3 if case == "density_1d" else 1.0
    return scale * res.wall_time / t_end


T_END = {"density_1d": 1.0, "montecarlo_1d": 0.1, "density_2d": 0.02, "density_4d": 0.004}


def measure(repeats):
    """Every case: ``repeats`` timed runs after one short untimed warm-up."""
    import warnings
    warnings.simplefilter("ignore")
    out = {}
    for case in CASES:
        _one_run(case, 2e-4)
        out[case] = [_one_run(case, T_END[case]) for _ in range(repeats)]
    return out


def _one_round(checkout, repeats):
    env = dict(os.environ, PYTHONPATH=checkout)
    out = subprocess.run([sys.executable, __file__, "--json", "--repeats", str(repeats)],
                         env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def compare(checkouts, rounds, repeats):
    samples = {c: {case: [] for case in CASES} for c in checkouts}
    for _ in range(rounds):
        for c in checkouts:
            for case, values in _one_round(c, repeats).items():
                samples[c][case].extend(values)
    print("| case | unit | " + " | ".join(checkouts) + " | speed-up (last vs first) |")
    print("| --- | --- |" + " ---: |" * (len(checkouts) + 1))
    for case in CASES:
        med = [statistics.median(samples[c][case]) for c in checkouts]
        gain = med[-1] / med[0] if case in HIGHER_IS_BETTER else med[0] / med[-1]
        print(f"| {case} | {UNITS[case]} | " + " | ".join(f"{m:.4g}" for m in med)
              + f" | {gain:.2f}x |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--compare", nargs="+", metavar="CHECKOUT")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true", help="one repeat, one round")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.rounds = 1, 1
    if args.compare:
        compare(args.compare, args.rounds, args.repeats)
        return
    results = measure(args.repeats)
    if args.json:
        print(json.dumps(results))
        return
    print("| case | unit | median |")
    print("| --- | --- | ---: |")
    for case, values in results.items():
        print(f"| {case} | {UNITS[case]} | {statistics.median(values):.4g} |")


if __name__ == "__main__":
    main()
