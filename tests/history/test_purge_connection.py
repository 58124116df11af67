"""The purge on SQLite runs on the writer's own connection: one thread at a time, none after stop.

A native sqlite3 connection used by two threads at once can corrupt the
interpreter's memory; the writer's committer role is what keeps its
connection to one thread, so every use and the close happen with it held,
and a stopped writer opens no connection again (nothing would close it).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from history_helpers import EventMaker, store_all
from sqlalchemy import make_url

from linkserver.core.errors import ServerStopped
from linkserver.history import sql as history_sql
from linkserver.history.sql import SqlHistoryStore
from linkserver.history.writer import Writer

LATER = datetime(2030, 1, 1, tzinfo=UTC)


def stored_count(store: SqlHistoryStore) -> int:
    database = make_url(str(store.url)).database
    assert database is not None
    with sqlite3.connect(database) as db:
        return int(db.execute("SELECT count(*) FROM events").fetchone()[0])


def expired_store(make_store: Callable[..., Any], count: int) -> SqlHistoryStore:
    store = make_store("sqlite")
    make = EventMaker()
    store_all(store, [make(context=f"devices.d{i % 7}", lifetime=timedelta(hours=1)) for i in range(count)])
    return store


class OwnedLock:
    """A lock that knows which thread holds it (for the writer's role)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.owner: int | None = None

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        taken = self._lock.acquire(blocking, timeout)
        if taken:
            self.owner = threading.get_ident()
        return taken

    def release(self) -> None:
        self.owner = None
        self._lock.release()

    def __enter__(self) -> OwnedLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@pytest.fixture
def role_checked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every writer started from now on checks that whoever opens, uses (through
    ``_connection``) or closes its connection holds its role; the violations."""
    violations: list[str] = []
    start, connection, close = Writer.start, Writer._connection, Writer._close_connection  # noqa: SLF001

    def checked(name: str, method: Any) -> Any:
        def run(self: Writer) -> Any:
            role = self._role  # noqa: SLF001
            if not isinstance(role, OwnedLock) or role.owner != threading.get_ident():
                violations.append(f"{name} in {threading.current_thread().name} without the role")
            return method(self)

        return run

    def started(self: Writer) -> None:
        self._role = OwnedLock()  # type: ignore[assignment]  # noqa: SLF001
        start(self)

    monkeypatch.setattr(Writer, "start", started)
    monkeypatch.setattr(Writer, "_connection", checked("_connection", connection))
    monkeypatch.setattr(Writer, "_close_connection", checked("_close_connection", close))
    return violations


def test_stop_waits_for_the_purge_transaction_on_the_writers_connection_then_refuses_the_purge(
    make_store: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, role_checked: list[str]
) -> None:
    store = expired_store(make_store, 1000)
    writer = store._writer  # noqa: SLF001 - the connection under test
    assert writer is not None
    inside, release = threading.Event(), threading.Event()
    purge_once = history_sql._purge_sqlite  # noqa: SLF001

    def held_purge(db: Any, expired: int, rows: int) -> int:
        if not inside.is_set():
            inside.set()
            assert release.wait(30)
        return purge_once(db, expired, rows)

    monkeypatch.setattr(history_sql, "_purge_sqlite", held_purge)
    outcome: list[BaseException | int] = []

    def purge() -> None:
        try:
            outcome.append(store.purge_expired(LATER, batch_size=100))
        except BaseException as exc:
            outcome.append(exc)

    purger = threading.Thread(target=purge)
    purger.start()
    assert inside.wait(30)
    stopper = threading.Thread(target=store.stop)
    stopper.start()
    stopper.join(0.5)
    assert stopper.is_alive(), "stop closed the writer's connection while a purge transaction used it"
    release.set()
    purger.join(30)
    stopper.join(30)
    assert not purger.is_alive() and not stopper.is_alive()
    # The purge's first transaction ran to its commit; the next one found the writer stopped.
    assert len(outcome) == 1 and isinstance(outcome[0], ServerStopped), outcome
    assert writer._conn is None, "the purge opened a writer connection after stop"  # noqa: SLF001
    assert stored_count(store) == 900
    assert role_checked == []


def test_a_purge_after_the_store_stopped_is_refused_and_opens_no_connection(
    make_store: Callable[..., Any], role_checked: list[str]
) -> None:
    store = expired_store(make_store, 50)
    writer = store._writer  # noqa: SLF001
    assert writer is not None
    store.stop()
    with pytest.raises(ServerStopped):
        store.purge_expired(LATER)
    assert writer._conn is None  # noqa: SLF001
    assert stored_count(store) == 50
    assert role_checked == []


def test_a_purge_while_firing_uses_the_writers_connection_only_with_its_role(
    make_store: Callable[..., Any], role_checked: list[str]
) -> None:
    """Durable fires (their callers commit), plain fires (the writer thread) and the purge
    take turns on the one connection; the purge's page cache goes back at its end."""
    store = expired_store(make_store, 3000)
    writer = store._writer  # noqa: SLF001
    assert writer is not None
    make = EventMaker(start=datetime(2029, 6, 1, tzinfo=UTC))
    stop = threading.Event()
    fired: list[int] = []
    errors: list[BaseException] = []

    def fire(durable: bool) -> None:
        try:
            while not stop.is_set():
                event = make(context="devices.live", lifetime=None)
                future = store.append(event, waiting=durable)
                if durable:
                    future.result(timeout=30)
                fired.append(event.id)
        except BaseException as exc:
            errors.append(exc)

    firers = [threading.Thread(target=fire, args=(durable,)) for durable in (True, True, False)]
    for firer in firers:
        firer.start()
    try:
        assert store.purge_expired(LATER, batch_size=50) == 3000
    finally:
        stop.set()
        for firer in firers:
            firer.join(30)
    assert errors == []
    with writer.own_connection() as db:
        assert db.execute("PRAGMA cache_size").fetchone()[0] == -history_sql.CACHE_KIB
    store.flush(timeout=30)
    assert stored_count(store) == len(fired)
    store.stop()
    assert writer._conn is None  # noqa: SLF001
    assert role_checked == []
