"""Benchmark of the N-D stationary solver against the run that reaches the same state.

For each case: ``pd.steady_state`` (step matrices by probing, sparse null vectors,
limiter iteration) against ``net.run`` of the same grid long enough that its rate is
stationary to the stated digits, both in one process, medians of repeats after one
warm-up call each (JIT compilation excluded). Writes ``benchmarks/results/steady_nd.md``.

Usage::

    python benchmarks/bench_steady_nd.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings
from pathlib import Path

import numpy as np
from _machine import cpu_name  # benchmarks/ is on sys.path when a script runs

import popdens as pd

RESULTS = Path(__file__).parent / "results" / "steady_nd.md"


def lif_synaptic(scheme):
    net = pd.Network()
    model = pd.LIFSynaptic(tau_m=20e-3, tau_syn=5e-3, v_th=20e-3, v_reset=10e-3,
                           t_ref=2e-3)
    pop = net.add_population("P", model, grid=pd.Grid(v=(0.0, 20e-3, 40),
                                                      i_syn=(-1.0, 4.0, 30)))
    net.connect(net.add_poisson("ext", 3000.0), pop, weight=1.2e-3)
    return net, {"scheme": scheme}, 1.0


def reduced_hh(scheme):
    net = pd.Network()
    pop = net.add_population("P", pd.ReducedHH(),
                             grid=pd.Grid(v=(-0.082, 0.057, 70), n=(0.0, 1.0, 25)))
    net.connect(net.add_poisson("ext", 4000.0), pop, weight=2e-3)
    return net, {"scheme": scheme, "tol": 1e-6}, 0.6


CASES = [("LIFSynaptic 40 x 30, upwind", lambda: lif_synaptic("upwind")),
         ("LIFSynaptic 40 x 30, mc", lambda: lif_synaptic("mc")),
         ("ReducedHH 70 x 25, mc (tol 1e-6)", lambda: reduced_hh("mc"))]


def _median_time(call, repeats):
    call()                                   # warm-up: compilation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = call()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore", RuntimeWarning)
    rows = []
    for label, build in CASES:
        net, options, t_end = build()
        t_ss, ss = _median_time(lambda n=net, o=options: pd.steady_state(n, **o),
                                args.repeats)
        t_run, res = _median_time(lambda n=net, o=options, t=t_end: n.run(
            t, 1e-4, scheme=o["scheme"], progress=False), args.repeats)
        late = res.rates["P"][res.rates["P"].size // 2:].mean()
        rows.append(f"| {label} | {t_ss:.2f} | {t_run:.2f} ({t_end:g} s) | "
                    f"{ss.rates['P']:.6f} | {late:.6f} |")
        print(rows[-1], flush=True)
    text = ("| case | steady_state (s) | run (s, simulated) | steady rate (Hz) | "
            "run rate, 2nd half (Hz) |\n| --- | --- | --- | --- | --- |\n"
            + "\n".join(rows) + f"\n\n{cpu_name()}, {platform.python_version()}, median "
            f"of {args.repeats} after a warm-up.\n")
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
