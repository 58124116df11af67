"""The ``device_owners`` table behind :class:`~linkserver.history.device_owners.DeviceOwnerTable`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Engine, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from linkserver.history.device_owners import DeviceOwnerTable, OwnerRow
from linkserver.history.schema import device_owners


def _row(row: Any) -> OwnerRow:
    return OwnerRow(
        path=row.path, controller=row.controller, principal=row.principal, node=row.node, claimed=row.claimed
    )


class SqlDeviceOwnerTable(DeviceOwnerTable):
    """``engine()`` gives the history's engine; ``write_lock`` is the history's own writer lock."""

    def __init__(
        self, engine: Callable[[], Engine], write_lock: Callable[[], contextlib.AbstractContextManager[Any]]
    ) -> None:
        self._engine = engine
        self._write_lock = write_lock

    def get(self, path: str) -> OwnerRow | None:
        with self._engine().connect() as conn:
            row = conn.execute(select(device_owners).where(device_owners.c.path == path)).first()
        return _row(row) if row is not None else None

    def under(self, path: str) -> list[OwnerRow]:
        where = device_owners.c.path == path
        if path:  # a prefix range on the primary key (byte order on PostgreSQL)
            where = or_(where, (device_owners.c.path > path + ".") & (device_owners.c.path < path + "/"))
        else:
            where = device_owners.c.path.is_not(None)
        with self._engine().connect() as conn:
            rows = conn.execute(select(device_owners).where(where).order_by(device_owners.c.path))
            return [_row(row) for row in rows]

    def put(self, row: OwnerRow, replaces: OwnerRow | None) -> bool:
        values = {
            "path": row.path,
            "controller": row.controller,
            "principal": row.principal,
            "node": row.node,
            "claimed": row.claimed,
        }
        try:
            with self._write_lock(), self._engine().begin() as conn:
                if replaces is None:
                    conn.execute(insert(device_owners).values(**values))
                    return True
                c = device_owners.c
                statement = (
                    update(device_owners)
                    .where(
                        c.path == replaces.path,
                        c.controller == replaces.controller,
                        c.principal.is_not_distinct_from(replaces.principal),
                        c.node == replaces.node,
                    )
                    .values(**values)
                )
                return bool(conn.execute(statement).rowcount)
        except IntegrityError:  # inserted by another node meanwhile
            return False

    def delete(self, paths: Iterable[str], node: int) -> int:
        chosen = sorted(set(paths))
        if not chosen:
            return 0
        with self._write_lock(), self._engine().begin() as conn:
            statement = delete(device_owners).where(
                device_owners.c.path.in_(chosen), device_owners.c.node == node
            )
            return int(conn.execute(statement).rowcount)

    def delete_node(self, node: int) -> int:
        with self._write_lock(), self._engine().begin() as conn:
            return int(conn.execute(delete(device_owners).where(device_owners.c.node == node)).rowcount)
