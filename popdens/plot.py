"""Plots of :class:`popdens.Result` objects (matplotlib only).

Every function draws into ``ax`` if given, otherwise into a new figure, and returns the
Axes (its figure is ``ax.figure``). Nothing here selects a matplotlib backend or opens a
window, so the functions work under the non-interactive ``Agg`` backend; call
``matplotlib.use("Agg")`` (or set ``MPLBACKEND=Agg``) in scripts without a display.

Density results are drawn as lines, Monte Carlo results as steps (bins and histograms),
so that the two are told apart at a glance when overlaid.

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import popdens as pd
>>> from popdens import plot
>>> net = pd.Network()
>>> ext = net.add_poisson("ext", rate=800.0)
>>> pop = net.add_population("E", pd.LIF(tau_m=0.05, v_th=1.0, v_reset=0.0))
>>> _ = net.connect(ext, pop, weight=0.03)
>>> res = net.run(t_end=0.05, dt=1e-4, record_times=[0.05])
>>> ax = plot.rates(res)
>>> ax.get_xlabel()
'time t (s)'
"""

from __future__ import annotations

import numpy as np

__all__ = ["rates", "density", "density_heatmap"]

_DENSITY_COLOR = "C0"
_MONTECARLO_COLOR = "C1"


def _new_axes(ax):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(6.0, 4.0), layout="constrained")
    return ax


def _is_montecarlo(result) -> bool:
    return getattr(result, "backend", None) == "montecarlo"


def _label(result, name: str, with_name: bool) -> str:
    backend = getattr(result, "backend", None)
    if backend == "montecarlo":
        text = f"Monte Carlo (N = {result.n_neurons:,})"
    elif backend == "density":
        text = "density"
    else:
        text = "stationary (steady_state)"
    return f"{name}: {text}" if with_name else text


def _as_list(results) -> list:
    if isinstance(results, (list, tuple)):
        if not results:
            raise ValueError("rates needs at least one Result, got an empty sequence")
        return list(results)
    return [results]


def _names_for(results, names) -> list[str]:
    if names is None:
        out: list[str] = []
        for res in results:
            out += [n for n in res.rates if n not in out]
        return out
    if isinstance(names, str):
        names = [names]
    names = list(names)
    for res in results:
        missing = [n for n in names if n not in res.rates]
        if missing:
            raise ValueError(f"population(s) {missing} not in the {res.backend} result; it "
                             f"has {list(res.rates)}")
    return names


def rates(results, names=None, bin_width: float | None = 1e-3, ax=None):
    """Firing rate against time for one or several results.

    Parameters
    ----------
    results : Result or sequence of Result
        Density and/or Monte Carlo results (e.g. ``[res, mc]``).
    names : str or sequence of str, optional
        Populations to draw; default: every population of every result.
    bin_width : float or None, default 1e-3
        Bin width (s) over which rates are averaged; rounded to a whole number of
        reporting steps. ``None`` draws every reporting step.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; default: a new figure.

    Returns
    -------
    matplotlib.axes.Axes

    Notes
    -----
    Density rates are drawn as a line through the bin centres. Monte Carlo rates are drawn
    as steps, with a band of +-2 Poisson standard errors
    (:meth:`popdens.Result.standard_error`) around them.
    """
    results = _as_list(results)
    names = _names_for(results, names)
    ax = _new_axes(ax)
    with_name = len(names) > 1
    for k, name in enumerate(names):
        for res in results:
            if name not in res.rates:
                continue
            width = res.dt if bin_width is None else float(bin_width)
            if not width > 0:
                raise ValueError(f"bin_width must be > 0 or None, got {bin_width!r}")
            t_bins, r = res.binned_rates(name, width)
            step = max(1, int(round(width / res.dt))) * res.dt
            label = _label(res, name, with_name)
            if _is_montecarlo(res):
                color = _MONTECARLO_COLOR if not with_name else f"C{2 * k + 1}"
                edges = np.append(t_bins, t_bins[-1] + step) if t_bins.size else t_bins
                if t_bins.size:
                    se = res.standard_error(name, width)
                    ax.stairs(r, edges, color=color, lw=0.9, label=label, baseline=None)
                    band = np.append(2.0 * se, 2.0 * se[-1])
                    level = np.append(r, r[-1])
                    ax.fill_between(edges, level - band, level + band, step="post",
                                    color=color, alpha=0.25, lw=0, label="±2 SE")
            else:
                color = _DENSITY_COLOR if not with_name else f"C{2 * k}"
                ax.plot(t_bins + 0.5 * step, r, color=color, lw=1.5, label=label)
    ax.set_xlabel("time t (s)")
    bins = "per step" if bin_width is None else f"{1e3 * bin_width:g}-ms bins"
    ax.set_ylabel(f"firing rate r (Hz, {bins})")
    ax.legend(frameon=False)
    return ax


def _density_curve(result, name: str, index: int):
    """Centres, faces, the 1D density and its time (None for a stationary state)."""
    if name not in result.densities:
        raise ValueError(f"population {name!r} not in the result; it has "
                         f"{list(result.densities)}")
    axis = result.grids[name].axes[0]
    if len(result.grids[name].axes) != 1:
        raise ValueError(f"density plots a 1D density; population {name!r} has a "
                         f"{len(result.grids[name].axes)}D grid")
    values = np.asarray(result.densities[name])
    record_times = getattr(result, "record_times", None)
    if record_times is None:   # a SteadyState: one stationary density
        return axis.centers, axis.faces, values.reshape(-1), None
    if values.shape[0] == 0:
        raise ValueError(f"the {result.backend} result recorded no densities; pass "
                         f"record_times=[...] to Network.run")
    try:
        curve = values[index]
    except IndexError:
        raise IndexError(f"index {index} is out of range for {values.shape[0]} recorded "
                         f"densities") from None
    return axis.centers, axis.faces, curve.reshape(-1), float(np.asarray(record_times)[index])


def density(result, name: str, ax=None, index: int = -1, other=None):
    """A recorded 1D density against the membrane potential.

    Parameters
    ----------
    result : Result or SteadyState
        A run with recorded densities (``record_times=[...]``), or a
        :func:`popdens.steady_state` solution.
    name : str
        Population.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; default: a new figure.
    index : int, default -1
        Which recorded density (position in ``result.record_times``); the last by default.
    other : Result or SteadyState, optional
        A second result drawn on top at the same ``index``, e.g. the Monte Carlo
        histogram beside the density solution.

    Returns
    -------
    matplotlib.axes.Axes

    Notes
    -----
    The densities are per volt (per unit of ``v``). Refractory neurons are not on the grid,
    so a curve integrates to the non-refractory fraction.
    """
    ax = _new_axes(ax)
    times = []
    for res in (result, other):
        if res is None:
            continue
        centers, faces, values, t = _density_curve(res, name, index)
        if _is_montecarlo(res):
            color = _MONTECARLO_COLOR
        else:
            color = _DENSITY_COLOR if res is result else "k"
        if _is_montecarlo(res):
            ax.stairs(values, faces, color=color, lw=1.0, baseline=None,
                      label=_label(res, name, False))
        else:
            ax.plot(centers, values, color=color, lw=1.5, label=_label(res, name, False),
                    ls="--" if res is other else "-")
        if t is not None:
            times.append(t)
    ax.set_xlabel("membrane potential v (V)")
    ax.set_ylabel("probability density ρ (1/V)")
    if times and np.allclose(times, times[0]):
        ax.set_title(f"{name} at t = {times[0]:.4g} s")
    else:
        ax.set_title(name)
    ax.set_ylim(bottom=0.0)
    ax.legend(frameon=False)
    return ax


def density_heatmap(result, name: str, ax=None, cmap: str = "viridis",
                    vmax: float | None = None):
    """The recorded densities of a 1D population as an image over time and ``v``.

    Parameters
    ----------
    result : Result
        A run with several recorded densities (``record_times=[...]``).
    name : str
        Population.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; default: a new figure.
    cmap : str, default "viridis"
        Colour map.
    vmax : float, optional
        Density (1/V) at the top of the colour scale; default the largest value. A lower
        one shows the bulk when narrow peaks (e.g. at the reset) dominate.

    Returns
    -------
    matplotlib.axes.Axes
        With a colour bar labelled in 1/V. Each column spans the time from the midpoint to
        the previous record to the midpoint to the next.
    """
    if name not in result.densities:
        raise ValueError(f"population {name!r} not in the result; it has "
                         f"{list(result.densities)}")
    grid = result.grids[name]
    if len(grid.axes) != 1:
        raise ValueError(f"density_heatmap draws a 1D density; population {name!r} has a "
                         f"{len(grid.axes)}D grid")
    values = np.asarray(result.densities[name]).reshape(len(result.record_times), -1)
    if values.shape[0] == 0:
        raise ValueError(f"the {result.backend} result recorded no densities; pass "
                         f"record_times=[...] to Network.run")
    times = np.asarray(result.record_times, dtype=float)
    order = np.argsort(times, kind="stable")
    times, values = times[order], values[order]
    if times.size > 1:
        mids = 0.5 * (times[1:] + times[:-1])
        edges = np.concatenate([[times[0] - (mids[0] - times[0])], mids,
                                [times[-1] + (times[-1] - mids[-1])]])
    else:
        edges = np.array([times[0] - 0.5 * result.dt, times[0] + 0.5 * result.dt])
    ax = _new_axes(ax)
    mesh = ax.pcolormesh(edges, grid.axes[0].faces, values.T, cmap=cmap, shading="flat",
                         vmin=0.0, vmax=vmax)
    bar = ax.figure.colorbar(mesh, ax=ax)
    bar.set_label("probability density ρ (1/V)")
    ax.set_xlabel("time t (s)")
    ax.set_ylabel("membrane potential v (V)")
    ax.set_title(f"{name} ({result.backend})")
    return ax
