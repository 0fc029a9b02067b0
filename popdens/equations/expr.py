"""Whitelisted expressions: parsing with :mod:`ast`, dimensions, the noise split, code.

User text is only ever given to :func:`ast.parse` (which builds a syntax tree and runs
nothing); the tree is then checked node by node against a whitelist. Code is generated
from checked trees only, with every user name mapped to a prefixed local identifier.
"""

from __future__ import annotations

import ast
import keyword
import re
from dataclasses import dataclass
from fractions import Fraction

from . import units as u
from .errors import EquationError

__all__ = ["Where", "parse_expression", "names_in", "dimension", "split_noise", "emit",
           "FUNCTIONS", "check_identifier", "is_noise_name"]

# Limits that keep the parser's own recursion and memory small for hostile input.
MAX_EXPRESSION_CHARS = 2000
MAX_NESTING = 40
MAX_NODES = 1000
# Largest |exponent| literal: v**2, x**-0.5, n**4 need little; 10**400 overflows anyway.
MAX_EXPONENT = 64

_NOISE = re.compile(r"xi(_[A-Za-z0-9_]+)?\Z")
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
NOISE_DIM = u.power(u.UNITS["second"], Fraction(-1, 2))

# name -> (number of arguments, unit rule, NumPy template, scalar template)
# unit rules: "dimless" argument(s) and result dimensionless; "same": all arguments share
# a dimension, the result has it; "sqrt": half the exponents; "indicator": any argument,
# dimensionless result.
FUNCTIONS = {
    "exp": (1, "dimless", "np.exp({0})", "math.exp({0})"),
    "log": (1, "dimless", "np.log({0})", "math.log({0})"),
    "log10": (1, "dimless", "np.log10({0})", "math.log10({0})"),
    "sqrt": (1, "sqrt", "np.sqrt({0})", "math.sqrt({0})"),
    "sin": (1, "dimless", "np.sin({0})", "math.sin({0})"),
    "cos": (1, "dimless", "np.cos({0})", "math.cos({0})"),
    "tan": (1, "dimless", "np.tan({0})", "math.tan({0})"),
    "sinh": (1, "dimless", "np.sinh({0})", "math.sinh({0})"),
    "cosh": (1, "dimless", "np.cosh({0})", "math.cosh({0})"),
    "tanh": (1, "dimless", "np.tanh({0})", "math.tanh({0})"),
    "arctan": (1, "dimless", "np.arctan({0})", "math.atan({0})"),
    # exprel(x) = (exp(x) - 1)/x, 1 at x = 0 (as Brian2): HH rates x/(1 - exp(-x)) are
    # 1/exprel(-x) without the 0/0 at x = 0; the series 1 + x/2 + x^2/6 below 1e-4 has a
    # relative error under 1e-13 there
    "exprel": (1, "dimless",
               "np.where(np.abs({0}) < 1e-4, 1.0 + ({0})*(0.5 + ({0})/6.0), "
               "np.expm1({0})/np.where(({0}) == 0.0, 1.0, {0}))",
               "(1.0 + ({0})*(0.5 + ({0})/6.0) if abs({0}) < 1e-4 "
               "else math.expm1({0})/({0}))"),
    "abs": (1, "same", "np.abs({0})", "abs({0})"),
    "minimum": (2, "same", "np.minimum({0}, {1})", "min({0}, {1})"),
    "maximum": (2, "same", "np.maximum({0}, {1})", "max({0}, {1})"),
    "clip": (3, "same", "np.clip({0}, {1}, {2})", "min(max({0}, {1}), {2})"),
    "heaviside": (1, "indicator", "np.where(({0}) > 0.0, 1.0, 0.0)",
                  "(1.0 if ({0}) > 0.0 else 0.0)"),
    "sign": (1, "indicator", "np.sign({0})",
             "(1.0 if ({0}) > 0.0 else (-1.0 if ({0}) < 0.0 else 0.0))"),
}
_RESERVED = {"t", "dt", "i", "N", "lastspike", "not_refractory", "np", "math", "True",
             "False", "None", "inf", "nan", "e", "pi"}
_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_CMPOPS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


@dataclass(frozen=True)
class Where:
    """Where a piece of text sits, for error messages: a label (``line 3`` or
    ``threshold``), the 1-based line (or None), the full source line and the offset of
    the expression in it."""

    line: int | None
    source: str
    offset: int = 0
    label: str | None = None

    def error(self, message: str, node=None, col: int | None = None) -> EquationError:
        if node is not None and hasattr(node, "col_offset"):
            col = node.col_offset
        column = None if col is None else self.offset + col + 1
        if self.label:
            message = f"{self.label}: {message}"
        return EquationError(message, self.line, column, self.source)


def is_noise_name(name: str) -> bool:
    return bool(_NOISE.match(name))


def check_identifier(name: str, where: Where, what: str) -> None:
    """A user-chosen name: letters, digits and underscores, starting with a letter, not a
    keyword, function, noise symbol or reserved word."""
    if not _IDENT.match(name) or len(name) > 64:
        raise where.error(f"invalid {what} name {name!r}: use a letter followed by letters, "
                          f"digits or underscores (at most 64)", col=where.source.find(name))
    if (keyword.iskeyword(name) or name in FUNCTIONS or name in _RESERVED
            or is_noise_name(name) or name in u.UNITS):
        raise where.error(f"{what} name {name!r} is reserved (a keyword, function, unit, "
                          f"noise symbol or one of {sorted(_RESERVED)})",
                          col=max(where.source.find(name), 0))


def _depth(text: str) -> int:
    depth = deepest = 0
    for ch in text:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth -= 1
    return deepest


def parse_expression(text: str, where: Where) -> ast.expr:
    """Parse ``text`` into a whitelisted expression tree or raise naming the position."""
    stripped = text.lstrip()
    lead = len(text) - len(stripped)
    if len(text) > MAX_EXPRESSION_CHARS:
        raise where.error(f"expression too long ({len(text)} > {MAX_EXPRESSION_CHARS} "
                          f"characters)", col=lead)
    if _depth(text) > MAX_NESTING:
        raise where.error(f"expression nested deeper than {MAX_NESTING} parentheses",
                          col=lead)
    try:
        tree = ast.parse(stripped.rstrip(), mode="eval")
    except SyntaxError as exc:
        col = (exc.offset or 1) - 1 + lead
        raise where.error(f"syntax error: {exc.msg}", col=col) from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise where.error(f"cannot parse the expression ({type(exc).__name__})",
                          col=lead) from None
    body = tree.body
    count = sum(1 for _ in ast.walk(body))
    if count > MAX_NODES:
        raise where.error(f"expression too large ({count} > {MAX_NODES} syntax nodes)",
                          col=lead)
    shifted = Where(where.line, where.source, where.offset + lead, where.label)
    _check_node(body, shifted)
    return _Located(body, shifted)


class _Located(ast.Expression):
    """A checked expression with the :class:`Where` its column offsets refer to."""

    def __init__(self, body, where: Where):
        super().__init__(body=body)
        self.where = where


def _check_node(node, where: Where) -> None:
    if isinstance(node, ast.Constant):
        if type(node.value) not in (int, float):
            raise where.error(f"only real numbers are allowed, got {node.value!r}", node)
        if not abs(float(node.value)) < float("inf"):
            raise where.error(f"number out of range: {node.value!r}", node)
        return
    if isinstance(node, ast.Name):
        if node.id.startswith("_"):
            raise where.error(f"names starting with '_' are not allowed: {node.id!r}", node)
        return
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        _check_node(node.left, where)
        if isinstance(node.op, ast.Pow):
            exponent = _literal(node.right)
            if exponent is None or abs(exponent) > MAX_EXPONENT:
                raise where.error(f"an exponent must be a number literal of magnitude <= "
                                  f"{MAX_EXPONENT} (use exp/log for others)", node.right)
            return
        _check_node(node.right, where)
        return
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        _check_node(node.operand, where)
        return
    if isinstance(node, ast.Compare):
        if len(node.ops) != 1 or type(node.ops[0]) not in _CMPOPS:
            raise where.error("only single comparisons <, <=, >, >= are allowed", node)
        _check_node(node.left, where)
        _check_node(node.comparators[0], where)
        return
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in FUNCTIONS:
            shown = name if name is not None else type(node.func).__name__
            raise where.error(f"unknown function {shown!r}; allowed: "
                              f"{', '.join(sorted(FUNCTIONS))}", node)
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise where.error(f"{name}() takes positional arguments only", node)
        nargs = FUNCTIONS[name][0]
        if len(node.args) != nargs:
            raise where.error(f"{name}() takes {nargs} argument(s), got {len(node.args)}",
                              node)
        for arg in node.args:
            _check_node(arg, where)
        return
    kind = {ast.Attribute: "attribute access", ast.Subscript: "subscripts",
            ast.Lambda: "lambda", ast.BoolOp: "and/or", ast.IfExp: "if-expressions"}
    what = kind.get(type(node), type(node).__name__)
    raise where.error(f"{what} not allowed in equations", node)


def _literal(node) -> float | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _literal(node.operand)
        return None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return float(node.value)
    return None


def names_in(node) -> list[ast.Name]:
    """The variable names of a checked tree (function names excluded)."""
    funcs = {id(n.func) for n in ast.walk(node) if isinstance(n, ast.Call)}
    return [n for n in ast.walk(node) if isinstance(n, ast.Name) and id(n) not in funcs]


# ------------------------------------------------------------------------- dimensions
def dimension(node, dims: dict, where: Where):
    """Dimension of a checked expression; ``dims`` maps names to a dimension or None
    (unknown: parameters without units, whose expressions are not checked)."""
    if isinstance(node, ast.Expression):
        node = node.body
    if isinstance(node, ast.Constant):
        return "zero" if node.value == 0 else u.DIMENSIONLESS
    if isinstance(node, ast.Name):
        return dims[node.id] if node.id in dims else u.UNITS[node.id]
    if isinstance(node, ast.UnaryOp):
        return dimension(node.operand, dims, where)
    if isinstance(node, ast.BinOp):
        left = dimension(node.left, dims, where)
        if isinstance(node.op, ast.Pow):
            if left is None:
                return None
            if left == "zero":
                return "zero"
            exponent = Fraction(_literal(node.right)).limit_denominator(1000)
            return u.power(left, exponent)
        right = dimension(node.right, dims, where)
        if isinstance(node.op, (ast.Add, ast.Sub)):
            return _same(left, right, where, node, "+" if isinstance(node.op, ast.Add) else "-")
        left = u.DIMENSIONLESS if left == "zero" else left
        right = u.DIMENSIONLESS if right == "zero" else right
        if left is None or right is None:
            return None
        return u.mul(left, right) if isinstance(node.op, ast.Mult) else u.div(left, right)
    if isinstance(node, ast.Compare):
        _same(dimension(node.left, dims, where), dimension(node.comparators[0], dims, where),
              where, node, _CMPOPS[type(node.ops[0])])
        return u.DIMENSIONLESS
    if isinstance(node, ast.Call):
        return _call_dimension(node, dims, where)
    raise where.error(f"unexpected {type(node).__name__}", node)  # unreachable: checked


def _same(a, b, where: Where, node, op: str):
    """Dimension of ``a op b`` for +, -, comparisons: equal, or either side 0 (a bare
    zero fits any dimension) or unknown."""
    if a == "zero" or a is None:
        return b if b is not None or a is None else a
    if b == "zero" or b is None:
        return a
    if a != b:
        hint = ""
        if u.DIMENSIONLESS in (a, b):
            hint = (" (numbers are dimensionless: multiply by a unit, e.g. 0.02*volt, "
                    "or use a parameter)")
        raise where.error(f"dimension mismatch in {op!r}: {u.format_dim(a)} vs "
                          f"{u.format_dim(b)} in {ast.unparse(node)!r}{hint}", node)
    return a


def _call_dimension(node, dims, where):
    name = node.func.id
    rule = FUNCTIONS[name][1]
    args = [dimension(a, dims, where) for a in node.args]
    if rule == "indicator":
        return u.DIMENSIONLESS
    if rule == "dimless":
        for arg, a in zip(node.args, args, strict=True):
            if a not in (None, "zero", u.DIMENSIONLESS):
                raise where.error(f"{name}() needs a dimensionless argument, got "
                                  f"{u.format_dim(a)} in {ast.unparse(arg)!r}", arg)
        return u.DIMENSIONLESS
    if rule == "sqrt":
        a = args[0]
        return a if a in (None, "zero") else u.power(a, Fraction(1, 2))
    result = args[0]
    for arg, a in zip(node.args[1:], args[1:], strict=True):
        result = _same(result, a, where, arg, f"{name}()")
    return result


# ------------------------------------------------------------------------- noise split
def split_noise(node, where: Where):
    """Split ``node`` (affine in the noise symbols) into ``(drift, {noise: amplitude})``
    expression trees (None for zero). Raises if a noise symbol enters nonlinearly."""
    if isinstance(node, ast.Expression):
        node = node.body
    if isinstance(node, ast.Name) and is_noise_name(node.id):
        return None, {node.id: ast.Constant(1.0)}
    if not any(isinstance(n, ast.Name) and is_noise_name(n.id) for n in ast.walk(node)):
        return node, {}
    if isinstance(node, ast.UnaryOp):
        f, g = split_noise(node.operand, where)
        if isinstance(node.op, ast.UAdd):
            return f, g
        return _neg(f), {k: _neg(v) for k, v in g.items()}
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        f1, g1 = split_noise(node.left, where)
        f2, g2 = split_noise(node.right, where)
        sub = isinstance(node.op, ast.Sub)
        g = dict(g1)
        for k, v in g2.items():
            g[k] = _combine(g.get(k), v, sub)
        return _combine(f1, f2, sub), g
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Div)):
        noisy_right = any(isinstance(n, ast.Name) and is_noise_name(n.id)
                          for n in ast.walk(node.right))
        noisy_left = any(isinstance(n, ast.Name) and is_noise_name(n.id)
                         for n in ast.walk(node.left))
        if noisy_left and noisy_right:
            raise where.error("a product of noise terms is not white noise", node)
        if isinstance(node.op, ast.Div) and noisy_right:
            raise where.error("noise may not appear in a denominator", node.right)
        inner, other = (node.left, node.right) if noisy_left else (node.right, node.left)
        f, g = split_noise(inner, where)

        def scale(expr):
            if expr is None:
                return None
            if isinstance(node.op, ast.Div):
                return ast.BinOp(expr, ast.Div(), other)
            return ast.BinOp(expr, ast.Mult(), other) if noisy_left else \
                ast.BinOp(other, ast.Mult(), expr)

        return scale(f), {k: scale(v) for k, v in g.items()}
    raise where.error("noise (xi) must enter linearly: as f + g*xi, not inside a function, "
                      "power or comparison", node)


def _neg(expr):
    return None if expr is None else ast.UnaryOp(ast.USub(), expr)


def _combine(a, b, subtract: bool):
    if b is None:
        return a
    if a is None:
        return _neg(b) if subtract else b
    return ast.BinOp(a, ast.Sub() if subtract else ast.Add(), b)


# ------------------------------------------------------------------------- code
def emit(node, local: dict, mode: str) -> str:
    """Python source for a checked tree: ``local`` maps user names to identifiers;
    ``mode`` is ``"numpy"`` (vectorised) or ``"scalar"`` (numba-compilable)."""
    if isinstance(node, ast.Expression):
        node = node.body
    if node is None:
        return "0.0"
    if isinstance(node, ast.Constant):
        return repr(float(node.value))
    if isinstance(node, ast.Name):
        return local[node.id] if node.id in local else "1.0"  # a unit name: SI scale 1
    if isinstance(node, ast.UnaryOp):
        sign = "-" if isinstance(node.op, ast.USub) else "+"
        return f"({sign}{emit(node.operand, local, mode)})"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow) and mode == "numpy":
        # np.power overflows to inf like the arrays do; Python float ** would raise
        return f"np.power({emit(node.left, local, mode)}, {emit(node.right, local, mode)})"
    if isinstance(node, ast.BinOp):
        return (f"({emit(node.left, local, mode)} {_BINOPS[type(node.op)]} "
                f"{emit(node.right, local, mode)})")
    if isinstance(node, ast.Compare):
        op = _CMPOPS[type(node.ops[0])]
        left = emit(node.left, local, mode)
        right = emit(node.comparators[0], local, mode)
        if mode == "numpy":
            return f"np.where({left} {op} {right}, 1.0, 0.0)"
        return f"(1.0 if {left} {op} {right} else 0.0)"
    if isinstance(node, ast.Call):
        template = FUNCTIONS[node.func.id][2 if mode == "numpy" else 3]
        return template.format(*(emit(a, local, mode) for a in node.args))
    raise TypeError(f"cannot emit {type(node).__name__}")  # unreachable: checked trees
