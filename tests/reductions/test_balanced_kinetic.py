"""popdens.balanced_kinetic: the Fokker-Planck densities of the balanced limit. Linear
drift without noise reproduces the Gaussian ODEs; the compiled kernel equals a NumPy
twin; mass is conserved and the constraint kept for a nonlinear drift."""

from __future__ import annotations

import numpy as np
import pytest

import popdens as pd
from popdens import balanced as bl
from popdens.balanced_kinetic import KineticBalanced, kinetic_kernel

M0, V0 = {"E": None, "I": -0.5}, {"E": 0.1, "I": 0.1}


def _net():
    return bl.BalancedEI(a=1.0, b=2.0, tau={"E": 0.5, "I": 1.0},
                         rate={"E": bl.GaussianRate("probit", theta=-1.0),
                               "I": bl.GaussianRate("probit", theta=0.0)},
                         h={"E": pd.piecewise([0.0, 1.0, 2.0], [0.0, 0.5, 0.0]), "I": 0.0})


def test_linear_drift_reproduces_the_gaussian_odes():
    # Measured max errors over t = 0..3 (400 cells on -8..8, dt 2.5e-4): m 1e-4,
    # v 4e-4, c 7e-4 (second order: / 4 at 800 cells); asserted at 3x those.
    net = _net()
    sol = KineticBalanced(net, grid=(-8.0, 8.0, 400)).run(3.0, 2.5e-4, M0, V0,
                                                           record_every=80)
    lim = net.solve_limit(sol.t, M0, V0)
    for p in ("E", "I"):
        # 3x the measured errors (comment above)
        assert np.max(np.abs(sol.m[p] - lim.m[p])) < 3e-4
        assert np.max(np.abs(sol.v[p] - lim.v[p])) < 1.2e-3
    assert np.max(np.abs(sol.c - lim.c)) < 2.1e-3
    assert np.max(np.abs(sol.residual)) < 1e-4          # measured 3e-5 (discrete Lambda)
    assert np.ptp(sol.m["E"]) > 0.1                      # the input step moved the means


def _twin_rhs(rho, vel, c, diff, dx):
    flux = (vel + c) * 0.5 * (rho[:-1] + rho[1:]) - diff * np.diff(rho) / dx
    out = np.zeros_like(rho)
    out[:-1] -= flux / dx
    out[1:] += flux / dx
    return out


def _twin_step(rho, vel, h, rate, w, noise2, dx, dt, beta):
    def stage(r):
        lam = (rate * r).sum(axis=1) * dx
        d = (w ** 2 * lam).sum()
        r0 = np.array([_twin_rhs(r[p], vel[p] + h[p], 0.0, 0.5 * (d + noise2[p]), dx)
                       for p in range(2)])
        r1 = np.array([_twin_rhs(r[p], 0 * vel[p], 1.0, 0.0, dx) for p in range(2)])
        c = -((w * (rate * r0).sum(axis=1)).sum() * dx + beta * (w * lam).sum()) / (
            (w * (rate * r1).sum(axis=1)).sum() * dx)
        return r0 + c * r1
    k0 = stage(rho)
    return rho + 0.5 * dt * (k0 + stage(rho + dt * k0))


def test_kernel_matches_numpy_twin():
    kin = KineticBalanced(_net(), drift={"E": lambda x: -x - 0.1 * x ** 3},
                          noise={"I": 0.3}, grid=(-6.0, 6.0, 60))
    rho = kin.gaussian_densities({"E": 0.2, "I": -0.4}, {"E": 0.5, "I": 0.3})
    faces = kin.lower + kin.dx * np.arange(1, kin.cells)
    vel = np.array([kin.drift[p](faces) for p in ("E", "I")])
    rate = np.array([kin.net.rate[p](kin.x) for p in ("E", "I")])
    w, noise2 = np.array([1.0, -2.0]), np.array([0.0, 0.09])
    h = np.array([[0.3, -0.1]] * 5)
    twin = rho.copy()
    for k in range(5):
        twin = _twin_step(twin, vel, h[k], rate, w, noise2, kin.dx, 1e-3, 20.0)
    out = np.zeros((6, 8))
    kinetic_kernel(rho, vel, h, rate, w, noise2, kin.x, kin.dx, 1e-3, 20.0, 1, out)
    np.testing.assert_allclose(rho, twin, rtol=1e-12, atol=1e-14)    # round-off only


def test_nonlinear_drift_keeps_mass_and_constraint():
    # F = -x/tau - x^3 / 2: non-Gaussian; the constraint force keeps the residual at the
    # Baumgarte-damped level of the discrete scheme (measured < 1e-9 after t = 1).
    net = _net()
    cubic = {p: (lambda x, t=net.tau[p]: -x / t - 0.5 * x ** 3) for p in ("E", "I")}
    kin = KineticBalanced(net, drift=cubic, noise=0.2, grid=(-6.0, 6.0, 240))
    sol = kin.run(2.0, 4e-4, M0, V0, record_every=125)
    for p in ("E", "I"):
        assert np.sum(sol.rho[p]) * kin.dx == pytest.approx(1.0, abs=1e-12)   # conservative
    # the Baumgarte-damped level of the comment above (measured < 1e-9), with margin
    assert np.max(np.abs(sol.residual[sol.t >= 1.0])) < 1e-6
    lin = KineticBalanced(net, noise=0.2, grid=(-6.0, 6.0, 240)).run(2.0, 4e-4, M0, V0,
                                                                     record_every=125)
    assert abs(sol.v["E"][-1] - lin.v["E"][-1]) > 0.05     # the cubic term matters


def test_kinetic_balanced_rejects_bad_arguments():
    net = _net()
    with pytest.raises(TypeError, match="BalancedEI"):
        KineticBalanced("net")
    with pytest.raises(ValueError, match="noise"):
        KineticBalanced(net, noise=-1.0)
    with pytest.raises(ValueError, match="drift"):
        KineticBalanced(net, drift={"X": abs})
    with pytest.raises(ValueError, match="dt=0.01"):
        KineticBalanced(net).run(1.0, 0.01, M0, V0)
    with pytest.raises(ValueError, match="t_end"):
        KineticBalanced(net).run(1.00005, 1e-4, M0, V0)
