"""key=value command-line data typed by the definition's fields."""

from __future__ import annotations

import pytest

from linkserver.client.values import UsageError, parse_assignments, parse_value

FIELDS = [
    {"name": "value", "type": "float"},
    {"name": "count", "type": "integer"},
    {"name": "ok", "type": "boolean"},
    {"name": "at", "type": "datetime", "nullable": True},
    {"name": "unit", "type": "string"},
    {"name": "rows", "type": "table"},
]


def test_values_take_the_type_of_their_field() -> None:
    record = parse_assignments(
        ["value=3.5", "count=7", "ok=true", "at=2026-01-01T00:00:00Z", "unit=3", 'rows=[{"a": 1}]'], FIELDS
    )
    assert record == {
        "value": 3.5,
        "count": 7,
        "ok": True,
        "at": "2026-01-01T00:00:00+00:00",
        "unit": "3",
        "rows": [{"a": 1}],
    }


@pytest.mark.parametrize("text", ["no", "0", "off", "FALSE"])
def test_booleans_accept_the_usual_spellings(text: str) -> None:
    assert parse_value(text, {"name": "ok", "type": "boolean"}) is False


def test_null_is_none_for_nullable_fields_only() -> None:
    assert parse_assignments(["at=null"], FIELDS) == {"at": None}
    assert parse_assignments(["unit=null"], FIELDS) == {"unit": "null"}


def test_naive_times_are_taken_as_utc() -> None:
    assert parse_value("2026-01-01T12:00", FIELDS[3]) == "2026-01-01T12:00:00+00:00"


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("value=warm", "value='warm' is not a number"),
        ("count=1.5", "count='1.5' is not a whole number"),
        ("ok=maybe", "ok='maybe' is not a boolean"),
        ("at=yesterday", "at='yesterday' is not an ISO-8601 time"),
        ("rows={}", "rows='{}' is not a JSON list"),
        ("value", "expected key=value"),
        ("=3", "expected key=value"),
    ],
)
def test_bad_values_name_the_field(item: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_assignments([item], FIELDS)


def test_repeated_keys_are_refused() -> None:
    with pytest.raises(UsageError, match="given twice"):
        parse_assignments(["count=1", "count=2"], FIELDS)


def test_unknown_fields_are_guessed_and_left_to_the_server() -> None:
    assert parse_assignments(["extra=1", "word=hello", "flag=true"], FIELDS) == {
        "extra": 1,
        "word": "hello",
        "flag": True,
    }


@pytest.mark.parametrize("text", ["1e400", "nan", "inf", "-Infinity", "NaN"])
def test_numbers_that_json_cannot_carry_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="not a finite number"):
        parse_value(text, {"name": "value", "type": "float"}, "value")
    if text not in ("nan", "inf"):  # untyped: JSON's spellings; 'nan' is just text there
        with pytest.raises(UsageError, match="not a finite number"):
            parse_value(text, None, "value")


def test_values_that_are_not_text_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="not text"):
        parse_value("caf\udce9", {"name": "unit", "type": "string"}, "unit")
    with pytest.raises(UsageError, match="not text"):
        parse_assignments(["un\udce9t=x"], [])


def test_the_client_refuses_to_send_what_json_cannot_carry() -> None:
    from linkserver.client import Client
    from linkserver.core.errors import BadRequest

    with Client("http://127.0.0.1:9", token="t") as client:  # refused before any connection
        with pytest.raises(BadRequest, match="NaN and infinite numbers"):
            client.fire("devices.x", "measurement", {"value": float("nan")})
        with pytest.raises(BadRequest, match="lone surrogate"):
            client.fire("devices.x", "measurement", {"unit": "\ud800"})


CODED = {
    "name": "cause",
    "type": "integer",
    "nullable": True,
    "labels": [{"value": n, "label": f"code{n}"} for n in range(1, 16)],
}


def test_a_label_is_its_stored_value_and_a_number_stays_a_number() -> None:
    assert parse_assignments(["cause=code3"], [CODED]) == {"cause": 3}
    assert parse_value("15", CODED) == 15 and parse_value("99", CODED) == 99  # unlabelled codes too
    assert parse_value("null", CODED) is None


def test_a_word_that_is_no_label_lists_the_first_labels_and_the_closest() -> None:
    with pytest.raises(UsageError) as caught:
        parse_value("cod3", CODED)
    assert str(caught.value) == (
        "cause='cod3' is not a whole number or a label: "
        + ", ".join(f"{n} (code{n})" for n in range(1, 13))
        + ", ... (3 more); did you mean 'code3'?"
    )


def test_a_string_field_takes_labels_first_then_its_allowed_values() -> None:
    field = {
        "name": "state",
        "type": "string",
        "allowed": ["u", "d"],
        "labels": [{"value": "u", "label": "up"}, {"value": "d", "label": "down"}],
    }
    assert [parse_value(text, field) for text in ("up", "d")] == ["u", "d"]
    with pytest.raises(
        UsageError, match=r"^state='x' is not one of the allowed values or a label: u \(up\), d"
    ):
        parse_value("x", field)
    assert parse_value("x", {"name": "free", "type": "string", "labels": field["labels"]}) == "x"
    plain = {"name": "plain", "type": "string", "allowed": ["u"]}
    assert parse_value("x", plain) == "x"  # no labels: the allowed values are the server's to check
