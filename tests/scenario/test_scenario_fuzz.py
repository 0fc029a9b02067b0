"""Fuzzing the scenario loader: any text ends in a Scenario or a ScenarioError."""

from __future__ import annotations

import math
import re
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from popdens.scenario import ScenarioError, parse_scenario

if sys.version_info >= (3, 11):
    import tomllib
else:   # pragma: no cover
    import tomli as tomllib

from .test_scenario import GOOD

# Keys a scenario uses, so that random structures reach the builders, not only the
# unknown-key check
WORDS = ["run", "t_end", "dt", "backend", "record_times", "density", "montecarlo",
         "n_neurons", "seed", "scheme", "populations", "E", "I", "model", "params", "grid",
         "v", "tau_m", "v_th", "v_reset", "t_ref", "boundaries", "init", "sources", "ext",
         "rate", "shape", "times", "rates", "mean", "amplitude", "frequency", "connections",
         "pre", "post", "weight", "n_syn", "delay", "distribution", "input", "reversal",
         "LIF", "ReducedHH", "piecewise", "gamma", "jump", "absorb"]
LINE = re.compile(r"^<fuzz>(:\d+)?: \S[^\n]*: \S")

scalars = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, 2, -1, 0.02, 1e-4, 1e300, 10**400]),
    st.booleans(),
    st.sampled_from(WORDS),
    st.text(max_size=8),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(WORDS) | st.text(max_size=4),
                                            inner, max_size=4)),
    max_leaves=20)


def _toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped (JSON's
    escapes would write characters beyond U+FFFF as surrogate pairs, invalid in TOML)."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{_toml_string(k)} = {_toml_value(v)}" for k, v in value.items()) \
        + "}"


def _toml(document: dict) -> str:
    return "".join(f"{_toml_string(k)} = {_toml_value(v)}\n" for k, v in document.items())


def _assert_scenario_or_error(text: str) -> None:
    try:
        scenario = parse_scenario(text, source="<fuzz>")
    except ScenarioError as err:
        lines = str(err).splitlines()
        assert lines[0].startswith("invalid scenario <fuzz>")
        assert err.problems and all(LINE.match(line) for line in lines[1:]), str(err)
    else:
        assert scenario.network.populations and scenario.t_end > 0


def _mutate(document, path, value, delete):
    """A copy of ``document`` with the entry at ``path`` replaced (or deleted)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(document, dict):
        key = sorted(document)[head % len(document)] if document else "x"
        out = dict(document)
        if delete and not rest:
            out.pop(key, None)
        else:
            out[key] = _mutate(document.get(key, {}), rest, value, delete)
        return out
    if isinstance(document, list) and document:
        out = list(document)
        out[head % len(out)] = _mutate(out[head % len(out)], rest, value, delete)
        return out
    return value


FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.dictionaries(st.sampled_from(WORDS), values, max_size=6))
def test_random_toml_structures_give_a_scenario_or_the_documented_error(document):
    _assert_scenario_or_error(_toml(document))


@FAST
@given(st.lists(st.integers(0, 50), min_size=1, max_size=4), values, st.booleans())
def test_mutated_good_scenario_gives_a_scenario_or_the_documented_error(path, value, delete):
    document = _mutate(tomllib.loads(GOOD), path, value, delete)
    if not isinstance(document, dict):
        document = {"run": document}
    _assert_scenario_or_error(_toml(document))


@FAST
@given(st.lists(st.tuples(st.integers(0, len(GOOD)), st.integers(0, 3),
                          st.sampled_from(list("[]{}=\"'#.,\n\\ 0e-x") + ["\ufeff", "\x00"])),
                max_size=5))
def test_randomly_edited_text_gives_scenario_or_documented_error(edits):
    text = GOOD
    for position, width, char in edits:
        text = text[:position] + char + text[position + width:]
    _assert_scenario_or_error(text)


@pytest.mark.parametrize("depth", [31, 33, 5000])
def test_nesting_at_and_beyond_the_limit(depth):
    _assert_scenario_or_error(GOOD + "deep = " + "[" * depth + "]" * depth + "\n")


@FAST
@given(st.dictionaries(st.sampled_from(WORDS), st.dictionaries(
    st.sampled_from(WORDS) | st.text(min_size=1, max_size=6), values, max_size=4),
    min_size=1, max_size=4), st.booleans())
def test_locate_keys_agrees_with_tomllib(tables, as_array):
    """The line scanner on valid TOML with headers, quoted keys and nested values: every
    key tomllib sees is located, on the line that holds that key."""
    from popdens.scenario import locate_keys

    lines = []
    for name, table in tables.items():
        lines.append(f"[[{_toml_string(name)}]]" if as_array else f"[{_toml_string(name)}]")
        lines.extend(f"{_toml_string(k)} = {_toml_value(v)}  # {k.isalnum()}" for k, v in
                     table.items())
    text = "\n".join(lines) + "\n"
    data = tomllib.loads(text)
    located = locate_keys(text)
    for name, table in data.items():
        base = (name, 0) if as_array else (name,)
        table = table[0] if as_array else table
        assert located[base] == lines.index(f"[[{_toml_string(name)}]]" if as_array
                                            else f"[{_toml_string(name)}]") + 1
        for key in table:
            row = text.split("\n")[located[base + (key,)] - 1]   # TOML lines end at \n only
            assert row.startswith(_toml_string(key) + " = "), (key, row)
