"""Throughput of the Monte Carlo backend: neuron-steps per second on one core.

Two cases, each for N = 1e4, 1e5 and 1e6 neurons, dt = 0.1 ms, every neuron starting at
rest:

- ``jump``: the demo model (LIF tau_m = 50 ms, v_th = 1, v_reset = 0) driven by Poisson
  jumps of 0.03 at 800 Hz (0.08 events per neuron-step, about 11 Hz output);
- ``diffusion``: the same model and input as white noise (``input="diffusion"``, one
  Gaussian number per neuron-step plus the Brownian-bridge test near threshold).

The numba kernels are compiled (or loaded from cache) by a warm-up run that is not timed;
each entry is the median of ``--repeats`` runs of the kernel's own wall time
(``Result.wall_time``: preparation of the rate tables and the output arrays excluded).

A second table compares, in the same process and run by run alternately, the 1D LIF
kernel (``kernels/montecarlo.py``, what ``backend="montecarlo"`` runs for LIF networks)
with the model-agnostic compiled loop (``kernels/mc_engine.py`` with ``kernels/mc_lif.py``,
run through ``backends/montecarlo_nd.py``) on the ``jump`` case, the only one the loop
covers (it has no white noise). With the same seed both draw the same random numbers in
the same order, so they simulate the same spikes up to round-off.

Run::

    python benchmarks/bench_montecarlo.py            # full table (about 2 minutes)
    python benchmarks/bench_montecarlo.py --quick    # N = 1e4 and 1e5 only
    python benchmarks/bench_montecarlo.py --only-loop  # the second table only
"""

from __future__ import annotations

import argparse
import platform
import statistics

from _machine import cpu_name  # benchmarks/ is on sys.path when a script runs

import popdens as pd
from popdens.backends import montecarlo_nd

DT = 1e-4
T_END = 0.2  # 2000 steps; includes the rise from rest, as a user's run would


def demo_network(input_kind: str) -> pd.Network:
    net = pd.Network()
    ext = net.add_poisson("ext", 800.0)
    pop = net.add_population("E", pd.LIF(tau_m=0.05, v_th=1.0, v_reset=0.0))
    net.connect(ext, pop, weight=0.03, input=input_kind)
    return net


def measure(net: pd.Network, n_neurons: int, repeats: int) -> dict:
    net.run(2 * DT, DT, backend="montecarlo", n_neurons=10, seed=0)  # JIT warm-up
    walls, res = [], None
    for seed in range(repeats):
        res = net.run(T_END, DT, backend="montecarlo", n_neurons=n_neurons, seed=seed)
        walls.append(res.wall_time)
    wall = statistics.median(walls)
    n_steps = res.t.size
    return {
        "wall": wall,
        "rate": n_neurons * n_steps / wall,
        "events": res.info["input_events"]["E"] / (n_neurons * n_steps),
        "out_rate": res.mean_rate("E", 0.1),
    }


def compare_loop(net: pd.Network, n_neurons: int, repeats: int) -> dict:
    """Median wall time of the 1D LIF kernel and of the compiled loop, run alternately
    (the same load on both), and their mean rates over 0.1-0.2 s of the last seed."""
    runners = {"kernel": lambda seed: net.run(T_END, DT, backend="montecarlo",
                                               n_neurons=n_neurons, seed=seed),
               "loop": lambda seed: montecarlo_nd.run(net, T_END, DT,
                                                      n_neurons=n_neurons, seed=seed)}
    for run in runners.values():
        run(0)   # JIT warm-up (numba's disk cache, or compilation)
    walls = {name: [] for name in runners}
    rates = {}
    for seed in range(repeats):
        for name, run in runners.items():
            res = run(seed)
            walls[name].append(res.wall_time)
            rates[name] = res.mean_rate("E", 0.1)
    n_steps = round(T_END / DT)
    return {name: (statistics.median(w), n_neurons * n_steps / statistics.median(w),
                   rates[name]) for name, w in walls.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="skip N = 1e6")
    parser.add_argument("--only-loop", action="store_true",
                        help="only the comparison of the LIF kernel and the compiled loop")
    args = parser.parse_args(argv)
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]

    print(f"popdens {pd.__version__} Monte Carlo backend on {cpu_name()}, python "
          f"{platform.python_version()}; dt = {DT * 1e3:g} ms, {round(T_END / DT)} steps, "
          f"median of {args.repeats}\n")
    if not args.only_loop:
        print("| input | N | wall (s) | neuron-steps / s | input events / neuron-step "
              "| rate 0.1-0.2 s (Hz) |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for kind in ("jump", "diffusion"):
            net = demo_network(kind)
            for n in sizes:
                m = measure(net, n, args.repeats)
                print(f"| {kind} | {n:.0e} | {m['wall']:.3f} | {m['rate']:.3g} | "
                      f"{m['events']:.3f} | {m['out_rate']:.2f} |", flush=True)
        print()
    print("1D LIF kernel against the compiled loop (jump input, alternating runs):\n")
    print("| N | kernel: neuron-steps / s | loop: neuron-steps / s | loop / kernel "
          "| rate kernel (Hz) | rate loop (Hz) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    net = demo_network("jump")
    for n in sizes:
        m = compare_loop(net, n, args.repeats)
        print(f"| {n:.0e} | {m['kernel'][1]:.3g} | {m['loop'][1]:.3g} | "
              f"{m['loop'][1] / m['kernel'][1]:.3f} | {m['kernel'][2]:.3f} | "
              f"{m['loop'][2]:.3f} |", flush=True)


if __name__ == "__main__":
    main()
