"""The alarm list: the ``alarms`` table (SQL) or a dict, and the hook that writes it (docs/alarms.md).

A row per reduction key: first and last occurrence, count, last event, level, state
(open, acknowledged, cleared), acknowledgements and what cleared it. Rows change in
the **same transaction** as the events that raise, reduce or clear them
(:class:`AlarmWrites`, a :class:`~linkserver.history.same_commit.SameCommit` hook),
so a crash never leaves the two apart. A batch's events are folded per key in
memory first (:func:`linkserver.core.alarm_fold.fold`): one upsert row per key.
Operators' changes (acknowledge, unacknowledge, clear), the auto-clear sweep and the
purge of cleared alarms are short transactions of their own.

Every implementation passes the contract suite in ``tests/history/test_alarms.py``
(memory, SQLite, PostgreSQL).
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import attrs

from linkserver.core.alarm_fold import KeyChange, Resolve, fold
from linkserver.core.alarm_records import Alarm, apply
from linkserver.core.alarms import AlarmState
from linkserver.core.errors import LinkServerError
from linkserver.core.events import Acknowledgement, Event
from linkserver.core.filters import Filter
from linkserver.core.levels import Level
from linkserver.history.base import HistoryStore, Visibility
from linkserver.history.matching import compile_masks, decode_cursor, encode_cursor, masks_test
from linkserver.history.same_commit import Statement

if TYPE_CHECKING:
    from linkserver.history.alarm_triggers import AlarmTriggers


class AlarmNotFound(LinkServerError, LookupError):
    """No alarm with that id (or one the reader may not see)."""

    def __init__(self, alarm_id: int) -> None:
        super().__init__(f"no alarm {alarm_id}; list them with 'linkserver alarms' or GET /alarms")
        self.alarm_id = alarm_id


@attrs.frozen(kw_only=True)
class AlarmQuery:
    """What to list. ``states`` empty: every state. Masks, names, levels, ``filter`` and
    ``visible`` as in :class:`~linkserver.history.base.HistoryQuery` (the filter reads the
    alarm's context, name, level and id, and its last event's other fields and data);
    ``since`` and ``until`` bound the alarm's last occurrence (``since <= last < until``).
    Pages are by alarm id (newest alarms first unless ``newest_first`` is False);
    ``cursor`` is the previous page's ``next_cursor``."""

    masks: tuple[str, ...] = ("**",)
    names: tuple[str, ...] = ()
    states: tuple[AlarmState, ...] = ()
    min_level: Level | None = None
    max_level: Level | None = None
    since: datetime | None = None
    until: datetime | None = None
    filter: Filter | None = None
    visible: Visibility | None = attrs.field(default=None, eq=False)
    newest_first: bool = True
    limit: int = 100
    cursor: str | None = None


@attrs.frozen
class AlarmPage:
    alarms: tuple[Alarm, ...]
    next_cursor: str | None


Changed = Callable[[Sequence[KeyChange]], None]


class AlarmStore(abc.ABC):
    """The alarm list of one history database. Thread-safe."""

    @abc.abstractmethod
    def statements(self, dialect: str, changes: Sequence[KeyChange]) -> list[Statement]:
        """The statements that apply ``changes`` in the transaction of their events."""

    @abc.abstractmethod
    def committed(self, changes: Sequence[KeyChange], events: Sequence[Event]) -> None:
        """``changes`` are committed (the memory store applies them now)."""

    def triggered(self) -> None:  # noqa: B027 - a no-op unless the store remembers what it wrote
        """A batch's alarms were written by triggers (SQLite), not by :meth:`statements`."""

    @abc.abstractmethod
    def get(self, alarm_id: int) -> Alarm:
        """The alarm with its acknowledgements; AlarmNotFound if absent."""

    @abc.abstractmethod
    def by_keys(self, keys: Iterable[str]) -> list[Alarm]:
        """The alarms of these reduction keys that exist."""

    @abc.abstractmethod
    def query(self, query: AlarmQuery) -> AlarmPage:
        """One page of matching alarms."""

    @abc.abstractmethod
    def acknowledge(self, alarm_id: int, acknowledgement: Acknowledgement) -> Alarm:
        """Add an acknowledgement; an open alarm becomes acknowledged (a cleared one stays cleared)."""

    @abc.abstractmethod
    def unacknowledge(self, alarm_id: int) -> Alarm:
        """Remove its acknowledgements; an acknowledged alarm becomes open again."""

    @abc.abstractmethod
    def clear(self, alarm_id: int, user: str, now: datetime) -> Alarm:
        """Clear it by hand (nothing changes for a cleared alarm)."""

    @abc.abstractmethod
    def auto_clear(self, now: datetime) -> list[Alarm]:
        """Clear every alarm whose ``auto_clear_at`` is at or before ``now``; returns them."""

    @abc.abstractmethod
    def purge_cleared(self, before: datetime) -> int:
        """Delete alarms cleared before ``before`` (and acknowledgements of gone alarms)."""


# -- memory ------------------------------------------------------------------------------


class MemoryAlarmStore(AlarmStore):
    def __init__(self) -> None:
        self._by_key: dict[str, Alarm] = {}
        self._lock = threading.Lock()

    def statements(self, dialect: str, changes: Sequence[KeyChange]) -> list[Statement]:
        return []

    def committed(self, changes: Sequence[KeyChange], events: Sequence[Event]) -> None:
        by_id = {event.id: event for event in events}
        with self._lock:
            for change in changes:
                after = apply(self._by_key.get(change.key), change, by_id.get(change.last_id))
                if after is not None:
                    self._by_key[change.key] = after

    def _find(self, alarm_id: int) -> Alarm:
        for alarm in self._by_key.values():
            if alarm.id == alarm_id:
                return alarm
        raise AlarmNotFound(alarm_id)

    def get(self, alarm_id: int) -> Alarm:
        with self._lock:
            return self._find(alarm_id)

    def by_keys(self, keys: Iterable[str]) -> list[Alarm]:
        with self._lock:
            return [self._by_key[key] for key in keys if key in self._by_key]

    def query(self, query: AlarmQuery) -> AlarmPage:
        test = alarm_test(query)
        with self._lock:
            alarms = sorted(self._by_key.values(), key=lambda a: a.id, reverse=query.newest_first)
        if query.cursor is not None:
            after = decode_cursor(query.cursor)
            alarms = [a for a in alarms if (a.id < after if query.newest_first else a.id > after)]
        found = [alarm for alarm in alarms if test(alarm)]
        page = found[: query.limit]
        more = len(found) > query.limit
        return AlarmPage(tuple(page), encode_cursor(page[-1].id) if more else None)

    def _replace(self, alarm: Alarm, **changes: object) -> Alarm:
        updated = attrs.evolve(alarm, **changes)  # type: ignore[arg-type]
        self._by_key[alarm.key] = updated
        return updated

    def acknowledge(self, alarm_id: int, acknowledgement: Acknowledgement) -> Alarm:
        with self._lock:
            alarm = self._find(alarm_id)
            state = AlarmState.ACKNOWLEDGED if alarm.state is AlarmState.OPEN else alarm.state
            return self._replace(
                alarm, state=state, acknowledgements=(*alarm.acknowledgements, acknowledgement)
            )

    def unacknowledge(self, alarm_id: int) -> Alarm:
        with self._lock:
            alarm = self._find(alarm_id)
            state = AlarmState.OPEN if alarm.state is AlarmState.ACKNOWLEDGED else alarm.state
            return self._replace(alarm, state=state, acknowledgements=())

    def clear(self, alarm_id: int, user: str, now: datetime) -> Alarm:
        with self._lock:
            alarm = self._find(alarm_id)
            if alarm.state is AlarmState.CLEARED:
                return alarm
            return self._replace(
                alarm,
                state=AlarmState.CLEARED,
                cleared=now,
                cleared_by="user",
                cleared_user=user,
                cleared_event=None,
                auto_clear_at=None,
            )

    def auto_clear(self, now: datetime) -> list[Alarm]:
        cleared = []
        with self._lock:
            for alarm in list(self._by_key.values()):
                due = alarm.auto_clear_at
                if due is not None and due <= now and alarm.state is not AlarmState.CLEARED:
                    cleared.append(
                        self._replace(
                            alarm,
                            state=AlarmState.CLEARED,
                            cleared=now,
                            cleared_by="auto_clear",
                            auto_clear_at=None,
                        )
                    )
        return cleared

    def purge_cleared(self, before: datetime) -> int:
        with self._lock:
            gone = [
                key
                for key, alarm in self._by_key.items()
                if alarm.state is AlarmState.CLEARED and alarm.cleared is not None and alarm.cleared < before
            ]
            for key in gone:
                del self._by_key[key]
        return len(gone)


def alarm_test(query: AlarmQuery) -> Callable[[Alarm], bool]:
    """A Python test equivalent to every criterion of ``query`` but its cursor."""
    tests: list[Callable[[Alarm], bool]] = []
    masks = compile_masks(query.masks)
    if not any(mask.segments == ("**",) for mask in masks):
        in_masks = masks_test(masks)
        tests.append(lambda a: in_masks(a.context))
    if query.names:
        names = frozenset(query.names)
        tests.append(lambda a: a.name in names)
    if query.states:
        states = frozenset(query.states)
        tests.append(lambda a: a.state in states)
    if query.min_level is not None:
        low = int(query.min_level)
        tests.append(lambda a: a.level >= low)
    if query.max_level is not None:
        high = int(query.max_level)
        tests.append(lambda a: a.level <= high)
    if query.since is not None:
        since = query.since
        tests.append(lambda a: a.last >= since)
    if query.until is not None:
        until = query.until
        tests.append(lambda a: a.last < until)
    if query.filter is not None:
        matches = query.filter.matches
        tests.append(lambda a: matches(a.as_event()))
    if query.visible is not None:
        visible = query.visible
        tests.append(lambda a: bool(visible(a.context, a.name)))
    return lambda alarm: all(test(alarm) for test in tests)


# -- the same-commit hook ------------------------------------------------------------------


class AlarmWrites:
    """The same-commit hook that folds each batch's events per key into the alarm list.

    ``resolve`` tells what an event does (raise, clear or nothing: see
    :mod:`linkserver.core.alarm_fold`); ``changed`` is told the committed changes (in the
    committing thread: it must be quick). The fold made for :meth:`statements` is kept for
    :meth:`committed` of the same events (a retry folds again: nothing is consumed).

    On SQLite, with :meth:`use_triggers`, a batch the triggers can take
    (:class:`~linkserver.history.alarm_triggers.AlarmTriggers`) makes no statements and no
    fold: the triggers write its alarms in the events' INSERT. ``connection_setup`` is then
    their ``on``, else their ``off``: the DDL the writer runs on its connection, before the
    batch, whenever it is not what it last ran there (:mod:`linkserver.history.same_commit`).
    Only the watched events of such a batch are folded, after the commit, for ``changed``.
    """

    def __init__(self, store: AlarmStore, resolve: Resolve, changed: Changed | None = None) -> None:
        self.store = store
        self.resolve = resolve
        self.changed = changed
        self.triggers: AlarmTriggers | None = None
        self.connection_setup: tuple[str, ...] = ()
        self._last: tuple[tuple[int, int, int], list[KeyChange] | None, list[Event]] | None = None

    def use_triggers(self, triggers: AlarmTriggers | None) -> None:
        """Let SQLite's triggers write the alarms of the batches they can take (None: never)."""
        self.triggers = triggers
        self.connection_setup = triggers.off if triggers is not None else ()

    @staticmethod
    def _mark(events: Sequence[Event]) -> tuple[int, int, int]:
        return (events[0].id, events[-1].id, len(events)) if events else (0, 0, 0)

    def _fold(self, events: Sequence[Event]) -> list[KeyChange] | None:
        """The batch's changes; None when the triggers write them (statements said so)."""
        mark = self._mark(events)
        last = self._last
        if last is not None and last[0] == mark:
            return last[1]
        changes = list(fold(events, self.resolve).values())
        self._last = (mark, changes, [])
        return changes

    def statements(self, dialect: str, events: Sequence[Event]) -> Sequence[Statement]:
        triggers = self.triggers
        if triggers is not None and dialect == "sqlite":
            watched = triggers.take(events)
            if watched is not None:
                self.connection_setup = triggers.on
                self._last = (self._mark(events), None, watched)
                return []
            self.connection_setup = triggers.off
        changes = self._fold(events)
        return self.store.statements(dialect, changes) if changes else []

    def committed(self, events: Sequence[Event]) -> None:
        changes = self._fold(events)
        watched = self._last[2] if self._last is not None else []
        self._last = None
        if changes is None:  # the triggers wrote them
            self.store.triggered()
            if watched and self.changed is not None:
                self.changed(list(fold(watched, self.resolve).values()))
            return
        if not changes:
            return
        self.store.committed(changes, events)
        if self.changed is not None:
            self.changed(changes)


def open_alarm_store(history: HistoryStore) -> AlarmStore:
    """The alarm list of ``history``'s database (memory for the memory store)."""
    from linkserver.history.sql import SqlHistoryStore  # SQLAlchemy's store only when used

    if isinstance(history, SqlHistoryStore):
        from linkserver.history.alarm_sql import SqlAlarmStore

        return SqlAlarmStore(lambda: history.engine, lambda: history.write_lock)
    return MemoryAlarmStore()
