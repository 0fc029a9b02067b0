"""Balanced E/I network: Monte Carlo error against the Gaussian n -> infinity limit.

The scenario of ``tests/reductions/test_balanced.py`` (a = 1, b = 2, tau_E = 0.5, tau_I = 1, probit
rates with thresholds -1 and 0, h_E a step of 0.5 on [1, 2.5), t = 0..4, dt = 4e-3): the
RMS over time of the errors of the class means and variances, averaged over seeds, for
n = 250 ... 16000 neurons per class, the fitted log-log slope (expected -1/2), the per-seed
spread, and the wall time. Writes ``results/balanced.md`` and ``results/balanced.png``.

Run::

    python benchmarks/bench_balanced.py            # n up to 16000, 6 seeds (~2 minutes)
    python benchmarks/bench_balanced.py --quick    # n up to 4000, 3 seeds
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import popdens as pd  # noqa: E402
from popdens import balanced as bl  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
M0, V0 = {"E": None, "I": -0.5}, {"E": 0.1, "I": 0.1}
T_END, DT, EVERY = 4.0, 4e-3, 5


def network() -> bl.BalancedEI:
    return bl.BalancedEI(
        a=1.0, b=2.0, tau={"E": 0.5, "I": 1.0},
        rate={"E": bl.GaussianRate("probit", nu=1.0, beta=1.0, theta=-1.0),
              "I": bl.GaussianRate("probit", nu=1.0, beta=1.0, theta=0.0)},
        h={"E": pd.piecewise([0.0, 1.0, 2.5], [0.0, 0.5, 0.0]), "I": 0.0})


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    sizes = np.array([250, 1000, 4000] if args.quick else [250, 1000, 4000, 16000])
    seeds = range(3 if args.quick else 6)
    net = network()
    lim = net.solve_limit(DT * EVERY * np.arange(int(round(T_END / (DT * EVERY))) + 1),
                          m0=M0, v0=V0)
    net.simulate(10, 10 * DT, DT, m0=M0, v0=V0)   # JIT warm-up
    errors = np.empty((len(seeds), sizes.size))
    walls = np.zeros(sizes.size)
    last = None
    for j, n in enumerate(sizes):
        for i, seed in enumerate(seeds):
            start = time.perf_counter()
            mc = net.simulate(int(n), T_END, DT, seed=seed, record_every=EVERY, m0=M0, v0=V0)
            walls[j] += (time.perf_counter() - start) / len(seeds)
            diffs = [mc.m[p] - lim.m[p] for p in "EI"] + [mc.v[p] - lim.v[p] for p in "EI"]
            errors[i, j] = np.sqrt(np.mean(np.square(diffs)))
            if n == sizes[-1] and i == 0:
                last = mc
    mean = errors.mean(axis=0)
    slope = np.polyfit(np.log(sizes), np.log(mean), 1)[0]
    per_seed = np.polyfit(np.log(sizes), np.log(errors).T, 1)[0]
    lines = ["| n per class | mean RMS error | seed std | wall per run (s) |",
             "|---:|---:|---:|---:|"]
    lines += [f"| {n} | {m:.4f} | {s:.4f} | {w:.2f} |"
              for n, m, s, w in zip(sizes, mean, errors.std(axis=0, ddof=1), walls)]
    lines += ["", f"Fitted slope of the mean error: {slope:.3f} (expected -0.5); per-seed "
              f"slopes {np.round(per_seed, 3).tolist()} (std {per_seed.std(ddof=1):.3f}); "
              f"{len(seeds)} seeds, t = 0..{T_END}, dt = {DT}."]
    table = "\n".join(lines)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "balanced.md").write_text("# Balanced E/I: Monte Carlo vs Gaussian limit\n\n"
                                         + table + "\n")
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4))
    for p, color in zip("EI", ("C3", "C0")):
        ax0.plot(lim.t, lim.m[p], color=color, label=f"limit m_{p}")
        ax0.plot(last.t, last.m[p], color=color, ls=":", label=f"MC m_{p} (n={sizes[-1]})")
    ax0.set_xlabel("t (model units)")
    ax0.legend(fontsize=8)
    ax1.loglog(sizes, errors.T, color="0.7", lw=0.8)
    ax1.loglog(sizes, mean, "ko-", label=f"mean, slope {slope:.2f}")
    ax1.loglog(sizes, mean[0] * np.sqrt(sizes[0] / sizes), "k--", label="n^-1/2")
    ax1.set_xlabel("n per class")
    ax1.set_ylabel("RMS error of m, v")
    ax1.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "balanced.png", dpi=120)


if __name__ == "__main__":
    main()
