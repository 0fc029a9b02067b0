"""The model interface: what a neuron model tells the engines, and nothing about grids.

A model is physics only. It names its state variables, gives the deterministic drift
(and, where it has one, the exact flow), says how a neuron spikes (:class:`ThresholdReset`
or :class:`SpikeSurface`), how a synaptic event moves the state, where a neuron rests and
which grid holds its density by default. The density engine turns these into operators
on a grid and the Monte Carlo engine into single-neuron updates; neither branches on the
model's class.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from .._checks import as_real, check_nonnegative
from ..grid import Grid

__all__ = ["Model", "ThresholdReset", "SpikeSurface", "check_axis", "check_grid_axes"]

# Runge-Kutta steps per unit of the local time scale in the default numerical flow; with
# the classic fourth-order method the relative error per call is about (1/8)^4 / 120, far
# below the cell-width errors of any grid the flow is used on.
_RK4_STEPS_PER_TIME_SCALE = 8
_RK4_MAX_STEPS = 10_000


@dataclass(frozen=True)
class ThresholdReset:
    """Spike rule of integrate-and-fire models.

    A neuron spikes when ``var`` reaches ``threshold`` from below, is held (off the state
    space, ignoring input) for ``refractory`` seconds, and restarts at ``var = reset`` with
    its other variables mapped by :meth:`Model.refractory_map`. On a density grid the
    threshold is the upper face of the ``var`` axis and the firing rate is the flux
    through it.
    """

    var: str
    threshold: float
    reset: float
    refractory: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "threshold", as_real("threshold", self.threshold))
        object.__setattr__(self, "reset", as_real("reset", self.reset))
        object.__setattr__(self, "refractory", check_nonnegative("refractory",
                                                                 self.refractory))
        if not self.reset < self.threshold:
            raise ValueError(f"reset must be < threshold, got reset={self.reset!r}, "
                             f"threshold={self.threshold!r}")


@dataclass(frozen=True)
class SpikeSurface:
    """Spike rule of models without reset: a spike is an upward crossing of the plane
    ``var = level``; the firing rate is the probability flux through it with
    ``d var/dt > 0``. Neurons carry on along their trajectory."""

    var: str
    level: float

    def __post_init__(self):
        object.__setattr__(self, "level", as_real("level", self.level))


def check_axis(axis, ndim: int, model_name: str) -> None:
    """Raise ``ValueError`` naming ``axis`` unless it indexes one of ``ndim`` state
    variables."""
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) \
            or not 0 <= axis < ndim:
        raise ValueError(f"{model_name}.drift_along: axis must be an integer in "
                         f"0..{ndim - 1}, got {axis!r}")


def check_grid_axes(grid, state_vars, model_name: str) -> None:
    """Raise unless ``grid`` is a :class:`Grid` whose axes are ``state_vars`` in order."""
    if not isinstance(grid, Grid):
        raise TypeError(f"grid must be a popdens.Grid, got {type(grid).__name__}")
    if grid.names == tuple(state_vars):
        return
    if sorted(grid.names) == sorted(state_vars):
        raise ValueError(f"grid axes {grid.names} are in the wrong order: {model_name} "
                         f"needs them in the order {tuple(state_vars)}")
    raise ValueError(f"grid axes {grid.names} do not match the {model_name} state variables "
                     f"{tuple(state_vars)}")


class Model(ABC):
    r"""Base class of every neuron model (built-in or user-written).

    A subclass sets the class attribute :attr:`state_vars` and implements :meth:`drift`,
    :attr:`spike_rule`, :attr:`resting_state`, :meth:`default_grid` and :meth:`params`.
    Everything else has a default that fits most models:

    - :meth:`flow` integrates :meth:`drift` numerically (classic Runge-Kutta); models with
      a closed-form flow (LIF) override it with the exact one.
    - :meth:`jump_size`: a current synapse of ``weight`` moves :attr:`input_var` by
      ``weight``; :meth:`conductance_jump`: a conductance synapse by
      ``weight * (reversal - x)``.
    - :meth:`input_diffusion`: the Fokker-Planck limit of Poisson events of rate ``r``,
      drift ``r s`` and diffusion ``r s^2 / 2`` along :attr:`input_var` (``s`` the jump).
    - :meth:`intrinsic_diffusion`: no white noise of the model's own.
    - :meth:`refractory_map`: the other variables are unchanged while refractory.
    - :meth:`validate_grid`: the grid's axes are the state variables in order, the
      threshold is the upper face of its axis (and the reset inside), or the spike
      surface lies strictly inside the grid.

    The state of one neuron is :math:`x = (x_1, \dots, x_d)` with

    .. math::

        \frac{dx}{dt} = F(x) + \sum_k J(x, w_k)\,\delta(t - t_k),

    where :math:`F` is :meth:`drift` and each synaptic event at :math:`t_k` jumps
    :attr:`input_var` by :meth:`jump_size` (current synapse) or :meth:`conductance_jump`.
    """

    #: Names of the state variables, in the order of the grid axes.
    state_vars: tuple[str, ...] = ()
    #: Units of the state variables (for labels), e.g. ``{"v": "V"}``.
    state_units: dict = {}
    #: Whether :meth:`flow` is the exact flow (the Monte Carlo then uses it for the
    #: deterministic part of a step; otherwise one Runge-Kutta step of the drift).
    exact_flow: bool = False

    # --- what every model must say ---------------------------------------------------
    @abstractmethod
    def drift(self, *state):
        """Deterministic velocities ``dx_d/dt`` at the states given as broadcastable
        arrays, one per state variable; returns one array per state variable (a 1D model
        may return the array itself)."""

    @property
    @abstractmethod
    def spike_rule(self) -> ThresholdReset | SpikeSurface:
        """How a neuron of this model spikes."""

    @property
    @abstractmethod
    def resting_state(self):
        """Where the density starts by default: a tuple with one value per state variable
        (a float for 1D models)."""

    @abstractmethod
    def default_grid(self, inputs=()) -> Grid:
        """A grid holding the density for the given inputs, an iterable of
        ``(peak_rate, weight, kind)`` per connection onto the population (``kind``:
        ``"jump"`` or ``"diffusion"``)."""

    @abstractmethod
    def params(self) -> dict:
        """The model's parameters by name (what ``describe()`` and scenario files store);
        ``type(model)(**model.params())`` rebuilds the model."""

    # --- defaults ----------------------------------------------------------------------
    @property
    def ndim(self) -> int:
        """Number of state variables."""
        return len(self.state_vars)

    @property
    def input_var(self) -> str:
        """The state variable that synaptic events move (default: the first one)."""
        return self.state_vars[0]

    @property
    def conductance_input(self) -> bool:
        """Whether a conductance synapse (``reversal=``) can act on :attr:`input_var` by
        :meth:`conductance_jump`: only a membrane potential has a reversal potential to
        move toward (default: :attr:`input_var` is ``"v"``)."""
        return self.input_var == "v"

    @property
    def time_scale(self) -> float:
        """The time scale (s) of the subthreshold dynamics, which bounds the density
        engine's internal step (a hundredth of it in 1D). Default: ``1 / |dF/dx|`` of
        the drift of :attr:`input_var` at the resting state (a finite difference);
        models with a membrane time constant return it."""
        rest = self.resting_state
        state = [np.array([float(x)]) for x in np.atleast_1d(np.asarray(rest, float))]
        rate = float(self._diagonal_rate(state, self.state_vars.index(self.input_var))[0])
        if not (math.isfinite(rate) and rate > 0.0):
            raise ValueError(f"{type(self).__name__}: the drift of {self.input_var!r} does "
                             f"not change near the resting state {rest!r}; override "
                             f"time_scale")
        return 1.0 / rate

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({inner})"

    def flow(self, *state_and_t):
        """Where neurons at ``state`` are after time ``t`` under the drift alone
        (``flow(*state, t)``; negative ``t`` flows backwards, giving departure points).

        The default integrates :meth:`drift` with the classic fourth-order Runge-Kutta
        method, ``_RK4_STEPS_PER_TIME_SCALE`` steps per local time scale
        ``1 / max |dF_d/dx_d|`` (estimated at the start points), so its relative error
        is of order ``1e-7`` per call; models with an exact flow override it.
        """
        *state, t = state_and_t
        state = [np.asarray(x, dtype=float) for x in state]
        t = float(t)
        if t == 0.0:
            return state[0] if len(state) == 1 else tuple(state)
        steps = self._flow_steps(state, t)
        h = t / steps
        for _ in range(steps):
            state = rk4_step(self.drift_components, state, h)
        return state[0] if len(state) == 1 else tuple(state)

    def drift_along(self, axis: int, *state):
        """Component ``axis`` of :meth:`drift` at the states (broadcastable arrays): the
        density engine asks for one component per sweep. The default computes them all;
        a model whose components share little (HH: the gates' rates are not needed for
        ``dv/dt``) overrides it with the same expressions, for a faster set-up."""
        check_axis(axis, len(state), type(self).__name__)
        values = self.drift(*state)
        if len(state) == 1 and not isinstance(values, (tuple, list)):
            values = (values,)
        if len(values) != len(state):
            raise ValueError(f"{type(self).__name__}.drift returned {len(values)} "
                             f"components for {len(state)} state variables")
        return values[axis]

    def drift_components(self, state):
        """:meth:`drift` at a list of state arrays, as a list of arrays of their common
        shape."""
        values = self.drift(*state)
        if len(state) == 1 and not isinstance(values, (tuple, list)):
            values = (values,)
        shape = np.broadcast_shapes(*[np.shape(x) for x in state])
        return [np.broadcast_to(np.asarray(v, dtype=float), shape) for v in values]

    def _flow_steps(self, state, t) -> int:
        """Runge-Kutta steps for a flow over ``t``: the stiffest diagonal rate of the
        Jacobian at the start points sets the step."""
        rate = 0.0
        for d in range(len(state)):
            derivative = self._diagonal_rate(state, d)
            finite = derivative[np.isfinite(derivative)]
            if finite.size:
                rate = max(rate, float(np.max(finite)))
        steps = math.ceil(abs(t) * rate * _RK4_STEPS_PER_TIME_SCALE - 1e-12)
        return min(max(steps, 1), _RK4_MAX_STEPS)

    def _diagonal_rate(self, state, d):
        """``|dF_d/dx_d|`` at the states (central difference, step 1e-7 of the scale of
        ``x_d``, at least 1e-9)."""
        x = state[d]
        eps = 1e-7 * max(float(np.max(np.abs(x))) if x.size else 0.0, 1e-2)
        up, down = list(state), list(state)
        up[d], down[d] = x + eps, x - eps
        return np.abs(self.drift_components(up)[d] - self.drift_components(down)[d]) / (
            2.0 * eps)

    def jump_size(self, weight: float) -> float:
        """Jump of :attr:`input_var` caused by one event of a current synapse of
        ``weight`` (default: ``weight`` itself)."""
        return float(weight)

    def conductance_jump(self, weight: float, reversal: float, x):
        """Jump of :attr:`input_var` at value ``x`` caused by one event of a conductance
        synapse: ``weight * (reversal - x)`` (``weight`` is the dimensionless fraction of
        the distance to the reversal potential covered by one event)."""
        return weight * (reversal - np.asarray(x, dtype=float))

    def input_diffusion(self, rate: float, weight: float) -> tuple[float, float]:
        """Drift and diffusion coefficient along :attr:`input_var` of the Fokker-Planck
        (diffusion) limit of Poisson events of ``rate`` (Hz) and ``weight``:
        ``(rate * s, rate * s**2 / 2)`` with ``s = jump_size(weight)``."""
        s = self.jump_size(weight)
        return rate * s, 0.5 * rate * s * s

    def intrinsic_diffusion(self) -> dict:
        r"""Constant diffusion coefficients of the model's own white noise, ``{var: D}``
        (units of ``var``\ :sup:`2`/s): a term :math:`D\,\partial_x^2 \rho` of the
        density along that axis, :math:`\sqrt{2 D}\,dW` per neuron (default: none)."""
        return {}

    def compiled_params(self):
        """The parameters of the model's compiled single-neuron update for the Monte
        Carlo loop: an instance of a :class:`typing.NamedTuple` class whose functions
        are registered with :func:`popdens.kernels.mc_interface.register`; ``None``
        (default): the Monte Carlo simulates the model through this interface in NumPy.
        """
        return None

    def refractory_map(self, *others):
        """The variables other than the threshold variable, at release, of a neuron that
        spiked with them (default: unchanged)."""
        return others[0] if len(others) == 1 else others

    def validate_grid(self, grid: Grid) -> None:
        """Raise ``ValueError`` unless ``grid`` fits this model (``TypeError`` if it is
        not a :class:`Grid`): axes are :attr:`state_vars` in order; a threshold is the
        upper face of its axis, which contains the reset; a spike surface lies strictly
        inside the grid."""
        name = type(self).__name__
        check_grid_axes(grid, self.state_vars, name)
        rule = self.spike_rule
        if isinstance(rule, ThresholdReset):
            ax = grid.axis(rule.var)
            if ax.face_index(rule.threshold) != ax.num_cells:
                raise ValueError(f"grid {rule.var} upper={ax.upper!r} must equal the "
                                 f"threshold {rule.threshold!r}: the threshold is the "
                                 f"grid's upper {rule.var} face")
            if not ax.contains(rule.reset) or rule.reset >= ax.upper:
                raise ValueError(f"grid {rule.var}=({ax.lower:g}, {ax.upper:g}) must "
                                 f"contain the reset {rule.reset:g} below its upper face")
            return
        ax = grid.axis(rule.var)
        tol = 1e-9 * ax.width
        if not ax.lower + tol < rule.level < ax.upper - tol:
            raise ValueError(f"the {name} spike surface {rule.var} = {rule.level:g} must "
                             f"lie inside the grid, strictly between {rule.var} lower="
                             f"{ax.lower:g} and upper={ax.upper:g}")


def rk4_step(rhs, state, h):
    """One classic fourth-order Runge-Kutta step of ``dx/dt = rhs(x)`` for a list of
    arrays."""
    k1 = rhs(state)
    k2 = rhs([x + 0.5 * h * k for x, k in zip(state, k1)])
    k3 = rhs([x + 0.5 * h * k for x, k in zip(state, k2)])
    k4 = rhs([x + h * k for x, k in zip(state, k3)])
    return [x + h / 6.0 * (a + 2.0 * b + 2.0 * c + d)
            for x, a, b, c, d in zip(state, k1, k2, k3, k4)]


# What a compiled single-neuron update reproduces of a built-in model's class
_COMPILED_PHYSICS = ("drift", "drift_components", "potential_drift", "flow", "spike_rule",
                     "input_var", "jump_size", "conductance_jump", "intrinsic_diffusion",
                     "refractory_map")


def keeps_physics(model, base: type) -> bool:
    """Whether ``model``'s class keeps every method of ``base`` that a compiled
    single-neuron update reproduces (drift, spike rule, jumps, noise, reset map): a
    subclass that overrides one of them must run through the model interface, so its
    ``compiled_params()`` returns None."""
    cls = type(model)
    return all(getattr(cls, name, None) is getattr(base, name, None)
               for name in _COMPILED_PHYSICS)

