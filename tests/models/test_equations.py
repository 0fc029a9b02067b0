"""popdens.equations: parsing, dimensions, noise split, generated NumPy and numba code,
and hostile text. Drift values are compared with hand-written NumPy formulas."""

import math

import numpy as np
import pytest

from popdens.equations import EquationError, parse_equations

RNG = np.random.default_rng(12345)

EIF_TEXT = """
dv/dt = (-(v - e_l) + delta_t*exp((v - v_t)/delta_t) + mu)/tau + sigma*xi/sqrt(tau) : volt
"""
EIF_PARAMS = dict(e_l=-65e-3, delta_t=3.5e-3, v_t=-50e-3, mu=10e-3, tau=20e-3, sigma=5e-3)
EIF_UNITS = dict(e_l="volt", delta_t="volt", v_t="volt", mu="volt", tau="second",
                 sigma="volt")

ADEX_TEXT = """
# adaptive exponential integrate-and-fire (Brette & Gerstner 2005)
dv/dt = (-i_ion + g_l*delta_t*exp((v - v_t)/delta_t) - w + i_e)/c_m : volt
dw/dt = (a*(v - e_l) - w)/tau_w : amp
i_ion = g_l*(v - e_l) : amp          # named sub-expression
g_l : siemens
c_m : farad
"""
ADEX_PARAMS = dict(g_l=30e-9, c_m=281e-12, e_l=-70.6e-3, v_t=-50.4e-3, delta_t=2e-3,
                   a=4e-9, tau_w=144e-3, i_e=1e-9, b=80.5e-12, v_r=-70.6e-3, v_cut=0.0)
ADEX_UNITS = dict(e_l="volt", v_t="volt", delta_t="volt", a="siemens", tau_w="second",
                  i_e="amp", b="amp", v_r="volt", v_cut="volt")

IZH_TEXT = """
dv/dt = (k*(v - v_r)*(v - v_t) - u + i_in)/c : volt
du/dt = a*(b*(v - v_r) - u) : amp
"""
IZH_PARAMS = dict(k=0.7e-6 / 1e-3, v_r=-60e-3, v_t=-40e-3, i_in=100e-12, c=100e-12,
                  a=30.0, b=-2e-9 / 1e-3, v_peak=35e-3, c_reset=-50e-3, d=100e-12)
IZH_UNITS = dict(k="siemens/volt", v_r="volt", v_t="volt", i_in="amp", c="farad",
                 a="hertz", b="siemens", v_peak="volt", c_reset="volt", d="amp")

HH_TEXT = """
dv/dt = (i_inj - g_na*m**3*h*(v - e_na) - g_k*n**4*(v - e_k) - g_l*(v - e_l))/c_m : volt
dm/dt = alpha_m*(1 - m) - beta_m*m : 1
dh/dt = alpha_h*(1 - h) - beta_h*h : 1
dn/dt = alpha_n*(1 - n) - beta_n*n : 1
alpha_m = 1e5/(volt*second)*(v + 0.04*volt)/(1 - exp(-(v + 0.04*volt)/(0.01*volt))) : hertz
beta_m = 4000/second*exp(-(v + 0.065*volt)/(0.018*volt)) : hertz
alpha_h = 70/second*exp(-(v + 0.065*volt)/(0.02*volt)) : hertz
beta_h = 1000/second/(1 + exp(-(v + 0.035*volt)/(0.01*volt))) : hertz
alpha_n = 1e4/(volt*second)*(v + 0.055*volt)/(1 - exp(-(v + 0.055*volt)/(0.01*volt))) : hertz
beta_n = 125/second*exp(-(v + 0.065*volt)/(0.08*volt)) : hertz
"""
HH_PARAMS = dict(i_inj=0.1e-9, g_na=12e-6, g_k=3.6e-6, g_l=0.03e-6, e_na=50e-3, e_k=-77e-3,
                 e_l=-54.4e-3, c_m=0.1e-9)
HH_UNITS = dict(i_inj="amp", g_na="siemens", g_k="siemens", g_l="siemens", e_na="volt",
                e_k="volt", e_l="volt", c_m="farad")


def eif():
    return parse_equations(EIF_TEXT, EIF_PARAMS, EIF_UNITS, threshold="v > -30e-3*volt",
                           reset="v = -60e-3*volt", refractory=2e-3, require_units=True)


def adex():
    return parse_equations(ADEX_TEXT, ADEX_PARAMS, ADEX_UNITS, threshold="v > v_cut",
                           reset="v = v_r; w += b", require_units=True)


def izhikevich():
    return parse_equations(IZH_TEXT, IZH_PARAMS, IZH_UNITS, threshold="v >= v_peak",
                           reset=["v = c_reset", "u += d"], require_units=True)


def hh():
    return parse_equations(HH_TEXT, HH_PARAMS, HH_UNITS, spike_surface="v crosses 0 upward",
                           require_units=True)


def _hh_rates(v):
    am = 1e5 * (v + 0.04) / (1 - np.exp(-(v + 0.04) / 0.01))
    bm = 4000 * np.exp(-(v + 0.065) / 0.018)
    ah = 70 * np.exp(-(v + 0.065) / 0.02)
    bh = 1000 / (1 + np.exp(-(v + 0.035) / 0.01))
    an = 1e4 * (v + 0.055) / (1 - np.exp(-(v + 0.055) / 0.01))
    bn = 125 * np.exp(-(v + 0.065) / 0.08)
    return am, bm, ah, bh, an, bn


def _reference(name, state):
    """Hand-written drift of each model (SI)."""
    if name == "eif":
        (v,), p = state, EIF_PARAMS
        return ((-(v - p["e_l"]) + p["delta_t"] * np.exp((v - p["v_t"]) / p["delta_t"])
                 + p["mu"]) / p["tau"],)
    if name == "adex":
        (v, w), p = state, ADEX_PARAMS
        dv = (-p["g_l"] * (v - p["e_l"]) + p["g_l"] * p["delta_t"]
              * np.exp((v - p["v_t"]) / p["delta_t"]) - w + p["i_e"]) / p["c_m"]
        return dv, (p["a"] * (v - p["e_l"]) - w) / p["tau_w"]
    if name == "izhikevich":
        (v, u), p = state, IZH_PARAMS
        dv = (p["k"] * (v - p["v_r"]) * (v - p["v_t"]) - u + p["i_in"]) / p["c"]
        return dv, p["a"] * (p["b"] * (v - p["v_r"]) - u)
    (v, m, h, n), p = state, HH_PARAMS
    am, bm, ah, bh, an, bn = _hh_rates(v)
    dv = (p["i_inj"] - p["g_na"] * m ** 3 * h * (v - p["e_na"])
          - p["g_k"] * n ** 4 * (v - p["e_k"]) - p["g_l"] * (v - p["e_l"])) / p["c_m"]
    return dv, am * (1 - m) - bm * m, ah * (1 - h) - bh * h, an * (1 - n) - bn * n


def _states(name, size=200):
    v = RNG.uniform(-80e-3, -31e-3, size)  # avoids the removable 0/0 of alpha_m, alpha_n
    if name == "eif":
        return (v,)
    if name == "adex":
        return v, RNG.uniform(-0.5e-9, 0.5e-9, size)
    if name == "izhikevich":
        return v, RNG.uniform(-100e-12, 100e-12, size)
    return v, *RNG.uniform(0.0, 1.0, (3, size))


MODELS = {"eif": eif, "adex": adex, "izhikevich": izhikevich, "hh": hh}


@pytest.mark.parametrize("name", MODELS)
def test_drift_equals_hand_written_formula(name):
    model = MODELS[name]()
    state = _states(name)
    got, want = model.drift(*state), _reference(name, state)
    assert len(got) == len(want) == len(model.state_names)
    for g, w in zip(got, want, strict=True):
        # same formula, possibly different association of the products: a few ulp
        assert np.allclose(g, w, rtol=1e-12, atol=0.0)


@pytest.mark.parametrize("name", MODELS)
def test_numba_scalar_functions_equal_numpy(name):
    model = MODELS[name]()
    compiled = model.compiled()
    state = _states(name, 50)
    want = model.drift(*state)
    params = model.parameter_values
    for k in range(50):
        got = compiled.drift(*(float(s[k]) for s in state), params)
        for j, g in enumerate(got):
            # libm vs NumPy exp may differ in the last bit
            assert g == pytest.approx(want[j][k], rel=1e-13, abs=0.0)
    assert model.compiled() is compiled  # in-process cache keyed by the hash


def test_structure_of_parsed_models():
    m = adex()
    assert m.state_names == ("v", "w")
    assert m.state_units == {"v": "volt", "w": "amp"}
    assert m.subexpressions == {"i_ion": "g_l * (v - e_l)"}
    assert m.noise_kind == {"v": "none", "w": "none"} and m.noise_names == ()
    assert m.threshold == "v > v_cut" and m.reset == "v = v_r; w += b"
    assert m.unchecked == () and m.parameter_units["g_l"] == "siemens"
    assert "def drift(s_v, s_w, params):" in m.generated_source
    h = hh()
    assert h.state_names == ("v", "m", "h", "n")
    f = parse_equations("dv/dt = -v/tau : volt (unless refractory)", dict(tau=1.0))
    assert f.flags == {"v": frozenset({"unless refractory"})}
    assert h.spike_surface == "v crosses 0 upward"


def test_events_numpy_and_numba():
    m = adex()
    v, w = np.array([-0.05, 0.01]), np.array([1e-10, 2e-10])
    assert m.threshold_crossed(v, w).tolist() == [False, True]
    v2, w2 = m.apply_reset(v, w)
    assert np.array_equal(v2, [ADEX_PARAMS["v_r"]] * 2)
    # one addition: round-off (measured equal); atol=0 as w ~ 1e-10 (the default 1e-8 could
    # not fail)
    assert np.allclose(w2, w + ADEX_PARAMS["b"], rtol=1e-15, atol=0.0)
    c = m.compiled()
    assert c.threshold(0.01, 0.0, m.parameter_values)
    # one addition: round-off (measured equal); abs=0 as the default 1e-12 is 0.6 % of w
    assert c.reset(0.01, 1e-10, m.parameter_values) == pytest.approx((-70.6e-3, 1e-10 + 80.5e-12),
                                                                      rel=1e-15, abs=0.0)
    s = hh().compiled()
    # the surface is v itself: passed through unchanged (measured equal)
    assert s.surface(0.002, 0.1, 0.5, 0.3, hh().parameter_values) == pytest.approx(
        0.002, rel=1e-15, abs=0.0)


def test_eif_noise_split_additive():
    m = eif()
    assert m.noise_kind == {"v": "additive"} and m.noise_names == ("xi",)
    (g,) = m.noise(np.zeros(3))
    # one division and square root: round-off (measured equal); atol=0, the default 1e-8
    # would admit 3e-7 relative
    assert np.allclose(g, EIF_PARAMS["sigma"] / math.sqrt(EIF_PARAMS["tau"]), rtol=1e-15,
                       atol=0.0)
    # compiled vs NumPy, the same arithmetic (measured equal); abs=0: the default 1e-12 would
    # admit 3e-11 relative
    assert m.compiled().noise[0](0.0, m.parameter_values)[0] == pytest.approx(g[0], rel=1e-15,
                                                                               abs=0.0)


def test_multiplicative_noise_inside_a_sum():
    text = """
    dx/dt = (mu - x + s*(x + 1)*xi*sqrt(tau))/tau : 1
    dy/dt = -y/tau + q*xi : 1
    """
    p = dict(mu=0.5, s=0.3, tau=0.01, q=2.0)
    m = parse_equations(text, p, dict(mu="1", s="1", tau="second", q="second**-0.5"))
    assert m.noise_kind == {"x": "multiplicative", "y": "additive"}
    x, y = np.array([0.1, 0.7]), np.array([1.0, 2.0])
    fx, fy = m.drift(x, y)
    gx, gy = m.noise(x, y)
    # the same expressions evaluated by the generated code: round-off
    assert np.allclose(fx, (p["mu"] - x) / p["tau"], rtol=1e-14)
    assert np.allclose(fy, -y / p["tau"], rtol=1e-14)
    assert np.allclose(gx, p["s"] * (x + 1) * math.sqrt(p["tau"]) / p["tau"], rtol=1e-14)
    assert np.allclose(gy, p["q"], rtol=1e-15)
    # multiplicative through a sub-expression
    m2 = parse_equations("dx/dt = -x/tau + g_x*xi : 1\ng_x = x/sqrt(tau) : second**-0.5",
                         dict(tau=0.01), dict(tau="second"))
    assert m2.noise_kind == {"x": "multiplicative"}


def test_parameters_without_units_are_not_checked():
    m = parse_equations("dv/dt = (mu - v)/tau : volt", dict(mu=0.01, tau=0.02))
    assert m.unchecked == ("mu", "tau")
    with pytest.raises(ValueError, match=r"require_units=True: no unit for parameter\(s\)"):
        parse_equations("dv/dt = (mu - v)/tau : volt", dict(mu=0.01, tau=0.02),
                        require_units=True)


def test_overflowing_constants_give_inf_not_an_exception():
    m = parse_equations("dv/dt = (1e64*hertz)**64/hertz**63 + 0*v*hertz : 1")
    with np.errstate(over="ignore"):
        assert np.isinf(m.drift(np.zeros(2))[0]).all()
    assert math.isinf(m.compiled().drift(0.0, ())[0])


def test_hash_normalised():
    a = parse_equations("dv/dt = (mu-v)/tau : volt  # comment", dict(mu=1.0, tau=2.0))
    b = parse_equations("\n  dv/dt =  ( mu - v ) / tau : volt\n", dict(mu=5.0, tau=3.0))
    c = parse_equations("dv/dt = (mu-v)/tau/2 : volt", dict(mu=1.0, tau=2.0))
    assert a.hash == b.hash != c.hash


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("text, message, column", [
    ("dv/dt = __import__('os') : 1", "unknown function '__import__'", 9),
    ("dv/dt = __builtins__ : 1", "names starting with '_'", 9),
    ("dv/dt = os.system(1) : 1", "unknown function 'Attribute'", 9),
    ("dv/dt = v.real : 1", "attribute access not allowed", 9),
    ("dv/dt = (lambda: 1)() : 1", "unknown function 'Lambda'", 9),
    ("dv/dt = v[0] : 1", "subscripts not allowed", 9),
    ("dv/dt = 10**10**10 : 1", "exponent must be a number literal", 13),
    ("dv/dt = v**1000 : 1", "exponent must be a number literal", 12),
    ("dv/dt = eval(v) : 1", "unknown function 'eval'", 9),
    ("dv/dt = exp(v, v) : 1", "exp() takes 1 argument(s), got 2", 9),
    ("dv/dt = 'abc' : 1", "only real numbers are allowed", 9),
    ("dv/dt = v if v else 0 : 1", "if-expressions not allowed", 9),
    ("dv/dt = v and 1 : 1", "and/or not allowed", 9),
    ("dv/dt = 1e999 : 1", "number out of range", 9),
    ("dv/dt = v + * 2 : 1", "syntax error", 13),
    ("dv/dt = -v/tau_x : 1", "unknown identifier 'tau_x'", 12),
    ("dv/dt = " + "(" * 60 + "v" + ")" * 60 + " : 1", "nested deeper", 9),
    ("dv/dt = " + "+".join(["v"] * 1500) + " : 1", "expression too long", 9),
    ("dv/dt = " + "+".join(["v"] * 600) + " : 1", "expression too large", 9),
    ("dv/dt = 1 < v < 2 : 1", "only single comparisons", 9),
])
def test_hostile_text_names_line_and_column(text, message, column):
    full = "dw/dt = -w : hertz\n" + text  # the bad line is line 2
    with pytest.raises(EquationError, match="line 2, column") as info:
        parse_equations(full)
    assert message in str(info.value)
    assert (info.value.line, info.value.column) == (2, column)
    assert isinstance(info.value, ValueError)


def test_too_long_text_and_structure_errors():
    with pytest.raises(EquationError, match="equations text too long"):
        parse_equations("dv/dt = -v : hertz\n" + "#" * 30_000)
    with pytest.raises(EquationError, match="missing unit annotation"):
        parse_equations("dv/dt = -v")
    with pytest.raises(EquationError, match="at least one differential equation"):
        parse_equations("x = 1 : 1")
    with pytest.raises(EquationError, match="defined twice"):
        parse_equations("dv/dt = -v : hertz\ndv/dt = v : hertz")
    with pytest.raises(EquationError, match="left side must be"):
        parse_equations("v + 1 = 2 : 1")
    with pytest.raises(EquationError, match="reserved"):
        parse_equations("dexp/dt = 1 : hertz")
    with pytest.raises(EquationError, match="cycle: a -> b -> a"):
        parse_equations("dv/dt = a : hertz\na = b : hertz\nb = a : hertz")
    with pytest.raises(EquationError, match="unknown flag"):
        parse_equations("dv/dt = -v : hertz (sometimes)")


@pytest.mark.parametrize("text, units, message", [
    ("dv/dt = (mu - v)/tau : volt", dict(mu="second", tau="second"),
     "dimension mismatch in '-': second vs volt"),
    ("dv/dt = (mu - v) : volt", dict(mu="volt"), "dv/dt must have volt/second"),
    ("dv/dt = (mu - v)/tau + exp(v)/tau : volt", dict(mu="volt", tau="second"),
     "exp() needs a dimensionless argument, got volt"),
    ("dv/dt = (1 - v)/tau : volt", dict(tau="second"), "numbers are dimensionless"),
    ("dv/dt = -v/tau + xi : volt", dict(tau="second"),
     "dimension mismatch in '+': volt/second"),
    ("dv/dt = -v/tau + i_x/c : volt\ni_x = v*g : volt", dict(tau="second", g="siemens",
                                                        c="farad"),
     "'i_x' is declared 'volt'"),
    ("dv/dt = -v/tau : volt", dict(tau="mV"), "prefixed units are not accepted"),
    ("dv/dt = -v/tau : volt", dict(tau="furlong"), "unknown unit 'furlong'"),
])
def test_unit_mismatch_errors(text, units, message):
    params = {k: 1.0 for k in units}
    with pytest.raises((EquationError, ValueError)) as info:
        parse_equations(text, params, units)
    assert message in str(info.value)


def test_noise_errors():
    u = dict(tau="second")
    with pytest.raises(EquationError, match="noise .xi. must enter linearly"):
        parse_equations("dv/dt = -v/tau + exp(xi*second**0.5)/tau : 1", dict(tau=1.0), u)
    with pytest.raises(EquationError, match="product of noise terms"):
        parse_equations("dv/dt = xi*xi : 1")
    with pytest.raises(EquationError, match="denominator"):
        parse_equations("dv/dt = 1/xi : 1")
    with pytest.raises(EquationError, match="at most one noise symbol"):
        parse_equations("dv/dt = (xi_a + xi_b)/sqrt(tau) : 1", dict(tau=1.0), u)
    with pytest.raises(EquationError, match="noise 'xi' is only allowed in differential"):
        parse_equations("dv/dt = a : 1\na = xi : second**-0.5")


def test_parameter_and_event_errors():
    text = "dv/dt = (mu - v)/tau : volt\ntau : second"
    with pytest.raises(EquationError, match="missing parameter value: 'tau'"):
        parse_equations(text, dict(mu=0.01))
    with pytest.raises(ValueError, match=r"parameters not used .*\['extra'\]"):
        parse_equations(text, dict(mu=0.01, tau=0.02, extra=1.0))
    with pytest.raises(ValueError, match=r"parameters\['mu'\] must be finite"):
        parse_equations(text, dict(mu=float("nan"), tau=0.02))
    with pytest.raises(ValueError, match="units: 'nope' is not a parameter"):
        parse_equations(text, dict(mu=0.01, tau=0.02), dict(nope="volt"))
    with pytest.raises(ValueError, match="contradicts its declaration"):
        parse_equations(text, dict(mu=0.01, tau=0.02), dict(tau="volt"))
    ok = dict(mu=0.01, tau=0.02)
    with pytest.raises(EquationError, match="threshold: unknown identifier 'u'"):
        parse_equations(text, ok, threshold="u > 0")
    with pytest.raises(EquationError, match="threshold: the threshold must be a comparison"):
        parse_equations(text, ok, threshold="v")
    with pytest.raises(EquationError, match="reset assigns 'w', which is not a state"):
        parse_equations(text, ok, threshold="v > 0", reset="v = 0; w = 1")
    with pytest.raises(EquationError, match="reset 'v = ...' needs volt, got second"):
        parse_equations(text, ok, threshold="v > 0", reset="v = tau")
    with pytest.raises(EquationError, match="reset: attribute access"):
        parse_equations(text, ok, threshold="v > 0", reset="v = v.real")
    with pytest.raises(EquationError, match="'q' is not a state variable"):
        parse_equations(text, ok, spike_surface="q crosses 0 upward")
    with pytest.raises(EquationError, match="expected 'x crosses level upward'"):
        parse_equations(text, ok, spike_surface="v crosses 0 sideways")
    with pytest.raises(ValueError, match="reset needs a threshold"):
        parse_equations(text, ok, reset="v = 0")
    with pytest.raises(ValueError, match="refractory must be >= 0"):
        parse_equations(text, ok, threshold="v > 0", refractory=-1.0)
    with pytest.raises(TypeError, match="parameters must be a dict"):
        parse_equations(text, [1.0])
    with pytest.raises(EquationError, match=r"parameters: parameter name '__class__'|invalid"):
        parse_equations(text, {"__class__": 1.0, **ok})


# --------------------------------------------------------------- Monte Carlo from text
def _simulate_counts(compiled, params, n, t_warm, t_count, dt, t_ref, seed):
    """Euler-Maruyama of one parsed 1D model with the numba functions; spike counts per
    neuron after a warm-up (a loop over neurons, compiled with the functions passed in)."""
    from numba import njit

    @njit
    def run(drift, noise, threshold, reset):
        np.random.seed(seed)  # noqa: NPY002 - numba's per-thread generator (no Generator in njit)
        counts = np.zeros(n)
        sq = math.sqrt(dt)
        steps_warm, steps = int(round(t_warm / dt)), int(round((t_warm + t_count) / dt))
        hold_steps = int(round(t_ref / dt))
        for i in range(n):
            v = reset(0.0, params)[0]
            hold = 0
            for k in range(steps):
                if hold > 0:
                    hold -= 1
                    continue
                v += drift(v, params)[0] * dt + noise(v, params)[0] * sq * np.random.randn()  # noqa: NPY002
                if threshold(v, params):
                    if k >= steps_warm:
                        counts[i] += 1
                    v = reset(v, params)[0]
                    hold = hold_steps
        return counts

    return run(compiled.drift, compiled.noise[0], compiled.threshold, compiled.reset)


def test_eif_monte_carlo_from_text_matches_threshold_integration():
    from popdens.theory import threshold_integration_1d

    params = {**EIF_PARAMS, "mu": 15e-3}  # Richardson's mu = e_l + mu = -50 mV: ~16 Hz
    m = parse_equations(EIF_TEXT, params, EIF_UNITS, threshold="v > -30e-3*volt",
                        reset="v = -60e-3*volt", refractory=2e-3)
    mu_r = params["e_l"] + params["mu"]

    def drift(v):  # tau dV/dt = F(V) + sigma sqrt(tau) xi
        return -(v - mu_r) + params["delta_t"] * np.exp((v - params["v_t"]) / params["delta_t"])

    theory = threshold_integration_1d(drift, params["sigma"], params["tau"], -30e-3, -60e-3,
                                      -100e-3, m.refractory, num_cells=40000).rate
    assert theory == pytest.approx(15.954, abs=1e-3)  # regression; O(dv) error ~1e-5
    counts = _simulate_counts(m.compiled(), m.parameter_values, n=500, t_warm=0.5,
                              t_count=4.0, dt=4e-5, t_ref=m.refractory, seed=3)
    rates = counts / 4.0
    z = (rates.mean() - theory) / (rates.std(ddof=1) / math.sqrt(rates.size))
    # seeded; statistical tolerance 3 standard errors (measured z = -0.50: 15.934 Hz, and
    # |z| < 0.5 at dt = 2e-5 for two other seeds: the Euler-Maruyama bias is below the
    # 0.3 % noise)
    assert abs(z) < 3.0
