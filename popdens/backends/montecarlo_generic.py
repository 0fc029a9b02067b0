"""Monte Carlo of any :class:`popdens.Model`, written against the model interface only.

Networks with a model that has no compiled single-neuron update (``compiled_params()``
returns None: user-written subclasses of :class:`popdens.Model`,
:class:`popdens.EquationModel`, LIF beside N-D models) run here, and so do networks with
``input="diffusion"`` onto the integrate-and-fire family (white noise, which the compiled
loop does not simulate; the family's compiled step is this engine's Runge-Kutta step).
Every other network, the built-in integrate-and-fire family (EIF, QIF, AdEx, Izhikevich,
FitzHugh-Nagumo) included, runs in the compiled loop
(:mod:`popdens.backends.montecarlo_nd`); the ``"montecarlo"`` backend hands these over. All
neurons of a population advance together as NumPy arrays, one internal step ``h`` at a
time:

1. the deterministic part moves each neuron by the model's flow over ``h``
   (:meth:`Model.flow`: exact where the model has one, classic Runge-Kutta otherwise);
2. Poisson events of each ``input="jump"`` connection arrive, ``K ~ Poisson(rate h)``
   per neuron at the end of the step: a current synapse moves :attr:`Model.input_var` by
   ``K s`` (``s = jump_size(weight)``), a conductance synapse ``K`` times by
   ``w (E - x)``, i.e. to ``E + (x - E)(1 - w)^K``; an ``input="diffusion"``
   connection adds its Fokker-Planck drift and Gaussian noise (Euler-Maruyama), and so
   does the model's own white noise (:meth:`Model.intrinsic_diffusion`: ``sqrt(2 D h)``
   times a standard normal per noisy variable);
3. spikes: a :class:`ThresholdReset` fires when the threshold variable reaches the
   threshold at the step end, or, with diffusion along the threshold variable (input or
   the model's own), when the Brownian bridge between
   the two end points crossed it (probability ``exp(-2 a b / (2 D h))`` with ``a, b``
   the distances below threshold); the neuron is held for the refractory period and
   released at the reset with its other variables mapped by
   :meth:`Model.refractory_map`. A :class:`SpikeSurface` fires on an upward crossing
   of its plane between the two ends of the step.

The scheme is first order in ``h`` (events at step ends); the default internal step is
10 us (:data:`DEFAULT_INTERNAL_DT`), well below the time scales of integrate-and-fire
models. Connections from populations deliver independent Poisson events at the pre
population's measured rate of earlier steps, weighted by the delay's lags (as
``connectivity="poisson"`` of the compiled Monte Carlo backends).
"""

from __future__ import annotations

import json
import math
import time

import numpy as np

from .._checks import UnknownOptionError, check_positive
from ..delays import delayed_rates
from ..grid import Grid
from ..models.base import ThresholdReset, rk4_step
from ..network import PoissonSource
from ..progress import run_chunks
from ..result import Result
from . import common as _mc
from .common import MC_DEFAULT_INTERNAL_DT
from .continuation import (
    Checkpointer,
    copy_into,
    monte_carlo_start,
    saved_grids,
    shifted_record_times,
    stamp,
)

__all__ = ["run", "DEFAULT_INTERNAL_DT"]

OPTIONS = ("n_neurons", "seed", "record_times", "internal_dt", "connectivity", "init",
           "checkpoint", "checkpoint_every")

DEFAULT_INTERNAL_DT = MC_DEFAULT_INTERNAL_DT
"""Default internal step (s): first-order event timing; the rate error it causes is
measured in ``tests/models/test_user_model.py``."""


class _Population:
    """One population's neurons and inputs, advanced by :meth:`step`."""

    def __init__(self, pop, grid, n, rng, network, step_starts, dt, first=0, draw=True):
        self.pop, self.model, self.grid, self.n = pop, pop.model, grid, n
        self.rule = self.model.spike_rule
        self.y = (_mc.initial_states(pop, grid, n, rng).T.copy() if draw    # (ndim, n)
                  else np.zeros((len(self.model.state_vars), n)))
        self.var = self.model.state_vars.index(self.rule.var)
        self.input_axis = self.model.state_vars.index(self.model.input_var)
        self.release_at = np.full(n, -np.inf)          # end of refractory period
        # the model's own white noise: (axis, D) per noisy state variable
        self.own_noise = [(self.model.state_vars.index(v), float(d))
                          for v, d in self.model.intrinsic_diffusion().items() if d > 0.0]
        self.inputs = []
        for conn in network.inputs_of(pop):
            # tables per step from step 0 (a continued run fills those of its steps)
            table = np.zeros(first + step_starts.size)
            if isinstance(conn.pre, PoissonSource):
                table[first:] = network.source_rate_table(conn, step_starts, dt)
                self.inputs.append([conn, table, None])
            else:
                lags = conn.delay.explicit_lag_weights(dt)
                self.inputs.append([conn, table, lags])

    def step(self, t, h, rates, rng):
        """Advance by ``h`` from ``t`` with input ``rates`` (one per connection);
        return the number of spikes."""
        self._release(t)
        active = ~np.isnan(self.y[self.var])   # refractory neurons are NaN
        y0 = self.y[:, active]
        with np.errstate(over="ignore", invalid="ignore"):
            y1 = self._deterministic(y0, h)
        noise = 0.0    # diffusion coefficient along the threshold variable
        for axis, diffusion in self.own_noise:
            y1[axis] += math.sqrt(2.0 * diffusion * h) * rng.standard_normal(y1.shape[1])
            if axis == self.var:
                noise += diffusion
        x = y1[self.input_axis]
        for (conn, _, _), rate in zip(self.inputs, rates):
            if conn.input == "diffusion":
                mean, diffusion = self.model.input_diffusion(rate, conn.weight)
                x += mean * h + math.sqrt(2.0 * diffusion * h) * rng.standard_normal(x.size)
                if self.input_axis == self.var:
                    noise += diffusion
                continue
            k = rng.poisson(rate * h, size=x.size)
            if conn.reversal is None:
                x += k * self.model.jump_size(conn.weight)
            else:
                x[:] = conn.reversal + (x - conn.reversal) * (1.0 - conn.weight) ** k
        fired = self._crossed(y0[self.var], y1[self.var], noise, h, rng)
        self.y[:, active] = y1
        spiking = np.flatnonzero(active)[fired]
        self._fire(spiking, t + h)
        return spiking.size

    def _deterministic(self, y0, h):
        """The drift's move over ``h``: the model's exact flow, or one classic
        Runge-Kutta step (a neuron that diverges, as the EIF past its cut-off, ends
        non-finite and counts as having crossed the threshold)."""
        if self.model.exact_flow:
            moved = self.model.flow(*y0, h)
            return np.array(moved, dtype=float).reshape(y0.shape)
        return np.array(rk4_step(self.model.drift_components, list(y0), h))

    def _crossed(self, before, after, noise, h, rng):
        rule = self.rule
        if not isinstance(rule, ThresholdReset):
            if not np.all(np.isfinite(after)):
                raise FloatingPointError(
                    f"population {self.pop.name!r}: the {type(self.model).__name__} state "
                    f"became non-finite in the Monte Carlo; reduce internal_dt")
            return (before < rule.level) & (after >= rule.level)
        fired = ~(after < rule.threshold)   # NaN / inf: diverged past the threshold
        if noise > 0.0:
            # Brownian bridge between two end points below threshold
            a = np.maximum(rule.threshold - before, 0.0)
            b = np.maximum(rule.threshold - after, 0.0)
            p = np.exp(-a * b / (noise * h))
            fired |= rng.random(before.size) < p
        return fired

    def _fire(self, index, t):
        if not isinstance(self.rule, ThresholdReset) or index.size == 0:
            return
        self.release_at[index] = t + self.rule.refractory
        others = [d for d in range(self.y.shape[0]) if d != self.var]
        if others:
            # the other variables at release, frozen while refractory
            mapped = self.model.refractory_map(*self.y[np.ix_(others, index)])
            self.y[np.ix_(others, index)] = np.array(mapped, dtype=float).reshape(
                len(others), index.size)
        self.y[self.var, index] = np.nan   # off the state space while refractory

    def _release(self, t):
        if not isinstance(self.rule, ThresholdReset):
            return
        due = (self.release_at <= t) & np.isnan(self.y[self.var])
        self.y[self.var, due] = self.rule.reset

    def histogram(self):
        """Counts of the non-refractory neurons on the grid's cells, and how many lie
        outside it."""
        present = ~np.isnan(self.y[self.var])
        index = []
        inside = present.copy()
        for d, axis in enumerate(self.grid.axes):
            cell = np.floor((self.y[d] - axis.lower) / axis.width)
            inside &= (cell >= 0) & (cell < axis.num_cells)
            index.append(cell)
        flat = np.ravel_multi_index(tuple(c[inside].astype(np.int64) for c in index),
                                    self.grid.shape)
        counts = np.bincount(flat, minlength=self.grid.num_cells)
        return counts.reshape(self.grid.shape), int(present.sum() - inside.sum())


def run(network, t_end: float, dt: float, n_neurons=10_000, seed=None, record_times=(),
        internal_dt: float | None = None, connectivity: str = "poisson", *, init=None,
        checkpoint=None, checkpoint_every: float = 60.0, **options) -> Result:
    """Simulate ``network`` neuron by neuron through the model interface.

    Parameters and result as for the N-D Monte Carlo backend
    (:func:`popdens.backends.montecarlo_nd.run`); ``internal_dt`` (default 10 us) is the
    internal step; ``input="diffusion"`` connections are simulated (Euler-Maruyama with
    the Brownian-bridge threshold correction). The run goes in slices (Ctrl-C stops it
    between two, :func:`popdens.progress.run_chunks`); ``init=`` continues a result
    (neuron states, refractory ends, the spike counts the delays read and the NumPy
    generator's state, ``info["state"]``), ``checkpoint=`` writes the run so far every
    ``checkpoint_every`` seconds of wall time.
    """
    if options:
        unknown = ", ".join(sorted(options))
        raise UnknownOptionError(f"unknown option(s) for the montecarlo backend with "
                                 f"user-written models: {unknown}; valid options are "
                                 f"{', '.join(OPTIONS)}")
    if connectivity != "poisson":
        raise NotImplementedError(
            f"connectivity={connectivity!r}: populations of user-written models receive "
            f"independent Poisson input at the measured, delayed rate of the pre "
            f"population (connectivity='poisson'); fixed in-degree wiring is not "
            f"implemented for them yet")
    t_end = check_positive("t_end", t_end)
    dt = check_positive("dt", dt)
    sizes = _mc.check_sizes(network, n_neurons)
    h_max = DEFAULT_INTERNAL_DT if internal_dt is None else check_positive(
        "internal_dt", internal_dt)
    settings = {"n_neurons": dict(sizes), "connectivity": connectivity,
                "internal_dt": h_max}
    start, seed, checkpoint_every = monte_carlo_start(init, network, "generic", dt, seed,
                                                      checkpoint, checkpoint_every,
                                                      **settings)
    n_sub = max(1, math.ceil(dt / h_max - 1e-9))
    # a continued run counts steps from where the result stopped (tables from step 0)
    first = int(start["step"]) if start is not None else 0
    n_steps = first + max(1, math.ceil(t_end / dt - 1e-9))
    record_steps = first + _mc.record_steps(
        shifted_record_times(record_times, first * dt, t_end), t_end, dt, n_steps - first)
    sim = _Simulation(network, sizes, seed, (t_end, dt), n_sub, first, n_steps,
                      record_steps, start)
    mark = stamp(network, "montecarlo", "generic", dt,
                 {name: p.grid for name, p in sim.pops.items()}, seed=seed, **settings)
    saver = Checkpointer(checkpoint, checkpoint_every)
    started = time.perf_counter()

    def result(done, interrupted):
        return sim.result(done, interrupted, time.perf_counter() - started,
                          {"seed": seed, "connectivity": connectivity,
                           "state": sim.saved_state(done, mark)})

    def advance(step, stop):
        sim.advance(step, stop)
        if stop < n_steps and saver.due():
            saver.save_partial(result(stop, True))
        return stop
    done, interrupted = run_chunks(advance, first, n_steps, "montecarlo (model interface)",
                                   progress=False, max_chunk=_SLICE_STEPS, dt=dt)
    if done == n_steps:
        sim.record(n_steps)
    out = result(done, interrupted)
    saver.save_final(out)
    return out


# Steps per slice between two Ctrl-C checks (NumPy steps: each a few ms at 10^4 neurons).
_SLICE_STEPS = 50


class _Simulation:
    """The populations of one run, their per-step counts and records."""

    def __init__(self, network, sizes, seed, times, n_sub, first, n_steps, record_steps,
                 start):
        t_end, dt = times
        init_seq, run_seq = np.random.SeedSequence(seed).spawn(2)
        init_rng, self.rng = np.random.default_rng(init_seq), np.random.default_rng(run_seq)
        saved = saved_grids(start) if start is not None else {}
        step_starts = np.arange(first, n_steps) * dt
        self.pops = {}
        for name, pop in network.populations.items():
            grid = (Grid(**{ax: tuple(limits) for ax, limits in
                            zip(pop.model.state_vars, saved[name])}) if start is not None
                    else network.grid_of(pop, dt=dt))
            # a continued run draws no initial states (its neurons are restored)
            self.pops[name] = _Population(pop, grid, sizes[name], init_rng, network,
                                          step_starts, dt, first, draw=start is None)
        self.sizes, self.dt, self.n_sub, self.h = sizes, dt, n_sub, dt / n_sub
        self.first, self.record_steps = first, record_steps
        self.spikes = {name: np.zeros(n_steps) for name in self.pops}
        self.refractory = {name: np.zeros(n_steps) for name in self.pops}
        self.densities = {name: np.zeros((record_steps.size, *p.grid.shape))
                          for name, p in self.pops.items()}
        self.outside = {name: np.zeros(record_steps.size) for name in self.pops}
        self.taken = np.zeros(record_steps.size, dtype=bool)
        if start is not None:
            self._restore(start)

    def advance(self, step, stop):
        """Steps ``step .. stop - 1``."""
        h = self.h
        for k in range(step, stop):
            self.record(k)
            _update_coupled_rates(self.pops, self.spikes, self.sizes, self.dt, k)
            for name, p in self.pops.items():
                rates = [table[k] for _, table, _ in p.inputs]
                for sub in range(self.n_sub):
                    self.spikes[name][k] += p.step(k * self.dt + sub * h, h, rates,
                                                   self.rng)
                self.refractory[name][k] = float(np.isnan(p.y[p.var]).sum()) / p.n

    def record(self, step):
        """Histograms of the records due at the start of ``step``."""
        for r in np.flatnonzero(self.record_steps == step):
            self.taken[r] = True
            _record_one(self.pops, r, self.densities, self.outside)

    def saved_state(self, done, mark) -> dict:
        """What a continued run needs: neuron states and refractory ends, the spike
        counts the delays still read, the generator's state, the step reached."""
        # at least one step: netCDF files cannot hold empty arrays
        longest = max((lags.size for p in self.pops.values() for _, _, lags in p.inputs
                       if lags is not None), default=1)
        return {"stamp": mark, "step": int(done),
                "y": {name: p.y.copy() for name, p in self.pops.items()},
                "release_at": {name: p.release_at.copy() for name, p in self.pops.items()},
                "spikes": {name: counts[max(0, done - longest):done].copy()
                           for name, counts in self.spikes.items()},
                "rng": json.dumps(self.rng.bit_generator.state)}

    def _restore(self, start) -> None:
        for name, p in self.pops.items():
            copy_into(p.y, start["y"][name])
            copy_into(p.release_at, start["release_at"][name])
            tail = np.asarray(start["spikes"][name])
            copy_into(self.spikes[name][self.first - tail.size:self.first], tail)
        self.rng.bit_generator.state = json.loads(start["rng"])

    def result(self, done, interrupted, wall_time, info) -> Result:
        """The Result of steps ``first .. done - 1`` and the records taken."""
        first, dt, sizes = self.first, self.dt, self.sizes
        kept = self.taken
        common = set(sizes.values())
        return Result(
            t=np.arange(first, done) * dt, dt=dt,
            rates={name: self.spikes[name][first:done] / (sizes[name] * dt)
                   for name in self.pops},
            record_times=self.record_steps[kept] * dt,
            densities={name: d[kept] for name, d in self.densities.items()},
            grids={name: p.grid for name, p in self.pops.items()}, backend="montecarlo",
            wall_time=wall_time,
            refractory={name: r[first:done].copy() for name, r in self.refractory.items()},
            n_neurons=common.pop() if len(common) == 1 else dict(sizes),
            info={**info, "n_steps": self.spikes[next(iter(self.pops))].size - first,
                  "n_neurons": dict(sizes), "interrupted": interrupted,
                  "steps_done": done - first, "internal_dt": self.h,
                  "internal_steps_per_step": self.n_sub,
                  "outside_grid": {name: o[kept] for name, o in self.outside.items()},
                  "integrator": {name: "model flow over the internal step, events at "
                                       "step ends (first order)" for name in self.pops}})


def _update_coupled_rates(pops, spikes, sizes, dt, step):
    """Fill this step's input rate of every connection from a population."""
    for p in pops.values():
        for entry in p.inputs:
            conn, table, lags = entry
            if lags is None:
                continue
            measured = spikes[conn.pre.name] / (sizes[conn.pre.name] * dt)
            table[step] = conn.n_syn * delayed_rates(measured, lags, step, step + 1)[0]


def _record_one(pops, r, densities, outside):
    for name, p in pops.items():
        counts, off_grid = p.histogram()
        densities[name][r] = counts / (p.n * p.grid.cell_volume)
        outside[name][r] = off_grid / p.n
