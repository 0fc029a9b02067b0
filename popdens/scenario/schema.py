"""The scenario-file schema, declared once, and the checker that applies it.

:data:`SECTIONS` lists every table of a scenario file with its keys (:class:`Key`: kind,
whether required, unit, bounds, choices, default). ``popdens check`` and ``popdens run``
validate with the same table (:meth:`Checker.section`), and the README's scenario-file
reference is :func:`reference_table` of it (a test compares the two).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from .parsing import Problem

__all__ = ["Key", "SECTIONS", "RATE_SHAPES", "DELAY_DISTRIBUTIONS", "TRANSFERS",
           "SYNAPSES", "DEFAULT_DT",
           "Checker", "describe_value", "reference_table"]

DEFAULT_DT = 1e-4
# Density schemes and Monte Carlo modes, as the backends spell them
SCHEMES = ("mc", "vanleer", "upwind")
CONNECTIVITIES = ("fixed_indegree", "poisson")
TIMINGS = ("exact", "grid")


@dataclass(frozen=True)
class Key:
    """One key of a scenario table.

    ``kind``: ``number``, ``integer``, ``string``, ``bool``, ``numbers`` (array of
    numbers), or a structured kind checked by its builder (``table``, ``tables``,
    ``rate``, ``delay``, ``sizes``, ``axes``, ``boundaries``, ``params``, ``model``: a
    model name or an equations table).
    """

    name: str
    kind: str
    doc: str
    required: bool = False
    unit: str = ""
    minimum: float | None = None
    strict: bool = False         # minimum excluded
    choices: tuple | None = None
    default: object = None


SECTIONS: dict[str, tuple[Key, ...]] = {
    "": (
        Key("title", "string", "shown by `popdens run`"),
        Key("popdens_version", "string", "written by saved descriptions; ignored"),
        Key("run", "table", "how to run", required=True),
        Key("populations", "table", "`[populations.NAME]`, at least one", required=True),
        Key("sources", "table", "`[sources.NAME]` Poisson sources"),
        Key("rate_units", "table", "`[rate_units.NAME]` rate units"),
        Key("connections", "tables", "`[[connections]]`"),
    ),
    "run": (
        Key("t_end", "number", "duration; a whole number of `dt`", required=True, unit="s",
            minimum=0.0, strict=True),
        Key("dt", "number", "reporting step, <= t_end", unit="s", minimum=0.0, strict=True,
            default=DEFAULT_DT),
        Key("backend", "string", "backend", choices=("density", "montecarlo"),
            default="density"),
        Key("record_times", "numbers", "when to store densities, each <= t_end", unit="s",
            minimum=0.0, default=[]),
        Key("density", "table", "`[run.density]` options"),
        Key("montecarlo", "table", "`[run.montecarlo]` options"),
    ),
    "run.density": (
        Key("scheme", "string", "reconstruction in cells", choices=SCHEMES, default="mc"),
        Key("record_every", "integer", "also store the density every k steps",
            minimum=1),
        Key("max_substep", "number", "bound on the internal step", unit="s", minimum=0.0,
            strict=True),
        Key("progress", "bool", "progress bar on a terminal", default=True),
    ),
    "run.montecarlo": (
        Key("n_neurons", "sizes", "neurons per population, or `{ NAME = N }`", minimum=1,
            default=10_000),
        Key("seed", "integer", "random seed (none: drawn, kept in the result)", minimum=0),
        Key("connectivity", "string", "population-to-population input",
            choices=CONNECTIVITIES),
        Key("record_spikes", "integer", "spike times of the first k neurons", minimum=0,
            default=0),
        Key("timing", "string", "input events at exact times or on the step grid",
            choices=TIMINGS, default="exact"),
        Key("bridge", "bool", "Brownian-bridge threshold correction (LIF)", default=True),
        Key("internal_dt", "number", "integration step of N-D models", unit="s",
            minimum=0.0, strict=True),
    ),
    "populations.NAME": (
        Key("model", "model", "LIF, LIFSynaptic, HodgkinHuxley, ReducedHH, EIF, QIF, "
            "AdEx, Izhikevich, FitzHughNagumo, or an equations table (`EquationModel`)",
            required=True),
        Key("params", "params", "the model's constructor arguments (SI units)"),
        Key("grid", "axes", "`{ AXIS = [lower, upper, num_cells] }` per state variable"),
        Key("boundaries", "boundaries", "N-D outer faces: `{ AXIS = [lower, upper] }` of "
                                        "reflect / outflow / absorb"),
        Key("init", "none", "not allowed (callables are not serialisable)"),
    ),
    "sources.NAME": (
        Key("rate", "rate", "a number, or a table with a `shape`", required=True,
            unit="Hz"),
    ),
    "rate_units.NAME": (
        Key("tau", "number", "time constant of `tau dr/dt = -r + f(input)`", required=True,
            unit="s", minimum=0.0, strict=True),
        Key("transfer", "transfer", "`f`: a table with a `kind`", required=True),
        Key("bias", "number", "constant input", default=0.0),
        Key("drive", "drive", "external input: a number (any sign) or a table with a "
                              "`shape`"),
        Key("r0", "number", "rate at t = 0", unit="Hz", minimum=0.0, default=0.0),
        Key("method", "string", "exponential integration or forward Euler",
            choices=("exact", "euler"), default="exact"),
    ),
    "connections[k]": (
        Key("pre", "string", "a source, a population or a rate unit", required=True),
        Key("post", "string", "a population or a rate unit (not a source)", required=True),
        Key("weight", "number", "jump per event (dimensionless with reversal)",
            required=True, unit="V"),
        Key("n_syn", "number", "synapses per neuron", minimum=0.0, default=1),
        Key("delay", "delay", "a number, or a table with a `distribution`", unit="s",
            default=0.0),
        Key("input", "string", "event input or its Fokker-Planck limit",
            choices=("jump", "diffusion"), default="jump"),
        Key("reversal", "number", "makes it a conductance synapse", unit="V"),
        Key("synapse", "synapse", "synaptic filter after `delay`: a table with a `kind`"),
    ),
}

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

# Transfer functions of rate units and synaptic filters: popdens.transfer / popdens.synapses
# constructor name -> (required, optional) arguments
TRANSFERS = {
    "sigmoid": (set(), {"max_rate", "gain", "threshold"}),
    "tanh": (set(), {"max_rate", "gain", "threshold"}),
    "arctan": (set(), {"max_rate", "gain", "threshold"}),
    "threshold_linear": (set(), {"gain", "threshold", "max_rate"}),
    "step": (set(), {"max_rate", "threshold"}),
    "lif_rate": ({"tau", "v_th"}, {"t_ref"}),
    "siegert": ({"sigma", "tau_m", "v_th", "v_reset"}, {"t_ref"}),
}
SYNAPSES = {
    "psc": ({"tau_s"}, {"n"}),
    "biexponential": ({"tau_rise", "tau_decay"}, set()),
}


def keys_of(section: str) -> tuple[set, set]:
    """Required and optional key names of a section."""
    keys = SECTIONS[section]
    return {k.name for k in keys if k.required}, {k.name for k in keys if not k.required}


def describe_value(value) -> str:
    if isinstance(value, str):
        return f"the string {value[:60]!r}" + ("..." if len(value) > 60 else "")
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, int) and abs(value) > 10**15:
        return f"an integer of {len(str(abs(value)))} digits"
    return f"{value!r} ({type(value).__name__})"


class Checker:
    """Collects problems while a scenario is validated and built."""

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

    def mark(self) -> int:
        return len(self.problems)

    def failed_since(self, mark: int) -> bool:
        return len(self.problems) > mark

    # --- shapes --------------------------------------------------------------------------
    def table(self, path: tuple, value, required: set, optional: set,
              what: str = "table") -> dict | None:
        """``value`` if it is a table with only known keys and every required one."""
        if not isinstance(value, dict):
            self.error(path, f"must be a {what}, got {describe_value(value)}")
            return None
        ok = True
        for key in value:
            if key not in required and key not in optional:
                known = ", ".join(sorted(required | optional)) or "(none)"
                self.error(path + (key,), f"unknown key {key!r}; valid keys here: {known}")
                ok = False
        for key in sorted(required):
            if value.get(key) is None:
                self.error(path, f"missing required key {key!r}")
                ok = False
        return value if ok else None

    def section(self, section: str, path: tuple, value, what: str = "table") -> dict | None:
        """Check a table against :data:`SECTIONS`; scalar keys are checked by kind.

        Returns the checked values (defaults filled in, structured kinds passed through
        unchecked) or None if the table itself is not one.
        """
        keys = {k.name: k for k in SECTIONS[section]}
        if self.table(path, value, *keys_of(section), what=what) is None:
            if not isinstance(value, dict):
                return None
        out = {}
        for name, key in keys.items():
            if value.get(name) is None:   # None: a description's "not set" (never TOML)
                if key.default is not None:
                    out[name] = key.default
                continue
            out[name] = self.value(path + (name,), value[name], key)
        return out

    def value(self, path: tuple, value, key: Key):
        if key.kind == "number":
            return self.number(path, value, key.minimum, key.strict, key.unit)
        if key.kind == "integer":
            return self.integer(path, value, int(key.minimum or 0))
        if key.kind == "string":
            return self.string(path, value, key.choices)
        if key.kind == "bool":
            if not isinstance(value, bool):
                self.error(path, f"must be true or false, got {describe_value(value)}")
                return None
            return value
        if key.kind == "numbers":
            return self.numbers(path, value, key.minimum, nonempty=False)
        return value

    def number(self, path: tuple, value, minimum: float | None = None,
               strict: bool = False, unit: str = "") -> float | None:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            self.error(path, f"must be a number{f' ({unit})' if unit else ''}, got "
                             f"{describe_value(value)}")
            return None
        try:
            value = float(value)
        except OverflowError:    # a TOML integer beyond the float range
            value = math.inf
        if not math.isfinite(value):
            self.error(path, f"must be finite, got {value!r}")
            return None
        if minimum is not None and (value <= minimum if strict else value < minimum):
            self.error(path, f"must be {'>' if strict else '>='} {minimum:g}, got {value!r}")
            return None
        return value

    def integer(self, path: tuple, value, minimum: int, maximum: int = 2**62) -> int | None:
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
                (isinstance(value, float) and not (math.isfinite(value)
                                                   and value.is_integer())):
            self.error(path, f"must be a whole number, got {describe_value(value)}")
            return None
        if value < minimum:
            self.error(path, f"must be >= {minimum}, got {value!r}")
            return None
        if value > maximum:
            self.error(path, f"must be <= {maximum}, got {describe_value(value)}")
            return None
        return int(value)

    def string(self, path: tuple, value, choices=None) -> str | None:
        if not isinstance(value, str):
            self.error(path, f"must be a string, got {describe_value(value)}")
            return None
        if choices is not None and value not in choices:
            self.error(path, f"must be one of {', '.join(map(repr, choices))}, got "
                             f"{describe_value(value)[11:]}")
            return None
        return value

    def numbers(self, path: tuple, value, minimum: float | None = None,
                nonempty: bool = True) -> list[float] | None:
        if not isinstance(value, list) or (nonempty and not value):
            self.error(path, f"must be {'a non-empty' if nonempty else 'an'} array of "
                             f"numbers, got {describe_value(value)}")
            return None
        out = [self.number(path + (k,), v, minimum) for k, v in enumerate(value)]
        return None if any(v is None for v in out) else out

    def attempt(self, path: tuple, build, *args, **kwargs):
        """Call a popdens constructor; its error becomes a problem at ``path`` (or at the
        argument its message names, when that has a line)."""
        try:
            return build(*args, **kwargs)
        except NotImplementedError as exc:
            self.error(path, f"not supported by this popdens: {exc}")
        except (ValueError, TypeError, ArithmeticError) as exc:
            message = str(exc)
            target = path
            for key in kwargs:
                if (f"{key} " in message or f"{key}=" in message or f"'{key}'" in message) \
                        and path + (key,) in self.lines:
                    target = path + (key,)
                    break
            self.error(target, message)
        return None


def reference_table() -> str:
    """The README's scenario-file reference (Markdown), made from :data:`SECTIONS`."""
    rows = ["| table | key | kind | unit | required / default | allowed |",
            "|---|---|---|---|---|---|"]
    for section, keys in SECTIONS.items():
        for key in keys:
            if key.kind == "none":
                continue
            default = str(key.default).lower() if isinstance(key.default, bool) else \
                repr(key.default).replace("'", '"')
            need = "required" if key.required else \
                ("" if key.default is None else f"default `{default}`")
            allowed = []
            if key.choices:
                allowed.append(" / ".join(f'`"{c}"`' for c in key.choices))
            if key.minimum is not None:
                allowed.append(f"{'>' if key.strict else '>='} {key.minimum:g}")
            allowed.append(key.doc)
            rows.append(f"| `{section or '(top)'}` | `{key.name}` | {key.kind} | "
                        f"{key.unit} | {need} | {'; '.join(allowed)} |")
    shapes = ", ".join(f"`{name}` ({', '.join(sorted(req))}"
                       f"{'; optional ' + ', '.join(sorted(opt)) if opt else ''})"
                       for name, (req, opt) in RATE_SHAPES.items())
    delays, transfers, synapses = (
        ", ".join(f"`{name}` ({', '.join(sorted(req))}"
                  f"{'; optional ' if req and opt else ('optional ' if opt else '')}"
                  f"{', '.join(sorted(opt))})"
                  for name, (req, opt) in table.items())
        for table in (DELAY_DISTRIBUTIONS, TRANSFERS, SYNAPSES))
    return "\n".join(rows) + (f"\n\nRate shapes: {shapes}.\nDelay distributions: {delays}.\n"
                              f"Transfer kinds: {transfers}.\nSynapse kinds: {synapses}.\n")
