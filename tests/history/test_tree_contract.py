"""The TreeStore contract (the run-time tree), run against every backend (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from history_helpers import SQL_BACKENDS

from linkserver.core.errors import HistoryUnavailable, InvalidName, ServerStopped
from linkserver.history.base import HistoryStore
from linkserver.history.errors import UnstorableContext
from linkserver.history.sql import SqlHistoryStore
from linkserver.history.tree import StoredContext

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def added(path: str, **options: object) -> StoredContext:
    return StoredContext(path=path, **{"changed": NOW, **options})  # type: ignore[arg-type]


def removed(path: str, **options: object) -> StoredContext:
    return added(path, removed=True, **options)


def test_a_new_store_holds_no_tree(store: HistoryStore) -> None:
    assert store.load_contexts() == []


def test_saved_rows_come_back_whole_in_change_order(store: HistoryStore) -> None:
    rows = [
        added("devices.plc7", description="PLC 7", node=7, changed=NOW + timedelta(microseconds=1)),
        added("devices.plc7.io", template="io", child_template="channel", description="ünï 'io'"),
        removed("alerts.fire", node=1023),
    ]
    last = store.save_contexts(rows)
    loaded = store.load_contexts()
    assert [row.seq for row in loaded] == sorted({row.seq for row in loaded})
    assert loaded[-1].seq == last
    assert [
        (r.path, r.removed, r.template, r.child_template, r.description, r.changed, r.node) for r in loaded
    ] == [(r.path, r.removed, r.template, r.child_template, r.description, r.changed, r.node) for r in rows]
    assert all(row.changed.tzinfo is not None for row in loaded)


def test_a_later_change_of_a_path_replaces_its_row_with_a_higher_number(store: HistoryStore) -> None:
    store.save_contexts([added("devices.a"), added("devices.b")])
    first = {row.path: row.seq for row in store.load_contexts()}
    last = store.save_contexts([removed("devices.a")])
    assert last > max(first.values())
    rows = store.load_contexts()
    assert [(row.path, row.removed) for row in rows] == [("devices.b", False), ("devices.a", True)]
    # The change feed: only what changed after the number a reader last saw.
    assert [row.path for row in store.load_contexts(after=max(first.values()))] == ["devices.a"]
    assert store.load_contexts(after=last) == []
    store.save_contexts([added("devices.a", template="plc")])
    assert [(row.path, row.removed, row.template) for row in store.load_contexts(after=last)] == [
        ("devices.a", False, "plc")
    ]


def test_concurrent_writers_get_distinct_numbers_and_a_feed_without_holes(store: HistoryStore) -> None:
    def write(writer: int) -> None:
        for n in range(15):
            store.save_contexts([added(f"w{writer}.c{n}"), added(f"w{writer}.c{n}.x")])

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = store.load_contexts()
    assert len(rows) == 4 * 15 * 2
    seqs = [row.seq for row in rows]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


def test_bad_rows_are_refused_before_anything_is_written(store: HistoryStore) -> None:
    with pytest.raises(UnstorableContext, match="devices.plc7: changed .* has no timezone"):
        StoredContext(path="devices.plc7", changed=datetime(2024, 5, 1))
    with pytest.raises(InvalidName):
        StoredContext(path="devices.bad-name", changed=NOW)
    assert store.load_contexts() == []


def test_a_stopped_store_records_no_tree_change(
    backend: str, make_store: Callable[..., HistoryStore]
) -> None:
    store = make_store(backend)
    store.stop()
    with pytest.raises(ServerStopped):
        store.save_contexts([added("devices.plc7")])


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_the_tree_survives_a_restart_and_a_second_store_sees_it(
    backend: str, database_url: Callable[[str], str]
) -> None:
    url = database_url(backend)
    first = SqlHistoryStore(url)
    first.start()
    try:
        first.save_contexts([added("devices.plc7", description="PLC 7"), removed("alerts.fire")])
        second = SqlHistoryStore(url)  # another server on the same database
        second.start()
        try:
            assert [row.path for row in second.load_contexts()] == ["devices.plc7", "alerts.fire"]
            second.save_contexts([added("devices.plc8")])
            assert [row.path for row in first.load_contexts()][-1] == "devices.plc8"
        finally:
            second.stop()
    finally:
        first.stop()
    again = SqlHistoryStore(url)
    again.start()
    try:
        rows = again.load_contexts()
        assert [(row.path, row.removed, row.description) for row in rows] == [
            ("devices.plc7", False, "PLC 7"),
            ("alerts.fire", True, ""),
            ("devices.plc8", False, ""),
        ]
    finally:
        again.stop()


def test_a_tree_change_the_database_cannot_take_now_is_unavailable_and_records_nothing(
    database_url: Callable[[str], str],
) -> None:
    url = database_url("sqlite")
    store = SqlHistoryStore(url, busy_timeout=timedelta(milliseconds=50))
    store.start()
    blocker = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with pytest.raises(HistoryUnavailable, match="not recorded, so nothing changed.*try again"):
            store.save_contexts([added("devices.plc7")])
        blocker.execute("ROLLBACK")
        assert store.load_contexts() == []
        store.save_contexts([added("devices.plc7")])
        assert [row.path for row in store.load_contexts()] == ["devices.plc7"]
    finally:
        blocker.close()
        store.stop()
