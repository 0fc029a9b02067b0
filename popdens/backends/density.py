"""Density backend: finite-volume population-density integration of a network."""

from __future__ import annotations

import time
import warnings
from types import SimpleNamespace

import numpy as np

from .. import _limits
from .._checks import UnknownOptionError, as_real
from ..assembly import (
    INPUT_CODES,
    initial_masses,
    intrinsic_diffusion_1d,
    population_arrays,
    scheme_code,
    substeps,
    weight_at_threshold,
)
from ..grid import Grid
from ..kernels.stepper import (
    Connections,
    Faces,
    Outputs,
    Populations,
    Refractory,
    Stepping,
    advance,
)
from ..models.base import ThresholdReset
from ..network import GRID_GUESS_RATE, Network, Population, register_backend
from ..progress import run_chunks
from ..result import Result
from .common import POISSON_TAIL, record_steps_for
from .continuation import (
    Checkpointer,
    check_checkpoint,
    checked_state,
    shifted_record_times,
    stamp,
    write_atomically,
)
from .density_nd import NDDensitySimulation

__all__ = ["run", "prepare", "DensitySimulation"]

# Most steps per compiled call: Python touches the state only between chunks (their
# wall time is aimed at progress.CHUNK_SECONDS).
CHUNK_STEPS = 20_000
# Mass fraction in the lowest cell above which a run warns that input piles mass against
# the reflecting lower face (as the N-D engine does for its edge slices).
EDGE_WARNING = 1e-3


class DensitySimulation:
    """A network prepared for density integration: arrays, state and a chunked run.

    Built by :func:`prepare`; :meth:`advance` integrates further and can be called
    repeatedly (the state persists).
    """

    def __init__(self, network: Network, t_end: float, dt: float, scheme: str = "mc",
                 max_substep: float | None = None, start: dict | None = None):
        self.network = network
        # absolute index of the first step: > 0 when continuing a run (``start``)
        self.first_step = int(start["step"]) if start is not None else 0
        self.dt = dt
        self.t_end = t_end
        self.scheme = scheme
        self.scheme_code = scheme_code(scheme)
        self.n_steps = int(round(t_end / dt))
        if abs(self.n_steps * dt - t_end) > 1e-9 * t_end:
            self.n_steps = int(np.ceil(t_end / dt))
        self.pops = list(network.populations.values())
        self.names = [p.name for p in self.pops]
        conns = network.connections
        index = {id(p): q for q, p in enumerate(self.pops)}
        self.conn_pre = np.array([index[id(c.pre)] if isinstance(c.pre, Population) else -1
                                  for c in conns], dtype=np.int64)
        peak = self._source_rates(conns)
        estimate = network.grid_rates() if any(p.grid is None for p in self.pops) else None
        self.grids = ([Grid(**start["grids"][p.name]) for p in self.pops]
                      if start is not None
                      else [network.grid_of(p, dt=dt, pre_rates=estimate) for p in self.pops])
        self.edge_warned: set = set()
        self._choose_substep(conns, peak, max_substep, start)
        self._transport_arrays(conns)
        self.conn_post = np.array([index[id(c.post)] for c in conns], dtype=np.int64)
        self._connection_maps(conns)
        self._delay_lags(conns)
        self.mass = np.concatenate([initial_masses(g, p.model, p.init)
                                    for p, g in zip(self.pops, self.grids)])
        self.rates = np.zeros((len(self.pops), self.n_steps))
        self.refractory = np.zeros((len(self.pops), self.n_steps))
        self.step = 0
        # before_step(k), if set, runs before each step k (it may write conn_rate[:, k]);
        # the stepper then advances one step per call (rate units in a loop)
        self.before_step = None
        if start is not None:
            self._restore(start)

    def _source_rates(self, conns) -> np.ndarray:
        """Fill the source connections' rate tables (``conn_rate``); return each
        connection's peak rate (a population's: a guess) for sizing the sub-step."""
        t0 = (self.first_step + np.arange(self.n_steps)) * self.dt
        self.conn_rate = np.zeros((len(conns), self.n_steps))
        peak = np.zeros(len(conns))
        for c, conn in enumerate(conns):
            if self.conn_pre[c] < 0:
                self.conn_rate[c] = self.network.source_rate_table(conn, t0, self.dt)
                peak[c] = self.conn_rate[c].max() if self.n_steps else 0.0
            else:
                peak[c] = conn.n_syn * GRID_GUESS_RATE
        return peak

    def _choose_substep(self, conns, peak, max_substep, start) -> None:
        """Set the sub-steps per step ``n_sub`` and the internal step ``dt_sub``."""
        dt = self.dt
        # sub-steps are sized by the jump at threshold (conductance synapses: there)
        inputs = [[(float(peak[c]), weight_at_threshold(conn), conn.input)
                   for c, conn in enumerate(conns) if conn.post is p] for p in self.pops]
        self.n_sub = substeps(dt, [(p.model, i) for p, i in zip(self.pops, inputs)])
        if max_substep is not None:
            max_substep = as_real("max_substep", max_substep)
            if max_substep <= 0:
                raise ValueError(f"max_substep must be > 0, got {max_substep!r}")
            self.n_sub = max(self.n_sub, int(np.ceil(dt / max_substep - 1e-9)))
        if start is not None:
            # the continued run keeps its internal step (a finer one only if the new
            # inputs need it; then the two parts are not bit-identical to one run)
            self.n_sub = max(self.n_sub, int(start["n_sub"]))
        self.dt_sub = dt / self.n_sub
        _limits.check_substeps(self.network, self.n_steps, self.n_sub, self.dt_sub,
                               max_substep)

    def _transport_arrays(self, conns) -> None:
        """The populations' transport, reset and refractory arrays, concatenated."""
        # the model's own white noise diffuses like an always-on diffusion input
        self.pop_diffusion = np.array([intrinsic_diffusion_1d(p.model) for p in self.pops])
        diffusion_pops = {id(c.post) for c in conns if c.input == "diffusion"}
        arrays = [population_arrays(p.model, g, self.dt_sub,
                                    id(p) in diffusion_pops or d > 0.0)
                  for p, g, d in zip(self.pops, self.grids, self.pop_diffusion)]
        sizes = [g.num_cells for g in self.grids]
        self.pop_offset = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.pop_mode = np.array([a.mode for a in arrays], dtype=np.int64)
        self.pop_dx = np.array([a.dx for a in arrays])
        self.departure_cell = np.concatenate([a.departure_cell for a in arrays])
        self.departure_frac = np.concatenate([a.departure_frac for a in arrays])
        self.departure_quad = np.concatenate([a.departure_quad for a in arrays])
        self.face_velocity = np.concatenate([a.face_velocity for a in arrays])
        self.reset_cell = np.array([a.reset_cell for a in arrays], dtype=np.int64)
        self.reset_frac_hi = np.array([a.reset_frac_hi for a in arrays])
        self.immediate_reset = np.array([a.immediate_reset for a in arrays], dtype=np.bool_)
        self._release_stencils(arrays)

    def _release_stencils(self, arrays) -> None:
        """The refractory release stencils (population, firing kind, entry) and the
        pipelines that hold the mass until its release."""
        num_pops = len(self.pops)
        shape = (num_pops, 3, 3)   # population, firing kind, stencil entry
        self.stencil_count = np.zeros(shape[:2], dtype=np.int64)
        self.stencil_offset = np.zeros(shape, dtype=np.int64)
        self.stencil_type = np.zeros(shape, dtype=np.int64)
        self.stencil_weight = np.zeros(shape)
        self.stencil_cell = np.zeros(shape, dtype=np.int64)
        self.stencil_frac = np.zeros(shape)
        longest = np.ones(num_pops, dtype=np.int64)
        for q, a in enumerate(arrays):
            for kind, stencil in enumerate(a.stencils):
                self.stencil_count[q, kind] = len(stencil)
                for e, (offset, point, weight, cell, frac) in enumerate(stencil):
                    self.stencil_offset[q, kind, e] = offset
                    self.stencil_type[q, kind, e] = point
                    self.stencil_weight[q, kind, e] = weight
                    self.stencil_cell[q, kind, e] = cell
                    self.stencil_frac[q, kind, e] = frac
                    longest[q] = max(longest[q], offset + 1)
        self.pipe_offset = np.concatenate([[0], np.cumsum(longest)]).astype(np.int64)
        self.pipe_start = np.zeros(self.pipe_offset[-1])
        self.pipe_mid = np.zeros(self.pipe_offset[-1])
        self.pipe_head = np.zeros(num_pops, dtype=np.int64)

    def _connection_maps(self, conns) -> None:
        """Each connection's kind, weight, synapse count and its event map ``x -> scale
        x + shift`` in cell units of the post grid (rejecting jumps past the grid)."""
        self.conn_kind = np.array([INPUT_CODES[c.input] for c in conns], dtype=np.int64)
        self.conn_weight = np.array([c.weight for c in conns], dtype=float)
        self.conn_n_syn = np.array([c.n_syn for c in conns], dtype=float)
        self.conn_shift = np.zeros(len(conns))
        self.conn_scale = np.ones(len(conns))
        for c, conn in enumerate(conns):
            grid = self.grids[self.conn_post[c]]
            ax = grid.axes[0]
            n = ax.num_cells
            if conn.reversal is None:
                self.conn_shift[c] = conn.weight / ax.width
                if conn.input == "jump" and conn.weight < 0 and -self.conn_shift[c] >= n:
                    raise ValueError(f"connection {conn.label}: the inhibitory jump "
                                     f"weight={conn.weight!r} spans the whole grid of "
                                     f"{conn.post.name!r} ({ax.lower:g} .. {ax.upper:g})")
            else:
                # x -> (1 - w) x + w x_E in cell units
                w = conn.weight
                self.conn_scale[c] = 1.0 - w
                self.conn_shift[c] = w * (conn.reversal - ax.lower) / ax.width
                if (1.0 - w) * n + self.conn_shift[c] <= 0.0:
                    raise ValueError(f"connection {conn.label}: a conductance event "
                                     f"(weight={w!r}, reversal={conn.reversal!r}) moves "
                                     f"every state below the grid of {conn.post.name!r} "
                                     f"(lower={ax.lower!r}); extend the grid")

    def _delay_lags(self, conns) -> None:
        """The delays' lag weights at sub-step resolution and the rate history they
        read."""
        # lag 0 (the current sub-step) is not known yet when a population's input is
        # needed, so its weight moves to lag 1
        lags = []
        for c, conn in enumerate(conns):
            if self.conn_pre[c] < 0:
                lags.append(np.zeros(0))
                continue
            w = conn.delay.lag_weights(self.dt_sub)
            folded = w[1:].copy() if w.size > 1 else np.zeros(1)
            folded[0] += w[0]
            lags.append(folded)
        self.lag_offset = np.concatenate([[0], np.cumsum([lw.size for lw in lags])]
                                         ).astype(np.int64)
        self.lag_weight = np.concatenate(lags) if lags else np.zeros(0)
        max_lags = max([lw.size for lw in lags], default=0)
        self.history = np.zeros((len(self.pops), max_lags + 1))
        self.history_cursor = np.zeros(1, dtype=np.int64)

    _STATE_ARRAYS = ("mass", "pipe_start", "pipe_mid", "pipe_head", "history",
                     "history_cursor")

    def state(self) -> dict:
        """Everything a continued run needs (``Result.info["state"]``): the cell masses,
        the refractory pipelines, the rate history of the delays, the grids, the internal
        step and the absolute step reached."""
        out = {name: getattr(self, name).copy() for name in self._STATE_ARRAYS}
        out.update(step=self.first_step + self.step, n_sub=self.n_sub, dt=self.dt,
                   scheme=self.scheme,
                   stamp=stamp(self.network, "density", "1d", self.dt,
                               dict(zip(self.names, self.grids)), scheme=self.scheme),
                   grids={name: {ax.name: (ax.lower, ax.upper, ax.num_cells)
                                 for ax in grid.axes}
                          for name, grid in zip(self.names, self.grids)})
        return out

    def _restore(self, start: dict) -> None:
        for name in self._STATE_ARRAYS:
            saved = np.asarray(start[name])
            current = getattr(self, name)
            if saved.shape != current.shape:
                raise ValueError(f"init: the saved state's {name} has shape {saved.shape}, "
                                 f"this network needs {current.shape} (a changed network "
                                 f"or delays cannot continue a run)")
            current[...] = saved

    def run(self, record_times=(), progress: bool = True, checkpoint=None,
            checkpoint_every: float = 60.0) -> Result:
        """Integrate all remaining steps and return a :class:`Result`.

        The compiled stepper runs in chunks of about ``CHUNK_SECONDS`` of wall time;
        between chunks the state is checked, the progress bar (``progress``, shown on a
        terminal) moves, and Ctrl-C is honoured: the run stops and returns what it has
        (``Result.info["interrupted"]``, arrays cut at the last finished step). With
        ``checkpoint`` (a ``.npz`` path) the result so far, marked
        ``info["checkpoint"] = True`` and ``info["interrupted"] = True``, is written there
        (atomically) every ``checkpoint_every`` seconds of wall time, and the finished
        result at the end."""
        record_steps = record_steps_for(record_times, self.t_end, self.dt, self.n_steps)
        record_out = np.zeros((record_steps.size, self.mass.size))
        record_next = np.zeros(1, dtype=np.int64)
        start = time.perf_counter()
        first_step = self.step
        saver = Checkpointer(checkpoint, checkpoint_every, writer=_write)

        def result(interrupted):
            return self._result(record_steps, record_out, int(record_next[0]),
                                time.perf_counter() - start, interrupted, first_step)

        def advance(step, stop):
            hook = self.before_step
            for k in range(step, stop) if hook is not None else (step,):
                last = stop if hook is None else k + 1
                if hook is not None:
                    hook(k)
                self._advance(last, record_steps, record_next, record_out)
                self.step = last
            self._check_state(stop)
            if stop < self.n_steps and saver.due():
                saver.save_partial(result(True))
            return stop

        _, interrupted = run_chunks(advance, self.step, self.n_steps, "density",
                                    progress=progress, max_chunk=CHUNK_STEPS, dt=self.dt)
        out = result(interrupted)
        saver.save_final(out)
        return out

    def _result(self, record_steps, record_out, recorded, wall, interrupted, first_step
                ) -> Result:
        done = self.step
        densities = {}
        for q, name in enumerate(self.names):
            lo, hi = self.pop_offset[q], self.pop_offset[q + 1]
            densities[name] = record_out[:recorded, lo:hi].reshape((-1, *self.grids[q].shape))
        return Result(
            t=(self.first_step + np.arange(done)) * self.dt,
            dt=self.dt,
            rates={n: self.rates[q, :done].copy() for q, n in enumerate(self.names)},
            record_times=(self.first_step + record_steps[:recorded]) * self.dt,
            densities=densities,
            grids=dict(zip(self.names, self.grids)),
            backend="density",
            wall_time=wall,
            refractory={n: self.refractory[q, :done].copy() for q, n in enumerate(self.names)},
            info={"scheme": self.scheme, "n_sub": self.n_sub, "dt_sub": self.dt_sub,
                  "interrupted": interrupted, "steps_done": done - first_step,
                  "state": self.state(),
                  "final_mass": {n: float(self.mass[self.pop_offset[q]:
                                                    self.pop_offset[q + 1]].sum())
                                 for q, n in enumerate(self.names)}},
        )

    def _advance(self, stop, record_steps, record_next, record_out) -> None:
        advance(self.step, stop,
                Stepping(self.n_sub, self.dt_sub, self.scheme_code, POISSON_TAIL),
                self.mass,
                Populations(self.pop_offset, self.pop_mode, self.pop_dx, self.pop_diffusion,
                            self.reset_cell, self.reset_frac_hi, self.immediate_reset),
                Faces(self.departure_cell, self.departure_frac, self.departure_quad,
                      self.face_velocity),
                Refractory(self.pipe_start, self.pipe_mid, self.pipe_offset, self.pipe_head,
                           self.stencil_count, self.stencil_offset, self.stencil_type,
                           self.stencil_weight, self.stencil_cell, self.stencil_frac),
                Connections(self.conn_post, self.conn_kind, self.conn_shift, self.conn_scale,
                            self.conn_weight, self.conn_rate, self.conn_pre, self.conn_n_syn,
                            self.lag_offset, self.lag_weight, self.history,
                            self.history_cursor),
                Outputs(self.rates, self.refractory, record_steps, record_next, record_out))

    def _check_state(self, step: int) -> None:
        # The kernels are conservative and positivity-preserving by construction; a
        # violation means corrupted input, so stop loudly instead of returning garbage.
        if not np.all(np.isfinite(self.mass)) or not np.all(np.isfinite(self.rates[:, :step])):
            raise FloatingPointError(f"density became non-finite before t={step * self.dt:g} s")
        if self.mass.min() < -1e-12:
            raise FloatingPointError(f"density became negative ({self.mass.min():.3g}) before "
                                     f"t={step * self.dt:g} s")
        self._check_lower_edge(step)

    def _check_lower_edge(self, step: int) -> None:
        """Warn (once per population) when inhibitory jumps or diffusion pile mass in the
        lowest cell: the reflecting lower face then holds back neurons the input would
        have moved further down, so the rate comes out wrong (the grid is too short)."""
        for q, pop in enumerate(self.pops):
            if pop.name in self.edge_warned:
                continue
            pushed_down = self.pop_diffusion[q] > 0.0 or any(
                c.post is pop and (c.input == "diffusion" or c.weight < 0
                                   and c.reversal is None)
                for c in self.network.connections)
            held = float(self.mass[self.pop_offset[q]])
            if pushed_down and held > EDGE_WARNING:
                self.edge_warned.add(pop.name)
                ax = self.grids[q].axes[0]
                warnings.warn(
                    f"population {pop.name!r}: {held:.2%} of the mass sits in the lowest "
                    f"cell (v={ax.lower:g}) at t={step * self.dt:g} s; input pushes mass "
                    f"against the reflecting lower face, so the grid is too short for "
                    f"this input: lower the grid's lower edge", RuntimeWarning, stacklevel=4)


def _write(path, result) -> None:
    # looked up at call time, so tests can watch the checkpoints written
    write_atomically(path, result)


def prepare(network: Network, t_end: float, dt: float, scheme: str = "mc",
            max_substep: float | None = None, start: dict | None = None
            ) -> DensitySimulation:
    """Assemble ``network`` for density integration (no time stepping yet)."""
    return DensitySimulation(network, t_end, dt, scheme=scheme, max_substep=max_substep,
                             start=start)


def resume_state(network: Network, previous, dt: float, scheme: str) -> dict:
    """The state to continue ``previous`` (a density :class:`Result` of this network)
    from, checked: same backend and engine, populations, models, connections, grids,
    reporting step and scheme (:func:`popdens.backends.continuation.checked_state`).
    A network run by both engines (1D and N-D populations) gets
    ``{"1d": state, "nd": state, "step": step}``, one state per part."""
    one_d, n_d = split_by_engine(network)
    if not (one_d and n_d):
        return _part_state(network, previous, dt, scheme, "nd" if n_d else "1d")
    info = getattr(previous, "info", None)
    saved = info.get("state") if isinstance(info, dict) else None
    if not isinstance(saved, dict) or not {one_d[0], n_d[0]} <= set(saved) \
            or "stamp" in saved:
        raise ValueError("init must be a Result of backend='density' of this network of "
                         "1D and N-D populations, with the final state of each part "
                         "(Result.info['state'][population])")
    parts = {engine: _part_state(network.subnetwork(names),
                                 SimpleNamespace(info={"state": saved[names[0]]}), dt,
                                 scheme, engine)
             for engine, names in (("1d", one_d), ("nd", n_d))}
    if int(parts["1d"]["step"]) != int(parts["nd"]["step"]):
        raise ValueError(f"init: the 1D part of the result stopped at step "
                         f"{parts['1d']['step']}, the N-D part at {parts['nd']['step']}")
    return {**parts, "step": parts["1d"]["step"]}


def _part_state(network, previous, dt, scheme, engine) -> dict:
    grids = {name: pop.grid for name, pop in network.populations.items()}
    return checked_state(previous, network, "density", engine, dt, grids, scheme=scheme)


def run(network: Network, t_end: float, dt: float, scheme: str = "mc",
        record_times=(), record_every: int | None = None, max_substep: float | None = None,
        progress: bool = True, *, init=None, checkpoint=None,
        checkpoint_every: float = 60.0, **unknown) -> Result:
    """Run ``network`` with the density backend (see :meth:`popdens.Network.run`).

    Parameters
    ----------
    scheme : {"mc", "vanleer", "upwind"}, default "mc"
        Reconstruction inside cells: monotonized-central or van Leer limited linear
        (second order), or constant (first-order upwind / donor cell).
    record_times : sequence of float
        Times (s) at which to store the density.
    record_every : int, optional
        Also store the density every ``record_every`` steps (from t = 0). Recording
        happens inside the compiled loop and costs only the copy.
    max_substep : float, optional
        Upper bound on the internal step (s); by default ``tau_m / 100``.
    progress : bool, default True
        Show a progress bar on a terminal (never in pipes, notebooks' logs or CI).
    init : Result, optional
        Continue that run (a density result of this network, finished or interrupted)
        for ``t_end`` more seconds: its grids, internal step, cell masses, refractory
        pipelines and delay history carry over, times (``t``, ``record_times``) are
        absolute, and the two parts together equal one uninterrupted run bit for bit.
        Networks of 1D and N-D populations (run by two engines) keep one state per
        engine.
    checkpoint : str or path, optional
        A ``.npz`` file that always holds the run so far (written atomically every
        ``checkpoint_every`` seconds of wall time, marked ``info["checkpoint"]`` and
        ``info["interrupted"]``; the finished result at the end): after a crash,
        ``net.run(rest, dt, init=pd.load(checkpoint))`` continues it.
    checkpoint_every : float, default 60
        Seconds of wall time between checkpoints.
    """
    if unknown:
        raise UnknownOptionError(f"unknown option(s) for backend='density': "
                                 f"{sorted(unknown)}; known: scheme, record_times, "
                                 f"record_every, max_substep, progress, init, "
                                 f"checkpoint, checkpoint_every")
    if not isinstance(progress, (bool, np.bool_)):
        raise TypeError(f"progress must be True or False, got {progress!r}")
    start = resume_state(network, init, dt, scheme) if init is not None else None
    if checkpoint is not None:
        checkpoint_every = check_checkpoint(checkpoint, checkpoint_every)
    # record_times are absolute; the engines count from their first step
    offset = int(start["step"]) * dt if start is not None else 0.0
    times = np.atleast_1d(np.asarray(shifted_record_times(
        record_times if record_times is not None else (), offset, t_end), dtype=float))
    if record_every is not None:
        if isinstance(record_every, bool) or not isinstance(record_every,
                                                            (int, np.integer)) \
                or record_every < 1:
            raise ValueError(f"record_every must be a whole number of steps >= 1, got "
                             f"{record_every!r}")
        every = np.arange(0, int(round(t_end / dt)) + 1, int(record_every)) * dt
        times = np.union1d(times, np.minimum(every, t_end))
    one_d, n_d = split_by_engine(network)
    if checkpoint is not None and one_d and n_d:
        raise NotImplementedError("checkpoint= is implemented for networks run by one "
                                  "density engine (all populations 1D, or all N-D); this "
                                  "network has both: run its parts as separate networks "
                                  "or continue it with init= after an interruption")
    if (start is not None or checkpoint is not None) and not n_d:  # one engine: 1D
        sim = prepare(network, t_end, dt, scheme=scheme, max_substep=max_substep,
                      start=start)
        return sim.run(record_times=times, progress=bool(progress), checkpoint=checkpoint,
                       checkpoint_every=checkpoint_every)
    for name in n_d:
        if network.populations[name].model.intrinsic_diffusion():
            raise NotImplementedError(
                f"population {name!r}: the density of a model with white noise of its own "
                f"(xi in the equations) is implemented for 1D models with a threshold "
                f"only; run it with backend='montecarlo'")
    results = []
    if n_d:
        part = network if not one_d else network.subnetwork(n_d)
        sim = NDDensitySimulation(part, t_end, dt, scheme=scheme, max_substep=max_substep,
                                  start=start["nd"] if one_d and start else start)
        results.append(sim.run(record_times=times, progress=bool(progress),
                               checkpoint=checkpoint, checkpoint_every=checkpoint_every))
    if one_d:
        part = network if not n_d else network.subnetwork(one_d)
        sim = prepare(part, t_end, dt, scheme=scheme, max_substep=max_substep,
                      start=start["1d"] if start else None)
        results.append(sim.run(record_times=times, progress=bool(progress)))
    return results[0] if len(results) == 1 else merge_results(results)


def _needs_nd_engine(pop) -> bool:
    ndim = pop.grid.ndim if pop.grid is not None else len(pop.model.state_vars)
    return ndim > 1 or not isinstance(pop.model.spike_rule, ThresholdReset)


def split_by_engine(network) -> tuple[list[str], list[str]]:
    """Population names for the 1D engine and for the N-D engine.

    Populations coupled by connections (connected components of the network's graph) run
    in one engine: the N-D engine if any of them has a phase space of dimension >= 2 or a
    spike surface. Uncoupled parts run in the engine they need, so a 1D population beside
    an unconnected N-D one gets exactly the result it has alone."""
    parent = {name: name for name in network.populations}

    def root(name):
        while parent[name] != name:
            name = parent[name]
        return name
    for conn in network.connections:
        if isinstance(conn.pre, Population):
            parent[root(conn.pre.name)] = root(conn.post.name)
    nd_roots = {root(n) for n, p in network.populations.items() if _needs_nd_engine(p)}
    n_d = [n for n in network.populations if root(n) in nd_roots]
    return [n for n in network.populations if root(n) not in nd_roots], n_d


def merge_results(results) -> Result:
    """One Result of the density backend from results of disjoint parts of a network
    (same steps and record times). Per-population entries of ``info`` are merged;
    other entries that differ become ``{population: value}``."""
    first = results[0]
    merged = {key: {} for key in ("rates", "densities", "grids", "refractory")}
    info = {}
    for res in results:
        for key, table in merged.items():
            table.update(getattr(res, key))
        for key, value in res.info.items():
            names = list(res.rates)
            if isinstance(value, dict) and set(value) <= set(names):
                info.setdefault(key, {}).update(value)
            else:
                info.setdefault(key, {}).update({n: value for n in names})
    for key, per_pop in info.items():
        values = list(per_pop.values())
        if all(_same(v, values[0]) for v in values) and not isinstance(
                first.info.get(key), dict):
            info[key] = values[0]
    info["interrupted"] = any(r.info.get("interrupted", False) for r in results)
    return Result(t=first.t, dt=first.dt, record_times=first.record_times,
                  backend="density", wall_time=sum(r.wall_time for r in results),
                  info=info, **merged)


def _same(a, b) -> bool:
    try:
        return bool(np.all(a == b))
    except (TypeError, ValueError):
        return False


register_backend("density", run)
