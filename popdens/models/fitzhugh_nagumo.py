"""FitzHugh-Nagumo neuron: a two-dimensional relaxation oscillator without reset, whose
spikes are upward crossings of a plane of ``v``."""

from __future__ import annotations

import numpy as np

from .._checks import as_real, check_positive
from ..grid import Grid
from ..kernels.mc_if_family import FitzHughNagumoParams
from .base import Model, SpikeSurface, keeps_physics

__all__ = ["FitzHughNagumo"]


class FitzHughNagumo(Model):
    r"""FitzHugh-Nagumo model (FitzHugh 1961; Nagumo, Arimoto & Yoshizawa 1962), 2D
    state ``(v, w)``, dimensionless variables in physical time.

    .. math::

        \tau \frac{dv}{dt} &= v - \frac{v^3}{3} - w + i_e
            + \tau \sum_k h_k\,\delta(t - t_k),\\
        \tau_w \frac{dw}{dt} &= v + a - b w.

    ``v`` (excitation) and ``w`` (recovery) are dimensionless; ``tau`` sets the time
    unit. No reset: a spike is an upward crossing of the plane ``v = v_spike`` (default
    0, the middle branch of the cubic nullcline, which only action potentials cross:
    from rest at ``v`` about -1.2 a subthreshold excursion turns back before ``v`` about
    -0.9). Events of ``weight`` :math:`h_k` jump ``v``.

    Parameters
    ----------
    tau : float, default 1e-3
        Time constant of ``v`` (s), > 0.
    tau_w : float, default 12.5e-3
        Time constant of ``w`` (s), > 0 (``tau / tau_w = 0.08``).
    a : float, default 0.7
    b : float, default 0.8
        Recovery parameters (``b >= 0``).
    i_e : float, default 0.0
        Constant drive (excitable at 0, oscillating for ``i_e`` between about 0.33 and
        1.42 with the defaults).
    v_spike : float, default 0.0
        The spike plane.

    Notes
    -----
    The defaults are FitzHugh's (1961) values a = 0.7, b = 0.8, epsilon = 0.08, with one
    unit of time = 1 ms. Grid: ``v`` in [-2.5, 2.5], ``w`` in [-1, 2] cover the limit
    cycle for drives up to the upper Hopf point (200 x 120 cells).

    Examples
    --------
    >>> import popdens as pd
    >>> [round(x, 4) for x in pd.FitzHughNagumo().resting_state]
    [-1.1994, -0.6243]
    """

    state_vars = ("v", "w")
    state_units = {"v": "1", "w": "1"}

    def __init__(self, tau: float = 1e-3, tau_w: float = 12.5e-3, a: float = 0.7,
                 b: float = 0.8, i_e: float = 0.0, v_spike: float = 0.0):
        self.tau = check_positive("tau", tau)
        self.tau_w = check_positive("tau_w", tau_w)
        self.a = as_real("a", a)
        self.b = as_real("b", b)
        if self.b < 0.0:
            raise ValueError(f"b must be >= 0, got {self.b!r}")
        self.i_e = as_real("i_e", i_e)
        self.v_spike = as_real("v_spike", v_spike)

    def params(self) -> dict:
        return {"tau": self.tau, "tau_w": self.tau_w, "a": self.a, "b": self.b,
                "i_e": self.i_e, "v_spike": self.v_spike}

    def compiled_params(self) -> FitzHughNagumoParams | None:
        """Parameters of the compiled single-neuron update
        (:mod:`popdens.kernels.mc_if_family`); None for a subclass that changes the
        physics (:func:`popdens.models.base.keeps_physics`)."""
        if not keeps_physics(self, FitzHughNagumo):
            return None
        return FitzHughNagumoParams(self.tau, self.tau_w, self.a, self.b, self.i_e,
                                    self.v_spike)

    def drift(self, v, w):
        """Deterministic velocities ``(dv/dt, dw/dt)`` (1/s), vectorised."""
        v, w = np.broadcast_arrays(np.asarray(v, dtype=float), np.asarray(w, dtype=float))
        return ((v - v * v * v / 3.0 - w + self.i_e) / self.tau,
                (v + self.a - self.b * w) / self.tau_w)

    @property
    def spike_rule(self) -> SpikeSurface:
        """Upward crossings of ``v = v_spike``."""
        return SpikeSurface("v", self.v_spike)

    @property
    def time_scale(self) -> float:
        """``tau``."""
        return self.tau

    @property
    def resting_state(self) -> tuple[float, float]:
        """The fixed point: the real root ``v*`` of ``v - v^3/3 - (v + a)/b + i_e = 0``
        nearest the left branch, and ``w* = (v* + a)/b`` (for ``b = 0``: ``v* = -a``)."""
        if self.b == 0.0:
            v = -self.a
            return (v, v - v ** 3 / 3.0 + self.i_e)
        roots = np.roots([-1.0 / 3.0, 0.0, 1.0 - 1.0 / self.b, self.i_e - self.a / self.b])
        real = np.sort(roots[np.abs(roots.imag) < 1e-9].real)
        v = float(real[0])
        return (v, (v + self.a) / self.b)

    def nullclines(self, v) -> dict:
        """Nullclines as ``w`` over ``v``: ``"v"``: ``v - v^3/3 + i_e``; ``"w"``:
        ``(v + a) / b`` (``b > 0``)."""
        v = np.asarray(v, dtype=float)
        out = {"v": v - v ** 3 / 3.0 + self.i_e}
        if self.b > 0.0:
            out["w"] = (v + self.a) / self.b
        return out

    def default_grid(self, inputs=()) -> Grid:
        """``v`` in [-2.5, 2.5] (200 cells), ``w`` in [-1, 2] (120 cells), ``v`` widened
        by the largest jump each way. Measured (tests/models/test_if_family_2d.py): the
        density's rates converge at first order in the cell width; at 100 x 60 cells
        they were up to 20 % above the Monte Carlo after a synchronous first spike,
        at 200 x 120 within 8 %, at 400 x 240 within 4 %."""
        jumps = [abs(float(w)) for (_, w, _) in inputs]
        pad = max(jumps, default=0.0)
        return Grid(v=(-2.5 - pad, 2.5 + pad, 200), w=(-1.0, 2.0, 120))
