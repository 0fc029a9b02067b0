r"""Balanced excitatory/inhibitory networks and their Gaussian large-n limit.

The model (dimensionless model units: time, the synaptic variable and the input ``h`` carry
no physical unit). A network of :math:`2n` neurons, :math:`n` excitatory (E) and :math:`n`
inhibitory (I); neuron :math:`k` of class :math:`p` has a synaptic variable :math:`x_k`,

.. math::

    \frac{dx_k}{dt} = -\frac{x_k}{\tau_p} + h_p(t)
        + \frac{a}{\sqrt n} \sum_{j \in E, j \ne k} \dot N_{jk}(t)
        - \frac{b}{\sqrt n} \sum_{j \in I, j \ne k} \dot N_{jk}(t),

where every :math:`N_{jk}` (ordered pair :math:`j \ne k`) is an independent Poisson process
of intensity :math:`f_{q}(x_j)`, :math:`q` the class of the presynaptic neuron :math:`j`,
and :math:`f_q` a bounded increasing sigmoid (:class:`GaussianRate`).

Large-n limit. The mean input :math:`\sqrt n\,(a\Lambda_E - b\Lambda_I)`,
:math:`\Lambda_q(m, v) = \mathbb E f_q(m + \sqrt v Z)`, is :math:`O(\sqrt n)` unless the
network is balanced; for :math:`n \to \infty` the class distributions stay Gaussian,
:math:`\mathcal N(m_p, v_p)`, on the balanced manifold :math:`a\Lambda_E = b\Lambda_I`, and

.. math::

    \frac{dm_p}{dt} = -\frac{m_p}{\tau_p} + h_p(t) + c(t), \qquad
    \frac{dv_p}{dt} = -\frac{2 v_p}{\tau_p} + D(t), \qquad
    D = a^2 \Lambda_E + b^2 \Lambda_I,

with one common multiplier :math:`c(t)` (the :math:`O(1)` remainder of the mean input) that
keeps the constraint. The manifold attracts when
:math:`\kappa = a\,\partial_m\Lambda_E - b\,\partial_m\Lambda_I < 0`; off-manifold initial
data are projected by a common shift of both means (what the fast :math:`O(\sqrt n)`
transient of a finite network does). This is the reduced description announced by
MacLaurin & Vilanova (arXiv:2412.17273, 2024); only its abstract is public, and the model
above is the one popdens implements and documents as such.

Contents: :class:`GaussianRate` (the sigmoids and their Gaussian averages),
:class:`BalancedEI` with :meth:`~BalancedEI.stationary`, :meth:`~BalancedEI.solve_limit`,
:meth:`~BalancedEI.solve_finite` (the Gaussian ODEs at finite n, stiff) and
:meth:`~BalancedEI.simulate` (the Monte Carlo network, numba kernel :func:`mc_kernel`).
"""

from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numba import njit
from scipy import integrate, optimize, special

from ._checks import as_real, check_int, check_positive
from .network import piecewise, sinusoid

__all__ = ["GaussianRate", "BalancedEI", "BalancedState", "LimitSolution",
           "MonteCarloSolution", "mc_kernel", "RATE_KINDS"]

CLASSES = ("E", "I")
RATE_KINDS = ("probit", "logistic", "tanh")
# Gauss-Hermite rules for the logistic and tanh averages, chosen by the sharpness
# s = beta_eff^2 v of the sigmoid on the scale of the Gaussian (beta_eff = 2 beta for tanh):
# measured against a dense trapezoid rule, 64 nodes give 1e-10 up to s = 4 and 256 nodes
# 2e-11 up to s = 25 (the logistic's poles at distance pi / beta_eff from the real axis
# limit the convergence); sharper sigmoids are refused.
_GH_RULES = ((4.0, 64), (25.0, 256))
# Grid points of the bracket scan of the stationary / projection roots.
_SCAN_POINTS = 801
# Largest number of recorded samples x neurons the Monte Carlo allocates.
_MAX_RECORD = 50_000_000


# --------------------------------------------------------------------------------------
# rate functions
# --------------------------------------------------------------------------------------
class GaussianRate:
    r"""Bounded increasing sigmoid rate :math:`f(x)` and its Gaussian averages.

    - ``"probit"``: :math:`f(x) = \nu\,\Phi(\beta(x - \theta))`, with the closed form
      :math:`\mathbb E f(m + \sqrt v Z) = \nu\,\Phi(\beta(m - \theta)/\sqrt{1 + \beta^2 v})`;
    - ``"logistic"``: :math:`f(x) = \nu / (1 + e^{-\beta(x - \theta)})`;
    - ``"tanh"``: :math:`f(x) = \nu\,(1 + \tanh(\beta(x - \theta)))/2`.

    The last two are averaged by Gauss-Hermite quadrature (``quadrature=True`` forces it for
    the probit too), to ~1e-10 while :math:`\beta_{eff}^2 v \le 25` (:math:`\beta_{eff}`:
    ``beta``, ``2 beta`` for tanh); sharper sigmoids raise ``ValueError``.
    Derivatives: :math:`\partial_m \Lambda = \mathbb E f'`
    and :math:`\partial_v \Lambda = \tfrac12 \mathbb E f''` (the heat equation).

    Parameters
    ----------
    kind : {"probit", "logistic", "tanh"}
    nu : float
        Maximal rate (> 0).
    beta : float
        Gain (> 0).
    theta : float
        Threshold.
    """

    def __init__(self, kind: str, nu: float = 1.0, beta: float = 1.0, theta: float = 0.0,
                 quadrature: bool = False):
        if kind not in RATE_KINDS:
            raise ValueError(f"GaussianRate kind must be one of {RATE_KINDS}, got {kind!r}")
        self.kind = kind
        self.nu = check_positive("nu", nu)
        self.beta = check_positive("beta", beta)
        self.theta = as_real("theta", theta)
        self.quadrature = bool(quadrature) or kind != "probit"
        self._beta_eff = 2.0 * self.beta if kind == "tanh" else self.beta

    @property
    def code(self) -> int:
        return RATE_KINDS.index(self.kind)

    def _derivatives(self, x):
        """f, f', f'' at x (arrays)."""
        y = self.beta * (np.asarray(x, dtype=float) - self.theta)
        nu, beta = self.nu, self.beta
        if self.kind == "probit":
            pdf = np.exp(-0.5 * y * y) / math.sqrt(2 * math.pi)
            return nu * special.ndtr(y), nu * beta * pdf, -nu * beta**2 * y * pdf
        if self.kind == "logistic":
            s = special.expit(y)
            return nu * s, nu * beta * s * (1 - s), nu * beta**2 * s * (1 - s) * (1 - 2 * s)
        # (1 + tanh y) / 2 = expit(2 y), without the cancellation for y << 0
        s = special.expit(2.0 * y)
        sech2 = 4.0 * s * (1.0 - s)
        return nu * s, 0.5 * nu * beta * sech2, -nu * beta**2 * (2.0 * s - 1.0) * sech2

    def __call__(self, x):
        return self._derivatives(x)[0]

    def average(self, m, v):
        r"""Return :math:`(\Lambda, \partial_m\Lambda, \partial_v\Lambda)` at mean ``m`` and
        variance ``v`` (scalars or broadcastable arrays)."""
        m = np.asarray(m, dtype=float)
        v = np.maximum(np.asarray(v, dtype=float), 0.0)
        if not self.quadrature:
            s = np.sqrt(1.0 + self.beta**2 * v)
            u = self.beta * (m - self.theta) / s
            pdf = np.exp(-0.5 * u * u) / math.sqrt(2 * math.pi)
            return (self.nu * special.ndtr(u), self.nu * self.beta * pdf / s,
                    -0.5 * self.nu * self.beta**2 * u * pdf / (s * s))
        nodes, weights = self._rule(float(np.max(v, initial=0.0)))
        x = m[..., None] + np.sqrt(v)[..., None] * nodes
        f, f1, f2 = self._derivatives(x)
        return f @ weights, f1 @ weights, 0.5 * (f2 @ weights)

    def _rule(self, v_max):
        sharpness = self._beta_eff**2 * v_max
        for limit, size in _GH_RULES:
            if sharpness <= limit:
                return _hermite_rule(size)
        raise ValueError(f"GaussianRate({self.kind!r}) average at variance v={v_max:.6g}: "
                         f"beta_eff^2 v = {sharpness:.6g} > {_GH_RULES[-1][0]}, too sharp a "
                         f"sigmoid for the Gauss-Hermite rule (the probit has a closed form)")

    def __repr__(self) -> str:
        return (f"GaussianRate({self.kind!r}, nu={self.nu!r}, beta={self.beta!r}, "
                f"theta={self.theta!r})")


@functools.cache
def _hermite_rule(size):
    """Nodes and weights of E g(Z), Z standard normal."""
    nodes, weights = np.polynomial.hermite.hermgauss(size)
    return math.sqrt(2.0) * nodes, weights / math.sqrt(math.pi)


# --------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------
class BalancedState(NamedTuple):
    """Stationary balanced state: multiplier ``c``, diffusion ``D``, class means ``m`` and
    variances ``v`` (dicts over "E", "I"), and the attraction rate ``kappa`` (< 0)."""

    c: float
    D: float
    m: dict
    v: dict
    kappa: float


@dataclass
class LimitSolution:
    """Solution of the Gaussian ODEs over ``t``: ``m``, ``v`` (dicts of arrays), the
    multiplier ``c`` (for :meth:`BalancedEI.solve_finite`: the mean input
    ``sqrt(n) (a Lambda_E - b Lambda_I)``), ``D``, the constraint residual
    ``a Lambda_E - b Lambda_I`` and ``kappa``."""

    t: np.ndarray
    m: dict
    v: dict
    c: np.ndarray
    D: np.ndarray
    residual: np.ndarray
    kappa: np.ndarray


@dataclass
class MonteCarloSolution:
    """Monte Carlo run: class means ``m`` and variances ``v`` (dicts of arrays over ``t``)
    of the synaptic variables, and the final state ``x`` (E neurons first)."""

    t: np.ndarray
    m: dict
    v: dict
    x: np.ndarray
    n: int


# --------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------
def _check_input(name: str, spec):
    if isinstance(spec, (piecewise, sinusoid)) or callable(spec):
        return spec
    if isinstance(spec, numbers.Real) and not isinstance(spec, bool):
        return as_real(name, spec)
    raise TypeError(f"{name} must be a float, a callable t -> value or pd.piecewise(times, "
                    f"values), got {spec!r}")


def _input_at(spec, t) -> float:
    if isinstance(spec, float):
        return spec
    value = float(np.asarray(spec(t), dtype=float))
    if not math.isfinite(value):
        raise ValueError(f"input h returned {value!r} at t={t!r}")
    return value


def _input_step_means(spec, t0: np.ndarray, dt: float) -> np.ndarray:
    """Mean of an input over each step [t0, t0 + dt): exact for constants and piecewise,
    2-point Gauss-Legendre for callables."""
    if isinstance(spec, float):
        return np.full(t0.shape, spec)
    if isinstance(spec, (piecewise, sinusoid)):
        out = spec.mean(t0, t0 + dt)
    else:
        g = 0.5 / math.sqrt(3.0)
        out = 0.5 * (np.asarray(spec(t0 + (0.5 - g) * dt), dtype=float)
                     + np.asarray(spec(t0 + (0.5 + g) * dt), dtype=float))
        out = np.broadcast_to(out, t0.shape).astype(float)
    if not np.all(np.isfinite(out)):
        raise ValueError("input h is not finite on the simulated interval")
    return out


def _breakpoints(specs, t0: float, t1: float) -> list:
    """Jump times of piecewise inputs inside (t0, t1), where c(t) is discontinuous."""
    times = set()
    for spec in specs:
        if isinstance(spec, piecewise):
            times.update(float(s) for s in spec.times if t0 < s < t1)
        if isinstance(spec, sinusoid) and t0 < spec.start < t1:
            times.add(float(spec.start))
    return sorted(times)


# --------------------------------------------------------------------------------------
# the Monte Carlo kernel
# --------------------------------------------------------------------------------------
class MCParams(NamedTuple):
    """Scalars and per-class arrays of :func:`mc_kernel` (index 0: E, 1: I)."""

    n: int
    kind: np.ndarray       # rate kind codes (RATE_KINDS index)
    nu: np.ndarray
    beta: np.ndarray
    theta: np.ndarray
    decay: np.ndarray      # exp(-dt / tau)
    gain: np.ndarray       # tau (1 - exp(-dt / tau)): response to a constant input
    jump: np.ndarray       # signed jump sizes (a, -b) / sqrt(n)
    dt: float
    record_every: int


@njit(cache=True)
def rate_value(kind, nu, beta, theta, x):
    y = beta * (x - theta)
    if kind == 0:
        return nu * 0.5 * math.erfc(-y / math.sqrt(2.0))
    if kind == 2:
        y = 2.0 * y     # (1 + tanh y) / 2 = logistic(2 y), without cancellation
    if y >= 0.0:
        return nu / (1.0 + math.exp(-y))
    e = math.exp(y)
    return nu * e / (1.0 + e)


@njit(cache=True)
def mc_kernel(x, h_steps, p, seed, out_mean, out_var):
    """Advance the 2n synaptic variables ``x`` (E first) over ``h_steps.shape[0]`` steps.

    Per step every neuron k draws, for each presynaptic class q, a Poisson number of events
    with mean ``dt * sum_{j in q, j != k} f_q(x_j)`` (rates frozen over the step); the
    leave-one-out sums come from one prefix and one suffix pass per class, so a step costs
    O(n). The linear part is integrated exactly with the step's mean input ``h`` plus the
    step's jumps spread evenly over it. Class means and variances are written every
    ``record_every`` steps (sample 0: the initial state).
    """
    np.random.seed(seed)  # noqa: NPY002 (numba: the generator of the compiled kernel)
    n = p.n
    fx = np.empty(2 * n)
    # leave-one-out class sums as prefix + suffix: subtracting a neuron's own rate from the
    # class total would cancel catastrophically when that rate dominates the class
    before = np.empty(2 * n)
    after = np.empty(2 * n)
    totals = np.empty(2)
    _record(x, n, out_mean, out_var, 0)
    for step in range(h_steps.shape[0]):
        for q in range(2):
            acc = 0.0
            for k in range(q * n, (q + 1) * n):
                fx[k] = rate_value(p.kind[q], p.nu[q], p.beta[q], p.theta[q], x[k])
                before[k] = acc
                acc += fx[k]
            totals[q] = acc
            acc = 0.0
            for k in range((q + 1) * n - 1, q * n - 1, -1):
                after[k] = acc
                acc += fx[k]
        for k in range(2 * n):
            cls = 0 if k < n else 1
            drive = h_steps[step, cls]
            for q in range(2):
                lam = before[k] + after[k] if q == cls else totals[q]
                count = np.random.poisson(lam * p.dt)  # noqa: NPY002
                drive += p.jump[q] * count / p.dt
            x[k] = x[k] * p.decay[cls] + p.gain[cls] * drive
        if (step + 1) % p.record_every == 0:
            _record(x, n, out_mean, out_var, (step + 1) // p.record_every)


@njit(cache=True)
def _record(x, n, out_mean, out_var, row):
    for q in range(2):
        mean = 0.0
        for k in range(q * n, (q + 1) * n):
            mean += x[k]
        mean /= n
        var = 0.0
        for k in range(q * n, (q + 1) * n):
            var += (x[k] - mean) ** 2
        out_mean[row, q] = mean
        out_var[row, q] = var / (n - 1)


# --------------------------------------------------------------------------------------
# the network
# --------------------------------------------------------------------------------------
def _per_class(name: str, value, check) -> dict:
    if not isinstance(value, dict):
        value = {"E": value, "I": value}
    if set(value) != set(CLASSES):
        raise ValueError(f"{name} must have the keys 'E' and 'I', got {sorted(value)}")
    return {p: check(f"{name}[{p!r}]", value[p]) for p in CLASSES}


def _check_rate(name: str, rate):
    if not isinstance(rate, GaussianRate):
        raise TypeError(f"{name} must be a balanced.GaussianRate, got {rate!r}")
    return rate


class BalancedEI:
    r"""Balanced E/I network of :math:`2n` neurons with Poisson synapses of strength
    :math:`a/\sqrt n` (excitatory) and :math:`-b/\sqrt n` (inhibitory).

    .. math::

        \frac{dx_k}{dt} = -\frac{x_k}{\tau_p} + h_p(t)
            + \frac{a}{\sqrt n} \sum_{j \in E \setminus k} \dot N_{jk}
            - \frac{b}{\sqrt n} \sum_{j \in I \setminus k} \dot N_{jk},
        \qquad N_{jk} \sim \text{Poisson}(f_{q(j)}(x_j)).

    Its large-n limit (:meth:`solve_limit`) is Gaussian on the manifold
    :math:`a\Lambda_E = b\Lambda_I` (see the module docstring). Dimensionless model units.

    Parameters
    ----------
    a, b : float
        Excitatory and inhibitory coupling (> 0).
    tau : float or dict
        Decay times per class (> 0).
    rate : GaussianRate or dict
        Rate function of each (presynaptic) class.
    h : float, callable or pd.piecewise, or a dict of them
        External input per class (``pd.piecewise`` is 0 before its first time).
    baumgarte : float, optional
        Rate (1/time) at which :meth:`solve_limit` pulls numerical drift of the constraint
        back to zero; default ``10 / min(tau)``.
    """

    def __init__(self, a, b, tau, rate, h=0.0, baumgarte=None):
        self.a = check_positive("a", a)
        self.b = check_positive("b", b)
        self.tau = _per_class("tau", tau, check_positive)
        self.rate = _per_class("rate", rate, _check_rate)
        self.h = _per_class("h", h, _check_input)
        self.baumgarte = (10.0 / min(self.tau.values()) if baumgarte is None
                          else check_positive("baumgarte", baumgarte))

    # ---- Gaussian averages ------------------------------------------------------------
    def _averages(self, m_e, v_e, m_i, v_i):
        return self.rate["E"].average(m_e, v_e), self.rate["I"].average(m_i, v_i)

    def residual(self, m, v):
        """Constraint residual ``a Lambda_E - b Lambda_I`` at class means/variances."""
        (le, _, _), (li, _, _) = self._averages(m["E"], v["E"], m["I"], v["I"])
        return self.a * le - self.b * li

    def kappa(self, m, v):
        """Attraction rate of the manifold ``a dLambda_E/dm - b dLambda_I/dm``."""
        (_, de, _), (_, di, _) = self._averages(m["E"], v["E"], m["I"], v["I"])
        return self.a * de - self.b * di

    # ---- the limit ODE ----------------------------------------------------------------
    def _limit_rhs(self, t, y):
        m_e, m_i, v_e, v_i = y
        (le, dme, dve), (li, dmi, dvi) = self._averages(m_e, v_e, m_i, v_i)
        diffusion = self.a**2 * le + self.b**2 * li
        f_e = -m_e / self.tau["E"] + _input_at(self.h["E"], t)
        f_i = -m_i / self.tau["I"] + _input_at(self.h["I"], t)
        dv_e = -2.0 * v_e / self.tau["E"] + diffusion
        dv_i = -2.0 * v_i / self.tau["I"] + diffusion
        kappa = self.a * dme - self.b * dmi
        residual = self.a * le - self.b * li
        # d/dt residual = (everything but c) + kappa c, set equal to -baumgarte * residual
        rest = self.a * (dme * f_e + dve * dv_e) - self.b * (dmi * f_i + dvi * dv_i)
        c = -(rest + self.baumgarte * residual) / kappa
        return np.array([f_e + c, f_i + c, dv_e, dv_i]), c, diffusion, residual, kappa

    def _finite_rhs(self, t, y, n):
        m_e, m_i, v_e, v_i = y
        (le, _, _), (li, _, _) = self._averages(m_e, v_e, m_i, v_i)
        own = (n - 1.0) / n      # a neuron receives no events from itself
        sq = math.sqrt(n)
        drive_e = sq * (self.a * own * le - self.b * li)
        drive_i = sq * (self.a * le - self.b * own * li)
        d_e = self.a**2 * own * le + self.b**2 * li
        d_i = self.a**2 * le + self.b**2 * own * li
        return np.array([-m_e / self.tau["E"] + _input_at(self.h["E"], t) + drive_e,
                         -m_i / self.tau["I"] + _input_at(self.h["I"], t) + drive_i,
                         -2.0 * v_e / self.tau["E"] + d_e,
                         -2.0 * v_i / self.tau["I"] + d_i])

    # ---- stationary state -------------------------------------------------------------
    def _stationary_at(self, c, h):
        """Means and the self-consistent D (hence variances) for a given multiplier c."""
        m = {p: self.tau[p] * (h[p] + c) for p in CLASSES}
        d_max = self.a**2 * self.rate["E"].nu + self.b**2 * self.rate["I"].nu

        def excess(d):
            v = {p: 0.5 * self.tau[p] * d for p in CLASSES}
            (le, _, _), (li, _, _) = self._averages(m["E"], v["E"], m["I"], v["I"])
            return d - (self.a**2 * le + self.b**2 * li)

        lo = excess(0.0)
        d = 0.0 if lo >= 0.0 else optimize.brentq(excess, 0.0, d_max, xtol=1e-15,
                                                  rtol=1e-15)
        return m, {p: 0.5 * self.tau[p] * d for p in CLASSES}, d

    def stationary(self, t: float = 0.0) -> BalancedState:
        """Stationary balanced state for the input frozen at time ``t``.

        The multiplier c is found by a bracketed root search of the constraint over a scan
        of c (Newton from a poor guess drifts onto the silent state c -> -inf, where every
        rate vanishes and the residual is 0 without a balance). Of the sign changes, the
        attracting one (kappa < 0) of largest c is returned; ``ValueError`` if none.
        """
        t = as_real("t", t)
        h = {p: _input_at(self.h[p], t) for p in CLASSES}
        lo, hi = self._c_range(h)
        grid = np.linspace(lo, hi, _SCAN_POINTS)

        def g(c):
            m, v, _ = self._stationary_at(c, h)
            return self.residual(m, v)

        values = np.array([g(c) for c in grid])
        roots = []
        for k in np.flatnonzero(values[:-1] * values[1:] < 0.0):
            c = optimize.brentq(g, grid[k], grid[k + 1], xtol=1e-14, rtol=1e-15)
            m, v, d = self._stationary_at(c, h)
            roots.append(BalancedState(c, d, m, v, float(self.kappa(m, v))))
        stable = [r for r in roots if r.kappa < 0.0]
        if not stable:
            found = ", ".join(f"c={r.c:.6g} (kappa={r.kappa:.3g})" for r in roots) or "none"
            raise ValueError(f"no attracting balanced stationary state (kappa < 0) at t={t}: "
                             f"roots of a Lambda_E = b Lambda_I found: {found}")
        return stable[-1]

    def _c_range(self, h):
        """c range outside which both classes are saturated (rates 0 or nu)."""
        d_max = self.a**2 * self.rate["E"].nu + self.b**2 * self.rate["I"].nu
        lo, hi = [], []
        for p in CLASSES:
            r = self.rate[p]
            width = 40.0 * math.sqrt(1.0 + r.beta**2 * 0.5 * self.tau[p] * d_max) / r.beta
            lo.append((r.theta - width) / self.tau[p] - h[p])
            hi.append((r.theta + width) / self.tau[p] - h[p])
        return min(lo), max(hi)

    # ---- initial data -----------------------------------------------------------------
    def initial_state(self, m0=None, v0=None, t: float = 0.0):
        """Initial means and variances on the manifold.

        ``v0`` None: the stationary variances. In ``m0``, one class None: its mean is
        solved from the constraint; both None (or ``m0=None``): the stationary means;
        both given off the manifold: projected by a common shift of both means (the one of
        smallest size that lands on an attracting part, kappa < 0).
        """
        st = None
        if v0 is None or m0 is None or all(m0.get(p) is None for p in CLASSES):
            st = self.stationary(t)
        v = dict(st.v) if v0 is None else _per_class("v0", v0, _check_variance)
        if m0 is None or all(m0.get(p) is None for p in CLASSES):
            m = dict(st.m)
        else:
            m = _per_class("m0", m0, _optional_real)
            missing = [p for p in CLASSES if m[p] is None]
            m = self._solve_mean(m, v, missing[0]) if missing else self._project(m, v)
        kappa = float(self.kappa(m, v))
        if kappa >= 0.0:
            raise ValueError(f"the balanced manifold does not attract at the initial state "
                             f"m={m}, v={v}: kappa = a dLambda_E/dm - b dLambda_I/dm = "
                             f"{kappa:.6g} >= 0")
        return m, v

    def _solve_mean(self, m, v, p):
        other = "I" if p == "E" else "E"
        weight = {"E": self.a, "I": self.b}
        target = weight[other] * self.rate[other].average(m[other], v[other])[0] / weight[p]
        nu = self.rate[p].nu
        if not 0.0 < target < nu:
            raise ValueError(f"m0[{p!r}] cannot be put on the manifold: it needs "
                             f"Lambda_{p} = {target:.6g}, outside (0, nu={nu!r})")
        lo, hi = self._c_range({q: 0.0 for q in CLASSES})
        lo, hi = lo * self.tau[p], hi * self.tau[p]
        root = optimize.brentq(lambda x: self.rate[p].average(x, v[p])[0] - target, lo, hi,
                               xtol=1e-14, rtol=1e-15)
        return {**m, p: root}

    def _project(self, m, v):
        def g(shift):
            return self.residual({p: m[p] + shift for p in CLASSES}, v)

        if g(0.0) == 0.0:
            return m
        lo, hi = self._c_range({q: 0.0 for q in CLASSES})
        span = (hi - lo) * max(self.tau.values()) + abs(m["E"]) + abs(m["I"])
        grid = np.linspace(-span, span, 2 * _SCAN_POINTS + 1)
        values = np.array([g(s) for s in grid])
        best = None
        for k in np.flatnonzero(values[:-1] * values[1:] < 0.0):
            s = optimize.brentq(g, grid[k], grid[k + 1], xtol=1e-14, rtol=1e-15)
            shifted = {p: m[p] + s for p in CLASSES}
            if self.kappa(shifted, v) < 0.0 and (best is None or abs(s) < abs(best)):
                best = s
        if best is None:
            raise ValueError(f"m0={m} cannot be projected onto an attracting part of the "
                             f"balanced manifold by a common shift")
        return {p: m[p] + best for p in CLASSES}

    # ---- solvers ----------------------------------------------------------------------
    def solve_limit(self, t_eval, m0=None, v0=None, rtol=1e-10, atol=1e-12) -> LimitSolution:
        """Integrate the n -> infinity Gaussian ODEs (the module's equations) over
        ``t_eval``, starting from :meth:`initial_state` ``(m0, v0)`` at ``t_eval[0]``.

        Integrated piece by piece between the jump times of piecewise inputs (where c(t)
        jumps). Raises ``ValueError`` if the manifold stops attracting (kappa >= 0)."""
        t_eval = _check_times(t_eval)
        m, v = self.initial_state(m0, v0, t=t_eval[0])
        y0 = np.array([m["E"], m["I"], v["E"], v["I"]])
        y = _integrate_pieces(lambda t, y: self._limit_rhs(t, y)[0], y0, t_eval,
                              _breakpoints(self.h.values(), t_eval[0], t_eval[-1]),
                              "RK45", rtol, atol)
        extras = np.array([self._limit_rhs(t, yk)[1:] for t, yk in zip(t_eval, y.T)])
        if np.any(extras[:, 3] >= 0.0):
            k = int(np.argmax(extras[:, 3] >= 0.0))
            raise ValueError(f"the balanced manifold stops attracting at t={t_eval[k]:.6g}: "
                             f"kappa = {extras[k, 3]:.6g} >= 0")
        return LimitSolution(t_eval, {"E": y[0], "I": y[1]}, {"E": y[2], "I": y[3]},
                             extras[:, 0], extras[:, 1], extras[:, 2], extras[:, 3])

    def solve_finite(self, n, t_eval, m0=None, v0=None, rtol=1e-9, atol=1e-11,
                     method="Radau") -> LimitSolution:
        """Integrate the Gaussian ODEs of a network of finite size ``n`` per class: c is
        replaced by the stiff mean input ``sqrt(n) (a Lambda_E - b Lambda_I)`` with the
        neuron's own term excluded ((n - 1)/n factors), and D by the matching per-class
        jump variance. Initial data as in :meth:`solve_limit` (on the manifold)."""
        n = check_int("n", n, 2)
        t_eval = _check_times(t_eval)
        m, v = self.initial_state(m0, v0, t=t_eval[0])
        y0 = np.array([m["E"], m["I"], v["E"], v["I"]])
        y = _integrate_pieces(lambda t, y: self._finite_rhs(t, y, n), y0, t_eval,
                              _breakpoints(self.h.values(), t_eval[0], t_eval[-1]),
                              method, rtol, atol)
        (le, dme, _), (li, dmi, _) = self._averages(y[0], y[2], y[1], y[3])
        residual = self.a * le - self.b * li
        return LimitSolution(t_eval, {"E": y[0], "I": y[1]}, {"E": y[2], "I": y[3]},
                             math.sqrt(n) * residual, self.a**2 * le + self.b**2 * li,
                             residual, self.a * dme - self.b * dmi)

    def simulate(self, n, t_end, dt, seed=0, record_every=1, m0=None, v0=None,
                 t0: float = 0.0) -> MonteCarloSolution:
        """Monte Carlo simulation of the network of ``n`` neurons per class.

        The initial synaptic variables are independent Gaussians with the class means and
        variances of :meth:`initial_state` ``(m0, v0)``. The kernel (:func:`mc_kernel`)
        freezes the rates over each step of ``dt`` (an O(dt) error; keep
        ``dt * sqrt(n) * |kappa|`` well below 1, the rate of the balancing feedback).
        """
        n = check_int("n", n, 2)
        t_end = check_positive("t_end", t_end)
        dt = check_positive("dt", dt)
        record_every = check_int("record_every", record_every, 1)
        t0 = as_real("t0", t0)
        steps = int(round(t_end / dt))
        if steps < 1 or abs(steps * dt - t_end) > 1e-9 * t_end:
            raise ValueError(f"t_end={t_end!r} must be a positive multiple of dt={dt!r}")
        rows = steps // record_every + 1
        if 2 * n > _MAX_RECORD or 4 * rows > _MAX_RECORD:
            raise ValueError(f"n={n} with {rows} recorded samples is too large")
        m, v = self.initial_state(m0, v0, t=t0)
        rng = np.random.default_rng(seed)
        x = np.concatenate([m[p] + math.sqrt(v[p]) * rng.standard_normal(n) for p in CLASSES])
        starts = t0 + dt * np.arange(steps)
        h_steps = np.column_stack([_input_step_means(self.h[p], starts, dt) for p in CLASSES])
        params = self.mc_params(n, dt, record_every)
        out_mean = np.empty((rows, 2))
        out_var = np.empty((rows, 2))
        mc_kernel(x, h_steps, params, int(rng.integers(2**31 - 1)), out_mean, out_var)
        t = t0 + dt * record_every * np.arange(rows)
        return MonteCarloSolution(t, {"E": out_mean[:, 0], "I": out_mean[:, 1]},
                                  {"E": out_var[:, 0], "I": out_var[:, 1]}, x, n)

    def mc_params(self, n, dt, record_every=1) -> MCParams:
        """The :class:`MCParams` of :func:`mc_kernel` for ``n`` neurons per class."""
        tau = np.array([self.tau[p] for p in CLASSES])
        decay = np.exp(-dt / tau)
        rates = [self.rate[p] for p in CLASSES]
        return MCParams(n, np.array([r.code for r in rates], dtype=np.int64),
                        np.array([r.nu for r in rates]), np.array([r.beta for r in rates]),
                        np.array([r.theta for r in rates]), decay, tau * -np.expm1(-dt / tau),
                        np.array([self.a, -self.b]) / math.sqrt(n), float(dt),
                        int(record_every))


def _check_variance(name, value):
    value = as_real(name, value)
    if value < 0.0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return value


def _optional_real(name, value):
    return None if value is None else as_real(name, value)


def _check_times(t_eval) -> np.ndarray:
    t_eval = np.asarray(t_eval, dtype=float)
    if t_eval.ndim != 1 or t_eval.size < 2 or not np.all(np.isfinite(t_eval)) \
            or np.any(np.diff(t_eval) <= 0.0):
        raise ValueError("t_eval must be a 1D array of at least 2 finite, strictly "
                         f"increasing times, got shape {t_eval.shape}")
    return t_eval


def _integrate_pieces(rhs, y0, t_eval, breaks, method, rtol, atol) -> np.ndarray:
    """solve_ivp between consecutive breakpoints, so that no step straddles a jump of h."""
    edges = [t_eval[0], *breaks, t_eval[-1]]
    out = np.empty((y0.size, t_eval.size))
    y = y0
    for lo, hi in zip(edges[:-1], edges[1:]):
        last = hi == edges[-1]
        inside = (t_eval >= lo) & ((t_eval <= hi) if last else (t_eval < hi))
        points = t_eval[inside]
        if points.size == 0 or points[-1] < hi:
            points = np.append(points, hi)
        # the solver's last stage sits on hi, where a piecewise input has already jumped:
        # evaluate the input just inside the piece
        t_top = hi - 1e-12 * (hi - lo)
        sol = integrate.solve_ivp(lambda t, z, t_top=t_top: rhs(min(t, t_top), z), (lo, hi),
                                  y, method=method, rtol=rtol, atol=atol, t_eval=points)
        if not sol.success:
            raise RuntimeError(f"the ODE solver failed on [{lo}, {hi}]: {sol.message}")
        out[:, inside] = sol.y[:, :inside.sum()]
        y = sol.y[:, -1]
    return out
