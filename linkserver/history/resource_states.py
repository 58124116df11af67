"""Where the current state of resources lives: the ``resource_states`` table (SQL) or a dict.

A row holds the state a resource's state machine last moved it to, with the
``stateChanged`` event that reported it. No row means the machine's initial
state, so a hundred thousand devices that never changed cost nothing.

Rows are written in the **same transaction** as their ``stateChanged`` event
(:class:`StateWrites`, a :class:`~linkserver.history.same_commit.SameCommit`
hook): the state and the event reporting it are committed together or not at
all, and a transition costs no commit of its own. Reads and deletes are
short transactions of their own.

The write is a **compare-and-set** against the stored state: ``UPDATE ...
WHERE state = :old`` (an upsert when ``old`` is the initial state, which a
missing row stands for). Several nodes sharing one database each decide a
transition against the state they read; if another node's transition of the
same resource was committed in between, the set finds another state, the
commit refuses that stateChanged event (:class:`StaleResourceState`, nothing
stored) and the firer decides again against the state as it is now.

Every implementation passes the contract suite in
``tests/history/test_resource_states.py`` (memory, SQLite, PostgreSQL).
"""

from __future__ import annotations

import abc
import contextlib
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import attrs
import msgspec
from sqlalchemy import Engine, delete, or_, select

from linkserver.core.errors import LinkServerError
from linkserver.core.events import Event
from linkserver.core.paths import display
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


class StaleResourceState(LinkServerError):
    """A transition's compare-and-set found another state than the one it was decided from:
    another node moved the resource meanwhile. Its stateChanged event is not stored."""

    def __init__(self, moves: Sequence[tuple[str, str]]) -> None:
        self.moves = tuple(moves)  # (path, the state the transition was decided from)
        if len(self.moves) == 1:
            path, old = self.moves[0]
            where = f"{display(path)} is no longer {old}"
        else:
            where = f"one of {len(self.moves)} resources is no longer in the state its transition left"
        super().__init__(f"{where}: another node changed its state meanwhile; decide against its state now")


@attrs.frozen
class Move:
    """Where one resource ends up in a batch (``row``) and the stored state it must leave:
    ``old`` (``from_initial``: old is the machine's initial state, which no row also means)."""

    old: str
    from_initial: bool
    row: StoredState


class ResourceStateStore(abc.ABC):
    """The current states of one history database. Thread-safe."""

    @abc.abstractmethod
    def all(self) -> dict[str, StoredState]:
        """Every stored state by path."""

    @abc.abstractmethod
    def get(self, path: str) -> StoredState | None:
        """The stored state of ``path``; None when it never left its initial state."""

    @abc.abstractmethod
    def below(self, path: str) -> dict[str, StoredState]:
        """The stored states of ``path`` and of every context below it (everything for the root)."""

    @abc.abstractmethod
    def forget(self, paths: Iterable[str]) -> None:
        """Delete the states of ``paths`` and of every context below them (removed contexts)."""

    @abc.abstractmethod
    def statements(self, dialect: str, moves: Sequence[Move]) -> list[Statement]:
        """The statements that store ``moves`` in the events' transaction, each only if the
        resource is still in the state it leaves (a check raises StaleResourceState if not)."""

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

    def below(self, path: str) -> dict[str, StoredState]:
        prefix = path + "."
        with self._lock:
            return {k: v for k, v in self._rows.items() if not path or k == path or k.startswith(prefix)}

    def forget(self, paths: Iterable[str]) -> None:
        prefixes = [(path, path + ".") for path in paths]
        with self._lock:
            if any(not path for path, _ in prefixes):  # the root: everything
                self._rows.clear()
            for key in [k for k in self._rows if any(k == p or k.startswith(d) for p, d in prefixes)]:
                del self._rows[key]

    def statements(self, dialect: str, moves: Sequence[Move]) -> list[Statement]:
        return []  # one process, no transactions: the resources' own lock decides

    def committed(self, rows: Sequence[StoredState]) -> None:
        with self._lock:
            for row in rows:
                self._rows[row.path] = row


_COLUMNS = ("path", "machine", "state", "changed", "event_id", "actor", "cause")
# From the initial state: a missing row is that state too, so insert, or update a row that is in it.
_FROM_INITIAL = (
    f"INSERT INTO resource_states ({', '.join(_COLUMNS)}) VALUES ({{marks}}) "
    "ON CONFLICT (path) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:])
    + " WHERE resource_states.state = {mark}"
)
# From any other state: only a row in that very state.
_FROM_STATE = (
    "UPDATE resource_states SET "
    + ", ".join(f"{c} = {{mark}}" for c in _COLUMNS[1:])
    + " WHERE path = {mark} AND state = {mark}"
)
_CAS_SQL = {
    dialect: (
        _FROM_INITIAL.format(marks=", ".join([mark] * 7), mark=mark),
        _FROM_STATE.format(mark=mark),
    )
    for dialect, mark in (("sqlite", "?"), ("postgresql", "%s"))
}


class SqlResourceStateStore(ResourceStateStore):
    """``engine()`` gives the history's engine (valid between its start and stop);
    ``write_lock()`` the history's lock for writes besides its writer's."""

    def __init__(
        self, engine: Callable[[], Engine], write_lock: Callable[[], contextlib.AbstractContextManager[Any]]
    ) -> None:
        self._engine = engine
        self._write_lock = write_lock

    def all(self) -> dict[str, StoredState]:
        with self._engine().connect() as conn:
            return {row.path: _state(row) for row in conn.execute(select(resource_states))}

    def get(self, path: str) -> StoredState | None:
        with self._engine().connect() as conn:
            row = conn.execute(select(resource_states).where(resource_states.c.path == path)).first()
        return _state(row) if row is not None else None

    def below(self, path: str) -> dict[str, StoredState]:
        query = select(resource_states)
        if path:
            column = resource_states.c.path
            query = query.where(or_(column == path, column.startswith(path + ".", autoescape=True)))
        with self._engine().connect() as conn:
            return {row.path: _state(row) for row in conn.execute(query)}

    def forget(self, paths: Iterable[str]) -> None:
        paths = list(paths)
        if not paths:
            return
        column = resource_states.c.path
        below = [column.startswith(path + ".", autoescape=True) for path in paths if path]
        condition = or_(column.in_(paths), *below) if all(paths) else column.is_not(None)
        with self._write_lock(), self._engine().begin() as conn:
            conn.execute(delete(resource_states).where(condition))

    def statements(self, dialect: str, moves: Sequence[Move]) -> list[Statement]:
        if not moves:
            return []
        when: Callable[[datetime], Any] = micros if dialect == "sqlite" else (lambda moment: moment)
        from_initial, from_state = _CAS_SQL[dialect]
        inserts: list[Sequence[Any]] = []
        updates: list[Sequence[Any]] = []
        for move in moves:
            r = move.row
            values = (r.machine, r.state, when(r.changed), r.event_id, r.actor, r.cause)
            if move.from_initial:
                inserts.append((r.path, *values, move.old))
            else:
                updates.append((*values, r.path, move.old))
        found: list[Statement] = []
        for sql, params, kind in ((from_initial, inserts, True), (from_state, updates, False)):
            if params:
                found.append((sql, params, _expect([m for m in moves if m.from_initial is kind])))
        return found

    def committed(self, rows: Sequence[StoredState]) -> None:
        return None


def _expect(moves: Sequence[Move]) -> Callable[[int], None]:
    """The check of the compare-and-set statement of ``moves``: every one of its rows was set."""

    def check(rowcount: int) -> None:
        if rowcount != len(moves):
            raise StaleResourceState([(move.row.path, move.old) for move in moves])

    return check


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


class ExpectedChange(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A transition whose stateChanged event is on its way to history (a Struct: one is made
    per transition, on the firer's thread)."""

    path: str
    machine: str
    old: str
    new: str
    actor: str | None
    cause: str | None
    from_initial: bool = False  # ``old`` is the machine's initial state (no stored row means it too)
    void: bool = False  # its context was removed while it waited: its event stores no state


_SLACK = 8
"""Waiting changes of a resource copied for a batch beyond its events in the batch (see _match)."""


class StateWrites:
    """The same-commit hook that stores a state with the stateChanged event reporting it.

    :meth:`expect` registers a transition before its event is fired; when the writer
    commits a ``stateChanged`` event of that context with the same old and new state, the
    row goes into the same transaction, as a compare-and-set from the state the first such
    change of the batch left. (Matching by content rather than by event id: the id is
    assigned inside the fire, when the writer may already have the event. A plain fire of
    the same change in the same moment could take the row instead: it stores the same state.)

    A change is *pending* from :meth:`expect` until its event is committed (then ``watchers``
    are called with the rows, before it stops being pending) or given up on
    (:meth:`rejected`, :meth:`dropped`): :meth:`latest` is where this process's own
    transitions of a resource have taken it so far.
    """

    def __init__(self, store: ResourceStateStore, event_name: str = "stateChanged") -> None:
        self.store = store
        self.event_name = event_name
        self.watchers: list[Callable[[Sequence[StoredState]], None]] = []
        self._pending: dict[str, list[ExpectedChange]] = {}
        self._lock = threading.Lock()
        # (batch key, matched, moves) of the batch being committed (see _moves)
        self._last: tuple[tuple[int, int, int], list[tuple[ExpectedChange, Event]], list[Move]] | None = None

    def expect(self, change: ExpectedChange) -> None:
        with self._lock:
            waiting = self._pending.get(change.path)
            if waiting is None:
                self._pending[change.path] = [change]
            else:
                waiting.append(change)

    def latest(self, path: str) -> ExpectedChange | None:
        """The newest pending change of ``path``, or None.

        Without the lock: the path's list is appended to by its transitions (which its caller
        serialises) and shortened in place when changes are dropped or committed, each step
        atomic (the GIL); its last item, read at any moment, was the answer at that moment."""
        waiting = self._pending.get(path)
        try:
            latest = waiting[-1] if waiting else None
        except IndexError:  # dropped in between
            return None
        # Void changes are older than every live one of the path: a void last one means no live one.
        return None if latest is None or latest.void else latest

    def void(self, gone: Callable[[str], bool]) -> None:
        """The contexts ``gone`` says are removed: their waiting changes store no state and are
        no longer where the resource is (a context added again at the path starts over).

        They stay in line, marked, so that the removed context's stateChanged events still on
        their way to history match them and not a new context's changes; a batch being
        committed meanwhile is matched again for its ``committed`` (its row, written already,
        is for the remover to delete: it waits for the write lock that the commit holds)."""
        with self._lock:
            for path, waiting in self._pending.items():
                if gone(path):
                    waiting[:] = [c if c.void else msgspec.structs.replace(c, void=True) for c in waiting]
            self._last = None

    def dropped(self, change: ExpectedChange) -> None:
        """The transition's event was not fired after all (refused): forget it."""
        with self._lock:
            waiting = self._pending.get(change.path)
            if waiting is None:
                return
            # This very change if it waits, else the latest equal one (made void meanwhile, maybe).
            found = next((i for i in range(len(waiting) - 1, -1, -1) if waiting[i] is change), None)
            if found is None:
                void = msgspec.structs.replace(change, void=True)
                found = next(
                    (i for i in range(len(waiting) - 1, -1, -1) if waiting[i] in (change, void)), None
                )
            if found is not None:
                del waiting[found]
            if not waiting:
                del self._pending[change.path]

    def _match(self, events: Sequence[Event], whole: bool = False) -> list[tuple[ExpectedChange, Event]]:
        if not self._pending:
            return []
        name = self.event_name
        changed = [event for event in events if event.name == name]
        if not changed:
            return []
        counts: dict[str, int] = {}
        for event in changed:
            counts[event.context] = counts.get(event.context, 0) + 1
        # The lists of the batch's resources, copied under the lock; matched outside it, so a
        # transition's expect() never waits for a whole batch. Every event of the batch was
        # expected before it was queued, and a resource's changes are expected in the order its
        # events are queued: its changes in this batch are its oldest waiting ones, and only
        # those are copied (the writer may be a whole queue behind: copying every waiting
        # change, twice a batch, cost more than the matching). Not found there (an event
        # nobody expected, or one matching a change out of its turn): everything, once.
        with self._lock:
            pending = self._pending
            lists = {
                path: waiting[:] if whole else waiting[: count + _SLACK]
                for path, count in counts.items()
                if (waiting := pending.get(path))
            }
        if not lists:
            return []
        found: list[tuple[ExpectedChange, Event]] = []
        # Each search starts after the last one matched (linear in the batch, however many
        # changes of one resource are waiting).
        cursors: dict[str, int] = {}
        for event in changed:
            path = event.context
            waiting = lists.get(path)
            if waiting is None:
                continue
            record = event.data[0] if event.data else {}
            old, new = record.get("old"), record.get("new")
            for index in range(cursors.get(path, 0), len(waiting)):
                change = waiting[index]
                if change.old != old or change.new != new:
                    continue
                cursors[path] = index + 1
                found.append((change, event))
                break
            else:
                if not whole and len(waiting) == counts[path] + _SLACK:  # cut short: look at all
                    return self._match(events, whole=True)
        return found

    def _matched_moves(
        self, events: Sequence[Event]
    ) -> tuple[list[tuple[ExpectedChange, Event]], list[Move]]:
        """What ``events`` match and the moves they make; the commit of a batch asks for them
        twice (its statements, then committed), so the last answer is kept for the same batch."""
        if not events:
            return [], []
        key = (len(events), events[0].id, events[-1].id)  # ids are unique: one batch, one key
        last = self._last
        if last is not None and last[0] == key:
            return last[1], last[2]
        matched = self._match(events)
        moves = _moves(matched) if matched else []
        self._last = (key, matched, moves)
        return matched, moves

    def statements(self, dialect: str, events: Sequence[Event]) -> Sequence[Statement]:
        """Does not consume what it matches: a failed commit offers the same events again."""
        _, moves = self._matched_moves(events)
        return self.store.statements(dialect, moves) if moves else []

    def committed(self, events: Sequence[Event]) -> None:
        matched, moves = self._matched_moves(events)
        self._last = None
        if not matched:
            return
        rows = [move.row for move in moves]
        self.store.committed(rows)
        # Before the changes stop being pending: no gap for readers.
        for watcher in self.watchers if rows else ():
            watcher(rows)
        self._forget(matched)

    def rejected(self, events: Sequence[Event]) -> None:
        """The writer gave up on ``events``: their changes never happened."""
        self._last = None
        self._forget(self._match(events))

    def _forget(self, matched: Sequence[tuple[ExpectedChange, Event]]) -> None:
        if not matched:
            return
        done: dict[str, list[ExpectedChange]] = {}
        for change, _ in matched:
            done.setdefault(change.path, []).append(change)
        with self._lock:
            for path, changes in done.items():
                waiting = self._pending.get(path)
                if waiting is None:
                    continue
                count = len(changes)
                # Matched in the order they wait: nearly always the oldest ones, a prefix, dropped
                # in place (the rest is neither filtered nor copied: thousands may wait).
                if len(waiting) >= count and all(a is b for a, b in zip(waiting, changes, strict=False)):
                    del waiting[:count]
                else:
                    ids = {id(change) for change in changes}
                    waiting[:] = [c for c in waiting if id(c) not in ids]
                if not waiting:
                    del self._pending[path]


def _moves(matched: Sequence[tuple[ExpectedChange, Event]]) -> list[Move]:
    """Per resource: the state its first matched change leaves and the row of its newest one (a
    batch holding many changes of one resource writes only where it ended up)."""
    first: dict[str, ExpectedChange] = {}
    last: dict[str, tuple[ExpectedChange, Event]] = {}
    for change, event in matched:
        if change.void:  # its context was removed: its event is stored, its state is not
            continue
        path = change.path
        if path not in first:
            first[path] = change
        known = last.get(path)
        if known is None or known[1].id <= event.id:
            last[path] = (change, event)
    moves = []
    for path, (change, event) in last.items():
        row = StoredState(
            path=path,
            machine=change.machine,
            state=change.new,
            changed=event.created,
            event_id=event.id,
            actor=change.actor,
            cause=change.cause,
        )
        start = first[path]
        moves.append(Move(start.old, start.from_initial, row))
    return moves


def open_resource_states(history: HistoryStore) -> ResourceStateStore:
    """The state store of ``history``'s database (memory for the memory store)."""
    from linkserver.history.sql import SqlHistoryStore  # SQLAlchemy's store only when used

    if isinstance(history, SqlHistoryStore):
        return SqlResourceStateStore(lambda: history.engine, lambda: history.write_lock)
    return MemoryResourceStateStore()
