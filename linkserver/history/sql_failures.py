"""The ``login_failures`` table behind :class:`~linkserver.history.failures.FailureTable`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from linkserver.history.errors import unavailable_as
from linkserver.history.failures import FailureCount, FailureTable
from linkserver.history.schema import login_failures

_WHAT = "the failed-login counts could not be read or written"


class SqlFailureTable(FailureTable):
    """``engine()`` gives the history's engine; ``write_lock`` is the history's own writer lock."""

    def __init__(
        self, engine: Callable[[], Engine], write_lock: Callable[[], contextlib.AbstractContextManager[Any]]
    ) -> None:
        self._engine = engine
        self._write_lock = write_lock

    def get(self, rule: str, key: str) -> FailureCount | None:
        c = login_failures.c
        with unavailable_as(_WHAT), self._engine().connect() as conn:
            row = conn.execute(select(login_failures).where(c.rule == rule, c.key == key)).first()
        if row is None:
            return None
        return FailureCount(failures=row.failures, last=row.last, locked_until=row.locked_until)

    def put(self, rule: str, key: str, count: FailureCount) -> None:
        with unavailable_as(_WHAT), self._write_lock(), self._engine().begin() as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            values = {"failures": count.failures, "last": count.last, "locked_until": count.locked_until}
            statement = dialect.insert(login_failures).values(rule=rule, key=key, **values)
            conn.execute(statement.on_conflict_do_update(index_elements=["rule", "key"], set_=values))

    def forget(self, rule: str, key: str) -> None:
        c = login_failures.c
        with unavailable_as(_WHAT), self._write_lock(), self._engine().begin() as conn:
            conn.execute(delete(login_failures).where(c.rule == rule, c.key == key))

    def forget_before(self, when: datetime) -> int:
        c = login_failures.c
        with self._write_lock(), self._engine().begin() as conn:
            statement = delete(login_failures).where(c.last < when, c.locked_until < when)
            return int(conn.execute(statement).rowcount)
