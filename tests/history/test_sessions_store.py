"""The SessionTable contract (the ``sessions`` table), run against memory, SQLite and PostgreSQL;
and the ``exclusive`` lock of a history store."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from linkserver.history.base import HistoryStore
from linkserver.history.sessions import StoredSession

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def session(digest: str, user: str = "alice", *, lasts: int = 3600, at: int = 0) -> StoredSession:
    created = T0 + timedelta(seconds=at)
    return StoredSession(
        digest=digest,
        user=user,
        address="10.0.0.1",
        created=created,
        expires=created + timedelta(seconds=lasts),
    )


def test_an_opened_session_is_found_by_digest_until_it_ends_once(store: HistoryStore) -> None:
    table = store.sessions
    assert table.get("d1") is None and table.last_seq() == 0
    first = table.insert(session("d1"))
    stored = table.get("d1")
    assert stored is not None and stored.user == "alice" and stored.ended is None and stored.seq == first
    assert stored.expires == T0 + timedelta(hours=1) and stored.address == "10.0.0.1"
    [ended] = table.end(["d1", "unknown"], T0 + timedelta(seconds=5), "logout", "logged out")
    assert ended.digest == "d1" and ended.reason == "logout" and ended.why == "logged out"
    assert ended.seq > first
    assert table.end(["d1"], T0 + timedelta(seconds=6), "logout", "logged out") == []  # ended once
    again = table.get("d1")
    assert again is not None and again.ended == T0 + timedelta(seconds=5) and again.reason == "logout"


def test_end_user_keeps_one_and_end_expired_takes_only_the_expired(store: HistoryStore) -> None:
    table = store.sessions
    table.insert(session("a1"))
    table.insert(session("a2"))
    table.insert(session("a3"))
    table.insert(session("b1", "bob", lasts=10))
    ended = table.end_user("alice", T0, "revoked", "the password of alice was changed", keep="a2")
    assert sorted(s.digest for s in ended) == ["a1", "a3"] and {s.reason for s in ended} == {"revoked"}
    assert len({s.seq for s in ended}) == 1  # one write, one change number
    assert table.end_expired(T0 + timedelta(seconds=9), "timeout", "the session expired") == []
    [expired] = table.end_expired(T0 + timedelta(seconds=10), "timeout", "the session expired")
    assert expired.digest == "b1" and expired.ended == T0 + timedelta(seconds=10)
    assert table.open_count(T0) == 1  # a2
    [last] = table.end_all(T0, "closed", "closed")
    assert last.digest == "a2" and table.open_count(T0) == 0


def test_changes_are_a_feed_in_change_order(store: HistoryStore) -> None:
    table = store.sessions
    table.insert(session("x"))
    start = table.last_seq()
    table.insert(session("y"))
    table.end(["x"], T0, "logout", "logged out")
    changes = table.changes(start)
    assert [(c.digest, c.ended is not None) for c in changes] == [("y", False), ("x", True)]
    assert changes[-1].seq == table.last_seq()
    assert table.changes(table.last_seq()) == []


def test_forget_drops_old_rows_but_never_the_newest_change(store: HistoryStore) -> None:
    table = store.sessions
    table.insert(session("old1", lasts=1))
    table.insert(session("old2", lasts=1))
    newest = table.last_seq()
    assert table.forget(T0 + timedelta(days=1)) == 1  # old2 carries the newest change number
    assert table.get("old1") is None and table.get("old2") is not None
    assert table.last_seq() == newest
    assert table.insert(session("next")) > newest


def test_the_table_is_shared_by_stores_on_one_database(
    backend: str, make_store: Callable[..., HistoryStore]
) -> None:
    if backend == "memory":
        pytest.skip("a memory store is its own database")
    first, second = make_store(backend), make_store(backend)
    start = second.sessions.last_seq()
    first.sessions.insert(session("shared"))
    stored = second.sessions.get("shared")
    assert stored is not None and stored.user == "alice"
    # Two nodes see it expire; exactly one of them ends it.
    later = T0 + timedelta(hours=2)
    results = [
        first.sessions.end_expired(later, "timeout", "expired"),
        second.sessions.end_expired(later, "timeout", "expired"),
    ]
    assert sorted(len(r) for r in results) == [0, 1]
    assert [c.digest for c in first.sessions.changes(start) if c.ended is not None] == ["shared"]


def test_exclusive_is_held_by_one_holder_at_a_time(
    backend: str, make_store: Callable[..., HistoryStore]
) -> None:
    first = make_store(backend)
    # On PostgreSQL a second store on the same schema is another node; SQLite and memory are
    # one process's database, so the second holder is another thread of it.
    second = make_store(backend) if backend == "postgresql" else first
    inside, release, seen = threading.Event(), threading.Event(), []

    def hold() -> None:
        with first.exclusive("purge") as held:
            seen.append(held)
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    assert inside.wait(10)
    with second.exclusive("purge") as held:
        assert held is False
    with second.exclusive("another") as held:
        assert held is True
    release.set()
    thread.join(10)
    with second.exclusive("purge") as held:
        assert held is True
    assert seen == [True]
