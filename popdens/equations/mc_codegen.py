"""The compiled Monte Carlo update of an equation model: a generated Python module.

:func:`compiled_module` writes, once per model structure, a module that defines the
model's parameters class (a :class:`typing.NamedTuple`: one field per parameter, then
derived constants) and its functions of :mod:`popdens.kernels.mc_interface`, registers
them, and defines a disk-cached entry point of the Monte Carlo loop for it. The module
is a file in the cache directory (``$POPDENS_CACHE_DIR``, else
``$XDG_CACHE_HOME/popdens`` or ``~/.cache/popdens``, sub-directory ``equations``), named
by the SHA-256 of the model's normalised text, its parameter names, the structure
derived from the values (which variables are noisy, the integrator), the code versions
and the source of the kernel modules compiled into it; it is imported with
:mod:`importlib`, so numba's ``cache=True`` finds its compiled code again in a new
process (the file is never rewritten: equal names mean equal content).

Safety: the file holds no user text. Expressions come from checked syntax trees through
:func:`popdens.equations.expr.emit` (numbers, arithmetic, comparisons, the fixed
function table, and identifiers made of checked names with a prefix: ``s_`` state,
``p_`` parameter, ``e_`` sub-expression); everything else is fixed template text.

Integrators (the ``integrator`` attribute of the class):

- a 1D drift affine in its variable with constant coefficients (the density's exact
  flow, :meth:`popdens.EquationModel.flow`) and no noise: the exact exponential flow,
  event to event, with the exact threshold-crossing time (as :class:`popdens.LIF`);
- otherwise second-order Rush-Larsen steps of at most the internal step
  (:mod:`popdens.kernels.mc_equation`): a variable that enters its own drift linearly
  (coefficients may depend on the other variables and on sub-expressions) relaxes
  exactly toward its moving target, the others take explicit midpoint steps;
- white noise ``g xi`` (additive) adds ``g sqrt(h) N(0, 1)`` per step (Euler-Maruyama);
  on the threshold variable a Brownian bridge between the step's ends detects the
  crossings within the step and samples their times.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import math
import os
import sys
import tempfile
from pathlib import Path

from ..kernels import mc_engine, mc_equation, mc_interface, montecarlo
from ..kernels.mc_engine import KERNEL_VERSION
from .expr import emit

__all__ = ["CODE_VERSION", "cache_dir", "compiled_module", "generate_module_source",
           "linear_split", "Structure"]

CODE_VERSION = 7
"""Version of the generator: part of every file name (bump it when the template
changes, so old files are not reused)."""

# Refractory flows of the other variables (v held at its reset) take Rush-Larsen steps
# of at most this length (s): the Monte Carlo's default internal step.
REFRACTORY_STEP = 1e-5


def cache_dir() -> Path:
    """Where generated modules are written (created on first use)."""
    root = os.environ.get("POPDENS_CACHE_DIR")
    if root:
        base = Path(root)
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "popdens"
    return base / "equations"


# --- the linear split of a drift -----------------------------------------------------------
def _has_name(node, var) -> bool:
    return any(isinstance(n, ast.Name) and n.id == var for n in ast.walk(node))


def _neg(tree):
    return None if tree is None else ast.UnaryOp(ast.USub(), tree)


def _add(a, b, subtract=False):
    if b is None:
        return a
    if a is None:
        return _neg(b) if subtract else b
    return ast.BinOp(a, ast.Sub() if subtract else ast.Add(), b)


def _scale(tree, other, op, other_first):
    if tree is None:
        return None
    if isinstance(op, ast.Div):
        return ast.BinOp(tree, ast.Div(), other)
    return ast.BinOp(other, ast.Mult(), tree) if other_first else \
        ast.BinOp(tree, ast.Mult(), other)


def linear_split(node, var):
    """``(a, c)`` trees with ``node == a + c * var`` where ``var`` enters ``node``
    directly (as a name; through sub-expressions it counts as a coefficient), ``None``
    for a zero part; ``None`` if ``node`` is not affine in those direct occurrences."""
    if isinstance(node, ast.Expression):
        node = node.body
    if node is None or not _has_name(node, var):
        return node, None
    if isinstance(node, ast.Name):
        return None, ast.Constant(1.0)
    if isinstance(node, ast.UnaryOp):
        inner = linear_split(node.operand, var)
        if inner is None or isinstance(node.op, ast.UAdd):
            return inner
        return _neg(inner[0]), _neg(inner[1])
    if not isinstance(node, ast.BinOp) or isinstance(node.op, ast.Pow):
        return None
    if isinstance(node.op, (ast.Add, ast.Sub)):
        left, right = linear_split(node.left, var), linear_split(node.right, var)
        if left is None or right is None:
            return None
        sub = isinstance(node.op, ast.Sub)
        return _add(left[0], right[0], sub), _add(left[1], right[1], sub)
    in_left, in_right = _has_name(node.left, var), _has_name(node.right, var)
    if in_left and in_right or (isinstance(node.op, ast.Div) and in_right):
        return None
    inner, other = (node.left, node.right) if in_left else (node.right, node.left)
    split = linear_split(inner, var)
    if split is None:
        return None
    return tuple(_scale(t, other, node.op, not in_left) for t in split)


# --- the structure a file depends on ------------------------------------------------------
class Structure:
    """What the generated code depends on beyond the text: the integrator, the event
    rule, the noisy variables, the input variable (all but the parameter values)."""

    def __init__(self, model):
        parsed = model.parsed
        rule = model.spike_rule
        self.states = parsed.state_names
        self.thresholded = hasattr(rule, "reset")
        self.event_var = self.states.index(rule.var)
        comparison = parsed._threshold.body.ops[0] if self.thresholded else None
        self.strict = isinstance(comparison, ast.Gt)
        diffusion = model.intrinsic_diffusion()
        self.noisy = tuple(d for d, v in enumerate(self.states) if diffusion.get(v, 0.0) > 0)
        # with noise: steps of the internal step (the bridge needs them)
        self.exact = bool(model.exact_flow) and len(self.states) == 1 and not self.noisy
        self.input_var = self.states.index(model.input_var)
        held = {self.event_var} | {d for d, v in enumerate(self.states)
                                   if "unless refractory" in parsed.flags.get(v, ())}
        self.refractory_moving = tuple(d for d in range(len(self.states)) if d not in held)
        equations = [e for e in parsed._equations if e.kind == "differential"]
        self.nonlinear = tuple(e.name for e in equations
                               if linear_split(e.drift, e.name) is None)

    def key(self) -> str:
        return (f"states={self.states}|thresholded={self.thresholded}|event="
                f"{self.event_var}|strict={self.strict}|noisy={self.noisy}|exact="
                f"{self.exact}|input={self.input_var}|moving={self.refractory_moving}")


@functools.cache
def _kernel_sources_hash() -> str:
    """SHA-256 of the kernel modules compiled into the generated code: numba's cache of
    a generated module sees only that file, so an edit of these must give new files."""
    digest = hashlib.sha256()
    for module in (mc_equation, mc_interface, mc_engine, montecarlo):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()


def _file_hash(model, structure) -> str:
    text = (f"{model.parsed.hash}\n{structure.key()}\ncode={CODE_VERSION}\n"
            f"kernel={KERNEL_VERSION}\nsources={_kernel_sources_hash()}")
    return hashlib.sha256(text.encode()).hexdigest()[:40]


# --- the generated source ----------------------------------------------------------------
_HEADER = '''"""Monte Carlo update generated by popdens.equations.mc_codegen (code version {code},
kernel version {kernel}) for an EquationModel; do not edit (the file name is the hash of
what it was generated from)."""
import math
from typing import NamedTuple

from numba import njit

from popdens.kernels import mc_equation as _k
from popdens.kernels import mc_interface
from popdens.kernels.mc_engine import _trace
from popdens.kernels.mc_engine import simulate_uncached as _loop
from popdens.kernels.mc_engine import step_population_uncached as _population_loop

'''


def _names(parsed):
    local = {n: f"s_{n}" for n in parsed.state_names}
    local.update({n: f"p_{n}" for n in parsed.parameter_names})
    local.update({n: f"e_{n}" for n in parsed._subs})
    return local


def _prologue(parsed, local) -> list[str]:
    """Parameters, then sub-expressions (in dependency order) from the locals ``s_*``."""
    lines = [f"    {local[n]} = p.{local[n]}" for n in parsed.parameter_names]
    for name in parsed._sub_order:
        lines.append(f"    {local[name]} = {emit(parsed._subs[name].expr, local, 'scalar')}")
    return lines


def _coefficients(parsed, local) -> list[str]:
    """``_coefficients(p, *s) -> (a_0, b_0, a_1, b_1, ...)`` of the Rush-Larsen split."""
    args = ", ".join(local[n] for n in parsed.state_names)
    # not inlined into the loop: an inlined body would take the loop's error model, and a
    # division by zero in the user's expressions must give inf/nan as in NumPy
    lines = ["@njit(cache=True, error_model='numpy')",
             f"def _coefficients(p, {args}):", *_prologue(parsed, local)]
    out = []
    for d, eq in enumerate(e for e in parsed._equations if e.kind == "differential"):
        split = linear_split(eq.drift, eq.name)
        if split is None:
            a, b = emit(eq.drift, local, "scalar"), "0.0"
        else:
            a = emit(split[0], local, "scalar")
            b = emit(_neg(split[1]), local, "scalar") if split[1] is not None else "0.0"
        lines += [f"    a_{d} = {a}", f"    b_{d} = {b}"]
        out += [f"a_{d}", f"b_{d}"]
    lines += [f"    return ({', '.join(out)},)", ""]
    return lines


def _rush_larsen(name, n, held) -> list[str]:
    """A Rush-Larsen step ``name(p, x, h)``; variables in ``held`` do not move."""
    s = [f"x_{d}" for d in range(n)]
    unpack = f"    {', '.join(s)}, = x"
    lines = ["@njit(cache=True, error_model='numpy')",
             f"def {name}(p, x, h):", unpack,
             f"    c = _coefficients(p, {', '.join(s)})", "    half = 0.5 * h"]
    mid = [s[d] if d in held else f"_k.predict({s[d]}, c[{2 * d}], c[{2 * d + 1}], half)"
           for d in range(n)]
    lines.append(f"    c = _coefficients(p, {', '.join(mid)})")
    end = [s[d] if d in held else f"_k.relax({s[d]}, c[{2 * d}], c[{2 * d + 1}], h)"
           for d in range(n)]
    lines += [f"    return ({', '.join(end)},)", ""]
    return lines


def _tuple(n, replace=None) -> str:
    items = [f"x[{d}]" for d in range(n)]
    for d, text in (replace or {}).items():
        items[d] = text
    return f"({', '.join(items)},)"


def _interface(parsed, st, local) -> list[str]:
    """load, store, advance(_random), crossing(_random), jump and the reset functions."""
    n = len(st.states)
    k, e = st.input_var, st.event_var
    lines = [
        "def _load(p, y, i):", f"    return {_tuple(n).replace('x[', 'y[i, ')}", "",
        "def _store(p, y, i, x):",
        *[f"    y[i, {d}] = x[{d}]" for d in range(n)], "",
        "def _jump(p, x, weight, reversal):",
        "    if reversal != reversal:",
        f"        return {_tuple(n, {k: f'x[{k}] + weight'})}",
        f"    return {_tuple(n, {k: f'x[{k}] + weight * (reversal - x[{k}])'})}", ""]
    flow = "p.k_flow_fixed, p.k_flow_rate, p.k_flow_drift"
    kind = "linear_crossing" if st.thresholded else "surface_crossing"
    if st.exact:
        lines += ["def _advance(p, x, duration):",
                  f"    return (_k.exact_flow(x[0], duration, {flow}),)", "",
                  "def _crossing(p, x, x_new, duration):"]
        if not st.thresholded:   # a surface: only upward crossings from below count
            lines.append("    if x[0] >= p.k_level:\n        return -1.0")
        lines += [f"    return _k.exact_crossing(x[0], x_new[0], p.k_level, duration, {flow})",
                  "",
                  # the loop's event-free fast path: the exponential once per step
                  "def _prepare_step(p, duration):",
                  "    return _k.exact_step_constants(duration, p.k_flow_rate, p.k_flow_drift)",
                  "",
                  "def _advance_step(p, x, prepared):",
                  "    return (_k.exact_step(x[0], prepared, p.k_flow_fixed),)", "",
                  "def _split_step(p, prepared, first, rest):",
                  "    return _k.exact_split_constants(prepared, first, rest, p.k_flow_rate, "
                  "p.k_flow_drift)", ""]
    else:
        lines += ["def _advance(p, x, duration):", "    return _step(p, x, duration)", "",
                  "def _crossing(p, x, x_new, duration):",
                  f"    return _k.{kind}(x[{e}], x_new[{e}], p.k_level, duration)",
                  ""]
    if st.noisy:
        noisy = {d: f"y[{d}] + p.k_noise_{d} * root * z_{d}" for d in st.noisy}
        lines += ["def _advance_random(p, x, duration, state):",
                  "    y = mc_interface.advance(p, x, duration)", "    root = math.sqrt(duration)",
                  *[f"    z_{d}, state = _k.normal(state)" for d in st.noisy],
                  f"    return {_tuple(n, noisy).replace('x[', 'y[')}, state", ""]
        lines += ["def _crossing_random(p, x, x_new, duration, state):"]
        if st.thresholded and e in st.noisy:
            lines += [f"    variance = p.k_noise_{e} * p.k_noise_{e} * duration",
                      f"    return _k.bridge_crossing(x[{e}], x_new[{e}], p.k_level, "
                      f"variance, duration, state)", ""]
        else:
            lines += ["    return mc_interface.crossing(p, x, x_new, duration), state", ""]
    if st.thresholded:
        lines += _reset_functions(parsed, st, local)
    return lines


def _reset_functions(parsed, st, local) -> list[str]:
    """hold: the reset statements with the threshold variable at its threshold (as the
    density's reset map), then the other variables' flow over the refractory period with
    it held at its reset; release: the threshold variable back at its reset."""
    n, e = len(st.states), st.event_var
    names = [local[v] for v in st.states]
    # compiled apart, like _coefficients: the user's expressions keep NumPy's error model
    lines = ["@njit(cache=True, error_model='numpy')",
             "def _reset_state(p, x):", f"    {', '.join(names)}, = x",
             f"    {names[e]} = p.k_level", *_prologue(parsed, local)]
    for name, op, expr in parsed._reset:
        value = emit(expr, local, "scalar")
        target = local[name]
        lines.append(f"    {target} = " + (value if op == "=" else f"{target} {op[0]} {value}"))
    if st.refractory_moving:
        state = f"({', '.join(names)},)"
        lines += [f"    {names[e]} = p.k_reset", f"    y = {state}",
                  "    h = p.k_refractory / max(p.k_refractory_steps, 1.0)",
                  "    for _ in range(int(p.k_refractory_steps)):",
                  "        y = _refractory_step(p, y, h)",
                  f"    {', '.join(names)}, = y"]
    lines += [f"    return ({', '.join('math.inf' if d == e else names[d] for d in range(n))},)",
              "", "def _hold(p, x):", "    return _reset_state(p, x)", "",
              "def _is_held(p, x):", f"    return x[{e}] == math.inf", "",
              "def _release(p, x):", f"    return {_tuple(n, {e: 'p.k_reset'})}", "",
              "def _resets(p):", "    return True", "",
              "def _refractory_period(p):", "    return p.k_refractory", ""]
    return lines


def _params_class(parsed, st, integrator, digest) -> list[str]:
    """The parameters class, named after the file: numba names compiled functions after
    their argument types' names, so two models' classes must not share one."""
    fields = [f"    p_{n}: float" for n in parsed.parameter_names]
    fields += [f"    k_{n}: float" for n in DERIVED]
    fields += [f"    k_noise_{d}: float" for d in st.noisy]
    return [f"class EquationParams_{digest}(NamedTuple):",
            '    """Parameters (``p_*``, SI) and derived constants (``k_*``)."""', "",
            *fields, "", f"    exact = {st.exact}", f"    integrator = {integrator!r}", "",
            "", f"Params = EquationParams_{digest}", "", ""]


DERIVED = ("level", "reset", "refractory", "refractory_steps", "flow_fixed", "flow_rate",
           "flow_drift")
"""Derived constants of every parameters class (``k_<name>``), then ``k_noise_<d>``."""


def _integrator(st) -> str:
    if st.exact:
        text = "exact exponential flow of the affine drift, exact event and crossing times"
    else:
        text = "second-order Rush-Larsen (exponential midpoint)"
        if st.nonlinear:
            text += f"; explicit midpoint for {', '.join(st.nonlinear)} (nonlinear in itself)"
        text += ", exact event times"
    if st.noisy:
        text += "; white noise: Euler-Maruyama"
        if st.thresholded and st.event_var in st.noisy:
            text += " with Brownian-bridge threshold crossings"
    return text


def generate_module_source(model, structure: Structure) -> str:
    """The module text for ``model`` (an :class:`popdens.EquationModel`)."""
    parsed = model.parsed
    local = _names(parsed)
    n = len(structure.states)
    lines = [_HEADER.format(code=CODE_VERSION, kernel=KERNEL_VERSION)]
    lines += _params_class(parsed, structure, _integrator(structure),
                           _file_hash(model, structure))
    lines += _coefficients(parsed, local)
    lines += _rush_larsen("_step", n, ())
    if structure.thresholded and structure.refractory_moving:
        held = tuple(d for d in range(n) if d not in structure.refractory_moving)
        lines += _rush_larsen("_refractory_step", n, held)
    lines += _interface(parsed, structure, local)
    functions = ["load", "store", "advance", "crossing", "jump"]
    if structure.noisy:
        functions += ["advance_random", "crossing_random"]
    if structure.exact:
        functions += ["prepare_step", "advance_step", "split_step"]
    if structure.thresholded:
        functions += ["resets", "hold", "is_held", "release", "refractory_period"]
    lines += ["mc_interface.register(Params, " + ", ".join(f"{f}=_{f}" for f in functions)
              + ")", "", "",
              "@njit(cache=True)",
              "def step_population(prm, p, k, dt, state, pops, inputs, wiring, rec, "
              "pending):",
              '    """One population step of the Monte Carlo loop, cached with this '
              'file."""',
              "    return _population_loop(prm, p, k, dt, state, pops, inputs, wiring, rec, "
              "pending)",
              "", "",
              "Params.cached_step = step_population", "", "",
              "@njit(cache=True)",
              "def simulate(step_begin, step_end, dt, state, models, pops, inputs, wiring, "
              "rec):",
              '    """The Monte Carlo loop, cached with this file."""',
              "    return _loop(step_begin, step_end, dt, state, models, pops, inputs, "
              "wiring, rec)", "", "",
              "_trace_loop = njit(_trace)", "", "",
              "@njit(cache=True)",
              "def trace(prm, y0, t_end, h_int, event_times, event_weights):",
              '    """One neuron without noise (mc_engine.trace), cached with this file."""',
              "    return _trace_loop(prm, y0, t_end, h_int, event_times, event_weights)",
              "", "",
              "Params.cached_loop = simulate", ""]
    return "\n".join(lines)


# --- writing and importing -----------------------------------------------------------------
def compiled_module(model):
    """The imported generated module of ``model`` (written first if absent)."""
    structure = Structure(model)
    digest = _file_hash(model, structure)
    name = f"popdens_equation_{digest}"
    folder = cache_dir()
    path = folder / f"{name}.py"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        source = generate_module_source(model, structure)
        # written aside and renamed: another process may import it at the same time
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(source)
        os.replace(tmp, path)
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def derived_constants(model, structure: Structure) -> dict:
    """The ``k_*`` fields' values of ``model``."""
    rule = model.spike_rule
    out = dict.fromkeys(DERIVED, 0.0)
    if structure.thresholded:
        out.update(level=rule.threshold, reset=rule.reset, refractory=rule.refractory)
        if structure.refractory_moving and rule.refractory > 0.0:
            out["refractory_steps"] = float(math.ceil(rule.refractory / REFRACTORY_STEP
                                                      - 1e-9))
    else:
        out["level"] = rule.level
    if structure.exact:
        x0, f0, rate = model._slope
        if rate == 0.0:
            out["flow_drift"] = f0
        else:
            out.update(flow_fixed=x0 - f0 / rate, flow_rate=rate)
    diffusion = model.intrinsic_diffusion()
    for d in structure.noisy:
        out[f"noise_{d}"] = math.sqrt(2.0 * diffusion[structure.states[d]])
    return out


def compiled_params(model):
    """The parameters instance of ``model``'s generated class."""
    structure = Structure(model)
    module = compiled_module(model)
    derived = derived_constants(model, structure)
    values = [float(model.parsed.parameters[n]) for n in model.parsed.parameter_names]
    values += [float(derived[n]) for n in DERIVED]
    values += [float(derived[f"noise_{d}"]) for d in structure.noisy]
    return module.Params(*values)
