"""Mixed networks: each population gets exactly the result it has alone (issue 14)."""

from __future__ import annotations

import numpy as np

import popdens as pd
from popdens.backends.density import split_by_engine


def _add_lif(net):
    lif = net.add_population("E", pd.LIF(tau_m=0.02, v_th=0.02, v_reset=0.01, t_ref=0.002))
    net.connect(net.add_poisson("exc", 1600.0), lif, weight=0.5e-3)
    net.connect(net.add_poisson("inh", 200.0), lif, weight=-0.5e-3)
    net.connect(net.add_poisson("noise", 1000.0), lif, weight=0.3e-3, input="diffusion")


def _add_reduced_hh(net):
    hh = net.add_population("H", pd.ReducedHH(),
                            grid=pd.Grid(v=(-0.082, 0.057, 139), n=(0.0, 1.0, 50)))
    net.connect(net.add_poisson("drive", 2000.0), hh, weight=2e-3)


def test_lif_beside_an_unconnected_hh_population_is_exactly_as_alone():
    alone, mixed, hh_alone = pd.Network(), pd.Network(), pd.Network()
    _add_lif(alone)
    _add_lif(mixed)
    _add_reduced_hh(mixed)
    _add_reduced_hh(hh_alone)
    assert split_by_engine(mixed) == (["E"], ["H"])
    a = alone.run(0.05, 1e-4)
    m = mixed.run(0.05, 1e-4)
    h = hh_alone.run(0.05, 1e-4)
    assert np.max(a.rates["E"]) > 1.0 and np.max(h.rates["H"]) > 1.0   # both fire
    # the same engine on the same inputs: equal to round-off (the issue asks 1e-9)
    np.testing.assert_allclose(m.rates["E"], a.rates["E"], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(m.rates["H"], h.rates["H"], rtol=1e-9, atol=1e-9)
    assert set(m.info["final_mass"]) == {"E", "H"}
    assert m.info["interrupted"] is False


def test_coupled_populations_share_one_engine():
    net = pd.Network()
    _add_lif(net)
    _add_reduced_hh(net)
    net.connect("E", "H", weight=1e-3, n_syn=10)
    assert split_by_engine(net) == ([], ["E", "H"])
