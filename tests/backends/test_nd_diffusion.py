"""Diffusion input (``input="diffusion"``) along the input axis of N-D populations: the 1D
engine's backward-Euler Scharfetter-Gummel step as a line operation
(:func:`popdens.kernels.nd.diffusion_lines`)."""

from __future__ import annotations

import numpy as np
import pytest

import popdens as pd
from popdens.backends.density_nd import NDDensitySimulation
from popdens.kernels.nd import TOP_ABSORB, TOP_FIRE, TOP_REFLECT, diffusion_lines
from popdens.kernels.transport import bernoulli

from .test_nd import PassiveLIF


def _naive_lines(p, axis, drive, diffusion, dt, top_mode, watch_face):
    """Dense backward-Euler solve of the Scharfetter-Gummel operator on every line."""
    n = p.shape[axis]
    right = np.array([0.0] + [diffusion * bernoulli(-drive / diffusion)] * n)
    left = np.array([0.0] + [diffusion * bernoulli(drive / diffusion)] * (n - 1) + [0.0])
    if top_mode == TOP_REFLECT:
        right[n] = 0.0
    else:
        right[n] += diffusion * bernoulli(drive / diffusion)   # ghost value -p
    operator = np.zeros((n, n))
    for j in range(n):
        operator[j, j] = -(left[j] + right[j + 1])
        if j > 0:
            operator[j, j - 1] = right[j]
        if j < n - 1:
            operator[j, j + 1] = left[j + 1]
    lines = np.moveaxis(p, axis, -1).reshape(-1, n)
    out = np.linalg.solve(np.eye(n) - dt * operator, lines.T).T
    fired = dt * right[n] * out[:, -1] if top_mode == TOP_FIRE else np.zeros(len(lines))
    watched = np.zeros(len(lines))
    if watch_face > 0:
        watched = np.maximum(dt * (right[watch_face] * out[:, watch_face - 1]
                                   - left[watch_face] * out[:, watch_face]), 0.0)
    shape = np.moveaxis(p, axis, -1).shape
    return np.moveaxis(out.reshape(shape), -1, axis), fired, watched


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("top_mode", [TOP_REFLECT, TOP_FIRE, TOP_ABSORB])
def test_diffusion_lines_matches_dense_solve(axis, top_mode):
    """The line kernel against a dense solve, to round-off (1e-12 of the largest mass);
    mass balance: grid + fired (+ absorbed) = before."""
    rng = np.random.default_rng(axis + 3 * top_mode)
    shape = (5, 7, 6)
    p = rng.uniform(0.0, 1.0, shape)
    p /= p.sum()
    outer = int(np.prod(shape[:axis]))
    inner = int(np.prod(shape[axis + 1:]))
    n = shape[axis]
    dst = np.zeros(p.size)
    crossed = np.zeros(outer * inner)
    watched = np.zeros(outer * inner)
    drive, diffusion, dt, watch = 3.0, 2.5, 0.3, 3
    diffusion_lines(p.ravel(), dst, outer, n, inner, drive, diffusion, dt, top_mode,
                    np.zeros(4 * (n + 1)), np.zeros((n + 1) * inner), crossed, watch,
                    watched)
    expected, fired, seen = _naive_lines(p, axis, drive, diffusion, dt, top_mode, watch)
    # round-off: the same tridiagonal solve per line
    np.testing.assert_allclose(dst.reshape(shape), expected, rtol=0, atol=1e-12 * p.max())
    # round-off of the crossing fluxes of masses <= 1
    np.testing.assert_allclose(np.sort(crossed), np.sort(fired), atol=1e-14)
    np.testing.assert_allclose(np.sort(watched), np.sort(seen), atol=1e-14)
    if top_mode != TOP_ABSORB:
        # conservation: masses summing to 1, round-off
        assert dst.sum() + crossed.sum() == pytest.approx(1.0, abs=1e-14)
    assert dst.min() >= 0.0


def _lif_1d(rate):
    net = pd.Network()
    pop = net.add_population("E", pd.LIF(tau_m=0.02, v_th=0.02, v_reset=0.01,
                                         t_ref=0.002), grid=pd.Grid(v=(-0.01, 0.02, 300)))
    net.connect(net.add_poisson("ext", rate), pop, weight=0.5e-3, input="diffusion")
    return net.run(t_end=0.2, dt=1e-4, progress=False)


def _passive_2d(rate, step, cells):
    net = pd.Network()
    pop = net.add_population("E", PassiveLIF(0.02, 0.02, 0.01, 0.002),
                             grid=pd.Grid(v=(-0.01, 0.02, cells), y=(0.0, 1.0, 3)))
    net.connect(net.add_poisson("ext", rate), pop, weight=0.5e-3, input="diffusion")
    return NDDensitySimulation(net, 0.2, 1e-4, max_substep=step).run(record_times=[0.2],
                                                                     progress=False)


def test_passive_second_axis_with_diffusion_gives_the_1d_lif_rate():
    """An LIF with a passive second axis under diffusion input converges to the 1D
    engine's rate as the internal step shrinks (the N-D scheme splits the leak, a
    semi-Lagrangian sweep, from the implicit input step: first order in the step, the
    1D engine takes both in one implicit step), and conserves mass."""
    rate = pd.piecewise([0.0, 0.1], [1500.0, 2500.0])
    one_d = _lif_1d(rate)
    coarse = _passive_2d(rate, 1e-4, 300)
    fine = _passive_2d(rate, 2.5e-5, 1200)
    windows = ((0.05, 0.1), (0.15, 0.2))
    ref = [one_d.mean_rate("E", *w) for w in windows]
    err_coarse = [abs(coarse.mean_rate("E", *w) - r) for w, r in zip(windows, ref)]
    err_fine = [abs(fine.mean_rate("E", *w) - r) for w, r in zip(windows, ref)]
    # measured (1D: 1.066 / 44.84 Hz): 300 cells at 100 us 0.89 / 0.34 Hz off, 1200
    # cells at 25 us 0.20 / 0.10 Hz (ratios 0.22, 0.29; first order in a 4x finer step
    # gives 0.25, second 0.06): the bound 0.4 fails if the step stops converging
    assert all(f < 0.4 * c for f, c in zip(err_fine, err_coarse)), (err_coarse, err_fine)
    # suprathreshold segment (45 Hz) within 0.5 % on the fine setting (measured 0.22 %)
    assert err_fine[1] < 5e-3 * ref[1]
    assert ref[1] > 30.0
    grid = fine.grids["E"]
    total = fine.densities["E"][-1].sum() * grid.cell_volume + fine.info[
        "refractory_mass"]["E"]
    # conservation: grid plus refractory mass, round-off
    assert total == pytest.approx(1.0, abs=1e-12)


def test_diffusion_and_jumps_with_the_same_weight_stay_separate():
    """A diffusion and a jump input of the same weight are not merged into one Poisson
    stream: each acts as its kind (the run differs from two jump inputs)."""
    def run(kinds):
        net = pd.Network()
        pop = net.add_population("E", PassiveLIF(0.02, 0.02, 0.01, 0.002),
                                 grid=pd.Grid(v=(-0.01, 0.02, 60), y=(0.0, 1.0, 2)))
        for k, kind in enumerate(kinds):
            net.connect(net.add_poisson(f"s{k}", 1000.0), pop, weight=1.5e-3, input=kind)
        return NDDensitySimulation(net, 0.05, 1e-4).run(progress=False)
    mixed = run(("jump", "diffusion"))
    jumps = run(("jump", "jump"))
    # a real difference, far above round-off (measured 3.9 Hz)
    assert abs(mixed.mean_rate("E", 0.02) - jumps.mean_rate("E", 0.02)) > 0.1
