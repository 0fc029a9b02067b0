r"""Analytic and semi-analytic reference results for leaky integrate-and-fire populations.

Everything here describes the leaky integrate-and-fire (LIF) neuron driven by Gaussian
white noise (the diffusion approximation of Poisson input),

.. math::

    \tau_m \frac{dV}{dt} = -V + \mu + \sigma \sqrt{\tau_m}\,\xi(t),
    \qquad \langle \xi(t) \xi(t') \rangle = \delta(t - t'),

with threshold :math:`\theta` (``v_th``), reset :math:`V_r` (``v_reset``) and absolute
refractory period ``t_ref``. This is the convention of Brunel & Hakim (1999) and Brunel
(2000): the free membrane potential has stationary standard deviation
:math:`\sigma / \sqrt{2}`. A constant leak reversal potential is absorbed into
:math:`\mu`. Units are SI throughout (V, s, Hz).

The functions serve as ground truth for the density solver's tests:

- :func:`siegert_rate`: the stationary rate (Siegert 1951; Brunel & Hakim 1999).
- :func:`threshold_integration`: Richardson's threshold-integration method (2007) for the
  stationary rate and density on a grid.
- :func:`threshold_integration_1d`: the same for any 1D drift (EIF, QIF, ...).
- :func:`diffusion_params`: :math:`\mu, \sigma` of Poisson input in the diffusion limit.
- :func:`richardson_extrapolate`, :func:`convergence_order`: convergence studies.
- :func:`brunel_mean_field_rate`, :func:`brunel_threshold_rate`: the self-consistent
  stationary rate of Brunel's (2000) sparse network, model A.

References
----------
.. [1] A. J. F. Siegert, "On the first passage time probability problem",
   Phys. Rev. 81:617-623 (1951).
.. [2] N. Brunel and V. Hakim, "Fast global oscillations in networks of integrate-and-fire
   neurons with low firing rates", Neural Comput. 11:1621-1671 (1999).
.. [3] N. Brunel, "Dynamics of sparsely connected networks of excitatory and inhibitory
   spiking neurons", J. Comput. Neurosci. 8:183-208 (2000).
.. [4] M. J. E. Richardson, "Firing-rate response of linear and nonlinear
   integrate-and-fire neurons to modulated current-based and conductance-based synaptic
   drive", Phys. Rev. E 76:021919 (2007).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import integrate, optimize, special

from ._checks import as_real, check_int, check_nonnegative, check_positive

__all__ = [
    "siegert_rate",
    "diffusion_params",
    "threshold_integration",
    "threshold_integration_1d",
    "StationaryState",
    "richardson_extrapolate",
    "convergence_order",
    "brunel_threshold_rate",
    "brunel_mean_field_rate",
]

_SQRT_PI = math.sqrt(math.pi)
_INV_SQRT_PI = 1.0 / _SQRT_PI
# erfcx(w) is integrated directly on [0, _W_DIRECT]; above it, 1/(sqrt(pi) w) is
# integrated analytically and the smooth remainder numerically in s = ln w; above
# _W_ASYMPTOTIC the remainder uses its asymptotic series (truncation error < 1e-19).
_W_DIRECT = 4.0
_W_ASYMPTOTIC = 1.0e3
# Truncate the exponentially decaying integrand exp(-t (2b - t)) at t b = _TAIL (e^-40).
_TAIL = 40.0
# Largest grid threshold_integration builds (its loop runs in Python, ~0.3 us a node).
_MAX_NODES = 20_000_000


# --------------------------------------------------------------------------------------
# input validation
# --------------------------------------------------------------------------------------
def _finite_array(name: str, value) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a real number or array, got {value!r}") from exc
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"{name} must be finite, got {float(arr[bad].flat[0])!r}")
    return arr


def _check_lif(tau_m, v_th, v_reset, t_ref) -> tuple[float, float, float, float]:
    tau_m = check_positive("tau_m", tau_m)
    v_th = as_real("v_th", v_th)
    v_reset = as_real("v_reset", v_reset)
    t_ref = check_nonnegative("t_ref", t_ref)
    if not v_reset < v_th:
        raise ValueError(f"v_reset must be < v_th, got v_reset={v_reset!r}, v_th={v_th!r}")
    return tau_m, v_th, v_reset, t_ref


# --------------------------------------------------------------------------------------
# Siegert formula
# --------------------------------------------------------------------------------------
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(10)


def _quad(f, lo: float, hi: float, scale: float, epsabs: float = 0.0) -> float:
    """Integrate ``f`` over ``[lo, hi]``; ``scale`` is the length on which ``f`` varies.

    Intervals much shorter than ``scale`` use 10-point Gauss-Legendre (error of order
    ``((hi - lo) / scale)**20``): adaptive quadrature on them is limited by round-off."""
    if hi - lo < 1e-2 * scale:
        half, mid = 0.5 * (hi - lo), 0.5 * (hi + lo)
        return half * sum(w * f(mid + half * x) for x, w in zip(_GL_NODES, _GL_WEIGHTS,
                                                                strict=True))
    return integrate.quad(f, lo, hi, epsabs=epsabs, epsrel=1e-13, limit=200)[0]


def _int_erfcx(w0: float, w1: float, width: float) -> float:
    r"""``int_{w0}^{w1} erfcx(w) dw`` for ``0 <= w0 <= w1``; ``width = w1 - w0`` computed
    without cancellation (all terms positive or tiny).

    Above :data:`_W_DIRECT` the integrand is split as
    :math:`1/(\sqrt\pi w) + [\mathrm{erfcx}(w) - 1/(\sqrt\pi w)]`: the first part gives the
    exact logarithm that dominates the mean-driven, small-noise limit.
    """
    total = 0.0
    lo, hi = w0, min(w1, _W_DIRECT)
    if hi > lo:
        total += _quad(special.erfcx, lo, hi, 1.0)
    lo = max(w0, _W_DIRECT)
    if w1 > lo:
        gap = width if lo == w0 else w1 - lo
        total += math.log1p(gap / lo) * _INV_SQRT_PI
        # remainder erfcx(w) - 1/(sqrt(pi) w) ~ -1/(2 sqrt(pi) w^3), in s = ln w
        hi = min(w1, _W_ASYMPTOTIC)
        if hi > lo:
            total += _quad(lambda s: math.exp(s) * special.erfcx(math.exp(s)) - _INV_SQRT_PI,
                           math.log(lo), math.log(hi), 1.0, epsabs=1e-16)
        lo = max(lo, _W_ASYMPTOTIC)
        if w1 > lo:
            def antiderivative(w):
                w2 = 1.0 / (w * w)
                return _INV_SQRT_PI * (0.25 * w2 - 0.1875 * w2 * w2 + 0.3125 * w2 ** 3)

            total += antiderivative(w1) - antiderivative(lo)
    return total


def _scaled_int_positive(b: float, width: float) -> float:
    r"""``exp(-b^2) int_a^b exp(u^2) (1 + erf u) du`` for ``0 <= a = b - width < b``
    (``width`` computed by the caller without cancellation).

    With :math:`u = b - t` the integrand is :math:`e^{-t(2b - t)}(1 + \mathrm{erf}(b - t))`,
    of order one at :math:`t = 0` and decaying on the scale :math:`1/(2b)`.
    """
    length = width
    if b * b > _TAIL and _TAIL / b < length:
        length = _TAIL / b  # t (2b - t) >= t b >= _TAIL beyond: relative tail < e^-40
    edge = min(length, 1.0 / b) if b > 0 else length
    f = lambda t: math.exp(-t * (2.0 * b - t)) * (1.0 + math.erf(b - t))  # noqa: E731
    scale = 1.0 / (1.0 + 2.0 * b)
    val = _quad(f, 0.0, edge, scale)
    if length > edge:
        val += _quad(f, edge, length, scale)
    return val


def _log_siegert_integral(a: float, b: float, width: float) -> float:
    r"""Natural log of :math:`\int_a^b \mathrm{erfcx}(-u)\,du` for finite ``a < b``;
    ``width = b - a`` computed without cancellation."""
    if not a < b:  # noise so large that the bounds coincide in floating point
        return math.log(width) + (math.log(special.erfcx(-b)) if b <= 0.0
                                  else b * b + math.log1p(math.erf(b)))
    if b <= 0.0:  # whole range below the mean: erfcx(-u) = erfcx(|u|) <= 1
        return math.log(_int_erfcx(-b, -a, width))
    if a >= 0.0:  # whole range above the mean: value ~ exp(b^2) / b, may be huge
        return b * b + math.log(_scaled_int_positive(b, width))
    neg = _int_erfcx(0.0, -a, -a)
    pos = _scaled_int_positive(b, b)
    return b * b + math.log(pos + neg * math.exp(-b * b))


def _siegert_scalar(mu: float, sigma: float, tau_m: float, v_th: float, v_reset: float,
                    t_ref: float) -> float:
    if sigma > 0.0:
        a = (v_reset - mu) / sigma
        b = (v_th - mu) / sigma
        width = (v_th - v_reset) / sigma
        if math.isfinite(a) and math.isfinite(b) and width > 0.0:
            log_i = _log_siegert_integral(a, b, width)
            if log_i > 700.0:  # mean first-passage time beyond 1e300 tau
                return 0.0
            return 1.0 / (t_ref + tau_m * _SQRT_PI * math.exp(log_i))
        if width == 0.0:  # sigma > 1e300 (v_th - v_reset): the integral vanishes
            return 1.0 / t_ref if t_ref > 0.0 else math.inf
    # sigma == 0 (or so small that the bounds overflow): deterministic LIF
    if mu <= v_th:
        return 0.0
    return 1.0 / (t_ref + tau_m * math.log((mu - v_reset) / (mu - v_th)))


def siegert_rate(mu, sigma, tau_m, v_th, v_reset, t_ref=0.0):
    r"""Stationary firing rate of the LIF neuron with white-noise input (Siegert formula).

    For :math:`\tau_m \dot V = -V + \mu + \sigma\sqrt{\tau_m}\,\xi(t)` with threshold
    :math:`\theta`, reset :math:`V_r` and refractory period :math:`t_\mathrm{ref}`
    (Siegert 1951; Brunel & Hakim 1999, eq. 21; Brunel 2000, eq. 21),

    .. math::

        \frac{1}{r} = t_\mathrm{ref} + \tau_m \sqrt{\pi}
        \int_{(V_r - \mu)/\sigma}^{(\theta - \mu)/\sigma} e^{u^2} (1 + \operatorname{erf} u)
        \, du,
        \qquad e^{u^2}(1 + \operatorname{erf} u) = \operatorname{erfcx}(-u).

    For :math:`\sigma = 0` the deterministic rate is returned,

    .. math::

        r = \left[t_\mathrm{ref} + \tau_m \ln\frac{\mu - V_r}{\mu - \theta}\right]^{-1}
        \ (\mu > \theta), \qquad r = 0 \ (\mu \le \theta),

    which is also the :math:`\sigma \to 0` limit of the formula.

    Parameters
    ----------
    mu : float or array_like
        Mean drive (V): the free membrane potential's stationary mean, leak reversal
        included.
    sigma : float or array_like
        Noise amplitude (V), >= 0; broadcast against ``mu``. The free membrane potential's
        stationary standard deviation is ``sigma / sqrt(2)``.
    tau_m : float
        Membrane time constant (s), > 0.
    v_th : float
        Threshold (V).
    v_reset : float
        Reset potential (V), < ``v_th``.
    t_ref : float, default 0.0
        Absolute refractory period (s), >= 0.

    Returns
    -------
    float or numpy.ndarray
        Rate (Hz); a float when ``mu`` and ``sigma`` are scalars, else an array of their
        broadcast shape.

    Raises
    ------
    ValueError
        For non-finite inputs, ``sigma < 0``, ``tau_m <= 0``, ``t_ref < 0`` or
        ``v_reset >= v_th``; the message names the parameter and the value.

    Notes
    -----
    The integral is evaluated by adaptive quadrature on well-scaled pieces, never on the
    raw integrand (which grows like :math:`2e^{u^2}`):

    - on :math:`u < 0` the integrand :math:`\operatorname{erfcx}(|u|)` is bounded; for
      :math:`|u| > 4` its leading term :math:`1/(\sqrt\pi |u|)` is integrated exactly, which
      reproduces the deterministic logarithm as :math:`\sigma \to 0`;
    - on :math:`u > 0` the factor :math:`e^{b^2}`, :math:`b = (\theta - \mu)/\sigma`, is
      taken out analytically and the integral is accumulated as a logarithm, so rates
      down to far below 1e-100 Hz are exact to quadrature precision (rates whose
      inverse would overflow return 0).

    Relative accuracy is about 1e-12 across regimes (checked against 30-digit mpmath
    quadrature in the tests).

    Examples
    --------
    >>> r = siegert_rate(mu=15e-3, sigma=5e-3, tau_m=20e-3, v_th=20e-3, v_reset=10e-3,
    ...                  t_ref=2e-3)
    >>> round(float(r), 4)
    9.4608
    """
    tau_m, v_th, v_reset, t_ref = _check_lif(tau_m, v_th, v_reset, t_ref)
    mu_arr = _finite_array("mu", mu)
    sigma_arr = _finite_array("sigma", sigma)
    if (sigma_arr < 0.0).any():
        raise ValueError(f"sigma must be >= 0, got {float(sigma_arr[sigma_arr < 0.0].flat[0])!r}")
    mu_b, sigma_b = np.broadcast_arrays(mu_arr, sigma_arr)
    out = np.empty(mu_b.shape)
    for idx in np.ndindex(out.shape):
        out[idx] = _siegert_scalar(float(mu_b[idx]), float(sigma_b[idx]), tau_m, v_th,
                                   v_reset, t_ref)
    if out.ndim == 0:
        return float(out)
    return out


# --------------------------------------------------------------------------------------
# diffusion limit of Poisson input
# --------------------------------------------------------------------------------------
def diffusion_params(rate, weight, tau_m, e_l=0.0):
    r"""Mean drive and noise amplitude of Poisson input(s) in the diffusion limit.

    A LIF neuron :math:`\tau_m \dot V = e_l - V + \tau_m \sum_i h_i \sum_k
    \delta(t - t^i_k)` receiving independent Poisson trains of rates :math:`s_i` with jumps
    :math:`h_i` is approximated (Brunel & Hakim 1999; Brunel 2000) by
    :math:`\tau_m \dot V = -V + \mu + \sigma \sqrt{\tau_m}\,\xi(t)` with

    .. math::

        \mu = e_l + \tau_m \sum_i s_i h_i, \qquad \sigma^2 = \tau_m \sum_i s_i h_i^2 .

    Parameters
    ----------
    rate : float or array_like
        Poisson rate(s) :math:`s_i` (Hz), >= 0. Several inputs: a sequence.
    weight : float or array_like
        Jump size(s) :math:`h_i` (V), broadcast against ``rate``.
    tau_m : float
        Membrane time constant (s), > 0.
    e_l : float, default 0.0
        Leak reversal potential (V).

    Returns
    -------
    mu, sigma : float
        In volts, the arguments of :func:`siegert_rate`.

    Examples
    --------
    >>> mu, sigma = diffusion_params([8000.0, 2000.0], [0.1e-3, -0.5e-3], tau_m=20e-3)
    >>> round(mu * 1e3, 6), round(sigma * 1e3, 6)
    (-4.0, 3.405877)
    """
    tau_m = check_positive("tau_m", tau_m)
    e_l = as_real("e_l", e_l)
    s = _finite_array("rate", rate)
    h = _finite_array("weight", weight)
    if (s < 0.0).any():
        raise ValueError(f"rate must be >= 0, got {float(s[s < 0.0].flat[0])!r}")
    s, h = np.broadcast_arrays(s, h)
    mu = e_l + tau_m * float(np.sum(s * h))
    sigma = math.sqrt(tau_m * float(np.sum(s * h * h)))
    return mu, sigma


# --------------------------------------------------------------------------------------
# Richardson's threshold integration
# --------------------------------------------------------------------------------------
class StationaryState(NamedTuple):
    """Result of :func:`threshold_integration` (unpacks as ``rate, v, density``)."""

    rate: float
    """Stationary firing rate (Hz)."""
    v: np.ndarray
    """Grid nodes (V), increasing, from the lower bound to ``v_th``; ``v_reset`` is a node."""
    density: np.ndarray
    """Stationary density of non-refractory neurons at the nodes (1/V); its integral
    ``dv * density.sum()`` is ``1 - rate * t_ref``."""


def threshold_integration(mu, sigma, tau_m, v_th, v_reset, t_ref=0.0, v_lower=None,
                          num_cells=1000):
    r"""Stationary rate and density of the white-noise LIF by threshold integration.

    Richardson's (2007) method integrates the stationary Fokker-Planck equation from the
    threshold downward. For the model of :func:`siegert_rate` the probability flux is

    .. math::

        J = \frac{\mu - V}{\tau_m} P - \frac{\sigma^2}{2\tau_m} \frac{dP}{dV},

    so, with :math:`P` the density per unit rate,
    :math:`-dP/dV = H(V) P + (2\tau_m/\sigma^2) J` and :math:`H(V) = 2(V - \mu)/\sigma^2`.
    (Richardson writes the noise as :math:`\sigma_R\sqrt{2\tau_m}\xi`, i.e.
    :math:`\sigma_R^2 = \sigma^2/2`.) On nodes :math:`V_0 < \dots < V_n = \theta` with
    spacing :math:`\Delta` and :math:`V_r` on a node, start from :math:`P_n = 0`,
    :math:`J = 1` and step down with the exponential integrator (:math:`H_k = H(V_k)`
    frozen on each interval)

    .. math::

        P_{k-1} = P_k e^{\Delta H_k} + \frac{2\tau_m}{\sigma^2} J_k
        \frac{e^{\Delta H_k} - 1}{H_k}
        \qquad \left(\frac{e^{\Delta H_k} - 1}{H_k} \to \Delta \text{ at } H_k = 0\right),

    where :math:`J_k = 1` on intervals above the reset and 0 below (the flux drops by one
    at the reset node, where the spiking neurons re-enter). Then

    .. math::

        r = \frac{1}{\Delta \sum_k P_k + t_\mathrm{ref}}, \qquad P_0(V_k) = r P_k .

    The error is :math:`O(\Delta)` (from freezing :math:`H` on each interval; measured in
    the tests). The reflecting lower bound must lie where the density is negligible.

    Parameters
    ----------
    mu, sigma : float
        Mean drive and noise amplitude (V), as in :func:`siegert_rate`; ``sigma > 0``.
    tau_m, v_th, v_reset, t_ref : float
        LIF parameters (s, V, V, s), as in :func:`siegert_rate`.
    v_lower : float, optional
        Lower end of the grid (V), <= ``v_reset``; rounded down to a whole number of
        cells. Default: ``min(v_reset, mu) - 7 * sigma`` (the density there is below
        ``exp(-49)`` of its peak).
    num_cells : int, default 1000
        Number of grid intervals between ``v_reset`` and ``v_th`` (>= 1); it fixes the
        spacing ``(v_th - v_reset) / num_cells``.

    Returns
    -------
    StationaryState
        ``(rate, v, density)``: rate (Hz), nodes (V), density at the nodes (1/V).

    Examples
    --------
    >>> st = threshold_integration(15e-3, 5e-3, 20e-3, 20e-3, 10e-3, 2e-3,
    ...                            num_cells=20000)
    >>> abs(st.rate / siegert_rate(15e-3, 5e-3, 20e-3, 20e-3, 10e-3, 2e-3) - 1) < 1e-3
    True
    """
    tau_m, v_th, v_reset, t_ref = _check_lif(tau_m, v_th, v_reset, t_ref)
    mu = as_real("mu", mu)
    sigma = check_positive("sigma", sigma)
    num_cells = check_int("num_cells", num_cells, 1)
    if v_lower is None:
        v_lower = min(v_reset, mu) - 7.0 * sigma
    v_lower = as_real("v_lower", v_lower)
    if v_lower > v_reset:
        raise ValueError(f"v_lower must be <= v_reset={v_reset!r}, got {v_lower!r}")
    v, k_reset = _ti_grid(v_th, v_reset, v_lower, num_cells, "threshold_integration")
    var = 0.5 * sigma * sigma  # Richardson's sigma_R^2
    return _integrate_down(v, (v - mu) / var, tau_m / var, k_reset, t_ref)


def threshold_integration_1d(drift, sigma, tau, v_th, v_reset, v_lower, t_ref=0.0,
                             num_cells=1000):
    r"""Stationary rate and density of any 1D integrate-and-fire model with white noise.

    The model is

    .. math::

        \tau \frac{dV}{dt} = F(V) + \sigma \sqrt{\tau}\,\xi(t),

    with an arbitrary drift :math:`F` (volts; Richardson's :math:`-(V - \mu) + \psi(V)`),
    absorbing threshold :math:`\theta` (for the EIF or QIF: the cut-off where the potential
    diverges), reset :math:`V_r` and refractory period. The stationary flux

    .. math::

        J = \frac{F(V)}{\tau} P - \frac{\sigma^2}{2\tau}\frac{dP}{dV}
        \quad\Longrightarrow\quad
        -\frac{dP}{dV} = H(V) P + \frac{2\tau}{\sigma^2} J,
        \qquad H(V) = -\frac{2 F(V)}{\sigma^2},

    is integrated from :math:`P(\theta) = 0`, :math:`J = 1` downward exactly as in
    :func:`threshold_integration` (which is the case :math:`F = \mu - V`), with :math:`H`
    frozen on each interval:
    :math:`P_{k-1} = P_k e^{\Delta H_k} + \frac{2\tau}{\sigma^2} J_k (e^{\Delta H_k} - 1)/H_k`,
    :math:`J` dropping from 1 to 0 at the reset node, and
    :math:`r = 1 / (\Delta \sum_k P_k + t_\mathrm{ref})`. The error is :math:`O(\Delta)`
    (measured in the tests). A steep drift near a cut-off (:math:`\Delta H \to -\infty`)
    is handled exactly by the exponential integrator.

    Parameters
    ----------
    drift : callable
        ``drift(v) -> array``: :math:`F(V)` in volts, vectorised over a float array of
        nodes; must be finite on ``[v_lower, v_th]``.
    sigma : float
        Noise amplitude (V), > 0 (free-LIF standard deviation ``sigma / sqrt(2)``).
    tau : float
        Time constant (s), > 0.
    v_th : float
        Threshold or cut-off (V).
    v_reset : float
        Reset (V), < ``v_th``.
    v_lower : float
        Reflecting lower end of the grid (V), <= ``v_reset``, rounded down to whole
        cells; must lie where the density is negligible (there is no model-free default).
    t_ref : float, default 0.0
        Refractory period (s), >= 0.
    num_cells : int, default 1000
        Intervals between ``v_reset`` and ``v_th``; the spacing is
        ``(v_th - v_reset) / num_cells``.

    Returns
    -------
    StationaryState
        ``(rate, v, density)``: rate (Hz), nodes (V), density of non-refractory neurons
        at the nodes (1/V).

    Examples
    --------
    Exponential integrate-and-fire (Fourcaud-Trocme et al. 2003):

    >>> import numpy as np
    >>> def eif(v, mu=-55e-3, v_t=-50e-3, delta_t=3.5e-3):
    ...     return -(v - mu) + delta_t * np.exp((v - v_t) / delta_t)
    >>> st = threshold_integration_1d(eif, 5e-3, 20e-3, v_th=-30e-3, v_reset=-60e-3,
    ...                               v_lower=-100e-3, t_ref=2e-3, num_cells=20000)
    >>> round(st.rate, 4)
    4.1526
    """
    if not callable(drift):
        raise TypeError(f"drift must be a callable F(v), got {drift!r}")
    tau, v_th, v_reset, t_ref = _check_lif(tau, v_th, v_reset, t_ref)
    sigma = check_positive("sigma", sigma)
    num_cells = check_int("num_cells", num_cells, 1)
    v_lower = as_real("v_lower", v_lower)
    if v_lower > v_reset:
        raise ValueError(f"v_lower must be <= v_reset={v_reset!r}, got {v_lower!r}")
    v, k_reset = _ti_grid(v_th, v_reset, v_lower, num_cells, "threshold_integration_1d")
    with np.errstate(over="ignore", invalid="ignore"):
        f = np.asarray(drift(v.copy()), dtype=float)
    if f.shape != v.shape:
        f = np.broadcast_to(f, v.shape) if f.ndim == 0 else f
    if f.shape != v.shape:
        raise ValueError(f"drift(v) must return an array of the nodes' shape {v.shape}, "
                         f"got shape {f.shape}")
    bad = ~np.isfinite(f)
    if bad.any():
        raise ValueError(f"drift is not finite at v={float(v[bad][0])!r}: "
                         f"{float(f[bad][0])!r}; lower v_th (the cut-off) or raise v_lower")
    var = 0.5 * sigma * sigma
    return _integrate_down(v, -f / var, tau / var, k_reset, t_ref)


def _ti_grid(v_th: float, v_reset: float, v_lower: float, num_cells: int, caller: str):
    """Nodes from ``v_lower`` (rounded down to whole cells) to ``v_th`` with ``v_reset`` on
    a node; returns ``(v, k_reset)``."""
    dv = (v_th - v_reset) / num_cells
    n_below = math.ceil((v_reset - v_lower) / dv - 1e-9)
    n = n_below + num_cells
    if n > _MAX_NODES:
        raise ValueError(f"{caller}: the grid from v_lower={v_lower!r} to "
                         f"v_th={v_th!r} with num_cells={num_cells} would have {n} nodes "
                         f"(> {_MAX_NODES}); raise v_lower or lower num_cells")
    v = v_th - dv * np.arange(n, -1, -1, dtype=float)
    v[n_below] = v_reset
    return v, n_below


def _integrate_down(v: np.ndarray, h: np.ndarray, source_scale: float, k_reset: int,
                    t_ref: float) -> StationaryState:
    r"""Richardson's downward sweep :math:`P_{k-1} = P_k e^{\Delta H_k} + s J_k
    (e^{\Delta H_k} - 1)/H_k` from :math:`P_n = 0`, with :math:`J = 1` above the reset
    node and 0 below; ``source_scale`` is :math:`s = 2\tau/\sigma^2`."""
    n = v.size - 1
    dv = float(v[-1] - v[0]) / n
    x = dv * h
    # overflow (a density growing beyond 1e308) is reported after the sweep
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        growth = np.exp(x)
        # (e^{dv H} - 1) / H, with its limit dv at H = 0
        phi = np.where(x != 0.0, np.expm1(x) / np.where(h != 0.0, h, 1.0), dv)
    source = source_scale * phi

    p = [0.0] * (n + 1)
    growth_l, source_l = growth.tolist(), source.tolist()
    pk = 0.0
    for k in range(n, k_reset, -1):  # above the reset: J = 1
        pk = pk * growth_l[k] + source_l[k]
        p[k - 1] = pk
    for k in range(k_reset, 0, -1):  # below the reset: J = 0
        pk = pk * growth_l[k]
        p[k - 1] = pk
    p = np.array(p)
    if not np.isfinite(p).all():
        raise ValueError("threshold integration overflowed: the density grows by more than "
                         "1e308 below the threshold; raise v_lower or check the drift's sign")
    rate = 1.0 / (dv * float(p.sum()) + t_ref)
    return StationaryState(rate, v, rate * p)


# --------------------------------------------------------------------------------------
# convergence helpers
# --------------------------------------------------------------------------------------
def _sorted_pairs(values, h, min_len: int) -> tuple[np.ndarray, np.ndarray]:
    vals = _finite_array("values", values).ravel()
    hs = _finite_array("h", h).ravel()
    if vals.size != hs.size:
        raise ValueError(f"values and h must have the same length, got {vals.size} "
                         f"and {hs.size}")
    if vals.size < min_len:
        raise ValueError(f"need at least {min_len} values, got {vals.size}")
    if (hs <= 0.0).any():
        raise ValueError(f"h must be > 0, got {float(hs[hs <= 0.0][0])!r}")
    order = np.argsort(-hs)  # coarse to fine
    hs, vals = hs[order], vals[order]
    if (np.diff(hs) == 0.0).any():
        raise ValueError(f"h values must be distinct, got {hs.tolist()}")
    return vals, hs


def richardson_extrapolate(values, h, order):
    r"""Extrapolate values computed at step sizes ``h`` to ``h = 0``.

    Fits :math:`v(h) = a + \sum_{j=0}^{m-2} b_j h^{p + j}` exactly through the
    :math:`m` given points (generalised Richardson extrapolation, eliminating the error
    terms of orders :math:`p, p+1, \dots`) and returns :math:`a`. With two values this is
    :math:`a = (h_1^p v_2 - h_2^p v_1) / (h_1^p - h_2^p)`. Exact for any
    :math:`v = a + b h^p`.

    Parameters
    ----------
    values : array_like
        Computed values, one per step size (>= 2).
    h : array_like
        Distinct positive step sizes, same length, any order.
    order : float
        Assumed leading error order :math:`p` (> 0).

    Returns
    -------
    float
        The extrapolated value :math:`a`.
    """
    p = check_positive("order", order)
    vals, hs = _sorted_pairs(values, h, 2)
    x = hs / hs[0]  # scaled for conditioning
    cols = [np.ones_like(x)] + [x ** (p + j) for j in range(vals.size - 1)]
    return float(np.linalg.solve(np.column_stack(cols), vals)[0])


def convergence_order(values_at_h, h_values):
    r"""Observed convergence order from three successive refinements.

    Assuming :math:`v(h) = a + b h^p`, the three finest values :math:`v_1, v_2, v_3` at
    :math:`h_1 > h_2 > h_3` determine :math:`p` through

    .. math::

        \frac{v_1 - v_2}{v_2 - v_3} = \frac{h_1^p - h_2^p}{h_2^p - h_3^p},

    which for a constant refinement ratio :math:`q = h_1/h_2 = h_2/h_3` (e.g. halving,
    :math:`q = 2`) is :math:`p = \log_q\left[(v_1 - v_2)/(v_2 - v_3)\right]`; otherwise it
    is solved for :math:`p` numerically.

    Parameters
    ----------
    values_at_h : array_like
        Computed values (>= 3); only the three with the smallest ``h`` are used.
    h_values : array_like
        Distinct positive step sizes, same length, any order.

    Returns
    -------
    float
        Observed order :math:`p`.

    Raises
    ------
    ValueError
        If the differences are zero or change sign (not in the asymptotic range).
    """
    vals, hs = _sorted_pairs(values_at_h, h_values, 3)
    (v1, v2, v3), (h1, h2, h3) = vals[-3:], hs[-3:]
    d12, d23 = v1 - v2, v2 - v3
    if d12 == 0.0 or d23 == 0.0 or (d12 > 0.0) != (d23 > 0.0):
        raise ValueError(f"successive differences {d12!r}, {d23!r} are zero or change "
                         f"sign: values {vals[-3:].tolist()} are not in the asymptotic range")
    ratio = d12 / d23
    q1, q2 = h1 / h2, h2 / h3
    if math.isclose(q1, q2, rel_tol=1e-12):
        return math.log(ratio) / math.log(q1)

    def mismatch(p):  # (h1^p - h2^p)/(h2^p - h3^p) in ratios of h, minus the data ratio
        return math.log((q1 ** p - 1.0) / (1.0 - q2 ** -p)) - math.log(ratio)

    lo, hi = 1e-6, 1.0
    while mismatch(hi) < 0.0 and hi < 64.0:
        hi *= 2.0
    if mismatch(lo) > 0.0 or mismatch(hi) < 0.0:
        raise ValueError(f"no order p in [1e-6, 64] explains the values {vals[-3:].tolist()}")
    return optimize.brentq(mismatch, lo, hi, xtol=1e-14)


# --------------------------------------------------------------------------------------
# Brunel (2000) model A mean field
# --------------------------------------------------------------------------------------
def brunel_threshold_rate(j=0.1e-3, c_e=1000, tau_m=20e-3, v_th=20e-3):
    r"""External rate per synapse that brings the mean input to threshold (Brunel 2000).

    .. math:: \nu_\mathrm{thr} = \frac{\theta}{J C_E \tau}.

    Defaults are model A's (gives 10 Hz). ``eta = nu_ext / nu_thr``.
    """
    return (check_positive("v_th", v_th)
            / (check_positive("j", j) * check_positive("c_e", c_e)
               * check_positive("tau_m", tau_m)))


def brunel_mean_field_rate(nu_ext, g, c_e=1000, gamma=0.25, j=0.1e-3, tau_m=20e-3,
                           v_th=20e-3, v_reset=10e-3, t_ref=2e-3, return_all=False):
    r"""Self-consistent stationary rate of Brunel's (2000) sparse E-I network, model A.

    Every neuron receives :math:`C_E` excitatory synapses (weight :math:`J`) from the
    network and :math:`C_E` from external Poisson sources at ``nu_ext`` each, and
    :math:`C_I = \gamma C_E` inhibitory synapses (weight :math:`-gJ`). In the diffusion
    approximation (Brunel 2000, eqs. 4-5, 21)

    .. math::

        \mu(\nu) = C_E J \tau\,[\nu_\mathrm{ext} + \nu (1 - g\gamma)], \qquad
        \sigma^2(\nu) = J^2 C_E \tau\,[\nu_\mathrm{ext} + \nu (1 + g^2\gamma)],

    and the stationary rate solves :math:`\nu = \phi(\nu)`, :math:`\phi` the Siegert rate
    (:func:`siegert_rate`) at :math:`\mu(\nu), \sigma(\nu)`.

    Roots of :math:`f(\nu) = \nu - \phi(\nu)` are bracketed by scanning
    :math:`[0, 1/t_\mathrm{ref})` (beyond which :math:`f > 0`; with ``t_ref = 0`` the
    bracket is grown up to 1e7 Hz) and refined with Brent's method. A root with
    :math:`f' > 0` (i.e. :math:`\phi' < 1`) is a stable fixed point of the mean-field
    dynamics :math:`\tau\dot\nu = -\nu + \phi(\nu)`.

    Parameters
    ----------
    nu_ext : float
        External Poisson rate per synapse (Hz), >= 0; ``eta * brunel_threshold_rate()``.
    g : float
        Relative inhibitory strength, >= 0.
    c_e : float, default 1000
        Excitatory in-degree (network and external each).
    gamma : float, default 0.25
        :math:`C_I / C_E`, >= 0.
    j : float, default 0.1e-3
        Excitatory jump (V), > 0.
    tau_m, v_th, v_reset, t_ref : float
        LIF parameters (s, V, V, s); defaults are model A's (20 ms, 20 mV, 10 mV, 2 ms).
    return_all : bool, default False
        Return every root found (sorted array) instead of the lowest one.

    Returns
    -------
    float or numpy.ndarray
        Self-consistent rate(s) (Hz).

    Examples
    --------
    Model A, asynchronous irregular state (g = 5, eta = 2):

    >>> nu = brunel_mean_field_rate(nu_ext=2 * brunel_threshold_rate(), g=5.0)
    >>> round(nu, 3)
    37.95
    """
    tau_m, v_th, v_reset, t_ref = _check_lif(tau_m, v_th, v_reset, t_ref)
    nu_ext = check_nonnegative("nu_ext", nu_ext)
    g = check_nonnegative("g", g)
    c_e = check_positive("c_e", c_e)
    gamma = check_nonnegative("gamma", gamma)
    j = check_positive("j", j)

    def residual(nu):
        nu = np.asarray(nu, dtype=float)
        mu = c_e * j * tau_m * (nu_ext + nu * (1.0 - g * gamma))
        sigma = j * np.sqrt(c_e * tau_m * (nu_ext + nu * (1.0 + g * g * gamma)))
        return nu - siegert_rate(mu, sigma, tau_m, v_th, v_reset, t_ref)

    if t_ref > 0.0:
        nu_max = (1.0 / t_ref) * (1.0 - 1e-12)
    else:
        nu_max = 1e3
        while residual(nu_max) <= 0.0:
            nu_max *= 2.0
            if nu_max > 1e7:
                raise ValueError(f"no self-consistent rate below 1e7 Hz for nu_ext={nu_ext!r},"
                                 f" g={g!r} (runaway excitation); use t_ref > 0")
    nus = np.concatenate(([0.0], np.geomspace(1e-3, nu_max, 400)))
    nus[-1] = nu_max
    f = residual(nus)
    roots = [float(nu) for nu, fv in zip(nus, f, strict=True) if fv == 0.0]
    for k in np.nonzero(np.sign(f[:-1]) * np.sign(f[1:]) < 0.0)[0]:
        roots.append(optimize.brentq(lambda x: float(residual(x)), nus[k], nus[k + 1],
                                     xtol=1e-13, rtol=1e-13))
    roots = np.unique(roots)
    if roots.size == 0:  # cannot happen: f(0) <= 0 < f(nu_max)
        raise RuntimeError("no self-consistent rate found")
    return roots if return_all else float(roots[0])
