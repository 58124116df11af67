"""Where login sessions live: the ``sessions`` table (SQL) or a dict (memory), behind one interface.

A session row holds a digest of the session token (never the token), the
user, when it was opened and when it expires; once it ends (logout, expiry,
revocation) the row says when and why. Every write gets the next number of
one sequence (``seq``) and a transaction's rows share it, so "every row with
``seq`` greater than the last one seen" is a change feed: each node of a
cluster follows it to close the WebSockets of sessions another node ended.

Ending is first-come: :meth:`SessionTable.end` and the other enders return
only the rows they ended themselves, so when two nodes see one session
expire, one of them (and only one) reports the ``logout``.

Every implementation passes the contract suite in ``tests/history/test_sessions_store.py``.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Iterable
from datetime import datetime

import attrs

#: Ended rows are kept this long past their expiry, then :meth:`SessionTable.forget` drops them.
KEEP_ENDED_SECONDS = 24 * 3600


@attrs.frozen(kw_only=True)
class StoredSession:
    """One session as stored. ``digest`` identifies the token (see linkserver/net/auth.py).

    ``ended`` is None while the session is open; then ``reason`` is the
    ``logout`` event's reason (``logout``, ``timeout``, ``revoked``...) and
    ``why`` the text its WebSocket connections are closed with. ``seq`` is
    the change number of the row's last write (assigned by the table).
    """

    digest: str = attrs.field(repr=False)
    user: str
    address: str | None = None
    created: datetime
    expires: datetime
    ended: datetime | None = None
    reason: str | None = None
    why: str | None = None
    seq: int = 0


class SessionTable(abc.ABC):
    """The sessions of one history database. Thread-safe; every method is one short transaction."""

    @abc.abstractmethod
    def insert(self, session: StoredSession) -> int:
        """Record a new open session (its digest is new); returns its change number."""

    @abc.abstractmethod
    def get(self, digest: str) -> StoredSession | None:
        """The session of ``digest``, open or ended; None if there is none."""

    @abc.abstractmethod
    def end(self, digests: Iterable[str], when: datetime, reason: str, why: str) -> list[StoredSession]:
        """End the open sessions of ``digests``; returns those this call ended (as ended)."""

    @abc.abstractmethod
    def end_user(
        self, user: str, when: datetime, reason: str, why: str, keep: str | None = None
    ) -> list[StoredSession]:
        """End every open session of ``user`` but the one of digest ``keep``; returns them."""

    @abc.abstractmethod
    def end_expired(self, now: datetime, reason: str, why: str) -> list[StoredSession]:
        """End every open session with ``expires <= now``; returns them."""

    @abc.abstractmethod
    def end_all(self, when: datetime, reason: str, why: str) -> list[StoredSession]:
        """End every open session; returns them."""

    @abc.abstractmethod
    def changes(self, after: int) -> list[StoredSession]:
        """Every row whose change number is greater than ``after``, in change order."""

    @abc.abstractmethod
    def last_seq(self) -> int:
        """The highest change number so far (0 for none)."""

    @abc.abstractmethod
    def open_count(self, now: datetime) -> int:
        """How many sessions are open and not expired."""

    @abc.abstractmethod
    def forget(self, before: datetime) -> int:
        """Delete the rows of sessions that expired before ``before`` (ended or not) but the
        newest row (change numbers never go back); returns how many."""


class MemorySessionTable(SessionTable):
    """Sessions in a dict: for tests and the in-memory history."""

    def __init__(self) -> None:
        self._rows: dict[str, StoredSession] = {}
        self._seq = 0
        self._lock = threading.Lock()

    def insert(self, session: StoredSession) -> int:
        with self._lock:
            self._seq += 1
            self._rows[session.digest] = attrs.evolve(
                session, ended=None, reason=None, why=None, seq=self._seq
            )
            return self._seq

    def get(self, digest: str) -> StoredSession | None:
        with self._lock:
            return self._rows.get(digest)

    def _end(self, chosen: list[StoredSession], when: datetime, reason: str, why: str) -> list[StoredSession]:
        if not chosen:
            return []
        self._seq += 1
        ended = [attrs.evolve(s, ended=when, reason=reason, why=why, seq=self._seq) for s in chosen]
        for session in ended:
            self._rows[session.digest] = session
        return ended

    def end(self, digests: Iterable[str], when: datetime, reason: str, why: str) -> list[StoredSession]:
        with self._lock:
            chosen = [s for d in set(digests) if (s := self._rows.get(d)) is not None and s.ended is None]
            return self._end(chosen, when, reason, why)

    def end_user(
        self, user: str, when: datetime, reason: str, why: str, keep: str | None = None
    ) -> list[StoredSession]:
        with self._lock:
            chosen = [
                s for s in self._rows.values() if s.user == user and s.ended is None and s.digest != keep
            ]
            return self._end(chosen, when, reason, why)

    def end_expired(self, now: datetime, reason: str, why: str) -> list[StoredSession]:
        with self._lock:
            chosen = [s for s in self._rows.values() if s.ended is None and s.expires <= now]
            return self._end(chosen, now, reason, why)

    def end_all(self, when: datetime, reason: str, why: str) -> list[StoredSession]:
        with self._lock:
            return self._end([s for s in self._rows.values() if s.ended is None], when, reason, why)

    def changes(self, after: int) -> list[StoredSession]:
        with self._lock:
            return sorted((s for s in self._rows.values() if s.seq > after), key=lambda s: s.seq)

    def last_seq(self) -> int:
        with self._lock:
            return self._seq

    def open_count(self, now: datetime) -> int:
        with self._lock:
            return sum(1 for s in self._rows.values() if s.ended is None and s.expires > now)

    def forget(self, before: datetime) -> int:
        with self._lock:
            gone = [d for d, s in self._rows.items() if s.expires < before and s.seq < self._seq]
            for digest in gone:
                del self._rows[digest]
            return len(gone)
