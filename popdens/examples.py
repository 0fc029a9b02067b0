"""Ready-made networks from the literature, backend-agnostic descriptions.

:func:`brunel_network` builds Brunel's (2000) sparsely connected network of excitatory and
inhibitory LIF neurons (model A); run it with either backend::

    net = brunel_network(g=5.0, eta=2.0)
    density = net.run(1.0, 1e-4)
    mc = net.run(1.0, 1e-4, backend="montecarlo", n_neurons=brunel_sizes(), seed=1)

Reference: N. Brunel (2000), Dynamics of sparsely connected networks of excitatory and
inhibitory spiking neurons, J. Comput. Neurosci. 8:183-208.

:func:`column_network` builds the eight-population cortical column of Potjans & Diesmann
(2014) in the form of DiPDE's example (63 connections, fractional synapse counts)::

    net = column_network(grid=COLUMN_GRID)        # DiPDE's grid: 225 cells
    pd.steady_state(net).rates
"""

from __future__ import annotations

import numpy as np

from ._checks import as_real, check_nonnegative, check_positive
from .grid import Grid
from .models.lif import LIF
from .network import Network, piecewise

__all__ = ["brunel_network", "brunel_sizes", "BRUNEL_N_E", "BRUNEL_N_I",
           "column_network", "column_matrices", "COLUMN_POPULATIONS", "COLUMN_SIZES",
           "COLUMN_GRID"]

BRUNEL_N_E = 10_000
"""Excitatory neurons of Brunel's network (the in-degrees below are 10 % of the sizes)."""
BRUNEL_N_I = 2_500
"""Inhibitory neurons."""


def brunel_sizes(scale: float = 1.0) -> dict:
    """``{"E": N_E, "I": N_I}`` of Brunel's network times ``scale``, for the Monte Carlo
    backend's ``n_neurons``. The in-degrees of :func:`brunel_network` do not scale with it:
    ``scale`` must keep ``N_E >= c_e`` and ``N_I >= c_e / 4`` for a fixed in-degree."""
    scale = check_positive("scale", scale)
    return {"E": max(1, round(BRUNEL_N_E * scale)), "I": max(1, round(BRUNEL_N_I * scale))}


def brunel_network(g: float, eta: float, delay=1.5e-3, input: str = "jump",
                   j: float = 0.1e-3, c_e: int = 1000, gamma: float = 0.25,
                   tau_m: float = 20e-3, v_th: float = 20e-3, v_reset: float = 10e-3,
                   t_ref: float = 2e-3, external_input: str | None = None,
                   grid=None, init=None) -> Network:
    """Brunel's (2000) model A: E and I populations of LIF neurons, sparse random coupling.

    Every neuron receives ``c_e`` excitatory synapses of weight ``j`` and
    ``c_i = gamma * c_e`` inhibitory synapses of weight ``-g * j`` from the network, each
    with the transmission ``delay``, and Poisson input from outside at
    ``c_e * eta * nu_thr`` Hz with jumps ``j``, where ``nu_thr = v_th / (j c_e tau_m)``
    (10 Hz for the defaults) is the external rate per synapse that brings the mean input
    to threshold. E and I neurons are identical, so both fire at the same stationary rate
    (``popdens.theory.brunel_mean_field_rate(eta * nu_thr, g)`` in the diffusion
    approximation; 37.95 Hz at g = 5, eta = 2).

    Parameters
    ----------
    g : float
        Relative strength of inhibition, >= 0.
    eta : float
        External rate relative to ``nu_thr``, >= 0.
    delay : float or popdens.delays distribution, default 1.5e-3
        Transmission delay D of the four recurrent connections (s).
    input : {"jump", "diffusion"}, default "jump"
        How the recurrent connections act: finite jumps (the network) or their diffusion
        limit.
    j : float, default 0.1e-3
        Excitatory jump (V).
    c_e : int, default 1000
        Excitatory in-degree; also the number of external synapses.
    gamma : float, default 0.25
        ``c_i / c_e``; ``c_e * gamma`` must be a whole number.
    tau_m, v_th, v_reset, t_ref : float
        LIF membrane time constant (s), threshold, reset (V; rest at 0 V) and refractory
        period (s).
    external_input : {"jump", "diffusion"} or None
        How the external drive acts; ``None`` (default) uses ``input``.
    grid : popdens.Grid or None
        Density grid of both populations; ``None`` lets the model choose.
    init : callable or None
        Initial density of both populations (a function of the cell centers, as in
        :meth:`Network.add_population`); ``None``: every neuron at rest. Starting from a
        spread of potentials (e.g. uniform below threshold) avoids the synchronous first
        volley of a network started at rest.

    Returns
    -------
    Network
        Populations ``"E"`` and ``"I"`` (add them in that order), the Poisson source
        ``"ext"`` and the connections ext->E, ext->I, E->E, I->E, E->I, I->I. Monte Carlo:
        ``n_neurons=brunel_sizes()`` gives N_E = 10000, N_I = 2500.
    """
    g = check_nonnegative("g", g)
    eta = check_nonnegative("eta", eta)
    j = check_positive("j", j)
    c_e = check_positive("c_e", c_e)
    gamma = check_nonnegative("gamma", gamma)
    c_i = gamma * c_e
    if abs(c_i - round(c_i)) > 1e-9 * max(c_i, 1.0):
        raise ValueError(f"gamma * c_e must be a whole number of synapses, got gamma={gamma!r},"
                         f" c_e={c_e!r}")
    external_input = input if external_input is None else external_input
    lif = LIF(tau_m=tau_m, v_th=v_th, v_reset=v_reset, e_l=0.0, t_ref=t_ref)
    nu_thr = v_th / (j * c_e * tau_m)
    net = Network()
    ext = net.add_poisson("ext", rate=eta * nu_thr)
    exc = net.add_population("E", lif, grid=grid, init=init)
    inh = net.add_population("I", lif, grid=grid, init=init)
    for post in (exc, inh):
        net.connect(ext, post, weight=j, n_syn=c_e, input=external_input)
    for post in (exc, inh):
        net.connect(exc, post, weight=j, n_syn=c_e, delay=delay, input=input)
        if c_i > 0 and g > 0:
            net.connect(inh, post, weight=-g * j, n_syn=round(c_i), delay=delay, input=input)
    return net


# --- the Potjans-Diesmann cortical column, as in DiPDE's example ----------------------
#
# Parameters of T. C. Potjans & M. Diesmann (2014), The cell-type specific cortical
# microcircuit: relating structure and activity in a full-scale spiking network model,
# Cereb. Cortex 24:785-806 (Table 5: sizes, connection probabilities, external
# in-degrees), in the reduced form of the DiPDE example
# ``dipde/examples/potjans_diesmann_cortical_column.py`` (AllenInstitute/dipde, GPL):
# LIF with tau_m = 10 ms, threshold 15 mV, reset and rest 0 mV, no refractory period,
# every excitatory synapse 0.175 mV, every inhibitory one -0.7 mV, instantaneous
# recurrent coupling, background 8 Hz per external synapse (delayed 5 ms onto the
# excitatory populations), density on [-30, 15] mV in 0.2 mV cells. The numbers below
# are transcribed from that table; the code is ours.

COLUMN_POPULATIONS = ("L23e", "L23i", "L4e", "L4i", "L5e", "L5i", "L6e", "L6i")
"""Population names, layer 2/3 to 6, excitatory then inhibitory."""

COLUMN_SIZES = {"L23e": 20683, "L23i": 5834, "L4e": 21915, "L4i": 5479,
                "L5e": 4850, "L5i": 1065, "L6e": 14395, "L6i": 2948}
"""Neurons per population (Potjans & Diesmann 2014, Table 5)."""

# external (background) synapses per neuron
_COLUMN_BACKGROUND_SYNAPSES = {"L23e": 1600, "L23i": 1500, "L4e": 2100, "L4i": 1900,
                               "L5e": 2000, "L5i": 1900, "L6e": 2900, "L6i": 2100}

# connection probability from the column's population (row) to each target (columns in
# COLUMN_POPULATIONS order); n_syn = probability x source size
_COLUMN_PROBABILITY = {
    "L23e": (0.101, 0.135, 0.008, 0.069, 0.100, 0.055, 0.016, 0.036),
    "L23i": (0.169, 0.137, 0.006, 0.003, 0.062, 0.027, 0.007, 0.001),
    "L4e": (0.088, 0.032, 0.050, 0.079, 0.051, 0.026, 0.021, 0.003),
    "L4i": (0.082, 0.052, 0.135, 0.160, 0.006, 0.002, 0.017, 0.001),
    "L5e": (0.032, 0.075, 0.007, 0.003, 0.083, 0.060, 0.057, 0.028),
    "L5i": (0.0, 0.0, 0.0003, 0.0, 0.373, 0.316, 0.020, 0.008),
    "L6e": (0.008, 0.004, 0.045, 0.106, 0.020, 0.009, 0.040, 0.066),
    "L6i": (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.225, 0.144),
}

COLUMN_GRID = Grid(v=(-0.030, 0.015, 225))
"""DiPDE's density grid of the column: [-30, 15] mV in 0.2 mV cells."""


def column_network(grid=None, background_rate: float = 8.0,
                   background_onset: float | None = None, background_delay: float = 5e-3,
                   recurrent_delay=0.0, tau_m: float = 10e-3, v_th: float = 15e-3,
                   j_exc: float = 0.175e-3, j_inh: float = -0.7e-3) -> Network:
    """The Potjans-Diesmann (2014) cortical column as in DiPDE's example: 8 LIF
    populations, 55 recurrent connections and 8 background sources (63 connections).

    Parameters
    ----------
    grid : popdens.Grid or None
        Density grid of every population; ``None`` lets the model choose one
        (``COLUMN_GRID`` is DiPDE's: 225 cells of 0.2 mV).
    background_rate : float, default 8
        Rate of each background synapse (Hz); population ``X`` receives
        ``n_bg(X) * background_rate`` events per second of ``j_exc``.
    background_onset : float or None
        ``None`` (default): the background is constant. A time (s): the background is
        off before it and on from it (DiPDE's ``Heaviside(t)`` with 0).
    background_delay : float, default 5e-3
        Delay (s) of the background onto the excitatory populations (0 onto the
        inhibitory ones), as in DiPDE's example; it matters only with an onset.
    recurrent_delay : float or popdens.delays distribution, default 0
        Delay of the 55 recurrent connections (DiPDE: 0; the density backend couples
        explicitly, so 0 acts as one internal step).
    tau_m, v_th : float
        Membrane time constant (s) and threshold (V); reset and rest are 0 V, no
        refractory period.
    j_exc, j_inh : float
        Jump (V) of an excitatory (background and E populations) and inhibitory event.

    Returns
    -------
    Network
        Populations named as in ``COLUMN_POPULATIONS``, sources ``"bg_<population>"``.
    """
    background_rate = check_nonnegative("background_rate", background_rate)
    background_delay = check_nonnegative("background_delay", background_delay)
    j_exc = check_positive("j_exc", j_exc)
    j_inh = as_real("j_inh", j_inh)
    if j_inh >= 0:
        raise ValueError(f"j_inh must be < 0 (inhibitory jump), got {j_inh!r}")
    lif = LIF(tau_m=tau_m, v_th=v_th, v_reset=0.0, e_l=0.0, t_ref=0.0)
    net = Network()
    pops = {name: net.add_population(name, lif, grid=grid) for name in COLUMN_POPULATIONS}
    for name in COLUMN_POPULATIONS:
        rate = background_rate if background_onset is None else piecewise(
            [as_real("background_onset", background_onset)], [background_rate])
        source = net.add_poisson(f"bg_{name}", rate=rate)
        net.connect(source, pops[name], weight=j_exc,
                    n_syn=_COLUMN_BACKGROUND_SYNAPSES[name],
                    delay=background_delay if name.endswith("e") else 0.0)
    for pre in COLUMN_POPULATIONS:
        weight = j_exc if pre.endswith("e") else j_inh
        for post, probability in zip(COLUMN_POPULATIONS, _COLUMN_PROBABILITY[pre]):
            if probability > 0.0:
                net.connect(pops[pre], pops[post], weight=weight,
                            n_syn=probability * COLUMN_SIZES[pre], delay=recurrent_delay)
    return net


def column_matrices(background_rate: float = 8.0, background_delay: float = 5e-3,
                    j_exc: float = 0.175e-3, j_inh: float = -0.7e-3) -> dict:
    """The column of :func:`column_network` as weight matrices, the keyword arguments of
    :meth:`popdens.Network.from_matrix` (constant background, zero recurrent delay).

    Returns
    -------
    dict
        ``names``; ``W`` (8, 8): ``W[i, j]`` = ``j_exc`` or ``j_inh`` (by the type of
        population ``j``) where the connection probability from ``j`` to ``i`` is > 0,
        else 0; ``n_syn`` (8, 8) = probability x size of ``j``; ``sources`` (one
        background source per population), ``W_in`` (diagonal, ``j_exc``),
        ``n_syn_in`` (diagonal background in-degrees) and ``delay_in``
        (``background_delay`` onto excitatory populations).

    Examples
    --------
    >>> import popdens as pd
    >>> lif = pd.LIF(tau_m=10e-3, v_th=15e-3, v_reset=0.0, e_l=0.0, t_ref=0.0)
    >>> net = pd.Network.from_matrix(lif, grid=COLUMN_GRID, **column_matrices())
    >>> len(net.connections)
    63
    """
    names = list(COLUMN_POPULATIONS)
    prob = np.array([_COLUMN_PROBABILITY[pre] for pre in names]).T     # [post, pre]
    size = np.array([COLUMN_SIZES[n] for n in names], dtype=float)
    excitatory = np.array([n.endswith("e") for n in names])
    weight = np.where(excitatory, check_positive("j_exc", j_exc), as_real("j_inh", j_inh))
    return {
        "names": names,
        "W": np.where(prob > 0.0, weight[None, :], 0.0),
        "n_syn": prob * size[None, :],
        "sources": {f"bg_{n}": check_nonnegative("background_rate", background_rate)
                    for n in names},
        "W_in": np.diag(np.full(len(names), j_exc)),
        "n_syn_in": np.diag([float(_COLUMN_BACKGROUND_SYNAPSES[n]) for n in names]),
        "delay_in": np.diag(np.where(excitatory, background_delay, 0.0)),
    }
