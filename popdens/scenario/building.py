"""Scenario data to a network: the builders, :class:`Scenario` and the entry points."""

from __future__ import annotations

import inspect
import numbers
from dataclasses import dataclass, field

import numpy as np

from .. import models
from .parsing import Problem, ScenarioError, parse_toml, read_text
from .schema import (
    DELAY_DISTRIBUTIONS,
    RATE_SHAPES,
    SYNAPSES,
    TRANSFERS,
    Checker,
    describe_value,
)

__all__ = ["Scenario", "load_scenario", "parse_scenario", "network_from_dict",
           "model_registry", "ramp", "KNOWN_MODELS"]

# Model classes a scenario may name; resolved with getattr so that models added to popdens
# later are picked up without changing this list's users.
KNOWN_MODELS = ("LIF", "LIFSynaptic", "HodgkinHuxley", "ReducedHH", "EIF", "QIF", "AdEx",
                "Izhikevich", "FitzHughNagumo")
# Sizes a file may ask for; beyond them a typo, not a simulation (checked before anything
# is allocated)
MAX_CELLS = 10**8
MAX_NEURONS = 10**9
MAX_STEPS = 1e10


class ramp:
    """Linear ramp of a Poisson rate (Hz): ``initial`` before ``start``, then linear to
    ``final`` at ``stop``, ``final`` afterwards.

    Parameters
    ----------
    start, stop : float
        Ramp start and end (s), ``stop > start``.
    initial, final : float
        Rates (Hz) before and after the ramp, >= 0.

    Notes
    -----
    A callable rate for :meth:`popdens.Network.add_poisson`; its step means (2-point
    Gauss-Legendre in ``rate_table``) are exact except in the steps containing ``start``
    or ``stop``. :meth:`mean` gives exact interval means.

    Examples
    --------
    >>> r = ramp(start=0.0, stop=0.2, initial=0.0, final=1000.0)
    >>> r(0.1)
    500.0
    """

    def __init__(self, start: float, stop: float, final: float, initial: float = 0.0):
        from .._checks import as_real, check_nonnegative

        self.start = as_real("start", start)
        self.stop = as_real("stop", stop)
        if not self.stop > self.start:
            raise ValueError(f"ramp needs stop > start, got start={start!r}, stop={stop!r}")
        self.initial = check_nonnegative("initial", initial)
        self.final = check_nonnegative("final", final)

    def __call__(self, t):
        t = np.asarray(t, dtype=float)
        frac = np.clip((t - self.start) / (self.stop - self.start), 0.0, 1.0)
        out = self.initial + frac * (self.final - self.initial)
        return out if out.ndim else float(out)

    def _integral(self, t):
        # integral of the rate from start to t (negative before start)
        t = np.asarray(t, dtype=float)
        span = self.stop - self.start
        before = self.initial * np.minimum(t - self.start, 0.0)
        s = np.clip(t - self.start, 0.0, span)
        inside = self.initial * s + 0.5 * (self.final - self.initial) * s * s / span
        after = self.final * np.maximum(t - self.stop, 0.0)
        return before + inside + after

    def mean(self, t0, t1):
        """Exact mean rate (Hz) over each interval ``[t0, t1)``."""
        t0 = np.asarray(t0, dtype=float)
        t1 = np.asarray(t1, dtype=float)
        return (self._integral(t1) - self._integral(t0)) / (t1 - t0)

    def spec(self) -> dict:
        """The scenario-file spec of this rate."""
        return {"shape": "ramp", "start": self.start, "stop": self.stop,
                "initial": self.initial, "final": self.final}

    def __repr__(self) -> str:
        return (f"ramp(start={self.start!r}, stop={self.stop!r}, initial={self.initial!r}, "
                f"final={self.final!r})")


def model_registry() -> dict:
    """Model classes a scenario may name: ``{name: class}``.

    The known names (``LIF``, and ``LIFSynaptic``, ``HodgkinHuxley``, ``ReducedHH`` where
    this popdens has them) plus every class exported by :mod:`popdens.models` that has
    ``state_vars``.
    """
    registry = {}
    for name in KNOWN_MODELS:
        cls = getattr(models, name, None)
        if isinstance(cls, type):
            registry[name] = cls
    for name in getattr(models, "__all__", ()):
        cls = getattr(models, name, None)
        if isinstance(cls, type) and hasattr(cls, "state_vars"):
            registry.setdefault(name, cls)
    registry.pop("EquationModel", None)   # written as a table: model = { equations = ... }
    return registry



@dataclass
class Scenario:
    """A validated scenario: the network and how to run it.

    Attributes
    ----------
    network : popdens.Network
    t_end, dt : float
        Duration and reporting step (s).
    backend : str
        ``"density"`` or ``"montecarlo"``.
    record_times : list of float
        Times (s) at which densities are stored.
    options : dict
        Per backend, its options from ``[run.density]`` / ``[run.montecarlo]``.
    title : str
    source : str
        File name (or ``"<string>"``), for messages.
    data : dict
        The parsed file.
    lines : dict
        Line of each key path in the file (for messages).
    """

    network: object
    t_end: float
    dt: float
    backend: str = "density"
    record_times: list = field(default_factory=list)
    options: dict = field(default_factory=dict)
    title: str = ""
    source: str = "<scenario>"
    data: dict = field(default_factory=dict, repr=False)

    lines: dict = field(default_factory=dict, repr=False)

    def _settings(self, t_end, backend, dt, overrides) -> tuple:
        """``(t_end, dt, backend, record_times, options)`` with the overrides applied."""
        from ..network import BACKENDS

        t_end = self.t_end if t_end is None else float(t_end)
        dt = self.dt if dt is None else float(dt)
        backend = self.backend if backend is None else backend
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if not (t_end > 0 and dt > 0):
            raise ValueError(f"t_end and dt must be > 0, got t_end={t_end!r}, dt={dt!r}")
        dt = min(dt, t_end)
        options = dict(self.options.get(backend, {}))
        options.update({k: v for k, v in overrides.items() if v is not None})
        record_times = [t for t in self.record_times if t <= t_end + 1e-12]
        if self.record_times and not record_times:
            record_times = [t_end]    # all after a shortened run: keep the final state
        return t_end, dt, backend, record_times, options

    def check_resources(self, t_end: float | None = None, backend: str | None = None,
                        dt: float | None = None, max_memory=None, max_steps=None,
                        **overrides) -> dict:
        """Size the run as :meth:`run` would, without allocating anything.

        Parameters
        ----------
        t_end, backend, dt, **overrides
            As for :meth:`run`.
        max_memory, max_steps : optional
            The limits (see :meth:`popdens.Network.run`); defaults if None.

        Returns
        -------
        dict
            ``{"memory": bytes, "steps": internal steps}``, the estimates.

        Raises
        ------
        ScenarioError
            If the run exceeds a limit: ``FILE:LINE: key: message`` at the key (or its
            table) that makes it large.
        """
        from .. import _limits

        t_end, dt, backend, record_times, options = self._settings(t_end, backend, dt,
                                                                   overrides)
        run_limits = _limits.limits(max_memory, max_steps)
        try:
            return _limits.check_run(self.network, t_end, dt, backend,
                                     {**options, "record_times": record_times}, run_limits)
        except _limits.ResourceLimitError as exc:
            check = Checker(self.lines)
            check.error(exc.path, str(exc))
            raise ScenarioError(check.problems, self.source) from None

    def run(self, t_end: float | None = None, backend: str | None = None,
            dt: float | None = None, **overrides):
        """Run the scenario, optionally overriding its settings.

        Parameters
        ----------
        t_end, dt : float, optional
            Override the file's duration / reporting step (s). Record times after a
            shorter ``t_end`` are dropped (if that drops all, the final state is recorded).
        backend : {"density", "montecarlo"}, optional
            Override the file's backend; the options come from that backend's table.
        **overrides
            Backend options that replace the file's (e.g. ``n_neurons``, ``seed``), and
            the limits ``max_memory``, ``max_steps`` (see :meth:`popdens.Network.run`).

        Returns
        -------
        popdens.Result
            ``result.description`` also holds ``"run"``: the settings used and
            ``"title"``.
        """
        t_end, dt, backend, record_times, options = self._settings(t_end, backend, dt,
                                                                   overrides)
        result = self.network.run(t_end=t_end, dt=dt, backend=backend,
                                  record_times=record_times, **options)
        if result.description is not None:
            result.description["title"] = self.title
            run_options = {k: v for k, v in options.items()
                           if k not in ("max_memory", "max_steps")}
            result.description["run"] = {"t_end": t_end, "dt": dt, "backend": backend,
                                         "record_times": record_times,
                                         backend: run_options}
        return result


# --------------------------------------------------------------------------------------
# building: every entry is checked in full even when another one failed, so that one
# pass reports every problem of the file
# --------------------------------------------------------------------------------------
def _shape_values(check: Checker, path: tuple, spec: dict, keys: set, weights=()) -> dict:
    values = {}
    for key in sorted(keys & set(spec)):
        minimum = None if key in ("time", "start", "stop", "phase") else 0.0
        if key in weights:
            values[key] = check.numbers(path + (key,), spec[key], minimum=0.0)
        else:
            values[key] = check.number(path + (key,), spec[key], minimum=minimum)
    return values


def _build_rate(check: Checker, path: tuple, spec):
    from ..network import piecewise, sinusoid

    if isinstance(spec, numbers.Real) and not isinstance(spec, bool):
        return check.number(path, spec, minimum=0.0, unit="Hz")
    if not isinstance(spec, dict):
        check.error(path, f"must be a rate in Hz (a number >= 0) or a table with a "
                          f"'shape' ({', '.join(RATE_SHAPES)}), got {describe_value(spec)}")
        return None
    shape = spec.get("shape")
    if shape == "callable":
        check.error(path, "a callable rate was not saved (callables are not serialisable); "
                          "give it as a number or a table with a shape")
        return None
    if shape is None:
        check.error(path, f"missing required key 'shape' (one of {', '.join(RATE_SHAPES)})")
        return None
    if check.string(path + ("shape",), shape, tuple(RATE_SHAPES)) is None:
        return None
    required, optional = RATE_SHAPES[shape]
    mark = check.mark()
    check.table(path, spec, required | {"shape"}, optional)
    values = _shape_values(check, path, spec, (required | optional) - {"times", "rates"})
    if shape == "piecewise":
        values["times"] = check.numbers(path + ("times",), spec["times"]) \
            if "times" in spec else None
        values["rates"] = check.numbers(path + ("rates",), spec["rates"], minimum=0.0) \
            if "rates" in spec else None
        if values["times"] is not None and values["rates"] is not None and \
                len(values["times"]) != len(values["rates"]):
            check.error(path + ("rates",), f"must have as many entries as times "
                                           f"({len(values['times'])}), got "
                                           f"{len(values['rates'])}")
    if check.failed_since(mark):
        return None
    if shape == "constant":
        return values["rate"]
    if shape == "piecewise":
        return check.attempt(path, piecewise, times=values["times"], rates=values["rates"])
    if shape == "step":
        before, after, time = values.get("before", 0.0), values["after"], values["time"]
        if time <= 0.0:
            return piecewise([0.0], [after])
        return check.attempt(path, piecewise, [0.0, time], [before, after])
    if shape == "sinusoid":
        return check.attempt(path, sinusoid, **values)
    return check.attempt(path, ramp, **values)


def _build_delay(check: Checker, path: tuple, spec):
    from .. import delays

    if isinstance(spec, numbers.Real) and not isinstance(spec, bool):
        return check.number(path, spec, minimum=0.0, unit="s")
    if not isinstance(spec, dict):
        check.error(path, f"must be a delay in s (a number >= 0) or a table with a "
                          f"'distribution' ({', '.join(DELAY_DISTRIBUTIONS)}), got "
                          f"{describe_value(spec)}")
        return None
    kind = spec.get("distribution")
    if kind is None:
        check.error(path, f"missing required key 'distribution' (one of "
                          f"{', '.join(DELAY_DISTRIBUTIONS)})")
        return None
    if check.string(path + ("distribution",), kind, tuple(DELAY_DISTRIBUTIONS)) is None:
        return None
    required, optional = DELAY_DISTRIBUTIONS[kind]
    mark = check.mark()
    check.table(path, spec, required | {"distribution"}, optional)
    values = _shape_values(check, path, spec, required | optional, weights=("weights",))
    if check.failed_since(mark):
        return None
    return check.attempt(path, getattr(delays, kind), **values)


def _build_kind(check: Checker, path: tuple, spec, kinds: dict, module, what: str):
    """A transfer function or synaptic filter from ``{kind = NAME, argument = number}``:
    ``getattr(module, NAME)(**arguments)``, arguments checked against ``kinds``."""
    if not isinstance(spec, dict):
        check.error(path, f"must be a table with a 'kind' ({', '.join(kinds)}) for the "
                          f"{what}, got {describe_value(spec)}")
        return None
    kind = spec.get("kind")
    if spec.get("shape") == "callable":
        check.error(path, f"a callable {what} was not saved (callables are not "
                          f"serialisable); give a table with a 'kind' ({', '.join(kinds)})")
        return None
    if kind is None:
        check.error(path, f"missing required key 'kind' (one of {', '.join(kinds)})")
        return None
    if check.string(path + ("kind",), kind, tuple(kinds)) is None:
        return None
    required, optional = kinds[kind]
    mark = check.mark()
    check.table(path, spec, required | {"kind"}, optional)
    values = {}
    for key in sorted((required | optional) & set(spec)):
        if key == "n":
            values[key] = check.integer(path + (key,), spec[key], 0, 64)
        elif key == "max_rate" and spec[key] == float("inf"):
            values[key] = float("inf")    # a saturation-free threshold-linear unit
        else:
            values[key] = check.number(path + (key,), spec[key],
                                       None if key == "threshold" else 0.0)
    if check.failed_since(mark):
        return None
    return check.attempt(path, getattr(module, kind), **values)


def _build_rate_unit(check: Checker, network, path: tuple, name: str, spec) -> None:
    from .. import transfer

    values = check.section("rate_units.NAME", path, spec)
    if values is None:
        return
    mark = check.mark()
    function = None if spec.get("transfer") is None else \
        _build_kind(check, path + ("transfer",), spec["transfer"], TRANSFERS, transfer,
                    "transfer function")
    drive = spec.get("drive")
    if isinstance(drive, numbers.Real) and not isinstance(drive, bool):
        drive = check.number(path + ("drive",), drive)      # an input: any sign
    elif drive is not None:
        drive = _build_rate(check, path + ("drive",), drive)
        if drive is None:
            return
    if check.failed_since(mark) or function is None or values.get("tau") is None:
        return
    check.attempt(path, network.add_rate_population, name, values["tau"], function,
                  bias=values["bias"], drive=drive, r0=values["r0"],
                  method=values["method"])


def _model_arguments(cls) -> tuple[set, set]:
    """Required and optional constructor arguments of a model class."""
    required, optional = set(), set()
    for name, parameter in list(inspect.signature(cls).parameters.items()):
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        (required if parameter.default is parameter.empty else optional).add(name)
    return required, optional


# Keys of an equations table (``model = { equations = "...", ... }``): the arguments of
# popdens.EquationModel a file can hold (the grid is the population's ``grid``).
EQUATION_KEYS = ({"equations"}, {"threshold", "reset", "refractory", "spike_surface",
                                 "parameters", "units", "resting_state", "input_var"})


def _build_equation_model(check: Checker, path: tuple, table):
    """An :class:`popdens.EquationModel` from an equations table; an error in the text
    is reported at its line in the file (the ``equations`` key's line plus the line of
    the text, for a multi-line string)."""
    from ..equations import EquationError

    mark = check.mark()
    table = check.table(path, table, *EQUATION_KEYS, what="model name or equations table")
    if table is None:
        return None
    for key in ("equations", "threshold", "spike_surface", "input_var"):
        if table.get(key) is not None:
            check.string(path + (key,), table[key])
    reset = table.get("reset")
    if reset is not None and not (isinstance(reset, str) or isinstance(reset, list) and all(
            isinstance(r, str) for r in reset)):
        check.error(path + ("reset",), f"must be a string or an array of strings, got "
                                       f"{describe_value(reset)}")
    if table.get("refractory") is not None:
        check.number(path + ("refractory",), table["refractory"], 0.0, unit="s")
    for name, value in (table.get("parameters") or {}).items():
        check.number(path + ("parameters", name), value)
    for name, value in (table.get("units") or {}).items():
        check.string(path + ("units", name), value)
    rest = table.get("resting_state")
    if rest is not None and not isinstance(rest, numbers.Real):
        check.numbers(path + ("resting_state",), rest)
    for key in ("parameters", "units"):
        if table.get(key) is not None and not isinstance(table[key], dict):
            check.error(path + (key,), f"must be a table, got {describe_value(table[key])}")
    if check.failed_since(mark):
        return None
    text_errors = []

    def build(**arguments):
        try:
            return models.EquationModel(**arguments)
        except EquationError as exc:
            text_errors.append(exc)
            return None

    model = check.attempt(path, build, **table)
    for exc in text_errors:
        key = "equations" if exc.line is not None else _event_key(str(exc))
        line = check.line_of(path + (key,))
        if line is not None and exc.line is not None and "\n" in table["equations"]:
            line += exc.line
        check.problems.append(Problem(path + (key,), line, str(exc).split("\n")[0]))
    return model


def _event_key(message: str) -> str:
    """The key an event error belongs to (its message names the event)."""
    for key in ("threshold", "reset", "spike_surface"):
        if f"{key}: " in message:
            return key
    return "equations"


def _build_model(check: Checker, path: tuple, spec: dict, model_name):
    if isinstance(model_name, dict):
        if spec.get("params") is not None:
            check.error(path + ("params",), "an equations model takes its values from "
                                            "model.parameters, not params")
            return None
        return _build_equation_model(check, path + ("model",), model_name)
    if model_name is not None and not isinstance(model_name, str):
        check.error(path + ("model",), f"must be a model name or an equations table "
                                       f"{{ equations = \"...\", threshold = ..., ... }}, "
                                       f"got {describe_value(model_name)}")
        return None
    registry = model_registry()
    if model_name is not None and model_name not in registry:
        check.error(path + ("model",), f"unknown model {model_name!r}; known models: "
                                       f"{', '.join(sorted(registry))}")
        return None
    params = spec.get("params") or {}
    if model_name is None:
        return None
    cls = registry[model_name]
    mark = check.mark()
    params = check.table(path + ("params",), params, *_model_arguments(cls),
                         what=f"table of {model_name} parameters")
    if params is None:
        return None
    for key, value in params.items():
        if isinstance(value, (dict, list)) or not isinstance(value, (numbers.Real, str)):
            check.error(path + ("params", key), f"must be a number, got "
                                                f"{describe_value(value)}")
        elif isinstance(value, numbers.Real) and not isinstance(value, bool):
            check.number(path + ("params", key), value)
    if check.failed_since(mark):
        return None
    return check.attempt(path + ("params",), cls, **params)


def _build_grid(check: Checker, path: tuple, axes):
    from ..grid import Grid

    if not isinstance(axes, dict) or not axes:
        check.error(path, f"must be a table of axes, e.g. grid = {{ v = [0.0, 0.02, 400] }}, "
                          f"got {describe_value(axes)}")
        return None
    built, mark = {}, check.mark()
    for axis, bounds in axes.items():
        apath = path + (axis,)
        if not isinstance(bounds, list) or len(bounds) != 3:
            check.error(apath, f"must be [lower, upper, num_cells], got "
                               f"{describe_value(bounds)}")
            continue
        lower = check.number(apath + (0,), bounds[0])
        upper = check.number(apath + (1,), bounds[1])
        cells = check.integer(apath + (2,), bounds[2], 2, MAX_CELLS)
        built[axis] = (lower, upper, cells)
    if check.failed_since(mark):
        return None
    return check.attempt(path, Grid, **built)


def _build_population(check: Checker, network, path: tuple, name: str, spec) -> None:
    values = check.section("populations.NAME", path, spec)
    if values is None:
        return
    mark = check.mark()
    model = _build_model(check, path, spec, values.get("model"))
    grid = None if spec.get("grid") is None else _build_grid(check, path + ("grid",),
                                                             spec["grid"])
    if spec.get("init") is not None:
        check.error(path + ("init",), "an initial density cannot be given in a file "
                                      "(callables are not serialisable); leave it out to "
                                      "start at rest")
    boundaries = spec.get("boundaries")
    if boundaries is not None:
        if not isinstance(boundaries, dict):
            check.error(path + ("boundaries",), f"must be a table {{axis = \"absorb\" or "
                                                f"[lower, upper]}}, got "
                                                f"{describe_value(boundaries)}")
        else:   # a file holds lists; add_population checks the kinds
            boundaries = {axis: tuple(kinds) if isinstance(kinds, list) else kinds
                          for axis, kinds in boundaries.items()}
    if check.failed_since(mark) or model is None:
        return
    check.attempt(path, network.add_population, name, model, grid=grid,
                  boundaries=boundaries)


def _build_connection(check: Checker, network, path: tuple, spec, sources: set,
                      populations: set) -> None:
    from .. import synapses

    values = check.section("connections[k]", path, spec, what="table ([[connections]])")
    if values is None:
        return
    mark = check.mark()
    pre, post = values.get("pre"), values.get("post")
    if pre is not None and pre not in sources | populations:
        check.error(path + ("pre",), f"{pre!r} is not a population, rate unit or source "
                                     f"of this scenario")
    if post is not None and post in sources:
        check.error(path + ("post",), f"{post!r} is a source; a connection's post must be "
                                      f"a population or a rate unit")
    elif post is not None and post not in populations:
        check.error(path + ("post",), f"{post!r} is not a population or rate unit of this "
                                      f"scenario")
    delay = 0.0 if spec.get("delay") is None else \
        _build_delay(check, path + ("delay",), spec["delay"])
    synapse = None if spec.get("synapse") is None else \
        _build_kind(check, path + ("synapse",), spec["synapse"], SYNAPSES, synapses,
                    "synaptic filter")
    if check.failed_since(mark) or None in (pre, post, values.get("weight")):
        return
    built = {**network.sources, **network.populations, **network.rate_populations}
    if pre not in built or post not in built or post in network.sources:
        return   # declared, but invalid: reported where it is declared
    check.attempt(path, network.connect, pre, post, weight=values["weight"],
                  n_syn=values["n_syn"], delay=delay, input=values["input"],
                  reversal=values.get("reversal"), synapse=synapse)


def _names_table(check: Checker, key: str, value) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        check.error((key,), f"must be a table of named entries ([{key}.NAME]), got "
                            f"{describe_value(value)}")
        return {}
    return value


def _build_network(check: Checker, data: dict):
    from ..network import Network

    network = Network()
    populations = _names_table(check, "populations", data.get("populations"))
    sources = _names_table(check, "sources", data.get("sources"))
    for name, spec in sources.items():
        path = ("sources", name)
        values = check.section("sources.NAME", path, spec)
        if values is None or spec.get("rate") is None:
            continue
        rate = _build_rate(check, path + ("rate",), spec["rate"])
        if rate is not None:
            check.attempt(path, network.add_poisson, name, rate)
    for name, spec in populations.items():
        path = ("populations", name)
        if name in sources:
            check.error(path, f"name {name!r} is already used by a source")
            continue
        _build_population(check, network, path, name, spec)
    units = _names_table(check, "rate_units", data.get("rate_units"))
    for name, spec in units.items():
        path = ("rate_units", name)
        if name in sources or name in populations:
            check.error(path, f"name {name!r} is already used by a "
                              f"{'source' if name in sources else 'population'}")
            continue
        _build_rate_unit(check, network, path, name, spec)
    connections = data.get("connections", [])
    if not isinstance(connections, list):
        check.error(("connections",), f"must be an array of tables ([[connections]]), got "
                                      f"{describe_value(connections)}")
        connections = []
    for k, spec in enumerate(connections):
        _build_connection(check, network, ("connections", k), spec, set(sources),
                          set(populations) | set(units))
    if not populations and "populations" in data:
        check.error(("populations",), "needs at least one population")
    return network


def _backend_options(check: Checker, backend: str, spec, populations) -> dict:
    """The options of ``[run.BACKEND]``, checked with the schema the backend's run uses."""
    path = ("run", backend)
    if spec is None:
        return {}
    values = check.section(f"run.{backend}", path, spec,
                           what=f"table of {backend} options")
    if values is None:
        return {}
    options = {k: v for k, v in values.items() if k in spec}
    sizes = spec.get("n_neurons")
    if isinstance(sizes, dict):   # one size per population: { E = 10000, I = 2500 }
        options["n_neurons"] = {
            name: check.integer(path + ("n_neurons", name), n, 1, MAX_NEURONS)
            for name, n in sizes.items()}
        for name in sizes:
            if name not in populations:
                check.error(path + ("n_neurons", name), f"{name!r} is not a population "
                                                        f"of this scenario")
        for name in populations:
            if name not in sizes:
                check.error(path + ("n_neurons",), f"missing a size for population "
                                                   f"{name!r}")
    elif sizes is not None:
        options["n_neurons"] = check.integer(path + ("n_neurons",), sizes, 1, MAX_NEURONS)
    return options


def _check_steps(check: Checker, t_end: float, dt: float, key: str) -> None:
    steps = t_end / dt
    if abs(steps - round(steps)) > 1e-9 * max(1.0, steps):
        nearest = max(1, round(steps)) * dt
        check.error(("run", key), f"t_end = {t_end!r} s is not a whole number of steps "
                                   f"dt = {dt!r} s ({steps:.6g} steps); use t_end = "
                                   f"{nearest:.12g} s or a dt that divides it")
    elif steps > MAX_STEPS:
        check.error(("run", key), f"t_end / dt = {steps:.3g} steps; at most {MAX_STEPS:g} "
                                   f"in a scenario")


def _run_settings(check: Checker, run, populations) -> dict:
    values = check.section("run", ("run",), run)
    if values is None:
        return {}
    t_end, dt = values.get("t_end"), values.get("dt")
    if t_end is not None and dt is not None:
        if dt > t_end:
            check.error(("run", "dt"), f"must be <= t_end = {t_end:g} s, got {dt!r}")
        else:
            _check_steps(check, t_end, dt, "dt" if "dt" in run else "t_end")
    for k, t in enumerate(values.get("record_times") or []):
        if t_end is not None and t > t_end:
            check.error(("run", "record_times", k), f"must be <= t_end = {t_end:g} s, got "
                                                    f"{t!r}")
    values["options"] = {name: _backend_options(check, name, run.get(name), populations)
                         for name in ("density", "montecarlo")}
    return values


def _scenario_from_dict(data, check: Checker, source: str) -> Scenario:
    values = check.section("", (), data, what="scenario")
    if values is None:
        raise ScenarioError(check.problems, source)
    title = values.get("title") or ""
    populations = data.get("populations") if isinstance(data.get("populations"), dict) \
        else {}
    run = _run_settings(check, data["run"], populations) if "run" in data else {}
    network = _build_network(check, data)
    if check.problems:
        raise ScenarioError(check.problems, source)
    return Scenario(network=network, t_end=run["t_end"], dt=run["dt"],
                    backend=run["backend"], record_times=run["record_times"],
                    options=run["options"], title=title, source=source, data=data,
                    lines=check.lines)


def parse_scenario(text: str, source: str = "<string>") -> Scenario:
    """Validate a scenario given as TOML text and build its network (nothing runs).

    Parameters
    ----------
    text : str
        TOML text in the format of :mod:`popdens.scenario`.
    source : str, default "<string>"
        Name used in error messages (the file name).

    Returns
    -------
    Scenario

    Raises
    ------
    ScenarioError
        Listing every problem as ``SOURCE:LINE: dotted.key: message``; for TOML syntax
        errors, the parser's own line and column. No other exception, whatever the text.
    """
    data, lines = parse_toml(text, source)
    return _scenario_from_dict(data, Checker(lines), source)


def load_scenario(path) -> Scenario:
    """Read, validate and build a scenario file (nothing runs).

    Parameters
    ----------
    path : str or Path
        A ``.toml`` file.

    Returns
    -------
    Scenario

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ScenarioError
        If the path is a folder or the file is invalid (every problem, with its line).
    """
    text, source = read_text(path)
    return parse_scenario(text, source=source)


def network_from_dict(data: dict):
    """Build the network of a scenario-shaped dict, e.g. ``Result.description``.

    Parameters
    ----------
    data : dict
        With ``populations``, optional ``sources`` and ``connections`` as in a scenario
        file (``run`` and other top-level keys are ignored).

    Returns
    -------
    popdens.Network

    Raises
    ------
    ScenarioError
        If an entry is invalid or not serialisable (e.g. a callable rate).
    """
    check = Checker(None)
    parts = {k: data[k] for k in ("populations", "sources", "rate_units", "connections")
             if k in data}
    network = _build_network(check, parts)
    if check.problems:
        raise ScenarioError(check.problems, "<description>")
    return network
