r"""Kinetic variant of the balanced E/I limit (:mod:`popdens.balanced`): one Fokker-Planck
density per class for nonlinear intrinsic drift and noise.

Between events the synaptic variable of a class-p neuron follows
:math:`dx = (F_p(x) + h_p(t) + c(t))\,dt + \sqrt{D(t) + \sigma_p^2}\,dW`, where
:math:`F_p` is the intrinsic drift (default :math:`-x/\tau_p`, the model of
:mod:`popdens.balanced`), :math:`\sigma_p` an intrinsic noise, :math:`D = a^2\Lambda_E +
b^2\Lambda_I` the variance rate of the network input and :math:`c(t)` the common drift of
the balanced limit. The class densities obey

.. math::

    \partial_t \rho_p = -\partial_x\big[(F_p + h_p + c)\rho_p\big]
        + \tfrac12 (D + \sigma_p^2)\,\partial_x^2 \rho_p,
    \qquad \Lambda_p = \int f_p \rho_p\,dx,

and :math:`c(t)` is the constraint force of the coupling layer: with the discrete operator
:math:`L_p = L_p^0 + c L_p^1` (:math:`L^1`: advection at unit speed), the residual
:math:`R = a\Lambda_E - b\Lambda_I` obeys :math:`\dot R = A + cK` exactly on the grid, and
each stage takes :math:`c = -(A + \beta R)/K` (Baumgarte, :math:`\beta` =
``net.baumgarte``). :math:`K` is the discrete :math:`\kappa = a\,\partial_m\Lambda_E -
b\,\partial_m\Lambda_I`; it must stay negative (attracting manifold).

popdens's density engine cannot take a drift that the coupling layer sets each step (its
drift is the model's, its inputs Poisson rates), so the solver is here: conservative
finite volumes (central fluxes, zero flux at both ends, second order in the cell width
while the cell Péclet number ``|F + h + c| dx / (D + sigma^2)/2`` stays below 2) and
Heun's method in time, in one compiled kernel (:func:`kinetic_kernel`). With linear
:math:`F_p` and no intrinsic noise the densities stay Gaussian and their means and
variances follow the Gaussian ODEs of :meth:`~popdens.balanced.BalancedEI.solve_limit`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit
from scipy import special

from ._checks import check_int, check_nonnegative, check_positive
from .balanced import CLASSES, BalancedEI, _input_step_means

__all__ = ["KineticBalanced", "KineticSolution", "fp_rhs", "kinetic_kernel"]


@njit(cache=True)
def fp_rhs(rho, velocity, c, diffusion, dx, out):
    """``out = -(J[i+1/2] - J[i-1/2]) / dx`` with ``J = (velocity + c) (rho_i +
    rho_{i+1})/2 - diffusion (rho_{i+1} - rho_i)/dx`` at the interior faces
    (``velocity``: length n - 1) and no flux through the two outer faces."""
    n = rho.shape[0]
    out[:] = 0.0
    for i in range(n - 1):
        flux = ((velocity[i] + c) * 0.5 * (rho[i] + rho[i + 1])
                - diffusion * (rho[i + 1] - rho[i]) / dx)
        out[i] -= flux / dx
        out[i + 1] += flux / dx


@njit(cache=True)
def _stage(rho, velocity, h, rate, weight, noise2, dx, beta, r0, r1, zero):
    """Both classes' right-hand sides at ``rho`` (in r0); returns c, D, residual, K."""
    lam0 = (rate[0] * rho[0]).sum() * dx
    lam1 = (rate[1] * rho[1]).sum() * dx
    big_d = weight[0] ** 2 * lam0 + weight[1] ** 2 * lam1
    a_part = 0.0
    k_part = 0.0
    for p in range(2):
        fp_rhs(rho[p], velocity[p] + h[p], 0.0, 0.5 * (big_d + noise2[p]), dx, r0[p])
        fp_rhs(rho[p], zero, 1.0, 0.0, dx, r1[p])
        a_part += weight[p] * (rate[p] * r0[p]).sum() * dx
        k_part += weight[p] * (rate[p] * r1[p]).sum() * dx
    residual = weight[0] * lam0 + weight[1] * lam1
    c = -(a_part + beta * residual) / k_part
    for p in range(2):
        r0[p] += c * r1[p]
    return c, big_d, residual, k_part


@njit(cache=True)
def kinetic_kernel(rho, velocity, h_steps, rate, weight, noise2, x, dx, dt, beta,
                   record_every, out):
    """Heun steps of both class densities ``rho`` (2, n) in place.

    ``velocity[p]``: ``F_p`` at the interior faces; ``h_steps[k, p]``: the input over
    step k; ``rate[p]``: ``f_p`` at the cell centres ``x``; ``weight = (a, -b)``;
    ``noise2[p] = sigma_p^2``. Every ``record_every`` steps (and at step 0) a row of
    ``out``: m_E, m_I, v_E, v_I, c, D, residual, K.
    """
    n_steps = h_steps.shape[0]
    r0 = np.zeros_like(rho)
    r1 = np.zeros_like(rho)
    k0 = np.zeros_like(rho)
    zero = np.zeros(velocity.shape[1])
    row = 0
    for step in range(n_steps):
        h = h_steps[step]
        c, big_d, res, kk = _stage(rho, velocity, h, rate, weight, noise2, dx, beta, r0,
                                   r1, zero)
        if step % record_every == 0:
            _record(rho, x, dx, c, big_d, res, kk, out[row])
            row += 1
        k0[:] = r0
        trial = rho + dt * k0
        _stage(trial, velocity, h, rate, weight, noise2, dx, beta, r0, r1, zero)
        rho += 0.5 * dt * (k0 + r0)
    if n_steps % record_every == 0:
        c, big_d, res, kk = _stage(rho, velocity, h_steps[n_steps - 1], rate, weight,
                                   noise2, dx, beta, r0, r1, zero)
        _record(rho, x, dx, c, big_d, res, kk, out[row])


@njit(cache=True)
def _record(rho, x, dx, c, big_d, res, kk, row):
    for p in range(2):
        mass = rho[p].sum() * dx
        mean = (x * rho[p]).sum() * dx / mass
        row[p] = mean
        row[2 + p] = ((x - mean) ** 2 * rho[p]).sum() * dx / mass
    row[4], row[5], row[6], row[7] = c, big_d, res, kk


@dataclass
class KineticSolution:
    """Densities over time: class means ``m`` and variances ``v`` (dicts over ``t``), the
    common drift ``c``, ``D``, the residual ``a Lambda_E - b Lambda_I``, the discrete
    ``kappa`` and the final densities ``rho[p]`` on the cell centres ``x``."""

    t: np.ndarray
    m: dict
    v: dict
    c: np.ndarray
    D: np.ndarray
    residual: np.ndarray
    kappa: np.ndarray
    x: np.ndarray
    rho: dict


class KineticBalanced:
    r"""Kinetic (Fokker-Planck) description of a :class:`~popdens.balanced.BalancedEI`
    network with intrinsic drift and noise (see the module docstring).

    Parameters
    ----------
    net : BalancedEI
        Supplies ``a``, ``b``, ``tau``, the rate functions, the inputs ``h`` and the
        Baumgarte rate.
    drift : dict of callables, optional
        ``F_p(x)`` per class (vectorised); missing classes: ``-x / tau_p``.
    noise : float or dict
        Intrinsic noise amplitude ``sigma_p`` (>= 0; default 0).
    grid : (lower, upper, cells)
        The x axis shared by both classes (default: -10 .. 10, 1000 cells).
    """

    def __init__(self, net: BalancedEI, drift=None, noise=0.0, grid=(-10.0, 10.0, 1000)):
        if not isinstance(net, BalancedEI):
            raise TypeError(f"net must be a BalancedEI, got {type(net).__name__}")
        self.net = net
        drift = {} if drift is None else dict(drift)
        for p, f in drift.items():
            if p not in CLASSES or not callable(f):
                raise ValueError(f"drift must map classes {CLASSES} to callables, got "
                                 f"{p!r}: {f!r}")
        self.drift = {p: drift.get(p, _linear(net.tau[p])) for p in CLASSES}
        noise = noise if isinstance(noise, dict) else {p: noise for p in CLASSES}
        self.noise = {p: check_nonnegative(f"noise[{p!r}]", noise.get(p, 0.0))
                      for p in CLASSES}
        lo, hi, cells = grid
        self.cells = check_int("grid cells", cells, 10)
        if not hi > lo:
            raise ValueError(f"grid must have upper > lower, got {grid!r}")
        self.lower, self.upper = float(lo), float(hi)
        self.dx = (self.upper - self.lower) / self.cells
        self.x = self.lower + self.dx * (np.arange(self.cells) + 0.5)

    def gaussian_densities(self, m, v):
        """Cell averages of the Gaussians N(m_p, v_p), normalised to mass 1."""
        faces = self.lower + self.dx * np.arange(self.cells + 1)
        rho = np.empty((2, self.cells))
        for k, p in enumerate(CLASSES):
            if v[p] <= 0.0:
                raise ValueError(f"v0[{p!r}] must be > 0 for a density, got {v[p]!r}")
            cdf = special.ndtr((faces - m[p]) / math.sqrt(v[p]))
            rho[k] = np.diff(cdf) / (cdf[-1] - cdf[0]) / self.dx
        return rho

    def run(self, t_end, dt, m0=None, v0=None, record_every=1) -> KineticSolution:
        """Integrate from Gaussian densities at :meth:`BalancedEI.initial_state` ``(m0,
        v0)`` (on the manifold) over ``[0, t_end]`` with step ``dt``; records every
        ``record_every`` steps. Raises ``ValueError`` when ``dt`` exceeds the explicit
        diffusion limit ``dx^2 / (D + sigma^2)`` or kappa turns >= 0."""
        net = self.net
        t_end, dt = check_positive("t_end", t_end), check_positive("dt", dt)
        steps = int(round(t_end / dt))
        if steps < 1 or abs(steps * dt - t_end) > 1e-9 * t_end:
            raise ValueError(f"t_end={t_end!r} must be a whole number of dt={dt!r}")
        record_every = check_int("record_every", record_every, 1)
        m, v = net.initial_state(m0, v0, t=0.0)
        rho = self.gaussian_densities(m, v)
        d_max = net.a ** 2 * net.rate["E"].nu + net.b ** 2 * net.rate["I"].nu
        limit = self.dx ** 2 / (d_max + max(self.noise.values()) ** 2)
        if dt > limit:
            raise ValueError(f"dt={dt!r} exceeds the explicit diffusion limit dx^2/(D_max "
                             f"+ sigma^2) = {limit:.3g} of this grid")
        faces = self.lower + self.dx * np.arange(1, self.cells)
        velocity = np.array([np.broadcast_to(self.drift[p](faces), faces.shape)
                             for p in CLASSES], dtype=float)
        t0 = dt * np.arange(steps)
        h_steps = np.column_stack([_input_step_means(net.h[p], t0, dt) for p in CLASSES])
        rate = np.array([net.rate[p](self.x) for p in CLASSES])
        out = np.zeros((steps // record_every + 1, 8))
        kinetic_kernel(rho, velocity, h_steps, rate, np.array([net.a, -net.b]),
                       np.array([self.noise[p] ** 2 for p in CLASSES]), self.x, self.dx,
                       dt, net.baumgarte, record_every, out)
        if np.any(out[:, 7] >= 0.0):
            raise ValueError("the balanced manifold stopped attracting: kappa >= 0")
        t = dt * record_every * np.arange(out.shape[0])
        return KineticSolution(t, {"E": out[:, 0], "I": out[:, 1]},
                               {"E": out[:, 2], "I": out[:, 3]}, out[:, 4], out[:, 5],
                               out[:, 6], out[:, 7], self.x,
                               {p: rho[k].copy() for k, p in enumerate(CLASSES)})


def _linear(tau):
    return lambda x: -np.asarray(x, dtype=float) / tau
