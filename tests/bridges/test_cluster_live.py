"""The cluster's outbound step by step: a persistent event sent live before its commit, its row
deleted once both the commit and the confirm came (either order, one publish), held for its
commit while not connected or owing something older, and a rejected one forgotten.

The outbound is driven by the test with a memory outbox and commits made by hand (as
tests/bridges/test_outbound_walk.py does), so each order of commit and confirm is set up exactly.
The whole path over RabbitMQ and PostgreSQL is tests/cluster/test_live.py's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from linkserver.core.events import Event, new_event
from linkserver.core.levels import Level
from linkserver.core.tree import ContextTree
from linkserver.history.outbox import MemoryOutbox
from linkserver.server.cluster_outbound import ClusterOutbound


class Recorder:
    """A bridge that keeps what it was given."""

    def __init__(self) -> None:
        self.published: list[int] = []
        self.notices: list[tuple[list[int], list[int]]] = []
        self.sent_live: dict[int, bool] = {}  # as the cluster's publisher encodes them: live or not
        self.out: ClusterOutbound | None = None

    def publish(self, events: Sequence[Event]) -> None:
        self.published.extend(event.id for event in events)
        if self.out is not None:
            self.sent_live.update((event.id, self.out.sent_live(event.id)) for event in events)

    def notice(self, committed: Sequence[int], rejected: Sequence[int]) -> None:
        self.notices.append((list(committed), list(rejected)))


EVENTS: dict[int, Event] = {}


def event(event_id: int) -> Event:
    if event_id not in EVENTS:
        now = datetime.now(UTC)
        EVENTS[event_id] = new_event(
            event_id, "devices.pump7", "measurement", Level.INFO, now, now + timedelta(days=1), None, None, []
        )
    return EVENTS[event_id]


def outbound() -> tuple[ClusterOutbound, MemoryOutbox, Recorder]:
    bridge = Recorder()
    engine: Any = SimpleNamespace(tree=ContextTree())
    out = ClusterOutbound("~cluster", bridge, engine, None, node=0, buffer=100, window=100)  # type: ignore[arg-type]
    out.outbox = outbox = MemoryOutbox("~cluster", 0)
    bridge.out = out
    out._accepting = True
    out.ready(True, "test")
    return out, outbox, bridge


def commit(out: ClusterOutbound, outbox: MemoryOutbox, *ids: int) -> None:
    """What the writer does: the rows with the events, then the hook's callback."""
    events = [event(i) for i in ids]
    outbox._committed(events)
    out._committed(events)


def test_a_live_event_is_published_once_and_its_row_goes_after_both_commit_and_confirm() -> None:
    out, outbox, bridge = outbound()
    out.take(event(1))
    assert bridge.published == [1]  # at fire time, before the commit
    out.confirmed([1])  # RabbitMQ first
    commit(out, outbox, 1)
    out.take(event(2))
    commit(out, outbox, 2)  # the commit first
    out.confirmed([2])
    out._flush_deletes(force=True)
    assert outbox.depth == 0 and not out._live and not out._owned
    assert bridge.published == [1, 2]  # no second publish of either


def test_while_not_connected_events_are_held_for_their_commit_and_live_resumes_after_the_backlog() -> None:
    out, outbox, bridge = outbound()
    out.ready(False, "lost")
    out.take(event(1))
    out.ready(True, "back")
    out.take(event(2))  # something older is owed: held too, never ahead of it
    out._send_direct()
    assert bridge.published == []
    commit(out, outbox, 1)
    assert bridge.published == [1]
    commit(out, outbox, 2)
    assert bridge.published == [1, 2]
    out.confirmed([1, 2])
    out.take(event(3))  # nothing owed any more: live again
    assert bridge.published == [1, 2, 3]


def test_a_rejected_event_is_forgotten_held_or_live() -> None:
    out, outbox, bridge = outbound()
    out.take(event(1))  # live
    out.confirmed([1])
    out._rejected([event(1)])
    assert not out._live and 1 not in out._owned
    out.ready(False, "lost")
    out.take(event(2))
    out.take(event(3))
    out.ready(True, "back")
    out._rejected([event(2)])  # held, never to be stored: it no longer holds 3 up
    commit(out, outbox, 3)
    assert bridge.published == [1, 3]


def test_the_commit_of_events_sent_live_is_told_in_a_notice_and_a_copy_sent_after_it_says_stored() -> None:
    out, outbox, bridge = outbound()
    out.take(event(1))
    out.take(event(2))
    out.confirmed([1])  # 1 confirmed, 2 in flight: both went out live
    commit(out, outbox, 1, 2)
    assert bridge.sent_live == {1: True, 2: True}
    assert bridge.notices == [([1, 2], [])]
    out.ready(False, "lost")
    out.take(event(3))  # held for its commit: sent after it, a stored copy, no notice needed
    out.ready(True, "back")
    commit(out, outbox, 3)
    assert bridge.published == [1, 2, 3] and bridge.sent_live[3] is False
    assert bridge.notices == [([1, 2], [])]


def test_a_live_event_the_writer_gives_up_on_is_told_in_a_notice_and_not_sent_again() -> None:
    out, outbox, bridge = outbound()
    out.take(event(1))  # live, in flight
    out.failed([1], "connection lost")  # to be sent again ...
    out._rejected([event(1)])  # ... but it will never be stored: not sent again
    out._send_direct()
    assert bridge.published == [1]
    assert bridge.notices == [([], [1])]
    assert not out._live and not out._resend and 1 not in out._owned
