"""Monte Carlo of any :class:`popdens.Model`, written against the model interface only.

Networks whose models have no compiled single-neuron kernel (user-written subclasses of
:class:`popdens.Model`) run here; the ``"montecarlo"`` backend hands them over. All
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

import math
import time

import numpy as np

from .._checks import UnknownOptionError, check_positive
from ..delays import delayed_rates
from ..models.base import ThresholdReset, rk4_step
from ..network import PoissonSource
from ..result import Result
from . import common as _mc
from .common import MC_DEFAULT_INTERNAL_DT

__all__ = ["run", "DEFAULT_INTERNAL_DT"]

OPTIONS = ("n_neurons", "seed", "record_times", "internal_dt", "connectivity")

DEFAULT_INTERNAL_DT = MC_DEFAULT_INTERNAL_DT
"""Default internal step (s): first-order event timing; the rate error it causes is
measured in ``tests/models/test_user_model.py``."""


class _Population:
    """One population's neurons and inputs, advanced by :meth:`step`."""

    def __init__(self, pop, grid, n, rng, network, step_starts, dt):
        self.pop, self.model, self.grid, self.n = pop, pop.model, grid, n
        self.rule = self.model.spike_rule
        self.y = _mc.initial_states(pop, grid, n, rng).T.copy()   # (ndim, n)
        self.var = self.model.state_vars.index(self.rule.var)
        self.input_axis = self.model.state_vars.index(self.model.input_var)
        self.release_at = np.full(n, -np.inf)          # end of refractory period
        # the model's own white noise: (axis, D) per noisy state variable
        self.own_noise = [(self.model.state_vars.index(v), float(d))
                          for v, d in self.model.intrinsic_diffusion().items() if d > 0.0]
        self.inputs = []
        for conn in network.inputs_of(pop):
            if isinstance(conn.pre, PoissonSource):
                table = network.source_rate_table(conn, step_starts, dt)
                self.inputs.append([conn, table, None])
            else:
                lags = conn.delay.explicit_lag_weights(dt)
                self.inputs.append([conn, np.zeros(step_starts.size), lags])

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
        internal_dt: float | None = None, connectivity: str = "poisson",
        **options) -> Result:
    """Simulate ``network`` neuron by neuron through the model interface.

    Parameters and result as for the N-D Monte Carlo backend
    (:func:`popdens.backends.montecarlo_nd.run`); ``internal_dt`` (default 10 us) is the
    internal step; ``input="diffusion"`` connections are simulated (Euler-Maruyama with
    the Brownian-bridge threshold correction).
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
    seed = _mc.check_seed(seed)
    h_max = DEFAULT_INTERNAL_DT if internal_dt is None else check_positive(
        "internal_dt", internal_dt)
    n_sub = max(1, math.ceil(dt / h_max - 1e-9))
    h = dt / n_sub
    n_steps = max(1, math.ceil(t_end / dt - 1e-9))
    step_starts = np.arange(n_steps) * dt
    record_steps = _mc.record_steps(record_times, t_end, dt, n_steps)
    init_seq, run_seq = np.random.SeedSequence(seed).spawn(2)
    init_rng, rng = np.random.default_rng(init_seq), np.random.default_rng(run_seq)
    pops = {name: _Population(pop, network.grid_of(pop, t_end, dt), sizes[name], init_rng,
                              network, step_starts, dt)
            for name, pop in network.populations.items()}
    spikes = {name: np.zeros(n_steps) for name in pops}
    refractory = {name: np.zeros(n_steps) for name in pops}
    densities = {name: np.zeros((record_steps.size, *p.grid.shape))
                 for name, p in pops.items()}
    outside = {name: np.zeros(record_steps.size) for name in pops}
    started = time.perf_counter()
    for step in range(n_steps):
        _record(pops, record_steps, step, densities, outside)
        _update_coupled_rates(pops, spikes, sizes, dt, step)
        for name, p in pops.items():
            rates = [table[step] for _, table, _ in p.inputs]
            for sub in range(n_sub):
                spikes[name][step] += p.step(step * dt + sub * h, h, rates, rng)
            refractory[name][step] = float(np.isnan(p.y[p.var]).sum()) / p.n
    wall_time = time.perf_counter() - started
    common = set(sizes.values())
    return Result(
        t=step_starts, dt=dt,
        rates={name: spikes[name] / (sizes[name] * dt) for name in pops},
        record_times=record_steps * dt, densities=densities,
        grids={name: p.grid for name, p in pops.items()}, backend="montecarlo",
        wall_time=wall_time, refractory=refractory,
        n_neurons=common.pop() if len(common) == 1 else dict(sizes),
        info={"seed": seed, "n_steps": n_steps, "n_neurons": dict(sizes),
              "connectivity": connectivity, "internal_dt": h,
              "internal_steps_per_step": n_sub, "outside_grid": outside,
              "integrator": {name: "model flow over the internal step, events at step "
                                   "ends (first order)" for name in pops}})


def _update_coupled_rates(pops, spikes, sizes, dt, step):
    """Fill this step's input rate of every connection from a population."""
    for p in pops.values():
        for entry in p.inputs:
            conn, table, lags = entry
            if lags is None:
                continue
            measured = spikes[conn.pre.name] / (sizes[conn.pre.name] * dt)
            table[step] = conn.n_syn * delayed_rates(measured, lags, step, step + 1)[0]


def _record(pops, record_steps, step, densities, outside):
    for r in np.flatnonzero(record_steps == step):
        for name, p in pops.items():
            counts, off_grid = p.histogram()
            densities[name][r] = counts / (p.n * p.grid.cell_volume)
            outside[name][r] = off_grid / p.n
