"""The subscription state: resume ids, duplicates, gaps; and reconnect backoff."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from linkserver.client.errors import ProtocolError
from linkserver.client.stream import Backoff, SubscriptionState
from linkserver.core.errors import FilterError
from linkserver.core.events import first_id_at
from linkserver.typing import Gap


def event_json(event_id: int) -> dict[str, object]:
    return {
        "id": event_id,
        "context": "devices.a",
        "name": "x",
        "level": "INFO",
        "created": "2026-01-01T00:00:00+00:00",
        "expires": None,
        "author": None,
        "group": None,
        "data": [],
        "acknowledgements": [],
    }


def push(event_id: int) -> dict[str, object]:
    return {"type": "event", "subscription": "s1", "event": event_json(event_id)}


def batch(*event_ids: int) -> dict[str, object]:
    return {"type": "events", "subscription": "s1", "events": [event_json(i) for i in event_ids]}


def ids(items: list[object]) -> list[int]:
    return [item.id for item in items]  # type: ignore[attr-defined]


def test_first_subscribe_has_no_resume_and_names_criteria() -> None:
    state = SubscriptionState("devices.*", "error", filter="level >= ERROR", min_level="warning")
    assert state.subscribe_message(1) == {
        "type": "subscribe",
        "ref": 1,
        "mask": "devices.*",
        "event": "error",
        "filter": "level >= ERROR",
        "min_level": "WARNING",
        "batch": True,
    }
    assert "batch" not in SubscriptionState(batch=False).subscribe_message(1)


def test_resubscribe_resumes_from_the_highest_id_seen() -> None:
    state = SubscriptionState()
    state.confirm({"type": "subscribed", "ref": 1, "subscription": "s1"}, 1)
    for event_id in (10, 12, 11):
        state.receive(push(event_id))
    state.disconnected()
    assert state.subscription is None
    assert state.subscribe_message(2)["resume_from"] == 12


def test_resubscribe_before_any_event_resumes_from_the_confirmation_time() -> None:
    state = SubscriptionState()
    state.confirm({"type": "subscribed", "ref": 1, "subscription": "s1"}, 1)
    assert state.confirmed_at is not None
    assert state.subscribe_message(2)["resume_from"] == first_id_at(state.confirmed_at) - 1


def test_an_explicit_resume_from_goes_into_the_first_subscribe() -> None:
    assert SubscriptionState(resume_from=99).subscribe_message(1)["resume_from"] == 99


def test_events_seen_before_are_dropped_as_duplicates() -> None:
    state = SubscriptionState()
    assert ids(state.receive(push(5))) == [5]
    assert ids(state.receive(push(6))) == [6]
    assert state.receive(push(5)) == []
    assert (state.delivered, state.duplicates, state.last_id) == (2, 1, 6)


def test_duplicate_memory_is_bounded() -> None:
    state = SubscriptionState(remember=2)
    for event_id in (1, 2, 3):
        state.receive(push(event_id))
    assert ids(state.receive(push(1))) == [1]  # forgotten: delivered again
    assert state.receive(push(3)) == []


def test_gap_messages_become_gaps() -> None:
    state = SubscriptionState()
    [gap] = state.receive(
        {"type": "gap", "subscription": "s1", "last_delivered_id": 3, "last_dropped_id": 9, "dropped": 6}
    )
    assert gap == Gap(last_delivered_id=3, last_dropped_id=9, dropped=6)
    assert state.gaps == [gap]


def test_confirm_raises_the_servers_error_or_protocol_error() -> None:
    state = SubscriptionState()
    error = {"type": "error", "ref": 1, "error": {"type": "FilterError", "message": "column 3: bad"}}
    with pytest.raises(FilterError, match="column 3"):
        state.confirm(error, 1)
    with pytest.raises(ProtocolError):
        state.confirm({"type": "subscribed", "ref": 2, "subscription": "s"}, 1)
    with pytest.raises(ProtocolError):
        state.confirm({"type": "pong", "ref": 1}, 1)


def test_other_messages_are_ignored() -> None:
    assert SubscriptionState().receive({"type": "pong", "ref": 3}) == []


def test_a_batch_gives_its_events_in_order() -> None:
    state = SubscriptionState()
    assert ids(state.receive(batch(7, 8, 9))) == [7, 8, 9]
    assert (state.delivered, state.last_id) == (3, 9)


def test_duplicates_are_dropped_inside_and_across_batches() -> None:
    state = SubscriptionState()
    assert ids(state.receive(push(4))) == [4]
    assert ids(state.receive(batch(4, 5, 6))) == [5, 6]  # 4 came as a single event before
    assert ids(state.receive(batch(6, 7, 7, 8))) == [7, 8]
    assert (state.delivered, state.duplicates, state.last_id) == (5, 3, 8)


def test_a_resume_after_a_batch_starts_after_its_last_event() -> None:
    state = SubscriptionState()
    state.confirm({"type": "subscribed", "ref": 1, "subscription": "s1"}, 1)
    state.receive(batch(10, 11, 12))
    state.disconnected()
    assert state.subscribe_message(2)["resume_from"] == 12


def test_a_batch_without_a_list_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="'events'"):
        SubscriptionState().receive({"type": "events", "subscription": "s1", "events": None})


def test_backoff_grows_to_the_maximum_and_resets() -> None:
    backoff = Backoff(initial=0.1, maximum=0.5, factor=2, jitter=0, rng=random.Random(1))
    assert [round(backoff.next(), 3) for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    backoff.reset()
    assert backoff.next() == pytest.approx(0.1)


def test_backoff_jitter_stays_within_bounds() -> None:
    backoff = Backoff(initial=1, maximum=1, jitter=0.2, rng=random.Random(7))
    assert all(0.8 <= backoff.next() <= 1.2 for _ in range(100))
    with pytest.raises(ValueError):
        Backoff(initial=0)


def test_confirmation_time_is_utc() -> None:
    state = SubscriptionState()
    state.confirm({"type": "subscribed", "ref": 1, "subscription": 7}, 1)
    assert state.confirmed_at is not None and state.confirmed_at.tzinfo is not None
    assert state.confirmed_at <= datetime.now(UTC)


def test_decode_refuses_what_is_not_a_json_object() -> None:
    from linkserver.client.stream import decode

    assert decode('{"type": "pong"}') == {"type": "pong"}
    # The values json.loads gives: integers of any size stay int, bytes are read as UTF-8.
    big = 2**70 + 1
    assert decode(f'{{"n": {big}, "f": 1.5, "s": "é"}}'.encode()) == {"n": big, "f": 1.5, "s": "é"}
    assert type(decode('{"n": 3}')["n"]) is int
    with pytest.raises(ProtocolError, match="not JSON"):
        decode("<html>")
    with pytest.raises(ProtocolError, match="not an object"):
        decode("[1, 2]")


def test_importing_the_client_stays_light() -> None:
    import subprocess
    import sys

    heavy = "{'sqlalchemy', 'yaml', 'apscheduler', 'starlette'}"
    code = f"import sys, linkserver.client; print(sorted({{m.split('.')[0] for m in sys.modules}} & {heavy}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


def full_event_json(event_id: int) -> dict[str, object]:
    """An event with every field Event.marshal writes set, and how a server shows it."""
    return {
        **event_json(event_id),
        "level": "WARNING",
        "created": "2026-01-01T00:00:00.250000+00:00",
        "expires": "2026-01-11T00:00:00+01:00",
        "author": "alice",
        "group": "plant",
        "category": "AlertEvent",
        "data": [{"value": 2**70, "at": "2026-01-01T00:00:00", "nested": [{"x": None}]}, {"value": 1.5}],
        "acknowledgements": [{"time": "2026-01-02T03:04:05+00:00", "user": "bob", "text": "seen"}],
        "message": "hot: 2",
        "labels": [{"status": "down"}],
        "instructions": "call the plant",
    }


def as_text(message: dict[str, object]) -> str:
    import json

    return json.dumps(message)


def same_items(fast: list[object], general: list[object]) -> None:
    assert fast == general
    for a, b in zip(fast, general, strict=True):
        if isinstance(a, Gap):
            continue
        for name in ("message", "labels", "instructions", "acknowledgements", "created", "expires"):
            assert getattr(a, name) == getattr(b, name), name
        assert a.created.utcoffset() == b.created.utcoffset()  # type: ignore[attr-defined]
        assert a.level is b.level  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "message",
    [
        push(5),
        {"type": "event", "subscription": "s1", "event": full_event_json(5)},
        {"type": "events", "subscription": "s1", "events": [full_event_json(5), event_json(6)]},
    ],
    ids=["plain", "every-field", "batch"],
)
def test_receive_text_gives_what_receive_of_the_decoded_message_gives(message: dict[str, object]) -> None:
    same_items(SubscriptionState().receive_text(as_text(message)), SubscriptionState().receive(message))


@pytest.mark.parametrize(
    "changes",
    [
        {"level": "warning"},
        {"level": 3},
        {"level": "3"},
        {"created": "2026-01-01"},  # fromisoformat reads it; msgspec's datetime does not
        {"data": [["not", "a", "record"]]},
        {"id": "17"},
        {"acknowledgements": [{"time": "2026-01-02T03:04:05+00:00", "user": 7, "text": "x"}]},
    ],
)
def test_receive_text_takes_the_general_path_where_the_fast_one_is_stricter(
    changes: dict[str, object],
) -> None:
    message = {"type": "event", "subscription": "s1", "event": {**full_event_json(5), **changes}}
    same_items(SubscriptionState().receive_text(as_text(message)), SubscriptionState().receive(message))


def test_receive_text_of_other_messages_is_receive_of_them() -> None:
    gap = {"type": "gap", "subscription": "s1", "last_delivered_id": 3, "last_dropped_id": 9, "dropped": 6}
    assert SubscriptionState().receive_text(as_text(gap)) == [
        Gap(last_delivered_id=3, last_dropped_id=9, dropped=6)
    ]
    assert SubscriptionState().receive_text('{"type": "pong", "ref": 3}') == []
    with pytest.raises(ProtocolError, match="not JSON"):
        SubscriptionState().receive_text("<html>")
    with pytest.raises(ProtocolError, match="cannot read"):
        SubscriptionState().receive_text(as_text({"type": "event", "subscription": "s1", "event": {"id": 1}}))
    with pytest.raises(ProtocolError, match="'events'"):
        SubscriptionState().receive_text('{"type": "events", "subscription": "s1", "events": null}')
    error = {"type": "error", "error": {"type": "FilterError", "message": "column 3: bad"}}
    with pytest.raises(FilterError, match="column 3"):
        SubscriptionState().receive_text(as_text(error))


def test_receive_text_drops_duplicates_and_notes_nothing_of_a_batch_it_cannot_read() -> None:
    state = SubscriptionState()
    assert ids(state.receive_text(as_text(batch(4, 5, 5)))) == [4, 5]
    assert ids(state.receive_text(as_text(push(4)))) == []
    broken = {"type": "events", "subscription": "s1", "events": [event_json(6), {"id": 7}]}
    with pytest.raises(ProtocolError):
        state.receive_text(as_text(broken))
    assert (state.delivered, state.duplicates) == (3, 2)  # 6 counts, as receive() counts it
    assert SubscriptionState().receive(batch(6)) == SubscriptionState().receive_text(as_text(batch(6)))


def test_the_fast_path_reads_every_key_an_event_is_marshalled_with() -> None:
    from linkserver.client.stream import _WireEvent
    from linkserver.core.events import Event, Shown
    from linkserver.core.levels import Level

    event = Event(
        1, "devices.a", "x", Level.INFO, datetime.now(UTC), None, None, None, ({"a": 1},), (), "UsageEvent"
    ).shown_by(Shown(message="m", labels=[{"a": "one"}], instructions="i"))
    assert set(event.marshal()) | {"instructions"} <= set(_WireEvent.__struct_fields__)
