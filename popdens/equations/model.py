"""Brian2-style model text -> :class:`ParsedModel` (checked trees, dimensions, code)."""

from __future__ import annotations

import ast
import hashlib
import math
import re
from dataclasses import dataclass, field

import numpy as np

from .._checks import as_real, check_nonnegative
from . import codegen
from . import units as u
from .errors import EquationError
from .expr import (
    NOISE_DIM,
    Where,
    check_identifier,
    dimension,
    is_noise_name,
    names_in,
    parse_expression,
    split_noise,
)

__all__ = ["ParsedModel", "parse_equations", "Equation", "SpikeSurface"]

MAX_TEXT_CHARS = 20_000
MAX_LINES = 200
_DIFF = re.compile(r"\s*d([A-Za-z]\w*)\s*/\s*dt\s*\Z")
_NAME = re.compile(r"\s*([A-Za-z]\w*)\s*\Z")
_FLAGS = {"unless refractory", "constant"}
_SURFACE = re.compile(r"(?P<lhs>.*?)\bcrosses\b(?P<rhs>.*?)\b(?P<dir>upward|downward)\s*\Z",
                      re.S)


@dataclass
class Equation:
    """One line of the model text."""

    kind: str  # "differential" | "subexpression" | "parameter"
    name: str
    unit: str
    dim: tuple
    expr: ast.Expression | None
    where: Where
    flags: frozenset = frozenset()
    drift: ast.expr | None = None
    noise: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SpikeSurface:
    """``variable crosses level upward|downward``: a spike when the variable crosses."""

    variable: str
    level: ast.Expression
    direction: str


def _strip_comment(line: str) -> str:
    return line.split("#", 1)[0].rstrip()


def _parse_line(number: int, raw: str) -> Equation:
    line = _strip_comment(raw)
    where = Where(number, line)
    if ":" not in line:
        raise where.error("missing unit annotation (': volt', ': 1', ...)", col=len(line))
    body, annotation = line.rsplit(":", 1)
    match = re.fullmatch(r"\s*([^()]*?)\s*(?:\((.*)\))?\s*", annotation)
    if match is None:
        raise where.error(f"cannot read the unit annotation {annotation.strip()!r}",
                          col=len(body) + 1)
    unit, flag_text = match.group(1), match.group(2)
    flags = frozenset(f.strip() for f in flag_text.split(",")) if flag_text else frozenset()
    if flags - _FLAGS:
        raise where.error(f"unknown flag(s) {sorted(flags - _FLAGS)}; allowed: "
                          f"{sorted(_FLAGS)}", col=len(body) + 1)
    dim = u.parse_unit(unit, f"line {number}")
    if "=" not in body:
        name_match = _NAME.fullmatch(body)
        if name_match is None:
            raise where.error(f"expected 'dx/dt = ... : unit', 'name = ... : unit' or "
                              f"'name : unit', got {body.strip()!r}", col=0)
        name = name_match.group(1)
        check_identifier(name, where, "parameter")
        return Equation("parameter", name, unit.strip(), dim, None, where, flags)
    eq = body.index("=")
    lhs = body[:eq]
    diff, plain = _DIFF.fullmatch(lhs), _NAME.fullmatch(lhs)
    if diff is None and plain is None:
        raise where.error(f"the left side must be 'dx/dt' or a name, got {lhs.strip()!r}",
                          col=0)
    name = (diff or plain).group(1)
    check_identifier(name, where, "variable")
    expr = parse_expression(body[eq + 1:], Where(number, line, eq + 1))
    kind = "differential" if diff else "subexpression"
    return Equation(kind, name, unit.strip(), dim, expr, where, flags)


def _read_lines(text: str) -> list[Equation]:
    if not isinstance(text, str):
        raise TypeError(f"equations must be a string, got {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        raise EquationError(f"equations text too long ({len(text)} > {MAX_TEXT_CHARS} "
                            f"characters)")
    lines = text.splitlines()
    if len(lines) > MAX_LINES:
        raise EquationError(f"too many lines ({len(lines)} > {MAX_LINES})")
    equations, seen = [], {}
    for number, raw in enumerate(lines, start=1):
        if not _strip_comment(raw).strip():
            continue
        eq = _parse_line(number, raw)
        if eq.name in seen:
            raise eq.where.error(f"{eq.name!r} is defined twice (first on line "
                                 f"{seen[eq.name]})", col=raw.find(eq.name))
        seen[eq.name] = number
        equations.append(eq)
    if not any(e.kind == "differential" for e in equations):
        raise EquationError("the model needs at least one differential equation 'dx/dt = ...'")
    return equations


def _order_subexpressions(subs: dict) -> list[str]:
    """Topological order of the sub-expressions; raises on a cycle."""
    order, state = [], {}

    def visit(name, chain):
        if state.get(name) == "done":
            return
        if state.get(name) == "active":
            cycle = " -> ".join(chain + [name])
            raise subs[name].where.error(f"sub-expressions refer to each other in a cycle: "
                                         f"{cycle}", col=0)
        state[name] = "active"
        for dep in names_in(subs[name].expr):
            if dep.id in subs:
                visit(dep.id, chain + [name])
        state[name] = "done"
        order.append(name)

    for name in subs:
        visit(name, [])
    return order


def _check_names(tree, where: Where, known: set, allow_noise: bool) -> None:
    for node in names_in(tree):
        if is_noise_name(node.id):
            if not allow_noise:
                raise where.error(f"noise {node.id!r} is only allowed in differential "
                                  f"equations", node)
            continue
        if node.id not in known and node.id not in u.UNITS:
            raise where.error(f"unknown identifier {node.id!r} (not a state variable, "
                              f"sub-expression, parameter or SI unit name)", node)


def _parameter_units(equations, units, parameter_names) -> dict:
    declared = {e.name: e.dim for e in equations if e.kind == "parameter"}
    if units is None:
        units = {}
    if not isinstance(units, dict):
        raise TypeError(f"units must be a dict name -> unit string, got {units!r}")
    for name, text in units.items():
        if name not in parameter_names:
            raise ValueError(f"units: {name!r} is not a parameter of the model "
                             f"(parameters: {sorted(parameter_names)})")
        if not isinstance(text, str):
            raise TypeError(f"units[{name!r}] must be a unit string, got {text!r}")
        dim = u.parse_unit(text, f"units[{name!r}]")
        if name in declared and declared[name] != dim:
            raise ValueError(f"units[{name!r}] = {text!r} contradicts its declaration "
                             f"({u.format_dim(declared[name])}) in the equations")
        declared[name] = dim
    return declared


def _noise_kind(eq: Equation, states: set, subs: dict) -> str:
    if not eq.noise:
        return "none"

    def depends(tree, seen=()):
        for node in names_in(tree):
            if node.id in states:
                return True
            if node.id in subs and node.id not in seen and depends(subs[node.id].expr,
                                                                  seen + (node.id,)):
                return True
        return False

    return "multiplicative" if any(depends(g) for g in eq.noise.values()) else "additive"


class ParsedModel:
    r"""A checked model: state variables, parameters, sub-expressions, noise split, events,
    and generated NumPy/numba functions. Build it with :func:`parse_equations`.

    Each differential equation is split as :math:`dx/dt = f(x, \dots) + g(x, \dots)\,\xi`
    (Itô): in a step ``dt`` the state moves by ``f dt + g sqrt(dt) N(0, 1)``; equations
    naming the same noise symbol share it.

    Attributes
    ----------
    state_names : tuple of str
        State variables in the order of their equations.
    state_units : dict
        Unit annotation of each state variable.
    parameters : dict
        Parameter values (SI floats) in ``parameter_names`` order.
    parameter_names : tuple of str
    parameter_units : dict
        Dimension text of each parameter with a unit; the others are listed in
        ``unchecked`` and the expressions that use them are not dimension-checked.
    subexpressions : dict
        Name -> normalised expression text.
    noise_kind : dict
        State -> ``"none"``, ``"additive"`` or ``"multiplicative"``.
    noise_names : tuple of str
        Distinct noise symbols (independent white noises).
    flags : dict
        State -> frozenset of its flags (``"unless refractory"``, ``"constant"``), for
        the states that have any.
    threshold, reset, refractory, spike_surface
        The event description as given (normalised text), or None.
    hash : str
        SHA-256 of the normalised equations, events and parameter names (not the values):
        equal hashes mean equal generated code.
    """

    def __init__(self, equations, parameters, parameter_units, threshold, reset,
                 refractory, surface):
        self._equations = equations
        diffs = [e for e in equations if e.kind == "differential"]
        self._subs = {e.name: e for e in equations if e.kind == "subexpression"}
        self.state_names = tuple(e.name for e in diffs)
        self.state_units = {e.name: e.unit for e in diffs}
        self.flags = {e.name: e.flags for e in diffs if e.flags}
        self.parameter_names = tuple(parameters)
        self.parameters = dict(parameters)
        self.parameter_units = {k: u.format_dim(v) for k, v in parameter_units.items()}
        self.unchecked = tuple(n for n in self.parameter_names if n not in parameter_units)
        self.subexpressions = {n: ast.unparse(e.expr) for n, e in self._subs.items()}
        self._sub_order = _order_subexpressions(self._subs)
        states = set(self.state_names)
        self.noise_kind = {e.name: _noise_kind(e, states, self._subs) for e in diffs}
        self.noise_names = tuple(sorted({k for e in diffs for k in e.noise}))
        self._threshold, self._reset, self._surface = threshold, reset, surface
        self.threshold = None if threshold is None else ast.unparse(threshold)
        self.reset = None if reset is None else "; ".join(
            f"{n} {op} {ast.unparse(x)}" for n, op, x in reset)
        self.refractory = refractory
        self.spike_surface = None if surface is None else (
            f"{surface.variable} crosses {ast.unparse(surface.level)} {surface.direction}")
        self.hash = hashlib.sha256(self._normalised().encode()).hexdigest()
        self._numpy = codegen.numpy_functions(self)

    def _normalised(self) -> str:
        parts = []
        for e in self._equations:
            body = ast.dump(e.expr.body) if e.expr is not None else ""
            parts.append(f"{e.kind}|{e.name}|{e.dim}|{sorted(e.flags)}|{body}")
        parts.append(f"threshold|{self.threshold}")
        parts.append(f"reset|{self.reset}")
        parts.append(f"surface|{self.spike_surface}")
        parts.append(f"parameters|{self.parameter_names}")
        return "\n".join(parts)

    @property
    def parameter_values(self) -> tuple:
        """Parameter values as a tuple in ``parameter_names`` order (the ``params``
        argument of the compiled functions)."""
        return tuple(float(self.parameters[n]) for n in self.parameter_names)

    def _state_arrays(self, state):
        if len(state) != len(self.state_names):
            raise TypeError(f"expected {len(self.state_names)} state arrays "
                            f"({', '.join(self.state_names)}), got {len(state)}")
        arrays = [np.asarray(s, dtype=float) for s in state]
        return arrays, np.broadcast_shapes(*(a.shape for a in arrays))

    def _call(self, fn, state):
        arrays, shape = self._state_arrays(state)
        with np.errstate(all="ignore"):
            out = fn(*arrays, self.parameter_values)
        return tuple(np.broadcast_to(np.asarray(o, dtype=float), shape).copy() for o in out)

    def drift(self, *state) -> tuple:
        """Deterministic part f of each equation (units of state/second), vectorised."""
        return self._call(self._numpy.drift, state)

    def noise(self, *state) -> tuple:
        """Noise amplitude g of each equation (state unit * second**-0.5); 0 where an
        equation has no noise. With several noise symbols, one tuple per symbol in
        ``noise_names`` order (a single symbol: just the tuple)."""
        out = [self._call(fn, state) for fn in self._numpy.noise]
        if not out:
            arrays, shape = self._state_arrays(state)
            return tuple(np.zeros(shape) for _ in self.state_names)
        return out[0] if len(out) == 1 else tuple(out)

    def threshold_crossed(self, *state) -> np.ndarray:
        """Boolean array: where the threshold condition holds (False with no threshold)."""
        arrays, shape = self._state_arrays(state)
        if self._numpy.threshold is None:
            return np.zeros(shape, dtype=bool)
        return np.broadcast_to(self._numpy.threshold(*arrays, self.parameter_values),
                               shape).copy()

    def apply_reset(self, *state) -> tuple:
        """The state after the reset statements (run in order)."""
        return self._call(self._numpy.reset, state)

    @property
    def generated_source(self) -> str:
        """The generated NumPy source (for inspection)."""
        return self._numpy.source

    def compiled(self):
        """numba-compiled scalar functions (see :func:`codegen.compile_scalar`)."""
        return codegen.compile_scalar(self)

    def __repr__(self) -> str:
        return (f"ParsedModel(states={self.state_names}, parameters={self.parameter_names}, "
                f"noise={self.noise_kind}, hash={self.hash[:12]})")


def _parse_events(threshold, reset, surface, states, known, dims):
    thr = rst = srf = None
    if threshold is not None:
        if not isinstance(threshold, str):
            raise TypeError(f"threshold must be a string such as 'v > v_th', got {threshold!r}")
        where = Where(None, threshold, 0, "threshold")
        thr = parse_expression(threshold, where)
        if not isinstance(thr.body, ast.Compare):
            raise where.error("the threshold must be a comparison such as 'v > v_th'", col=0)
        _check_names(thr, thr.where, known, False)
        dimension(thr, dims, thr.where)
    if reset is not None:
        rst = _parse_reset(reset, states, known, dims)
    if surface is not None:
        srf = _parse_surface(surface, states, known, dims)
    return thr, rst, srf


def _parse_reset(reset, states, known, dims):
    if isinstance(reset, (list, tuple)):
        reset = "; ".join(reset)
    if not isinstance(reset, str):
        raise TypeError(f"reset must be a string such as 'v = v_r; w += b', got {reset!r}")
    statements, offset = [], 0
    for piece in re.split(r"[;\n]", reset):
        where = Where(None, reset, offset, "reset")
        offset += len(piece) + 1
        if not piece.strip():
            continue
        m = re.fullmatch(r"\s*([A-Za-z]\w*)\s*([+\-*/]?=)(?!=)(.*)", piece, re.S)
        if m is None:
            raise where.error(f"a reset statement must be 'x = expr' or 'x += expr' "
                              f"(also -=, *=, /=), got {piece.strip()!r}", col=0)
        name, op, rhs = m.groups()
        if name not in states:
            raise where.error(f"reset assigns {name!r}, which is not a state variable "
                              f"({', '.join(states)})", col=piece.find(name))
        expr = parse_expression(rhs, Where(None, reset, where.offset + m.start(3), "reset"))
        _check_names(expr, expr.where, known, False)
        d = dimension(expr, dims, expr.where)
        target = dims[name] if op in ("=", "+=", "-=") else u.DIMENSIONLESS
        if d not in (None, "zero") and d != target:
            raise expr.where.error(f"reset '{name} {op} ...' needs {u.format_dim(target)}, "
                                   f"got {u.format_dim(d)}", col=0)
        statements.append((name, op, expr))
    return statements


def _parse_surface(surface, states, known, dims):
    if not isinstance(surface, str):
        raise TypeError(f"spike_surface must be a string such as 'n crosses 0.6 upward', "
                        f"got {surface!r}")
    where = Where(None, surface, 0, "spike_surface")
    m = _SURFACE.fullmatch(surface)
    if m is None:
        raise where.error("expected 'x crosses level upward' or '... downward'", col=0)
    variable = m.group("lhs").strip()
    if variable not in states:
        raise where.error(f"{variable!r} is not a state variable ({', '.join(states)})", col=0)
    level = parse_expression(m.group("rhs"), Where(None, surface, m.start("rhs"),
                                                   "spike_surface"))
    _check_names(level, level.where, known, False)
    d = dimension(level, dims, level.where)
    if d not in (None, "zero") and d != dims[variable]:
        raise level.where.error(f"the level has {u.format_dim(d)}, {variable!r} has "
                                f"{u.format_dim(dims[variable])}", col=0)
    return SpikeSurface(variable, level, m.group("dir"))


def _collect_parameters(parameters, equations, trees, reserved):
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise TypeError(f"parameters must be a dict name -> float (SI), got {parameters!r}")
    values = {}
    for name, value in parameters.items():
        if not isinstance(name, str):
            raise TypeError(f"parameter names must be strings, got {name!r}")
        check_identifier(name, Where(None, name, 0, "parameters"), "parameter")
        if name in reserved:
            raise ValueError(f"parameter {name!r} is also a state variable or sub-expression")
        values[name] = as_real(f"parameters[{name!r}]", value)
    declared = [e for e in equations if e.kind == "parameter"]
    for e in declared:
        if e.name not in values:
            raise e.where.error(f"missing parameter value: {e.name!r} is declared but not in "
                                f"parameters", col=e.where.source.find(e.name))
    used = {n.id for tree in trees for n in names_in(tree)}
    unused = [n for n in values if n not in used]
    if unused:
        raise ValueError(f"parameters not used by the equations, threshold, reset or "
                         f"spike surface: {unused}")
    return values


def parse_equations(equations, parameters=None, units=None, threshold=None, reset=None,
                    refractory=0.0, spike_surface=None, require_units=False) -> ParsedModel:
    r"""Parse and check Brian2-style model text.

    Parameters
    ----------
    equations : str
        One equation per line, ``#`` comments allowed:
        ``dx/dt = expr : unit`` (a state variable), ``name = expr : unit`` (a named
        sub-expression) or ``name : unit`` (declares a parameter's unit). Units are
        unprefixed SI names combined with ``*``, ``/``, ``**`` (``volt``,
        ``amp/metre**2``, ``1``); an optional ``(unless refractory)`` flag is recorded.
        ``xi`` or ``xi_<name>`` is white noise (unit ``second**-0.5``), entering each
        equation linearly (``f + g*xi``), at most one noise symbol per equation.
    parameters : dict, optional
        Values (SI floats) of every other name used; each must be used.
    units : dict, optional
        Unit strings of parameters (or declare them in the text as ``name : unit``).
        Parameters without a unit are *not* dimension-checked: expressions involving
        them take their dimension from the other side of a sum, or stay unknown. They are
        listed in ``ParsedModel.unchecked``; pass ``require_units=True`` to forbid them.
    threshold : str, optional
        A comparison, e.g. ``"v > v_cut"``.
    reset : str or list of str, optional
        Statements run in order at a spike: ``"v = v_r; w += b"`` (``=``, ``+=``,
        ``-=``, ``*=``, ``/=``; state variables only).
    refractory : float, default 0.0
        Refractory period (s), >= 0.
    spike_surface : str, optional
        ``"n crosses 0.6 upward"`` (or ``downward``): a spike is counted when the state
        variable crosses the level in that direction (no reset needed).
    require_units : bool, default False
        Raise if any parameter has no unit.

    Returns
    -------
    ParsedModel

    Raises
    ------
    EquationError
        (a ``ValueError``) for invalid text, naming the line and column: syntax, names
        that are not allowed (attributes, subscripts, lambdas, unknown functions, names
        starting with ``_``), exponents that are not small literals, too long or too
        deeply nested text, unknown identifiers, dimension mismatches, a noise term that
        is not linear. ``ValueError``/``TypeError`` for bad parameters, units and events.
    """
    if parameters is not None and not isinstance(parameters, dict):
        raise TypeError(f"parameters must be a dict name -> float (SI), got {parameters!r}")
    eqs = _read_lines(equations)
    states = [e.name for e in eqs if e.kind == "differential"]
    subs = {e.name: e for e in eqs if e.kind == "subexpression"}
    declared = {e.name for e in eqs if e.kind == "parameter"}
    param_names = set(parameters or {}) | declared
    known = set(states) | set(subs) | param_names
    for e in eqs:
        if e.expr is not None:
            _check_names(e.expr, e.expr.where, known, e.kind == "differential")
    dims = {e.name: e.dim for e in eqs if e.kind != "parameter"}
    punits = _parameter_units(eqs, units, param_names)
    dims.update({n: punits.get(n) for n in param_names})
    dims.update({n.id: NOISE_DIM for e in eqs if e.expr is not None for n in names_in(e.expr)
                 if is_noise_name(n.id)})
    thr, rst, srf = _parse_events(threshold, reset, spike_surface, states, known, dims)
    trees = [e.expr for e in eqs if e.expr is not None]
    trees += [t for t in (thr, srf.level if srf else None) if t is not None]
    trees += [x for _, _, x in (rst or [])]
    values = _collect_parameters(parameters, eqs, trees, set(states) | set(subs))
    if require_units:
        missing = [n for n in values if n not in punits]
        if missing:
            raise ValueError(f"require_units=True: no unit for parameter(s) {missing}; "
                             f"pass units=dict(...) or declare 'name : unit' lines")
    for e in eqs:
        if e.kind == "differential":
            e.drift, e.noise = split_noise(e.expr, e.expr.where)
            if len(e.noise) > 1:
                raise e.expr.where.error(f"at most one noise symbol per equation, got "
                                         f"{sorted(e.noise)}", col=0)
    _check_dimensions(eqs, subs, dims)
    if rst and thr is None and srf is None:
        raise ValueError("reset needs a threshold (or a spike_surface) to trigger it")
    refractory = check_nonnegative("refractory", refractory)
    if not math.isfinite(refractory):
        raise ValueError(f"refractory must be finite, got {refractory!r}")
    return ParsedModel(eqs, values, {n: d for n, d in punits.items() if n in values},
                       thr, rst, refractory, srf)


def _check_dimensions(eqs, subs, dims) -> None:
    order = _order_subexpressions(subs)
    for name in order:
        e = subs[name]
        d = dimension(e.expr, dims, e.expr.where)
        if d not in (None, "zero") and d != e.dim:
            raise e.expr.where.error(f"{name!r} is declared {e.unit!r} "
                                     f"({u.format_dim(e.dim)}) but its expression has "
                                     f"{u.format_dim(d)}", col=0)
    for e in eqs:
        if e.kind != "differential":
            continue
        d = dimension(e.expr, dims, e.expr.where)
        want = u.div(e.dim, u.UNITS["second"])
        if d not in (None, "zero") and d != want:
            raise e.expr.where.error(f"d{e.name}/dt must have {u.format_dim(want)} "
                                     f"({e.unit}/second), got {u.format_dim(d)}", col=0)
