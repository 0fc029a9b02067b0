"""Cost of checkpoints: size of a checkpoint file and time to write one, per backend.

A run with ``checkpoint=`` writes its result so far (with ``info["state"]``) every
``checkpoint_every`` seconds of wall time; the overhead is the write time divided by that
interval. Cases (dt = 0.1 ms, 0.1 s simulated):

- ``density 1D``: two coupled LIF populations, default grids;
- ``density N-D``: one LIFSynaptic population, 60 x 40 cells;
- ``montecarlo 1D``: two coupled LIF populations, 20,000 neurons each, fixed in-degree
  (200 synapses per neuron, 1.5 ms delays: the spike ring buffers are in the state);
- ``montecarlo N-D``: one LIFSynaptic population of 20,000 neurons.

Each figure is the median of ``--repeats`` writes (``continuation.write_atomically``,
temporary file then rename) of the finished result, and the run's own wall time for
comparison (compilation excluded by a warm-up run).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def _lif_pair(pd):
    net = pd.Network()
    e = net.add_population("E", pd.LIF(tau_m=0.02, v_th=0.02, v_reset=0.01, t_ref=0.002))
    i = net.add_population("I", pd.LIF(tau_m=0.01, v_th=0.02, v_reset=0.01, t_ref=0.001))
    ext = net.add_poisson("ext", 3000.0)
    net.connect(ext, e, weight=0.5e-3)
    net.connect(ext, i, weight=0.5e-3)
    net.connect(e, i, weight=0.1e-3, n_syn=200, delay=1.5e-3)
    net.connect(i, e, weight=-0.1e-3, n_syn=200, delay=1.5e-3)
    return net


def _lif_synaptic(pd):
    net = pd.Network()
    model = pd.LIFSynaptic(tau_m=0.02, tau_syn=0.005, v_th=0.02, v_reset=0.01, t_ref=0.002)
    pop = net.add_population("P", model, grid=pd.Grid(v=(-0.02, 0.02, 60),
                                                      i_syn=(-2.0, 5.0, 40)))
    net.connect(net.add_poisson("ext", 5000.0), pop, weight=0.5e-3)
    return net


def cases(pd, quick):
    n = 2000 if quick else 20_000
    mc = {"backend": "montecarlo", "n_neurons": n, "seed": 1}
    return {"density 1D": (_lif_pair, {}), "density N-D": (_lif_synaptic, {}),
            "montecarlo 1D": (_lif_pair, mc), "montecarlo N-D": (_lif_synaptic, mc)}


def measure(make, options, repeats, t_end, folder):
    import popdens as pd
    from popdens.backends.continuation import write_atomically
    make(pd).run(2e-4, 1e-4, **options)                     # compile (warm-up)
    result = make(pd).run(t_end, 1e-4, **options)
    path = Path(folder) / "checkpoint.npz"
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        write_atomically(path, result)
        times.append(time.perf_counter() - began)
    return result.wall_time, statistics.median(times), path.stat().st_size


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 neurons, 3 repeats")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    import popdens as pd
    repeats = args.repeats or (3 if args.quick else 7)
    print(f"| case | run wall time (0.1 s simulated) | checkpoint file | write time "
          f"(median of {repeats}) | overhead at checkpoint_every=60 |")
    print("| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as folder:
        for name, (make, options) in cases(pd, args.quick).items():
            wall, write, size = measure(make, options, repeats, 0.1, folder)
            print(f"| {name} | {wall:.2f} s | {size / 2**20:.2f} MiB | {write * 1e3:.1f} ms "
                  f"| {write / 60:.1e} |")


if __name__ == "__main__":
    main()
