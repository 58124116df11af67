"""The fast builders agree with TableFormat.build wherever they answer, and leave the rest to it."""

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkserver.core.builders import MATCHES_KEPT, fast_builder
from linkserver.core.errors import DataTableError
from linkserver.core.formats import Field, TableFormat

READING = TableFormat(
    fields=[
        Field(name="quantity", type="string", allowed=["temperature", "pressure"]),
        Field(name="value", type="float", min=-50, max=150),
        Field(name="unit", type="string", default="degC", pattern="[a-zA-Z]+"),
        Field(name="note", type="string", nullable=True, max=10),
        Field(name="count", type="integer", default=1, min=0),
        Field(name="ok", type="boolean", default=True),
        Field(name="scale", type="float", default=1),
    ]
)
SERIES = TableFormat(fields=[Field(name="value", type="float")], min_records=1, max_records=None)
PAIR = TableFormat(fields=[Field(name="value", type="integer")], min_records=2, max_records=3)

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-100, 200),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["temperature", "pressure", "degC", "x y", "", "a" * 12]),
)
records = st.dictionaries(
    st.sampled_from(["quantity", "value", "unit", "note", "count", "ok", "scale", "other"]), values
)


def outcome(format: TableFormat, data: object) -> object:
    try:
        return format.build(data)
    except DataTableError as exc:
        return exc


@pytest.mark.parametrize("format", [READING, SERIES, PAIR])
@given(data=st.one_of(records, st.lists(records, max_size=4), values))
def test_a_fast_builder_answers_only_what_build_answers(format, data):
    fast = fast_builder(format)
    assert fast is not None
    found = fast(data)
    if found is not None:
        assert found == format.build(data)
        assert [list(record) for record in found] == [list(record) for record in format.build(data)]


# One builder for every example: what it remembers of earlier events must not change its answers.
TAGGED = TableFormat(
    fields=[Field(name="tag", type="string", pattern="[a-z]+[0-9]?"), Field(name="value", type="float")],
    min_records=1,
    max_records=None,
)
SHARED = {format: fast_builder(format) for format in (READING, SERIES, PAIR, TAGGED)}
tags = st.one_of(
    st.sampled_from(["abc", "abc1", "abc12", "ab c", "abc\n", "x", "1", ""]), st.text(max_size=5)
)
tagged = st.lists(st.fixed_dictionaries({"tag": tags, "value": st.just(1.0)}), min_size=1, max_size=3)


@pytest.mark.parametrize("format", [READING, SERIES, PAIR, TAGGED])
@given(data=st.one_of(records, st.lists(records, max_size=4), values, tagged))
def test_one_builder_reused_for_many_events_answers_only_what_build_answers(format, data):
    found = SHARED[format](data)
    if found is not None:
        assert found == outcome(format, data)  # a DataTableError there: the builder must say None


def test_a_string_seen_to_match_does_not_let_a_different_one_through():
    fast = fast_builder(TAGGED)
    assert fast is not None
    assert fast([{"tag": "abc", "value": 1.0}]) == ({"tag": "abc", "value": 1.0},)
    assert fast([{"tag": "abc", "value": 1.0}]) == ({"tag": "abc", "value": 1.0},)  # remembered
    for near in ["abc\n", "abc12", "ab c", "abc ", "ABC", ""]:
        assert fast([{"tag": near, "value": 1.0}]) is None
        assert fast({"tag": near, "value": 1.0}) is None
    assert fast([{"tag": "abc", "value": 1.0}, {"tag": "ab c", "value": 1.0}]) is None


def test_a_pattern_field_remembers_at_most_MATCHES_KEPT_strings_and_checks_the_others_each_time():
    fast = fast_builder(TAGGED)
    assert fast is not None
    words = [
        f"w{n:04d}".translate(str.maketrans("0123456789", "abcdefghij")) for n in range(MATCHES_KEPT + 50)
    ]
    for word in words + words:
        assert fast([{"tag": word, "value": 1.0}]) == ({"tag": word, "value": 1.0},)
    kept = fast.__globals__["seen0"]  # the generated builder's own set of matched strings
    assert len(kept) == MATCHES_KEPT and kept <= set(words)
    assert fast([{"tag": "w0 1", "value": 1.0}]) is None

    fresh = fast_builder(TAGGED)
    assert fresh is not None
    long = "a" * 200  # matches, but is not kept: the set holds short strings only
    assert fresh([{"tag": long, "value": 1.0}]) == ({"tag": long, "value": 1.0},)
    assert fresh([{"tag": "abc", "value": 1.0}]) == ({"tag": "abc", "value": 1.0},)
    assert fresh.__globals__["seen0"] == {"abc"}


def test_well_formed_data_takes_the_fast_path_and_gets_the_defaults():
    fast = fast_builder(READING)
    assert fast({"quantity": "pressure", "value": 2.0}) == (
        {
            "quantity": "pressure",
            "value": 2.0,
            "unit": "degC",
            "note": None,
            "count": 1,
            "ok": True,
            "scale": 1.0,
        },
    )
    assert type(fast({"quantity": "pressure", "value": 2.0})[0]["scale"]) is float  # the default, checked
    assert fast_builder(SERIES)([{"value": 1.5}, {"value": 2.5}]) == ({"value": 1.5}, {"value": 2.5})


@pytest.mark.parametrize(
    "data",
    [
        {"quantity": "pressure", "value": 2},  # an int for a float: build coerces
        {"quantity": "pressure", "value": 2.0, "other": 1},  # unknown field
        {"quantity": "wind", "value": 2.0},  # not allowed
        {"quantity": "pressure", "value": 151.0},  # above max
        {"quantity": "pressure", "value": float("inf")},
        {"quantity": "pressure", "value": 2.0, "unit": "deg C"},  # pattern
        {"quantity": "pressure", "value": 2.0, "count": True},  # a bool is no integer
        {"value": 2.0},  # required missing
        [{"quantity": "pressure", "value": 2.0}],  # a list for a single-record format
        None,
    ],
)
def test_anything_else_is_left_to_build(data):
    assert fast_builder(READING)(data) is None


def test_formats_with_nested_tables_datetimes_or_mutable_defaults_get_no_fast_builder():
    nested = TableFormat(fields=[Field(name="t", type="table", format=TableFormat(fields=[]))])
    moment = TableFormat(fields=[Field(name="at", type="datetime", default=datetime(2024, 1, 1, tzinfo=UTC))])
    assert fast_builder(nested) is None and fast_builder(moment) is None
    assert fast_builder(TableFormat(fields=[])) is not None
