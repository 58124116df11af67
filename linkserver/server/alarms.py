"""The alarm list of a server: which events raise and clear alarms, operators' changes, live
``alarmChanged`` events, the auto-clear sweep and the removal of cleared alarms (docs/alarms.md).

The rows are written by the history writer in the events' own transaction
(:class:`~linkserver.history.alarms.AlarmWrites`); :meth:`Alarms.resolve` tells it what
an event does, from the definitions of the event's context (cached per definition set).
After each commit the changed keys go to a notifier thread, which reads the alarms as
they are now and fires ``alarmChanged`` in their contexts: only for contexts that define
it and only when someone listens, so an unwatched alarm list costs the writer nothing more.

On history: observer reads (with the receive permissions of the alarm's events),
operator acknowledges, unacknowledges and clears.

Several nodes: each node's writer folds the events it stores into the one table; the
``alarmChanged`` events are fired by the node whose commit (or operator) changed the alarm.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import attrs

from linkserver.core.alarm_fold import Action, Clear, KeyChange, Raise
from linkserver.core.alarm_records import Alarm
from linkserver.core.alarms import ALARM_CHANGED
from linkserver.core.catalog import DefinitionSet
from linkserver.core.durations import format_duration
from linkserver.core.errors import LinkServerError, PermissionDenied
from linkserver.core.events import Acknowledgement, Event
from linkserver.core.filters import parse_filter
from linkserver.core.levels import Permission
from linkserver.core.paths import display
from linkserver.core.permissions import Principal
from linkserver.history.alarm_triggers import (
    AlarmTriggers,
    clear_trigger,
    drop_trigger,
    key_sql,
    raise_trigger,
)
from linkserver.history.alarms import AlarmNotFound, AlarmPage, AlarmQuery, AlarmWrites, open_alarm_store
from linkserver.history.base import HistoryQuery, HistoryStore
from linkserver.history.matching import decode_cursor, encode_cursor
from linkserver.loading.alarm_config import AlarmSettings
from linkserver.server.access import EmptyAcknowledgement, HistoryAccess
from linkserver.server.engine import Engine

log = logging.getLogger("linkserver.alarms")

COMPONENT = "linkserver"
REMOVAL_LOCK = "alarm-removal"  # HistoryStore.exclusive: one node of a database removes at a time
CHANGE_PERMISSION = Permission.OPERATOR
_STOP = object()


def now_utc() -> datetime:
    return datetime.now(UTC)


class Alarms:
    """The alarm list of one engine. ``start`` after history started and the tree was restored."""

    def __init__(
        self,
        engine: Engine,
        history: HistoryStore,
        access: HistoryAccess,
        settings: AlarmSettings | None = None,
    ) -> None:
        self.engine = engine
        self.tree = engine.tree
        self.access = access
        self.settings = settings if settings is not None else AlarmSettings()
        self.history = history
        self.store = open_alarm_store(history)
        self.writes = AlarmWrites(self.store, self.resolve, self._committed)
        history.add_same_commit(self.writes)
        self._names: frozenset[str] = frozenset()
        self._actions: dict[tuple[int, str], tuple[DefinitionSet, Action | None]] = {}
        self._trigger_of: dict[str, str] = {}  # alarm event name -> its trigger (SQLite)
        self._checked: dict[int, tuple[DefinitionSet, bool]] = {}  # definitions -> have those triggers
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.notified = 0  # alarmChanged events fired (tests, metrics)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        sets = list(self.tree.templates.values())
        for context in self.tree.walk():
            sets.append(context.definitions)
            if context.child_definitions is not None:
                sets.append(context.child_definitions)
        self._names = frozenset(
            definition.name for definitions in sets for definition in definitions.values() if definition.alarm
        )
        self.writes.use_triggers(self._triggers(sets))
        if self._thread is None:
            self._thread = threading.Thread(target=self._notify_loop, name="linkserver-alarms", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout=10)

    # -- what events do (the writer's thread) ---------------------------------------------

    def resolve(self, event: Event) -> Action | None:
        """What ``event`` does to the alarm list, from the definitions of its context."""
        if event.name not in self._names:
            return None
        context = self.tree.find(event.context)
        if context is None:
            return None  # removed meanwhile: nothing left to raise alarms for
        definitions = context.definitions
        cached = self._actions.get((id(definitions), event.name))
        if cached is not None and cached[0] is definitions:
            return cached[1]
        action = _action(definitions, event.name)
        self._actions[(id(definitions), event.name)] = (definitions, action)
        return action

    # -- the alarm list written by SQLite's triggers (history/alarm_triggers.py) -------------

    def _triggers(self, sets: Sequence[DefinitionSet]) -> AlarmTriggers | None:
        """Triggers for every alarm event name, when the store is SQLite's and every definition
        of each name (in every template and context) has the same trigger; else None (the
        Python fold writes every batch)."""
        if not self._names or getattr(self.store, "dialect", None) != "sqlite":
            return None
        wanted: dict[str, str] = {}
        for definitions in sets:
            for name in sorted(self._names.intersection(definitions)):
                sql = _trigger_sql(definitions, name)
                if sql is None or wanted.setdefault(name, sql) != sql:
                    log.info("alarm event %s: its alarms are folded in Python (no trigger)", name)
                    return None
        self._trigger_of = wanted
        self._checked = {}
        off = tuple(drop_trigger(name) for name in sorted(wanted))
        return AlarmTriggers(on=(*off, *(wanted[name] for name in sorted(wanted))), off=off, take=self._take)

    def _take(self, events: Sequence[Event]) -> list[Event] | None:
        """Whether the triggers write exactly what the fold would for ``events`` (writer's thread):
        None if one of them has an alarm name in a context that is gone (the fold does nothing
        for it) or whose definitions make other triggers; else its watched alarm events."""
        names, find, checked, watched = self._names, self.tree.find, self._checked, self.engine.watched
        told: list[Event] = []
        for event in events:
            if event.name not in names:
                continue
            context = find(event.context)
            if context is None:
                return None
            definitions = context.definitions
            known = checked.get(id(definitions))
            if known is None or known[0] is not definitions:
                known = checked[id(definitions)] = (definitions, self._same_triggers(definitions))
            if not known[1]:
                return None
            if watched(event.context, ALARM_CHANGED):
                told.append(event)
        return told

    def _same_triggers(self, definitions: DefinitionSet) -> bool:
        wanted = self._trigger_of
        names = self._names.intersection(definitions)
        return all(_trigger_sql(definitions, name) == wanted[name] for name in names)

    def _committed(self, changes: Sequence[KeyChange]) -> None:
        for change in changes:
            kind = "cleared" if change.cleared_id is not None else "occurred"
            if self._watched(change.context):
                self._queue.put((change.key, kind, None))

    def _watched(self, context: str) -> bool:
        # The engine's cached answer (False for a context that is gone or lacks alarmChanged):
        # asked per changed key in the committing thread, so nothing more is looked up.
        return self.engine.watched(context, ALARM_CHANGED)

    # -- alarmChanged ---------------------------------------------------------------------

    def _notify_loop(self) -> None:
        while True:
            item = self._queue.get()
            pending: dict[str, tuple[str, str | None]] = {}
            stop = item is _STOP
            while not stop:
                # In the order of each key's last change: the changes are told in that order.
                pending.pop(item[0], None)
                pending[item[0]] = (item[1], item[2])
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                stop = item is _STOP
            if pending:
                try:
                    self._fire_changes(pending)
                except Exception:  # the database is down: the next change tells again
                    log.exception("could not report %d alarm changes", len(pending))
            if stop:
                return

    def _fire_changes(self, pending: dict[str, tuple[str, str | None]]) -> None:
        order = {key: place for place, key in enumerate(pending)}
        for alarm in sorted(self.store.by_keys(pending), key=lambda alarm: order[alarm.key]):
            change, by = pending[alarm.key]
            data = {
                "id": alarm.id,
                "key": alarm.key,
                "name": alarm.name,
                "state": alarm.state.value,
                "count": alarm.count,
                "first": alarm.first,
                "last": alarm.last,
                "event": alarm.event_id,
                "change": change,
                "by": by,
            }
            if self._says_message(alarm.context):
                data["message"] = self._message(alarm)
            try:
                self.engine.fire(alarm.context, ALARM_CHANGED, data, level=alarm.level, author=COMPONENT)
                self.notified += 1
            except LinkServerError:
                log.debug("no alarmChanged for %s", alarm.key, exc_info=True)

    def _says_message(self, context: str) -> bool:
        """Whether ``alarmChanged`` of ``context`` has the ``message`` field (a copy of the
        standard template made before it had one has not: its alarmChanged goes without)."""
        found = self.tree.find(context)
        definition = found.definitions.get(ALARM_CHANGED) if found is not None else None
        return definition is not None and definition.format.field("message") is not None

    def _message(self, alarm: Alarm) -> str | None:
        last = alarm.last_event
        if last is None:
            return None
        self.access.show((last,))
        return last.message

    def _tell(self, alarm: Alarm, change: str, by: str | None) -> Alarm:
        if self._watched(alarm.context):
            self._queue.put((alarm.key, change, by))
        return alarm

    # -- reading and changing on behalf of a user ------------------------------------------

    def marshal(self, alarm: Alarm) -> dict[str, Any]:
        """The alarm as the API answers it: ``message`` is its last event's, rendered as that
        event's own ``message`` is (HistoryAccess.show gives it its definition); null when the
        last event is no longer stored (purged or deleted)."""
        out = alarm.marshal()
        out["message"] = self._message(alarm)
        return out

    def query(self, query: AlarmQuery, user: Principal | None) -> AlarmPage:
        """One page of what ``user`` may see; FilterError for a filter on data no definition has.
        The filter's value labels are resolved as history's are (``data.status == "down"``)."""
        if query.filter is not None:
            bound = self.access.bound_filter(query.filter, query.masks, query.names, user)
            if bound is not query.filter:
                query = attrs.evolve(query, filter=bound)
        if user is not None:
            query = attrs.evolve(
                query, visible=lambda context, name: self.access.may_see(user, context, name)
            )
        return self.store.query(query)

    def get(self, alarm_id: int, user: Principal | None) -> Alarm:
        alarm = self.store.get(alarm_id)
        if not self.access.may_see(user, alarm.context, alarm.name):
            raise AlarmNotFound(alarm_id)  # one the user may not see does not exist for it
        return alarm

    def of_event(self, event: Event, user: Principal | None) -> list[dict[str, Any]]:
        """The alarm keys ``event`` raises (one) or clears (one per event it clears), each with
        the alarm it is part of while that alarm is in the list and ``user`` may see it
        (``id``, ``state``, ``count``; else null): GET /events/{id}'s ``alarms``. An event of an alarm
        that was cleared and came back belongs to the old alarm (gone), not the new one."""
        action = self.resolve(event)
        if action is None:
            return []
        if type(action) is Raise:
            wanted = [(action.key.render(event), "raises")]
        else:
            cleared = action.cleared  # type: ignore[union-attr]
            wanted = [(template.render(event, name), "clears") for name, template in cleared]
        found = {alarm.key: alarm for alarm in self.store.by_keys(key for key, _ in wanted)}
        out = []
        for key, role in wanted:
            alarm = found.get(key)
            part = (
                alarm is not None
                and self.access.may_see(user, alarm.context, alarm.name)
                and (
                    alarm.id <= event.id <= alarm.event_id
                    if role == "raises"
                    else alarm.cleared_event == event.id
                )
            )
            out.append(
                {
                    "key": key,
                    "role": role,
                    "id": alarm.id if part and alarm is not None else None,
                    "state": alarm.state.value if part and alarm is not None else None,
                    "count": alarm.count if part and alarm is not None else None,
                }
            )
        return out

    def events(
        self,
        alarm_id: int,
        user: Principal | None,
        *,
        limit: int = 100,
        cursor: str | None = None,
        newest_first: bool = True,
    ) -> tuple[list[Event], str | None]:
        """One page of the stored events of alarm ``alarm_id`` that ``user`` may see: the events
        it folded (their key is the alarm's, between its first and last event) and the event that
        cleared it; ``(events, next_cursor)``. AlarmNotFound for an alarm ``user`` may not see.
        Reads history as ``user`` (HistoryAccess.query), so an event hidden from the user is left
        out exactly as in GET /history."""
        alarm = self.get(alarm_id, user)
        low, high = alarm.id, max(alarm.event_id, alarm.cleared_event or 0)
        if cursor is not None:
            after = decode_cursor(cursor)
            if newest_first:
                high = min(high, after - 1)
            else:
                low = max(low, after + 1)
        masks, names = self._scan(alarm)
        found: list[Event] = []
        scan: str | None = None
        chunk = min(max(limit + 1, 64), 10_000)
        while low <= high:
            page = self.access.query(
                HistoryQuery(
                    masks=masks,
                    names=names,
                    filter=parse_filter(f"id >= {low} and id <= {high}"),
                    newest_first=newest_first,
                    limit=chunk,
                    cursor=scan,
                ),
                user,
            )
            for event in page.events:
                if event.id == alarm.cleared_event or self._key_of(event) == alarm.key:
                    found.append(event)
            scan = page.next_cursor
            if len(found) > limit or scan is None:
                break
        more = len(found) > limit
        page_events = found[:limit]
        return page_events, encode_cursor(page_events[-1].id) if more else None

    def _key_of(self, event: Event) -> str | None:
        action = self.resolve(event)
        return action.key.render(event) if type(action) is Raise else None

    def _scan(self, alarm: Alarm) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Where the events of ``alarm`` can be: its own context when its key names the context
        (else everywhere), its own event name when the key names it (else every raising event),
        plus the events that clear it."""
        context = self.tree.find(alarm.context)
        definition = context.definitions.get(alarm.name) if context is not None else None
        spec = definition.alarm if definition is not None else None
        template = spec.reduction_key if spec is not None else None
        named = {p.operand for p in template.template.placeholders} if template is not None else set()
        masks = (alarm.context or "**",) if "context" in named and alarm.context else ("**",)
        names = {alarm.name} if "name" in named else set(self._names)
        if context is not None:
            clearing = (d for d in context.definitions.values() if d.alarm is not None)
            names.update(d.name for d in clearing if alarm.name in d.alarm.clears)  # type: ignore[union-attr]
        return masks, tuple(sorted(names))

    def _allowed(self, alarm_id: int, user: Principal, action: str) -> Alarm:
        alarm = self.get(alarm_id, user)
        if not user.may(alarm.context, CHANGE_PERMISSION):
            raise PermissionDenied(
                f"{user.name} may not {action} alarm {alarm_id} in {display(alarm.context)}: it needs "
                f"{CHANGE_PERMISSION} there, {user.name} has {user.grants.level_for(alarm.context)}"
            )
        return alarm

    def acknowledge(self, alarm_id: int, user: Principal, text: str, *, now: datetime | None = None) -> Alarm:
        if not isinstance(text, str) or not text.strip():
            raise EmptyAcknowledgement(
                f"acknowledgement of alarm {alarm_id} has no text; say what is being done"
            )
        self._allowed(alarm_id, user, "acknowledge")
        ack = Acknowledgement(time=now or now_utc(), user=user.name, text=text.strip())
        return self._tell(self.store.acknowledge(alarm_id, ack), "acknowledged", user.name)

    def unacknowledge(self, alarm_id: int, user: Principal) -> Alarm:
        self._allowed(alarm_id, user, "unacknowledge")
        return self._tell(self.store.unacknowledge(alarm_id), "unacknowledged", user.name)

    def clear(self, alarm_id: int, user: Principal, *, now: datetime | None = None) -> Alarm:
        self._allowed(alarm_id, user, "clear")
        return self._tell(self.store.clear(alarm_id, user.name, now or now_utc()), "cleared", user.name)

    # -- the scheduler's jobs ---------------------------------------------------------------

    def sweep(self, now: datetime | None = None) -> int:
        """Clear the alarms whose auto_clear time passed; returns how many."""
        cleared = self.store.auto_clear(now or now_utc())
        for alarm in cleared:
            self._tell(alarm, "cleared", None)
        if cleared:
            log.info("auto_clear cleared %d alarms", len(cleared))
        return len(cleared)

    def purge(self, now: datetime | None = None) -> int:
        """Delete alarms cleared longer ago than ``keep_cleared``; returns how many. The
        removal job runs it every ``settings.removal_interval``; the purge job and
        ``POST /purge`` run it too (the rows go once, whoever runs it first)."""
        return self.store.purge_cleared((now or now_utc()) - self.settings.keep_cleared)

    def remove_cleared(self) -> int:
        """The removal job: :meth:`purge` now, logged when it removed something; nothing while
        another node of the database (or thread here) runs it: that one removes the same rows."""
        with self.history.exclusive(REMOVAL_LOCK) as held:
            if not held:
                return 0
            removed = self.purge()
        if removed:
            log.info(
                "removed %d alarms cleared over %s ago", removed, format_duration(self.settings.keep_cleared)
            )
        return removed


def _trigger_sql(definitions: DefinitionSet, name: str) -> str | None:
    """The trigger that does what events ``name`` of ``definitions`` do; None if SQL cannot."""
    action = _action(definitions, name)
    definition = definitions.get(name)
    if action is None or definition is None:
        return None
    if type(action) is Raise:
        key = key_sql(action.key, definition.format)
        return None if key is None else raise_trigger(name, key, action.level, action.auto_clear)
    keys = [key_sql(template, definition.format, other) for other, template in action.cleared]  # type: ignore[union-attr]
    if any(key is None for key in keys):
        return None
    return clear_trigger(name, keys)  # type: ignore[arg-type]


def _action(definitions: DefinitionSet, name: str) -> Action | None:
    definition = definitions.get(name)
    spec = definition.alarm if definition is not None else None
    if spec is None:
        return None
    if spec.reduction_key is not None:
        return Raise(spec.reduction_key, spec.level, spec.auto_clear)
    cleared = []
    for other in spec.clears:
        target = definitions.get(other)
        template = target.alarm.reduction_key if target is not None and target.alarm is not None else None
        if template is not None:
            cleared.append((other, template))
    return Clear(tuple(cleared)) if cleared else None
