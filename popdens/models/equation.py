"""Neuron models written as equations: :class:`EquationModel`.

The text is parsed and checked by :func:`popdens.equations.parse_equations` (a whitelist
of syntax, dimensions, the noise split); this module turns the parsed model into the
:class:`Model` interface, so both backends run it: the drift is the generated NumPy
function of the deterministic part, additive white noise becomes a constant diffusion
coefficient per axis (:meth:`EquationModel.intrinsic_diffusion`), the threshold and the
reset become a :class:`ThresholdReset` (further reset statements such as ``w += b`` the
:meth:`EquationModel.refractory_map`), a spike surface a :class:`SpikeSurface`.
"""

from __future__ import annotations

import ast
import math

import numpy as np
from scipy.optimize import brentq, root

from ..equations import mc_codegen, parse_equations
from ..equations.codegen import constant_value
from ..equations.expr import names_in
from ..grid import Grid
from .base import Model, SpikeSurface, ThresholdReset, rk4_step

__all__ = ["EquationModel"]

# Points of the scan for a stable fixed point of a 1D drift, and how far below the
# reset it reaches (in reset-to-threshold gaps) when no grid is given.
_REST_SCAN_POINTS = 4001
_REST_SCAN_GAPS = 10.0
# A fixed point found by root finding counts when the drift there is below this
# fraction of the drift scale (the drift one gap away, per gap).
_REST_TOLERANCE = 1e-9


class EquationModel(Model):
    r"""A neuron model written as Brian2-style equations, for both backends.

    Each state variable obeys (Itô)

    .. math::

        \frac{dx_d}{dt} = f_d(x) + g_d\,\xi_d(t) + \sum_k J_d(x, w_k)\,\delta(t - t_k),

    with :math:`f` the deterministic part of the text, :math:`g_d` a constant noise
    amplitude (``sigma*xi/sqrt(tau)``: unit of :math:`x_d` per :math:`\sqrt{s}`) and
    the jumps of synaptic events along :attr:`input_var`. The density sees the noise as
    diffusion :math:`D_d = g_d^2/2` along axis :math:`d`:

    .. math::

        \partial_t \rho = -\nabla\cdot(f \rho) + \sum_d D_d\,\partial_{x_d}^2 \rho
                          + \text{(jumps)}.

    Parameters
    ----------
    equations : str
        Model text, one equation per line (see :func:`popdens.parse_equations`):
        ``dv/dt = ... : volt``, named sub-expressions ``i_ion = ... : amp``, parameter
        units ``g_l : siemens``. ``xi`` / ``xi_name`` is white noise; it must be
        additive (amplitude independent of the state) and each noise symbol may enter
        one equation only.
    threshold : str, optional
        ``"v > level"`` (or ``>=``): ``v`` a state variable, ``level`` made of numbers,
        units and parameters. Needs ``reset``.
    reset : str or list of str, optional
        Statements run in order at a spike; one of them sets the threshold variable to a
        constant (``"v = v_reset"``); the others (``"w += b"``) map the other variables.
    refractory : float, default 0
        Refractory period (s): the threshold variable is held off the state space; the
        other variables follow their drift with the threshold variable at its reset
        (unless flagged ``(unless refractory)``, then they are held).
    spike_surface : str, optional
        ``"n crosses 0.6 upward"``: a spike is an upward crossing of that plane (no
        reset); instead of ``threshold``.
    parameters : dict
        Values (SI floats) of every parameter the text uses.
    units : dict, optional
        Units of parameters (``{"tau": "second"}``); parameters without one are not
        dimension-checked.
    grid : Grid, optional
        The default grid of the density (a threshold axis must end at the threshold);
        without it, give ``grid=`` to :meth:`Network.add_population`.
    resting_state : float or tuple, optional
        Where neurons start by default. Without it: the stable fixed point of the drift
        nearest the reset (1D: scanned below the threshold, over the grid if given;
        N-D: Newton from the reset state), or, where the drift has none (a neuron driven
        above rheobase), the reset state.
    input_var : str, optional
        The state variable synaptic events move (default: the first).

    Raises
    ------
    EquationError
        Invalid text (naming line and column), a threshold that is not ``var > level``
        or a reset that does not set the threshold variable to a constant.
    ValueError, TypeError
        Bad parameters, grid, resting state or events, naming them.
    NotImplementedError
        Multiplicative noise, or one noise symbol in several equations.

    Examples
    --------
    >>> import popdens as pd
    >>> lif = pd.EquationModel("dv/dt = (e_l - v)/tau : volt", threshold="v > v_th",
    ...                        reset="v = v_r", refractory=2e-3,
    ...                        parameters=dict(e_l=0.0, tau=0.02, v_th=0.02, v_r=0.01))
    >>> lif.spike_rule
    ThresholdReset(var='v', threshold=0.02, reset=0.01, refractory=0.002)
    """

    def __init__(self, equations, threshold=None, reset=None, refractory=0.0,
                 spike_surface=None, parameters=None, units=None, grid=None,
                 resting_state=None, input_var=None):
        self.parsed = parse_equations(equations, parameters=parameters, units=units,
                                      threshold=threshold, reset=reset,
                                      refractory=refractory, spike_surface=spike_surface)
        self._args = dict(equations=equations, threshold=threshold, reset=reset,
                          refractory=refractory, spike_surface=spike_surface,
                          parameters=dict(parameters or {}), units=units, grid=grid,
                          resting_state=resting_state, input_var=input_var)
        self.state_vars = self.parsed.state_names
        self.state_units = dict(self.parsed.state_units)
        self._rule = self._spike_rule(threshold, reset, spike_surface)
        self._diffusion = self._noise_diffusion()
        if input_var is not None and input_var not in self.state_vars:
            raise ValueError(f"input_var={input_var!r} is not a state variable "
                             f"{self.state_vars}")
        self._input_var = input_var
        self._slope = self._affine_slope()
        self.exact_flow = self._slope is not None
        if grid is not None:
            self.validate_grid(grid)
        self._grid = grid
        self._rest = None if resting_state is None else self._check_rest(resting_state)
        self._compiled = None

    # --- building ------------------------------------------------------------------------
    def _spike_rule(self, threshold, reset, surface):
        p = self.parsed
        if threshold is not None and surface is not None:
            raise ValueError("give threshold= (with reset=) or spike_surface=, not both")
        if surface is not None:
            s = p._surface
            if s.direction != "upward":
                raise ValueError(f"spike_surface={surface!r}: only upward crossings are "
                                 f"spikes; write the surface in a variable that rises "
                                 f"through it")
            return SpikeSurface(s.variable, self._constant(s.level))
        if threshold is None:
            raise ValueError("an EquationModel needs threshold= (with reset=, e.g. "
                             "'v > v_th' and 'v = v_reset') or spike_surface= (e.g. "
                             "'n crosses 0.6 upward')")
        cmp = p._threshold.body
        where = p._threshold.where
        if not (isinstance(cmp.left, ast.Name) and cmp.left.id in self.state_vars
                and isinstance(cmp.ops[0], (ast.Gt, ast.GtE))):
            raise where.error("the threshold must read 'x > level' (or 'x >= level') with "
                              "x a state variable", cmp)
        var = cmp.left.id
        level = self._constant(p._threshold.__class__(cmp.comparators[0], where))
        if reset is None:
            raise ValueError(f"threshold={threshold!r} needs reset= setting {var!r} (e.g. "
                             f"'{var} = v_reset')")
        sets = [(op, x) for name, op, x in p._reset if name == var]
        if len(sets) != 1 or sets[0][0] != "=":
            raise ValueError(f"reset={reset!r} must set the threshold variable {var!r} "
                             f"exactly once with '=' (e.g. '{var} = v_reset'), got "
                             f"{p.reset!r}")
        value = self._constant(sets[0][1])
        return ThresholdReset(var, level, value, p.refractory)

    def _constant(self, tree):
        """The value of an event level, which may use numbers, units and parameters."""
        variable = [n.id for n in names_in(tree)
                    if n.id in self.state_vars or n.id in self.parsed.subexpressions]
        if variable:
            raise tree.where.error(f"the level must be a constant (numbers, units, "
                                   f"parameters); it uses {variable[0]!r}", col=0)
        return constant_value(self.parsed, tree)

    def _noise_diffusion(self) -> dict:
        """``{var: g^2 / 2}`` of the additive noise of each noisy equation."""
        p = self.parsed
        for var, kind in p.noise_kind.items():
            if kind == "multiplicative":
                raise NotImplementedError(
                    f"the noise of d{var}/dt depends on the state (multiplicative); only "
                    f"additive noise (a constant amplitude times xi) is implemented")
        amplitudes = p.noise(*np.zeros(len(self.state_vars)))
        if len(p.noise_names) == 1:
            amplitudes = (amplitudes,)
        out = {}
        for name, per_var in zip(p.noise_names, amplitudes):
            noisy = [v for v, g in zip(self.state_vars, per_var) if float(g) != 0.0]
            if len(noisy) > 1:
                raise NotImplementedError(f"noise {name!r} enters {noisy}: correlated noise "
                                          f"on several variables is not implemented; use "
                                          f"one symbol per equation (xi_v, xi_w)")
            for v, g in zip(self.state_vars, per_var):
                if float(g) != 0.0:
                    g = float(g)
                    if not math.isfinite(g):
                        raise ValueError(f"the noise amplitude of d{v}/dt is {g!r}")
                    out[v] = out.get(v, 0.0) + 0.5 * g * g
        return out

    def _affine_slope(self):
        """``(x0, f(x0), slope)`` when the model is 1D with a drift affine in its
        variable (an exact exponential flow then exists), else None."""
        if len(self.state_vars) != 1:
            return None
        var = self.state_vars[0]
        subs = {e.name: e.expr for e in self.parsed._equations if e.kind == "subexpression"}
        eq = next(e for e in self.parsed._equations if e.kind == "differential")
        if _degree(eq.drift, var, subs) > 1:
            return None
        rule = self._rule
        x0, x1 = ((rule.reset, rule.threshold) if isinstance(rule, ThresholdReset)
                  else (rule.level - 1.0, rule.level + 1.0))
        f0, f1 = (float(self.parsed.drift(np.array(x))[0]) for x in (x0, x1))
        return x0, f0, (f1 - f0) / (x1 - x0)

    def _check_rest(self, value):
        rest = np.atleast_1d(np.asarray(value, dtype=float))
        if rest.shape != (len(self.state_vars),) or not np.all(np.isfinite(rest)):
            raise ValueError(f"resting_state must give one finite value per state variable "
                             f"{self.state_vars}, got {value!r}")
        return float(rest[0]) if rest.size == 1 else tuple(float(x) for x in rest)

    # --- the Model interface -------------------------------------------------------------
    @property
    def spike_rule(self):
        """From ``threshold``/``reset``/``refractory``, or ``spike_surface``."""
        return self._rule

    @property
    def input_var(self) -> str:
        return self._input_var or self.state_vars[0]

    @property
    def conductance_input(self) -> bool:
        """A conductance synapse moves the input variable toward its reversal potential
        if that variable is a potential (``: volt``), whatever its name."""
        return self.state_units[self.input_var] == "volt"

    def drift(self, *state):
        """The deterministic part :math:`f` of each equation (vectorised NumPy)."""
        out = self.parsed.drift(*state)
        return out[0] if len(out) == 1 else out

    def intrinsic_diffusion(self) -> dict:
        """``{var: D}``, :math:`D = g^2/2` for each equation with additive noise
        :math:`g\\,\\xi`."""
        return dict(self._diffusion)

    def flow(self, *state_and_t):
        """Exact for a 1D affine drift :math:`f(x) = f_0 + b (x - x_0)`:
        :math:`x(t) = x^* + (x - x^*) e^{b t}`, :math:`x^* = x_0 - f_0 / b`; otherwise
        the Runge-Kutta flow of :class:`Model`."""
        if self._slope is None:
            return super().flow(*state_and_t)
        x, t = np.asarray(state_and_t[0], dtype=float), float(state_and_t[1])
        x0, f0, b = self._slope
        if b == 0.0:
            return x + f0 * t
        fixed = x0 - f0 / b
        return fixed + (x - fixed) * math.exp(b * t)

    @property
    def time_scale(self) -> float:
        """``1 / |b|`` for an affine 1D drift, else the default of :class:`Model`."""
        if self._slope is not None and self._slope[2] != 0.0:
            return 1.0 / abs(self._slope[2])
        return super().time_scale

    def refractory_map(self, *others):
        """The other variables at release: the reset statements (run in order, the
        threshold variable at its threshold before its own reset), then their drift over
        the refractory period with the threshold variable held at the reset (variables
        flagged ``(unless refractory)`` are held)."""
        rule = self._rule
        if not isinstance(rule, ThresholdReset):
            return super().refractory_map(*others)
        k = self.state_vars.index(rule.var)
        arrays = [np.asarray(x, dtype=float) for x in others]
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
        full = arrays[:k] + [np.full(shape, rule.threshold)] + arrays[k:]
        after = list(self.parsed.apply_reset(*full))
        if rule.refractory > 0.0:
            after = self._refractory_flow(after, k, rule.refractory)
        mapped = after[:k] + after[k + 1:]
        return mapped[0] if len(mapped) == 1 else tuple(mapped)

    def _refractory_flow(self, state, k, t_ref):
        moving = [d != k and "unless refractory" not in self.parsed.flags.get(v, ())
                  for d, v in enumerate(self.state_vars)]
        if not any(moving):
            return state
        state = [np.asarray(x, dtype=float) for x in state]

        def rhs(s):
            f = self.drift_components(s)
            return [fd if m else np.zeros_like(fd) for fd, m in zip(f, moving)]
        steps = self._flow_steps(state, t_ref)
        for _ in range(steps):
            state = rk4_step(rhs, state, t_ref / steps)
        return state

    @property
    def resting_state(self):
        """The ``resting_state`` given, or the stable fixed point of the drift (see the
        class docstring)."""
        if self._rest is None:
            self._rest = self._find_rest()
        return self._rest

    def default_grid(self, inputs=()) -> Grid:
        """The ``grid`` given to the constructor."""
        if self._grid is None:
            rule = self._rule
            var = rule.var
            edge = (f"{var}=(lower, {rule.threshold:g}, num_cells)"
                    if isinstance(rule, ThresholdReset) else f"{var}=(lower, upper, num_cells)")
            raise ValueError(f"EquationModel has no default grid: pass grid=pd.Grid({edge}"
                             f"{', ...' if len(self.state_vars) > 1 else ''}) with one axis "
                             f"per state variable {self.state_vars} to EquationModel(...) "
                             f"or to Network.add_population(...)")
        return self._grid

    def compiled_params(self):
        """The parameters of the compiled Monte Carlo update generated from the text
        (:mod:`popdens.equations.mc_codegen`: written to the cache directory once per
        model structure, compiled by numba once per machine)."""
        if self._compiled is None:
            self._compiled = mc_codegen.compiled_params(self)
        return self._compiled

    def params(self) -> dict:
        """The constructor's arguments (``EquationModel(**model.params())`` rebuilds it)."""
        return dict(self._args)

    def __repr__(self) -> str:
        return (f"EquationModel(states={self.state_vars}, parameters="
                f"{self.parsed.parameters}, hash={self.parsed.hash[:12]})")

    # --- resting state -------------------------------------------------------------------
    def _find_rest(self):
        rule = self._rule
        if len(self.state_vars) == 1:
            return self._rest_1d()
        start = np.zeros(len(self.state_vars))
        if isinstance(rule, ThresholdReset):
            start[self.state_vars.index(rule.var)] = rule.reset
        found = self._newton_rest(start)
        if found is not None:
            return tuple(float(x) for x in found)
        if isinstance(rule, ThresholdReset):
            return tuple(float(x) for x in start)
        raise ValueError(f"no stable fixed point of the drift found from {tuple(start)}; "
                         f"pass resting_state=(...) with one value per state variable "
                         f"{self.state_vars}")

    def _rest_1d(self) -> float:
        rule = self._rule
        if self._grid is not None:
            lo, hi = self._grid.axes[0].lower, self._grid.axes[0].upper
        elif isinstance(rule, ThresholdReset):
            hi = rule.threshold
            lo = rule.reset - _REST_SCAN_GAPS * (rule.threshold - rule.reset)
        else:
            raise ValueError("pass resting_state= or grid= (the fixed point of the drift "
                             "is searched on the grid)")
        if self._slope is not None and self._slope[2] < 0.0:
            x0, f0, b = self._slope
            fixed = x0 - f0 / b    # the stable fixed point of an affine drift
            if lo <= fixed < hi:
                return float(fixed)
        x = np.linspace(lo, hi, _REST_SCAN_POINTS)
        f = np.asarray(self.drift(x), dtype=float)
        stable = np.flatnonzero((f[:-1] > 0) & (f[1:] <= 0))
        start = rule.reset if isinstance(rule, ThresholdReset) else 0.5 * (lo + hi)
        if stable.size == 0:
            return float(start)
        k = int(stable[np.argmin(np.abs(x[stable] - start))])
        if f[k + 1] == 0.0:
            return float(x[k + 1])
        return float(brentq(lambda v: float(self.drift(v)), x[k], x[k + 1], xtol=1e-15,
                            rtol=1e-15))

    def _newton_rest(self, start):
        scale = np.maximum(np.abs(start), 1e-3)

        def residual(z):   # per unit of each variable's scale
            return np.array([float(c) for c in self.drift(*(z * scale))]) / scale

        with np.errstate(all="ignore"):
            sol = root(residual, start / scale, method="hybr")
        if not sol.success or not np.all(np.isfinite(sol.x)):
            return None
        x = sol.x * scale
        jac = np.empty((x.size, x.size))
        for d in range(x.size):
            h = 1e-7 * max(abs(x[d]), 1e-3)
            up, down = x.copy(), x.copy()
            up[d] += h
            down[d] -= h
            jac[:, d] = (np.array(self.drift(*up), dtype=float)
                         - np.array(self.drift(*down), dtype=float)) / (2 * h)
        if not np.all(np.linalg.eigvals(jac).real < 0):
            return None
        return x


def _degree(node, var, subs, seen=()) -> int:
    """Polynomial degree of a checked tree in ``var`` (2: anything not affine)."""
    if node is None or isinstance(node, ast.Constant):
        return 0
    if isinstance(node, ast.Expression):
        return _degree(node.body, var, subs, seen)
    if isinstance(node, ast.Name):
        if node.id == var:
            return 1
        if node.id in subs and node.id not in seen:
            return _degree(subs[node.id], var, subs, seen + (node.id,))
        return 0
    if isinstance(node, ast.UnaryOp):
        return _degree(node.operand, var, subs, seen)
    if isinstance(node, ast.BinOp):
        left = _degree(node.left, var, subs, seen)
        if isinstance(node.op, ast.Pow):
            return 0 if left == 0 else 2
        right = _degree(node.right, var, subs, seen)
        if isinstance(node.op, (ast.Add, ast.Sub)):
            return max(left, right)
        if isinstance(node.op, ast.Mult):
            return min(left + right, 2)
        return left if right == 0 else 2
    parts = node.args if isinstance(node, ast.Call) else [node.left, *node.comparators]
    return 0 if all(_degree(a, var, subs, seen) == 0 for a in parts) else 2
