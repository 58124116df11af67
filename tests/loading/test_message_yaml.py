"""``message``, ``instructions`` and value ``labels`` in context files: read, checked against the
format, refused with file:line:column."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime

import pytest

from linkserver.core.errors import ConfigError
from linkserver.core.events import Event
from linkserver.core.levels import Level
from linkserver.loading import load_contexts_text

GOOD = """
contexts:
  net:
    events:
      linkDown:
        level: WARNING
        message: "interface {data.ifIndex} is {data.status} on {context}"
        instructions: |
          Check the cable, then the switch port.
        format:
          fields:
            - {name: ifIndex, type: integer}
            - {name: status, type: integer, labels: {1: up, 2: down}}
            - {name: kind, type: string, labels: {e: ethernet, w: wifi}, default: e}
"""


def load(text: str):
    return load_contexts_text(textwrap.dedent(text), "c.yaml")


def test_message_instructions_and_labels_are_read() -> None:
    (spec,) = load(GOOD).contexts
    definition = spec.definitions["linkDown"]
    assert definition.instructions == "Check the cable, then the switch port.\n"
    assert definition.format.field("status").labels == ((1, "up"), (2, "down"))
    record = definition.format.build({"ifIndex": 3, "status": 2})
    created = datetime(2026, 1, 1, tzinfo=UTC)
    event = Event(1, "net", "linkDown", Level.WARNING, created, None, None, None, record, display=definition)
    assert event.message == "interface 3 is down on net"
    assert event.labels == [{"status": "down", "kind": "ethernet"}]
    assert event.marshal()["message"] == "interface 3 is down on net"
    assert Event.unmarshal(event.marshal()).message == event.message


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            ("{data.ifIndex}", "{data.ifIdx}"),
            "c.yaml:7:35: message of event 'linkDown': data.ifIdx is not a field of the event format; "
            "did you mean 'data.ifIndex'? (its fields: ifIndex, status, kind)",
        ),
        (
            ("is {data.status}", "is {data.status"),
            "c.yaml:7:47: '{' inside a placeholder; close the first one with '}'",
        ),
        (
            ("type: integer, labels: {1: up", "type: float, labels: {1: up"),
            "c.yaml:13:43: field 'status': labels apply to integer and string fields, not float fields",
        ),
        (
            ("labels: {e: ethernet", "labels: {1: ethernet"),
            "c.yaml:14:42: field 'kind': labelled value 1 is not a string; quote it: '1'",
        ),
        (
            ("labels: {1: up, 2: down}", "labels: [up, down]"),
            "c.yaml:13:53: 'labels' in field 'status' must map",
        ),
    ],
)
def test_bad_templates_and_labels_are_refused_at_their_place(change, problem) -> None:
    old, new = change
    assert old in GOOD
    with pytest.raises(ConfigError) as caught:
        load(GOOD.replace(old, new))
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(problem)


def test_a_template_in_a_block_scalar_is_reported_at_the_scalar() -> None:
    text = GOOD.replace(
        'message: "interface {data.ifIndex} is {data.status} on {context}"',
        "message: >\n          {data.nope}",
    )
    with pytest.raises(ConfigError) as caught:
        load(text)
    assert caught.value.problems[0].startswith(
        "c.yaml:7:18: message of event 'linkDown': data.nope is not a field"
    )
