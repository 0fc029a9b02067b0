r"""Transfer functions (input -> rate) for rate units.

Each transfer function is a small callable object: ``f(x)`` evaluates the rate (Hz)
elementwise on a float or array, ``f.derivative(x)`` its slope (Hz per unit of input).
Parameters are validated on construction; errors name the parameter and the value.

- :class:`Sigmoid`: logistic :math:`r_\max / (1 + e^{-g (x - \theta)})`.
- :class:`Tanh`: :math:`\tfrac{r_\max}{2} [1 + \tanh(g (x - \theta))]`.
- :class:`Arctan`: :math:`r_\max [\tfrac12 + \arctan(g (x - \theta)) / \pi]`.
- :class:`ThresholdLinear`: :math:`\min(r_\max, g \max(0, x - \theta))`.
- :class:`Step`: :math:`r_\max H(x - \theta)`.
- :class:`LIFRate`: the noiseless LIF rate for a constant drive.
- :class:`SiegertRate`: the white-noise LIF rate (:func:`popdens.theory.siegert_rate`).

Lower-case constructors (``pd.transfer.sigmoid(max_rate=100.0, gain=2.0, threshold=1.0)``,
``tanh``, ``arctan``, ``threshold_linear`` (alias ``relu``), ``step``, ``lif_rate``,
``siegert``) build the same objects; rate populations
(:meth:`popdens.Network.add_rate_population`) take any of them, or any callable with
the same elementwise behaviour.
"""

from __future__ import annotations

import math

import numpy as np

from ._checks import as_real, check_nonnegative, check_positive
from .theory import siegert_rate

__all__ = ["Sigmoid", "Tanh", "Arctan", "ThresholdLinear", "Step", "LIFRate", "SiegertRate",
           "sigmoid", "tanh", "arctan", "threshold_linear", "relu", "step", "lif_rate",
           "siegert"]


def _input(x) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"x must be a real number or array, got {x!r}") from exc
    if np.isnan(arr).any():
        raise ValueError("x must not contain NaN")
    return arr


def _out(arr: np.ndarray):
    return float(arr) if arr.ndim == 0 else arr


class _Spec:
    """``spec()``: the constructor name and arguments, as a scenario file writes them."""

    kind = ""
    arguments: tuple = ()

    def spec(self) -> dict:
        """``{"kind": constructor name, argument: value, ...}`` (JSON-able)."""
        out = {"kind": self.kind}
        for name in self.arguments:
            value = float(getattr(self, name))
            if math.isfinite(value):   # an infinite saturation is the default: left out
                out[name] = value
        return out


class _Shaped(_Spec):
    """Common parameters: maximum rate (Hz), gain (1/input unit), threshold (input unit)."""

    arguments = ("max_rate", "gain", "threshold")

    def __init__(self, max_rate=1.0, gain=1.0, threshold=0.0):
        self.max_rate = check_positive("max_rate", max_rate)
        self.gain = check_positive("gain", gain)
        self.threshold = as_real("threshold", threshold)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(max_rate={self.max_rate!r}, gain={self.gain!r}, "
                f"threshold={self.threshold!r})")


class Sigmoid(_Shaped):
    r"""Logistic transfer function.

    .. math:: f(x) = \frac{r_\max}{1 + e^{-g (x - \theta)}}, \qquad
              f'(x) = g\,f(x)\,[1 - f(x)/r_\max].

    Parameters
    ----------
    max_rate : float, default 1.0
        Saturation rate :math:`r_\max` (Hz), > 0.
    gain : float, default 1.0
        Slope parameter :math:`g` (1/input unit), > 0; the slope at threshold is
        :math:`g r_\max / 4`.
    threshold : float, default 0.0
        Half-activation input :math:`\theta`.
    """

    kind = "sigmoid"

    def _z(self, x):
        return self.gain * (_input(x) - self.threshold)

    def __call__(self, x):
        z = self._z(x)
        # 0.5 (1 + tanh(z/2)) is the logistic function without exp overflow
        return _out(self.max_rate * 0.5 * (1.0 + np.tanh(0.5 * z)))

    def derivative(self, x):
        z = self._z(x)
        return _out(self.max_rate * self.gain * 0.25 / np.cosh(0.5 * z) ** 2)


class Tanh(_Shaped):
    r"""Hyperbolic-tangent transfer function, shifted to rates in :math:`[0, r_\max]`.

    .. math:: f(x) = \frac{r_\max}{2}\left[1 + \tanh(g (x - \theta))\right], \qquad
              f'(x) = \frac{r_\max g}{2\cosh^2(g (x - \theta))}.

    Parameters as in :class:`Sigmoid` (slope at threshold :math:`g r_\max / 2`).
    """

    kind = "tanh"

    def __call__(self, x):
        return _out(0.5 * self.max_rate * (1.0 + np.tanh(self.gain * (_input(x) - self.threshold))))

    def derivative(self, x):
        z = self.gain * (_input(x) - self.threshold)
        return _out(0.5 * self.max_rate * self.gain / np.cosh(z) ** 2)


class Arctan(_Shaped):
    r"""Arctangent transfer function.

    .. math:: f(x) = r_\max\left[\frac12 + \frac{\arctan(g (x - \theta))}{\pi}\right],
              \qquad f'(x) = \frac{r_\max g}{\pi [1 + g^2 (x - \theta)^2]}.

    Parameters as in :class:`Sigmoid` (slope at threshold :math:`g r_\max / \pi`).
    """

    kind = "arctan"

    def __call__(self, x):
        z = self.gain * (_input(x) - self.threshold)
        return _out(self.max_rate * (0.5 + np.arctan(z) / math.pi))

    def derivative(self, x):
        z = self.gain * (_input(x) - self.threshold)
        return _out(self.max_rate * self.gain / (math.pi * (1.0 + z * z)))


class ThresholdLinear(_Spec):
    r"""Threshold-linear (rectified linear) transfer function with saturation.

    .. math:: f(x) = \min\left(r_\max,\ g \max(0, x - \theta)\right).

    The derivative is :math:`g` on :math:`\theta < x < \theta + r_\max / g` and 0 elsewhere
    (the one-sided kinks take the value 0).

    Parameters
    ----------
    gain : float, default 1.0
        Slope :math:`g` (Hz per input unit), > 0.
    threshold : float, default 0.0
        Input :math:`\theta` below which the rate is 0.
    max_rate : float, default inf
        Saturation rate (Hz), > 0; ``inf`` for a plain ReLU.
    """

    kind = "threshold_linear"
    arguments = ('gain', 'threshold', 'max_rate')

    def __init__(self, gain=1.0, threshold=0.0, max_rate=math.inf):
        self.gain = check_positive("gain", gain)
        self.threshold = as_real("threshold", threshold)
        if isinstance(max_rate, float) and max_rate == math.inf:
            self.max_rate = math.inf
        else:
            self.max_rate = check_positive("max_rate", max_rate)

    def __repr__(self) -> str:
        return (f"ThresholdLinear(gain={self.gain!r}, threshold={self.threshold!r}, "
                f"max_rate={self.max_rate!r})")

    def __call__(self, x):
        lin = self.gain * np.maximum(_input(x) - self.threshold, 0.0)
        return _out(np.minimum(lin, self.max_rate))

    def derivative(self, x):
        x = _input(x)
        lin = self.gain * (x - self.threshold)
        inside = (lin > 0.0) & (lin < self.max_rate)
        return _out(np.where(inside, self.gain, 0.0))


class Step(_Spec):
    r"""Heaviside step: :math:`f(x) = r_\max` for :math:`x > \theta`, else 0.

    The derivative is 0 everywhere except at :math:`\theta`, where it is reported as 0
    too (the delta function has no finite value).

    Parameters
    ----------
    max_rate : float, default 1.0
        Rate above threshold (Hz), > 0.
    threshold : float, default 0.0
        Step position.
    """

    kind = "step"
    arguments = ('max_rate', 'threshold')

    def __init__(self, max_rate=1.0, threshold=0.0):
        self.max_rate = check_positive("max_rate", max_rate)
        self.threshold = as_real("threshold", threshold)

    def __repr__(self) -> str:
        return f"Step(max_rate={self.max_rate!r}, threshold={self.threshold!r})"

    def __call__(self, x):
        return _out(np.where(_input(x) > self.threshold, self.max_rate, 0.0))

    def derivative(self, x):
        return _out(np.zeros_like(_input(x)))


class LIFRate(_Spec):
    r"""Noiseless LIF rate for a constant drive :math:`v_\mathrm{in}` (the free membrane
    potential's fixed point, measured from reset = 0).

    .. math::

        G(v_\mathrm{in}) = \frac{1}{t_\mathrm{ref} - \tau \ln(1 - \theta / v_\mathrm{in})}
        \quad (v_\mathrm{in} > \theta), \qquad 0 \text{ otherwise},

    the rate of :math:`\tau \dot v = -v + v_\mathrm{in}` started at 0 with threshold
    :math:`\theta > 0`. Its derivative,

    .. math:: G'(v_\mathrm{in}) = \frac{G^2 \tau \theta}{v_\mathrm{in}(v_\mathrm{in} - \theta)},

    diverges as :math:`v_\mathrm{in} \to \theta^+` (like
    :math:`1/[(v_\mathrm{in} - \theta)\ln^2(v_\mathrm{in} - \theta)]`) and is 0 below
    threshold.

    Parameters
    ----------
    tau : float
        Membrane time constant (s), > 0.
    v_th : float
        Threshold relative to reset (V), > 0.
    t_ref : float, default 0.0
        Refractory period (s), >= 0.
    """

    kind = "lif_rate"
    arguments = ('tau', 'v_th', 't_ref')

    def __init__(self, tau, v_th, t_ref=0.0):
        self.tau = check_positive("tau", tau)
        self.v_th = check_positive("v_th", v_th)
        self.t_ref = check_nonnegative("t_ref", t_ref)

    def __repr__(self) -> str:
        return f"LIFRate(tau={self.tau!r}, v_th={self.v_th!r}, t_ref={self.t_ref!r})"

    def _parts(self, x):
        v_in = _input(x)
        above = v_in > self.v_th
        safe = np.where(above, v_in, 2.0 * self.v_th)  # keeps the log finite off the branch
        rate = np.where(above, 1.0 / (self.t_ref - self.tau * np.log1p(-self.v_th / safe)), 0.0)
        return v_in, above, safe, rate

    def __call__(self, x):
        return _out(self._parts(x)[3])

    def derivative(self, x):
        _, above, safe, rate = self._parts(x)
        slope = rate * rate * self.tau * self.v_th / (safe * (safe - self.v_th))
        return _out(np.where(above, slope, 0.0))


class SiegertRate(_Spec):
    r"""White-noise LIF rate as a function of the mean drive :math:`\mu` at fixed noise.

    :math:`f(\mu) = ` :func:`popdens.theory.siegert_rate` ``(mu, sigma, tau_m, v_th,
    v_reset, t_ref)``. The derivative is a central finite difference with step
    :math:`10^{-4}\sigma` (relative error about :math:`10^{-8}`, from the step's square
    and the Siegert formula's 1e-12 precision).

    Parameters
    ----------
    sigma : float
        Noise amplitude (V), > 0.
    tau_m, v_th, v_reset, t_ref : float
        As in :func:`popdens.theory.siegert_rate`.
    """

    kind = "siegert"
    arguments = ('sigma', 'tau_m', 'v_th', 'v_reset', 't_ref')

    def __init__(self, sigma, tau_m, v_th, v_reset, t_ref=0.0):
        self.sigma = check_positive("sigma", sigma)
        siegert_rate(v_th, self.sigma, tau_m, v_th, v_reset, t_ref)  # validates the rest
        self.tau_m, self.v_th, self.v_reset = float(tau_m), float(v_th), float(v_reset)
        self.t_ref = float(t_ref)

    def __repr__(self) -> str:
        return (f"SiegertRate(sigma={self.sigma!r}, tau_m={self.tau_m!r}, v_th={self.v_th!r}, "
                f"v_reset={self.v_reset!r}, t_ref={self.t_ref!r})")

    def _rate(self, mu):
        return siegert_rate(mu, self.sigma, self.tau_m, self.v_th, self.v_reset, self.t_ref)

    def __call__(self, x):
        return self._rate(_input(x))

    def derivative(self, x):
        mu = _input(x)
        h = 1e-4 * self.sigma
        return (self._rate(mu + h) - self._rate(mu - h)) / (2.0 * h)


def sigmoid(max_rate=1.0, gain=1.0, threshold=0.0) -> Sigmoid:
    """Logistic transfer function (:class:`Sigmoid`)."""
    return Sigmoid(max_rate, gain, threshold)


def tanh(max_rate=1.0, gain=1.0, threshold=0.0) -> Tanh:
    """Shifted hyperbolic tangent (:class:`Tanh`)."""
    return Tanh(max_rate, gain, threshold)


def arctan(max_rate=1.0, gain=1.0, threshold=0.0) -> Arctan:
    """Arctangent (:class:`Arctan`)."""
    return Arctan(max_rate, gain, threshold)


def threshold_linear(gain=1.0, threshold=0.0, max_rate=math.inf) -> ThresholdLinear:
    """Threshold-linear with saturation (:class:`ThresholdLinear`)."""
    return ThresholdLinear(gain, threshold, max_rate)


relu = threshold_linear


def step(max_rate=1.0, threshold=0.0) -> Step:
    """Heaviside step (:class:`Step`)."""
    return Step(max_rate, threshold)


def lif_rate(tau, v_th, t_ref=0.0) -> LIFRate:
    """Noiseless LIF rate curve (:class:`LIFRate`)."""
    return LIFRate(tau, v_th, t_ref)


def siegert(sigma, tau_m, v_th, v_reset, t_ref=0.0) -> SiegertRate:
    """White-noise LIF rate as a function of the mean drive (:class:`SiegertRate`)."""
    return SiegertRate(sigma, tau_m, v_th, v_reset, t_ref)
