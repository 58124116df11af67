"""The outbound's walk of its outbox table, step by step: what it reads ahead, where its final
walk starts, and that an event committed under ids already read is still published.

The publisher thread's steps (``_take``, ``_walk_page``) are driven by the test, with a memory
outbox and commits made by hand, so each race is set up exactly.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from linkserver.core.events import Event, new_event
from linkserver.core.levels import Level
from linkserver.core.tree import ContextTree
from linkserver.history.outbox import MemoryOutbox
from linkserver.server.outbound import DELETE_IDLE, Outbound, Selection


class Recorder:
    """A bridge that keeps what it was given."""

    def __init__(self) -> None:
        self.published: list[int] = []

    def publish(self, events: Sequence[Event]) -> None:
        self.published.extend(event.id for event in events)


def event(event_id: int) -> Event:
    now = datetime.now(UTC)
    return new_event(
        event_id, "devices.pump7", "measurement", Level.INFO, now, now + timedelta(days=1), None, None, []
    )


def outbound(*, buffer: int, window: int) -> tuple[Outbound, MemoryOutbox, Recorder]:
    tree = ContextTree()
    bridge = Recorder()
    engine: Any = SimpleNamespace(tree=tree)
    out = Outbound("b", bridge, engine, None, Selection([], tree), buffer=buffer, window=window)  # type: ignore[arg-type]
    out.outbox = outbox = MemoryOutbox("b", 0)
    out._accepting = True
    out.ready(True, "test")
    return out, outbox, bridge


def commit(out: Outbound, outbox: MemoryOutbox, *ids: int) -> None:
    """What the writer does: the rows with the events, then the hook's callback."""
    events = [event(i) for i in ids]
    outbox._committed(events)
    out._committed(events)


def step(out: Outbound) -> list[int]:
    """One round of the publisher thread: what it sent."""
    with out._cond:
        batch, walk = out._take()
    if walk:
        batch = out._walk_page()
    if batch:
        out._publish(batch)
    return [e.id for e in batch]


def confirm_all(out: Outbound) -> None:
    out.confirmed(list(out._in_flight))


def test_a_walk_with_nothing_committed_to_the_table_meanwhile_has_no_final_walk() -> None:
    out, outbox, bridge = outbound(buffer=2, window=1000)
    commit(out, outbox, 10, 20, 30, 40, 50)  # 30, 40, 50: the buffer is full, the table only
    assert step(out) == [10, 20]
    assert step(out) == [30, 40, 50]  # the walk reached the end of the table
    assert out._walk is None and not out.spilled
    assert bridge.published == [10, 20, 30, 40, 50]


def test_an_event_committed_under_the_ids_the_walk_read_is_published_by_the_final_walk() -> None:
    out, outbox, bridge = outbound(buffer=2, window=1000)
    commit(out, outbox, 10, 20, 30, 40, 50)
    step(out)
    page = outbox.page

    def read_then_commit(after: int, limit: int) -> list[Event]:
        found = page(after, limit)
        commit(out, outbox, 35)  # fired before 40 and 50, committed after the read passed it
        return found

    outbox.page = read_then_commit  # type: ignore[method-assign]
    assert step(out) == [30, 40, 50]
    outbox.page = page  # type: ignore[method-assign]
    assert out._walk == "final" and out._walk_after == 34  # not from the start of the table
    commit(out, outbox, 60)  # the walk is over: new commits go to memory, sent after it
    assert step(out) == [35]
    assert out._walk is None
    assert step(out) == [60]
    assert bridge.published == [10, 20, 30, 40, 50, 35, 60]


def test_the_walk_reads_its_next_page_while_the_window_is_full() -> None:
    out, outbox, bridge = outbound(buffer=1, window=2)
    commit(out, outbox, *range(1, 11))
    assert step(out) == [1]
    assert step(out) == [2]  # the walk's page: as much as the window has room for
    assert out.buffered == 8  # the rest of the page at hand
    assert not out._has_work()  # full window, a page at hand: wait for confirms
    confirm_all(out)
    assert step(out) == [3, 4]  # from the page at hand, no read
    confirm_all(out)
    assert step(out) == [5, 6]
    assert bridge.published == [1, 2, 3, 4, 5, 6]
    confirm_all(out)
    while out._has_work():
        step(out)
        confirm_all(out)
    assert bridge.published == list(range(1, 11))
    assert out._walk is None


def test_with_the_window_full_and_nothing_at_hand_the_walk_reads_ahead() -> None:
    out, outbox, _ = outbound(buffer=1, window=1)
    commit(out, outbox, 1, 2, 3)
    assert step(out) == [1]  # from memory; the window is full now
    assert out._has_work()  # the walk begins: read its page while waiting
    assert step(out) == []
    assert out.buffered == 2 and not out._has_work()
    confirm_all(out)
    assert step(out) == [2]


def test_a_bridge_that_publishes_on_confirm_gets_the_room_refilled_in_its_confirming_call() -> None:
    out, outbox, bridge = outbound(buffer=100, window=2)
    out._refills = True  # as for an AMQP bridge (publishes_on_confirm)
    commit(out, outbox, 1, 2, 3, 4, 5)  # a small commit goes out in the committing thread
    assert bridge.published == [1, 2]  # as much as the window holds
    out.confirmed([1])
    assert bridge.published == [1, 2, 3]  # sent within confirmed, no publisher round
    out.confirmed([2, 3])
    assert bridge.published == [1, 2, 3, 4, 5]
    with out._sending:  # the publisher thread is sending: the confirm leaves the room to it
        out.confirmed([4])
    assert bridge.published == [1, 2, 3, 4, 5]


def test_the_amqp_bridge_publishes_on_confirm() -> None:
    from linkserver.bridges.amqp import AmqpBridge

    assert AmqpBridge.publishes_on_confirm


def test_a_bursts_last_confirmed_rows_are_deleted_at_once_a_sparse_streams_rows_together() -> None:
    out, outbox, _ = outbound(buffer=1000, window=1000)
    burst = list(range(1, DELETE_IDLE + 2))
    commit(out, outbox, *burst)
    assert step(out) == burst
    out._last_delete = time.monotonic() + 60  # as if rows had just been deleted
    out.confirmed(burst[:-1])
    out._flush_deletes()
    assert outbox.depth == len(burst)  # one still in flight: the rows wait for their batch
    out.confirmed(burst[-1:])
    out._flush_deletes()
    assert outbox.depth == 0  # the burst's end: deleted now, not DELETE_EVERY later
    out._last_delete = time.monotonic() + 60
    commit(out, outbox, 1000, 1001)
    step(out)
    confirm_all(out)
    out._flush_deletes()
    assert outbox.depth == 2  # a sparse stream: its few rows go together, every DELETE_EVERY
