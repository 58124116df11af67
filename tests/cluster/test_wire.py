"""The cluster's wire form and its duplicate filter, without a broker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from linkserver.core.events import IdGenerator, new_event, node_of
from linkserver.core.levels import Level
from linkserver.server.cluster_received import SeenIds
from linkserver.server.cluster_wire import decode_event, encode_event


def test_an_event_comes_out_as_it_went_in_datetimes_and_nested_tables_included() -> None:
    event_id, created = IdGenerator(node_id=7).next_created()
    data = ({"seq": 3, "at": datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC), "rows": ({"x": 1.5},)},)
    for expires in (created + timedelta(days=1), None):
        event = new_event(
            event_id, "plant.line1", "reading", Level.WARNING, created, expires, "op", "g", data, "AlertEvent"
        )
        again = decode_event(encode_event(event))
        assert again == event and node_of(again.id) == 7
        assert type(again.level) is Level and again.data[0]["at"] == data[0]["at"]


@pytest.mark.parametrize("body", [b"{}", b"[1, 2]", b"not json", b'[1,"a","b",99,0,null,null,null,null,[]]'])
def test_what_is_not_a_cluster_message_is_refused(body: bytes) -> None:
    with pytest.raises((ValueError, TypeError, IndexError)):
        decode_event(body)


def test_duplicates_are_dropped_within_the_window_and_memory_stays_bounded() -> None:
    seen = SeenIds(size=3)
    assert [seen.add(i) for i in (1, 2, 1, 3, 4)] == [True, True, False, True, True]
    assert seen.add(1)  # out of the window of the last three
    assert len(seen._ids) == 3
