"""Where the current state of resources lives: the ``resource_states`` table (SQL) or a dict.

A row holds the state a resource's state machine last moved it to, with the
``stateChanged`` event that reported it. No row means the machine's initial
state, so a hundred thousand devices that never changed cost nothing.

Rows are written in the **same transaction** as their ``stateChanged`` event
(:class:`StateWrites`, a :class:`~linkserver.history.same_commit.SameCommit`
hook): the state and the event reporting it are committed together or not at
all, and a transition costs no commit of its own. Reads and deletes are
short transactions of their own.

Every implementation passes the contract suite in
``tests/history/test_resource_states.py`` (memory, SQLite, PostgreSQL).
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import attrs
import msgspec
from sqlalchemy import Engine, delete, or_, select

from linkserver.core.events import Event
from linkserver.history.base import HistoryStore
from linkserver.history.codec import micros
from linkserver.history.same_commit import Statement
from linkserver.history.schema import resource_states


@attrs.frozen(kw_only=True)
class StoredState:
    path: str
    machine: str
    state: str
    changed: datetime
    event_id: int
    actor: str | None = None
    cause: str | None = None


class ResourceStateStore(abc.ABC):
    """The current states of one history database. Thread-safe."""

    @abc.abstractmethod
    def all(self) -> dict[str, StoredState]:
        """Every stored state by path."""

    @abc.abstractmethod
    def get(self, path: str) -> StoredState | None:
        """The stored state of ``path``; None when it never left its initial state."""

    @abc.abstractmethod
    def forget(self, paths: Iterable[str]) -> None:
        """Delete the states of ``paths`` and of every context below them (removed contexts)."""

    @abc.abstractmethod
    def statements(self, dialect: str, rows: Sequence[StoredState]) -> list[Statement]:
        """The statements that store ``rows`` (oldest first) in the events' transaction."""

    @abc.abstractmethod
    def committed(self, rows: Sequence[StoredState]) -> None:
        """``rows`` are committed (the memory store keeps them now)."""


class MemoryResourceStateStore(ResourceStateStore):
    def __init__(self) -> None:
        self._rows: dict[str, StoredState] = {}
        self._lock = threading.Lock()

    def all(self) -> dict[str, StoredState]:
        with self._lock:
            return dict(self._rows)

    def get(self, path: str) -> StoredState | None:
        with self._lock:
            return self._rows.get(path)

    def forget(self, paths: Iterable[str]) -> None:
        prefixes = [(path, path + ".") for path in paths]
        with self._lock:
            if any(not path for path, _ in prefixes):  # the root: everything
                self._rows.clear()
            for key in [k for k in self._rows if any(k == p or k.startswith(d) for p, d in prefixes)]:
                del self._rows[key]

    def statements(self, dialect: str, rows: Sequence[StoredState]) -> list[Statement]:
        return []

    def committed(self, rows: Sequence[StoredState]) -> None:
        with self._lock:
            for row in rows:
                self._rows[row.path] = row


_COLUMNS = ("path", "machine", "state", "changed", "event_id", "actor", "cause")
_UPSERT = (
    f"INSERT INTO resource_states ({', '.join(_COLUMNS)}) VALUES ({{marks}}) "
    "ON CONFLICT (path) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:])
    # A retried batch must not take a resource back to an older state.
    + " WHERE resource_states.event_id <= excluded.event_id"
)
_UPSERT_SQL = {
    "sqlite": _UPSERT.format(marks=", ".join("?" * 7)),
    "postgresql": _UPSERT.format(marks=", ".join(["%s"] * 7)),
}


class SqlResourceStateStore(ResourceStateStore):
    """``engine()`` gives the history's engine (valid between its start and stop)."""

    def __init__(self, engine: Callable[[], Engine]) -> None:
        self._engine = engine

    def all(self) -> dict[str, StoredState]:
        with self._engine().connect() as conn:
            return {row.path: _state(row) for row in conn.execute(select(resource_states))}

    def get(self, path: str) -> StoredState | None:
        with self._engine().connect() as conn:
            row = conn.execute(select(resource_states).where(resource_states.c.path == path)).first()
        return _state(row) if row is not None else None

    def forget(self, paths: Iterable[str]) -> None:
        paths = list(paths)
        if not paths:
            return
        column = resource_states.c.path
        below = [column.startswith(path + ".", autoescape=True) for path in paths if path]
        condition = or_(column.in_(paths), *below) if all(paths) else column.is_not(None)
        with self._engine().begin() as conn:
            conn.execute(delete(resource_states).where(condition))

    def statements(self, dialect: str, rows: Sequence[StoredState]) -> list[Statement]:
        if not rows:
            return []
        when: Callable[[datetime], Any] = micros if dialect == "sqlite" else (lambda moment: moment)
        params = [(r.path, r.machine, r.state, when(r.changed), r.event_id, r.actor, r.cause) for r in rows]
        return [(_UPSERT_SQL[dialect], params)]

    def committed(self, rows: Sequence[StoredState]) -> None:
        return None


def _state(row: Any) -> StoredState:
    return StoredState(
        path=row.path,
        machine=row.machine,
        state=row.state,
        changed=row.changed,
        event_id=row.event_id,
        actor=row.actor,
        cause=row.cause,
    )


class ExpectedChange(msgspec.Struct, frozen=True, kw_only=True):
    """A transition whose stateChanged event is on its way to history (a Struct: one is made
    per transition, on the firer's thread)."""

    path: str
    machine: str
    old: str
    new: str
    actor: str | None
    cause: str | None


class StateWrites:
    """The same-commit hook that stores a state with the stateChanged event reporting it.

    :meth:`expect` registers a transition before its event is fired; when the writer
    commits a ``stateChanged`` event of that context with the same old and new state, the
    row goes into the same transaction. (Matching by content rather than by event id: the
    id is assigned inside the fire, when the writer may already have the event. A plain
    fire of the same change in the same moment could take the row instead: it stores the
    same state.)
    """

    def __init__(self, store: ResourceStateStore, event_name: str = "stateChanged") -> None:
        self.store = store
        self.event_name = event_name
        self._pending: dict[str, list[ExpectedChange]] = {}
        self._lock = threading.Lock()

    def expect(self, change: ExpectedChange) -> None:
        with self._lock:
            self._pending.setdefault(change.path, []).append(change)

    def dropped(self, change: ExpectedChange) -> None:
        """The transition's event was not fired after all (refused): forget it."""
        with self._lock:
            waiting = self._pending.get(change.path)
            if waiting is None:
                return
            # This very change if it waits, else the latest equal one.
            found = next((i for i in range(len(waiting) - 1, -1, -1) if waiting[i] is change), None)
            if found is None:
                found = next((i for i in range(len(waiting) - 1, -1, -1) if waiting[i] == change), None)
            if found is not None:
                del waiting[found]
            if not waiting:
                del self._pending[change.path]

    def _match(self, events: Sequence[Event]) -> list[tuple[ExpectedChange, StoredState]]:
        if not self._pending:
            return []
        found: list[tuple[ExpectedChange, StoredState]] = []
        name = self.event_name
        with self._lock:
            # A resource's transitions are made one at a time, so its events reach the writer in
            # the order its changes were expected: each search starts after the last one matched
            # (linear in the batch, however many changes of one resource are waiting).
            cursors: dict[str, int] = {}
            for event in events:
                if event.name != name:
                    continue
                waiting = self._pending.get(event.context)
                if not waiting:
                    continue
                record = event.data[0] if event.data else {}
                old, new = record.get("old"), record.get("new")
                for index in range(cursors.get(event.context, 0), len(waiting)):
                    change = waiting[index]
                    if change.old != old or change.new != new:
                        continue
                    cursors[event.context] = index + 1
                    row = StoredState(
                        path=change.path,
                        machine=change.machine,
                        state=change.new,
                        changed=event.created,
                        event_id=event.id,
                        actor=change.actor,
                        cause=change.cause,
                    )
                    found.append((change, row))
                    break
        return found

    def statements(self, dialect: str, events: Sequence[Event]) -> Sequence[Statement]:
        """Does not consume what it matches: a failed commit offers the same events again."""
        return self.store.statements(dialect, _latest(row for _, row in self._match(events)))

    def committed(self, events: Sequence[Event]) -> None:
        matched = self._match(events)
        if not matched:
            return
        self.store.committed(_latest(row for _, row in matched))
        done = {id(change) for change, _ in matched}
        with self._lock:
            for path in {change.path for change, _ in matched}:
                left = [c for c in self._pending.get(path, ()) if id(c) not in done]
                if left:
                    self._pending[path] = left
                else:
                    self._pending.pop(path, None)


def _latest(rows: Iterable[StoredState]) -> list[StoredState]:
    """The newest row of each resource: a batch holding many changes of one resource writes
    only where it ended up."""
    newest: dict[str, StoredState] = {}
    for row in rows:
        known = newest.get(row.path)
        if known is None or known.event_id <= row.event_id:
            newest[row.path] = row
    return list(newest.values())


def open_resource_states(history: HistoryStore) -> ResourceStateStore:
    """The state store of ``history``'s database (memory for the memory store)."""
    from linkserver.history.sql import SqlHistoryStore  # SQLAlchemy's store only when used

    if isinstance(history, SqlHistoryStore):
        return SqlResourceStateStore(lambda: history.engine)
    return MemoryResourceStateStore()
