"""The 1D stationary solver's fast paths against the ways they replace, on a population
of the cortical column (the case they were made for): the step applied to the identity
(the jump stage applied to the remapped columns directly) against the matrix of the
jump stage built from its images of unit vectors and multiplied out, and the chord
iterations (LU factors reused across limiter iterations) against the limiter iteration
with a new factorisation per solve."""

from __future__ import annotations

import numpy as np
import pytest

from popdens.assembly import substeps, weight_at_threshold
from popdens.backends import steady
from popdens.backends.steady_common import input_rates
from popdens.examples import COLUMN_GRID, column_network
from popdens.kernels.frozen import FrozenMixture, frozen_mixture
from popdens.kernels.transport import SCHEME_MC

# the column's stationary rates (Hz), to 1e-4: where the inputs are realistic
COLUMN_RATES = {"L23e": 0.3178, "L23i": 3.1005, "L4e": 4.7744, "L4i": 6.7983,
                "L5e": 12.7274, "L5i": 11.2463, "L6e": 2.2169, "L6i": 9.3412}


@pytest.fixture(scope="module")
def l5e_step():
    net = column_network(grid=COLUMN_GRID)
    pop = net.populations["L5e"]
    grid = net.grid_of(pop, dt=1e-4)
    rates = input_rates(net, pop, 0.0, COLUMN_RATES)
    inputs = [(p.model, [(s, weight_at_threshold(c), c.input) for c, s in
                         zip(net.inputs_of(p), input_rates(net, p, 0.0, COLUMN_RATES))])
              for p in net.populations.values()]
    dt_sub = 1e-4 / substeps(1e-4, inputs)
    return net, pop, grid, rates, dt_sub, steady._PopulationStep(net, pop, grid, rates,
                                                                 dt_sub)


def test_step_on_the_identity_is_the_unit_vector_matrix_multiplied_out(l5e_step):
    *_, step = l5e_step
    n = step.n
    assert not step.diffusive and step.immediate and step.jumps[0][0] == "horner"
    rng = np.random.default_rng(5)
    factors = rng.uniform(0.0, 2.0, (step.num_slots, n))
    rows = step.apply(np.eye(n + 3), factors).rows
    # the previous way: the jump stage's matrix from its images of the unit vectors,
    # times the remap (A + B S) of the state, reinjection at reset for crossings
    _, weights, _, _, shares = step.jumps[0]
    mix = FrozenMixture(shares[0], shares[1], weights, factors[1:], step.reset, True)
    images = np.empty((n, n))
    frozen_mixture(np.eye(n), mix, images, np.empty(n), np.empty((0, n)))
    a, b = step.drift
    slope = np.zeros((n, n))
    inner = np.arange(1, n - 1)
    slope[inner, inner + 1] = 0.5 * factors[0, inner]
    slope[inner, inner - 1] = -0.5 * factors[0, inner]
    remap = (a + b @ slope)[:n]
    # sums of O(1) terms in another order: round-off
    np.testing.assert_allclose(rows[:n, :n], images.T @ remap - np.eye(n), rtol=0,
                               atol=1e-14)


def test_chord_iterations_give_the_limiter_iteration_with_exact_solves(l5e_step):
    net, pop, grid, rates, dt_sub, step = l5e_step
    fast = steady._solve_population(net, pop, grid, rates, dt_sub, SCHEME_MC, 1e-9, 200)
    factors = np.zeros((step.num_slots, step.n))
    rate = np.inf
    for _ in range(200):    # the previous way: a new factorisation per limiter iteration
        system = step.factorise(factors, int(np.argmax(fast.mass)))
        exact = steady._chord_iterate(step, factors, system.u, system)
        if abs(exact.rate - rate) <= 1e-13 * exact.rate:
            break
        rate = exact.rate
        factors = steady.limiter_factor(np.maximum(exact.slot_states, 0.0), SCHEME_MC)
    # both iterations stop once the rate changes by less than tol = 1e-9 (relative)
    assert fast.rate == pytest.approx(exact.rate, rel=1e-9)
    np.testing.assert_allclose(fast.mass, exact.mass, rtol=0, atol=1e-9 * exact.mass.max())
