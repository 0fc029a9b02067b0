"""``popdens.steady_state``: stationary rates and densities of any network, each part by
the solver of the engine that runs it (the 1D solver of :mod:`popdens.backends.steady`,
the step-matrix solver of :mod:`popdens.backends.steady_nd` for N-D and spike-surface
populations), split as :func:`popdens.backends.density.split_by_engine` splits a run."""

from __future__ import annotations

import warnings

from .._checks import as_real, check_positive
from ..assembly import scheme_code
from ..network import Network
from .density import split_by_engine
from .steady import steady_state_1d
from .steady_common import SteadyState, warn_delayed_sources
from .steady_nd import steady_state_nd

__all__ = ["steady_state"]

# Most limiter iterations of an N-D solve (each builds two step matrices).
ND_MAX_ITER = 30


def steady_state(network: Network, at: float = 0.0, dt: float = 1e-4, scheme: str = "mc",
                 tol: float = 1e-9, max_iter: int = 200,
                 max_substep: float | None = None) -> SteadyState:
    """Stationary rates and densities of ``network`` with its inputs frozen at time ``at``.

    With coupled populations this is the self-consistent fixed point: each
    population's stationary rate under inputs from the others' rates, solved for by
    damped Newton iteration on the rates (robust where plain iteration oscillates).
    1D threshold populations use the 1D engine's sparse step; N-D populations (and
    spike-surface models) the null vector of the sparse matrix of the N-D engine's
    internal step (:func:`popdens.step_operator`), so each result is what a long run
    of the same grid converges to.

    Parameters
    ----------
    network : Network
        Populations driven by Poisson sources (constant, or read at ``at``) and by each
        other.
    at : float, default 0
        Time (s) at which time-varying source rates are read.
    dt : float, default 1e-4
        The reporting step of the run whose long-time limit is wanted: it sets the
        internal step exactly as :meth:`Network.run` does.
    scheme : {"mc", "vanleer", "upwind"}
        Reconstruction, as in :meth:`Network.run`.
    tol : float
        The limiter iteration ends when the rate (1D) changes by less than ``tol``,
        or (N-D) when the engine's own pair of steps moves the state by less than
        ``max(tol, 1e-7)`` of the mass (total variation).
    max_iter : int
        Most limiter iterations per solve (N-D: at most ``ND_MAX_ITER`` = 30; the
        best iterate is returned with a ``RuntimeWarning`` if its residual under the
        engine's own steps is below 1e-5 of the mass, else ``RuntimeError``).
    max_substep : float, optional
        Bound on the internal step of N-D populations, as in :meth:`Network.run`.

    Returns
    -------
    SteadyState
        N-D densities have the grid's shape (per unit phase-space volume) and are the
        state at the start of an even internal step; ``refractory`` is the pipeline
        content there.

    Examples
    --------
    >>> import popdens as pd
    >>> net = pd.Network()
    >>> ext = net.add_poisson("ext", rate=800.0)
    >>> pop = net.add_population("E", pd.LIF(tau_m=0.05, v_th=1.0, v_reset=0.0))
    >>> _ = net.connect(ext, pop, weight=0.03)
    >>> round(pd.steady_state(net).rates["E"], 1)
    11.9
    """
    if not isinstance(network, Network):
        raise TypeError(f"network must be a popdens.Network, got {network!r}")
    if not network.populations:
        raise ValueError("the network has no populations; add one with add_population")
    one_d, n_d = split_by_engine(network)
    if not n_d:
        return steady_state_1d(network, at, dt, scheme, tol, max_iter)
    at = as_real("at", at)
    dt = check_positive("dt", dt)
    scheme_code(scheme)
    for name in n_d:
        pop = network.populations[name]
        if not network.inputs_of(pop):
            warnings.warn(f"steady_state: population {name!r} has no input (no "
                          f"connection targets it); its stationary state is its free "
                          f"dynamics from rest", UserWarning, stacklevel=2)
    part = network if not one_d else network.subnetwork(n_d)
    warn_delayed_sources(part, at)
    result = steady_state_nd(part, at, dt, scheme, tol, min(max_iter, ND_MAX_ITER),
                             max_substep)
    if one_d:
        other = steady_state_1d(network.subnetwork(one_d), at, dt, scheme, tol, max_iter)
        for key in ("rates", "densities", "grids", "refractory", "iterations"):
            getattr(result, key).update(getattr(other, key))
    return result
