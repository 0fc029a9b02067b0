"""Rectilinear phase-space grids.

A :class:`Grid` holds one uniform axis per state variable. It knows cells, faces and
widths, nothing about neuron models or networks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Axis", "Grid"]


@dataclass(frozen=True)
class Axis:
    """One uniform axis of a grid.

    Parameters
    ----------
    name : str
        State-variable name (e.g. ``"v"``).
    lower, upper : float
        Position of the first and the last face, in the variable's SI unit.
    num_cells : int
        Number of cells (>= 2).
    """

    name: str
    lower: float
    upper: float
    num_cells: int

    def __post_init__(self):
        for label, value in (("lower", self.lower), ("upper", self.upper)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating,
                                                                 np.integer)):
                raise TypeError(f"Grid axis {self.name!r}: {label} must be a number, "
                                f"got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"Grid axis {self.name!r}: {label} must be finite, "
                                 f"got {value!r}")
        if isinstance(self.num_cells, bool) or not isinstance(self.num_cells,
                                                              (int, np.integer)):
            raise TypeError(f"Grid axis {self.name!r}: num_cells must be an integer, "
                            f"got {self.num_cells!r}")
        if self.num_cells < 2:
            raise ValueError(f"Grid axis {self.name!r}: num_cells must be >= 2, "
                             f"got {self.num_cells}")
        if not self.lower < self.upper:
            raise ValueError(f"Grid axis {self.name!r}: lower must be < upper, got "
                             f"lower={self.lower!r}, upper={self.upper!r}")
        object.__setattr__(self, "lower", float(self.lower))
        object.__setattr__(self, "upper", float(self.upper))
        object.__setattr__(self, "num_cells", int(self.num_cells))

    @property
    def width(self) -> float:
        """Cell width (uniform)."""
        return (self.upper - self.lower) / self.num_cells

    @property
    def faces(self) -> np.ndarray:
        """The ``num_cells + 1`` face positions."""
        return np.linspace(self.lower, self.upper, self.num_cells + 1)

    @property
    def centers(self) -> np.ndarray:
        """The ``num_cells`` cell-center positions."""
        return self.lower + (np.arange(self.num_cells) + 0.5) * self.width

    def face_index(self, x: float, rtol: float = 1e-9) -> int | None:
        """Index of the face at ``x`` (within ``rtol`` of a cell width), else ``None``."""
        k = (x - self.lower) / self.width
        j = int(round(k))
        if abs(k - j) <= rtol * max(1.0, abs(k)) and 0 <= j <= self.num_cells:
            return j
        return None

    def contains(self, x: float) -> bool:
        """Whether ``lower <= x <= upper`` (up to round-off)."""
        tol = 1e-9 * self.width
        return self.lower - tol <= x <= self.upper + tol


class Grid:
    """A rectilinear grid with one uniform axis per state variable.

    Parameters
    ----------
    **axes : tuple (lower, upper, num_cells)
        One entry per state variable, in the model's variable order, e.g.
        ``pd.Grid(v=(0.0, 20e-3, 400))`` (SI units: volts for ``v``).

    Examples
    --------
    >>> g = Grid(v=(0.0, 1.0, 100))
    >>> g.shape, round(g.axes[0].width, 3)
    ((100,), 0.01)
    """

    def __init__(self, **axes):
        if not axes:
            raise ValueError("Grid needs at least one axis, e.g. Grid(v=(0.0, 0.02, 400))")
        built = []
        for name, spec in axes.items():
            if isinstance(spec, Axis):
                built.append(Axis(name, spec.lower, spec.upper, spec.num_cells))
                continue
            if not isinstance(spec, (tuple, list)) or len(spec) != 3:
                raise TypeError(f"Grid axis {name!r} must be a (lower, upper, num_cells) "
                                f"tuple, got {spec!r}")
            built.append(Axis(name, *spec))
        self.axes: tuple[Axis, ...] = tuple(built)

    @property
    def names(self) -> tuple[str, ...]:
        """State-variable names, in axis order."""
        return tuple(a.name for a in self.axes)

    @property
    def ndim(self) -> int:
        return len(self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(a.num_cells for a in self.axes)

    @property
    def num_cells(self) -> int:
        """Total number of cells."""
        return int(np.prod(self.shape))

    @property
    def cell_volume(self) -> float:
        return float(np.prod([a.width for a in self.axes]))

    def axis(self, name: str) -> Axis:
        for a in self.axes:
            if a.name == name:
                return a
        raise KeyError(f"grid has no axis {name!r}; axes are {self.names}")

    def centers(self) -> list[np.ndarray]:
        """Cell centers of each axis."""
        return [a.centers for a in self.axes]

    def faces(self) -> list[np.ndarray]:
        """Face positions of each axis."""
        return [a.faces for a in self.axes]

    def __repr__(self) -> str:
        inner = ", ".join(f"{a.name}=({a.lower:g}, {a.upper:g}, {a.num_cells})"
                          for a in self.axes)
        return f"Grid({inner})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Grid) and self.axes == other.axes

    def __hash__(self) -> int:
        return hash(self.axes)
