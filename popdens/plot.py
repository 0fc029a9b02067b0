"""Plots of :class:`popdens.Result` objects (matplotlib only).

Every single-panel function draws into ``ax`` if given, otherwise into a new figure, and
returns the Axes (its figure is ``ax.figure``); multi-panel functions (:func:`marginals`,
:func:`summary`) return the Figure. None calls ``plt.show``. Nothing here selects a
matplotlib backend or opens a window, so the functions work under the non-interactive
``Agg`` backend; call ``matplotlib.use("Agg")`` (or set ``MPLBACKEND=Agg``) in scripts
without a display.

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

__all__ = ["rates", "density", "density_heatmap", "rate_bands", "raster", "marginals",
           "phase_plane", "summary", "axis_unit"]

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
        size = result.n_neurons
        size = size.get(name, 0) if isinstance(size, dict) else size
        text = f"Monte Carlo (N = {size:,})"
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


# --------------------------------------------------------------------------------------
# units of state variables
# --------------------------------------------------------------------------------------
# SI unit of each known state variable, for axis labels ("1": dimensionless)
# (a model class may override these with a ``state_units`` dict)
STATE_UNITS = {"v": "V", "m": "1", "h": "1", "n": "1", "w": "A", "i": "A", "i_syn": "V/s",
               "i_e": "A", "i_i": "A", "g": "S", "g_e": "S", "g_i": "S", "s": "1", "s_e": "1",
               "s_i": "1", "u": "V"}
_STATE_NAMES = {"v": "membrane potential", "m": "Na activation", "h": "Na inactivation",
                "n": "K activation", "w": "adaptation", "i": "synaptic current",
                "i_syn": "synaptic current", "g": "conductance", "s": "synaptic gate"}


def axis_unit(var: str, result=None, name: str | None = None) -> str:
    """SI unit of a state variable for labels (``"1"`` for dimensionless gates).

    The model's own ``state_units`` dict wins when ``result`` (with a description naming
    the model of population ``name``) is given; unknown names get ``"model units"``.
    """
    description = getattr(result, "description", None) or {}
    model = description.get("populations", {}).get(name, {}).get("model")
    if model is not None:
        from .scenario import model_registry

        units = getattr(model_registry().get(model), "state_units", None)
        if isinstance(units, dict) and var in units:
            return str(units[var])
    return STATE_UNITS.get(var, "model units")


def _axis_label(var: str, result=None, name: str | None = None) -> str:
    unit = axis_unit(var, result, name)
    long_name = _STATE_NAMES.get(var)
    return f"{long_name} {var} ({unit})" if long_name else f"{var} ({unit})"


def _per_unit(vars_, result=None, name: str | None = None) -> str:
    units = [axis_unit(v, result, name) for v in vars_
             if axis_unit(v, result, name) != "1"]
    if not units:
        return "1"
    if len(units) == 1:
        return f"1/{units[0]}"
    return "1/(" + "·".join(units) + ")"


# --------------------------------------------------------------------------------------
# rates with confidence bands
# --------------------------------------------------------------------------------------
def rate_bands(results, names=None, bin_width: float = 1e-3, z: float = 1.96, ax=None):
    """Firing rate against time, Monte Carlo results with confidence bands.

    Parameters
    ----------
    results : Result or sequence of Result
        Density and/or Monte Carlo results.
    names : str or sequence of str, optional
        Populations; default every population of every result.
    bin_width : float, default 1e-3
        Bin width (s), rounded to whole reporting steps.
    z : float, default 1.96
        Half-width of the band in standard errors
        (:meth:`popdens.Result.standard_error`); 1.96 gives a 95 % band.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Notes
    -----
    Every result is drawn as a line through its bin centres; Monte Carlo lines are dashed
    and carry a shaded band of mean +- ``z`` SE (labelled with the confidence level).
    """
    from math import erf, sqrt

    results = _as_list(results)
    names = _names_for(results, names)
    if not bin_width > 0:
        raise ValueError(f"bin_width must be > 0, got {bin_width!r}")
    if not z > 0:
        raise ValueError(f"z must be > 0, got {z!r}")
    level = 100.0 * erf(z / sqrt(2.0))
    ax = _new_axes(ax)
    with_name = len(names) > 1
    color_index = 0
    for name in names:
        for res in results:
            if name not in res.rates:
                continue
            t_bins, r = res.binned_rates(name, bin_width)
            step = max(1, int(round(bin_width / res.dt))) * res.dt
            centers = t_bins + 0.5 * step
            color = f"C{color_index}"
            color_index += 1
            if _is_montecarlo(res):
                se = res.standard_error(name, bin_width)
                ax.plot(centers, r, color=color, lw=1.0, ls="--",
                        label=_label(res, name, with_name))
                ax.fill_between(centers, r - z * se, r + z * se, color=color, alpha=0.25,
                                lw=0, label=f"{level:.0f} % band (±{z:g} SE)")
            else:
                ax.plot(centers, r, color=color, lw=1.5, label=_label(res, name, with_name))
    ax.set_xlabel("time t (s)")
    ax.set_ylabel(f"firing rate r (Hz, {1e3 * bin_width:g}-ms bins)")
    ax.legend(frameon=False)
    return ax


# --------------------------------------------------------------------------------------
# spike raster
# --------------------------------------------------------------------------------------
def raster(result, name: str, ax=None, max_neurons: int | None = None,
           time_range: tuple[float, float] | None = None, marker_size: float = 2.0):
    """Spike raster of the neurons whose spikes a Monte Carlo run recorded.

    Parameters
    ----------
    result : Result
        A Monte Carlo result with ``result.info["spikes"][name] = (times, indices)``:
        spike times (s) and the index of the neuron that fired.
    name : str
        Population.
    ax : matplotlib.axes.Axes, optional
    max_neurons : int, optional
        Draw only neurons with index < ``max_neurons``.
    time_range : (float, float), optional
        Time window (s) to draw.
    marker_size : float, default 2.0

    Returns
    -------
    matplotlib.axes.Axes
    """
    spikes = (getattr(result, "info", None) or {}).get("spikes")
    if not spikes or name not in spikes:
        raise ValueError(f"the {getattr(result, 'backend', '?')} result has no recorded "
                         f"spikes for population {name!r} (info['spikes'][{name!r}]); "
                         f"run the Monte Carlo backend with spike recording")
    times, indices = (np.asarray(a) for a in spikes[name])
    if times.shape != indices.shape:
        raise ValueError(f"spike times and indices of {name!r} differ in shape: "
                         f"{times.shape} and {indices.shape}")
    keep = np.ones(times.shape, dtype=bool)
    if max_neurons is not None:
        keep &= indices < max_neurons
    if time_range is not None:
        keep &= (times >= time_range[0]) & (times <= time_range[1])
    ax = _new_axes(ax)
    ax.scatter(times[keep], indices[keep], s=marker_size, marker="|", color="k",
               linewidths=0.8)
    ax.set_xlabel("time t (s)")
    ax.set_ylabel("neuron index (recorded subset)")
    if time_range is not None:
        ax.set_xlim(*time_range)
    elif result.t.size:
        ax.set_xlim(result.t[0], result.t[-1] + result.dt)
    ax.set_title(f"{name}: {int(keep.sum()):,} spikes")
    return ax


# --------------------------------------------------------------------------------------
# N-D densities
# --------------------------------------------------------------------------------------
def _recorded(result, name: str, index: int):
    """The grid and the density at one record, shaped like the grid, and its time."""
    if name not in result.densities:
        raise ValueError(f"population {name!r} not in the result; it has "
                         f"{list(result.densities)}")
    grid = result.grids[name]
    values = np.asarray(result.densities[name])
    record_times = getattr(result, "record_times", None)
    if record_times is None:   # a stationary state
        return grid, values.reshape(grid.shape), None
    if values.shape[0] == 0:
        raise ValueError(f"the {result.backend} result recorded no densities; pass "
                         f"record_times=[...] to Network.run")
    values = values.reshape((values.shape[0], *grid.shape))
    try:
        return grid, values[index], float(np.asarray(record_times)[index])
    except IndexError:
        raise IndexError(f"index {index} is out of range for {values.shape[0]} recorded "
                         f"densities") from None


def _marginal(grid, values, keep: tuple[int, ...]):
    """Integrate ``values`` over every axis not in ``keep`` (sum times cell widths)."""
    drop = tuple(k for k in range(grid.ndim) if k not in keep)
    width = float(np.prod([grid.axes[k].width for k in drop])) if drop else 1.0
    out = values.sum(axis=drop) * width if drop else values
    if len(keep) == 2 and keep[0] > keep[1]:
        out = out.T
    return out


def marginals(result, name: str, index: int = -1, other=None, fig=None):
    """One-variable marginals of a recorded (N-D) density, one panel per state variable.

    The marginal of variable ``x_k`` is the density integrated over all other variables
    (sum over the other axes times their cell widths).

    Parameters
    ----------
    result : Result or SteadyState
    name : str
        Population.
    index : int, default -1
        Which recorded density.
    other : Result, optional
        A second result (e.g. Monte Carlo) overlaid on each panel.
    fig : matplotlib.figure.Figure, optional
        Figure to draw into (its existing axes are kept); default a new one.

    Returns
    -------
    matplotlib.figure.Figure
        With one Axes per state variable (``fig.axes``).
    """
    grid, values, t = _recorded(result, name, index)
    overlay = None
    if other is not None:
        ogrid, ovalues, _ = _recorded(other, name, index)
        overlay = (ogrid, ovalues)
    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(3.6 * grid.ndim + 0.6, 3.4), layout="constrained")
    axes = fig.subplots(1, grid.ndim, squeeze=False)[0]
    for k, (ax, axis) in enumerate(zip(axes, grid.axes)):
        curve = _marginal(grid, values, (k,))
        ax.plot(axis.centers, curve, color=_DENSITY_COLOR if not _is_montecarlo(result)
                else _MONTECARLO_COLOR, lw=1.5, label=_label(result, name, False))
        if overlay is not None:
            ogrid, ovalues = overlay
            ax.stairs(_marginal(ogrid, ovalues, (k,)), ogrid.axes[k].faces,
                      color=_MONTECARLO_COLOR if _is_montecarlo(other) else "k",
                      baseline=None, label=_label(other, name, False))
        ax.set_xlabel(_axis_label(axis.name, result, name))
        ax.set_ylabel(f"marginal density ({_per_unit((axis.name,), result, name)})")
        ax.set_ylim(bottom=0.0)
    axes[0].legend(frameon=False)
    fig.suptitle(f"{name}" + (f" at t = {t:.4g} s" if t is not None else ""))
    return fig


def phase_plane(result, name: str, x: str | None = None, y: str | None = None,
                index: int = -1, nullclines: dict | None = None, ax=None,
                cmap: str = "magma_r", vmax: float | None = None):
    """Density snapshot in a plane of two state variables, with optional nullclines.

    Parameters
    ----------
    result : Result or SteadyState
        A run of a population with at least two state variables and recorded densities.
    name : str
        Population.
    x, y : str, optional
        State variables on the axes; default the first two of the grid. Other variables
        are integrated out.
    index : int, default -1
        Which recorded density.
    nullclines : dict, optional
        ``{label: (x_values, y_values)}`` curves drawn on top (e.g. the ``dv/dt = 0``
        and ``dn/dt = 0`` nullclines, computed by the caller in the axes' units).
    ax : matplotlib.axes.Axes, optional
    cmap : str, default "magma_r"
    vmax : float, optional
        Top of the colour scale.

    Returns
    -------
    matplotlib.axes.Axes
        With a colour bar of the 2D marginal density.
    """
    grid, values, t = _recorded(result, name, index)
    if grid.ndim < 2:
        raise ValueError(f"phase_plane needs a population with >= 2 state variables; "
                         f"{name!r} has {grid.names}")
    x = grid.names[0] if x is None else x
    y = (grid.names[1] if grid.names[1] != x else grid.names[0]) if y is None else y
    for var in (x, y):
        if var not in grid.names:
            raise ValueError(f"{var!r} is not a state variable of {name!r}; it has "
                             f"{grid.names}")
    if x == y:
        raise ValueError(f"x and y must differ, both are {x!r}")
    kx, ky = grid.names.index(x), grid.names.index(y)
    plane = _marginal(grid, values, (kx, ky))      # shape (nx, ny)
    ax = _new_axes(ax)
    mesh = ax.pcolormesh(grid.axes[kx].faces, grid.axes[ky].faces, plane.T, cmap=cmap,
                         shading="flat", vmin=0.0, vmax=vmax)
    bar = ax.figure.colorbar(mesh, ax=ax)
    bar.set_label(f"probability density ({_per_unit((x, y), result, name)})")
    for k, (label, curve) in enumerate((nullclines or {}).items()):
        cx, cy = (np.asarray(c, dtype=float) for c in curve)
        ax.plot(cx, cy, color=f"C{k}", lw=1.5, label=str(label))
    if nullclines:
        ax.legend(frameon=False, loc="best")
    ax.set_xlim(grid.axes[kx].lower, grid.axes[kx].upper)
    ax.set_ylim(grid.axes[ky].lower, grid.axes[ky].upper)
    ax.set_xlabel(_axis_label(x, result, name))
    ax.set_ylabel(_axis_label(y, result, name))
    ax.set_title(f"{name}" + (f" at t = {t:.4g} s" if t is not None else ""))
    return ax


def summary(result, names=None, bin_width: float = 1e-3, fig=None):
    """Overview figure of one result: rates (with bands for Monte Carlo) and, when
    densities were recorded, the last recorded density of each population (its
    ``v`` marginal for N-D populations).

    Parameters
    ----------
    result : Result
    names : str or sequence of str, optional
        Populations; default all.
    bin_width : float, default 1e-3
        Rate bins (s).
    fig : matplotlib.figure.Figure, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    names = _names_for([result], names)
    recorded = [n for n in names if n in result.densities
                and np.asarray(result.densities[n]).shape[0] > 0]
    if fig is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(11.0 if recorded else 6.5, 4.2), layout="constrained")
    axes = fig.subplots(1, 2 if recorded else 1, squeeze=False)[0]
    rate_bands(result, names=names, bin_width=min(bin_width, result.t[-1] + result.dt)
               if result.t.size else bin_width, ax=axes[0])
    axes[0].set_title("firing rates")
    if recorded:
        ax = axes[1]
        times = []
        for k, name in enumerate(recorded):
            grid, values, t = _recorded(result, name, -1)
            times.append(t)
            curve = _marginal(grid, values, (0,))
            axis = grid.axes[0]
            if _is_montecarlo(result):
                ax.stairs(curve, axis.faces, color=f"C{k}", baseline=None, label=name)
            else:
                ax.plot(axis.centers, curve, color=f"C{k}", lw=1.5, label=name)
        var = result.grids[recorded[0]].axes[0].name
        ax.set_xlabel(_axis_label(var, result, recorded[0]))
        ax.set_ylabel(f"probability density ({_per_unit((var,), result, recorded[0])})")
        ax.set_ylim(bottom=0.0)
        ax.legend(frameon=False)
        ax.set_title(f"density at t = {times[-1]:.4g} s ({result.backend})")
    title = (result.description or {}).get("title") if result.description else None
    if title:
        fig.suptitle(title)
    return fig
