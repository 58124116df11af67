"""CloudEvents 1.0 structured JSON: what bridges publish and what they accept."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from linkserver.core.cloudevents import PoisonMessage, Posted, decode_posted, encode, to_cloudevent
from linkserver.core.events import Event
from linkserver.core.levels import Level

CREATED = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)


def event(context: str = "devices.pump7", **changes: object) -> Event:
    values: dict[str, object] = dict(
        id=915797400243666944,
        context=context,
        name="overheated",
        level=Level.WARNING,
        created=CREATED,
        expires=CREATED + timedelta(days=1),
        author="sim",
        group=None,
        data=({"temperature": 97.5, "at": CREATED},),
    )
    values.update(changes)
    return Event(**values)  # type: ignore[arg-type]


def test_an_event_becomes_a_structured_cloudevent_with_linkserver_extensions() -> None:
    document = json.loads(encode(event(), "node1", category="AlertEvent"))
    assert document == {
        "specversion": "1.0",
        "id": "915797400243666944",
        "source": "node1",
        "type": "linkserver.overheated",
        "subject": "devices.pump7",
        "time": "2026-12-02T03:00:00Z",
        "datacontenttype": "application/json",
        "linkserverlevel": "WARNING",
        "linkservercontext": "devices.pump7",
        "linkserverauthor": "sim",
        "linkservercategory": "AlertEvent",
        "data": [{"temperature": 97.5, "at": "2026-12-02T03:00:00Z"}],
    }
    assert {**to_cloudevent(event(), "node1", category="AlertEvent"), "time": "", "data": ""} == {
        **document,
        "time": "",
        "data": "",
    }


def test_a_root_event_has_root_as_subject_and_the_empty_path_as_context() -> None:
    document = to_cloudevent(event(context=""), "node1")
    assert (document["subject"], document["linkservercontext"]) == ("root", "")


def test_a_published_cloudevent_decodes_back_to_what_was_fired() -> None:
    posted = decode_posted(encode(event(), "node1"))
    assert posted == Posted(
        context="devices.pump7",
        event="overheated",
        data=[{"temperature": 97.5, "at": "2026-12-02T03:00:00Z"}],
        level="WARNING",
        id="915797400243666944",
    )


def test_the_fire_form_of_the_network_api_is_accepted() -> None:
    body = b'{"context": "devices.p1", "event": "error", "data": {"code": "E1"}, "level": 4}'
    assert decode_posted(body) == Posted(context="devices.p1", event="error", data={"code": "E1"}, level=4)


@pytest.mark.parametrize(
    ("body", "kind", "words"),
    [
        (b"\xff\xfe", "invalid_json", "not JSON"),
        (b"[1, 2]", "invalid_shape", "JSON object"),
        (b'{"context": "a"}', "invalid_shape", "'context' and 'event'"),
        (b'{"context": "a", "event": "b", "colour": 1}', "invalid_shape", "'colour'"),
        (b'{"specversion": "0.3", "id": "1", "source": "s", "type": "t"}', "invalid_shape", "specversion"),
        (b'{"specversion": "1.0", "id": "1", "type": "t"}', "invalid_shape", "source"),
        (b'{"specversion": "1.0", "id": "1", "source": "s", "type": "t"}', "invalid_shape", "no context"),
        (b'{"context": "a", "event": "b", "level": [1]}', "invalid_shape", "level"),
        (b"{}" + b" " * 200, "oversize", "over the limit of 80"),
    ],
)
def test_what_cannot_be_an_event_is_a_poison_message_naming_the_problem(
    body: bytes, kind: str, words: str
) -> None:
    with pytest.raises(PoisonMessage, match=words) as caught:
        decode_posted(body, max_size=80)
    assert caught.value.kind == kind


def test_the_message_of_the_event_travels_as_an_extension() -> None:
    from linkserver.core.definitions import EventDefinition
    from linkserver.core.formats import Field, TableFormat

    definition = EventDefinition(
        name="overheated",
        message="{context} is at {data.temperature:.0f} degrees",
        format=TableFormat(
            fields=[Field(name="temperature", type="float"), Field(name="at", type="datetime")]
        ),
    )
    shown = event(display=definition)
    assert json.loads(encode(shown, "node1"))["linkservermessage"] == "devices.pump7 is at 98 degrees"
    assert to_cloudevent(shown, "node1")["linkservermessage"] == "devices.pump7 is at 98 degrees"
    assert "linkservermessage" not in json.loads(encode(event(), "node1"))
