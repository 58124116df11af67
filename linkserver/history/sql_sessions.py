"""The ``sessions`` table behind :class:`~linkserver.history.sessions.SessionTable` (SQLite or PostgreSQL)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, text, update
from sqlalchemy.exc import InterfaceError, OperationalError

from linkserver.history.errors import unavailable_as
from linkserver.history.schema import sessions
from linkserver.history.sessions import SessionTable, StoredSession

_LOCK_KEY = 0x4C696E6B53657373  # "LinkSess": session writes commit in change-number order
_LAST_SEQ = select(func.coalesce(func.max(sessions.c.seq), 0))


def _unavailable(what: str, exc: OperationalError | InterfaceError) -> str:
    return f"the login sessions could not be {what}: history is unavailable ({exc.orig}); try again"


def _session(row: Any) -> StoredSession:
    return StoredSession(
        digest=row.digest,
        user=row.user,
        address=row.address,
        created=row.created,
        expires=row.expires,
        ended=row.ended,
        reason=row.reason,
        why=row.why,
        seq=row.seq,
    )


class SqlSessionTable(SessionTable):
    """``engine()`` gives the history's engine; ``write_lock`` is the history's own writer lock.

    Each write takes the next change number inside a transaction that holds a
    lock (PostgreSQL: an advisory transaction lock; SQLite: its one writer), so
    a number becomes visible only after every smaller one: a node following
    the feed never skips a write that commits late.
    """

    def __init__(
        self, engine: Callable[[], Engine], write_lock: Callable[[], contextlib.AbstractContextManager[Any]]
    ) -> None:
        self._engine = engine
        self._write_lock = write_lock

    @contextlib.contextmanager
    def _writing(self) -> Iterator[tuple[Connection, int]]:
        """A transaction holding the sessions' write turn, and the change number it writes."""
        with (
            unavailable_as("the sessions could not be written"),
            self._write_lock(),
            self._engine().begin() as conn,
        ):
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
            yield conn, int(conn.execute(_LAST_SEQ).scalar_one()) + 1

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Connection]:
        with unavailable_as("the sessions could not be read"), self._engine().connect() as conn:
            yield conn

    def insert(self, session: StoredSession) -> int:
        with self._writing() as (conn, seq):
            conn.execute(
                insert(sessions).values(
                    digest=session.digest,
                    user=session.user,
                    address=session.address,
                    created=session.created,
                    expires=session.expires,
                    ended=None,
                    reason=None,
                    why=None,
                    seq=seq,
                )
            )
        return seq

    def get(self, digest: str) -> StoredSession | None:
        with self._reading() as conn:
            row = conn.execute(select(sessions).where(sessions.c.digest == digest)).first()
        return _session(row) if row is not None else None

    def _end(self, where: Any, when: datetime, reason: str, why: str) -> list[StoredSession]:
        with self._writing() as (conn, seq):
            statement = (
                update(sessions)
                .where(sessions.c.ended.is_(None), where)
                .values(ended=when, reason=reason, why=why, seq=seq)
                .returning(*sessions.c)
            )
            return sorted((_session(row) for row in conn.execute(statement)), key=lambda s: s.digest)

    def end(self, digests: Iterable[str], when: datetime, reason: str, why: str) -> list[StoredSession]:
        chosen = sorted(set(digests))
        if not chosen:
            return []
        return self._end(sessions.c.digest.in_(chosen), when, reason, why)

    def end_user(
        self, user: str, when: datetime, reason: str, why: str, keep: str | None = None
    ) -> list[StoredSession]:
        where = sessions.c.user == user
        if keep is not None:
            where = where & (sessions.c.digest != keep)
        return self._end(where, when, reason, why)

    def end_expired(self, now: datetime, reason: str, why: str) -> list[StoredSession]:
        # Read first: the sweep runs every half second on every node, and most find nothing
        # (a read takes no write turn, which on SQLite the event writer needs).
        with self._reading() as conn:
            due = conn.execute(
                select(sessions.c.digest)
                .where(sessions.c.ended.is_(None), sessions.c.expires <= now)
                .limit(1)
            ).first()
        if due is None:
            return []
        return self._end(sessions.c.expires <= now, now, reason, why)

    def end_all(self, when: datetime, reason: str, why: str) -> list[StoredSession]:
        return self._end(sessions.c.digest.is_not(None), when, reason, why)

    def changes(self, after: int) -> list[StoredSession]:
        with self._reading() as conn:
            rows = conn.execute(select(sessions).where(sessions.c.seq > after).order_by(sessions.c.seq))
            return [_session(row) for row in rows]

    def last_seq(self) -> int:
        with self._reading() as conn:
            return int(conn.execute(_LAST_SEQ).scalar_one())

    def open_count(self, now: datetime) -> int:
        with self._reading() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(sessions)
                    .where(sessions.c.ended.is_(None), sessions.c.expires > now)
                ).scalar_one()
            )

    def forget(self, before: datetime) -> int:
        with self._write_lock(), self._engine().begin() as conn:
            # The newest row stays: the change numbers must never start again below what a
            # node following the feed has seen.
            newest = select(func.max(sessions.c.seq)).scalar_subquery()
            statement = delete(sessions).where(sessions.c.expires < before, sessions.c.seq < newest)
            return int(conn.execute(statement).rowcount)
