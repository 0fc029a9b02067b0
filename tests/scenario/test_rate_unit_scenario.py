"""Rate units and synaptic filters in descriptions and scenario files: written by
``describe``, rebuilt by the scenario builder, checked with errors at FILE:LINE."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

import popdens as pd
from popdens.scenario import ScenarioError, load_scenario, network_from_dict, parse_scenario

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rate_units_filters.toml"


def _mixed_by_hand() -> pd.Network:
    """The network of examples/rate_units_filters.toml, written in Python."""
    net = pd.Network()
    lif = pd.LIF(tau_m=20e-3, v_th=20e-3, v_reset=10e-3, t_ref=2e-3)
    E = net.add_population("E", lif, grid=pd.Grid(v=(-0.01, 0.02, 300)))
    bg = net.add_poisson("bg", 5000.0)
    R = net.add_rate_population("R", tau=10e-3,
                                transfer=pd.transfer.sigmoid(40.0, 0.5, 5.0),
                                drive=pd.piecewise([0.0, 0.02], [0.0, 10.0]))
    Q = net.add_rate_population("Q", tau=5e-3, transfer=pd.transfer.relu(gain=3.0),
                                bias=-2.0)
    net.connect(bg, E, weight=0.2e-3)
    net.connect(R, E, weight=0.2e-3, n_syn=100, delay=1e-3,
                synapse=pd.synapses.psc(5e-3, n=1))
    net.connect(E, Q, weight=0.1, n_syn=2, synapse=pd.synapses.psc(10e-3))
    return net


def test_scenario_file_builds_the_same_network_as_python():
    """The file and the Python network give the same rates bit for bit (same arrays)."""
    scenario = load_scenario(EXAMPLE)
    from_file = scenario.network.run(0.05, 1e-4, progress=False)
    by_hand = _mixed_by_hand().run(0.05, 1e-4, progress=False)
    for name in ("E", "R", "Q"):
        np.testing.assert_array_equal(from_file.rates[name], by_hand.rates[name])
    # independent check of the unit R alone: before its drive switches on (t < 20 ms)
    # its input is 0, so r relaxes from 0 towards f(0) = 40 / (1 + e^2.5) exactly
    f0 = 40.0 / (1.0 + np.exp(2.5))
    t_end = np.arange(1, 200) * 1e-4
    exact_step_ends = f0 * (1.0 - np.exp(-t_end / 10e-3))
    # step means of the exact solution lie between the step's end values
    r = from_file.rates["R"][1:199]
    assert np.all(r > exact_step_ends[:-1]) and np.all(r < exact_step_ends[1:])


def test_describe_lists_rate_units_and_filters_and_rebuilds():
    net = _mixed_by_hand()
    d = net.describe()
    assert d == pd.describe(net)
    assert d["rate_units"]["R"] == {
        "tau": 10e-3, "bias": 0.0, "r0": 0.0, "method": "exact",
        "transfer": {"kind": "sigmoid", "max_rate": 40.0, "gain": 0.5, "threshold": 5.0},
        "drive": {"shape": "piecewise", "times": [0.0, 0.02], "rates": [0.0, 10.0]}}
    assert d["rate_units"]["Q"]["transfer"] == {"kind": "threshold_linear", "gain": 3.0,
                                                "threshold": 0.0}   # inf saturation: left out
    assert d["connections"][1]["synapse"] == {"kind": "psc", "tau_s": 5e-3, "n": 1}
    assert d["connections"][1]["delay"] == 1e-3          # the transmission delay only
    rebuilt = network_from_dict(d)
    assert rebuilt.describe() == d
    a = net.run(0.03, 1e-4, progress=False)
    b = rebuilt.run(0.03, 1e-4, progress=False)
    for name in ("E", "R", "Q"):
        np.testing.assert_array_equal(a.rates[name], b.rates[name])


@pytest.mark.parametrize("transfer", [
    pd.transfer.tanh(30.0, 0.2, 1.0), pd.transfer.arctan(30.0, 0.2, 1.0),
    pd.transfer.threshold_linear(2.0, 1.0, 50.0), pd.transfer.step(20.0, 1.0),
    pd.transfer.lif_rate(20e-3, 20e-3, 2e-3),
    pd.transfer.siegert(5e-3, 20e-3, 20e-3, 10e-3, 2e-3)])
def test_every_transfer_and_the_biexponential_filter_round_trip(transfer):
    net = pd.Network()
    net.add_population("E", pd.LIF(tau_m=20e-3, v_th=20e-3, v_reset=10e-3))
    src = net.add_poisson("s", 100.0)
    unit = net.add_rate_population("U", tau=5e-3, transfer=transfer, drive=-0.5,
                                   method="euler", r0=3.0)
    net.connect(src, unit, weight=0.01, synapse=pd.synapses.biexponential(1e-3, 4e-3))
    rebuilt = network_from_dict(net.describe())
    got = rebuilt.rate_populations["U"]
    assert type(got.transfer) is type(transfer) and repr(got.transfer) == repr(transfer)
    assert (got.tau, got.drive, got.method, got.r0) == (5e-3, -0.5, "euler", 3.0)
    assert repr(rebuilt.connections[0].synapse) == repr(net.connections[0].synapse)


def test_callable_transfer_is_marked_and_refused_when_rebuilt():
    net = pd.Network()
    net.add_population("E", pd.LIF(tau_m=20e-3, v_th=20e-3, v_reset=10e-3))
    net.add_rate_population("U", tau=5e-3, transfer=lambda x: np.maximum(x, 0.0))
    d = net.describe()
    assert d["rate_units"]["U"]["transfer"]["shape"] == "callable"
    with pytest.raises(ScenarioError, match="rate_units.U.transfer: a callable transfer "
                                            "function was not saved"):
        network_from_dict(d)


BAD = textwrap.dedent("""\
    [run]
    t_end = 0.05

    [populations.E]
    model = "LIF"
    params = { tau_m = 20e-3, v_th = 20e-3, v_reset = 10e-3 }

    [rate_units.R]
    tau = -1.0
    transfer = { kind = "sigmod", gain = 0.5 }

    [rate_units.Q]
    transfer = { kind = "relu", gain = 3.0 }
    method = "rk4"

    [rate_units.S]
    tau = 1e-3
    transfer = { kind = "sigmoid", gain = -1.0 }

    [rate_units.E]
    tau = 1e-3
    transfer = { kind = "step" }

    [[connections]]
    pre = "R"
    post = "X"
    weight = 0.2e-3
    synapse = { kind = "psc", tau_s = 0.0 }

    [[connections]]
    pre = "S"
    post = "E"
    weight = 0.2e-3
    synapse = { kind = "alpha", tau = 1e-3 }
    """)


def test_bad_rate_units_and_filters_are_named_at_their_lines():
    with pytest.raises(ScenarioError) as info:
        parse_scenario(BAD, "bad.toml")
    text = str(info.value)
    for expected in (
            "bad.toml:9: rate_units.R.tau: must be > 0, got -1.0",
            "bad.toml:10: rate_units.R.transfer.kind: must be one of 'sigmoid', 'tanh', "
            "'arctan', 'threshold_linear', 'step', 'lif_rate', 'siegert', got 'sigmod'",
            "bad.toml:12: rate_units.Q: missing required key 'tau'",
            "bad.toml:14: rate_units.Q.method: must be one of 'exact', 'euler', got 'rk4'",
            "bad.toml:18: rate_units.S.transfer.gain: must be >= 0, got -1.0",
            "bad.toml:20: rate_units.E: name 'E' is already used by a population",
            "bad.toml:26: connections[0].post: 'X' is not a population or rate unit",
            "bad.toml:28: connections[0].synapse.tau_s: tau_s must be > 0, got 0.0",
            "bad.toml:34: connections[1].synapse.kind: must be one of 'psc', "
            "'biexponential', got 'alpha'"):
        assert expected in text, (expected, text)


def test_a_rate_unit_into_a_conductance_synapse_is_refused_at_its_line():
    text = textwrap.dedent("""\
        [run]
        t_end = 0.01
        [populations.E]
        model = "LIF"
        params = { tau_m = 20e-3, v_th = 20e-3, v_reset = 10e-3 }
        [rate_units.U]
        tau = 1e-3
        transfer = { kind = "step" }
        [[connections]]
        pre = "E"
        post = "U"
        weight = 0.1
        reversal = 0.05
        """)
    # reported at the connection's keys (line 12 or 13), with the builder's message
    with pytest.raises(ScenarioError, match=r"f.toml:1[23]: connections\[0\]\S*: "
                                            r"connection to rate unit 'U'"):
        parse_scenario(text, "f.toml")
