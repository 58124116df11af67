"""The fast builders agree with TableFormat.build wherever they answer, and leave the rest to it."""

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkserver.core.builders import fast_builder
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
