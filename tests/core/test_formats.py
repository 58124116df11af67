from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkserver.core.errors import DataTableError, InvalidDefinition, LinkServerError
from linkserver.core.formats import EMPTY_FORMAT, Field, TableFormat

UTC = UTC

READING = TableFormat(
    fields=[
        Field(name="quantity", type="string", allowed=["temperature", "pressure"]),
        Field(name="value", type="float", min=-50, max=150),
        Field(name="unit", type="string", default="degC", pattern="[a-zA-Z]+"),
        Field(name="note", type="string", nullable=True, max=10),
    ]
)


def test_defaults_are_merged_and_posted_values_win():
    assert READING.build({"quantity": "pressure", "value": 2}) == (
        {"quantity": "pressure", "value": 2.0, "unit": "degC", "note": None},
    )
    assert READING.build({"quantity": "pressure", "value": 2, "unit": "bar"})[0]["unit"] == "bar"


def test_int_is_coerced_to_float_but_nothing_else_is():
    record = READING.build({"quantity": "pressure", "value": 3})[0]
    assert type(record["value"]) is float
    with pytest.raises(DataTableError, match="value: expected a number, got a string"):
        READING.build({"quantity": "pressure", "value": "3"})


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_floats_must_be_finite_even_without_limits(value):
    unlimited = TableFormat(fields=[Field(name="value", type="float")])
    with pytest.raises(DataTableError, match=r"value: .* is not a valid value \(a finite number is needed\)"):
        unlimited.build({"value": value})


def test_every_bad_field_is_named_in_one_error():
    with pytest.raises(DataTableError) as info:
        READING.build(
            {"quantity": "humidity", "value": 200, "unit": "d-g", "note": "x" * 11, "extra": 1},
            where="measurement in devices.plc7",
        )
    assert info.value.fields == ["quantity", "value", "unit", "note", "extra"]
    message = str(info.value)
    assert message.startswith("invalid data for measurement in devices.plc7: ")
    assert "not one of the allowed values: 'temperature', 'pressure'" in message
    assert "above the maximum 150" in message
    assert "unknown field (known fields: quantity, value, unit, note)" in message


def test_missing_required_and_null_non_nullable_are_errors():
    with pytest.raises(DataTableError) as info:
        READING.build({"value": None})
    assert [str(p) for p in info.value.problems] == [
        "quantity: is required and has no default",
        "value: may not be null",
    ]


def test_unknown_fields_are_found_even_when_a_nullable_field_is_missing():
    with pytest.raises(DataTableError, match="zz: unknown field"):
        READING.build({"quantity": "pressure", "value": 1, "unit": "bar", "zz": 1})


def test_booleans_are_not_numbers():
    fmt = TableFormat(fields=[Field(name="n", type="integer"), Field(name="b", type="boolean")])
    with pytest.raises(DataTableError, match="n: expected an integer, got a boolean"):
        fmt.build({"n": True, "b": True})
    with pytest.raises(DataTableError, match="b: expected true or false"):
        fmt.build({"n": 1, "b": 1})


def test_datetimes_must_be_aware_and_are_converted_to_utc():
    fmt = TableFormat(fields=[Field(name="at", type="datetime")])
    record = fmt.build({"at": "2026-01-02T03:04:05+02:00"})[0]
    assert record["at"] == datetime(2026, 1, 2, 1, 4, 5, tzinfo=UTC)
    assert record["at"].tzinfo is UTC
    with pytest.raises(DataTableError, match="has no timezone"):
        fmt.build({"at": "2026-01-02T03:04:05"})
    with pytest.raises(DataTableError, match="not an ISO-8601"):
        fmt.build({"at": "yesterday"})


def test_multi_record_formats_check_counts_and_name_records():
    fmt = TableFormat(fields=[Field(name="x", type="integer")], min_records=1, max_records=3)
    assert fmt.build([{"x": 1}, {"x": 2}]) == ({"x": 1}, {"x": 2})
    with pytest.raises(DataTableError, match=r"\[1\]\.x: expected an integer"):
        fmt.build([{"x": 1}, {"x": "2"}])
    with pytest.raises(DataTableError, match="4 records, at most 3 allowed"):
        fmt.build([{"x": 1}] * 4)
    with pytest.raises(DataTableError, match="0 records, at least 1 required"):
        fmt.build([])
    with pytest.raises(DataTableError, match="post a list of mappings"):
        fmt.build({"x": 1})


def test_nested_tables_are_validated_with_their_path():
    inner = TableFormat(fields=[Field(name="name", type="string")], min_records=0, max_records=None)
    fmt = TableFormat(fields=[Field(name="rows", type="table", format=inner)])
    assert fmt.build({"rows": [{"name": "a"}]}) == ({"rows": ({"name": "a"},)},)
    with pytest.raises(DataTableError, match=r"rows\[0\]\.name: expected a string"):
        fmt.build({"rows": [{"name": 1}]})


def test_single_record_accepts_nothing_when_everything_has_defaults():
    fmt = TableFormat(fields=[Field(name="a", type="integer", default=1)])
    assert fmt.build(None) == ({"a": 1},)
    assert EMPTY_FORMAT.build(None) == ()


def test_mutable_defaults_are_copied_per_event():
    inner = TableFormat(fields=[Field(name="v", type="integer")], min_records=0, max_records=None)
    fmt = TableFormat(fields=[Field(name="rows", type="table", format=inner, default=[])])
    first = fmt.build({})[0]["rows"]
    assert first == ()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "bad-name", "type": "string"}, "invalid field name"),
        ({"name": "a", "type": "text"}, "unknown field type 'text'"),
        ({"name": "a", "type": "integer", "min": 5, "max": 1}, "min 5 is greater than max 1"),
        ({"name": "a", "type": "boolean", "min": 1}, "min applies to numbers and strings"),
        ({"name": "a", "type": "integer", "pattern": "x"}, "pattern applies to strings only"),
        ({"name": "a", "type": "string", "pattern": "("}, "not a valid regex"),
        ({"name": "a", "type": "table"}, "needs a nested format"),
        ({"name": "a", "type": "integer", "default": "x"}, "default 'x' is invalid"),
        ({"name": "a", "type": "integer", "default": None}, "default is null but the field is not nullable"),
        ({"name": "a", "type": "integer", "allowed": [1, "2"]}, "allowed value '2' is invalid"),
        ({"name": "a", "type": "integer", "allowed": [1, 20], "max": 10}, "allowed value 20 is invalid"),
        ({"name": "a", "type": "integer", "max": 10**400}, "must be a finite number"),
        ({"name": "a", "type": "float", "min": float("inf")}, "must be a finite number"),
        ({"name": "a", "type": "string", "allowed": [["x"]]}, "must be a plain value"),
    ],
)
def test_inconsistent_fields_are_rejected_at_construction(kwargs, message):
    with pytest.raises(InvalidDefinition, match=message):
        Field(**kwargs)


def test_inconsistent_formats_are_rejected():
    with pytest.raises(InvalidDefinition, match="defined twice"):
        TableFormat(fields=[Field(name="a", type="string"), Field(name="a", type="integer")])
    with pytest.raises(InvalidDefinition, match="less than min_records"):
        TableFormat(fields=[], min_records=3, max_records=2)


values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
    st.datetimes(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@given(
    st.one_of(
        values,
        st.dictionaries(st.sampled_from(["quantity", "value", "unit", "note", "zz"]), values),
        st.lists(st.dictionaries(st.sampled_from(["quantity", "value"]), values), max_size=3),
    )
)
def test_building_either_succeeds_or_raises_our_error(data):
    try:
        records = READING.build(data)
    except LinkServerError:
        return
    assert len(records) == 1
    assert set(records[0]) == {"quantity", "value", "unit", "note"}
