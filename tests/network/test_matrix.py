"""Weight matrices: Network.connect_matrix and Network.from_matrix."""

import numpy as np
import pytest

import popdens as pd
from popdens.examples import COLUMN_GRID, column_matrices, column_network

LIF = pd.LIF(tau_m=20e-3, v_th=20e-3, v_reset=10e-3, t_ref=2e-3)


def SPREAD(v):
    """Uniform between 0 and the threshold: the populations fire from the first step."""
    return ((v > 0.0) & (v < 20e-3)) * 1.0


def _key(conn):
    return (conn.pre.name, conn.post.name, conn.weight, conn.n_syn, repr(conn.delay),
            conn.input, conn.reversal)


def test_connect_matrix_wires_nonzero_entries_column_outer():
    net = pd.Network()
    a, b, c = (net.add_population(n, LIF) for n in "ABC")
    W = np.array([[0.0, 1e-3, 2e-3],
                  [3e-3, 0.0, -4e-3]])                 # rows: posts (A, B); cols: A, B, C
    n_syn = np.array([[9.0, 5.0, 6.0], [7.0, 9.0, 8.0]])
    made = net.connect_matrix([a, b, c], [a, b], W, n_syn=n_syn, delay=2e-3)
    # W[i, j] from pres[j] to posts[i]; the zeros (A->A, B->B) are skipped
    assert [(x.pre.name, x.post.name, x.weight, x.n_syn) for x in made] == [
        ("A", "B", 3e-3, 7.0), ("B", "A", 1e-3, 5.0), ("C", "A", 2e-3, 6.0),
        ("C", "B", -4e-3, 8.0)]
    assert all(x.delay.offset == 2e-3 for x in made) and net.connections == made


def test_connect_matrix_equals_connect_one_by_one():
    """Same connections as connect() with the entries: same run, to the last bit."""
    delays = np.array([[1e-3, pd.delays.gamma(3e-3, 4.0)], [0.0, 2e-3]], dtype=object)
    W = np.array([[0.2e-3, -0.5e-3], [0.3e-3, -0.4e-3]])
    n_syn = np.array([[40.0, 10.0], [30.0, 20.0]])

    def base():
        net = pd.Network()
        pops = [net.add_population(n, LIF, grid=pd.Grid(v=(-0.01, 0.02, 150)), init=SPREAD)
                for n in "EI"]
        ext = net.add_poisson("ext", 3000.0)
        for p in pops:
            net.connect(ext, p, weight=0.5e-3)
        return net, pops

    by_matrix, pops = base()
    by_matrix.connect_matrix(pops, pops, W, n_syn=n_syn, delay=delays)
    by_hand, pops = base()
    for j in range(2):
        for i in range(2):
            by_hand.connect(pops[j], pops[i], W[i, j], n_syn=n_syn[i, j],
                            delay=delays[i, j])
    assert [_key(c) for c in by_matrix.connections] == [_key(c) for c in by_hand.connections]
    one = by_matrix.run(0.01, 1e-4, progress=False)
    two = by_hand.run(0.01, 1e-4, progress=False)
    for n in "EI":
        assert one.rates[n].max() > 1.0                     # something happens
        np.testing.assert_array_equal(one.rates[n], two.rates[n])


def test_from_matrix_builds_the_cortical_column():
    """The 8-population column from matrices is column_network's network, connection by
    connection and in the same order, so its rates are identical (bit for bit)."""
    lif = pd.LIF(tau_m=10e-3, v_th=15e-3, v_reset=0.0, e_l=0.0, t_ref=0.0)
    spread = lambda v: ((v > 0.0) & (v < 15e-3)) * 1.0       # noqa: E731  (firing at once)
    net = pd.Network.from_matrix(lif, grid=COLUMN_GRID, init=spread, **column_matrices())
    ref = column_network(grid=COLUMN_GRID)
    for pop in ref.populations.values():
        pop.init = spread
    assert list(net.populations) == list(ref.populations)
    assert {n: s.rate for n, s in net.sources.items()} == \
        {n: s.rate for n, s in ref.sources.items()}
    assert len(net.connections) == 63                       # 55 recurrent + 8 background
    assert [_key(c) for c in net.connections] == [_key(c) for c in ref.connections]
    mine = net.run(3e-3, 1e-4, progress=False)
    theirs = ref.run(3e-3, 1e-4, progress=False)
    assert mine.rates["L4i"].max() > 1.0     # precondition: it fires, equality has content
    for name in ref.populations:
        np.testing.assert_array_equal(mine.rates[name], theirs.rates[name])


def test_from_matrix_per_population_models_and_names():
    other = pd.LIF(tau_m=10e-3, v_th=20e-3, v_reset=10e-3)
    net = pd.Network.from_matrix([LIF, other], np.zeros((2, 2)), names=["E", "I"],
                                 grid=[None, pd.Grid(v=(-0.01, 0.02, 100))])
    assert net.populations["I"].model is other and net.populations["E"].grid is None
    assert net.connections == []
    assert list(pd.Network.from_matrix(LIF, np.zeros((3, 3))).populations) == \
        ["P0", "P1", "P2"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(W=np.ones((3, 2)) * 1e-3), r"W has shape \(3, 2\); expected \(2, 3\)"),
    (dict(n_syn=np.ones((3, 3))), r"n_syn has shape \(3, 3\); expected \(2, 3\)"),
    (dict(delay=[1e-3, 2e-3]), r"delay has shape \(2,\); expected \(2, 3\)"),
    (dict(n_syn=-np.ones((2, 3))), r"W\[1, 0\] \('A' -> 'B'\): n_syn must be >= 0"),
    (dict(delay=-1.0), r"W\[1, 0\] \('A' -> 'B'\): delay must be >= 0"),
    (dict(W=np.array([[0, 1, np.nan], [1, 0, 1]]) * 1e-3), r"W\[0, 2\] must be finite"),
    (dict(bogus=1), r"unknown keyword\(s\) \['bogus'\]"),
])
def test_connect_matrix_errors_name_the_problem_and_change_nothing(kwargs, message):
    net = pd.Network()
    pops = [net.add_population(n, LIF) for n in "ABC"]
    args = dict(W=np.array([[0.0, 1e-3, 2e-3], [3e-3, 0.0, 1e-3]]))
    args.update(kwargs)
    W = args.pop("W")
    with pytest.raises((ValueError, TypeError), match=message):
        net.connect_matrix(pops, pops[:2], W, **args)
    assert net.connections == []


def test_from_matrix_rejects_inconsistent_shapes_by_name():
    with pytest.raises(ValueError, match=r"square .* got shape \(2, 3\)"):
        pd.Network.from_matrix(LIF, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="names has 1 entries; W has shape"):
        pd.Network.from_matrix(LIF, np.zeros((2, 2)), names=["E"])
    with pytest.raises(ValueError, match="models has 3 entries; W has 2 populations"):
        pd.Network.from_matrix([LIF] * 3, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="sources and W_in go together"):
        pd.Network.from_matrix(LIF, np.zeros((2, 2)), sources={"x": 1.0})
