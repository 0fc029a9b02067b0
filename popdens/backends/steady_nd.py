"""Stationary states of N-D populations (any model with a reset or a spike surface) from
the sparse matrix of the density engine's own internal step.

A run alternates the stage order of its internal steps (forward on even steps, backward
on odd ones), so its long-time limit is the fixed point of the *pair* ``P = B F`` of
:mod:`popdens.backends.operator_nd` step matrices, with the state vector ``x`` (cell
masses and refractory pipeline) at the start of an even step. It is the null vector of
``P - I`` restricted to the states reachable from the resting state (cells no neuron can
reach would add spurious stationary states), found with one sparse LU of a nonsingular
system: the row of a cell that holds mass is replaced by ``x_pin = 1`` (the matrix
conserves mass, so that row is redundant), and the result is scaled to total mass 1.
If that solution is not a valid density, the row is replaced by the normalisation
instead; if that fails too, the error says so. The rate is the mass the engine fires
in the two steps of the pair from ``x``, divided by their length.

Limited schemes (``"mc"``, ``"vanleer"``) are solved by iterating on the limiter: start
from the fixed point of the upwind pair, then take the fixed point of the step's
Jacobian at the current state until the state settles (at a fixed point ``x = J(x) x``
is the engine's own fixed point, because the step is positively homogeneous).
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph
import scipy.sparse.linalg as spla

from ..network import Network
from .density import split_by_engine
from .density_nd import NDDensitySimulation
from .operator_nd import PopulationStepper, StepOperator, step_matrix
from .steady_common import SteadyState, input_rates, self_consistent_rates

__all__ = ["steady_state_nd", "step_operator", "stationary_state"]

# Largest negative mass a null vector may hold before clipping (see _valid).
NEGATIVE_MASS = 0.05
# Floor of the limiter iteration's tolerance (total variation between a state and the
# engine's pair of steps from it): the Jacobians' forward differences leave the fixed
# point a residual of about 3e-9 (measured, LIFSynaptic 40 x 30 cells).
STATE_TOL = 1e-7
# Limiter iterations before damping, and the largest residual accepted (with a warning)
# when the iteration stops without reaching the tolerance.
UNDAMPED = 5
# Pairs of engine steps that relax a state whose linearisation has no valid null vector
# (and, at most RELAX_LIMIT of them, the best iterate of a stalled limiter iteration).
RELAX_PAIRS = 200
RELAX_LIMIT = 2000
ACCEPT_RESIDUAL = 1e-5
# Matrix-vector products of the short power iteration that finds a cell holding mass.
POWER_STEPS = 64


def _prepare(network: Network, at: float, dt: float, scheme: str, max_substep):
    """The N-D engine's prepared populations and internal step, as a run from 0 to
    ``at + dt`` builds them (grids, departure tables, reset maps, pipelines)."""
    sim = NDDensitySimulation(network, at + dt, dt, scheme=scheme, max_substep=max_substep)
    for p in sim.pops:
        if p.has_open:
            raise NotImplementedError(
                f"population {p.name!r} has outflow or absorbing faces: its mass decays, "
                f"so there is no stationary state; run it instead")
    for name, pop in network.populations.items():
        if pop.model.intrinsic_diffusion():
            raise NotImplementedError(
                f"population {name!r}: models with white noise of their own have no N-D "
                f"density engine; use backend='montecarlo'")
    return sim


def pair_matrix(stepper: PopulationStepper, about=None) -> sp.csr_matrix:
    """The matrix of a forward then a backward internal step (linearised at ``about``
    and at its image for limited schemes)."""
    forward = step_matrix(stepper, True, about)
    middle = None if about is None else stepper.step(about, True)[0]
    backward = step_matrix(stepper, False, middle)
    return (backward.matrix @ forward.matrix).tocsr()


def _reachable(matrix: sp.csr_matrix, starts) -> np.ndarray:
    """Indices reachable from ``starts`` along the matrix's transitions (column j ->
    row i where ``matrix[i, j] != 0``)."""
    graph = matrix.T.tocsr()
    seen = np.zeros(matrix.shape[0], dtype=bool)
    for s in starts:
        if not seen[s]:
            seen[csgraph.breadth_first_order(graph, int(s), directed=True,
                                             return_predecessors=False)] = True
    return np.flatnonzero(seen)


def _null_vector(matrix: sp.csr_matrix, pin: int) -> np.ndarray | None:
    """Solution of ``(matrix - I) x = 0`` with ``x[pin] = 1``, scaled to sum 1; None if
    it is not a valid (finite, non-negative) density."""
    size = matrix.shape[0]
    keep = np.ones(size)
    keep[pin] = 0.0
    system = sp.diags(keep) @ (matrix - sp.identity(size, format="csr"))
    system = (system + sp.csr_matrix(([1.0], ([pin], [pin])), shape=(size, size))).tocsc()
    rhs = np.zeros(size)
    rhs[pin] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", spla.MatrixRankWarning)
        x = spla.spsolve(system, rhs)
    return _valid(x)


def _normalised_solve(matrix: sp.csr_matrix, pin: int) -> np.ndarray | None:
    """Fallback: the row ``pin`` of ``(matrix - I) x = 0`` replaced by ``sum x = 1``."""
    size = matrix.shape[0]
    keep = np.ones(size)
    keep[pin] = 0.0
    system = sp.diags(keep) @ (matrix - sp.identity(size, format="csr"))
    ones = sp.csr_matrix((np.ones(size), (np.full(size, pin), np.arange(size))),
                         shape=(size, size))
    rhs = np.zeros(size)
    rhs[pin] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", spla.MatrixRankWarning)
        x = spla.spsolve((system + ones).tocsc(), rhs)
    return _valid(x)


def _valid(x: np.ndarray) -> np.ndarray | None:
    if not np.all(np.isfinite(x)) or not x.sum() > 0:
        return None
    x = x / x.sum()
    # the fixed point of a Jacobian taken at a state far from it (the first limiter
    # iterations, from the upwind state or another input's state) may dip below 0 in
    # the tails (measured: 7e-5 of the mass); a singular system gives garbage. The
    # limiter iteration judges its iterates by the engine's own steps.
    if -x[x < 0].sum() > NEGATIVE_MASS:
        return None
    x = np.maximum(x, 0.0)
    return x / x.sum()


def stationary_state(matrix: sp.csr_matrix, start: np.ndarray, name: str) -> np.ndarray:
    """The stationary state vector of a mass-conserving step ``matrix`` (sum 1) on the
    states reachable from ``start`` (a state vector, e.g. all mass at rest).

    Raises
    ------
    RuntimeError
        When neither sparse system gives a valid density (several separate stationary
        states among the reachable cells).
    """
    support = _reachable(matrix, np.flatnonzero(start))
    sub = matrix[support][:, support].tocsr()
    # a cell that holds mass: a few steps from the start
    y = start[support].astype(float)
    for _ in range(POWER_STEPS):
        y = sub @ y
    pin = int(np.argmax(y))
    x = _null_vector(sub, pin)
    if x is None:
        x = _normalised_solve(sub, pin)
    if x is None:
        raise RuntimeError(
            f"steady state of {name!r}: the step matrix on the {support.size} states "
            f"reachable from rest has no unique non-negative null vector (several "
            f"separate stationary states?); run the network instead")
    out = np.zeros(matrix.shape[0])
    out[support] = x
    return out


def _initial_vector(stepper: PopulationStepper) -> np.ndarray:
    """State vector of the population's initial state (a run's start: the resting
    state, or ``init=``), empty pipeline."""
    x = np.zeros(stepper.size)
    x[:stepper.pop.grid.num_cells] = stepper.pop.mass
    return x


def _pair_residual(stepper: PopulationStepper, x: np.ndarray) -> float:
    """Total variation between ``x`` and the engine's own pair of steps from it."""
    middle, _ = stepper.step(x, True)
    return float(np.abs(stepper.step(middle, False)[0] - x).sum())


def _stalled(history) -> bool:
    """Whether the limiter iteration has stopped paying: after ``2 UNDAMPED`` iterations,
    the last ``UNDAMPED`` did not halve the best residual."""
    return (len(history) >= 2 * UNDAMPED
            and history[-1] > 0.5 * history[-1 - UNDAMPED])


def _relax(stepper, x, residual, target):
    """Pairs of the engine's own steps from ``x``, ``RELAX_PAIRS`` at a time and at most
    ``RELAX_LIMIT``, until the pair residual is below ``target``: where the limiter's
    branches keep the linearised iteration from settling, the run's own dynamics still
    contract towards its fixed point (measured, an LIF coupled to a ReducedHH: 1.2e-4 ->
    5.6e-8 for the LIF, 4e-6 -> 1e-8 for the ReducedHH, in 200 pairs). Returns the state
    and its residual."""
    pairs = 0
    while residual > target and pairs < RELAX_LIMIT:
        for _ in range(RELAX_PAIRS):
            x = stepper.step(stepper.step(x, True)[0], False)[0]
        pairs += RELAX_PAIRS
        residual = _pair_residual(stepper, x)
    return x, residual


def _limiter_iteration(stepper, x, start, name, tol, max_iter):
    """Fixed point of the limited pair: ``x <- null vector of J(x) - I``, damped by
    half after ``UNDAMPED`` iterations (limiter branches can cycle: measured on
    ReducedHH, a 2-cycle of state changes 1e-3), keeping the iterate whose residual
    under the engine's own steps is smallest. Stops when that residual is below
    ``max(tol, STATE_TOL)``, after ``max_iter`` iterations or when it stalls
    (:func:`_stalled`); short of the tolerance, the best iterate is relaxed with the
    engine's own steps (:func:`_relax`) and, still short, returned with a warning if
    its residual is below ``ACCEPT_RESIDUAL``, else the error says so."""
    best, best_residual = x, _pair_residual(stepper, x)
    target = max(tol, STATE_TOL)
    count = 0
    history = []
    while best_residual > target and count < max_iter and not _stalled(history):
        try:
            new = stationary_state(pair_matrix(stepper, x), start, name)
        except RuntimeError:
            # linearised too far from the fixed point (the Jacobian's null vector is no
            # density): relax with the engine's own steps and linearise again
            for _ in range(RELAX_PAIRS):
                x = stepper.step(stepper.step(x, True)[0], False)[0]
            count += 1
            continue
        weight = 1.0 if count < UNDAMPED else 0.5
        x = (1.0 - weight) * x + weight * new
        count += 1
        residual = _pair_residual(stepper, x)
        if residual < best_residual:
            best, best_residual = x, residual
        history.append(best_residual)
    if best_residual > target:
        best, best_residual = _relax(stepper, best, best_residual, target)
    if best_residual > target:
        if best_residual > ACCEPT_RESIDUAL:
            raise RuntimeError(f"steady state of {name!r} did not converge in {count} "
                               f"limiter iterations and {RELAX_LIMIT} relaxing step pairs "
                               f"(residual {best_residual:.3g} of the mass per step "
                               f"pair); try scheme='upwind'")
        warnings.warn(f"steady state of {name!r}: the limiter iteration stopped at a "
                      f"residual of {best_residual:.3g} of the mass per step pair after "
                      f"{count} iterations (tolerance {target:.3g})", RuntimeWarning,
                      stacklevel=4)
    return best, count


def solve_population(pop, rates, dt_sub: float, scheme: str, tol: float, max_iter: int,
                     warm=None):
    """Stationary state vector, rate (Hz) and limiter iterations of one prepared
    population at constant input event ``rates``."""
    stepper = PopulationStepper(pop, rates, dt_sub, scheme)
    start = _initial_vector(stepper)
    if warm is not None:
        start = start + warm
    x = warm
    if x is None or stepper.code == 0:
        linear = PopulationStepper(pop, rates, dt_sub, "upwind")
        x = stationary_state(pair_matrix(linear), start, pop.name)
    count = 0
    if stepper.code != 0:
        x, count = _limiter_iteration(stepper, x, start, pop.name, tol, max_iter)
    middle, fired_forward = stepper.step(x, True)
    _, fired_backward = stepper.step(middle, False)
    rate = (fired_forward + fired_backward) / (2.0 * dt_sub)
    return x, rate, count


def steady_state_nd(network: Network, at: float, dt: float, scheme: str, tol: float,
                    max_iter: int, max_substep=None) -> SteadyState:
    """Stationary rates and densities of a network of N-D populations (see
    :func:`popdens.steady_state`); coupled populations by the same damped Newton
    iteration on the rates as the 1D solver."""
    sim = _prepare(network, at, dt, scheme, max_substep)
    pops = list(network.populations.values())
    names = [p.name for p in pops]
    prepared = dict(zip(names, sim.pops))
    warm = {}

    def solve_all(pop_rates):
        out = {}
        for p in pops:
            rates = input_rates(network, p, at, pop_rates)
            out[p.name] = solve_population(prepared[p.name], rates, sim.dt_sub, scheme,
                                           tol, max_iter, warm.get(p.name))
            warm[p.name] = out[p.name][0]
        return out

    if any(c.pre.name in network.populations for c in network.connections):
        def evaluate(r):
            out = solve_all(dict(zip(names, r)))
            return np.array([out[name][1] for name in names])

        r, _ = self_consistent_rates(evaluate, names, max(tol, 1e-9), 50)
        solved = solve_all(dict(zip(names, r)))
    else:
        solved = solve_all({})
    rates, densities, refractory, iterations, grids = {}, {}, {}, {}, {}
    for name in names:
        x, rate, count = solved[name]
        grid = prepared[name].grid
        m = grid.num_cells
        grids[name] = grid
        rates[name] = rate
        densities[name] = (x[:m] / grid.cell_volume).reshape(grid.shape)
        refractory[name] = float(x[m:].sum())
        iterations[name] = count
    return SteadyState(rates, densities, grids, refractory, iterations)


def step_operator(network: Network, name: str, rates: dict | None = None, at: float = 0.0,
                  dt: float = 1e-4, scheme: str = "mc", forward: bool = True, about=None,
                  max_substep=None) -> StepOperator:
    """One internal step of the density engine for population ``name`` as a sparse
    matrix, at constant inputs.

    The basis of linear response and stability analysis: the matrix maps the state
    vector (cell masses, then the refractory pipeline of a reset model) at the start of
    an internal step to the next; its eigenvalues near 1 give the population's slow
    relaxation rates (``log(lambda) / dt_sub``) and its null vector of ``A - I``
    (of the forward-backward pair, as a run alternates them) the stationary state.

    Parameters
    ----------
    network : Network
    name : str
        The population (any model the N-D engine runs).
    rates : dict, optional
        Firing rate (Hz) of every population that has a connection to ``name``; its
        event rate is ``n_syn`` times it. Sources are read at ``at``.
    at, dt, scheme, max_substep
        As for :func:`popdens.steady_state` and :meth:`Network.run`; ``dt`` and
        ``max_substep`` set the internal step as a run does.
    forward : bool, default True
        The stage order of even internal steps (True) or odd ones (False).
    about : array, optional
        State vector at which a limited scheme is linearised (the step's Jacobian
        there). Default: for ``scheme="upwind"`` none is needed (the step is linear);
        otherwise the stationary state of the population under these inputs.

    Returns
    -------
    StepOperator
    """
    if name not in network.populations:
        raise ValueError(f"name must be a population of the network, got {name!r}; "
                         f"populations: {sorted(network.populations)}")
    pop = network.populations[name]
    rates = dict(rates or {})
    for c in network.inputs_of(pop):
        if c.pre.name in network.populations and c.pre.name not in rates:
            raise ValueError(f"rates must give the rate of {c.pre.name!r}, which drives "
                             f"{name!r}; got rates={rates!r}")
    one_d, n_d = split_by_engine(network)
    if name not in n_d:
        raise NotImplementedError(f"population {name!r} runs in the 1D engine; the step "
                                  f"operator is built for the N-D engine only")
    part = network if not one_d else network.subnetwork(n_d)
    sim = _prepare(part, at, dt, scheme, max_substep)
    prepared = sim.pops[n_d.index(name)]
    events = input_rates(network, pop, at, rates)
    stepper = PopulationStepper(prepared, events, sim.dt_sub, scheme)
    if about is None and stepper.code != 0:
        about, _, _ = solve_population(prepared, events, sim.dt_sub, scheme, 1e-9, 200)
        if not forward:
            about = stepper.step(about, True)[0]
    elif about is not None:
        about = np.asarray(about, dtype=float)
        if about.shape != (stepper.size,):
            raise ValueError(f"about must be a state vector of {stepper.size} entries "
                             f"(cells, then pipeline), got shape {about.shape}")
    return step_matrix(stepper, forward, about)
