from datetime import UTC, datetime

import pytest

from linkserver.core.errors import FilterError
from linkserver.core.events import Event
from linkserver.core.filters import parse_filter
from linkserver.core.filters.labels import resolve_labels
from linkserver.core.formats import Field, TableFormat
from linkserver.core.levels import Level

LINK = TableFormat(
    fields=[
        Field(name="ifIndex", type="integer"),
        Field(name="status", type="integer", labels={1: "up", 2: "down"}),
        Field(name="kind", type="string", labels={"e": "ethernet", "w": "wifi"}),
    ]
)
PLAIN = TableFormat(fields=[Field(name="status", type="string"), Field(name="kind", type="string")])


def event(**record):
    return Event(1, "net", "link", Level.INFO, datetime(2026, 1, 1, tzinfo=UTC), None, None, None, (record,))


def matches(text, record, formats=(LINK,)):
    compiled = parse_filter(text)
    compiled.check_any([_definition(f) for f in formats], "'*' under '**'")
    return resolve_labels(compiled, formats).matches(event(**record))


def _definition(fmt):
    from linkserver.core.definitions import EventDefinition

    return EventDefinition(name="link", format=fmt)


@pytest.mark.parametrize(
    ("text", "record", "expected"),
    [
        ('data.status == "down"', {"status": 2}, True),
        ('data.status == "down"', {"status": 1}, False),
        ("data.status == 2", {"status": 2}, True),
        ('data.status != "down"', {"status": 1}, True),
        ('data.status != "down"', {"status": 2}, False),
        ('data.status in ["up", "down"]', {"status": 1}, True),
        ('data.status not in ["down"]', {"status": 2}, False),
        ('data.status > "up"', {"status": 2}, True),
        ('data.kind == "wifi"', {"kind": "w"}, True),
        ('data.kind == "e"', {"kind": "e"}, True),
        ('not data.kind == "wifi" and data.status == "up"', {"kind": "e", "status": 1}, True),
    ],
)
def test_a_filter_matches_a_coded_field_by_its_value_or_its_label(text, record, expected):
    assert matches(text, record) is expected


def test_where_the_field_is_plain_text_elsewhere_the_literal_still_matches_as_text():
    assert matches('data.status == "down"', {"status": "down"}, (LINK, PLAIN))
    assert matches('data.status == "down"', {"status": 2}, (LINK, PLAIN))


def test_a_filter_without_labels_is_left_as_it_is():
    compiled = parse_filter('data.ifIndex == 3 and name == "down"')
    assert resolve_labels(compiled, (LINK,)) is compiled


def test_an_unknown_label_is_a_type_error_naming_the_labels():
    with pytest.raises(
        FilterError, match=r"cannot be compared with the string 'dwn' \(its labels: down, up\)"
    ):
        parse_filter('data.status == "dwn"').check(LINK)
