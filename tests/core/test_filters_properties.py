"""Property-based tests of the filter language: no input crashes the parser, no event crashes a filter,
and the compiled closures agree with a plain tree-walking reference evaluator."""

from __future__ import annotations

import fnmatch
import operator
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkserver.core.errors import FilterError
from linkserver.core.events import Event
from linkserver.core.filters import And, Compare, Filter, InList, Match, Node, Not, Operand, Or, parse_filter
from linkserver.core.filters.ast import as_timestamp
from linkserver.core.filters.evaluate import compile_node
from linkserver.core.levels import Level
from linkserver.core.paths import compile_mask

# -- strategies: text and token soup -------------------------------------------------

TOKENS = [
    "context", "name", "level", "group", "author", "created", "id", "data", "data.x", "data.t.a", "data.",
    "lvl", "and", "AND", "or", "Or", "not", "NOT", "in", "IN", "true", "false", "null", "WARNING", "error",
    "==", "!=", "<", "<=", ">", ">=", "~", "=~", "=", "!", "(", ")", "[", "]", ",", "-", ".", "&", "|",
    '"a"', "'b'", '"devices.*"', '"**"', '"("', '"[a-"', '"2024-05-01T12:00:00Z"', '"2024-05-01"', '"',
    "'", '"\\u00e9"', '"\\u12"', '"\\', "0", "1", "-1", "2.5", "1e3", "1e999", "12abc", "", " ", "\n",
]  # fmt: skip

token_soup = st.lists(st.sampled_from(TOKENS), max_size=30).flatmap(
    lambda tokens: st.sampled_from([" ", ""]).map(lambda sep: sep.join(tokens))
)


def parse_or_none(text: str) -> Filter | None:
    try:
        return parse_filter(text)
    except FilterError:
        return None


@given(st.text(max_size=300))
def test_arbitrary_text_parses_or_raises_filter_error(text: str) -> None:
    parse_or_none(text)


@given(token_soup)
def test_arbitrary_token_sequences_parse_or_raise_filter_error(text: str) -> None:
    flt = parse_or_none(text)
    if flt is not None:
        assert flt.matches(EXAMPLE) in (True, False)


@given(st.text(max_size=200))
def test_any_string_literal_round_trips_through_quoting(text: str) -> None:
    quoted = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    flt = parse_filter(f"name == {quoted}")
    assert flt.ast == Compare(Operand("name"), "==", text)


# -- strategies: valid expressions ---------------------------------------------------

ORDER = ["==", "!=", "<", "<=", ">", ">="]
STRINGS = ['"a"', '"login"', "'devices.plc7'", '""', '"2024-05-01T12:00:00Z"', '"b\\"c"']
GLOBS = ['"*"', '"log*"', '"a?"', '"[ab]*"', '""']
REGEXES = ['"^a"', '"og"', '"\\\\d+"', '""', '"^$"']
MASKS = ['"**"', '"devices.*"', '"devices.**"', '"root"', '"users.*.x"']
TIMES = ['"2024-05-01T12:00:00Z"', '"2024-05-01T14:00:00+02:00"', '"1999-01-01T00:00:00Z"']
DATA_LITERALS = ["0", "1", "-1", "2.5", "1e3", *STRINGS, *TIMES]
DATA_OPERANDS = ["data.x", "data.y", "data.s", "data.t.a", "data.missing"]


def joined(*parts: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(*parts).map(" ".join)


def listed(items: list[str]) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(items), max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]")


pick = st.sampled_from
in_op = pick(["in", "not in", "IN"])
comparisons = st.one_of(
    joined(pick(["level"]), pick(ORDER), pick(["WARNING", "info", "Fatal", "NONE", "0", "3", "'error'"])),
    joined(pick(["level"]), in_op, listed(["WARNING", "INFO", "1", "5"])),
    joined(pick(["name", "context", "group", "author"]), pick(ORDER), pick(STRINGS[:-2])),
    joined(pick(["name", "group", "author"]), pick(["~"]), pick(GLOBS)),
    joined(pick(["name", "context", "group", "author"]), pick(["=~"]), pick(REGEXES)),
    joined(pick(["context"]), pick(["~"]), pick(MASKS)),
    joined(pick(["group", "author"]), pick(["==", "!="]), pick(["null"])),
    joined(pick(["name", "group"]), in_op, listed(['"a"', '"login"', "null"][:2])),
    joined(pick(["id"]), pick(ORDER), pick(["0", "1", "42", "2.5"])),
    joined(pick(["id"]), in_op, listed(["1", "2", "42.0"])),
    joined(pick(["created"]), pick(ORDER), pick(TIMES)),
    joined(pick(["created"]), in_op, listed(TIMES)),
    joined(pick(DATA_OPERANDS), pick(ORDER), pick(DATA_LITERALS)),
    joined(pick(DATA_OPERANDS), pick(["==", "!="]), pick(["true", "false", "null", "TRUE"])),
    joined(pick(DATA_OPERANDS), in_op, listed([*DATA_LITERALS, "true", "null"])),
    joined(pick(DATA_OPERANDS), pick(["~"]), pick(GLOBS)),
    joined(pick(DATA_OPERANDS), pick(["=~"]), pick(REGEXES)),
)
expressions = st.recursive(
    comparisons,
    lambda inner: st.one_of(
        joined(inner, pick(["and", "or", "AND", "Or"]), inner),
        inner.map(lambda e: f"not {e}"),
        inner.map(lambda e: f"({e})"),
    ),
    max_leaves=8,
)

# -- strategies: events, well-formed or not ------------------------------------------

aware_times = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
) | st.sampled_from(
    [datetime(2024, 5, 1, 12, tzinfo=UTC), datetime(2024, 5, 1, 14, tzinfo=timezone(timedelta(hours=2)))]
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 2.5, 1000.0, 42]),
    st.text(max_size=12),
    st.sampled_from(["a", "login", "", "2024-05-01T12:00:00Z", 'b"c', "123", "ab"]),
    aware_times,
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1)),  # naive: malformed
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(st.dictionaries(st.sampled_from(["a", "b"]), inner, max_size=2), max_size=2).map(tuple)
        | st.dictionaries(st.sampled_from(["a", "b"]), inner, max_size=2)
        | st.lists(inner, max_size=2)
    ),
    max_leaves=4,
)
records = st.dictionaries(st.sampled_from(["x", "y", "s", "t"]), values, max_size=4)
contexts = st.sampled_from(["", "devices", "devices.plc7", "devices.plc7.io", "users.bob.x", "login"])
names = st.sampled_from(["login", "a", "ab", "x", "logout", "devices.plc7"])
nullable_strings = st.none() | names | st.text(max_size=6)

events = st.builds(
    Event,
    id=st.integers(min_value=0, max_value=2**63) | st.sampled_from([1, 2, 42]),
    context=contexts,
    name=names,
    level=st.sampled_from(list(Level)),
    created=aware_times,
    expires=st.none(),
    author=nullable_strings,
    group=nullable_strings,
    data=st.lists(records, max_size=3).map(tuple),
)
malformed_events = st.builds(
    Event,
    id=st.integers() | st.text(max_size=3) | st.none(),
    context=st.none() | st.integers() | contexts,
    name=st.none() | st.integers() | names,
    level=st.sampled_from(list(Level)) | st.integers() | st.text(max_size=3) | st.none(),
    created=aware_times | st.none() | st.text(max_size=3) | st.datetimes(),
    expires=st.none(),
    author=nullable_strings | st.integers(),
    group=nullable_strings | st.floats(),
    data=st.lists(records | st.integers() | st.none() | st.text(max_size=3), max_size=3).map(tuple)
    | st.none(),
)

EXAMPLE = Event(
    id=1, context="devices.plc7", name="x", level=Level.INFO, created=datetime.now(UTC),
    expires=None, author=None, group=None, data=({"x": 1},),
)  # fmt: skip


# -- a tree-walking reference evaluator, written from docs/filters.md -----------------

_CMP = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
        ">=": operator.ge}  # fmt: skip


def read(operand: Operand, event: Event) -> Any:
    if operand.name != "data":
        return getattr(event, operand.name)
    value: Any = event.data
    for name in operand.path:
        if isinstance(value, (tuple, list)):
            value = value[0] if value else None
        value = value.get(name) if isinstance(value, dict) else None
    return value


def kind(value: Any) -> str | None:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if type(value) in (int, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, datetime):
        return "datetime"
    return None


def compare(value: Any, op: str, literal: Any, operand: Operand) -> bool:
    if operand.name == "level":
        return _CMP[op](int(value), int(literal))
    candidates = [literal]
    if operand.name == "data" and as_timestamp(literal) is not None:
        candidates.append(as_timestamp(literal))
    for candidate in candidates:
        if kind(value) == kind(candidate):
            if op in ("==", "!="):
                return _CMP[op](value, candidate)
            if value is None:
                return False
            try:
                return _CMP[op](value, candidate)
            except TypeError:
                return False
    return op == "!="


def reference(node: Node, event: Event) -> bool:
    if isinstance(node, And):
        return all(reference(item, event) for item in node.items)
    if isinstance(node, Or):
        return any(reference(item, event) for item in node.items)
    if isinstance(node, Not):
        return not reference(node.item, event)
    value = read(node.operand, event)
    if isinstance(node, Compare):
        return compare(value, node.op, node.value, node.operand)
    if isinstance(node, InList):
        found = any(compare(value, "==", item, node.operand) for item in node.values)
        return found is not node.negated
    assert isinstance(node, Match)
    if not isinstance(value, str):
        return False
    if node.kind == "mask":
        return compile_mask(node.pattern).matches(value)
    if node.kind == "glob":
        return fnmatch.fnmatchcase(value, node.pattern)
    return re.search(node.pattern, value) is not None


# -- properties of valid filters -----------------------------------------------------------


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(expressions, events)
def test_valid_expressions_parse_and_agree_with_the_reference_evaluator(text: str, target: Event) -> None:
    flt = parse_filter(text)
    result = flt.matches(target)
    assert type(result) is bool
    assert result == reference(flt.ast, target)
    # On well-formed events the closures themselves never raise: matches() hides no errors.
    assert compile_node(flt.ast)(target) is result


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(expressions, events)
def test_not_of_a_filter_matches_exactly_the_other_events(text: str, target: Event) -> None:
    assert parse_filter(f"not ({text})").matches(target) is not parse_filter(text).matches(target)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(expressions, malformed_events)
def test_matches_returns_a_bool_and_never_raises_on_any_event(text: str, target: Event) -> None:
    assert type(parse_filter(text).matches(target)) is bool


@given(expressions)
def test_equal_text_gives_equal_filters(text: str) -> None:
    assert parse_filter(text) == parse_filter("  " + text.replace(" ", "  ") + " ")
