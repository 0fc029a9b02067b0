"""The error raised for invalid equation text."""

from __future__ import annotations

__all__ = ["EquationError"]


class EquationError(ValueError):
    """Invalid model text: the message names the line, the column and the offending part.

    Attributes
    ----------
    line : int or None
        1-based line of the equation text (None for threshold/reset/surface strings and
        for errors about the model as a whole).
    column : int or None
        1-based column in that line or string.
    """

    def __init__(self, message: str, line: int | None = None, column: int | None = None,
                 source: str | None = None):
        self.line, self.column = line, column
        where = []
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column}")
        text = f"{', '.join(where)}: {message}" if where else message
        if source is not None and column is not None:
            text += f"\n    {source}\n    {' ' * (column - 1)}^"
        super().__init__(text)
