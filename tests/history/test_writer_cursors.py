"""The SQLite writer leaves no sqlite3 cursor for the garbage collector, even when a batch fails.

CPython 3.11's sqlite3 resets a cursor's statement when the cursor is freed. Statements
are cached per connection by their SQL, so a cursor kept alive in a reference cycle (by
the frames of a traceback the failed future keeps) and freed later by a collection in
another thread resets the statement the writer thread may be running at that moment on
the same connection. Here the collector is off: every cursor the writer made must be
gone by reference counting alone once the batch failed, while the failure is still held.
"""

from __future__ import annotations

import gc
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
from history_helpers import EventMaker
from sqlalchemy import text

from linkserver.core.errors import HistoryError
from linkserver.core.events import Event
from linkserver.history.same_commit import Statement
from linkserver.history.sql import SqlHistoryStore


class Refuses:
    """A side row per event, then a checked UPDATE of them whose check refuses ``loser``
    (a compare-and-set that lost: the check raises inside the batch's transaction)."""

    def __init__(self, loser: int) -> None:
        self.loser = loser

    def statements(self, dialect: str, events: Sequence[Event]) -> Sequence[Statement]:
        lost = any(event.id == self.loser for event in events)

        def check(changed: int) -> None:
            if lost:
                raise ValueError(f"{changed} rows changed; this batch lost")

        return [
            ("INSERT INTO side (event_id) VALUES (?)", [(event.id,) for event in events]),
            ("UPDATE side SET event_id = event_id WHERE event_id = ?", [(e.id,) for e in events], check),
        ]

    def committed(self, events: Sequence[Event]) -> None:
        return None


class FailsToBuild(Refuses):
    """Raises while making the batch's statements (before any of them runs)."""

    def statements(self, dialect: str, events: Sequence[Event]) -> Sequence[Statement]:
        if any(event.id == self.loser for event in events):
            raise ValueError("this event cannot be written")
        return super().statements(dialect, events)


def live_cursors() -> set[int]:
    return {id(obj) for obj in gc.get_objects() if isinstance(obj, sqlite3.Cursor)}


@pytest.fixture
def no_collector() -> Iterator[None]:
    was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@pytest.mark.parametrize("hook", [Refuses, FailsToBuild], ids=["check-raises", "statements-raise"])
@pytest.mark.parametrize("count", [1, 12])
def test_a_failed_batch_leaves_no_cursor_for_the_collector(
    hook: Callable[[int], Refuses],
    count: int,
    tmp_path: Any,
    make_event: EventMaker,
    no_collector: None,
) -> None:
    store = SqlHistoryStore(
        f"sqlite:///{tmp_path / 'history.sqlite3'}", checkpoint_interval=timedelta(hours=1)
    )  # no checkpoint round makes a cursor meanwhile
    store.start()
    try:
        with store.engine.begin() as conn:
            conn.execute(text("CREATE TABLE side (event_id BIGINT PRIMARY KEY)"))
        events = [make_event() for _ in range(count)]
        store.add_same_commit(hook(events[-1].id))
        store.append(make_event(), waiting=True).result(timeout=30)  # a batch that commits
        before = live_cursors()
        futures = [store.append(event) for event in events]
        store.flush(timeout=30)
        failures = [future.exception(timeout=30) for future in futures]
        assert isinstance(failures[-1], HistoryError)  # held, as a firer holds it
        assert isinstance(failures[-1].__cause__, ValueError)
        assert live_cursors() - before == set()
        store.append(make_event(), waiting=True).result(timeout=30)  # the writer still writes
        assert live_cursors() - before == set()
    finally:
        store.stop()
