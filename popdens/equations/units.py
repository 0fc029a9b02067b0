"""Physical dimensions for unit annotations: SI base exponents, a small table, no pint.

A dimension is a tuple of seven :class:`fractions.Fraction` exponents of (metre,
kilogram, second, ampere, kelvin, mole, candela). Unit annotations name unprefixed SI
units only (``volt``, not ``mV``): parameter values are SI floats, and the annotation
states the dimension, never a scale.
"""

from __future__ import annotations

import ast
from fractions import Fraction

from .errors import EquationError

__all__ = ["Dim", "DIMENSIONLESS", "UNITS", "parse_unit", "format_dim", "mul", "div", "power"]

Dim = tuple
_BASE = ("metre", "kilogram", "second", "amp", "kelvin", "mole", "candela")
# Largest |exponent| in a unit annotation (amp/metre**2 needs 2; sqrt(second) 1/2).
_MAX_UNIT_EXPONENT = 12


def _d(m=0, kg=0, s=0, a=0, k=0, mol=0, cd=0) -> Dim:
    return tuple(Fraction(x) for x in (m, kg, s, a, k, mol, cd))


DIMENSIONLESS = _d()
UNITS = {
    "1": DIMENSIONLESS, "radian": DIMENSIONLESS,
    "metre": _d(m=1), "meter": _d(m=1), "kilogram": _d(kg=1), "second": _d(s=1),
    "amp": _d(a=1), "ampere": _d(a=1), "kelvin": _d(k=1), "mole": _d(mol=1),
    "candela": _d(cd=1),
    "hertz": _d(s=-1), "coulomb": _d(s=1, a=1), "newton": _d(m=1, kg=1, s=-2),
    "joule": _d(m=2, kg=1, s=-2), "watt": _d(m=2, kg=1, s=-3),
    "volt": _d(m=2, kg=1, s=-3, a=-1), "ohm": _d(m=2, kg=1, s=-3, a=-2),
    "siemens": _d(m=-2, kg=-1, s=3, a=2), "farad": _d(m=-2, kg=-1, s=4, a=2),
    "molar": _d(m=-3, mol=1),
}
_PREFIXES = ("m", "u", "n", "p", "f", "k", "M", "G", "c")


def mul(a: Dim, b: Dim) -> Dim:
    return tuple(x + y for x, y in zip(a, b, strict=True))


def div(a: Dim, b: Dim) -> Dim:
    return tuple(x - y for x, y in zip(a, b, strict=True))


def power(a: Dim, exponent: Fraction) -> Dim:
    return tuple(x * exponent for x in a)


def format_dim(dim: Dim | None) -> str:
    """A readable name: a table unit when one matches, else a product of base units."""
    if dim is None:
        return "unknown (a parameter without units)"
    named = [n for n in UNITS if n not in ("radian", "meter", "ampere")]
    for name in named:
        if UNITS[name] == dim:
            return name
    for a in named[1:]:  # per second first: the unit of a time derivative
        if div(UNITS[a], UNITS["second"]) == dim:
            return f"{a}/second"
    for a in named[1:]:  # a quotient or product of two table units
        for b in named[1:]:
            if div(UNITS[a], UNITS[b]) == dim:
                return f"{a}/{b}"
            if mul(UNITS[a], UNITS[b]) == dim and a <= b:
                return f"{a}*{b}"
    parts = [base if e == 1 else f"{base}**{e}" if e.denominator == 1 else f"{base}**({e})"
             for base, e in zip(_BASE, dim, strict=True) if e != 0]
    return "*".join(parts)


def _number(node) -> Fraction | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _number(node.operand)
        return None if inner is None else -inner
    if (isinstance(node, ast.Constant) and type(node.value) in (int, float)
            and abs(node.value) <= _MAX_UNIT_EXPONENT):
        return Fraction(node.value).limit_denominator(100)
    return None


def parse_unit(text: str, where: str = "unit") -> Dim:
    """Dimension of a unit annotation such as ``volt``, ``amp/metre**2`` or ``1``."""
    text = text.strip()
    if not text or len(text) > 200:
        raise EquationError(f"{where}: a unit annotation must be 1 to 200 characters, "
                            f"got {text!r}")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, RecursionError, MemoryError) as exc:
        raise EquationError(f"{where}: cannot parse the unit {text!r}") from exc

    def walk(node) -> Dim:
        if isinstance(node, ast.Name):
            if node.id in UNITS:
                return UNITS[node.id]
            hint = ""
            if node.id[:1] in _PREFIXES and node.id[1:] in _SHORT:
                hint = (f" (prefixed units are not accepted: values are SI floats; "
                        f"write {_SHORT[node.id[1:]]!r})")
            elif node.id in _SHORT:
                hint = f" (write {_SHORT[node.id]!r})"
            raise EquationError(f"{where}: unknown unit {node.id!r}{hint}; known: "
                                f"{', '.join(sorted(UNITS))}")
        if isinstance(node, ast.Constant) and node.value == 1 and type(node.value) is int:
            return DIMENSIONLESS
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Div)):
            left, right = walk(node.left), walk(node.right)
            return mul(left, right) if isinstance(node.op, ast.Mult) else div(left, right)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            exponent = _number(node.right)
            if exponent is None:
                raise EquationError(f"{where}: a unit exponent must be a number of magnitude "
                                    f"<= {_MAX_UNIT_EXPONENT}, in {text!r}")
            return power(walk(node.left), exponent)
        raise EquationError(f"{where}: {text!r} is not a unit expression (names of SI units, "
                            f"*, /, ** number)")

    return walk(tree.body)


_SHORT = {"V": "volt", "A": "amp", "S": "siemens", "F": "farad", "s": "second",
          "Hz": "hertz", "ohm": "ohm", "m": "metre", "mV": "volt", "ms": "second"}
