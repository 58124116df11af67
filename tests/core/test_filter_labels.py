from datetime import UTC, datetime

import pytest

from linkserver.core.errors import FilterError
from linkserver.core.events import Event
from linkserver.core.filters import parse_filter
from linkserver.core.filters.labels import bind_filter, resolve_labels
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
    bound = bind_filter(parse_filter(text), [_definition(f) for f in formats], "'*' under '**'")
    return bound.matches(event(**record))


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


def test_bind_filter_refuses_a_word_that_is_none_of_the_labels_and_keeps_a_filter_without_labels():
    with pytest.raises(
        FilterError, match=r"cannot be compared with the string 'dwon' \(its labels: down, up\)"
    ):
        bind_filter(parse_filter('data.status == "dwon"'), [_definition(LINK)], "'link' under 'net'")
    plain = parse_filter("data.ifIndex == 3")
    assert bind_filter(plain, [_definition(LINK)], "'link' under 'net'") is plain
    once = bind_filter(parse_filter('data.status == "down"'), [_definition(LINK)], "'link' under 'net'")
    assert (
        bind_filter(once, [_definition(LINK)], "'link' under 'net'") is once
    )  # binding twice changes nothing


def test_a_state_machines_guards_are_bound_to_the_definitions_of_the_set_that_carries_it():
    from linkserver.core.catalog import DefinitionSet
    from linkserver.core.statemachines import StateMachine, Transition

    guard = 'data.status == "down"'
    machine = StateMachine(
        name="port",
        states=["up", "down"],
        initial="up",
        transitions=[
            Transition(source="up", target="down", event="link", guard=parse_filter(guard), guard_text=guard)
        ],
    )
    assert machine.for_event("up", event(status=2)) is None  # unbound: "down" is not 2
    carried = DefinitionSet([_definition(LINK)], state_machine=machine).state_machine
    assert carried is not None and carried.for_event("up", event(status=2)) is not None
    assert carried.bound_to({"link": _definition(LINK)}) is carried
    assert (
        DefinitionSet([_definition(PLAIN)], state_machine=machine).state_machine is machine
    )  # no labels there
    wrong = parse_filter('data.status == "dwon"')
    wrong_way = Transition(source="up", target="down", event="link", guard=wrong)
    odd = StateMachine(name="port", states=["up", "down"], initial="up", transitions=[wrong_way])
    ((index, message),) = odd.guard_problems({"link": _definition(LINK)})
    assert index == 0 and "the string 'dwon' (its labels: down, up)" in message
