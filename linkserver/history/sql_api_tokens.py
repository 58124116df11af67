"""The ``api_tokens`` table behind :class:`~linkserver.history.api_tokens.TokenTable`."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from linkserver.history.api_tokens import StoredToken, TokenTable
from linkserver.history.errors import unavailable_as
from linkserver.history.schema import api_tokens

_WHAT = "the API tokens could not be read or written"


def _values(token: StoredToken) -> dict[str, Any]:
    return {
        "name": token.name,
        "digest": token.digest,
        "grants": json.dumps(token.grants, sort_keys=True),
        "created": token.created,
        "expires": token.expires,
    }


class SqlTokenTable(TokenTable):
    """``engine()`` gives the history's engine; ``write_lock`` is the history's own writer lock."""

    def __init__(
        self, engine: Callable[[], Engine], write_lock: Callable[[], contextlib.AbstractContextManager[Any]]
    ) -> None:
        self._engine = engine
        self._write_lock = write_lock

    def _insert(self, conn: Any) -> Any:
        return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(api_tokens)

    def put(self, token: StoredToken) -> None:
        values = _values(token)
        with unavailable_as(_WHAT), self._write_lock(), self._engine().begin() as conn:
            statement = self._insert(conn).values(**values)
            conn.execute(statement.on_conflict_do_update(index_elements=["name"], set_=values))
        self.writes += 1

    def add_missing(self, tokens: list[StoredToken]) -> list[str]:
        if not tokens:
            return []
        with unavailable_as(_WHAT), self._write_lock(), self._engine().begin() as conn:
            statement = self._insert(conn).values([_values(token) for token in tokens])
            rows = conn.execute(
                statement.on_conflict_do_nothing(index_elements=["name"]).returning(api_tokens.c.name)
            )
            added = sorted(row.name for row in rows)
        self.writes += 1
        return added

    def remove(self, name: str) -> bool:
        with unavailable_as(_WHAT), self._write_lock(), self._engine().begin() as conn:
            removed = bool(conn.execute(delete(api_tokens).where(api_tokens.c.name == name)).rowcount)
        self.writes += 1
        return removed

    def all(self) -> list[StoredToken]:
        with unavailable_as(_WHAT), self._engine().connect() as conn:
            rows = conn.execute(select(api_tokens).order_by(api_tokens.c.name)).all()
        return [
            StoredToken(
                name=row.name,
                digest=row.digest,
                grants=json.loads(row.grants),
                created=row.created,
                expires=row.expires,
            )
            for row in rows
        ]
