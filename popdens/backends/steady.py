"""Stationary solver: the steady rate and density by linear solves.

With constant inputs one internal step of the density stepper is a linear map of the
cell masses (once the slope limiter is frozen): ``p -> P p``, where ``P`` chains the
same operators as :func:`popdens.kernels.stepper.advance` (transport remap or implicit
Scharfetter-Gummel step, the compound-Poisson jump propagators, reinjection at reset).
The steady state is the fixed point ``P p = p`` normalised so that grid mass plus
refractory mass is 1, so it is exactly what a long run of the same grid converges to,
without integrating there. The limiter is handled by freezing it at the current iterate
(``limited slope / central slope`` per cell), solving, and repeating (damped) until the
rate settles. The solves reuse LU factors across limiter iterations and nearby input
rates (chord iterations, each one column through the step), factorising afresh only
where those stop fitting.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from .._checks import as_real, check_positive
from ..assembly import (
    intrinsic_diffusion_1d,
    point_mass_weights,
    population_arrays,
    scheme_code,
    substeps,
    weight_at_threshold,
)
from ..grid import Grid
from ..kernels.dense_lu import lu_compress, lu_factor, lu_solve_compressed
from ..kernels.frozen import FrozenMixture, frozen_mixture
from ..kernels.transport import SCHEME_UPWIND, limited_slopes, poisson_weights, sg_coefficients
from ..network import GRID_GUESS_RATE, Network
from .steady_common import SteadyState
from .steady_common import input_rates as _input_rates
from .steady_common import self_consistent_rates as _self_consistent_rates
from .steady_common import warn_delayed_sources as _warn_delayed_sources

__all__ = ["steady_state_1d", "SteadyState", "remap_pieces", "frozen_slopes",
           "limiter_factor"]

_POISSON_TAIL = 1e-10
# A chord iteration that shrinks the correction by less than this factor, or more than
# _CHORD_STEPS of them: the LU factors at hand no longer fit the step (far input or
# limiter changes); factorise afresh.
_REFACTORISE = 0.5
_CHORD_STEPS = 8
# Relative input step of the rates' derivatives, and the correction (relative to the
# masses) that ends the chord iterations of their solves: rate errors of ~1e-10 make
# ~1e-6 of the derivative.
_INPUT_STEP = 1e-4
_POLISHED = 1e-10
# Newton steps shorter than this fraction of the rates (at least 1 Hz) update the
# Jacobian by Broyden's rule instead of new derivatives.
_BROYDEN = 0.05
# Limiter tolerance of an evaluation of the rates' fixed-point map: this fraction of the
# relative residual |F(r) - r| / max(r), between tol and _LOOSEST.
_INEXACT = 1e-2
_LOOSEST = 1e-4


def frozen_slopes(masses: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """Mass differences ``g_i = factor_i (p_{i+1} - p_{i-1}) / 2`` of each column of
    ``masses`` (n, m); 0 at the edge cells, as in the time stepper. ``factor`` freezes
    a limiter: ``limited slope / central slope`` of a given state (0: upwind)."""
    slopes = np.zeros_like(masses)
    slopes[1:-1] = (0.5 * factor[1:-1])[:, None] * (masses[2:] - masses[:-2])
    return slopes


def limiter_factor(mass: np.ndarray, scheme: int) -> np.ndarray:
    """Ratio of the limited to the central slope of ``mass`` (0 where central is 0),
    along the last axis (``mass`` (n,) or (slots, n): one call for all slots)."""
    mass = np.asarray(mass, dtype=float)
    limited = np.zeros_like(mass)
    for row, out in zip(mass.reshape(-1, mass.shape[-1]), limited.reshape(-1, mass.shape[-1])):
        limited_slopes(row, out, scheme)
    central = np.zeros_like(mass)
    central[..., 1:-1] = 0.5 * (mass[..., 2:] - mass[..., :-2])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(central != 0.0, limited / central, 0.0)


def remap_pieces(departure: np.ndarray, n: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """The remap through face departure points as two sparse ``(n + 1, n)`` matrices.

    Row ``j < n`` collects what lands in cell ``j`` (departure interval
    ``[departure[j], departure[j+1]]``, the lower face clamped to 0), row ``n`` what
    leaves through the upper face. The remap of masses ``p`` with slopes ``g`` is
    ``A p + B g`` (the integrals of the linear profile, as in
    ``transport.mass_between``)."""
    lows = np.concatenate([[0.0], departure[1:]])
    highs = np.concatenate([departure[1:], [float(n)]])
    lows = np.clip(lows, 0.0, n)
    highs = np.clip(highs, 0.0, n)
    rows, cols, mass, slope = [], [], [], []
    # vectorised over targets, looping over the (few) source cells each one spans
    first = np.floor(lows).astype(int)
    span = np.where(highs > lows, np.minimum(np.ceil(highs), n).astype(int) - first, 0)
    for offset in range(int(span.max(initial=0))):
        sel = np.flatnonzero(span > offset)
        i = first[sel] + offset
        ta = np.maximum(lows[sel] - i, 0.0)
        tb = np.minimum(highs[sel] - i, 1.0)
        keep = tb > ta
        rows.append(sel[keep])
        cols.append(i[keep])
        mass.append((tb - ta)[keep])
        slope.append((0.5 * (tb - ta) * (ta + tb - 1.0))[keep])
    rows = np.concatenate(rows) if rows else np.zeros(0, int)
    cols = np.concatenate(cols) if cols else np.zeros(0, int)
    a = sp.csr_matrix((np.concatenate(mass) if mass else np.zeros(0), (rows, cols)),
                      shape=(n + 1, n))
    b = sp.csr_matrix((np.concatenate(slope) if slope else np.zeros(0), (rows, cols)),
                      shape=(n + 1, n))
    return a, b


def _sg_matrix(velocity: np.ndarray, diffusion: float, dx: float):
    """Generator ``L`` and per-time outflux row of the Scharfetter-Gummel operator."""
    n = velocity.size - 1
    to_right = np.zeros(n + 1)
    to_left = np.zeros(n + 1)
    sg_coefficients(velocity, diffusion, dx, to_right, to_left)
    # dp_i/dt = F_i - F_{i+1}, F_j = to_right[j] p[j-1] - to_left[j] p[j]
    main = -(to_left[:n] + to_right[1:])
    generator = sp.diags([to_right[1:n], main, to_left[1:n]], [-1, 0, 1], shape=(n, n),
                         format="csr")
    outflux = np.zeros(n)
    outflux[n - 1] = to_right[n]
    return generator, outflux


def _vector(n: int, cell: int, frac_hi: float) -> np.ndarray:
    e = np.zeros(n)
    e[cell] += 1.0 - frac_hi
    if frac_hi > 0:
        e[cell + 1] += frac_hi
    return e


def _merged_shares(active, total: float, width: float) -> tuple[np.ndarray, np.ndarray]:
    """Jump (cells) and share of the events of each distinct one-event map of the jump
    inputs ``active`` ((connection, rate) pairs): inputs with the same jump are one
    Poisson input, as the stepper merges them (the column's 9 inputs per population are
    2 maps, so the frozen mixture does 2 shifts per event instead of 9)."""
    shifts: list[float] = []
    rates: list[float] = []
    for c, s in active:
        shift = c.weight / width
        if shift in shifts:
            rates[shifts.index(shift)] += s
        else:
            shifts.append(shift)
            rates.append(s)
    return np.array(shifts), np.array(rates) / total


class _PopulationStep:
    """One internal step of one population as a linear map, mirroring
    ``kernels.stepper.advance`` stage by stage, including where refractory mass is
    released (``assembly.release_stencil``). Each reconstruction in the step is a
    *slot* whose limiter is frozen by a factor (see :func:`limiter_factor`).

    The unknowns are ``u = (state, c0, c1, c2)``: the cell masses at the step start
    (with diffusion: after the implicit step) and the masses crossing threshold per
    sub-step that enter the refractory pipeline, by transport (``c0``), jumps (``c1``)
    and the implicit diffusion step (``c2``); in a steady state each release point
    hands out its stencil weight of them every sub-step."""

    def __init__(self, network: Network, pop, grid: Grid, rates, dt_sub: float,
                 parts: dict | None = None):
        model = pop.model
        ax = grid.axes[0]
        self.n = n = ax.num_cells
        self.dt_sub = dt_sub
        conns = network.inputs_of(pop)
        diffusive = [(c, s) for c, s in zip(conns, rates) if c.input == "diffusion"]
        own = intrinsic_diffusion_1d(model)   # as in the stepper: an always-on input
        self.diffusive = bool(diffusive) or own > 0.0
        # what does not depend on the input rates is built once per population (a
        # steady_state builds some 200 steps of the column's 8)
        parts = {} if parts is None else parts
        key = (pop.name, self.diffusive)
        if key not in parts:
            arrays = population_arrays(model, grid, dt_sub, self.diffusive)
            parts[key] = (arrays, None if self.diffusive else remap_pieces(arrays.departure,
                                                                           n))
        arrays, drift = parts[key]
        if self.diffusive:
            drive = sum(s * c.weight for c, s in diffusive)
            diffusion = own
            for c, s in diffusive:
                diffusion += 0.5 * s * c.weight ** 2
            self.generator, self.outflux = _sg_matrix(arrays.face_velocity + drive,
                                                      diffusion, ax.width)
        else:
            self.drift = drift
        self.reset = _vector(n, arrays.reset_cell, arrays.reset_frac_hi)
        self.immediate = arrays.immediate_reset
        # release points as linear maps of (c0, c1)
        kinds = len(arrays.stencils)
        self.start_release = np.zeros(kinds)         # mass released at the sub-step start
        self.mid_release = np.zeros((n, kinds))      # masses placed before the jump stage
        self.content = np.zeros(kinds)               # pipeline content at the step start
        for kind, stencil in enumerate(arrays.stencils):
            for offset, point, weight, cell, frac in stencil:
                self.content[kind] += offset * weight
                if point == 0:
                    self.start_release[kind] += weight
                else:
                    self.mid_release[:, kind] += weight * _vector(n, cell, frac)
        # the jump stage: one input with refractory period: the compound shift
        # sum_k w_k (shift by k * shift); otherwise Horner over the one-event mixture map
        # (with in-step reset when there is no refractory period), as in the stepper
        self.jumps = []
        weights = np.zeros(512)
        faces = np.arange(n + 1, dtype=float)
        active = [(c, s) for c, s in zip(conns, rates) if c.input == "jump" and s > 0.0]
        total = sum(s for _, s in active)
        if len(active) == 1 and not self.immediate:
            (c, s), = active
            count = poisson_weights(s * dt_sub, weights, _POISSON_TAIL)
            shift = c.weight / ax.width
            whole = abs(shift - round(shift)) < 1e-9
            a_sum = b_sum = None
            for k in range(count):
                a, b = remap_pieces(faces - k * shift, n)
                a_sum = weights[k] * a if a_sum is None else a_sum + weights[k] * a
                if not whole:
                    b_sum = weights[k] * b if b_sum is None else b_sum + weights[k] * b
            self.jumps.append(("compound", None, a_sum.tocsr(),
                               None if whole else b_sum.tocsr(), None))
        elif active:
            count = poisson_weights(total * dt_sub, weights, _POISSON_TAIL)
            self.jumps.append(("horner", weights[:count].copy(), None, None,
                               _merged_shares(active, total, ax.width)))

    @property
    def num_slots(self) -> int:
        slots = 0 if self.diffusive else 1
        for kind, weights, _, _, _ in self.jumps:
            slots += (len(weights) - 1) if kind == "horner" else 1
        return max(slots, 1)

    def _jump_chain(self, y1, factors, slot):
        """Apply the jump stages to the columns of ``y1`` ((n, m) masses, one column per
        unknown or vector). Returns the result, the enqueued and all crossings (m,) and
        the states the limiter slots act on in the first column."""
        n = self.n
        chain = y1
        enqueued = np.zeros(y1.shape[1])
        crossed = np.zeros(y1.shape[1])
        inputs = []
        for kind, weights, a, b, shares in self.jumps:
            if kind == "compound":
                inputs.append(chain[:, 0])
                moved = a @ chain
                if b is not None:
                    moved = moved + b @ frozen_slopes(chain, factors[slot])
                slot += 1
                enqueued = enqueued + moved[n]
                crossed = crossed + moved[n]
                chain = moved[:n]
                continue
            # Horner: acc = w_K y; acc = T'(acc) + w_k y, T' = one event of the mixture,
            # crossed mass back at reset (no refractory period) or enqueued; applied by
            # the compiled frozen mixture to each column (banded: a column of the step
            # touches a few cells, so this costs about one time step per column)
            count = len(weights)
            mix = FrozenMixture(shares[0], shares[1], weights,
                                factors[slot:slot + count - 1],
                                self.reset if self.immediate else np.zeros(n),
                                bool(self.immediate))
            slot += count - 1
            images = np.empty((chain.shape[1], n))
            crossing = np.empty(chain.shape[1])
            iterates = np.empty((count - 1, n))     # the Horner states of column 0
            frozen_mixture(np.ascontiguousarray(chain.T), mix, images, crossing, iterates)
            inputs.extend(iterates)
            crossed = crossed + crossing
            if not self.immediate:
                enqueued = enqueued + crossing
            chain = images.T
        return chain, enqueued, crossed, inputs

    def apply(self, u: np.ndarray, factors) -> _Images:
        """The step's equations applied to the columns of ``u`` ((n + 3, m): state and
        crossings per column): the identity gives the system's matrix, one solution
        vector its residual (for derivatives)."""
        n = self.n
        state, crossings = u[:n], u[n:]
        start = np.outer(self.reset, self.start_release @ crossings)
        mid = self.mid_release @ crossings
        if self.diffusive:
            x, enqueued, crossed, inputs = self._jump_chain(state + mid, factors, 0)
            q_to_out = self.dt_sub * (self.outflux @ state)
            # (I - dt L) q = x + start released in the next step
            balance = state - self.dt_sub * (self.generator @ state) - x - start
            rows = [balance, crossings[0], enqueued - crossings[1], q_to_out - crossings[2]]
            fired = q_to_out + crossed
            record = x
        else:
            y0 = state + start
            a, b = self.drift
            moved = a @ y0 + b @ frozen_slopes(y0, factors[0])
            x, enqueued, crossed, inputs = self._jump_chain(moved[:n] + mid, factors, 1)
            inputs = [y0[:, 0]] + inputs
            rows = [x - state, moved[n] - crossings[0], enqueued - crossings[1],
                    crossings[2]]
            fired = moved[n] + crossed
            record = state
        content = self.content @ crossings
        return _Images(np.vstack(rows), fired, record.sum(axis=0) + content, record,
                       content, inputs)

    def factorise(self, factors, pin: int) -> _NullSystem:
        """The system of this step with the limiters frozen at ``factors``, solved and
        factorised (``pin``: a state cell expected to hold mass)."""
        images = self.apply(np.eye(self.n + self.content.size), factors)
        return _NullSystem(images.rows, images.norm, pin, self.n)


class _Images(NamedTuple):
    """The step applied to the columns of ``u``: balance and crossing equations
    ``rows`` (n + 3, m), masses ``fired`` per sub-step, normalisation ``norm`` (grid
    plus refractory mass), ``record`` (the reported masses) and refractory ``content``
    per column, and the states the limiter slots act on (column 0)."""

    rows: np.ndarray
    fired: np.ndarray
    norm: np.ndarray
    record: np.ndarray
    content: np.ndarray
    inputs: list


def _likely_mass_cell(network: Network, pop, grid: Grid, rates) -> int:
    """The cell where the free membrane potential settles under the mean input (the
    first downward zero of drift plus mean input drift over the grid's faces), or the
    reset cell when the drift is positive everywhere: where the stationary density
    holds mass."""
    model = pop.model
    drive = sum(s * c.weight for c, s in zip(network.inputs_of(pop), rates))
    ax = grid.axes[0]
    velocity = np.asarray(model.drift(ax.faces), dtype=float) + drive
    settles = np.flatnonzero((velocity[:-1] > 0.0) & (velocity[1:] <= 0.0))
    if settles.size:
        return int(settles[0])
    if velocity[0] <= 0.0:
        return 0
    reset = (model.spike_rule.reset - ax.lower) / ax.width
    return int(np.clip(np.floor(reset), 0, ax.num_cells - 1))


class _NullSystem:
    """The normalised solution ``u`` of ``rows u = 0`` (the balance rows, then the
    crossing rows), ``norm . u = 1``, and the LU factors that gave it (``lu``, with
    balance row ``replaced`` replaced).

    One balance row is redundant (conservation). It is replaced by ``u[pin] = 1`` (a
    row of the identity: the factors stay as sparse as the step) and the result is
    scaled by ``norm``. If the pinned cell holds no mass that system is singular, and
    the last balance row is replaced by the normalisation row instead. The matrix is
    dense (a third of its entries are nonzero in the column) and factorised by
    :func:`popdens.kernels.dense_lu.lu_factor` (not LAPACK: see there)."""

    def __init__(self, rows: np.ndarray, norm: np.ndarray, pin: int, n: int):
        self.replaced = pin
        system = rows.copy()
        system[pin] = 0.0
        system[pin, pin] = 1.0
        u = self._solve(system)
        scale = float(norm @ u) if np.all(np.isfinite(u)) else 0.0
        if scale > 0.0 and np.all(np.isfinite(u)):
            u = u / scale
            if u[:n].min() >= -1e-9 * np.abs(u).max():
                self.u = u
                return
        self.replaced = n - 1
        system = rows.copy()
        system[n - 1] = norm
        self.u = self._solve(system)

    def _solve(self, system: np.ndarray) -> np.ndarray:
        rhs = np.zeros(system.shape[0])
        rhs[self.replaced] = 1.0
        self.pivots = np.zeros(system.shape[0], dtype=np.int64)
        factorised = lu_factor(system, self.pivots)
        # kept also when singular, as the dense factors were: corrections then give NaN
        self.factors = lu_compress(system)
        if not factorised:    # singular: handled by the caller
            return np.full(system.shape[0], np.nan)
        with np.errstate(over="ignore", invalid="ignore"):
            return lu_solve_compressed(self.factors, self.pivots, rhs)

    def correction(self, residual: np.ndarray) -> np.ndarray:
        """The chord correction ``A^{-1} residual`` of an approximate solution whose
        equations (this system's rows, of a nearby step or limiter) leave
        ``residual``; the replaced row (the pin or the normalisation, enforced by
        scaling instead) counts as satisfied."""
        residual = residual.copy()
        residual[self.replaced] = 0.0
        return lu_solve_compressed(self.factors, self.pivots, residual)


class _Iterate(NamedTuple):
    """The stationary quantities at an approximate solution ``u`` (normalised: grid
    plus refractory mass 1) of a step with frozen limiters: ``rate`` (Hz), cell
    ``mass``, refractory ``pending``, the states of the limiter slots, and the chord
    ``correction`` that the step's equations still ask of ``u``."""

    u: np.ndarray
    rate: float
    mass: np.ndarray
    pending: float
    slot_states: np.ndarray
    correction: np.ndarray


def _chord_iterate(step: _PopulationStep, factors, u: np.ndarray,
                   system: _NullSystem) -> _Iterate:
    """Evaluate ``step`` at ``u`` (one column through the step: about one time step's
    work) and the chord correction with the LU factors of ``system`` (of this or a
    nearby step): ``u - correction`` is the next iterate."""
    images = step.apply(u[:, None], factors)
    scale = float(images.norm[0])
    return _Iterate(u / scale, float(images.fired[0]) / scale / step.dt_sub,
                    images.record[:, 0] / scale, float(images.content[0]) / scale,
                    np.array(images.inputs) / scale,
                    system.correction(images.rows[:, 0] / scale))


def _solve_population(network, pop, grid, rates, dt_sub, code, tol, max_iter, warm=None,
                      parts=None):
    """Stationary state of one population under constant input ``rates``: the limiter
    iteration around the fixed-point solve. Returns a :class:`_Solved`; ``warm`` (the
    solve of a nearby input) shortens the iteration; ``parts``: the rate-independent
    parts of the population's steps (a dict filled on first use).

    Each iteration solves the step with the limiters frozen at the current factors
    (:func:`_solve_frozen`: chord iterations from the last solution with the LU factors
    at hand, those of the last factorisation, of this or a nearby input; a new
    factorisation only where they no longer fit) and refreezes the limiters at the
    result, until the rate and the masses change by less than ``tol``.

    Without any input event the state is known: every neuron at rest, silent (unless
    the rest lies at or above threshold). Solving for it would be ill-posed: the pure
    leak has one stationary state per cell it cannot leave, two when the rest lies on a
    cell face."""
    model = pop.model
    n = grid.num_cells
    if not any(s > 0.0 for s in rates) and _silent_without_input(model):
        cell, frac = point_mass_weights(grid, model.resting_state)
        mass = np.zeros(n)
        mass[cell] += 1.0 - frac
        if frac > 0.0:
            mass[cell + 1] += frac
        return _Solved(0.0, mass, 0.0, 0, np.zeros((0, n)) if warm is None else warm.factors,
                       None, None, None)
    step = _PopulationStep(network, pop, grid, rates, dt_sub, parts)
    # first pass: upwind (positive) or the warm start, then correct the limiters
    factors = np.zeros((step.num_slots, n))
    system, u = None, None
    if warm is not None and len(warm.factors) == step.num_slots:
        factors = warm.factors.copy()
        system, u = warm.system, warm.u
    rate, previous = np.inf, np.inf
    previous_mass = np.full(n, np.inf)
    pin = _likely_mass_cell(network, pop, grid, rates)
    count = 0
    for count in range(1, max_iter + 1):
        # the solve with frozen limiters, to well below tol (the changes tested next)
        it, system = _solve_frozen(step, factors, u, system, pin, 1e-2 * tol)
        u = it.u
        if not np.all(np.isfinite(it.mass)):
            raise FloatingPointError(f"steady state of {pop.name!r} is singular on {grid}")
        previous, rate = rate, it.rate
        change = np.abs(it.mass - previous_mass).max() / max(np.abs(it.mass).max(), 1e-300)
        previous_mass = it.mass
        # rates below ~1e-12 Hz are at the round-off level of the masses
        if code == SCHEME_UPWIND or (abs(rate - previous) <= tol * abs(rate) + 1e-12
                                     and change <= tol):
            break
        pin = int(np.argmax(it.mass))
        if it.slot_states.size:
            # plain iteration converges fastest; damp it if limiter switching cycles
            damping = 1.0 if count < max_iter // 4 else 0.5
            limited = limiter_factor(np.maximum(it.slot_states, 0.0), code)
            factors = (1 - damping) * factors + damping * limited
    else:
        raise RuntimeError(f"steady state of {pop.name!r} did not converge in {max_iter} "
                           f"limiter iterations (last rate change "
                           f"{abs(rate - previous):.3g} Hz)")
    return _Solved(rate, np.maximum(it.mass, 0.0), it.pending, count, factors, step,
                   system, it.u)


class _Solved(NamedTuple):
    """One population's stationary state: ``rate`` (Hz), cell ``mass`` at step starts,
    refractory content ``pending``, iterations ``count``; for derivatives and nearby
    solves the limiter ``factors``, the ``step``, the factorised ``system`` and the
    unknowns ``u`` (None for the silent state without input)."""

    rate: float
    mass: np.ndarray
    pending: float
    count: int
    factors: np.ndarray
    step: _PopulationStep | None
    system: _NullSystem | None
    u: np.ndarray | None


def _silent_without_input(model) -> bool:
    """Whether a 1D population without input stays at rest: no noise of its own, and its
    resting state is a fixed point of the drift below threshold (the LIF: ``e_l <
    v_th``)."""
    if intrinsic_diffusion_1d(model) > 0.0:
        return False
    rule = model.spike_rule
    rest = float(np.atleast_1d(np.asarray(model.resting_state, dtype=float))[0])
    scale = abs(rule.threshold - rule.reset) / model.time_scale
    return rest < rule.threshold and abs(float(model.drift(rest))) <= 1e-9 * scale


def _solve_frozen(step: _PopulationStep, factors, u: np.ndarray | None,
                  system: _NullSystem | None, pin: int,
                  accuracy: float) -> tuple[_Iterate, _NullSystem]:
    """Solve ``step`` with the limiters frozen at ``factors``: chord iterations from
    ``u`` with the LU factors of ``system`` (of this or a nearby step) until the
    correction is below ``accuracy`` of the masses, or new LU factors of this step when
    those do not contract it by ``_REFACTORISE`` per iteration (or within
    ``_CHORD_STEPS``); then the first iterate is the solution up to round-off. Returns
    the iterate and the system used."""
    if system is not None:
        previous = np.inf
        for _ in range(_CHORD_STEPS):
            it = _chord_iterate(step, factors, u, system)
            size = np.abs(it.correction).max() / max(np.abs(it.u).max(), 1e-300)
            if size <= accuracy:
                return it, system
            if not size <= _REFACTORISE * previous:     # also: not finite
                break
            previous = size
            u = it.u - it.correction
    system = step.factorise(factors, pin)
    return _chord_iterate(step, factors, system.u, system), system


def _frozen_rates(here: _Solved, steps: list) -> list:
    """The rates of ``here.step`` and of ``steps`` (the same population under slightly
    different inputs) with the limiters frozen at ``here.factors``, each solved to
    ``_POLISHED`` (:func:`_solve_frozen`), from the factors at hand."""
    pin = int(here.mass.argmax())
    base, system = _solve_frozen(here.step, here.factors, here.u, here.system, pin,
                                 _POLISHED)
    rates = [base.rate]
    for step in steps:
        it, system = _solve_frozen(step, here.factors, base.u, system, pin, _POLISHED)
        rates.append(it.rate)
    return rates


def _channel_jacobian(network, pops, names, grids, r, at, dt_sub, code, tol, max_iter,
                      solved, parts):
    """dF/dr of the population rates at ``r`` (``solved``: each population's solve
    there), by finite differences per input *channel*: the connections onto a
    population with the same weight, input kind and reversal act through the sum of
    their event rates only (the stepper merges them into one Poisson input), so one
    derivative per channel gives every entry ``dF_q/dr_k = sum_c n_syn_c
    dF_q/dS_channel(c)``. The derivatives freeze the limiter at ``r``; each rate is
    polished to round-off (~1e-11 of the masses, ~1e-5 of the derivative for the
    1e-6 relative input steps) by chord iterations with the LU factors at hand, or
    with new ones of the step at ``r`` where those do not fit (then stored in
    ``solved``, a warm start for the next evaluation). Newton then converges a little
    slower than with the exact derivative, at a fraction of the cost."""
    index = {name: k for k, name in enumerate(names)}
    rates = dict(zip(names, r))
    jac = np.zeros((len(names), len(names)))
    for q, pop in enumerate(pops):
        conns = network.inputs_of(pop)
        base = _input_rates(network, pop, at, rates)
        channels: dict = {}
        for i, c in enumerate(conns):
            if c.pre.name in network.populations:
                channels.setdefault((c.input, c.weight, c.reversal), []).append(i)
        steps, sizes = [], []
        for members in channels.values():
            sizes.append(_INPUT_STEP * max(sum(base[i] for i in members), 1.0))
            shifted = list(base)
            shifted[members[0]] += sizes[-1]
            steps.append(shifted)
        here = solved[pop.name]
        grid = grids[pop.name]
        if here.system is not None:
            steps = [_PopulationStep(network, pop, grid, s, dt_sub, parts) for s in steps]
            frozen = _frozen_rates(here, steps)
            changes = [f - frozen[0] for f in frozen[1:]]
        else:   # silent without input: a full solve with the input switched on
            changes = [_solve_population(network, pop, grid, s, dt_sub, code, tol, max_iter,
                                         here, parts).rate - here.rate for s in steps]
        for members, change, h in zip(channels.values(), changes, sizes):
            for i in members:
                jac[q, index[conns[i].pre.name]] += conns[i].n_syn * change / h
    return jac


def _check_network_1d(network: Network, at: float) -> None:
    """Refuse what the 1D stationary solver cannot do; warn about silent populations."""
    if not network.populations:
        raise ValueError("the network has no populations; add one with add_population")
    for c in network.connections:
        if c.reversal is not None:
            raise NotImplementedError(f"steady_state does not handle conductance synapses "
                                      f"yet (connection {c.label}); run the network to "
                                      f"its stationary state instead")
    for p in network.populations.values():
        if not network.inputs_of(p) and not p.model.intrinsic_diffusion():
            warnings.warn(f"steady_state: population {p.name!r} has no input (no "
                          f"connection targets it); its stationary state is its free "
                          f"dynamics: at rest and silent unless e_l >= v_th",
                          UserWarning, stacklevel=3)
    _warn_delayed_sources(network, at)


def steady_state_1d(network: Network, at: float = 0.0, dt: float = 1e-4, scheme: str = "mc",
                    tol: float = 1e-9, max_iter: int = 200) -> SteadyState:
    """Stationary rates and densities of ``network`` with its inputs frozen at time ``at``.

    With coupled populations this is the self-consistent fixed point: each
    population's stationary rate under inputs from the others' rates, solved for by
    damped Newton iteration on the rates (robust where plain iteration oscillates).

    Parameters
    ----------
    network : Network
        Populations driven by Poisson sources (constant, or read at ``at``) and by each
        other.
    at : float, default 0
        Time (s) at which time-varying source rates are read.
    dt : float, default 1e-4
        The reporting step of the run whose long-time limit is wanted: it sets the
        internal step exactly as :meth:`Network.run` does. (With diffusion inputs only,
        the result does not depend on it.)
    scheme : {"mc", "vanleer", "upwind"}
        Reconstruction, as in :meth:`Network.run`.
    tol : float
        The limiter iteration ends when the rate changes by less than ``tol``
        (relative, or 1e-12 Hz, the round-off level) and the masses by less than
        ``tol`` of their maximum.

    Returns
    -------
    SteadyState

    Examples
    --------
    >>> import popdens as pd
    >>> net = pd.Network()
    >>> ext = net.add_poisson("ext", rate=800.0)
    >>> pop = net.add_population("E", pd.LIF(tau_m=0.05, v_th=1.0, v_reset=0.0))
    >>> _ = net.connect(ext, pop, weight=0.03)
    >>> round(pd.steady_state(net).rates["E"], 1)
    11.9
    """
    at = as_real("at", at)
    dt = check_positive("dt", dt)
    code = scheme_code(scheme)
    _check_network_1d(network, at)
    pops = list(network.populations.values())
    names = [p.name for p in pops]
    coupled = any(c.pre.name in network.populations for c in network.connections)
    # one internal step for the whole network, as in a run (population inputs sized as
    # the density backend sizes them)
    guess = {name: GRID_GUESS_RATE for name in names}
    inputs = [(pop.model, [(s, weight_at_threshold(c), c.input) for c, s in
                           zip(network.inputs_of(pop), _input_rates(network, pop, at, guess))])
              for pop in pops]
    dt_sub = dt / substeps(dt, inputs)
    grids = {p.name: network.grid_of(p, dt=dt) for p in pops}

    warm = {}
    parts: dict = {}

    def solve_all(pop_rates, accuracy=tol):
        out = {}
        for p in pops:
            out[p.name] = _solve_population(network, p, grids[p.name],
                                            _input_rates(network, p, at, pop_rates), dt_sub,
                                            code, accuracy, max_iter, warm.get(p.name),
                                            parts)
            if out[p.name].system is not None or p.name not in warm:
                warm[p.name] = out[p.name]
        return out

    if coupled:
        last = {}

        def evaluate(r):
            # inexact Newton: far from the fixed point the limiter iterations stop at
            # a tolerance of _INEXACT times the relative residual r - F(r) (tightened
            # and repeated from the warm state until it is), so F is exact (tol) only
            # where Newton needs it: at the end
            accuracy = last.get("accuracy", _LOOSEST)
            while True:
                out = solve_all(dict(zip(names, r)), accuracy)
                f = np.array([out[name].rate for name in names])
                wanted = max(tol, _INEXACT * np.abs(f - r).max() / max(np.abs(r).max(), 1.0))
                if accuracy <= wanted:
                    break
                accuracy = wanted
            last.update(rates=r.copy(), out=out, accuracy=min(wanted, _LOOSEST))
            return f

        def jacobian(r, f):
            if "jac" in last:
                step, change = r - last["jac_at"], f - last["f_at"]
                if 0 < np.abs(step).max() <= _BROYDEN * max(np.abs(r).max(), 1.0):
                    # Broyden's update: the secant condition along the last step
                    jac = last["jac"]
                    jac = jac + np.outer(change - jac @ step, step) / (step @ step)
                    last.update(jac=jac, jac_at=r.copy(), f_at=f.copy())
                    return jac.copy()
            if not np.array_equal(last["rates"], r):
                evaluate(r)
            jac = _channel_jacobian(network, pops, names, grids, r, at, dt_sub, code, tol,
                                    max_iter, last["out"], parts)
            warm.update(last["out"])
            last.update(jac=jac, jac_at=r.copy(), f_at=f.copy())
            return jac.copy()

        # per-channel derivatives pay off when populations outnumber the channels of
        # each (the column: 8 vs 2); otherwise the full finite-difference Jacobian
        channels = max(len({(c.input, c.weight, c.reversal) for c in network.inputs_of(p)
                            if c.pre.name in network.populations}) for p in pops)
        r, f = _self_consistent_rates(evaluate, names, max(tol, 1e-9), 50,
                                      jacobian if channels < len(pops) else None)
        if "jac" in last:
            # one more Newton step, nearly free this close: the stopping rule allows a
            # residual of 1e-9 of the largest rate (4e-8 of the column's slowest rate)
            delta = np.linalg.solve(last["jac"] - np.eye(len(r)), r - f)
            trial = np.maximum(r + delta, 0.0)
            if np.abs(evaluate(trial) - trial).max() < np.abs(f - r).max():
                r = trial
        # the Newton iteration ends on an evaluation at r: its solves are the result
        same = np.array_equal(last["rates"], r)
        solved = last["out"] if same else solve_all(dict(zip(names, r)))
    else:
        solved = solve_all({})
    rates, densities, refractory, iterations = {}, {}, {}, {}
    for name in names:
        rates[name] = solved[name].rate
        densities[name] = solved[name].mass / grids[name].axes[0].width
        refractory[name] = solved[name].pending
        iterations[name] = solved[name].count
    return SteadyState(rates, densities, grids, refractory, iterations)

