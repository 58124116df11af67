"""The outbox of an outbound bridge: the persistent events it still owes its broker.

A row ``(bridge, node, event_id)`` is written in the same transaction as the
event (a :class:`~linkserver.history.same_commit.SameCommit` hook), so an event
is committed with its row or not at all, and is deleted once the broker
confirmed the event. Whatever is in the table is owed: after a crash, an
outage longer than the bridge's memory buffer, or a restart, the bridge reads
it back in event id order (:meth:`Outbox.page`). Rows of one node are that
node's: several nodes on one database each drain their own.

An event purged before its bridge could publish it leaves an orphan row;
:meth:`Outbox.page` deletes those as it meets them.
"""

from __future__ import annotations

import abc
import bisect
import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Engine, bindparam, func, literal, select

from linkserver.core.events import Event
from linkserver.history.same_commit import Statement
from linkserver.history.schema import bridge_outbox, events

log = logging.getLogger("linkserver.history.outbox")


class Outbox(abc.ABC):
    """The rows of one bridge on one node. Thread-safe."""

    def __init__(self, bridge: str, node: int) -> None:
        self.bridge = bridge
        self.node = node
        self.depth = 0  # rows in the table (counted from start: read once, then kept up to date)
        self._lock = threading.Lock()

    def hook(
        self,
        wants: Callable[[Event], bool],
        on_committed: Callable[[Sequence[Event]], None],
        on_rejected: Callable[[Sequence[Event]], None] | None = None,
    ) -> OutboxHook:
        """The same-commit hook writing a row for each event ``wants``; after the commit it
        calls ``on_committed`` with them (in the committing thread: must be quick), and
        ``on_rejected`` with those the writer gave up on for good (no row, no event)."""
        return OutboxHook(self, wants, on_committed, on_rejected)

    @abc.abstractmethod
    def open(self) -> None:
        """Count the rows left by an earlier run (history must be started)."""

    @abc.abstractmethod
    def page(self, after: int, limit: int) -> list[Event]:
        """Up to ``limit`` owed events with ids above ``after``, oldest first."""

    @abc.abstractmethod
    def delete(self, ids: Iterable[int]) -> None:
        """Forget these events: the broker has them. Raises the database's error if it is down."""

    def _statements(self, dialect: str, wanted: Sequence[Event]) -> list[Statement]:
        return []

    def _committed(self, wanted: Sequence[Event]) -> None:
        with self._lock:
            self.depth += len(wanted)


class OutboxHook:
    """A :class:`~linkserver.history.same_commit.SameCommit` for one :class:`Outbox`."""

    def __init__(
        self,
        outbox: Outbox,
        wants: Callable[[Event], bool],
        on_committed: Callable[[Sequence[Event]], None],
        on_rejected: Callable[[Sequence[Event]], None] | None = None,
    ) -> None:
        self.outbox = outbox
        self.wants = wants
        self.on_committed = on_committed
        self.on_rejected = on_rejected

    def statements(self, dialect: str, events: Sequence[Event]) -> Sequence[Statement]:
        wants = self.wants
        wanted = [event for event in events if wants(event)]
        return self.outbox._statements(dialect, wanted) if wanted else []

    def committed(self, events: Sequence[Event]) -> None:
        wants = self.wants
        wanted = [event for event in events if wants(event)]
        if wanted:
            self.outbox._committed(wanted)
            self.on_committed(wanted)

    def rejected(self, events: Sequence[Event]) -> None:
        """The writer gave up on ``events`` (see :class:`~linkserver.history.same_commit.RejectionAware`)."""
        if self.on_rejected is not None:
            wants = self.wants
            wanted = [event for event in events if wants(event)]
            if wanted:
                self.on_rejected(wanted)


class MemoryOutbox(Outbox):
    """For the memory history store: the rows live as long as the process."""

    def __init__(self, bridge: str, node: int) -> None:
        super().__init__(bridge, node)
        self._rows: dict[int, Event] = {}
        self._ids: list[int] = []

    def open(self) -> None:
        return None

    def _committed(self, wanted: Sequence[Event]) -> None:
        with self._lock:
            for event in wanted:
                if event.id not in self._rows:
                    self._rows[event.id] = event
                    bisect.insort(self._ids, event.id)
            self.depth = len(self._rows)

    def page(self, after: int, limit: int) -> list[Event]:
        with self._lock:
            start = bisect.bisect_right(self._ids, after)
            return [self._rows[i] for i in self._ids[start : start + limit]]

    def delete(self, ids: Iterable[int]) -> None:
        with self._lock:
            for event_id in ids:
                if self._rows.pop(event_id, None) is not None:
                    del self._ids[bisect.bisect_left(self._ids, event_id)]
            self.depth = len(self._rows)


class SqlOutbox(Outbox):
    """The ``bridge_outbox`` table of a SQL history (SQLite or PostgreSQL)."""

    def __init__(
        self,
        bridge: str,
        node: int,
        engine: Callable[[], Engine],
        write_lock: Callable[[], contextlib.AbstractContextManager[Any]],
    ) -> None:
        super().__init__(bridge, node)
        self._engine = engine
        self._write_lock = write_lock
        self._mine = (bridge_outbox.c.bridge == bridge) & (bridge_outbox.c.node == node)
        self._reader: Callable[[Any], Event] | None = None
        self._query: Any = None

    def open(self) -> None:
        with self._engine().connect() as conn:
            count = conn.execute(select(func.count()).select_from(bridge_outbox).where(self._mine)).scalar()
        with self._lock:
            self.depth = int(count or 0)

    def _statements(self, dialect: str, wanted: Sequence[Event]) -> list[Statement]:
        mark = "?" if dialect == "sqlite" else "%s"
        sql = f"INSERT INTO bridge_outbox (bridge, node, event_id) VALUES ({mark}, {mark}, {mark})"
        bridge, node = self.bridge, self.node
        return [(sql, [(bridge, node, event.id) for event in wanted])]

    def page(self, after: int, limit: int) -> list[Event]:
        engine = self._engine()
        if self._reader is None:
            self._reader, self._query = _page_query(engine.dialect.name, self._mine)
        read = self._reader
        with engine.connect() as conn:
            rows = conn.execute(self._query, {"after": after, "limit": limit}).all()
        found, orphans = [], []
        for row in rows:
            if row[1] is None:
                orphans.append(row[0])
            else:
                found.append(read(row[1:]))
        if orphans:  # purged before the broker got them: nothing to send any more
            log.warning(
                "bridge %s: %d events expired and were purged before they could be published",
                self.bridge,
                len(orphans),
            )
            self.delete(orphans)
        return found

    def delete(self, ids: Iterable[int]) -> None:
        # Driver SQL, not a Core DELETE ... IN: building and compiling that statement for each
        # batch of confirmed rows cost more than the rows' deletion (the drain deletes tens of
        # thousands). SQLite: one prepared DELETE by primary key, executemany (rowcount summed);
        # PostgreSQL: one DELETE of the ids as an array.
        ids = list(ids)
        if not ids:
            return
        engine = self._engine()
        deleted = 0
        with self._write_lock(), engine.begin() as conn:
            cursor = conn.connection.cursor()
            try:
                if engine.dialect.name == "sqlite":
                    bridge, node = self.bridge, self.node
                    cursor.executemany(_DELETE_SQLITE, [(bridge, node, event_id) for event_id in ids])
                    deleted = cursor.rowcount
                else:
                    cursor.execute(_DELETE_ANY, (self.bridge, self.node, ids))
                    deleted = cursor.rowcount
            finally:
                cursor.close()
        with self._lock:
            self.depth = max(0, self.depth - deleted)


_DELETE_SQLITE = "DELETE FROM bridge_outbox WHERE bridge = ? AND node = ? AND event_id = ?"
_DELETE_ANY = "DELETE FROM bridge_outbox WHERE bridge = %s AND node = %s AND event_id = ANY(%s)"


def _page_query(dialect: str, mine: Any) -> tuple[Callable[[Any], Event], Any]:
    """The read of a page of owed events: the outbox row's event id, then the event's columns
    as the history's own reader takes them (times and data as stored, no per-row type
    processing: the drain after an outage reads tens of thousands), None where it was purged."""
    from linkserver.history.queries import event_columns, row_reader  # history.base imports this module

    query = (
        # acknowledgements: not carried by a bridge's message
        select(bridge_outbox.c.event_id, *event_columns(dialect, literal(False)))
        .select_from(bridge_outbox.outerjoin(events, events.c.id == bridge_outbox.c.event_id))
        .where(mine & (bridge_outbox.c.event_id > bindparam("after")))
        .order_by(bridge_outbox.c.event_id)
        .limit(bindparam("limit"))
    )
    return row_reader(dialect), query
