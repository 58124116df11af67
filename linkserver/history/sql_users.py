"""The ``users`` table behind :class:`~linkserver.history.users.UserStore` (SQLite or PostgreSQL)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from linkserver.core.errors import UserExists, UserNotFound
from linkserver.history.schema import users
from linkserver.history.users import StoredUser, UserStore, next_revision


def _user(row: Any) -> StoredUser:
    return StoredUser(
        name=row.name,
        password_hash=row.password_hash,
        grants=dict(row.grants or {}),
        created=row.created,
        updated=row.updated,
        removed=bool(row.removed),
    )


class SqlUserStore(UserStore):
    """``engine()`` gives the history's engine; ``write_lock`` is the history's own writer lock
    (SQLite has one writer: user changes queue with the event writer instead of polling)."""

    def __init__(
        self, engine: Callable[[], Engine], write_lock: Callable[[], contextlib.AbstractContextManager[Any]]
    ) -> None:
        self._engine = engine
        self._write_lock = write_lock

    def all(self) -> list[StoredUser]:
        with self._engine().connect() as conn:
            rows = conn.execute(select(users).where(users.c.removed == False).order_by(users.c.name))  # noqa: E712
            return [_user(row) for row in rows]

    def get(self, name: str) -> StoredUser | None:
        with self._engine().connect() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).first()
        return _user(row) if row is not None and not row.removed else None

    @contextlib.contextmanager
    def _writing(self) -> Any:
        with self._write_lock(), self._engine().begin() as conn:
            if conn.dialect.name == "postgresql":
                # One writer of users at a time across nodes, so revisions only grow.
                conn.exec_driver_sql("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
            yield conn

    @staticmethod
    def _revision(conn: Connection, when: datetime) -> int:
        return next_revision(conn.execute(select(func.max(users.c.revision))).scalar(), when)

    def seed(self, seeded: Iterable[StoredUser]) -> list[str]:
        added = []
        with self._writing() as conn:
            known = set(conn.execute(select(users.c.name)).scalars())
            for user in seeded:
                if user.name in known:
                    continue
                conn.execute(
                    insert(users).values(**self._values(user), revision=self._revision(conn, user.updated))
                )
                known.add(user.name)
                added.append(user.name)
        return added

    @staticmethod
    def _values(user: StoredUser) -> dict[str, Any]:
        return {
            "name": user.name,
            "password_hash": user.password_hash,
            "grants": dict(user.grants),
            "created": user.created,
            "updated": user.updated,
            "removed": False,
        }

    def insert(self, user: StoredUser) -> None:
        try:
            with self._writing() as conn:
                row = conn.execute(select(users.c.removed).where(users.c.name == user.name)).first()
                revision = self._revision(conn, user.updated)
                if row is None:
                    conn.execute(insert(users).values(**self._values(user), revision=revision))
                elif row.removed:
                    conn.execute(
                        update(users)
                        .where(users.c.name == user.name)
                        .values(**self._values(user), revision=revision)
                    )
                else:
                    raise UserExists(user.name)
        except IntegrityError:  # inserted by another node meanwhile
            raise UserExists(user.name) from None

    def update(self, user: StoredUser) -> None:
        with self._writing() as conn:
            changed = conn.execute(
                update(users)
                .where(users.c.name == user.name, users.c.removed == False)  # noqa: E712
                .values(
                    password_hash=user.password_hash,
                    grants=dict(user.grants),
                    updated=user.updated,
                    revision=self._revision(conn, user.updated),
                )
            ).rowcount
        if not changed:
            raise UserNotFound(user.name)

    def remove(self, name: str, when: datetime) -> None:
        with self._writing() as conn:
            changed = conn.execute(
                update(users)
                .where(users.c.name == name, users.c.removed == False)  # noqa: E712
                .values(
                    password_hash=None,
                    grants={},
                    updated=when,
                    removed=True,
                    revision=self._revision(conn, when),
                )
            ).rowcount
        if not changed:
            raise UserNotFound(name)

    def revision(self) -> int:
        with self._engine().connect() as conn:
            return int(conn.execute(select(func.max(users.c.revision))).scalar() or 0)
