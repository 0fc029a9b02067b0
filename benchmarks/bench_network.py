"""Coupled networks: cost of the fused stepper vs populations, and the Brunel network.

Part 1, scaling. ``P`` = 1, 2, 8, 32 LIF populations of 400 cells on a ring: each gets an
external Poisson source, excitation from its predecessor (2 ms delay) and inhibition from
itself (exponential delay, mean 1 ms). The coupled network is run with one compiled
stepper; the baseline is the sum of the same populations run one by one, uncoupled,
each driven by sources replaying its coupled input rates (same inputs, same work). The
ratio coupled / sum is the coupling overhead (1 = none).

Part 2, Brunel (2000) model A (N_E = 10000, N_I = 2500, C_E = 1000, C_I = 250,
J = 0.1 mV, D = 1.5 ms): density wall time per simulated second with jump and with
diffusion input, the stationary rate at g = 5, eta = 2 against the self-consistent
Siegert mean field (diffusion) and the spiking Monte Carlo network (fixed in-degree,
jump), and the fast-oscillation frequency at g = 6, eta = 4 (density vs Monte Carlo).

Wall times are medians of ``--repeats`` runs (numba compilation excluded by a warm-up
run).

Run::

    python benchmarks/bench_network.py            # about 10 minutes
    python benchmarks/bench_network.py --quick    # shorter runs, fewer repeats

The table is printed and written to ``benchmarks/results/network.md``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
from pathlib import Path

import numba
import numpy as np
from _machine import cpu_name  # benchmarks/ is on sys.path when a script runs

import popdens as pd
from popdens.examples import brunel_network, brunel_sizes

RESULTS = Path(__file__).resolve().parent / "results" / "network.md"
DT = 1e-4
LIF = pd.LIF(tau_m=0.02, v_th=0.02, v_reset=0.01, t_ref=0.002)
GRID = pd.Grid(v=(-0.01, 0.02, 400))   # jumps of 0.5 and 0.25 mV: 6.67, 3.33 cells


def ring(num_pops: int) -> pd.Network:
    net = pd.Network()
    ext = net.add_poisson("ext", rate=pd.piecewise([0.0, 0.05], [1500.0, 2500.0]))
    pops = [net.add_population(f"P{k}", LIF, grid=GRID) for k in range(num_pops)]
    for k, pop in enumerate(pops):
        net.connect(ext, pop, weight=0.5e-3)
        net.connect(pops[k - 1], pop, weight=0.25e-3, n_syn=20, delay=2e-3)
        net.connect(pop, pop, weight=-0.5e-3, n_syn=10, delay=pd.delays.exponential(1e-3))
    return net


def replayed(coupled: pd.Result, num_pops: int, k: int) -> pd.Network:
    """Population ``k`` alone, its population inputs replaced by sources replaying the
    coupled run's rates (delays applied by the source's delay, as in the network)."""
    net = pd.Network()
    ext = net.add_poisson("ext", rate=pd.piecewise([0.0, 0.05], [1500.0, 2500.0]))
    pop = net.add_population(f"P{k}", LIF, grid=GRID)
    t = coupled.t
    pre = net.add_poisson("pre", rate=pd.piecewise(
        t, 20 * coupled.rates[f"P{(k - 1) % num_pops}"]))
    self_ = net.add_poisson("self", rate=pd.piecewise(t, 10 * coupled.rates[f"P{k}"]))
    net.connect(ext, pop, weight=0.5e-3)
    net.connect(pre, pop, weight=0.25e-3, delay=2e-3)
    net.connect(self_, pop, weight=-0.5e-3, delay=pd.delays.exponential(1e-3))
    return net


def median_wall(net: pd.Network, t_end: float, repeats: int, **options) -> tuple:
    net.run(10 * DT, DT, **options)               # compile / load the kernels
    walls, res = [], None
    for _ in range(repeats):
        res = net.run(t_end, DT, progress=False, **options)
        walls.append(res.wall_time)
    return statistics.median(walls), res


def brunel(g: float, eta: float, input: str = "jump") -> pd.Network:
    # 0.1 mV cells (= J): the rate is converged to 2e-5 (1600 cells: 37.7825 vs 37.7833 Hz)
    return brunel_network(g, eta, input=input, grid=pd.Grid(v=(-0.02, 0.02, 400)))


def spectral_peak(rate: np.ndarray, dt: float) -> float:
    x = rate - rate.mean()
    power = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2
    freq = np.fft.rfftfreq(x.size, dt)
    band = freq > 20.0
    return float(freq[band][np.argmax(power[band])])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per timing (median)")
    parser.add_argument("--quick", action="store_true", help="shorter runs, 3 repeats")
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else args.repeats
    t_scaling = 0.1 if args.quick else 0.3
    t_brunel = 0.5 if args.quick else 1.0
    lines = []

    def out(text=""):
        print(text, flush=True)
        lines.append(text)

    command = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    out("# Coupled networks")
    out()
    out(f"- command: `{command}`")
    out(f"- machine: {cpu_name()}, python {platform.python_version()}, numba "
        f"{numba.__version__}, popdens {pd.__version__}")
    out()
    out(f"## Cost vs number of populations (400 cells each, {t_scaling:g} s, dt = 0.1 ms)")
    out()
    out("| populations | coupled: wall / simulated s | sum of single runs | coupled / sum "
        "| per population-step |")
    out("| ---: | ---: | ---: | ---: | ---: |")
    for num_pops in (1, 2, 8, 32):
        wall, res = median_wall(ring(num_pops), t_scaling, repeats)
        single = sum(median_wall(replayed(res, num_pops, k), t_scaling, repeats)[0]
                     for k in range(num_pops))
        steps = res.t.size * num_pops
        out(f"| {num_pops} | {wall / t_scaling * 1e3:.1f} ms | {single / t_scaling * 1e3:.1f} ms"
            f" | {wall / single:.2f} | {wall / steps * 1e6:.1f} us |")
    out()
    out("## Brunel (2000) model A, 400 cells per population, dt = 0.1 ms")
    out()
    nu_ext = 2.0 * 0.02 / (1e-4 * 1000 * 0.02)
    mean_field = pd.brunel_mean_field_rate(nu_ext, 5.0)
    out("| case | backend | input | rate E (Hz) | spectral peak | wall / simulated s |")
    out("| --- | --- | --- | ---: | ---: | ---: |")
    out(f"| g = 5, eta = 2 | Siegert mean field | diffusion | {mean_field:.3f} | | |")
    sizes = brunel_sizes()
    for g, eta in ((5.0, 2.0), (6.0, 4.0)):
        inputs = ("diffusion", "jump") if g == 5.0 else ("jump",)
        for input in inputs:
            wall, res = median_wall(brunel(g, eta, input), t_brunel, max(1, repeats // 2))
            x = res.rates["E"][int(0.2 / DT):]
            peak = f"{spectral_peak(x, DT):.1f} Hz" if x.std() > 0.1 * x.mean() else "flat"
            out(f"| g = {g:g}, eta = {eta:g} | density, 400 cells | {input} | "
                f"{x.mean():.3f} | {peak} | {wall / t_brunel:.2f} s |")
        net = brunel(g, eta)
        net.run(10 * DT, DT, backend="montecarlo", n_neurons=sizes, seed=0)   # compile
        mc = net.run(t_brunel, DT, backend="montecarlo", n_neurons=sizes, seed=1)
        x = mc.rates["E"][int(0.2 / DT):]
        se = np.sqrt(x.mean() / (sizes["E"] * (t_brunel - 0.2)))
        peak = f"{spectral_peak(x, DT):.1f} Hz" if g == 6.0 else ""
        out(f"| g = {g:g}, eta = {eta:g} | Monte Carlo, fixed in-degree, N = 12500 | jump | "
            f"{x.mean():.3f} ± {se:.3f} | {peak} | {mc.wall_time / t_brunel:.2f} s |")
    out()
    out("Rates are means over t > 0.2 s (± 1 standard error of the Monte Carlo mean, "
        "Poisson estimate); the spectral peak is that of the E rate in 0.1 ms steps, "
        "Hann window, above 20 Hz.")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
