"""The JSON-able description of a network: enough to rebuild it.

:func:`describe` turns a :class:`popdens.Network` into a plain dict in the layout of a
scenario file (:mod:`popdens.scenario`): ``populations`` (model class name, parameters,
grid), ``sources`` (rate spec), ``connections`` (pre, post, weight, n_syn, delay spec,
input, reversal). ``Network.run`` attaches it to every :class:`popdens.Result`, and
:mod:`popdens.io` saves it with the arrays. Callables (rates given as Python functions,
``init=`` densities) cannot be stored; they appear as ``{"shape": "callable", "repr": ...,
"note": "callable, not serialisable"}``. This module introspects descriptions only; it
imports only the rate shapes (:mod:`popdens.rates`) and the version, so that
:mod:`popdens.network` can import it.
"""

from __future__ import annotations

import inspect
import numbers

import numpy as np

from ._version import __version__
from .rates import piecewise, sinusoid

__all__ = ["describe", "describe_rate", "describe_delay", "describe_model",
           "describe_rate_unit", "NOT_SERIALISABLE"]

NOT_SERIALISABLE = "callable, not serialisable"


def _plain(value):
    """A JSON-able version of a parameter value (numbers, strings, lists, dicts)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if callable(value):
        return {"shape": "callable", "repr": repr(value), "note": NOT_SERIALISABLE}
    return {"repr": repr(value), "note": "not serialisable"}


def describe_model(model) -> dict:
    """Class name and constructor parameters of a neuron model.

    Uses ``model.params()`` when the model has it; otherwise the attributes named like the
    arguments of the model's ``__init__``.

    Parameters
    ----------
    model : neuron model, e.g. :class:`popdens.LIF`

    Returns
    -------
    dict
        ``{"model": class name, "params": {name: value}}`` (SI units).
    """
    if hasattr(model, "params") and callable(model.params):
        params = dict(model.params())
    else:
        params = {}
        try:
            signature = inspect.signature(type(model).__init__)
        except (TypeError, ValueError):   # pragma: no cover - builtins only
            signature = None
        if signature is not None:
            for name in list(signature.parameters)[1:]:
                if hasattr(model, name):
                    params[name] = getattr(model, name)
    return {"model": type(model).__name__, "params": _plain(params)}


def describe_rate(rate):
    """The JSON-able spec of a source's rate.

    Parameters
    ----------
    rate : float, :class:`popdens.piecewise`, :class:`popdens.sinusoid`, an object with a
        ``spec()`` method (e.g. :class:`popdens.scenario.ramp`), or a callable

    Returns
    -------
    float or dict
        A number (Hz) for a constant rate; otherwise a dict with a ``shape`` key:
        ``{"shape": "piecewise", "times": [...], "rates": [...]}``,
        ``{"shape": "sinusoid", "mean", "amplitude", "frequency", "phase", "start",
        "before"}``, the object's own ``spec()``, or for any other callable
        ``{"shape": "callable", "repr": ..., "note": "callable, not serialisable"}``.
    """
    if isinstance(rate, piecewise):
        return {"shape": "piecewise", "times": rate.times.tolist(),
                "rates": rate.rates.tolist()}
    if isinstance(rate, sinusoid):
        return {"shape": "sinusoid", "mean": rate.mean_rate, "amplitude": rate.amplitude,
                "frequency": rate.frequency, "phase": rate.phase, "start": rate.start,
                "before": rate.before}
    spec = getattr(rate, "spec", None)
    if callable(spec):
        return _plain(spec())
    if callable(rate):
        return {"shape": "callable", "repr": repr(rate), "note": NOT_SERIALISABLE}
    return _plain(rate)


def describe_delay(delay):
    """The JSON-able spec of a connection delay.

    Returns
    -------
    float or dict
        A number (s) for a fixed delay; otherwise ``{"distribution": name, ...}`` with the
        arguments of the matching :mod:`popdens.delays` constructor (``exponential``:
        mean, offset; ``gamma``: mean, shape, offset; ``uniform``: low, high; ``kernel``:
        weights, bin_width, offset).
    """
    if isinstance(delay, numbers.Real):
        return float(delay)
    kind = type(delay).__name__.lstrip("_").lower()
    if getattr(delay, "is_fixed", False):
        return float(delay.offset)
    if kind == "exponential":
        return {"distribution": "exponential", "mean": delay.scale, "offset": delay.offset}
    if kind == "gamma":
        return {"distribution": "gamma", "mean": delay.shape * delay.scale,
                "shape": delay.shape, "offset": delay.offset}
    if kind == "uniform":
        return {"distribution": "uniform", "low": delay.offset,
                "high": delay.offset + delay.width}
    if kind == "kernel":
        return {"distribution": "kernel", "weights": delay.weights.tolist(),
                "bin_width": delay.bin_width, "offset": delay.offset}
    return {"distribution": kind, "repr": repr(delay), "note": "not serialisable"}


def _spec_or_marker(obj):
    """``obj.spec()`` when it has one (transfer functions, synaptic filters), else the
    not-serialisable marker of a callable."""
    spec = getattr(obj, "spec", None)
    if callable(spec):
        return _plain(spec())
    return {"shape": "callable", "repr": repr(obj), "note": NOT_SERIALISABLE}


def describe_rate_unit(unit) -> dict:
    """The JSON-able description of a rate unit (:class:`popdens.RatePopulation`).

    Returns
    -------
    dict
        ``{"tau", "transfer", "bias", "drive", "r0", "method"}``: ``transfer`` is the
        transfer function's ``spec()`` (``{"kind": "sigmoid", "max_rate": ..., ...}``)
        or the callable marker; ``drive`` is None, a number, or a rate spec as
        :func:`describe_rate` gives it.
    """
    return {"tau": float(unit.tau), "transfer": _spec_or_marker(unit.transfer),
            "bias": float(unit.bias),
            "drive": None if unit.drive is None else describe_rate(unit.drive),
            "r0": float(unit.r0), "method": unit.method}


def _describe_grid(grid):
    if grid is None:
        return None
    return {a.name: [a.lower, a.upper, a.num_cells] for a in grid.axes}


def describe(network) -> dict:
    """A JSON-able description of a network, enough to rebuild it.

    Parameters
    ----------
    network : popdens.Network

    Returns
    -------
    dict
        ``{"popdens_version", "populations": {name: {"model", "params", "grid", "init"}},
        "sources": {name: {"rate": spec}}, "connections": [{"pre", "post", "weight",
        "n_syn", "delay", "input", "reversal"}]}``, and ``"rate_units": {name:
        describe_rate_unit(...)}`` when the network has rate units (a connection with
        a synaptic filter adds ``"synapse": {"kind": "psc", "tau_s", "n"}`` or
        ``{"kind": "biexponential", "tau_rise", "tau_decay"}``). ``grid`` is ``{axis: [lower, upper,
        num_cells]}`` or None (the model's default grid; the grid actually used is in
        ``Result.grids``); ``init`` is None or the callable marker. The layout matches a
        scenario file's, so :func:`popdens.scenario.network_from_dict` rebuilds the
        network when every rate is serialisable.

    Examples
    --------
    >>> import popdens as pd
    >>> net = pd.Network()
    >>> ext = net.add_poisson("ext", rate=800.0)
    >>> pop = net.add_population("E", pd.LIF(tau_m=0.05, v_th=1.0, v_reset=0.0))
    >>> _ = net.connect(ext, pop, weight=0.03)
    >>> d = describe(net)
    >>> d["populations"]["E"]["model"], d["sources"]["ext"]["rate"]
    ('LIF', 800.0)
    """
    populations = {}
    for name, pop in network.populations.items():
        entry = describe_model(pop.model)
        entry["grid"] = _describe_grid(pop.grid)
        entry["init"] = None if pop.init is None else _plain(pop.init)
        if pop.boundaries:
            entry["boundaries"] = {axis: list(kinds) for axis, kinds in pop.boundaries.items()}
        populations[name] = entry
    sources = {name: {"rate": describe_rate(src.rate)}
               for name, src in network.sources.items()}
    connections = []
    for conn in network.connections:
        connections.append({
            "pre": conn.pre.name, "post": conn.post.name, "weight": float(conn.weight),
            "n_syn": _plain(conn.n_syn), "delay": describe_delay(
                conn.delay if getattr(conn, "synapse", None) is None
                else conn.transmission_delay),
            "input": conn.input,
            "reversal": None if conn.reversal is None else float(conn.reversal)})
        if getattr(conn, "synapse", None) is not None:
            connections[-1]["synapse"] = _spec_or_marker(conn.synapse)
    out = {"popdens_version": __version__, "populations": populations,
           "sources": sources, "connections": connections}
    units = getattr(network, "rate_populations", {})
    if units:   # only then, so descriptions of purely spiking networks keep their layout
        out["rate_units"] = {name: describe_rate_unit(u) for name, u in units.items()}
    return out
