"""Stationary solver: the steady rate and density by sparse linear solves.

With constant inputs one internal step of the density stepper is a linear map of the
cell masses (once the slope limiter is frozen): ``p -> P p``, where ``P`` chains the
same operators as :func:`popdens.kernels.stepper.advance` (transport remap or implicit
Scharfetter-Gummel step, the compound-Poisson jump propagators, reinjection at reset).
The steady state is the fixed point ``P p = p`` normalised so that grid mass plus
refractory mass is 1, so it is exactly what a long run of the same grid converges to,
without integrating there. The limiter is handled by freezing it at the current iterate
(``limited slope / central slope`` per cell), solving, and repeating (damped) until the
rate settles.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

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
from ..kernels.frozen import FrozenMixture, frozen_mixture
from ..kernels.transport import SCHEME_UPWIND, limited_slopes, poisson_weights, sg_coefficients
from ..network import GRID_GUESS_RATE, Network
from .steady_common import SteadyState
from .steady_common import input_rates as _input_rates
from .steady_common import self_consistent_rates as _self_consistent_rates
from .steady_common import warn_delayed_sources as _warn_delayed_sources

__all__ = ["steady_state_1d", "SteadyState", "remap_pieces", "slope_matrix", "limiter_factor"]

_POISSON_TAIL = 1e-10


def slope_matrix(n: int, factor: np.ndarray | None = None) -> sp.csr_matrix:
    """Mass differences ``g_i = factor_i (p_{i+1} - p_{i-1}) / 2`` as a matrix; 0 at the
    edge cells, as in the time stepper. ``factor`` (default 1: unlimited central slopes)
    freezes a limiter: ``limited slope / central slope`` of a given state."""
    rows = np.arange(1, n - 1)
    f = np.ones(n - 2) if factor is None else factor[1:n - 1]
    data = np.concatenate([0.5 * f, -0.5 * f])
    return sp.csr_matrix((data, (np.concatenate([rows, rows]),
                                 np.concatenate([rows + 1, rows - 1]))), shape=(n, n))


def limiter_factor(mass: np.ndarray, scheme: int) -> np.ndarray:
    """Ratio of the limited to the central slope of ``mass`` (0 where central is 0)."""
    limited = np.zeros_like(mass)
    limited_slopes(mass, limited, scheme)
    central = np.zeros_like(mass)
    central[1:-1] = 0.5 * (mass[2:] - mass[:-2])
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


class _PopulationStep:
    """One internal step of one population as sparse matrices, mirroring
    ``kernels.stepper.advance`` stage by stage, including where refractory mass is
    released (``assembly.release_stencil``). Each reconstruction in the step is a
    *slot* whose limiter is frozen by a factor (see :func:`limiter_factor`).

    The unknowns are ``u = (state, c0, c1, c2)``: the cell masses at the step start
    (with diffusion: after the implicit step) and the masses crossing threshold per
    sub-step that enter the refractory pipeline, by transport (``c0``), jumps (``c1``)
    and the implicit diffusion step (``c2``); in a steady state each release point
    hands out its stencil weight of them every sub-step."""

    def __init__(self, network: Network, pop, grid: Grid, rates, dt_sub: float):
        model = pop.model
        ax = grid.axes[0]
        self.n = n = ax.num_cells
        self.dt_sub = dt_sub
        conns = network.inputs_of(pop)
        diffusive = [(c, s) for c, s in zip(conns, rates) if c.input == "diffusion"]
        own = intrinsic_diffusion_1d(model)   # as in the stepper: an always-on input
        arrays = population_arrays(model, grid, dt_sub, bool(diffusive) or own > 0.0)
        self.diffusive = bool(diffusive) or own > 0.0
        if self.diffusive:
            drive = sum(s * c.weight for c, s in diffusive)
            diffusion = own
            for c, s in diffusive:
                diffusion += 0.5 * s * c.weight ** 2
            self.generator, self.outflux = _sg_matrix(arrays.face_velocity + drive,
                                                      diffusion, ax.width)
        else:
            self.drift = remap_pieces(arrays.departure, n)
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
            a_mix = b_mix = None
            for c, s in active:
                a, b = remap_pieces(faces - c.weight / ax.width, n)
                a_mix = (s / total) * a if a_mix is None else a_mix + (s / total) * a
                b_mix = (s / total) * b if b_mix is None else b_mix + (s / total) * b
            fractional = any(abs(c.weight / ax.width - round(c.weight / ax.width)) >= 1e-9
                             for c, _ in active)
            shares = (np.array([c.weight / ax.width for c, _ in active]),
                      np.array([s / total for _, s in active]))
            self.jumps.append(("horner", weights[:count].copy(), a_mix.tocsr(),
                               b_mix.tocsr() if fractional else None, shares))

    @property
    def num_slots(self) -> int:
        slots = 0 if self.diffusive else 1
        for kind, weights, _, _, _ in self.jumps:
            slots += (len(weights) - 1) if kind == "horner" else 1
        return max(slots, 1)

    def _jump_chain(self, y1, factors, slot):
        """Apply the jump stages to ``y1`` (a matrix on u). Returns the result, the
        enqueued crossings (row on u), all crossings (row on u) and the slot inputs."""
        n = self.n
        chain = y1
        enqueued = sp.csr_matrix((1, y1.shape[1]))
        crossed = sp.csr_matrix((1, y1.shape[1]))
        inputs = []
        for kind, weights, a, b, shares in self.jumps:
            if kind == "compound":
                inputs.append(chain)
                full = a if b is None else a + b @ slope_matrix(n, factors[slot])
                slot += 1
                full = full.tocsr()
                row = full[n] @ chain
                enqueued = enqueued + row
                crossed = crossed + row
                chain = (full[:n] @ chain).tocsr()
                continue
            # Horner: acc = w_K y; acc = T'(acc) + w_k y, T' = one event of the mixture,
            # crossed mass back at reset (no refractory period) or enqueued. Its matrix
            # is built column by column by the compiled frozen mixture (the sparse
            # products of the Horner chain on u cost 10x more)
            count = len(weights)
            mix = FrozenMixture(shares[0], shares[1], weights,
                                np.array(factors[slot:slot + count - 1]).reshape(count - 1, n),
                                self.reset if self.immediate else np.zeros(n),
                                bool(self.immediate))
            slot += count - 1
            images = np.empty((n, n))
            crossing = np.empty(n)
            frozen_mixture(np.eye(n), mix, images, crossing, np.empty((0, n)))
            images[np.abs(images) < 1e-300] = 0.0
            inputs.append(("horner", chain, mix))
            row = sp.csr_matrix(crossing[None, :]) @ chain
            crossed = crossed + row
            if not self.immediate:
                enqueued = enqueued + row
            chain = (sp.csr_matrix(images.T) @ chain).tocsr()
        return chain, enqueued, crossed, inputs

    def solve(self, factors, pin: int):
        """Solve with frozen limiters; returns ``(mass at step start, rate, refractory,
        slot inputs)``. ``pin`` is a state cell expected to hold mass."""
        n = self.n
        kinds = self.content.size
        size = n + kinds
        eye_u = sp.identity(size, format="csr")
        state = eye_u[:n]                              # u -> state
        c0, c1, c2 = eye_u[n], eye_u[n + 1], eye_u[n + 2]   # u -> crossings by kind
        crossings_u = eye_u[n:]
        reset = sp.csr_matrix(self.reset[:, None])
        start = reset @ sp.csr_matrix(self.start_release[None, :]) @ crossings_u
        mid = sp.csr_matrix(self.mid_release) @ crossings_u
        slot_inputs = []
        if self.diffusive:
            y1 = (state + mid).tocsr()
            x, enqueued, crossed, inputs = self._jump_chain(y1, factors, 0)
            slot_inputs += inputs
            q_to_out = sp.csr_matrix(self.dt_sub * self.outflux[None, :]) @ state
            # (I - dt L) q = x + start released in the next step
            balance = (sp.identity(n) - self.dt_sub * self.generator) @ state - x - start
            rows = [balance, c0, enqueued - c1, q_to_out - c2]
            fired_row = q_to_out + crossed
            record = x
        else:
            y0 = (state + start).tocsr()
            slot_inputs.append(y0)
            a, b = self.drift
            remap = (a + b @ slope_matrix(n, factors[0])).tocsr()
            y1 = (remap[:n] @ y0 + mid).tocsr()
            x, enqueued, crossed, inputs = self._jump_chain(y1, factors, 1)
            slot_inputs += inputs
            transport = remap[n] @ y0
            rows = [x - state, transport - c0, enqueued - c1, c2]
            fired_row = transport + crossed
            record = state
        content_row = sp.csr_matrix(self.content[None, :]) @ crossings_u
        norm = sp.csr_matrix(np.ones((1, n))) @ record + content_row
        balance, *crossings = rows
        u = _null_vector(balance.tocsr(), crossings, norm, pin, size)
        mass = record @ u
        rate = float((fired_row @ u)[0]) / self.dt_sub
        return mass, rate, float((content_row @ u)[0]), _slot_vectors(slot_inputs, u, n)


def _slot_vectors(slot_inputs, u, n: int) -> list:
    """The states the limiter slots act on at the solution ``u``: a matrix on u per
    slot, or a frozen mixture (its Horner iterates, one per slot)."""
    out = []
    for m in slot_inputs:
        if isinstance(m, tuple):
            _, chain, mix = m
            x = np.asarray(chain @ u, dtype=float).reshape(1, n)
            iterates = np.empty((mix.weights.size - 1, n))
            frozen_mixture(x, mix, np.empty((1, n)), np.empty(1), iterates)
            out.extend(iterates)
        else:
            out.append(m @ u)
    return out


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


def _null_vector(balance, crossings, norm, pin: int, size: int) -> np.ndarray:
    """The normalised solution of ``balance u = 0``, ``crossings u = 0``,
    ``norm . u = 1``.

    One balance row is redundant (conservation). Replacing it by ``u[pin] = 1`` keeps
    the system sparse (a dense normalisation row would fill the LU factors); the result
    is then scaled by ``norm``. If the pinned cell holds no mass that system is
    singular, and the dense-row system is solved instead."""
    pin_row = sp.csr_matrix(([1.0], ([0], [pin])), shape=(1, size))
    rows = sp.vstack([balance[:pin], pin_row, balance[pin + 1:], *crossings]).tocsc()
    rhs = np.zeros(size)
    rhs[pin] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", spla.MatrixRankWarning)
        u = spla.spsolve(rows, rhs)
    scale = float((norm @ u)[0]) if np.all(np.isfinite(u)) else 0.0
    if scale > 0.0 and np.all(np.isfinite(u)):
        u = u / scale
        if u[:balance.shape[0]].min() >= -1e-9 * np.abs(u).max():
            return u
    rows = sp.vstack([balance[:-1], norm, *crossings]).tocsc()
    rhs = np.zeros(size)
    rhs[balance.shape[0] - 1] = 1.0
    return spla.splu(rows, permc_spec="NATURAL", diag_pivot_thresh=0.1).solve(rhs)


def _solve_population(network, pop, grid, rates, dt_sub, code, tol, max_iter,
                      warm=None, frozen=False):
    """Stationary state of one population under constant input ``rates``: the limiter
    iteration around the sparse fixed-point solve. Returns (rate, mass, pending, count,
    factors); ``warm`` (the factors of a nearby solve) shortens the iteration; with
    ``frozen`` one solve with the limiters frozen at ``warm`` (for derivatives).

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
        return 0.0, mass, 0.0, 0, warm if warm is not None else []
    step = _PopulationStep(network, pop, grid, rates, dt_sub)
    if frozen and warm is not None and len(warm) == step.num_slots:
        mass, rate, pending, _ = step.solve(warm, _likely_mass_cell(network, pop, grid,
                                                                    rates))
        return rate, np.maximum(mass, 0.0), pending, 1, warm
    # first pass: upwind (positive) or the warm start, then correct the limiters
    factors = [np.zeros(n) for _ in range(step.num_slots)]
    if warm is not None and len(warm) == step.num_slots:
        factors = [f.copy() for f in warm]
    rate, previous = np.inf, np.inf
    previous_mass = np.full(n, np.inf)
    pin = _likely_mass_cell(network, pop, grid, rates)
    count = 0
    for count in range(1, max_iter + 1):
        mass, new_rate, pending, slot_inputs = step.solve(factors, pin)
        pin = int(np.argmax(mass))
        if not np.all(np.isfinite(mass)):
            raise FloatingPointError(f"steady state of {pop.name!r} is singular on {grid}")
        previous, rate = rate, new_rate
        change = np.abs(mass - previous_mass).max() / max(np.abs(mass).max(), 1e-300)
        previous_mass = mass
        # rates below ~1e-12 Hz are at the round-off level of the masses
        if code == SCHEME_UPWIND or (abs(rate - previous) <= tol * abs(rate) + 1e-12
                                     and change <= tol):
            break
        # plain iteration converges fastest; damp it if limiter switching cycles
        damping = 1.0 if count < max_iter // 4 else 0.5
        factors = [(1 - damping) * f + damping * limiter_factor(np.maximum(y, 0.0), code)
                   for f, y in zip(factors, slot_inputs)]
    else:
        raise RuntimeError(f"steady state of {pop.name!r} did not converge in {max_iter} "
                           f"limiter iterations (last rate change "
                           f"{abs(rate - previous):.3g} Hz)")
    return rate, np.maximum(mass, 0.0), pending, count, factors


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


def _channel_jacobian(network, pops, names, grids, r, f, at, dt_sub, code, tol,
                      max_iter, warm):
    """dF/dr of the population rates at ``r`` (``f = F(r)``), by finite differences per
    input *channel*: the connections onto a population with the same weight, input kind
    and reversal act through the sum of their event rates only (the stepper merges them
    into one Poisson input), so one derivative per channel gives every entry
    ``dF_q/dr_k = sum_c n_syn_c dF_q/dS_channel(c)``. The derivatives freeze the limiter
    at ``r`` (one sparse solve each); Newton then converges a little slower than with the
    exact derivative, at a fraction of the cost (3 solves per population in the column
    instead of 9)."""
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
        for members in channels.values():
            h = 1e-6 * max(sum(base[i] for i in members), 1.0)
            shifted = list(base)
            shifted[members[0]] += h
            f_h = _solve_population(network, pop, grids[pop.name], shifted, dt_sub, code,
                                    tol, max_iter, warm.get(pop.name), frozen=True)[0]
            slope = (f_h - f[q]) / h
            for i in members:
                jac[q, index[conns[i].pre.name]] += conns[i].n_syn * slope
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

    def solve_all(pop_rates):
        out = {}
        for p in pops:
            out[p.name] = _solve_population(network, p, grids[p.name],
                                            _input_rates(network, p, at, pop_rates), dt_sub,
                                            code, tol, max_iter, warm.get(p.name))
            warm[p.name] = out[p.name][-1]
        return out

    if coupled:
        def evaluate(r):
            out = solve_all(dict(zip(names, r)))
            return np.array([out[name][0] for name in names])

        def jacobian(r, f):
            return _channel_jacobian(network, pops, names, grids, r, f, at, dt_sub, code,
                                     tol, max_iter, warm)

        # per-channel derivatives pay off when populations outnumber the channels of
        # each (the column: 8 vs 2); otherwise the full finite-difference Jacobian
        channels = max(len({(c.input, c.weight, c.reversal) for c in network.inputs_of(p)
                            if c.pre.name in network.populations}) for p in pops)
        r, _ = _self_consistent_rates(evaluate, names, max(tol, 1e-9), 50,
                                      jacobian if channels < len(pops) else None)
        solved = solve_all(dict(zip(names, r)))
    else:
        solved = solve_all({})
    rates, densities, refractory, iterations = {}, {}, {}, {}
    for name in names:
        rate, mass, pending, count, _ = solved[name]
        rates[name] = rate
        densities[name] = mass / grids[name].axes[0].width
        refractory[name] = pending
        iterations[name] = count
    return SteadyState(rates, densities, grids, refractory, iterations)

