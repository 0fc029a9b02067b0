"""CPU time of the N-D density engine's compiled call on small 2D grids, and its cold
compile time: the figures a change to :func:`popdens.kernels.nd.advance_nd`'s interface
or body must not make worse.

Small grids are where a change of the call (argument passing, setup per call) or of the
loop's structure shows: little work per call, and in a coupled network one call per
population every few internal steps. Cases (dt = 0.1 ms):

- ``rhh_small``: ``ReducedHH()`` on 70 x 25 cells (2 mV cells, whole-cell 2 mV jumps
  at 3 kHz), 2 s;
- ``rhh_fractional``: the same on 93 x 25 cells (1.5 mV cells: fractional jumps), 0.1 s;
- ``ei_small``: two coupled ``LIFSynaptic`` populations on 40 x 40 grids with 2 ms
  delays (one compiled call per population per 2 ms), 0.1 s;
- ``rhh_default``: ``ReducedHH()`` default grid, 4 kHz, 0.1 s.

Each figure is the CPU time (``time.process_time``) of ``run()``, compilation excluded
(an untimed warm-up run first), median of ``--repeats``. ``--cold`` instead measures the
CPU time of the first ``run()`` of ``rhh_small`` in a process with fresh numba and popdens
caches (the compilation of ``advance_nd`` and every kernel it calls; the simulation
itself is 10 steps). ``--compare OLD NEW`` runs two checkouts in their own processes
(``PYTHONPATH``), alternately round by round so both see the same load::

    python benchmarks/bench_nd_call.py --compare /path/to/old /path/to/new --rounds 3
    python benchmarks/bench_nd_call.py --cold --compare /path/to/old /path/to/new
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

CASES = ("rhh_small", "rhh_fractional", "ei_small", "rhh_default")


def _network(case):
    import popdens as pd
    from popdens.models import ReducedHH
    net = pd.Network()
    if case.startswith("rhh"):
        grids = {"rhh_small": pd.Grid(v=(-0.083, 0.057, 70), n=(0.0, 1.0, 25)),
                 "rhh_fractional": pd.Grid(v=(-0.0825, 0.057, 93), n=(0.0, 1.0, 25)),
                 "rhh_default": None}
        pop = net.add_population("P", ReducedHH(), grid=grids[case])
        rate = 4000.0 if case == "rhh_default" else 3000.0
        net.connect(net.add_poisson("ext", rate), pop, weight=2e-3)
        return net, {"rhh_small": 2.0, "rhh_fractional": 0.1, "rhh_default": 0.1}[case]
    from bench_nd import ei_network  # benchmarks/ is on sys.path when a script runs
    return ei_network(40), 0.1


def _run_cpu(net, t_end, dt=1e-4):
    from popdens.backends.density_nd import NDDensitySimulation
    sim = NDDensitySimulation(net, t_end, dt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # edge warnings: not timed here
        start = time.process_time()
        res = sim.run(progress=False)
        return time.process_time() - start, res


def measure(repeats):
    """CPU seconds per case (median of ``repeats``), compilation excluded."""
    out = {}
    for case in CASES:
        net, t_end = _network(case)
        _run_cpu(net, 10e-4)  # compile
        out[case] = statistics.median(_run_cpu(net, t_end)[0] for _ in range(repeats))
    return out


def measure_cold():
    """CPU seconds of the first run (compilation of the N-D engine)."""
    net, _ = _network("rhh_small")
    from popdens.backends.density_nd import NDDensitySimulation
    NDDensitySimulation(net, 10e-4, 1e-4)  # assembly kernels compile here, untimed
    return {"cold_first_run": _run_cpu(net, 10e-4)[0]}


def _child(checkout, cold, repeats):
    env = dict(os.environ, PYTHONPATH=checkout)
    if cold:
        env["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="numba_cold_")
        env["POPDENS_CACHE_DIR"] = tempfile.mkdtemp(prefix="popdens_cold_")
    args = [sys.executable, __file__, "--json", "--repeats", str(repeats)]
    args += ["--cold"] if cold else []
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(old, new, rounds, cold, repeats):
    results = {"old": [], "new": []}
    for r in range(rounds):
        for label, path in (("old", old), ("new", new)):
            results[label].append(_child(path, cold, repeats))
            print(f"round {r} {label}: {results[label][-1]}", file=sys.stderr, flush=True)
    print(f"load average {os.getloadavg()}")
    print("| case | old CPU s | new CPU s | new / old |")
    print("| --- | --- | --- | --- |")
    for case in results["old"][0]:
        o = statistics.median(x[case] for x in results["old"])
        n = statistics.median(x[case] for x in results["new"])
        print(f"| {case} | {o:.3f} | {n:.3f} | {n / o:.3f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", nargs=2, metavar=("OLD", "NEW"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cold", action="store_true")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.compare:
        compare(*args.compare, args.rounds, args.cold, args.repeats)
        return
    if args.json:
        print(json.dumps(measure_cold() if args.cold else measure(args.repeats)))
    else:  # this checkout, in a child process (fresh caches with --cold)
        print(_child(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), args.cold,
                     args.repeats))


if __name__ == "__main__":
    main()
