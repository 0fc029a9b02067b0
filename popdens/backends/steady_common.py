"""What the 1D and the N-D stationary solvers share: the result type, the input rates
frozen at one time, and the damped Newton iteration for self-consistent network rates."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..network import Network, rate_table

__all__ = ["SteadyState", "input_rates", "self_consistent_rates", "warn_delayed_sources"]

# Window (s) over which a source's rate is averaged when read at one time: short, so that
# a step switched on at `at` counts as on.
_RATE_WINDOW = 1e-9


@dataclass
class SteadyState:
    """Stationary solution of a network with constant inputs.

    Attributes
    ----------
    rates : dict[str, float]
        Stationary firing rate of each population (Hz).
    densities : dict[str, ndarray]
        Stationary density on the grid (per volt) at step starts, integrating to
        ``1 - refractory``.
    grids : dict[str, Grid]
    refractory : dict[str, float]
        Stationary refractory fraction at step ends, as a run reports it (the pipeline
        content after the release): ``rate * t_ref`` up to half a sub-step's firing.
    iterations : dict[str, int]
        Limiter iterations used.
    """

    rates: dict
    densities: dict
    grids: dict
    refractory: dict
    iterations: dict

    def centers(self, name: str) -> np.ndarray:
        return self.grids[name].axes[0].centers


def _source_rate(conn, at: float) -> float:
    """The event rate ``n_syn * rate(at)`` of a source connection, its delay ignored."""
    src = conn.pre
    return conn.n_syn * float(rate_table(src.name, src.rate, np.array([at]), _RATE_WINDOW)[0])


def input_rates(network: Network, pop, at: float, pop_rates: dict) -> list[float]:
    """Event rate of every input of ``pop``: sources at ``n_syn`` times their rate at
    ``at``, populations at ``n_syn`` times their rate in ``pop_rates``. Delays do not
    enter: with inputs frozen, a delay only shifts time."""
    out = []
    for c in network.inputs_of(pop):
        if c.pre.name in network.populations:
            out.append(c.n_syn * pop_rates[c.pre.name])
        else:
            out.append(_source_rate(c, at))
    return out


def warn_delayed_sources(network: Network, at: float) -> None:
    """Warn about source connections whose delayed rate at ``at`` differs from the rate
    the stationary state uses (the source's own rate at ``at``)."""
    for c in network.connections:
        if c.pre.name in network.populations or c.delay.mean == 0.0:
            continue
        now = _source_rate(c, at)
        for lag in sorted({c.delay.offset, c.delay.mean}):
            if lag <= 0.0:
                continue
            then = c.n_syn * float(rate_table(c.pre.name, c.pre.rate,
                                              np.array([at - lag]), _RATE_WINDOW)[0])
            if abs(then - now) > 1e-9 * max(abs(now), 1e-300):
                warnings.warn(
                    f"steady_state: source {c.pre.name!r} reaches {c.post.name!r} with a "
                    f"delay of {lag * 1e3:g} ms; at t = at - delay = {at - lag:g} s it "
                    f"delivers {then:g} events/s, at at={at:g} s {now:g} events/s. The "
                    f"stationary state freezes every source at its rate at `at` (delays "
                    f"only shift time), so it uses {now:g}; pass an `at` where the source "
                    f"is steady to silence this warning", UserWarning, stacklevel=3)
                break


def self_consistent_rates(evaluate, names, tol, max_newton, jacobian=None):
    """Solve ``r = F(r)`` for the coupled populations' rates.

    Damped Newton on ``G(r) = F(r) - r`` with a finite-difference Jacobian (or
    ``jacobian(r, F(r))``, the matrix dF/dr) and backtracking on ``|G|``: it converges
    where plain iteration ``r <- F(r)`` oscillates or diverges (inhibition-dominated
    networks, where F falls steeply with r). Rates are kept >= 0."""
    size = len(names)
    r = 0.5 * evaluate(np.zeros(size))                 # half of F(0): a start
    f = evaluate(r)
    g = f - r
    for _ in range(max_newton):
        if np.all(np.abs(g) <= tol * np.maximum(np.abs(r), 1.0)):
            return r, f
        if jacobian is not None:
            jac = jacobian(r, f)
        else:
            jac = np.empty((size, size))
            for k in range(size):
                h = 1e-6 * max(abs(r[k]), 1.0)
                shifted = r.copy()
                shifted[k] += h
                jac[:, k] = (evaluate(shifted) - f) / h
        jac -= np.eye(size)
        try:
            delta = np.linalg.solve(jac, -g)
        except np.linalg.LinAlgError:
            delta = g                          # plain iteration step
        step = 1.0
        norm = np.linalg.norm(g)
        while True:
            trial = np.maximum(r + step * delta, 0.0)
            f_trial = evaluate(trial)
            g_trial = f_trial - trial
            if np.linalg.norm(g_trial) < norm or step < 1e-4:
                break
            step *= 0.5
        r, f, g = trial, f_trial, g_trial
    raise RuntimeError(f"the self-consistent rates of {names} did not converge in "
                       f"{max_newton} Newton steps (residual {np.abs(g).max():.3g} Hz)")
