"""Monte Carlo references for the error-estimate tests and the N-D error-vs-cost benchmark.

Two N-D populations driven from rest by Poisson jumps, 0.1 s simulated, rate averaged
over [0.03, 0.1) s (after the first volleys):

- ``reduced_hh``: ``pd.ReducedHH()``, 2 mV jumps in v at 4 kHz;
- ``lif_synaptic``: ``pd.LIFSynaptic(tau_m=20 ms, tau_syn=5 ms, v_th=20 mV, v_reset=10 mV,
  t_ref=2 ms)``, jumps of 1 (A/F units of i_syn) at 4 kHz.

Each reference is the mean over ``SEEDS`` independent Monte Carlo runs (blocks) of
``N_PER_SEED`` neurons at a 10 us internal step; its standard error is the spread of the
block means / sqrt(blocks), not a Poisson count. Run::

    python benchmarks/errest_references.py      # about 8 minutes on 2 shared cores

Writes ``tests/data/errest_references.json`` (read by ``tests/accuracy/test_error_estimate.py``
and ``benchmarks/bench_error_cost_nd.py``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

import popdens as pd

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "errest_references.json"
T_END, DT, WINDOW = 0.1, 1e-4, (0.03, 0.1)
MC_INTERNAL_DT = 1e-5
SEEDS = (101, 102, 103, 104)
N_PER_SEED = {"reduced_hh": 20_000, "lif_synaptic": 100_000}


def reduced_hh(grid=None) -> pd.Network:
    """ReducedHH from rest, 2 mV jumps at 4 kHz."""
    net = pd.Network()
    pop = net.add_population("P", pd.ReducedHH(), grid=grid)
    net.connect(net.add_poisson("ext", 4000.0), pop, weight=2e-3)
    return net


def lif_synaptic(grid=None) -> pd.Network:
    """LIFSynaptic from rest, jumps of 1 in i_syn at 4 kHz."""
    net = pd.Network()
    model = pd.LIFSynaptic(tau_m=20e-3, tau_syn=5e-3, v_th=20e-3, v_reset=10e-3,
                           t_ref=2e-3)
    pop = net.add_population("P", model, grid=grid)
    net.connect(net.add_poisson("ext", 4000.0), pop, weight=1e-3)
    return net


SCENARIOS = {"reduced_hh": reduced_hh, "lif_synaptic": lif_synaptic}


def reference(name: str) -> dict:
    """Block mean, block standard error and cost of the Monte Carlo reference."""
    net = SCENARIOS[name]()
    means, walls = [], []
    for seed in SEEDS:
        res = net.run(T_END, DT, backend="montecarlo", n_neurons=N_PER_SEED[name],
                      seed=seed, internal_dt=MC_INTERNAL_DT)
        means.append(res.mean_rate("P", *WINDOW))
        walls.append(res.wall_time)
    means = np.asarray(means)
    return {"rate": float(means.mean()),
            "standard_error": float(means.std(ddof=1) / np.sqrt(means.size)),
            "block_rates": means.tolist(), "n_per_block": N_PER_SEED[name],
            "internal_dt": MC_INTERNAL_DT, "window": list(WINDOW), "t_end": T_END,
            "wall_time_per_block": float(np.median(walls))}


def main() -> None:
    out = {}
    for name in SCENARIOS:
        t0 = time.perf_counter()
        out[name] = reference(name)
        print(name, out[name], f"{time.perf_counter() - t0:.0f} s", flush=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
