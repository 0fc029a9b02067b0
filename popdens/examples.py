"""Ready-made networks from the literature, backend-agnostic descriptions.

:func:`brunel_network` builds Brunel's (2000) sparsely connected network of excitatory and
inhibitory LIF neurons (model A); run it with either backend::

    net = brunel_network(g=5.0, eta=2.0)
    density = net.run(1.0, 1e-4)
    mc = net.run(1.0, 1e-4, backend="montecarlo", n_neurons=brunel_sizes(), seed=1)

Reference: N. Brunel (2000), Dynamics of sparsely connected networks of excitatory and
inhibitory spiking neurons, J. Comput. Neurosci. 8:183-208.
"""

from __future__ import annotations

from ._checks import check_nonnegative, check_positive
from .models.lif import LIF
from .network import Network

__all__ = ["brunel_network", "brunel_sizes", "BRUNEL_N_E", "BRUNEL_N_I"]

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
