"""Code generation from checked trees: vectorised NumPy functions and numba scalar ones.

The generated source contains only: float literals, ``+ - * / **``, comparisons, the
functions of :data:`expr.FUNCTIONS` (as ``np.*`` or ``math.*``/``min``/``max``/``abs``),
and local identifiers made from checked user names with a prefix (``s_`` state, ``p_``
parameter, ``e_`` sub-expression). It is executed in a namespace holding only ``np``,
``math``, ``min``, ``max``, ``abs``.

Every function takes the state variables (in ``state_names`` order) then ``params``, the
tuple of parameter values in ``parameter_names`` order, so one compilation serves any
parameter values.

Caching: compiled functions are kept in an in-process dict keyed by ``ParsedModel.hash``
(the SHA-256 of the normalised model). numba's on-disk cache (``cache=True``) needs a
source file, which generated code does not have, so each new process compiles once per
model (about a second).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .expr import emit

__all__ = ["NumpyFunctions", "ScalarFunctions", "numpy_functions", "compile_scalar",
           "generate_source", "constant_value"]

_COMPILED: dict = {}


class NumpyFunctions(NamedTuple):
    drift: object
    noise: tuple
    threshold: object
    reset: object
    surface: object
    source: str


class ScalarFunctions(NamedTuple):
    """numba-compiled scalar functions; each takes ``(*state, params)``.

    ``drift`` and ``noise[j]`` return a tuple of floats (one per state variable; noise
    one per symbol in ``noise_names``), ``threshold`` a bool, ``reset`` the new state
    tuple, ``surface`` the signed distance ``variable - level`` (a crossing of 0 in the
    model's direction is a spike). Absent events are None.
    """

    drift: object
    noise: tuple
    threshold: object
    reset: object
    surface: object
    source: str


def _locals(model) -> dict:
    local = {n: f"s_{n}" for n in model.state_names}
    local.update({n: f"p_{n}" for n in model.parameter_names})
    local.update({n: f"e_{n}" for n in model._subs})
    return local


def _prologue(model, local, mode) -> list[str]:
    lines = [f"    {local[n]} = params[{k}]" for k, n in enumerate(model.parameter_names)]
    for name in model._sub_order:
        lines.append(f"    {local[name]} = {emit(model._subs[name].expr, local, mode)}")
    return lines


def generate_source(model, mode: str) -> str:
    """Python source of all functions for ``mode`` ``"numpy"`` or ``"scalar"``."""
    local = _locals(model)
    args = ", ".join([local[n] for n in model.state_names] + ["params"])
    head = _prologue(model, local, mode)
    eqs = [e for e in model._equations if e.kind == "differential"]
    out = []

    def function(name, body):
        out.append(f"def {name}({args}):")
        out.extend(head)
        out.extend(body)
        out.append("")

    function("drift", [f"    return ({', '.join(emit(e.drift, local, mode) for e in eqs)},)"])
    for j, xi in enumerate(model.noise_names):
        terms = ", ".join(emit(e.noise.get(xi), local, mode) for e in eqs)
        function(f"noise_{j}", [f"    return ({terms},)"])
    if model._threshold is not None:
        cmp = model._threshold.body
        op = {"Lt": "<", "LtE": "<=", "Gt": ">", "GtE": ">="}[type(cmp.ops[0]).__name__]
        function("threshold", [f"    return {emit(cmp.left, local, mode)} {op} "
                               f"{emit(cmp.comparators[0], local, mode)}"])
    body = []
    for name, op, expr in model._reset or []:
        value = emit(expr, local, mode)
        body.append(f"    {local[name]} = " + (value if op == "=" else
                                               f"{local[name]} {op[0]} {value}"))
    body.append(f"    return ({', '.join(local[n] for n in model.state_names)},)")
    function("reset", body)
    if model._surface is not None:
        s = model._surface
        function("surface", [f"    return {local[s.variable]} - "
                             f"{emit(s.level, local, mode)}"])
    return "\n".join(out)


def _execute(source: str) -> dict:
    namespace = {"np": np, "math": math,
                 "__builtins__": {"min": min, "max": max, "abs": abs}}
    exec(compile(source, "<popdens.equations generated>", "exec"), namespace)  # noqa: S102
    return namespace


def numpy_functions(model) -> NumpyFunctions:
    source = generate_source(model, "numpy")
    ns = _execute(source)
    noise = tuple(ns[f"noise_{j}"] for j in range(len(model.noise_names)))
    return NumpyFunctions(ns["drift"], noise, ns.get("threshold"), ns["reset"],
                          ns.get("surface"), source)


def compile_scalar(model) -> ScalarFunctions:
    """numba-compile the scalar functions (cached in-process by ``model.hash``)."""
    cached = _COMPILED.get(model.hash)
    if cached is not None:
        return cached
    from numba import njit

    source = generate_source(model, "scalar")
    ns = _execute(source)
    jit = njit(error_model="numpy")  # division by zero gives inf/nan as in NumPy
    get = lambda name: jit(ns[name]) if name in ns else None  # noqa: E731
    noise = tuple(jit(ns[f"noise_{j}"]) for j in range(len(model.noise_names)))
    result = ScalarFunctions(get("drift"), noise, get("threshold"), get("reset"),
                             get("surface"), source)
    _COMPILED[model.hash] = result
    return result


def constant_value(model, tree) -> float:
    """The value of a checked tree that uses only numbers, unit names and parameters
    (a threshold or reset level), with the model's parameter values."""
    local = {n: f"p_{n}" for n in model.parameter_names}
    lines = ["def value(params):"]
    lines += [f"    {local[n]} = params[{k}]" for k, n in enumerate(model.parameter_names)]
    lines.append(f"    return {emit(tree, local, 'numpy')}")
    with np.errstate(all="ignore"):
        return float(_execute("\n".join(lines))["value"](model.parameter_values))
