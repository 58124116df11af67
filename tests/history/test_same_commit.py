"""Same-commit hooks: extra statements committed atomically with a batch of events."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import pytest
from history_helpers import BACKENDS, SQL_BACKENDS, EventMaker, store_all
from sqlalchemy import text

from linkserver.core.errors import HistoryError
from linkserver.core.events import Event
from linkserver.history.base import HistoryQuery, HistoryStore
from linkserver.history.same_commit import Statement
from linkserver.history.sql import SqlHistoryStore


class SideRows:
    """Writes one row per event into a side table; records what was committed."""

    def __init__(self, fail_for: int | None = None) -> None:
        self.fail_for = fail_for
        self.seen: list[int] = []
        self.offered: list[int] = []

    def statements(self, dialect: str, events: Sequence[Event]) -> Sequence[Statement]:
        self.offered.extend(event.id for event in events)
        if self.fail_for is not None and any(event.id == self.fail_for for event in events):
            raise ValueError("this event cannot be written")
        mark = "?" if dialect == "sqlite" else "%s"
        return [(f"INSERT INTO side (event_id) VALUES ({mark})", [(event.id,) for event in events])]

    def committed(self, events: Sequence[Event]) -> None:
        self.seen.extend(event.id for event in events)


def make_side_table(store: HistoryStore) -> None:
    assert isinstance(store, SqlHistoryStore)
    with store.engine.begin() as conn:
        conn.execute(text("CREATE TABLE side (event_id BIGINT PRIMARY KEY)"))


def side_ids(store: HistoryStore) -> list[int]:
    assert isinstance(store, SqlHistoryStore)
    with store.engine.connect() as conn:
        return list(conn.execute(text("SELECT event_id FROM side ORDER BY event_id")).scalars())


def stored_ids(store: HistoryStore) -> list[int]:
    page = store.query(HistoryQuery(newest_first=False, limit=10_000))
    return [event.id for event in page.events]


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_hook_statements_commit_with_the_events(
    backend: str, make_store: Callable[..., Any], make_event: EventMaker
) -> None:
    store = make_store(backend)
    make_side_table(store)
    hook = SideRows()
    store.add_same_commit(hook)
    events = [make_event() for _ in range(300)]
    store_all(store, events)
    ids = [event.id for event in events]
    assert side_ids(store) == ids
    assert stored_ids(store) == ids
    assert sorted(hook.seen) == ids


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_a_failing_hook_stores_neither_its_rows_nor_the_event(
    backend: str, make_store: Callable[..., Any], make_event: EventMaker
) -> None:
    store = make_store(backend)
    make_side_table(store)
    events = [make_event() for _ in range(5)]
    hook = SideRows(fail_for=events[2].id)
    store.add_same_commit(hook)
    futures = [store.append(event) for event in events]
    outcomes = []
    for future in futures:
        try:
            future.result(timeout=30)
            outcomes.append(True)
        except HistoryError:
            outcomes.append(False)
    assert outcomes == [True, True, False, True, True]
    good = [event.id for event in events if event.id != events[2].id]
    assert side_ids(store) == good
    assert stored_ids(store) == good
    assert events[2].id not in hook.seen


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_a_statement_the_database_rejects_rolls_back_its_event(
    backend: str, make_store: Callable[..., Any], make_event: EventMaker
) -> None:
    store = make_store(backend)
    make_side_table(store)
    events = [make_event() for _ in range(3)]
    with store.engine.begin() as conn:  # the side row of the middle event already exists
        conn.execute(text("INSERT INTO side (event_id) VALUES (:id)"), {"id": events[1].id})
    store.add_same_commit(SideRows())
    futures = [store.append(event) for event in events]
    assert futures[0].result(timeout=30) == events[0]
    with pytest.raises(HistoryError):
        futures[1].result(timeout=30)
    assert futures[2].result(timeout=30) == events[2]
    assert stored_ids(store) == [events[0].id, events[2].id]


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_an_event_id_already_stored_fails_alone_inside_a_hooks_transaction(
    backend: str, make_store: Callable[..., Any], make_event: EventMaker
) -> None:
    """The events' INSERT inside BEGIN/COMMIT rolls the whole transaction back on a duplicate
    (SQLite: OR ROLLBACK, no statement journal): the writer then stores the others one by one,
    each with its hook rows, and the duplicate's row and first event stay as they were."""
    store = make_store(backend, flush_interval=timedelta(milliseconds=200))
    make_side_table(store)
    first = make_event()
    store.append(first).result(timeout=30)
    hook = SideRows()
    store.add_same_commit(hook)
    twin = first.evolve(name="other")
    events = [make_event(), twin, make_event()]  # three rows: two statements in one transaction on SQLite
    futures = [store.append(event) for event in events]
    assert futures[0].result(timeout=30) == events[0]
    with pytest.raises(HistoryError, match=str(first.id)):
        futures[1].result(timeout=30)
    assert futures[2].result(timeout=30) == events[2]
    assert stored_ids(store) == sorted([first.id, events[0].id, events[2].id])
    assert store.get(first.id) == first
    assert side_ids(store) == sorted([events[0].id, events[2].id])
    assert sorted(hook.seen) == sorted([events[0].id, events[2].id])


@pytest.mark.parametrize("backend", BACKENDS)
def test_committed_is_told_before_the_future_completes(
    backend: str, make_store: Callable[..., Any], make_event: EventMaker
) -> None:
    store = make_store(backend)
    if backend != "memory":
        make_side_table(store)
    hook = SideRows()
    store.add_same_commit(hook)
    event = make_event()
    seen: list[bool] = []
    future = store.append(event)
    future.add_done_callback(lambda _: seen.append(event.id in hook.seen))
    future.result(timeout=30)
    assert seen == [True]


class CheckedRows:
    """Inserts a side row per event, then counts them with a checked UPDATE that wants
    ``expected(events)`` rows: a compare-and-set that loses when the hook says so."""

    def __init__(self, lose_for: int | None = None) -> None:
        self.lose_for = lose_for
        self.checked: list[int] = []

    def statements(self, dialect: str, events: Sequence[Event]) -> Sequence[Statement]:
        mark = "?" if dialect == "sqlite" else "%s"
        wanted = len(events) + (1 if any(event.id == self.lose_for for event in events) else 0)

        def check(changed: int) -> None:
            self.checked.append(changed)
            if changed != wanted:
                raise ValueError(f"{changed} rows changed, wanted {wanted}")

        insert = f"INSERT INTO side (event_id) VALUES ({mark})"
        touch = f"UPDATE side SET event_id = event_id WHERE event_id = {mark}"
        return [
            (insert, [(event.id,) for event in events]),
            (touch, [(event.id,) for event in events], check),
        ]

    def committed(self, events: Sequence[Event]) -> None:
        return None


# One waiting event: PostgreSQL's one-query path; twelve at once: COPY and a transaction block.
@pytest.mark.parametrize("count", [1, 12])
@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_a_check_gets_its_statements_rowcount_and_a_lost_one_stores_nothing(
    backend: str, count: int, make_store: Callable[..., Any], make_event: EventMaker
) -> None:
    store = make_store(backend)
    make_side_table(store)
    events = [make_event() for _ in range(count)]
    loser = make_event()
    hook = CheckedRows(lose_for=loser.id)
    store.add_same_commit(hook)
    store_all(store, events, waiting=count == 1)
    assert hook.checked[0] == count  # summed over the parameter sets of the checked statement
    with pytest.raises(HistoryError) as failed:
        store.append(loser, waiting=True).result(timeout=30)
    assert isinstance(failed.value.__cause__, ValueError)
    assert stored_ids(store) == side_ids(store) == [event.id for event in events]
    store.append(make_event(), waiting=True).result(timeout=30)  # the connection is usable again
    assert len(stored_ids(store)) == count + 1


@pytest.mark.parametrize("count", [1, 12])
@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_every_column_round_trips_with_hooks_in_both_write_paths(
    backend: str, count: int, make_store: Callable[..., Any], make_event: EventMaker
) -> None:
    """Client-side quoting (PostgreSQL's one-query path) and COPY store the same values."""
    store = make_store(backend)
    make_side_table(store)
    store.add_same_commit(SideRows())
    awkward = "it's a \\ back'slash; -- and %s %% \"quoted\" ü € 𝄞 \t\n"
    events = []
    for index in range(count):
        event = make_event(
            context=f"plant.o'neil\\{index}",
            name="reading",
            data=({"text": awkward, "n": 2**53 - 1, "f": -1.5e-7, "yes": True, "no": False, "null": None},),
            author=awkward if index % 2 else None,
            group=None if index % 2 else "ops'; DROP TABLE events; --",
            lifetime=None if index % 2 else timedelta(days=1, microseconds=7),
        )
        events.append(event.evolve(created=event.created + timedelta(microseconds=123456)))
    store_all(store, events, waiting=count == 1, requires_acknowledgement=True)
    for event in events:
        stored = store.get(event.id)
        assert stored == event
        assert (stored.context, stored.author, stored.group, stored.data) == (
            event.context,
            event.author,
            event.group,
            event.data,
        )
        assert (stored.created, stored.expires, stored.level) == (event.created, event.expires, event.level)
    assert side_ids(store) == [event.id for event in events]
