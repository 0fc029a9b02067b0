"""Markov reduction of the MIF E/I network (Chang et al. 2025): rates and synchrony of the
spiking network and of its reductions, with the run cost of each.

At the defaults (p_EI = 0.8) and at p_EI = 0.5, 0.75, 1.0: mean rates (Hz per neuron) and
spike synchrony index of E and I over t = 0.1 .. 3 s for the spiking network and the
Markov SDE (mean and standard error over seeds), the binned Markov ODE with the authors'
and the textbook refractory rule (deterministic), and at the defaults the textbook ODE
with 1-wide bins (the binning error). Then the E-rate peaks of the spiking network and
of the ODE over 11 values of p_EI (a bifurcation diagram). Writes
``results/markov.md`` and ``results/markov.png``.

Run::

    python benchmarks/bench_markov.py            # 5 seeds (~3 minutes on 2 cores)
    python benchmarks/bench_markov.py --quick    # 2 seeds, t_end = 1 s
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from _machine import cpu_name  # noqa: E402  benchmarks/ is on sys.path when a script runs

from popdens import markov as mk  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
P_EI = (0.8, 0.5, 0.75, 1.0)
T_MIN = 0.1
LABELS = {"spiking": "spiking network", "sde": "Markov SDE",
          "ode-authors": "Markov ODE, authors' refractory", "ode-textbook":
          "Markov ODE, textbook refractory", "ode-fine": "Markov ODE, textbook, 1-wide bins",
          "density": "popdens density (fixed refractory)"}


def one_run(net, method, t_end, seed):
    start = time.perf_counter()
    if method == "ode-fine":
        res = mk.MarkovODE(net, refractory="textbook", bin_width=1.0).run(t_end)
    else:
        res = mk.run_method(net, method, t_end, seed)
    wall = time.perf_counter() - start
    row = [res.mean_rate(p, T_MIN) for p in mk.POPULATIONS]
    row += [res.ssi(p, t_min=T_MIN) for p in mk.POPULATIONS]
    return np.array(row + [wall]), res


def measure(net, method, t_end, seeds):
    """(mean row, standard error row or None, last result): E, I rate, E, I SSI, wall."""
    stochastic = method in ("spiking", "sde")
    rows, res = [], None
    for seed in (seeds if stochastic else [0]):
        row, res = one_run(net, method, t_end, seed)
        rows.append(row)
    rows = np.array(rows)
    se = rows.std(axis=0, ddof=1) / np.sqrt(len(rows)) if stochastic else None
    return rows.mean(axis=0), se, res


def _fmt(mean, se, i, digits):
    text = f"{mean[i]:.{digits}f}"
    return text + (f" ± {se[i]:.{digits}f}" if se is not None else "")


def table(t_end, seeds):
    base = mk.MIFNetwork()
    lines, traces, summary = [], {}, {}
    for p_ei in P_EI:
        net = base.replace(p_EI=p_ei)
        methods = list(mk.METHODS) + (["ode-fine"] if p_ei == 0.8 else [])
        for method in methods:
            mean, se, res = measure(net, method, t_end, seeds)
            summary[(p_ei, method)] = (mean, se)
            if p_ei == 0.8:
                traces[method] = res
            lines.append(f"| {p_ei} | {LABELS[method]} | {_fmt(mean, se, 0, 2)} | "
                         f"{_fmt(mean, se, 1, 2)} | {_fmt(mean, se, 2, 3)} | "
                         f"{_fmt(mean, se, 3, 3)} | {mean[4]:.2f} |")
            print(lines[-1], flush=True)
    return lines, traces, summary


def peak_scan(t_end):
    values = np.linspace(0.5, 1.0, 11)
    out = mk.scan(mk.MIFNetwork(), values, t_end=t_end, methods=("spiking", "ode-textbook"))
    return values, out


def figure(traces, summary, scan_values, scan_out, path):
    fig, axes = plt.subplots(1, 4, figsize=(19, 4.2))
    window = slice(int(2.0 / 1e-4), int(2.1 / 1e-4))
    for method, res in traces.items():
        if method == "ode-fine":
            continue
        rate = np.convolve(res.rates["E"], np.ones(5) / 5, mode="same")[window]
        axes[0].plot(1e3 * res.t[window], rate, lw=1, label=LABELS[method])
    axes[0].set(xlabel="t (ms)", ylabel="E rate (Hz, 0.5 ms mean)",
                title="p_EI = 0.8 (defaults)")
    axes[0].legend(fontsize=7)
    p = np.sort(np.array(P_EI))
    for method in mk.METHODS:
        mean = np.array([summary[(v, method)][0] for v in p])
        axes[1].plot(p, mean[:, 0], "o-", label=LABELS[method])
        axes[2].plot(p, mean[:, 2], "o-", label=LABELS[method])
    axes[1].set(xlabel="p_EI", ylabel="E rate (Hz)", title="mean rate")
    axes[2].set(xlabel="p_EI", ylabel="SSI (E)", title="spike synchrony index")
    axes[2].legend(fontsize=7)
    for method, marker, dx in (("spiking", "k.", -0.006), ("ode-textbook", "r.", 0.006)):
        for v, peaks in zip(scan_values, scan_out.peaks[method]):
            axes[3].plot(np.full(peaks.size, v + dx), peaks, marker, ms=2, alpha=0.4)
    axes[3].set(xlabel="p_EI", ylabel="E-rate peak (Hz, 1 ms mean)", yscale="log", ylim=(1, 3e3),
                title="peaks: spiking (black), ODE textbook (red)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    t_end = 1.0 if args.quick else 3.0
    seeds = range(1, 3) if args.quick else range(1, 6)
    for method in mk.METHODS:   # JIT warm-up (compiled kernels are cached on disk)
        mk.run_method(mk.MIFNetwork(), method, 0.01, 0)
    lines, traces, summary = table(t_end, seeds)
    scan_values, scan_out = peak_scan(1.0 if args.quick else 2.0)
    RESULTS.mkdir(exist_ok=True)
    figure(traces, summary, scan_values, scan_out, RESULTS / "markov.png")
    header = ["# Markov reduction of the MIF E/I network (Chang et al. 2025)", "",
              f"t = 0..{t_end} s, statistics over t >= {T_MIN} s; spiking and SDE: mean ± "
              f"standard error over {len(seeds)} seeds; ODE rows deterministic. Wall time "
              f"per run on one core of {cpu_name()} (2 cores shared with other jobs).", "",
              "| p_EI | description | E rate (Hz) | I rate (Hz) | SSI E | SSI I | wall (s) |",
              "|---:|---|---:|---:|---:|---:|---:|"]
    peaks = ["", "E-rate peaks (Hz, 1 ms mean, >= 9 ms apart) over p_EI: median "
             "(spiking / ODE-textbook):", ""]
    for v, a, b in zip(scan_values, scan_out.peaks["spiking"], scan_out.peaks["ode-textbook"]):
        peaks.append(f"- p_EI = {v:.2f}: {np.median(a) if a.size else 0:.0f} / "
                     f"{np.median(b) if b.size else 0:.0f} ({a.size} / {b.size} peaks)")
    (RESULTS / "markov.md").write_text("\n".join(header + lines + peaks) + "\n")
    print(f"wrote {RESULTS / 'markov.md'} and {RESULTS / 'markov.png'}")


if __name__ == "__main__":
    main()
