"""Scenario text to data: reading, guarding, TOML parsing, key lines, error format.

Everything that can go wrong before the data is looked at ends here as a
:class:`ScenarioError` in the common format ``FILE:LINE: dotted.key: message``: a folder, a
file that is too large, not UTF-8 (the line of the first bad byte), nested deeper than
:data:`MAX_NESTING` or with a dotted key of more parts (checked on the text *before* the
TOML parser sees it, whose recursion would otherwise overflow and whose time grows with
the square of a key's length), or not TOML (the parser's line). A UTF-8 byte-order mark is
skipped.

Values come from :mod:`tomllib` (``tomli`` on Python 3.10); key lines from
:func:`locate_keys`, a small scanner that walks the (already valid) text once. It is
about 150 lines, recursion bounded by :data:`MAX_NESTING`, never evaluates anything, and
its failures only cost a line number (it is fuzzed against ``tomllib`` in the tests).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:   # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["Problem", "ScenarioError", "locate_keys", "read_text", "parse_toml",
           "MAX_NESTING", "MAX_BYTES"]

# Arrays and inline tables nested deeper than this are refused before parsing: no scenario
# needs more than 4 levels, and tomllib recurses once per level.
MAX_NESTING = 32
# Scenario files are hand-written; a 10 MB one is a mistake (or an attack), not a network.
MAX_BYTES = 10_000_000

# A dotted key of more than MAX_NESTING parts (bare or quoted parts); the parser and the
# line scanner both take time quadratic in a key's length
_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"[^"\n]*"|'[^'\n]*')"""
_LONG_KEY = re.compile(rf"{_KEY_PART}(?:[ \t]*\.[ \t]*{_KEY_PART}){{{MAX_NESTING},}}")
# Characters that start a string, a comment or a nesting level; and the rest of each string
# form, matched at one position only (so the scan stays linear in the text length)
_SPECIAL = re.compile(r"[\"'#\[\]{}]")
_REST = {'"""': re.compile(r'(?:[^"\\]|\\.|"(?!""))*"{3,5}', re.S),
         "'''": re.compile(r"(?:[^']|'(?!''))*'{3,5}"),
         '"': re.compile(r'(?:[^"\\\n]|\\.)*"'),
         "'": re.compile(r"[^'\n]*'")}


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

    The message has one line per problem, ``FILE:LINE: dotted.key: what is wrong``, in
    the order of the file (problems without a line first).
    """

    def __init__(self, problems: list[Problem], source: str = "<scenario>"):
        self.problems = sorted(problems, key=lambda p: -1 if p.line is None else p.line)
        self.source = source
        lines = [p.format(source) for p in self.problems]
        header = (f"invalid scenario {source}: {len(lines)} problem"
                  f"{'s' if len(lines) != 1 else ''}")
        super().__init__("\n".join([header, *lines]))



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
                raw = self._string()
                if c == '"' and "\\" in raw:   # escapes: let the TOML parser decode them
                    raw = tomllib.loads(f'k = "{raw}"')["k"]
                parts.append(raw)
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
        except (ValueError, IndexError):   # pragma: no cover - the text is valid TOML
            # (tomllib.TOMLDecodeError is a ValueError)
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




def nesting_depth(text: str) -> tuple[int, int]:
    """Deepest nesting of arrays and inline tables, and the line where it is first reached
    (table headers count 1 or 2; strings and comments are skipped). Linear in the text."""
    depth = deepest = 0
    line_at = 1
    pos, end = 0, len(text)
    while pos < end:
        found = _SPECIAL.search(text, pos)
        if found is None:
            break
        char, start = found.group(), found.start()
        pos = start + 1
        if char == "#":
            newline = text.find("\n", start)
            pos = end if newline < 0 else newline
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest, line_at = depth, text.count("\n", 0, start) + 1
                if deepest > MAX_NESTING:
                    break
        elif char in "]}":
            depth = max(depth - 1, 0)
        else:
            opener = char * 3 if text.startswith(char * 3, start) else char
            rest = _REST[opener].match(text, start + len(opener))
            if rest is not None:
                pos = rest.end()
            elif len(opener) == 1:    # unterminated (invalid): resume on the next line
                newline = text.find("\n", start)
                pos = end if newline < 0 else newline
            else:
                pos = end
    return deepest, line_at


def read_text(path) -> tuple[str, str]:
    """The text of a scenario file and its name for messages.

    Raises
    ------
    FileNotFoundError
        If there is no such file or folder.
    ScenarioError
        For a folder, a file over :data:`MAX_BYTES`, or bytes that are not UTF-8.
    """
    path = Path(path)
    source = str(path)
    if path.is_dir():
        raise ScenarioError([Problem((), None, "is a folder, not a scenario file; give "
                                               "the .toml file inside it")], source)
    if not path.is_file():
        if path.exists():
            raise ScenarioError([Problem((), None, "is not a regular file")], source)
        raise FileNotFoundError(f"no such scenario file: {source!r}")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise ScenarioError([Problem((), None, f"is {size:,} bytes; scenario files are "
                                               f"limited to {MAX_BYTES:,}")], source)
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig"), source
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ScenarioError([Problem((), line, f"not UTF-8 text (byte {exc.start}: "
                                               f"{exc.reason})")], source) from None


def parse_toml(text: str, source: str) -> tuple[dict, dict]:
    """``(data, lines)``: the TOML values and ``{key path: line}``.

    Raises
    ------
    ScenarioError
        If the text is too large, too deeply nested or not TOML.
    """
    if not isinstance(text, str):
        raise ScenarioError([Problem((), None, f"must be TOML text (str), got "
                                               f"{type(text).__name__}")], source)
    text = text.removeprefix("\ufeff")
    if len(text) > MAX_BYTES:
        raise ScenarioError([Problem((), None, f"is {len(text):,} characters; scenario "
                                               f"files are limited to {MAX_BYTES:,}")],
                            source)
    depth, line = nesting_depth(text)
    if depth > MAX_NESTING:
        raise ScenarioError([Problem((), line, f"arrays or tables nested deeper than "
                                               f"{MAX_NESTING} levels")], source)
    long_key = _LONG_KEY.search(text)
    if long_key is not None:
        line = text.count("\n", 0, long_key.start()) + 1
        raise ScenarioError([Problem((), line, f"a dotted key of more than {MAX_NESTING} "
                                               f"parts")], source)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        found = re.search(r"line (\d+)", str(exc))
        if line is None and found:
            line = int(found.group(1))
        raise ScenarioError([Problem((), line, f"not valid TOML: {exc}")], source) from None
    except ValueError as exc:   # e.g. an integer of over 4300 digits (Python's limit)
        long_number = re.search(r"\d{1000}", text)
        line = None if long_number is None else text.count("\n", 0, long_number.start()) + 1
        raise ScenarioError([Problem((), line, f"not valid TOML: {exc}")], source) from None
    except RecursionError:   # pragma: no cover - the depth guard comes first
        raise ScenarioError([Problem((), None, "nested too deeply")], source) from None
    return data, locate_keys(text)
