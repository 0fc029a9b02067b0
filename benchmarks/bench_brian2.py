"""Brian2 next to popdens on the 1D LIF demo: wall time and accuracy at equal N.

Scenario: exactly that of ``bench_lif_1d.py`` (its constants and functions are imported):
one population of ``LIF(tau_m=0.05, v_th=1, v_reset=0)`` (dimensionless v, no refractory
period), every neuron at v = 0 at t = 0, Poisson input at 800 Hz per neuron with jumps of
0.03, dt = 0.1 ms, 1 s simulated (the rise from rest included).

- Brian2: ``NeuronGroup(N, 'dv/dt = -v/tau : 1', threshold='v > v_th',
  reset='v = v_reset', method='exact')`` with ``PoissonInput(group, 'v', 1, 800*Hz,
  weight=0.03)``, a ``PopulationRateMonitor`` and ``defaultclock.dt = 0.1*ms``, in a
  ``Network`` (runtime mode). Codegen target: 'cython' is tried first (Brian2's default
  ``prefs.codegen.target = 'auto'`` picks it where Cython and a compiler work); if it
  fails the script falls back to 'numpy' and says so in the table. Code generation and
  compilation are kept out of the timing: a tiny network is compiled first, then each
  size's network is stored, warmed up with ``run(10*ms)``, and for each of ``--repeats``
  seeds restored to t = 0 (every v = 0) and timed with ``time.perf_counter`` around
  ``run(1*second)`` alone (that call includes Brian2's per-``run`` preparation, whose
  cost is shown separately as the time of a one-step ``run``).
- popdens Monte Carlo (``backend="montecarlo"``, default settings) for the same N and
  popdens's density solver on 1000 cells (k = 30), timed by ``Result.wall_time`` after a
  warm-up run (``measure_montecarlo`` / ``measure_density`` of ``bench_lif_1d.py``;
  the density runs are cheap and noisy, so they take at least 5 repeats).
- Sizes N = 1e4 and 1e5 (``--quick``: 1e4). N = 1e6 is left out: Brian2 (cython) took
  about 3.4 s per simulated second at N = 1e4 and about 18 s at N = 1e5 on the machine
  this was written on (2-core Xeon @ 2.5 GHz; about 2e-8 s per neuron-step, linear in N),
  so one 1-s run at N = 1e6 would take about 3 minutes (and popdens Monte Carlo about 1.5
  minutes), over the 2 minutes per run budgeted here; the N = 1e6 Monte Carlo timing is
  in ``bench_lif_1d.py``'s table.
- Accuracy: RMS over the run of the error of the 1-ms-bin population rate against the
  converged density reference of ``bench_lif_1d.py`` (k = 600, max_substep 5 us;
  ``--quick``: k = 300, as there), next to the expected Poisson standard error
  sqrt(mean rate / (N 1 ms)) of a simulation of N independent neurons.

Run::

    python benchmarks/bench_brian2.py            # about 3 minutes
    python benchmarks/bench_brian2.py --quick    # N = 1e4 only, about 1 minute

Needs Brian2 (``pip install -e '.[bench]'``); without it (or if it fails to import) the
script prints one line, writes a short note to ``benchmarks/results/brian2.md`` and exits
with status 0. The table is printed and written to ``benchmarks/results/brian2.md``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numba
import numpy as np
from _machine import cpu_name  # benchmarks/ is on sys.path when a script runs
from bench_lif_1d import (
    BIN,
    DT,
    RATE,
    T_END,
    WEIGHT,
    grid_for,
    measure_density,
    measure_montecarlo,
    model,
    reference,
    rms,
)

import popdens as pd

DENSITY_K = 30      # 1000 cells of 0.001, as in bench_lif_1d.py
RESULTS = Path(__file__).resolve().parent / "results" / "brian2.md"
NOT_INSTALLED = "Brian2 not installed: pip install -e '.[bench]'"


def import_brian2():
    """``(brian2, None)``, or ``(None, why)`` when it is missing or fails to import."""
    try:
        import brian2
    except ModuleNotFoundError as exc:
        if exc.name == "brian2":
            return None, NOT_INSTALLED
        failure = exc
    except Exception as exc:  # installed but broken, e.g. brian2 2.9.0 with numpy >= 2.4
        failure = exc
    else:
        return brian2, None
    try:
        version = importlib.metadata.version("brian2")
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    why = f"Brian2 {version} fails to import ({type(failure).__name__}: {failure})"
    if "ptp" in str(failure):
        why += (f"; numpy {np.__version__} no longer has ndarray.ptp, which Brian2 up to "
                "2.9.0 uses: it needs numpy < 2.4 (fixed in brian-team/brian2#1705)")
    return None, why


def load_average() -> str:
    return f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} (on {os.cpu_count()} cores)"


def machine_line(b2=None) -> str:
    processor = platform.processor()
    arch = platform.machine() + (f", {processor}" if processor and processor != cpu_name()
                                 and processor != platform.machine() else "")
    line = (f"{cpu_name()} ({arch}), python {platform.python_version()}, "
            f"numba {numba.__version__}, numpy {np.__version__}, popdens {pd.__version__}")
    if b2 is not None:
        line += f", brian2 {b2.__version__}"
        try:
            import Cython
            line += f" (Cython {Cython.__version__})"
        except ImportError:
            pass
    return line


def brian2_network(b2, n_neurons: int, target: str):
    """The scenario as a Brian2 ``Network``; returns it, the group and the rate monitor."""
    b2.prefs.codegen.target = target
    b2.defaultclock.dt = DT * b2.second
    lif = model()
    group = b2.NeuronGroup(n_neurons, "dv/dt = -v / tau : 1", threshold="v > v_th",
                           reset="v = v_reset", method="exact",
                           namespace={"tau": lif.tau_m * b2.second, "v_th": lif.v_th,
                                      "v_reset": lif.v_reset})
    group.v = 0.0
    poisson = b2.PoissonInput(group, "v", 1, RATE * b2.Hz, weight=WEIGHT)
    monitor = b2.PopulationRateMonitor(group)
    return b2.Network(group, poisson, monitor), group, monitor


def brian2_target(b2) -> tuple[str, str]:
    """Compile a tiny network with 'cython'; fall back to 'numpy' if that fails.

    Returns the target and a sentence for the table. The compiled Cython modules do not
    depend on N, so the networks measured later find them in Brian2's cache.
    """
    default = b2.prefs.codegen.target
    try:
        net, group, _ = brian2_network(b2, 10, "cython")
        net.run(1 * b2.ms)
        used = type(group.state_updater.codeobj).__name__
        return "cython", (f"Brian2's default `prefs.codegen.target = {default!r}`; "
                          f"run with 'cython' ({used})")
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"Brian2 'cython' target failed ({type(exc).__name__}: {first}); "
              "falling back to 'numpy'", file=sys.stderr, flush=True)
        return "numpy", (f"Brian2's default `prefs.codegen.target = {default!r}`; 'cython' "
                         f"FAILED ({type(exc).__name__}: {first[:200]}), fell back to "
                         "'numpy'")


def measure_brian2(b2, n_neurons: int, repeats: int, target: str) -> dict:
    net, _, monitor = brian2_network(b2, n_neurons, target)
    net.store("start")
    net.run(10 * b2.ms)                        # code generation / compilation: not timed
    n_steps = round(T_END / DT)
    per_bin = max(1, round(BIN / DT))
    walls, rates = [], None
    for seed in range(repeats):
        net.restore("start")                   # t = 0, every v = 0, monitor emptied
        b2.seed(seed)
        start = time.perf_counter()
        net.run(T_END * b2.second)
        walls.append(time.perf_counter() - start)
        if rates is None:
            r = np.asarray(monitor.rate_)[-n_steps:]
            rates = r[: (r.size // per_bin) * per_bin].reshape(-1, per_bin).mean(axis=1)
    # Brian2's fixed cost of one run() call (preparation), from a one-step run
    net.restore("start")
    start = time.perf_counter()
    net.run(DT * b2.second)
    one_step = time.perf_counter() - start
    wall = statistics.median(walls)
    return {"n": n_neurons, "wall": wall, "updates_per_s": n_neurons * n_steps / wall,
            "rates": rates, "one_step": one_step}


def write_skipped(why: str, command: str) -> None:
    lines = ["# 1D LIF: popdens vs Brian2", "",
             f"- command: `{command}`",
             f"- machine: {machine_line()}",
             f"- skipped: {why}. The Brian2 row (and this comparison) was not run; "
             "popdens's own timings are in `lif_1d.md`."]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed runs (seeds) per simulator and N, median wall time "
                             "(default 3, --quick 2; the density solver takes >= 5)")
    parser.add_argument("--quick", action="store_true",
                        help="N = 1e4 only, coarser reference, 2 repeats")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 2 if args.quick else 3
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    command = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])

    b2, why = import_brian2()
    if b2 is None:
        print(why, flush=True)
        write_skipped(why, command)
        return 0
    b2.prefs.logging.console_log_level = "WARNING"

    sizes = [10_000] if args.quick else [10_000, 100_000]
    ref_k, ref_substep = (300, 5e-6) if args.quick else (600, 5e-6)
    load_before = load_average()

    target, target_note = brian2_target(b2)
    ref = reference(ref_k, ref_substep)
    mean_rate = float(np.mean(ref))
    dens = measure_density(DENSITY_K, max(5, args.repeats))
    rows = []
    for n in sizes:
        rows.append((measure_montecarlo(n, args.repeats),
                     measure_brian2(b2, n, args.repeats, target)))

    lines = []

    def out(text=""):
        print(text, flush=True)
        lines.append(text)

    def expected(n: float) -> float:
        return math.sqrt(mean_rate / (n * BIN))

    lif = model()
    out("# 1D LIF: popdens vs Brian2")
    out()
    out(f"- command: `{command}`")
    out(f"- machine: {machine_line(b2)}; one core")
    out(f"- Brian2 codegen: {target_note}")
    out(f"- scenario: LIF(tau_m={lif.tau_m:g}, v_th={lif.v_th:g}, v_reset={lif.v_reset:g}), "
        f"Poisson {RATE:g} Hz, jump {WEIGHT:g}, all neurons at v=0, dt = {DT * 1e3:g} ms, "
        f"{T_END:g} s simulated; errors are RMS over the run of 1-ms-bin rates")
    out(f"- reference: popdens density, k = {ref_k} ({grid_for(ref_k).num_cells} cells), "
        f"max_substep {ref_substep * 1e6:g} us (as in bench_lif_1d.py); mean rate over the "
        f"run {mean_rate:.3f} Hz")
    out(f"- load average: {load_before} before the runs, {load_average()} when the table "
        "was written")
    out()
    out("| simulator | size | wall / simulated s | updates / s | RMS error (Hz) "
        "| expected Poisson error (Hz) | Brian2 / popdens MC | Brian2 / density |")
    out("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    out(f"| popdens density | {dens['cells']} cells (dx = {dens['dx']:.2g}) | "
        f"{dens['wall'] / T_END * 1e3:.1f} ms | {dens['updates_per_s']:.3g} cell-updates | "
        f"{rms(dens['rates'], ref):.2g} | | | |")
    for mc, br in rows:
        n = mc["n"]
        out(f"| popdens Monte Carlo | N = {n:.0e} | {mc['wall'] / T_END:.3g} s | "
            f"{mc['updates_per_s']:.3g} neuron-steps | {rms(mc['rates'], ref):.2g} | "
            f"{expected(n):.2g} | | |")
        out(f"| Brian2 ({target}) | N = {n:.0e} | {br['wall'] / T_END:.3g} s | "
            f"{br['updates_per_s']:.3g} neuron-steps | {rms(br['rates'], ref):.2g} | "
            f"{expected(n):.2g} | {br['wall'] / mc['wall']:.2g} | "
            f"{br['wall'] / dens['wall']:.3g} |")
    out()
    overhead = ", ".join(f"{br['one_step'] * 1e3:.0f} ms (N = {br['n']:.0e})"
                         for _, br in rows)
    out(f"Wall times are medians of {args.repeats} runs (density: {max(5, args.repeats)}), "
        "compilation excluded: popdens by `Result.wall_time`, Brian2 by `time.perf_counter` "
        f"around `run(1*second)`, which includes Brian2's per-run preparation (a one-step "
        f"run takes {overhead}). Expected Poisson error: sqrt(mean rate / (N x 1 ms)); the "
        "RMS errors are those of the first seed.")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"\nwritten to {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
