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

Run::

    python benchmarks/bench_montecarlo.py            # full table (about 2 minutes)
    python benchmarks/bench_montecarlo.py --quick    # N = 1e4 and 1e5 only
"""

from __future__ import annotations

import argparse
import platform
import statistics

from _machine import cpu_name  # benchmarks/ is on sys.path when a script runs

import popdens as pd

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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="skip N = 1e6")
    args = parser.parse_args(argv)
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]

    print(f"popdens {pd.__version__} Monte Carlo backend on {cpu_name()}, python "
          f"{platform.python_version()}; dt = {DT * 1e3:g} ms, {round(T_END / DT)} steps, "
          f"median of {args.repeats}\n")
    print("| input | N | wall (s) | neuron-steps / s | input events / neuron-step "
          "| rate 0.1-0.2 s (Hz) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for kind in ("jump", "diffusion"):
        net = demo_network(kind)
        for n in sizes:
            m = measure(net, n, args.repeats)
            print(f"| {kind} | {n:.0e} | {m['wall']:.3f} | {m['rate']:.3g} | "
                  f"{m['events']:.3f} | {m['out_rate']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
