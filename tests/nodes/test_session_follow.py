"""Two nodes' session stores on one PostgreSQL schema: a session ended on one node is seen ended
by the other through the sessions feed, however the feed's reads fall around the other's reads."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from datetime import datetime

import pytest

from linkserver.history.sessions import SessionTable, StoredSession
from linkserver.history.sql import SqlHistoryStore
from linkserver.net.auth import SessionStore


@pytest.fixture
def tables(shared_url: str) -> Iterator[tuple[SessionTable, SessionTable]]:
    """The sessions table as two nodes see it: two history stores on one schema."""
    first, second = SqlHistoryStore(shared_url), SqlHistoryStore(shared_url)
    first.start()
    second.start()
    try:
        yield first.sessions, second.sessions
    finally:
        second.stop()
        first.stop()


def test_a_node_that_never_read_the_feed_sees_a_session_end_that_another_ended(
    tables: tuple[SessionTable, SessionTable],
) -> None:
    # Node b was shown the token before its session watcher first read the feed (a node just
    # started, its first read half a second away); node a then ends the session.
    a, b = SessionStore(table=tables[0]), SessionStore(table=tables[1])
    token = a.open("operator").token
    assert b.get(token)[0] is not None
    assert a.close(token) is not None
    assert b.follow() == [(token, "logged out")]
    assert b.get(token) == (None, None)


class _EndedWhileRead(SessionTable):
    """A sessions table that, once, lets ``meanwhile()`` run right after a row was read."""

    def __init__(self, table: SessionTable) -> None:
        self.table = table
        self.meanwhile: list[object] = []

    def get(self, digest: str) -> StoredSession | None:
        row = self.table.get(digest)
        while self.meanwhile:
            self.meanwhile.pop()()  # type: ignore[operator]
        return row

    def insert(self, session: StoredSession) -> int:
        return self.table.insert(session)

    def end(self, digests: Iterable[str], when: datetime, reason: str, why: str) -> list[StoredSession]:
        return self.table.end(digests, when, reason, why)

    def end_user(
        self, user: str, when: datetime, reason: str, why: str, keep: str | None = None
    ) -> list[StoredSession]:
        return self.table.end_user(user, when, reason, why, keep)

    def end_expired(self, now: datetime, reason: str, why: str) -> list[StoredSession]:
        return self.table.end_expired(now, reason, why)

    def end_all(self, when: datetime, reason: str, why: str) -> list[StoredSession]:
        return self.table.end_all(when, reason, why)

    def changes(self, after: int) -> list[StoredSession]:
        return self.table.changes(after)

    def last_seq(self) -> int:
        return self.table.last_seq()

    def open_count(self, now: datetime) -> int:
        return self.table.open_count(now)

    def forget(self, before: datetime) -> int:
        return self.table.forget(before)


def test_a_session_ended_between_another_nodes_read_and_its_caching_is_seen_ended(
    tables: tuple[SessionTable, SessionTable],
) -> None:
    a = SessionStore(table=tables[0])
    table_b = _EndedWhileRead(tables[1])
    b = SessionStore(table=table_b)
    assert b.follow() == []  # b's watcher has read the feed once
    token = a.open("operator").token
    followed: list[list[tuple[str, str]]] = []
    watcher = threading.Thread(target=lambda: followed.append(b.follow()))

    def logout_and_follow() -> None:
        # b has read the row (open); a ends the session and b's watcher reads the feed before
        # b caches the row. The watcher must not pass over the end: it waits for the caching
        # (then it sees the end), or it would leave the session cached as open.
        assert a.close(token) is not None
        watcher.start()
        watcher.join(0.2)  # done by then: the feed was read before the caching (the bug)

    table_b.meanwhile.append(logout_and_follow)
    b.get(token)  # open as read
    watcher.join(10)
    assert not watcher.is_alive()
    assert followed[0] + b.follow() == [(token, "logged out")]
    assert b.get(token) == (None, None)
