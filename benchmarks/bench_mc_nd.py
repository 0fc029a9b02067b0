"""Throughput of the N-D Monte Carlo: neuron-steps per second (one core).

Cases (dt = 0.1 ms, every neuron at rest):

- ``hh``: :class:`popdens.HodgkinHuxley`, 2 mV jumps at 4 kHz, internal step 10 us
  (neuron-steps are internal steps), N = 2000, 20 ms;
- ``reduced_hh``: :class:`popdens.ReducedHH`, the same input, N = 4000, 20 ms;
- ``lif_synaptic``: :class:`popdens.LIFSynaptic`, 0.1 mV at 16 kHz (exact integration;
  neuron-steps are reporting steps), N = 20000, 0.1 s.

Compilation is excluded (a warm-up run; ``Result.wall_time`` also excludes it); each
figure is the median of ``--repeats`` runs of ``info["neuron_steps_per_second"]``.

Comparing two versions of popdens on the same machine, interleaved run by run::

    python benchmarks/bench_mc_nd.py --compare /path/to/old/checkout /path/to/new/checkout

Each checkout runs in its own process (``PYTHONPATH`` set to it), alternately, so both
see the same load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CASES = ("hh", "reduced_hh", "lif_synaptic")


def network(case):
    import popdens as pd
    net = pd.Network()
    if case == "lif_synaptic":
        model = pd.LIFSynaptic(tau_m=20e-3, tau_syn=5e-3, v_th=20e-3, v_reset=10e-3,
                               t_ref=2e-3)
        ext = net.add_poisson("ext", rate=16000.0)
        pop = net.add_population("P", model, grid=pd.Grid(v=(-0.005, 0.02, 50),
                                                          i_syn=(-1.0, 3.0, 80)))
        net.connect(ext, pop, weight=0.1e-3)
        return net, 20_000, 0.1
    model = pd.HodgkinHuxley() if case == "hh" else pd.ReducedHH()
    ext = net.add_poisson("ext", rate=4000.0)
    pop = net.add_population("P", model)
    net.connect(ext, pop, weight=2e-3)
    return net, (2000 if case == "hh" else 4000), 0.02


def measure(case, repeats):
    """Neuron-steps per second of ``repeats`` runs (after an untimed warm-up)."""
    net, n, t_end = network(case)
    net.run(t_end=2e-4, dt=1e-4, backend="montecarlo", n_neurons=10, seed=0)
    return [net.run(t_end=t_end, dt=1e-4, backend="montecarlo", n_neurons=n, seed=r
                    ).info["neuron_steps_per_second"] for r in range(repeats)]


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
    print("| case | " + " | ".join(checkouts) + " | ratio (last / first) |")
    print("| --- |" + " ---: |" * (len(checkouts) + 1))
    for case in CASES:
        med = [statistics.median(samples[c][case]) for c in checkouts]
        print(f"| {case} | " + " | ".join(f"{m:.3e}" for m in med)
              + f" | {med[-1] / med[0]:.3f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compare", nargs="+", metavar="CHECKOUT")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.compare:
        compare(args.compare, args.rounds, args.repeats)
        return
    results = {case: measure(case, args.repeats) for case in CASES}
    if args.json:
        print(json.dumps(results))
        return
    for case, values in results.items():
        print(f"{case}: {statistics.median(values):.3e} neuron-steps/s "
              f"(median of {len(values)})")


if __name__ == "__main__":
    main()
