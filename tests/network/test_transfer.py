"""Transfer functions: values, limits, derivatives (against finite differences), errors."""

import math

import numpy as np
import pytest

from popdens.theory import siegert_rate
from popdens.transfer import (
    Arctan,
    LIFRate,
    SiegertRate,
    Sigmoid,
    Step,
    Tanh,
    ThresholdLinear,
)

SMOOTH = [Sigmoid(50.0, 2.0, 1.0), Tanh(50.0, 2.0, 1.0), Arctan(50.0, 2.0, 1.0)]


def _central_difference(f, x, h):
    return (np.asarray(f(x + h)) - np.asarray(f(x - h))) / (2.0 * h)


@pytest.mark.parametrize("f", SMOOTH, ids=repr)
def test_smooth_limits_and_midpoint(f):
    assert f(1.0) == pytest.approx(25.0, rel=1e-15)  # half of max_rate at threshold
    assert f(1e6) == pytest.approx(50.0, rel=1e-5)  # arctan approaches r_max like 1/(pi g x)
    # approaches 0 like r_max / (pi g x), as above: 1e-5 of max_rate
    assert f(-1e6) == pytest.approx(0.0, abs=1e-5 * 50.0)
    x = np.linspace(-3.0, 5.0, 41)
    assert np.all(np.diff(f(x)) > 0.0)


@pytest.mark.parametrize("f", SMOOTH, ids=repr)
def test_smooth_derivative_matches_finite_difference(f):
    x = np.linspace(-3.0, 5.0, 41)
    # central difference error ~ h^2 f''' / 6 ~ 1e-10 relative at h = 1e-5
    assert np.allclose(f.derivative(x), _central_difference(f, x, 1e-5), rtol=1e-7, atol=1e-9)


def test_slopes_at_threshold():
    # closed-form derivatives at 0: round-off
    assert Sigmoid(50.0, 2.0).derivative(0.0) == pytest.approx(2.0 * 50.0 / 4.0, rel=1e-15)
    assert Tanh(50.0, 2.0).derivative(0.0) == pytest.approx(2.0 * 50.0 / 2.0, rel=1e-15)
    assert Arctan(50.0, 2.0).derivative(0.0) == pytest.approx(2.0 * 50.0 / math.pi, rel=1e-15)


def test_sigmoid_no_overflow():
    with np.errstate(all="raise"):
        assert Sigmoid(10.0, 1.0)(np.array([-1e4, 1e4])).tolist() == [0.0, 10.0]


def test_threshold_linear_and_step():
    relu = ThresholdLinear(gain=2.0, threshold=1.0, max_rate=10.0)
    x = np.array([0.0, 1.0, 2.0, 6.0, 7.0])
    assert relu(x).tolist() == [0.0, 0.0, 2.0, 10.0, 10.0]
    assert relu.derivative(np.array([0.5, 2.0, 6.5])).tolist() == [0.0, 2.0, 0.0]
    assert ThresholdLinear()(1e9) == 1e9  # no saturation by default
    step = Step(5.0, 1.0)
    assert step(np.array([0.0, 1.0, 1.5])).tolist() == [0.0, 0.0, 5.0]
    assert step.derivative(np.array([0.0, 2.0])).tolist() == [0.0, 0.0]


def test_lif_rate_values_and_derivative():
    g = LIFRate(tau=20e-3, v_th=20e-3, t_ref=2e-3)
    assert g(20e-3) == 0.0 and g(-1.0) == 0.0
    # v_in = 2 theta: T = t_ref + tau ln 2
    assert g(40e-3) == pytest.approx(1.0 / (2e-3 + 20e-3 * math.log(2.0)), rel=1e-14)
    assert g(1e6) == pytest.approx(1.0 / 2e-3, rel=1e-6)  # saturates at 1/t_ref
    # equals the sigma = 0 Siegert rate (drive mu with reset 0)
    assert g(30e-3) == pytest.approx(siegert_rate(30e-3, 0.0, 20e-3, 20e-3, 0.0, 2e-3),
                                     rel=1e-14)
    v = np.linspace(21e-3, 80e-3, 30)
    # relative step 1e-7 of a smooth function: error ~1e-12 relative
    assert np.allclose(g.derivative(v), _central_difference(g, v, 1e-9), rtol=1e-5)
    assert g.derivative(10e-3) == 0.0


def test_siegert_rate_transfer():
    f = SiegertRate(sigma=5e-3, tau_m=20e-3, v_th=20e-3, v_reset=10e-3, t_ref=2e-3)
    mu = np.array([5e-3, 15e-3, 25e-3])
    assert np.array_equal(f(mu), siegert_rate(mu, 5e-3, 20e-3, 20e-3, 10e-3, 2e-3))
    assert f(15e-3) == pytest.approx(9.4608, abs=1e-4)  # the siegert_rate docstring value
    # an independent, coarser central difference (h = 1e-6 V): error ~1e-5 relative
    d = _central_difference(f, mu, 1e-6)
    assert np.allclose(f.derivative(mu), d, rtol=1e-5)
    assert np.all(f.derivative(mu) > 0.0)


@pytest.mark.parametrize("make, name", [
    (lambda: Sigmoid(max_rate=-1.0), "max_rate"),
    (lambda: Tanh(gain=0.0), "gain"),
    (lambda: Arctan(threshold=float("nan")), "threshold"),
    (lambda: ThresholdLinear(gain=-2.0), "gain"),
    (lambda: ThresholdLinear(max_rate=0.0), "max_rate"),
    (lambda: Step(max_rate="a"), "max_rate"),
    (lambda: LIFRate(tau=0.0, v_th=1.0), "tau"),
    (lambda: LIFRate(tau=1.0, v_th=-1.0), "v_th"),
    (lambda: LIFRate(tau=1.0, v_th=1.0, t_ref=-1.0), "t_ref"),
    (lambda: SiegertRate(sigma=0.0, tau_m=1.0, v_th=1.0, v_reset=0.0), "sigma"),
    (lambda: SiegertRate(sigma=1.0, tau_m=1.0, v_th=1.0, v_reset=2.0), "v_reset"),
])
def test_bad_transfer_parameters_raise_errors_naming_them(make, name):
    with pytest.raises((ValueError, TypeError), match=name):
        make()


def test_transfer_rejects_non_numeric_and_nan_input():
    with pytest.raises(TypeError, match="x must be"):
        Sigmoid()("abc")
    with pytest.raises(ValueError, match="NaN"):
        Tanh()(np.array([0.0, np.nan]))
