"""Scenario files: a network and its run settings as TOML.

A scenario file describes populations, Poisson sources, connections and how to run them;
``popdens run FILE.toml`` (or :func:`load_scenario` then :meth:`Scenario.run`) simulates it.
The whole file is validated before anything runs: unknown keys, missing fields, wrong
types and invalid values are all reported at once, each with the file's line number and
the dotted key (:class:`ScenarioError`). Nothing in a file is ever evaluated as code:
model names are looked up in a registry of known model classes (:func:`model_registry`),
rates and delays are tables of numbers with a named shape.

Format (SI units: s, V, Hz)::

    title = "LIF population, step input"        # optional

    [run]
    t_end = 0.3                 # s, required
    dt = 1e-4                   # s, reporting step (default 1e-4)
    backend = "density"         # or "montecarlo" (default "density")
    record_times = [0.1, 0.3]   # s, when to store densities (default none)

    [run.density]               # options of the density backend (optional)
    scheme = "mc"

    [run.montecarlo]            # options of the Monte Carlo backend (optional)
    n_neurons = 100000
    seed = 1

    [populations.E]
    model = "LIF"                                  # a name from model_registry()
    params = { tau_m = 0.02, v_th = 0.02, v_reset = 0.01, t_ref = 0.002 }
    grid = { v = [0.0, 0.02, 400] }                # optional: [lower, upper, num_cells]

    [sources.ext]
    rate = 800.0                                   # Hz, or a table with a shape:
    # rate = { shape = "piecewise", times = [0.0, 0.1], rates = [500.0, 1000.0] }
    # rate = { shape = "step", time = 0.1, before = 0.0, after = 800.0 }
    # rate = { shape = "sinusoid", mean = 1000.0, amplitude = 500.0, frequency = 10.0 }
    #        (optional: phase (rad), start (s), before (Hz))
    # rate = { shape = "ramp", start = 0.0, stop = 0.2, initial = 0.0, final = 1000.0 }

    [[connections]]
    pre = "ext"                 # a source or a population
    post = "E"                  # a population
    weight = 0.5e-3             # V per event (dimensionless with reversal)
    n_syn = 1                   # optional, default 1
    delay = 0.0                 # optional: s, or a table:
    # delay = { distribution = "exponential", mean = 2e-3, offset = 0.0 }
    # delay = { distribution = "gamma", mean = 2e-3, shape = 4.0 }
    # delay = { distribution = "uniform", low = 1e-3, high = 3e-3 }
    # delay = { distribution = "kernel", weights = [0.5, 0.5], bin_width = 1e-3 }
    input = "jump"              # optional: "jump" or "diffusion"
    # reversal = 0.0            # optional: V, makes it a conductance synapse

The same layout, as a dict, is what :func:`popdens.describe` returns, so
:func:`network_from_dict` rebuilds a saved result's network.
"""

from __future__ import annotations

import inspect
import math
import numbers
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

if sys.version_info >= (3, 11):
    import tomllib
else:   # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["Scenario", "ScenarioError", "load_scenario", "parse_scenario",
           "network_from_dict", "model_registry", "ramp", "locate_keys", "RATE_SHAPES",
           "DELAY_DISTRIBUTIONS"]

# Model classes a scenario may name; resolved with getattr so that models added to popdens
# later are picked up without changing this list's users.
KNOWN_MODELS = ("LIF", "LIFSynaptic", "HodgkinHuxley", "ReducedHH")

RATE_SHAPES = {
    "constant": ({"rate"}, set()),
    "piecewise": ({"times", "rates"}, set()),
    "step": ({"time", "after"}, {"before"}),
    "sinusoid": ({"mean", "amplitude", "frequency"}, {"phase", "start", "before"}),
    "ramp": ({"start", "stop", "final"}, {"initial"}),
}
DELAY_DISTRIBUTIONS = {
    "fixed": ({"delay"}, set()),
    "exponential": ({"mean"}, {"offset"}),
    "gamma": ({"mean", "shape"}, {"offset"}),
    "uniform": ({"low", "high"}, set()),
    "kernel": ({"weights", "bin_width"}, {"offset"}),
}
TOP_KEYS = ({"run", "populations"}, {"title", "sources", "connections", "popdens_version"})
RUN_KEYS = ({"t_end"}, {"dt", "backend", "record_times", "density", "montecarlo"})
POPULATION_KEYS = ({"model"}, {"params", "grid", "init", "boundaries"})
SOURCE_KEYS = ({"rate"}, set())
CONNECTION_KEYS = ({"pre", "post", "weight"}, {"n_syn", "delay", "input", "reversal"})
DEFAULT_DT = 1e-4
# Arguments of a backend's run function that a scenario sets elsewhere
_RUN_ARGUMENTS = {"network", "t_end", "dt", "record_times"}


# --------------------------------------------------------------------------------------
# a rate shape that popdens.network does not have
# --------------------------------------------------------------------------------------
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
        from ._checks import as_real, check_nonnegative

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


# --------------------------------------------------------------------------------------
# model registry
# --------------------------------------------------------------------------------------
def model_registry() -> dict:
    """Model classes a scenario may name: ``{name: class}``.

    The known names (``LIF``, and ``LIFSynaptic``, ``HodgkinHuxley``, ``ReducedHH`` where
    this popdens has them) plus every class exported by :mod:`popdens.models` that has
    ``state_vars``.
    """
    import popdens
    from popdens import models

    registry = {}
    for name in KNOWN_MODELS:
        cls = getattr(popdens, name, None) or getattr(models, name, None)
        if isinstance(cls, type):
            registry[name] = cls
    for name in getattr(models, "__all__", ()):
        cls = getattr(models, name, None)
        if isinstance(cls, type) and hasattr(cls, "state_vars"):
            registry.setdefault(name, cls)
    return registry


# --------------------------------------------------------------------------------------
# where keys are in the text
# --------------------------------------------------------------------------------------
class _Scanner:
    """Maps every key path of a (valid) TOML text to the line it is written on.

    TOML parsers return plain dicts without positions, so semantic errors would have no
    line; this scanner walks the text once (headers, dotted keys, inline tables, arrays,
    all string forms) and records ``path -> line`` for each key, with array elements as
    integer path parts (``("connections", 1, "weight")``).
    """

    def __init__(self, text: str):
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines: dict[tuple, int] = {}
        self.array_index: dict[tuple, int] = {}

    # --- low level ---------------------------------------------------------------------
    def _peek(self, n: int = 1) -> str:
        return self.text[self.pos:self.pos + n]

    def _advance(self, n: int = 1) -> None:
        chunk = self.text[self.pos:self.pos + n]
        self.line += chunk.count("\n")
        self.pos += n

    def _skip_space(self, newlines: bool) -> None:
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if c in " \t\r" or (newlines and c == "\n"):
                self._advance()
            elif c == "#":
                end = self.text.find("\n", self.pos)
                self._advance((len(self.text) if end < 0 else end) - self.pos)
            else:
                return

    def _string(self) -> str:
        quote = self._peek()
        if self._peek(3) == quote * 3:
            self._advance(3)
            end = self.pos
            while True:
                end = self.text.index(quote * 3, end)
                if quote == '"' and self._escaped(end):
                    end += 1
                    continue
                break
            # a closing delimiter may be followed by up to two more quotes
            while self.text[end + 3:end + 4] == quote:
                end += 1
            value = self.text[self.pos:end]
            self._advance(end + 3 - self.pos)
            return value
        self._advance()
        out = []
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if c == "\\" and quote == '"':
                out.append(self.text[self.pos:self.pos + 2])
                self._advance(2)
                continue
            self._advance()
            if c == quote:
                break
            out.append(c)
        return "".join(out)

    def _escaped(self, index: int) -> bool:
        backslashes = 0
        while index - 1 - backslashes >= 0 and self.text[index - 1 - backslashes] == "\\":
            backslashes += 1
        return backslashes % 2 == 1

    def _key(self) -> list[str]:
        parts = []
        while True:
            self._skip_space(False)
            c = self._peek()
            if c in "\"'":
                parts.append(self._string())
            else:
                start = self.pos
                while self.pos < len(self.text) and (self.text[self.pos].isalnum() or
                                                     self.text[self.pos] in "_-"):
                    self._advance()
                parts.append(self.text[start:self.pos])
            self._skip_space(False)
            if self._peek() == ".":
                self._advance()
                continue
            return parts

    def _record(self, path: tuple, line: int) -> None:
        for k in range(1, len(path) + 1):
            self.lines.setdefault(path[:k], line)

    # --- structure ---------------------------------------------------------------------
    def _resolve_header(self, parts: list[str]) -> tuple:
        """Insert the current index of every array of tables along a header path."""
        path: tuple = ()
        for part in parts:
            path += (part,)
            if path in self.array_index:
                path += (self.array_index[path],)
        return path

    def _value(self, path: tuple) -> None:
        self._skip_space(False)
        c = self._peek()
        if c == "{":
            self._advance()
            while True:
                self._skip_space(True)
                if self._peek() == "}":
                    self._advance()
                    return
                line = self.line
                key = tuple(self._key())
                self._record(path + key, line)
                self._advance()           # "="
                self._value(path + key)
                self._skip_space(True)
                if self._peek() == ",":
                    self._advance()
        elif c == "[":
            self._advance()
            index = 0
            while True:
                self._skip_space(True)
                if self._peek() == "]":
                    self._advance()
                    return
                self._record(path + (index,), self.line)
                self._value(path + (index,))
                index += 1
                self._skip_space(True)
                if self._peek() == ",":
                    self._advance()
        elif c in "\"'":
            self._string()
        else:
            while self.pos < len(self.text) and self.text[self.pos] not in ",]}\n#":
                self._advance()

    def scan(self) -> dict[tuple, int]:
        current: tuple = ()
        try:
            while True:
                self._skip_space(True)
                if self.pos >= len(self.text):
                    break
                line = self.line
                if self._peek(2) == "[[":
                    self._advance(2)
                    parts = self._key()
                    self._advance(2)
                    outer = self._resolve_header(parts[:-1]) + (parts[-1],)
                    self.array_index[outer] = self.array_index.get(outer, -1) + 1
                    current = outer + (self.array_index[outer],)
                    self._record(current, line)
                elif self._peek() == "[":
                    self._advance()
                    current = self._resolve_header(self._key())
                    self._advance()
                    self._record(current, line)
                else:
                    key = tuple(self._key())
                    self._record(current + key, line)
                    self._advance()       # "="
                    self._value(current + key)
        except (ValueError, IndexError):   # pragma: no cover - invalid TOML is caught first
            pass
        return self.lines


def locate_keys(text: str) -> dict[tuple, int]:
    """``{key path: line number}`` for every key of a TOML text (1-based lines).

    Examples
    --------
    >>> lines = locate_keys('[run]\\nt_end = 1.0\\n[[connections]]\\nweight = 2\\n')
    >>> lines[("run", "t_end")], lines[("connections", 0, "weight")]
    (2, 4)
    """
    return _Scanner(text).scan()


# --------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------
def _dotted(path: tuple) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = part if part.replace("_", "").replace("-", "").isalnum() else repr(part)
            out += f".{text}" if out else text
    return out or "(top level)"


@dataclass
class Problem:
    """One invalid entry of a scenario: key path, line (or None) and message."""

    path: tuple
    line: int | None
    message: str

    def format(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line is not None else source
        return f"{where}: {_dotted(self.path)}: {self.message}"


class ScenarioError(ValueError):
    """An invalid scenario; ``problems`` lists every invalid entry with its line.

    The message has one line per problem, ``FILE:LINE: dotted.key: what is wrong``.
    """

    def __init__(self, problems: list[Problem], source: str = "<scenario>"):
        self.problems = list(problems)
        self.source = source
        lines = [p.format(source) for p in self.problems]
        header = (f"invalid scenario {source}: {len(lines)} problem"
                  f"{'s' if len(lines) != 1 else ''}")
        super().__init__("\n".join([header, *lines]))


def _describe_value(value) -> str:
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return f"{value!r} ({type(value).__name__})"


class _Checker:
    """Collects problems while the scenario is validated and built."""

    def __init__(self, lines: dict[tuple, int] | None):
        self.lines = lines or {}
        self.problems: list[Problem] = []

    def line_of(self, path: tuple) -> int | None:
        for k in range(len(path), 0, -1):
            if path[:k] in self.lines:
                return self.lines[path[:k]]
        return None

    def error(self, path: tuple, message: str) -> None:
        self.problems.append(Problem(tuple(path), self.line_of(tuple(path)), message))

    # --- shapes --------------------------------------------------------------------------
    def table(self, path: tuple, value, required: set, optional: set,
              what: str = "table") -> dict | None:
        if not isinstance(value, dict):
            self.error(path, f"must be a {what}, got {_describe_value(value)}")
            return None
        ok = True
        for key in value:
            if key not in required and key not in optional:
                known = ", ".join(sorted(required | optional))
                self.error(path + (key,), f"unknown key {key!r}; valid keys here: {known}")
                ok = False
        for key in sorted(required):
            if key not in value or value[key] is None:
                self.error(path, f"missing required key {key!r}")
                ok = False
        return value if ok else None

    def number(self, path: tuple, value, minimum: float | None = None,
               strict: bool = False, unit: str = "") -> float | None:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            self.error(path, f"must be a number{f' ({unit})' if unit else ''}, got "
                             f"{_describe_value(value)}")
            return None
        value = float(value)
        if not math.isfinite(value):
            self.error(path, f"must be finite, got {value!r}")
            return None
        if minimum is not None and (value <= minimum if strict else value < minimum):
            self.error(path, f"must be {'>' if strict else '>='} {minimum:g}, got {value!r}")
            return None
        return value

    def integer(self, path: tuple, value, minimum: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
                not float(value).is_integer():
            self.error(path, f"must be a whole number, got {_describe_value(value)}")
            return None
        if value < minimum:
            self.error(path, f"must be >= {minimum}, got {value!r}")
            return None
        return int(value)

    def string(self, path: tuple, value, choices=None) -> str | None:
        if not isinstance(value, str):
            self.error(path, f"must be a string, got {_describe_value(value)}")
            return None
        if choices is not None and value not in choices:
            self.error(path, f"must be one of {', '.join(map(repr, choices))}, got "
                             f"{value!r}")
            return None
        return value

    def numbers(self, path: tuple, value, minimum: float | None = None,
                nonempty: bool = True) -> list[float] | None:
        if not isinstance(value, list) or (nonempty and not value):
            self.error(path, f"must be {'a non-empty' if nonempty else 'an'} array of "
                             f"numbers, got {_describe_value(value)}")
            return None
        out = [self.number(path + (k,), v, minimum) for k, v in enumerate(value)]
        return None if any(v is None for v in out) else out

    def attempt(self, path: tuple, build, *args, **kwargs):
        """Call a popdens constructor; its ValueError/TypeError becomes a problem at
        ``path`` (or at the argument its message names, when that has a line)."""
        try:
            return build(*args, **kwargs)
        except (ValueError, TypeError) as exc:
            message = str(exc)
            target = path
            for key in kwargs:
                if (f"{key} " in message or f"{key}=" in message or f"'{key}'" in message) \
                        and path + (key,) in self.lines:
                    target = path + (key,)
                    break
            self.error(target, message)
            return None


# --------------------------------------------------------------------------------------
# building
# --------------------------------------------------------------------------------------
def _build_rate(check: _Checker, path: tuple, spec):
    from .network import piecewise, sinusoid

    if isinstance(spec, numbers.Real) and not isinstance(spec, bool):
        return check.number(path, spec, minimum=0.0, unit="Hz")
    if not isinstance(spec, dict):
        check.error(path, f"must be a rate in Hz (a number >= 0) or a table with a "
                          f"'shape' ({', '.join(RATE_SHAPES)}), got {_describe_value(spec)}")
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
    table = check.table(path, spec, required | {"shape"}, optional)
    if table is None:
        return None
    n_before = len(check.problems)
    if shape == "constant":
        return check.number(path + ("rate",), spec["rate"], minimum=0.0, unit="Hz")
    if shape == "piecewise":
        times = check.numbers(path + ("times",), spec["times"])
        rates = check.numbers(path + ("rates",), spec["rates"], minimum=0.0)
        if times is None or rates is None:
            return None
        if len(times) != len(rates):
            check.error(path + ("rates",), f"must have as many entries as times "
                                           f"({len(times)}), got {len(rates)}")
            return None
        return check.attempt(path, piecewise, times=times, rates=rates)
    values = {}
    for key in sorted((required | optional) & set(spec)):
        minimum = None if key in ("time", "start", "stop", "phase") else 0.0
        values[key] = check.number(path + (key,), spec[key], minimum=minimum)
    if len(check.problems) > n_before:
        return None
    if shape == "step":
        before, after, time = values.get("before", 0.0), values["after"], values["time"]
        if time <= 0.0:
            return piecewise([0.0], [after])
        return piecewise([0.0, time], [before, after])
    if shape == "sinusoid":
        return check.attempt(path, sinusoid, **values)
    return check.attempt(path, ramp, **values)


def _build_delay(check: _Checker, path: tuple, spec):
    from . import delays

    if spec is None:
        return 0.0
    if isinstance(spec, numbers.Real) and not isinstance(spec, bool):
        return check.number(path, spec, minimum=0.0, unit="s")
    if not isinstance(spec, dict):
        check.error(path, f"must be a delay in s (a number >= 0) or a table with a "
                          f"'distribution' ({', '.join(DELAY_DISTRIBUTIONS)}), got "
                          f"{_describe_value(spec)}")
        return None
    kind = spec.get("distribution")
    if kind is None:
        check.error(path, f"missing required key 'distribution' (one of "
                          f"{', '.join(DELAY_DISTRIBUTIONS)})")
        return None
    if check.string(path + ("distribution",), kind, tuple(DELAY_DISTRIBUTIONS)) is None:
        return None
    required, optional = DELAY_DISTRIBUTIONS[kind]
    if check.table(path, spec, required | {"distribution"}, optional) is None:
        return None
    values = {}
    n_before = len(check.problems)
    for key in sorted((required | optional) & set(spec)):
        if key == "weights":
            values[key] = check.numbers(path + (key,), spec[key], minimum=0.0)
        else:
            values[key] = check.number(path + (key,), spec[key], minimum=0.0)
    if len(check.problems) > n_before:
        return None
    return check.attempt(path, getattr(delays, kind), **values)


def _model_arguments(cls) -> tuple[set, set]:
    """Required and optional constructor arguments of a model class."""
    required, optional = set(), set()
    for name, parameter in list(inspect.signature(cls).parameters.items()):
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        (required if parameter.default is parameter.empty else optional).add(name)
    return required, optional


def _build_population(check: _Checker, network, path: tuple, name: str, spec) -> None:
    from .grid import Grid

    table = check.table(path, spec, *POPULATION_KEYS)
    if table is None:
        return
    registry = model_registry()
    model_name = check.string(path + ("model",), spec["model"])
    if model_name is None:
        return
    if model_name not in registry:
        check.error(path + ("model",), f"unknown model {model_name!r}; known models: "
                                       f"{', '.join(sorted(registry))}")
        return
    cls = registry[model_name]
    params = spec.get("params") or {}
    required, optional = _model_arguments(cls)
    params = check.table(path + ("params",), params, required, optional,
                         what=f"table of {model_name} parameters")
    if params is None:
        return
    n_before = len(check.problems)
    for key, value in params.items():
        if isinstance(value, (dict, list)) or not isinstance(value, (numbers.Real, str)):
            check.error(path + ("params", key), f"must be a number, got "
                                                f"{_describe_value(value)}")
    if len(check.problems) > n_before:
        return
    model = check.attempt(path + ("params",), cls, **params)
    if model is None:
        return
    grid = None
    if spec.get("grid") is not None:
        axes = spec["grid"]
        if not isinstance(axes, dict) or not axes:
            check.error(path + ("grid",), f"must be a table of axes, e.g. grid = {{ v = "
                                          f"[0.0, 0.02, 400] }}, got {_describe_value(axes)}")
            return
        built = {}
        for axis, bounds in axes.items():
            apath = path + ("grid", axis)
            if not isinstance(bounds, list) or len(bounds) != 3:
                check.error(apath, f"must be [lower, upper, num_cells], got "
                                   f"{_describe_value(bounds)}")
                continue
            lower = check.number(apath + (0,), bounds[0])
            upper = check.number(apath + (1,), bounds[1])
            cells = check.integer(apath + (2,), bounds[2], 2)
            built[axis] = (lower, upper, cells)
        if len(check.problems) > n_before:
            return
        grid = check.attempt(path + ("grid",), Grid, **built)
        if grid is None:
            return
    init = spec.get("init")
    if init is not None:
        check.error(path + ("init",), "an initial density cannot be given in a file "
                                      "(callables are not serialisable); leave it out to "
                                      "start at rest")
        return
    boundaries = spec.get("boundaries")
    if boundaries is not None:
        if not isinstance(boundaries, dict):
            check.error(path + ("boundaries",), f"must be a table {{axis = \"absorb\" or "
                                                f"[lower, upper]}}, got "
                                                f"{_describe_value(boundaries)}")
            return
        # a file holds lists; add_population checks the kinds
        boundaries = {axis: tuple(kinds) if isinstance(kinds, list) else kinds
                      for axis, kinds in boundaries.items()}
    check.attempt(path, network.add_population, name, model, grid=grid,
                  boundaries=boundaries)


def _build_connection(check: _Checker, network, path: tuple, spec, declared=()) -> None:
    from .network import INPUT_KINDS

    if check.table(path, spec, *CONNECTION_KEYS) is None:
        return
    n_before = len(check.problems)
    names = set(network.populations) | set(network.sources)
    pre = check.string(path + ("pre",), spec["pre"])
    post = check.string(path + ("post",), spec["post"])
    if pre is not None and pre not in names and pre not in declared:
        check.error(path + ("pre",), f"{pre!r} is not a population or source of this "
                                     f"scenario")
    if post is not None and post not in network.populations and post not in declared:
        check.error(path + ("post",), f"{post!r} is not a population of this scenario")
    if pre not in names or post not in network.populations:
        return   # an invalid entry, reported where it is declared (or above)
    weight = check.number(path + ("weight",), spec["weight"])
    n_syn = 1.0 if spec.get("n_syn") is None else \
        check.number(path + ("n_syn",), spec["n_syn"], minimum=0.0)
    delay = _build_delay(check, path + ("delay",), spec.get("delay"))
    kind = "jump" if spec.get("input") is None else \
        check.string(path + ("input",), spec["input"], INPUT_KINDS)
    reversal = None if spec.get("reversal") is None else \
        check.number(path + ("reversal",), spec["reversal"], unit="V")
    if len(check.problems) > n_before:
        return
    check.attempt(path, network.connect, pre, post, weight=weight, n_syn=n_syn, delay=delay,
                  input=kind, reversal=reversal)


def _names_table(check: _Checker, path: tuple, value) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        check.error(path, f"must be a table of named entries ([{path[0]}.NAME]), got "
                          f"{_describe_value(value)}")
        return {}
    return value


def _build_network(check: _Checker, data: dict):
    from .network import Network

    network = Network()
    populations = _names_table(check, ("populations",), data.get("populations"))
    sources = _names_table(check, ("sources",), data.get("sources"))
    taken = set()
    for name, spec in sources.items():
        path = ("sources", name)
        if check.table(path, spec, *SOURCE_KEYS) is None:
            continue
        rate = _build_rate(check, path + ("rate",), spec["rate"])
        if rate is not None:
            check.attempt(path, network.add_poisson, name, rate)
        taken.add(name)
    for name, spec in populations.items():
        path = ("populations", name)
        if name in taken:
            check.error(path, f"name {name!r} is already used by a source")
            continue
        _build_population(check, network, path, name, spec)
    connections = data.get("connections")
    if connections is None:
        connections = []
    if not isinstance(connections, list):
        check.error(("connections",), f"must be an array of tables ([[connections]]), got "
                                      f"{_describe_value(connections)}")
        connections = []
    for k, spec in enumerate(connections):
        _build_connection(check, network, ("connections", k), spec,
                          declared=set(sources) | set(populations))
    if not populations and "populations" in data:
        check.error(("populations",), "needs at least one population")
    return network


def _backend_options(check: _Checker, backend: str, spec) -> dict:
    """Options of one backend's table, checked against its run function's signature."""
    from .network import _BACKEND_RUNNERS

    path = ("run", backend)
    if spec is None:
        return {}
    runner = _BACKEND_RUNNERS.get(backend)
    if runner is None:
        check.error(path, f"backend {backend!r} is not available")
        return {}
    parameters = {name: p for name, p in inspect.signature(runner).parameters.items()
                  if name not in _RUN_ARGUMENTS and p.kind not in (p.VAR_POSITIONAL,
                                                                   p.VAR_KEYWORD)}
    table = check.table(path, spec, set(), set(parameters),
                        what=f"table of {backend} options")
    if table is None:
        return {}
    options = {}
    for key, value in table.items():
        default = parameters[key].default
        kpath = path + (key,)
        if key == "n_neurons" and isinstance(value, dict):
            # one size per population: { E = 10000, I = 2500 }
            options[key] = {name: check.integer(kpath + (name,), size, 1)
                            for name, size in value.items()}
        elif key in ("n_neurons",):
            options[key] = check.integer(kpath, value, 1)
        elif key in ("seed",):
            options[key] = check.integer(kpath, value, 0)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                check.error(kpath, f"must be true or false, got {_describe_value(value)}")
            options[key] = value
        elif isinstance(default, str):
            options[key] = check.string(kpath, value)
        elif isinstance(default, numbers.Integral):
            options[key] = check.integer(kpath, value, 0)
        elif isinstance(default, numbers.Real):
            options[key] = check.number(kpath, value)
        elif isinstance(value, (dict, list)) or not isinstance(value, (numbers.Real, str)):
            check.error(kpath, f"must be a number, a string or true/false, got "
                               f"{_describe_value(value)}")
        else:   # no typed default: the backend checks the value when the run starts
            options[key] = value
    return options


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
            Backend options that replace the file's (e.g. ``n_neurons``, ``seed``).

        Returns
        -------
        popdens.Result
            ``result.description`` also holds ``"run"``: the settings used and
            ``"title"``.
        """
        from .network import BACKENDS

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
        result = self.network.run(t_end=t_end, dt=dt, backend=backend,
                                  record_times=record_times, **options)
        if result.description is not None:
            result.description["title"] = self.title
            result.description["run"] = {"t_end": t_end, "dt": dt, "backend": backend,
                                         "record_times": record_times,
                                         backend: dict(options)}
        return result


def _scenario_from_dict(data, check: _Checker, source: str) -> Scenario:
    if not isinstance(data, dict):
        raise ScenarioError([Problem((), None, "must be a table")], source)
    check.table((), data, *TOP_KEYS, what="scenario")
    title = data.get("title", "")
    if title and not isinstance(title, str):
        check.error(("title",), f"must be a string, got {_describe_value(title)}")
        title = ""
    run = data.get("run")
    t_end, dt, backend, record, options = None, DEFAULT_DT, "density", [], {}
    if run is not None and check.table(("run",), run, *RUN_KEYS) is not None:
        from .network import BACKENDS

        t_end = check.number(("run", "t_end"), run["t_end"], minimum=0.0, strict=True,
                             unit="s")
        if run.get("dt") is not None:
            dt = check.number(("run", "dt"), run["dt"], minimum=0.0, strict=True, unit="s")
        if run.get("backend") is not None:
            backend = check.string(("run", "backend"), run["backend"], BACKENDS)
        if run.get("record_times") is not None:
            record = check.numbers(("run", "record_times"), run["record_times"],
                                   minimum=0.0, nonempty=False) or []
            if t_end is not None:
                for k, t in enumerate(record):
                    if t > t_end:
                        check.error(("run", "record_times", k),
                                    f"must be <= t_end = {t_end:g} s, got {t!r}")
        for name in BACKENDS:
            options[name] = _backend_options(check, name, run.get(name))
        if t_end is not None and dt is not None and dt > t_end:
            check.error(("run", "dt"), f"must be <= t_end = {t_end:g} s, got {dt!r}")
    network = _build_network(check, data)
    if check.problems:
        raise ScenarioError(check.problems, source)
    return Scenario(network=network, t_end=t_end, dt=dt, backend=backend,
                    record_times=record, options=options, title=title, source=source,
                    data=data)


def parse_scenario(text: str, source: str = "<string>") -> Scenario:
    """Validate a scenario given as TOML text and build its network (nothing runs).

    Parameters
    ----------
    text : str
        TOML text in the format of this module's docstring.
    source : str, default "<string>"
        Name used in error messages (the file name).

    Returns
    -------
    Scenario

    Raises
    ------
    ScenarioError
        Listing every problem as ``SOURCE:LINE: dotted.key: message``; for TOML syntax
        errors, the parser's own line and column.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        found = re.search(r"line (\d+)", str(exc))
        if line is None and found:
            line = int(found.group(1))
        raise ScenarioError([Problem((), line, f"not valid TOML: {exc}")], source) from None
    return _scenario_from_dict(data, _Checker(locate_keys(text)), source)


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
        If the file is invalid (every problem, with its line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such scenario file: {str(path)!r}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError([Problem((), None, f"not UTF-8 text: {exc}")], str(path)) \
            from None
    return parse_scenario(text, source=str(path))


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
    check = _Checker(None)
    parts = {k: data[k] for k in ("populations", "sources", "connections") if k in data}
    network = _build_network(check, parts)
    if check.problems:
        raise ScenarioError(check.problems, "<description>")
    return network
