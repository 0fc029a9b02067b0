"""Monte Carlo of the integrate-and-fire family: the compiled loop against the NumPy
interface engine, in one process.

Cases (dt = 0.1 ms, internal step 10 us, Poisson input with recurrent excitation through
Poisson wiring, neurons from rest): :class:`popdens.EIF` (0.5 mV at 2 kHz),
:class:`popdens.QIF` (0.5 mV at 3 kHz), :class:`popdens.AdEx` (0.5 mV at 6 kHz),
:class:`popdens.Izhikevich` (4 mV at 3 kHz), :class:`popdens.FitzHughNagumo` (0.1 at
2 kHz); N neurons (500 and 4000 by default: the NumPy engine's cost per step is
mostly fixed overhead at small N) for ``t_end``.

Each figure is the median over ``--repeats`` of neuron-steps (internal steps) per second
of wall time, ``N * t_end / 10 us / Result.wall_time``; the compiled loop's compilation is
excluded (a warm-up run first, and ``wall_time`` starts after it), the two engines run
alternately, so they see the same machine load.
"""

from __future__ import annotations

import argparse
import statistics

from _machine import cpu_name  # benchmarks/ is on sys.path when a script runs

CASES = ("eif", "qif", "adex", "izhikevich", "fhn")
INTERNAL_DT = 1e-5
DT = 1e-4


def network(case):
    import popdens as pd
    model, rate, weight = {
        "eif": (pd.EIF(), 2000.0, 0.5e-3),
        "qif": (pd.QIF(), 3000.0, 0.5e-3),
        "adex": (pd.AdEx(), 6000.0, 0.5e-3),
        "izhikevich": (pd.Izhikevich(), 3000.0, 4e-3),
        "fhn": (pd.FitzHughNagumo(), 2000.0, 0.1),
    }[case]
    net = pd.Network()
    pop = net.add_population("E", model)
    net.connect(net.add_poisson("ext", rate), pop, weight=weight)
    net.connect(pop, pop, weight=0.2 * weight, n_syn=10, delay=1e-3)
    return net


def measure(case, n, t_end, repeats):
    """``(compiled, numpy)`` lists of neuron-steps per second and the mean rates."""
    from popdens.backends import montecarlo_generic, montecarlo_nd
    net = network(case)
    options = dict(n_neurons=n, internal_dt=INTERNAL_DT)
    montecarlo_nd.run(net, 2 * DT, DT, n_neurons=10, seed=0)    # compile (or load)
    neuron_steps = n * round(t_end / INTERNAL_DT)
    compiled, numpy_engine, rates = [], [], []
    for r in range(repeats):
        a = montecarlo_nd.run(net, t_end, DT, seed=r, **options)
        b = montecarlo_generic.run(net, t_end, DT, seed=r, **options)
        compiled.append(neuron_steps / a.wall_time)
        numpy_engine.append(neuron_steps / b.wall_time)
        rates.append((float(a.rates["E"].mean()), float(b.rates["E"].mean())))
    return compiled, numpy_engine, rates


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="N = 500, 10 ms")
    parser.add_argument("--n", type=int, nargs="+", default=[500, 4000])
    parser.add_argument("--t-end", type=float, default=0.02)
    args = parser.parse_args()
    sizes, t_end = ([500], 0.01) if args.quick else (args.n, args.t_end)
    print(f"Monte Carlo of the IF family, {t_end * 1e3:g} ms, internal step 10 us, "
          f"median of {args.repeats} ({cpu_name()})\n")
    print("| case | N | compiled (neuron-steps/s) | NumPy engine (neuron-steps/s) "
          "| speed-up | mean rate compiled / NumPy (Hz) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for case in CASES:
        for n in sizes:
            compiled, numpy_engine, rates = measure(case, n, t_end, args.repeats)
            fast, slow = statistics.median(compiled), statistics.median(numpy_engine)
            rate_a = statistics.mean(r[0] for r in rates)
            rate_b = statistics.mean(r[1] for r in rates)
            print(f"| {case} | {n} | {fast:.3e} | {slow:.3e} | {fast / slow:.1f} | "
                  f"{rate_a:.1f} / {rate_b:.1f} |", flush=True)


if __name__ == "__main__":
    main()
