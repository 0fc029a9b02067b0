"""Running networks that hold rate units beside spiking populations, on either backend.

The spiking part runs on its backend as it would alone, with every rate unit that
drives a spiking population replaced by a Poisson source of the unit's rate (step means;
the connection keeps its ``weight``, ``n_syn``, delay and synaptic kernel). Three cases:

* no rate unit that drives a spiking population depends on one (directly or through
  other units): the units' rates are computed first, the spiking part runs with them as
  ``pd.piecewise`` sources (either backend, every engine), and the units that listen to
  spiking populations are computed afterwards from the recorded rates (Monte Carlo: the
  measured rates; the units stay deterministic);
* on the Monte Carlo, ``rate_units="poisson"`` makes the units spike: each is
  ``n_neurons`` Poisson neurons (its entry of an ``n_neurons`` dict, else the common
  number) and reports, and passes downstream, its measured rate
  (:class:`popdens.rate_units.RateUnits`); ``Result.info["rate_unit_intensity"]`` keeps
  the underlying rates, ``info["rate_unit_seed"]`` the seed (the Monte Carlo's). The
  default, ``"deterministic"``, passes the rates themselves;
* otherwise (a loop: population -> unit -> population) the 1D density engine runs one
  reporting step at a time and, before each step, the units advance on the rates of the
  steps before and write their rate into that step's source rates. Other engines and the
  Monte Carlo raise ``NotImplementedError`` for such loops.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .. import _limits
from ..network import (
    Network,
    Population,
    RatePopulation,
    piecewise,
    register_coupled_runner,
)
from ..rate_units import RateUnits
from ..result import Result

__all__ = ["run", "spiking_part", "listening_units"]


def listening_units(network: Network) -> set:
    """Names of the rate units whose input depends on a spiking population."""
    found: set = set()
    changed = True
    while changed:
        changed = False
        for conn in network.connections:
            post = conn.post
            if not isinstance(post, RatePopulation) or post.name in found:
                continue
            if isinstance(conn.pre, Population) or conn.pre.name in found:
                found.add(post.name)
                changed = True
    return found


def spiking_part(network: Network, unit_rates: dict, dt: float) -> tuple[Network, list]:
    """The spiking populations and sources of ``network``, with every rate unit that
    drives a population replaced by a source of rate ``unit_rates[name]`` (step means).

    Returns the network and the indices (in its ``connections``) of the replaced
    connections, with the unit each comes from."""
    part = Network()
    part.sources = dict(network.sources)
    part.populations = dict(network.populations)
    replaced = []
    for conn in network.connections:
        if isinstance(conn.post, RatePopulation):
            continue
        pre = conn.pre
        if isinstance(pre, RatePopulation):
            table = unit_rates[pre.name]
            times = np.arange(max(table.size, 1)) * dt
            source = part.sources.get(pre.name)
            if source is None:
                source = part.add_poisson(pre.name, piecewise(times, np.maximum(
                    table if table.size else np.zeros(1), 0.0)))
            replaced.append((len(part.connections), pre.name))
            pre = source
        part.connections.append(replace(conn, pre=pre))
    return part, replaced


MODES = ("deterministic", "poisson")


def _spiking_units(network: Network, backend: str, options: dict) -> dict:
    """Pop the ``rate_units`` option (and units' sizes) from ``options``; the
    ``spiking`` argument of :class:`RateUnits`: ``{name: (N, generator)}`` or ``{}``."""
    mode = options.pop("rate_units", "deterministic")
    if mode not in MODES:
        raise ValueError(f"rate_units must be one of {MODES}, got {mode!r}")
    sizes = options.get("n_neurons", 10_000)
    if isinstance(sizes, dict):     # the units' sizes are not the spiking backend's
        options["n_neurons"] = {k: v for k, v in sizes.items()
                                if k not in network.rate_populations}
    if mode == "deterministic":
        return {}
    if backend != "montecarlo":
        raise ValueError(f"rate_units={mode!r} is a Monte Carlo option; the {backend} "
                         f"backend integrates rate units deterministically")
    if options.get("seed") is None:  # drawn here, so that the Monte Carlo keeps it too
        options["seed"] = int(np.random.SeedSequence().entropy % 2**63)
    out = {}
    for k, name in enumerate(network.rate_populations):
        size = sizes.get(name) if isinstance(sizes, dict) else sizes
        if size is None:
            raise ValueError(f"n_neurons has no size for the Poisson-spiking rate unit "
                             f"{name!r}; add {{{name!r}: N}}")
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"n_neurons[{name!r}] must be an integer >= 1, got {size!r}")
        # one stream per unit, apart from the Monte Carlo's own (spawn key 1000 + k)
        out[name] = (int(size), np.random.default_rng(
            np.random.SeedSequence(options["seed"], spawn_key=(1000 + k,))))
    return out


def run(network: Network, t_end: float, dt: float, backend: str, options: dict) -> Result:
    """``network.run`` for a network with rate units (see the module docstring)."""
    n_steps = int(round(t_end / dt))
    listening = listening_units(network)
    loop = any(isinstance(c.pre, RatePopulation) and c.pre.name in listening
               and isinstance(c.post, Population) for c in network.connections)
    options = dict(options)
    spiking = _spiking_units(network, backend, options)
    units = RateUnits(network, n_steps, dt, _fresh(spiking))
    if loop:
        return _run_loop(network, t_end, dt, backend, options, units)
    no_pops = {name: np.zeros(n_steps) for name in network.populations}
    units.run(0, n_steps, no_pops)            # exact for the units that drive populations
    if not network.populations:
        return _only_units(units, n_steps, dt)
    part, _ = spiking_part(network, units.rates, dt)
    result = part.run(t_end, dt, backend=backend, **options)
    if listening:   # the same streams again: units upstream of populations repeat exactly
        units = RateUnits(network, n_steps, dt, _fresh(spiking))
        units.run(0, n_steps, result.rates)
    return _with_units(result, units)


def _fresh(spiking: dict) -> dict:
    """The spiking units' generators, restarted from their seeds."""
    return {name: (size, np.random.default_rng(rng.bit_generator.seed_seq))
            for name, (size, rng) in spiking.items()}


def _only_units(units, n_steps, dt) -> Result:
    return _with_units(Result(t=np.arange(n_steps) * dt, dt=dt, rates={},
                              record_times=np.zeros(0), densities={}, grids={},
                              backend="rates", info={}), units)


def _with_units(result: Result, units: RateUnits) -> Result:
    result.rates.update({name: rates.copy() for name, rates in units.rates.items()})
    result.info["rate_units"] = list(units.rates)
    result.info["rate_units_mode"] = "poisson" if units.spiking else "deterministic"
    if units.spiking:
        result.info["rate_unit_intensity"] = {name: rates.copy() for name, rates
                                              in units.intensity.items()}
        result.info["rate_unit_neurons"] = {name: size for name, (size, _)
                                            in units.spiking.items()}
        first = next(iter(units.spiking.values()))[1]
        result.info["rate_unit_seed"] = first.bit_generator.seed_seq.entropy
    return result


def _run_loop(network, t_end, dt, backend, options, units) -> Result:
    """Population -> unit -> population: the 1D density engine in lockstep."""
    from .density import prepare, split_by_engine
    if backend != "density":
        raise NotImplementedError(
            f"backend={backend!r}: rate units that listen to spiking populations and drive "
            f"them back (a loop) run on the density backend only; the Monte Carlo runs "
            f"rate units that only drive populations, or only listen to them")
    n_steps = int(round(t_end / dt))
    guess = {u.name: np.full(n_steps, _rate_guess(u)) for u in units.units}
    part, replaced = spiking_part(network, guess, dt)
    one_d, n_d = split_by_engine(part)
    if n_d:
        raise NotImplementedError(
            f"populations {n_d} run on the N-D engine, which does not take rate units in a "
            f"loop yet (population -> rate unit -> population)")
    options = dict(options)
    run_limits = _limits.limits(options.pop("max_memory", None),
                                options.pop("max_steps", None))
    _limits.check_run(part, t_end, dt, backend, options, run_limits)
    record_times = options.pop("record_times", ())
    progress = bool(options.pop("progress", True))
    with _limits.active(run_limits):
        sim = prepare(part, t_end, dt, **options)
        sim.before_step = _loop_hook(sim, part, units, replaced)
        result = sim.run(record_times=record_times, progress=progress)
    return _with_units(result, units)


def _rate_guess(unit) -> float:
    """A rate for sizing the default grid and sub-steps before the unit has run."""
    top = getattr(unit.transfer, "max_rate", None)
    return float(top) if top is not None and np.isfinite(top) else 100.0


def _loop_hook(sim, part, units, replaced):
    """Before step ``k``: advance the units over step ``k`` and write the source rates
    of that step, ``n_syn * sum_l w_l rbar[k - l]`` (lag 0 included: ``rbar_k`` is
    known now)."""
    index = {name: q for q, name in enumerate(sim.names)}
    lags = {c: part.connections[c].delay.lag_weights(sim.dt) for c, _ in replaced}

    def hook(k):
        pop_rates = {name: sim.rates[q] for name, q in index.items()}
        units.step(k, pop_rates)
        for c, name in replaced:
            w = lags[c]
            last = min(w.size - 1, k)
            seen = float(np.dot(w[:last + 1], units.rates[name][k::-1][:last + 1]))
            sim.conn_rate[c, k] = part.connections[c].n_syn * seen
    return hook


register_coupled_runner("rate_units", run)
