"""Command-line interface (also ``python -m popdens``).

* ``popdens demo``: the single-population demo below.
* ``popdens run SCENARIO.toml [--plot PNG] [--save FILE.npz|.nc] [--t-end S] [--dt S]
  [--backend density|montecarlo] [--neurons N] [--seed K]``: validate a scenario file
  (:mod:`popdens.scenario`) completely, then run it, print the mean rates and wall time,
  and optionally write a figure and the result.
* ``popdens check SCENARIO.toml ...``: validate only (exit status 2 on problems).
* ``run`` and ``check`` take ``--max-memory SIZE`` and ``--max-steps N``: the run is sized
  before anything is allocated and refused (exit status 2) beyond these limits.
* ``popdens plot RESULT.npz|.nc --output PNG``: figure of a saved result.

Invalid arguments and invalid scenario files exit with status 2 and a message naming the
key and its line; a run that fails exits with status 1; a run stopped by Ctrl-C exits with
status 130 (a run stopped in its time loop, on any backend, first saves the steps done,
marked ``info["interrupted"]``).
Output files are written under a temporary name and renamed when complete.

The demo runs the classic single-population example of Omurtag, Knight & Sirovich (2000)
with both backends, prints the rates, the Monte Carlo standard error and the wall times, and
writes a two-panel PNG (rate against time; final density against the Monte Carlo
histogram).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["main", "demo", "build_parser", "run_scenario"]

# The demo's fixed parameters (dimensionless voltage: threshold 1, reset 0).
TAU_M = 0.05          # s
INPUT_RATE = 800.0    # Hz
JUMP = 0.03           # jump per input event (threshold = 1)
DT = 1e-4             # s
BIN = 1e-3            # s, rate bins for the peak and the plot
STEADY_WINDOW = 0.1   # s, the steady rate is the mean over the last 100 ms


def _network():
    import popdens as pd

    net = pd.Network()
    ext = net.add_poisson("ext", rate=INPUT_RATE)
    pop = net.add_population("E", pd.LIF(tau_m=TAU_M, v_th=1.0, v_reset=0.0))
    net.connect(ext, pop, weight=JUMP)
    return net


def _peak(result, name: str) -> tuple[float, float]:
    """Largest 1-ms-binned rate (Hz) and the centre of its bin (s)."""
    t_bins, r = result.binned_rates(name, BIN)
    if r.size == 0:   # a run shorter than one bin: use the steps themselves
        t_bins, r = result.t, np.asarray(result.rates[name])
        width = result.dt
    else:
        width = max(1, int(round(BIN / result.dt))) * result.dt
    k = int(np.argmax(r))
    return float(r[k]), float(t_bins[k] + 0.5 * width)


def demo(t_end: float = 0.3, n_neurons: int = 100_000, seed: int = 1,
         output: str | Path | None = "popdens_demo.png", dt: float = DT,
         file=None) -> dict:
    """Run the single-population demo with both backends and report.

    One LIF population (``tau_m`` = 50 ms, threshold 1, reset 0, ``e_l`` = 0, no
    refractory period), every neuron at ``v = 0`` at ``t = 0``, receives Poisson input
    jumps of 0.03 at 800 Hz from ``t = 0`` (Omurtag, Knight & Sirovich 2000). The density
    backend (default grid) and a Monte Carlo run of ``n_neurons`` neurons integrate it to
    ``t_end``; both record the density at ``t_end``.

    Parameters
    ----------
    t_end : float, default 0.3
        Duration (s).
    n_neurons : int, default 100000
        Monte Carlo neurons.
    seed : int, default 1
        Monte Carlo seed.
    output : str, Path or None, default "popdens_demo.png"
        Where to write the PNG; ``None`` skips the plot.
    dt : float, default 1e-4
        Reporting step (s).
    file : text stream, optional
        Where to print the report; default ``sys.stdout``.

    Returns
    -------
    dict
        ``density_peak_rate`` / ``montecarlo_peak_rate`` (Hz) and
        ``density_peak_time`` / ``montecarlo_peak_time`` (s, centre of the 1-ms bin);
        ``density_steady_rate``, ``montecarlo_steady_rate`` (Hz, mean over the last
        ``steady_window`` s) and ``montecarlo_standard_error`` (Hz, Poisson standard error
        of that mean); ``stationary_rate`` (Hz, :func:`popdens.steady_state`);
        ``density_wall_time`` / ``montecarlo_wall_time`` (s, integration only) and
        ``density_total_time`` / ``montecarlo_total_time`` (s, with setup and numba
        compilation); ``output`` (the PNG path or None); ``density`` and ``montecarlo``
        (the two :class:`popdens.Result` objects).
    """
    import popdens as pd

    out = sys.stdout if file is None else file
    net = _network()
    name = "E"

    start = time.perf_counter()
    # one step first: it compiles the kernels (or loads numba's cache), so that
    # res.wall_time measures the integration alone, as Monte Carlo's does
    net.run(t_end=dt, dt=dt, record_times=[dt])
    res = net.run(t_end=t_end, dt=dt, record_times=[t_end])
    density_total = time.perf_counter() - start

    start = time.perf_counter()
    mc = net.run(t_end=t_end, dt=dt, backend="montecarlo", n_neurons=n_neurons, seed=seed,
                 record_times=[t_end])
    mc_total = time.perf_counter() - start

    stationary = pd.steady_state(net, dt=dt).rates[name]

    summary = _demo_summary(res, mc, name, t_end, dt, n_neurons)
    summary.update(stationary_rate=stationary, density_total_time=density_total,
                   montecarlo_total_time=mc_total)
    lines = _demo_report(summary, res.grids[name].axes[0], t_end, dt, n_neurons, seed)

    path = None
    if output is not None:
        path = Path(output)
        _demo_figure(res, mc, name, path, stationary)
        lines.append(f"figure written to {path}")
    print("\n".join(lines), file=out)

    summary.update(output=path, density=res, montecarlo=mc)
    return summary


def _demo_summary(res, mc, name: str, t_end: float, dt: float, n_neurons: int) -> dict:
    """Peak and steady rates of both runs, the Monte Carlo standard error, wall times."""
    window = min(STEADY_WINDOW, t_end)
    t_from = t_end - window
    mc_steady = mc.mean_rate(name, t_from)
    window_steps = int(np.count_nonzero(mc.t >= t_from - 1e-12))
    density_peak, density_peak_t = _peak(res, name)
    mc_peak, mc_peak_t = _peak(mc, name)
    return {
        "density_peak_rate": density_peak, "density_peak_time": density_peak_t,
        "montecarlo_peak_rate": mc_peak, "montecarlo_peak_time": mc_peak_t,
        "density_steady_rate": res.mean_rate(name, t_from), "montecarlo_steady_rate": mc_steady,
        "montecarlo_standard_error": math.sqrt(max(mc_steady, 0.0)
                                               / (n_neurons * window_steps * dt)),
        "steady_window": window,
        "density_wall_time": res.wall_time, "montecarlo_wall_time": mc.wall_time,
    }


def _demo_report(s: dict, grid, t_end: float, dt: float, n_neurons: int,
                 seed: int) -> list[str]:
    """The demo's printed table (``s``: the summary of :func:`demo`)."""
    d_steady, m_steady, se = (s["density_steady_rate"], s["montecarlo_steady_rate"],
                              s["montecarlo_standard_error"])
    z = (d_steady - m_steady) / se if se > 0 else float("nan")
    window_ms = 1e3 * s["steady_window"]
    return [
        "popdens demo: one LIF population (tau_m = 50 ms, threshold 1, reset 0, no "
        "refractory period)",
        f"  input: Poisson jumps h = {JUMP:g} at {INPUT_RATE:g} Hz from t = 0, every "
        "neuron starting at v = 0",
        f"  t_end = {t_end:g} s, dt = {1e3 * dt:g} ms, grid {grid.num_cells} cells on "
        f"[{grid.lower:g}, {grid.upper:g}]; Monte Carlo N = {n_neurons:,}, seed {seed}",
        "",
        f"{'':34}{'density':>14}{'Monte Carlo':>14}",
        f"{'transient peak (1-ms bins) [Hz]':34}{s['density_peak_rate']:14.3f}"
        f"{s['montecarlo_peak_rate']:14.3f}",
        f"{'  at t [ms]':34}{1e3 * s['density_peak_time']:14.1f}"
        f"{1e3 * s['montecarlo_peak_time']:14.1f}",
        f"{f'steady rate (last {window_ms:g} ms) [Hz]':34}"
        f"{d_steady:14.3f}{m_steady:14.3f}",
        f"{'  Monte Carlo standard error [Hz]':34}{'':14}{se:14.3f}",
        f"{'wall time, integration [s]':34}{s['density_wall_time']:14.3f}"
        f"{s['montecarlo_wall_time']:14.3f}",
        f"{'wall time, with setup+compile [s]':34}{s['density_total_time']:14.3f}"
        f"{s['montecarlo_total_time']:14.3f}",
        "",
        f"density - Monte Carlo steady rate: {d_steady - m_steady:+.3f} Hz "
        f"({z:+.2f} standard errors)",
        f"stationary rate (pd.steady_state): {s['stationary_rate']:.3f} Hz",
    ]


def _demo_figure(res, mc, name: str, path: Path, stationary: float) -> None:
    """Two panels: rates against time, and the final density against the histogram."""
    # A bare Figure renders with Agg when saved as PNG: no pyplot, no display, and the
    # caller's matplotlib backend is left alone.
    from matplotlib.figure import Figure

    from . import plot

    fig = Figure(figsize=(11.0, 4.2), layout="constrained")
    ax_rate, ax_density = fig.subplots(1, 2)
    plot.rates([res, mc], names=name, bin_width=BIN, ax=ax_rate)
    ax_rate.axhline(stationary, color="0.4", ls=":", lw=1.0,
                    label=f"stationary {stationary:.2f} Hz")
    ax_rate.legend(frameon=False)
    ax_rate.set_title("firing rate after the input is switched on")
    plot.density(res, name, ax=ax_density, other=mc)
    fig.suptitle("popdens demo: LIF, jumps h = 0.03 at 800 Hz (Omurtag, Knight & "
                 "Sirovich 2000)")
    fig.savefig(path, dpi=120)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(float(text)) if float(text).is_integer() else None
    except ValueError:
        value = None
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


def _memory(text: str) -> int:
    from ._limits import parse_memory

    try:
        return parse_memory(text, "--max-memory")
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_limit_options(parser) -> None:
    parser.add_argument("--max-memory", type=_memory, metavar="SIZE",
                        help="refuse runs estimated to need more memory (bytes, or e.g. "
                             "8GB, 512MiB; default 4 GiB or half the physical memory)")
    parser.add_argument("--max-steps", type=_positive_int, metavar="N",
                        help="refuse runs of more internal steps (default 1e9)")


def build_parser() -> argparse.ArgumentParser:
    """The ``popdens`` argument parser."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="popdens",
        description="Population-density simulation of spiking neuron populations.")
    parser.add_argument("--version", action="version", version=f"popdens {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = sub.add_parser(
        "demo", help="run the single-population LIF example with both backends",
        description="LIF population (tau_m = 50 ms, threshold 1, reset 0) driven by Poisson "
                    "jumps of 0.03 at 800 Hz from t = 0: density backend against Monte "
                    "Carlo, with a PNG of rates and densities.")
    p.add_argument("--t-end", type=_positive_float, default=0.3, metavar="SECONDS",
                   help="duration in seconds (default 0.3)")
    p.add_argument("--neurons", type=_positive_int, default=100_000, metavar="N",
                   help="Monte Carlo neurons (default 100000)")
    p.add_argument("--seed", type=_seed, default=1, help="Monte Carlo seed (default 1)")
    p.add_argument("--output", default="popdens_demo.png", metavar="PNG",
                   help="figure path (default popdens_demo.png in the current directory)")
    p.add_argument("--no-plot", action="store_true", help="skip the figure")

    r = sub.add_parser(
        "run", help="run a scenario file (TOML)",
        description="Validate a scenario file completely, then run it: prints the mean "
                    "rate of every population and the wall time; optionally writes a "
                    "figure (--plot) and the result (--save, .npz or .nc).")
    r.add_argument("scenario", metavar="SCENARIO.toml", help="scenario file")
    r.add_argument("--plot", metavar="PNG", help="write a figure of rates and densities")
    r.add_argument("--save", metavar="FILE", help="write the result (.npz, or .nc with "
                                                  "xarray)")
    r.add_argument("--t-end", type=_positive_float, metavar="SECONDS",
                   help="override the duration (s)")
    r.add_argument("--dt", type=_positive_float, metavar="SECONDS",
                   help="override the reporting step (s)")
    r.add_argument("--backend", choices=("density", "montecarlo"),
                   help="override the backend")
    r.add_argument("--neurons", type=_positive_int, metavar="N",
                   help="Monte Carlo neurons per population (overrides the file)")
    r.add_argument("--seed", type=_seed, help="Monte Carlo seed (overrides the file)")
    _add_limit_options(r)

    c = sub.add_parser("check", help="validate scenario files without running them",
                       description="Validate scenario files: every problem is reported "
                                   "with its key and line; exit status 2 if any.")
    c.add_argument("scenarios", metavar="SCENARIO.toml", nargs="+")
    _add_limit_options(c)

    q = sub.add_parser("plot", help="figure of a saved result (.npz or .nc)",
                       description="Rates (with Monte Carlo confidence bands) and the last "
                                   "recorded densities of a result saved with --save or "
                                   "Result.save.")
    q.add_argument("result", metavar="RESULT", help="a .npz or .nc file")
    q.add_argument("--output", required=True, metavar="PNG", help="figure path")
    return parser


# Exit status of a run stopped by Ctrl-C (128 + SIGINT, as shells report it)
INTERRUPTED_STATUS = 130


def _write_atomically(path, write) -> None:
    """``write(temporary_path)``, then rename it to ``path``: a reader (or a crash) never
    sees a half-written file, and an existing file is replaced only by a complete one."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial{path.suffix}")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _write_figure(result, path: Path) -> None:
    from . import plot

    fig = plot.summary(result)
    # the temporary name keeps the suffix, from which matplotlib takes the format
    _write_atomically(path, lambda target: fig.savefig(target, dpi=120))


def run_scenario(path, t_end: float | None = None, dt: float | None = None,
                 backend: str | None = None, n_neurons: int | None = None,
                 seed: int | None = None, plot_path=None, save_path=None, file=None,
                 max_memory=None, max_steps=None):
    """Run a scenario file and report, as ``popdens run`` does.

    Parameters
    ----------
    path : str or Path
        Scenario file (TOML).
    t_end, dt : float, optional
        Override the duration / reporting step (s).
    backend : {"density", "montecarlo"}, optional
        Override the backend.
    n_neurons, seed : int, optional
        Override the Monte Carlo options.
    plot_path, save_path : str or Path, optional
        Where to write the figure (PNG) and the result (``.npz`` / ``.nc``).
    file : text stream, optional
        Where to print; default ``sys.stdout``.
    max_memory, max_steps : optional
        Resource limits (see :meth:`popdens.Network.run`); the run is sized first.

    Returns
    -------
    popdens.Result

    Raises
    ------
    popdens.scenario.ScenarioError
        If the file is invalid or the run exceeds a resource limit (before anything
        runs).

    Notes
    -----
    Files are written to a temporary name in the same folder, then renamed. A run
    stopped by Ctrl-C (any backend) returns the steps done with
    ``info["interrupted"] = True``; that partial result is reported, saved and plotted
    like a complete one.
    """
    from .scenario import load_scenario

    out = sys.stdout if file is None else file
    scenario = load_scenario(path)
    backend = backend or scenario.backend
    overrides = {}
    if backend == "montecarlo":
        overrides = {"n_neurons": n_neurons, "seed": seed}
    limits = {"max_memory": max_memory, "max_steps": max_steps}
    scenario.check_resources(t_end=t_end, dt=dt, backend=backend, **limits, **overrides)
    start = time.perf_counter()
    result = scenario.run(t_end=t_end, dt=dt, backend=backend, **limits, **overrides)
    total = time.perf_counter() - start
    duration = result.t.size * result.dt
    sizes = result.n_neurons
    if isinstance(sizes, dict):
        sizes = ", ".join(f"{name} {n:,}" for name, n in sizes.items())
    elif sizes:
        sizes = f"{sizes:,} per population"
    lines = [f"popdens run {path}" + (f": {scenario.title}" if scenario.title else ""),
             f"  backend {result.backend}"
             + (f", N = {sizes}, seed {result.info.get('seed')}" if sizes else "")
             + f"; t_end = {duration:g} s, dt = {1e3 * result.dt:g} ms",
             f"  {'population':<14}{'mean rate [Hz]':>16}{'last 20 % [Hz]':>16}"]
    for name in result.rates:
        lines.append(f"  {name:<14}{result.mean_rate(name):16.4g}"
                     f"{result.mean_rate(name, 0.8 * duration):16.4g}")
    lines.append(f"  wall time: {result.wall_time:.3f} s integration, {total:.3f} s with "
                 f"setup and compilation")
    if result.info.get("interrupted"):
        lines.append(f"  interrupted by Ctrl-C after {duration:g} s simulated "
                     f"(result marked info['interrupted'])")
    if save_path is not None:
        _write_atomically(save_path, result.save)
        lines.append(f"result written to {save_path}")
    if plot_path is not None:
        _write_figure(result, Path(plot_path))
        lines.append(f"figure written to {plot_path}")
    print("\n".join(lines), file=out)
    return result


def _check_output_folder(parser, option: str, value) -> None:
    if value is not None and not Path(value).resolve().parent.is_dir():
        parser.error(f"{option}: the folder of {str(value)!r} does not exist")


def _fail(message: str, status: int) -> int:
    print(f"popdens: error: {message}", file=sys.stderr)
    return status


def main(argv=None):
    """Entry point of the ``popdens`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        Exit status 0 on success (the console script passes it to ``sys.exit``); invalid
        arguments exit with status 2 (argparse). Call :func:`demo` for the numbers.
    """
    parser = build_parser()
    args = parser.parse_args(None if argv is None else [str(a) for a in argv])
    if args.command == "demo":
        if args.t_end < DT:
            parser.error(f"--t-end must be >= dt = {DT:g} s, got {args.t_end:g}")
        steps = args.t_end / DT
        if abs(steps - round(steps)) > 1e-9 * steps:
            parser.error(f"--t-end must be a whole number of steps dt = {DT:g} s, got "
                         f"{args.t_end!r}; nearest: {round(steps) * DT:.12g}")
        if not args.no_plot and not Path(args.output).resolve().parent.is_dir():
            parser.error(f"--output: the folder of {args.output!r} does not exist")
        demo(t_end=args.t_end, n_neurons=args.neurons, seed=args.seed,
             output=None if args.no_plot else args.output)
        return 0
    if args.command == "run":
        return _main_run(parser, args)
    if args.command == "check":
        return _main_check(args)
    if args.command == "plot":
        return _main_plot(parser, args)
    parser.error(f"unknown command {args.command!r}")   # pragma: no cover


def _main_run(parser, args) -> int:
    from .scenario import ScenarioError

    _check_output_folder(parser, "--plot", args.plot)
    _check_output_folder(parser, "--save", args.save)
    if args.save is not None and Path(args.save).suffix.lower() not in (".npz", ".nc"):
        parser.error(f"--save: use a file name ending in .npz or .nc, got {args.save!r}")
    if args.save is not None and Path(args.save).suffix.lower() == ".nc":
        try:
            import xarray  # noqa: F401
        except ImportError:
            parser.error("--save: .nc files need xarray (pip install 'popdens[xarray]'); "
                         "use .npz")
    try:
        result = run_scenario(args.scenario, t_end=args.t_end, dt=args.dt,
                              backend=args.backend, n_neurons=args.neurons, seed=args.seed,
                              plot_path=args.plot, save_path=args.save,
                              max_memory=args.max_memory, max_steps=args.max_steps)
    except KeyboardInterrupt:     # before the time loop (start-up, compilation)
        return _fail("interrupted; nothing was saved", INTERRUPTED_STATUS)
    except FileNotFoundError as exc:
        return _fail(str(exc), 2)
    except ScenarioError as exc:
        return _fail(str(exc), 2)
    except NotImplementedError as exc:
        return _fail(f"this popdens cannot run the scenario yet: {exc}", 1)
    except (ValueError, TypeError, FloatingPointError) as exc:
        return _fail(f"the run failed: {exc}", 1)
    if result.info.get("interrupted"):
        return INTERRUPTED_STATUS
    return 0


def _main_check(args) -> int:
    from .scenario import ScenarioError, load_scenario

    status = 0
    for path in args.scenarios:
        try:
            scenario = load_scenario(path)
            scenario.check_resources(max_memory=args.max_memory, max_steps=args.max_steps)
        except (FileNotFoundError, ScenarioError) as exc:
            print(f"popdens: error: {exc}", file=sys.stderr)
            status = 2
            continue
        net = scenario.network
        print(f"{path}: OK ({len(net.populations)} population"
              f"{'s' if len(net.populations) != 1 else ''}, {len(net.sources)} source"
              f"{'s' if len(net.sources) != 1 else ''}, "
              + (f"{len(net.rate_populations)} rate unit"
                 f"{'s' if len(net.rate_populations) != 1 else ''}, "
                 if net.rate_populations else "")
              + f"{len(net.connections)} connection"
              f"{'s' if len(net.connections) != 1 else ''}; t_end = {scenario.t_end:g} s, "
              f"backend {scenario.backend})")
    return status


def _main_plot(parser, args) -> int:
    from .io import ResultFileError, load

    _check_output_folder(parser, "--output", args.output)
    try:
        result = load(args.result)
    except ResultFileError as exc:      # its message names the file
        return _fail(str(exc), 2)
    except (FileNotFoundError, ValueError, ImportError) as exc:
        return _fail(f"cannot read {args.result!r}: {exc}", 2)
    _write_figure(result, Path(args.output))
    print(f"figure written to {args.output}")
    return 0
