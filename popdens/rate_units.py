r"""Rate units: deterministic firing rates integrated step by step.

A rate unit (:meth:`popdens.Network.add_rate_population`) obeys

.. math:: \tau \frac{dr}{dt} = -r + f(u(t)), \qquad
          u(t) = b + I(t) + \sum_c w_c\, n_c\, (p_c * r_{\mathrm{pre}(c)})(t).

Over a step ``[t_k, t_k + dt)`` the input is taken constant at its step mean ``u_k``
(sources: their exact step mean through the connection's kernel; populations and other
rate units: explicit coupling, the part of a kernel within the current step uses the
previous step's rate, as the density engine and the Monte Carlo's
``connectivity="poisson"`` do). With ``f_k = f(u_k)``:

* ``"exact"`` (exponential integration, exact for a constant input):
  :math:`r_{k+1} = f_k + (r_k - f_k)\, e^{-dt/\tau}`, and the step mean reported is
  :math:`\bar r_k = f_k + (r_k - f_k)\, \frac{\tau}{dt}(1 - e^{-dt/\tau})`;
* ``"euler"`` (forward Euler): :math:`r_{k+1} = r_k + \frac{dt}{\tau}(f_k - r_k)`,
  :math:`\bar r_k = (r_k + r_{k+1}) / 2`; its error is first order in ``dt / tau``.

Rates are reported, like those of spiking populations, as step means ``\bar r_k``; the
downstream connections see those.

Poisson-spiking units (the Monte Carlo's ``rate_units="poisson"``): a unit is ``N``
Poisson neurons whose common intensity is the unit's rate. Its rate variable ``r``
evolves as above; what it reports, and what every downstream unit and population sees,
is the measured rate ``n_k / (N dt)`` with ``n_k ~ Poisson(N \bar r_k dt)``, drawn from
one random stream per unit (so a unit's spikes depend on its own rates only).
"""

from __future__ import annotations

import math

import numpy as np

from .network import Network, PoissonSource, RatePopulation

__all__ = ["rate_step", "drive_table", "RateUnits"]


def rate_step(r: float, target: float, tau: float, dt: float, method: str = "exact"
              ) -> tuple[float, float]:
    r"""One step of :math:`\tau\,dr/dt = -r + F` with ``F = target`` constant.

    Parameters
    ----------
    r : float
        Rate at the step start (Hz).
    target : float
        ``F = f(u_k)`` (Hz).
    tau, dt : float
        Time constant and step (s).
    method : {"exact", "euler"}

    Returns
    -------
    (r_next, r_mean) : (float, float)
        Rate at the step end and mean rate over the step (see the module docstring).
    """
    if method == "exact":
        x = dt / tau
        decay = math.exp(-x)
        gap = r - target
        return target + gap * decay, target + gap * (-math.expm1(-x) / x)
    r_next = r + (dt / tau) * (target - r)
    return r_next, 0.5 * (r + r_next)


def drive_table(name: str, drive, t0: np.ndarray, dt: float) -> np.ndarray:
    """Step means of a rate unit's external input ``I(t)`` over ``[t0[k], t0[k] + dt)``:
    constants exactly, objects with ``mean(t0, t1)`` (``pd.piecewise``, ``pd.sinusoid``)
    exactly, callables by 2-point Gauss-Legendre quadrature. Values may be negative."""
    t0 = np.asarray(t0, dtype=float)
    if drive is None:
        return np.zeros(t0.shape)
    if hasattr(drive, "mean"):
        out = np.asarray(drive.mean(t0, t0 + dt), dtype=float)
    elif callable(drive):
        offset = 0.5 * dt / math.sqrt(3.0)
        mid = t0 + 0.5 * dt
        out = 0.5 * (np.array([float(drive(t)) for t in mid - offset])
                     + np.array([float(drive(t)) for t in mid + offset]))
    else:
        out = np.full(t0.shape, float(drive))
    bad = ~np.isfinite(out)
    if np.any(bad):
        k = int(np.flatnonzero(bad)[0])
        raise ValueError(f"drive of rate unit {name!r} must be finite; it is {out[k]!r} "
                         f"at t={t0[k]:.6g} s")
    return out


class RateUnits:
    """The rate units of a network, integrated one reporting step at a time.

    Parameters
    ----------
    network : Network
    n_steps : int
    dt : float
    spiking : dict, optional
        ``{name: (n_neurons, numpy.random.Generator)}``: these units spike (see the
        module docstring); the others stay deterministic.

    Attributes
    ----------
    rates : dict[str, ndarray]
        Step means ``\\bar r_k`` (Hz) of every unit, filled up to the last step done
        (spiking units: the measured rates).
    intensity : dict[str, ndarray]
        The step-mean intensities ``\\bar r_k`` of the spiking units.
    """

    def __init__(self, network: Network, n_steps: int, dt: float, spiking=None):
        self.units = list(network.rate_populations.values())
        self.dt = dt
        # {name: (N, generator)} of Poisson-spiking units; their intensities go here
        self.spiking = spiking or {}
        self.intensity = {name: np.zeros(n_steps) for name in self.spiking}
        t0 = np.arange(n_steps) * dt
        self.rates = {u.name: np.zeros(n_steps) for u in self.units}
        self.state = {u.name: u.r0 for u in self.units}
        # fixed part of the input: bias, drive and the sources (exact step means)
        self.fixed = {}
        self.coupled = {}
        for u in self.units:
            fixed = u.bias + drive_table(u.name, u.drive, t0, dt)
            coupled = []
            for conn in network.connections:
                if conn.post is not u:
                    continue
                if isinstance(conn.pre, PoissonSource):
                    fixed = fixed + conn.weight * network.source_rate_table(conn, t0, dt)
                else:
                    lags = conn.delay.explicit_lag_weights(dt)
                    coupled.append((conn.pre.name, conn.weight * conn.n_syn, lags))
            self.fixed[u.name] = fixed
            self.coupled[u.name] = coupled

    def input_at(self, unit: RatePopulation, k: int, pop_rates: dict) -> float:
        """``u_k`` of ``unit``: fixed part plus the explicitly coupled rates of steps
        before ``k`` (``pop_rates`` holds the spiking populations' rates)."""
        total = float(self.fixed[unit.name][k])
        for pre, scale, lags in self.coupled[unit.name]:
            history = self.rates[pre] if pre in self.rates else pop_rates[pre]
            last = min(lags.size - 1, k)
            if last >= 1:
                seen = np.dot(lags[1:last + 1], history[k - 1::-1][:last])
                total += scale * float(seen)
        return total

    def step(self, k: int, pop_rates: dict) -> None:
        """Advance every unit over step ``k`` (inputs from steps ``< k`` only)."""
        inputs = [self.input_at(u, k, pop_rates) for u in self.units]
        for u, x in zip(self.units, inputs):
            target = float(u.transfer(x))
            if not (math.isfinite(target) and target >= 0.0):
                raise ValueError(f"rate unit {u.name!r}: transfer({x!r}) = {target!r} at "
                                 f"t={k * self.dt:.6g} s; a rate must be finite and >= 0")
            self.state[u.name], mean = rate_step(self.state[u.name], target, u.tau,
                                                 self.dt, u.method)
            if u.name in self.spiking:
                size, rng = self.spiking[u.name]
                self.intensity[u.name][k] = mean
                mean = rng.poisson(size * max(mean, 0.0) * self.dt) / (size * self.dt)
            self.rates[u.name][k] = mean

    def run(self, begin: int, end: int, pop_rates: dict) -> None:
        """Steps ``begin .. end - 1``."""
        for k in range(begin, end):
            self.step(k, pop_rates)
