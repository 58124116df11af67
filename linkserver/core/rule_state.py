"""The state of alert rules: windows, open alerts and escalation steps, as plain objects.

Every method takes ``now`` explicitly and returns the :class:`Firing` list it
causes; nothing here reads a clock, fires or stores. The server feeds
delivered events to :meth:`RuleState.observe`, calls :meth:`RuleState.tick`
on a timer and stores :meth:`RuleState.dump` rows for the keys
:meth:`RuleState.take_dirty` names; a dry run (:func:`replay`) drives the same
objects with history's events and their own times.

State is kept per key (:meth:`Rule.key_of`); a key's row is JSON-ready.
"""

from __future__ import annotations

import collections
import heapq
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from linkserver.core.durations import format_duration
from linkserver.core.events import Event
from linkserver.core.levels import Level
from linkserver.core.paths import display
from linkserver.core.rules import (
    ALARMS,
    ALERT,
    CLEARED,
    ESCALATED,
    PER_CONTEXT,
    Firing,
    Rule,
    RuleKind,
    render,
)

#: ``acknowledged(event_id, now) -> bool``: the alert was acknowledged by ``now``.
Acknowledged = Callable[[int, datetime], bool]


_EARLIEST = datetime.min.replace(tzinfo=UTC)


_LAST_MS: tuple[datetime | None, int] = (None, 0)


def _ms(moment: datetime) -> int:
    """``moment`` in milliseconds since 1970. The events of one millisecond share their
    ``created`` (core/events.py's IdGenerator), so the last answer is kept: a count rule's
    every observation asks, and ``timestamp()`` of an aware datetime costs more than the
    rest of it. (One tuple, swapped whole: threads never see a time with another's ms.)"""
    global _LAST_MS
    last = _LAST_MS
    if last[0] is moment:
        return last[1]
    ms = int(moment.timestamp() * 1000)
    _LAST_MS = (moment, ms)
    return ms


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


class RuleState:
    """What one rule remembers. Not thread-safe: the server holds a lock per rule."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.open: dict[str, dict[str, Any]] = {}  # key -> {"since", "alert_id", ...}
        self._dirty: set[str] = set()
        self._messages = rule.messages()

    # -- driven by the server or a replay ---------------------------------

    def observe(self, event: Event, now: datetime) -> list[Firing]:
        """A matching event was delivered at ``now`` (its ``created`` in a replay)."""
        raise NotImplementedError

    def tick(self, now: datetime, acknowledged: Acknowledged | None = None) -> list[Firing]:
        """Time passed until ``now``: what is due fires."""
        return []

    def next_deadline(self) -> datetime | None:
        """The earliest moment a tick could fire something (None: only events can)."""
        return None

    def key_for(self, event: Event) -> str:
        """The key whose state ``event`` changes."""
        return self.rule.key_of(event)

    def fired(self, firing: Firing, event_id: int) -> None:
        """``firing`` was fired as event ``event_id`` (an alert's id is kept for its clear)."""
        if firing.event == ALERT and firing.key in self.open:
            self.open[firing.key]["alert_id"] = event_id
            self._dirty.add(firing.key)

    # -- persistence --------------------------------------------------------

    def take_dirty(self) -> set[str]:
        dirty, self._dirty = self._dirty, set()
        return dirty

    def dump(self, key: str) -> dict[str, Any] | None:
        """The row of ``key``; None when the rule has forgotten it (delete the row)."""
        row = self.open.get(key)
        return {"open": row} if row is not None else None

    def load(self, rows: Mapping[str, dict[str, Any]], now: datetime) -> None:
        """Restore the rows :meth:`dump` gave (after a restart, at ``now``)."""
        for key, row in rows.items():
            if row.get("open") is not None:
                self.open[key] = row["open"]

    def status(self, now: datetime | None = None) -> dict[str, Any]:
        """What ``rules list`` shows: the open alerts (and, per kind, what is being watched at
        ``now``; None: whatever the state holds)."""
        return {"open": {key: dict(row) for key, row in sorted(self.open.items())}}

    # -- helpers ------------------------------------------------------------

    def _alert(self, key: str, at: datetime, values: dict[str, Any], cause: Event | None) -> Firing:
        rule = self.rule
        self.open[key] = {"since": at.isoformat(), "alert_id": None}
        self._dirty.add(key)
        data = {
            "message": _clip(render(self._messages[0], values)),
            "cause": f"{display(cause.context)}/{cause.name}" if cause is not None else rule.mask,
            "severity": rule.severity,
            "raised": cause.created if cause is not None else at,
            "rule": rule.name,
            "key": key,
        }
        return Firing(
            rule=rule.name,
            event=ALERT,
            key=key,
            at=at,
            data=data,
            level=rule.level,
            cause=cause.id if cause is not None else None,
        )

    def _clear(self, key: str, at: datetime, values: dict[str, Any], cause: Event | None) -> Firing:
        rule = self.rule
        row = self.open.pop(key, {})
        self._dirty.add(key)
        data = {
            "message": _clip(render(self._messages[1], values)),
            "rule": rule.name,
            "key": key,
            "alert_id": row.get("alert_id"),
            "cause": f"{display(cause.context)}/{cause.name}" if cause is not None else rule.mask,
        }
        return Firing(
            rule=rule.name,
            event=CLEARED,
            key=key,
            at=at,
            data=data,
            cause=cause.id if cause is not None else None,
        )

    def _values(self, key: str, **more: Any) -> dict[str, Any]:
        rule = self.rule
        values = {"rule": rule.name, "key": key, "event": rule.event, "mask": rule.mask}
        if rule.within is not None:
            values["within"] = format_duration(rule.within)
        values.update(more)
        return values


def _clip(text: str) -> str:
    return (text or "-")[:500]  # the alert format's message is 1..500 characters


class CountState(RuleState):
    """``count`` events within ``within`` per key open an alert; fewer clear it.

    Times are kept as integer milliseconds since 1970: cheap to compare and to store.
    """

    def __init__(self, rule: Rule) -> None:
        super().__init__(rule)
        assert rule.within is not None
        self.within = rule.within
        self.window = int(rule.within.total_seconds() * 1000)
        self.count = rule.count
        self._per_context = rule.per == PER_CONTEXT  # the common key, without a call
        # Only the last ``count`` times matter: N within T iff the N-th newest is within T.
        self.times: dict[str, collections.deque[int]] = {}

    def observe(self, event: Event, now: datetime) -> list[Firing]:
        key = (event.context or "root") if self._per_context else self.rule.key_of(event)
        times = self.times.get(key)
        if times is None:
            times = self.times[key] = collections.deque(maxlen=self.count)
        at = _ms(now)
        times.append(at)
        self._dirty.add(key)
        if len(times) == self.count and at - times[0] < self.window and key not in self.open:
            values = self._values(key, count=self.count, context=display(event.context))
            return [self._alert(key, now, values, event)]
        return []

    def tick(self, now: datetime, acknowledged: Acknowledged | None = None) -> list[Firing]:
        found = []
        at = _ms(now)
        for key in [k for k in self.open if self._expired(k, at)]:
            found.append(self._clear(key, now, self._values(key, count=self.count, context=key), None))
        if len(self.times) > len(self.open) * 2 + 1024:  # forget keys whose window is empty
            for key in [k for k, t in self.times.items() if k not in self.open and at - t[-1] >= self.window]:
                del self.times[key]
                self._dirty.add(key)
        return found

    def _expired(self, key: str, at: int) -> bool:
        times = self.times.get(key)
        return times is None or len(times) < self.count or at - times[0] >= self.window

    def next_deadline(self) -> datetime | None:
        deadlines = []
        for key in self.open:
            times = self.times.get(key)
            if times and len(times) == self.count:
                deadlines.append(_from_ms(times[0] + self.window))
            else:
                deadlines.append(_EARLIEST)
        return min(deadlines) if deadlines else None

    def dump(self, key: str) -> dict[str, Any] | None:
        times = self.times.get(key)
        row = self.open.get(key)
        if not times and row is None:
            return None
        return {"times_ms": list(times or ()), "open": row}

    def load(self, rows: Mapping[str, dict[str, Any]], now: datetime) -> None:
        super().load(rows, now)
        at = _ms(now)
        for key, row in rows.items():
            times = [t for t in row.get("times_ms", ()) if isinstance(t, int) and at - t < self.window]
            if times:
                self.times[key] = collections.deque(times, maxlen=self.count)

    def status(self, now: datetime | None = None) -> dict[str, Any]:
        found = super().status(now)
        if now is None:
            found["counting"] = {key: len(times) for key, times in sorted(self.times.items()) if times}
            return found
        at = _ms(now)  # the times still in the window; older ones are kept until a tick forgets them
        counting = {
            key: sum(at - t < self.window for t in times) for key, times in sorted(self.times.items())
        }
        found["counting"] = {key: count for key, count in counting.items() if count}
        return found


class AbsenceState(RuleState):
    """No matching event for ``within`` per key opens an alert; the next one clears it.

    Keys are known from the events seen (and those :meth:`seed` names: the
    contexts that exist when the server starts, which must start reporting).
    ``seen`` is kept in the order keys last reported, so the overdue ones are
    always at its front: a tick looks at those only.
    """

    def __init__(self, rule: Rule) -> None:
        super().__init__(rule)
        assert rule.within is not None
        self.within = rule.within
        self.seen: collections.OrderedDict[str, datetime] = collections.OrderedDict()

    def seed(self, keys: Iterable[str], now: datetime) -> None:
        """Watch ``keys`` from ``now`` on, unless they are known already."""
        for key in keys:
            if key not in self.seen and key not in self.open:
                self.seen[key] = now
                self._dirty.add(key)

    def forget(self, keys: Iterable[str]) -> None:
        """Stop watching ``keys`` (their contexts were removed); an open alert stays open."""
        for key in keys:
            if self.seen.pop(key, None) is not None:
                self._dirty.add(key)

    def observe(self, event: Event, now: datetime) -> list[Firing]:
        key = self.rule.key_of(event)
        seen = self.seen
        last = seen.get(key)
        seen[key] = now if last is None or now > last else last
        seen.move_to_end(key)
        self._dirty.add(key)
        if key in self.open:
            return [self._clear(key, now, self._values(key, last_seen=now.isoformat()), event)]
        return []

    def tick(self, now: datetime, acknowledged: Acknowledged | None = None) -> list[Firing]:
        found = []
        seen, within = self.seen, self.within
        while seen:
            key, last = next(iter(seen.items()))
            if now - last < within:
                break
            del seen[key]
            if key in self.open:
                continue
            found.append(self._alert(key, last + within, self._values(key, last_seen=last.isoformat()), None))
            self.open[key]["last_seen"] = last.isoformat()
        return found

    def next_deadline(self) -> datetime | None:
        if not self.seen:
            return None
        return next(iter(self.seen.values())) + self.within

    def dump(self, key: str) -> dict[str, Any] | None:
        last = self.seen.get(key)
        row = self.open.get(key)
        if last is None and row is None:
            return None
        return {"last_seen": last.isoformat() if last is not None else None, "open": row}

    def load(self, rows: Mapping[str, dict[str, Any]], now: datetime) -> None:
        super().load(rows, now)
        ordered = sorted(
            ((_time(row["last_seen"]), key) for key, row in rows.items() if row.get("last_seen")),
        )
        for last, key in ordered:
            if key not in self.open:
                self.seen[key] = last

    def status(self, now: datetime | None = None) -> dict[str, Any]:
        found = super().status(now)
        found["watching"] = len(self.seen)
        return found


class ThresholdState(RuleState):
    """The ``open`` filter opens an alert per key, the ``close`` filter clears it."""

    def __init__(self, rule: Rule) -> None:
        super().__init__(rule)
        assert rule.open is not None and rule.close is not None
        self.opens, self.closes = rule.open.matches, rule.close.matches

    def observe(self, event: Event, now: datetime) -> list[Firing]:
        key = self.rule.key_of(event)
        if key in self.open:
            if self.closes(event):
                return [self._clear(key, now, self._values(key, context=display(event.context)), event)]
        elif self.opens(event):
            return [self._alert(key, now, self._values(key, context=display(event.context)), event)]
        return []


class EscalationState(RuleState):
    """Each matching (acknowledgeable) event not acknowledged by a step's ``after`` fires
    ``escalated``; after the last step, again every ``repeat`` (if set) until acknowledged.

    Kept per alert (its event id as the key): ``next`` (when the next step is due),
    ``step`` (how many fired), the alert's context, name and level.
    """

    def __init__(self, rule: Rule) -> None:
        super().__init__(rule)
        self.steps = rule.steps
        self.pending: dict[str, dict[str, Any]] = {}
        # Alarms stay open after their last step: remembered so they do not start over.
        self.finished: set[str] = set()
        self._remember = rule.source == ALARMS
        self._due: list[tuple[datetime, str]] = []  # heap of (next, key); stale entries skipped

    def key_for(self, event: Event) -> str:
        return str(event.id)

    def retain(self, keys: set[str]) -> None:
        """Forget every alarm not in ``keys`` (the ones still open and unacknowledged)."""
        for key in [k for k in self.pending if k not in keys]:
            del self.pending[key]
            self._dirty.add(key)
        for key in [k for k in self.finished if k not in keys]:
            self.finished.discard(key)
            self._dirty.add(key)

    def observe(self, event: Event, now: datetime) -> list[Firing]:
        key = str(event.id)
        if key in self.pending or key in self.finished:
            return []
        due = event.created + self.steps[0].after
        self.pending[key] = {
            "next": due.isoformat(),
            "step": 0,
            "created": event.created.isoformat(),
            "context": display(event.context),
            "event": event.name,
            "level": int(event.level),
        }
        heapq.heappush(self._due, (due, key))
        self._dirty.add(key)
        return []

    def tick(self, now: datetime, acknowledged: Acknowledged | None = None) -> list[Firing]:
        found = []
        while self._due and self._due[0][0] <= now:
            due, key = heapq.heappop(self._due)
            row = self.pending.get(key)
            if row is None or _time(row["next"]) != due:
                continue  # acknowledged already, or rescheduled
            if acknowledged is not None and acknowledged(int(key), due):
                del self.pending[key]
                self._dirty.add(key)
                continue
            found.append(self._escalate(key, row, due))
        return found

    def _escalate(self, key: str, row: dict[str, Any], due: datetime) -> Firing:
        rule, steps = self.rule, self.steps
        index = row["step"]
        step = steps[min(index, len(steps) - 1)]
        previous = Level(row.get("raised", row["level"]))
        level = step.level if step.level is not None else Level(min(int(previous) + 1, int(Level.FATAL)))
        created = _time(row["created"])
        values = {
            "rule": rule.name,
            "step": index + 1,
            "alert_id": int(key),
            "alert_context": row["context"],
            "alert_event": row["event"],
            "elapsed": format_duration(due - created),
            "notified": ", ".join(step.notify) or "nobody",
            "level": str(level),
        }
        firing = Firing(
            rule=rule.name,
            event=ESCALATED,
            key=key,
            at=due,
            level=level,
            data={
                "message": _clip(render(self._messages[0], values)),
                "rule": rule.name,
                "step": index + 1,
                "alert_id": int(key),
                "alert_context": row["context"],
                "alert_event": row["event"],
                "notified": ", ".join(step.notify) or None,
            },
        )
        index += 1
        if index < len(steps):
            following: datetime | None = created + steps[index].after
        elif rule.repeat is not None:
            following = due + rule.repeat
        else:
            following = None
        if following is None:
            del self.pending[key]
            if self._remember:
                self.finished.add(key)
        else:
            row.update(step=index, next=following.isoformat(), raised=int(level))
            heapq.heappush(self._due, (following, key))
        self._dirty.add(key)
        return firing

    def fired(self, firing: Firing, event_id: int) -> None:
        return None

    def next_deadline(self) -> datetime | None:
        while self._due:
            due, key = self._due[0]
            row = self.pending.get(key)
            if row is not None and _time(row["next"]) == due:
                return due
            heapq.heappop(self._due)
        return None

    def dump(self, key: str) -> dict[str, Any] | None:
        if key in self.finished:
            return {"finished": True}
        return self.pending.get(key)

    def load(self, rows: Mapping[str, dict[str, Any]], now: datetime) -> None:
        for key, row in rows.items():
            if row.get("finished"):
                self.finished.add(key)
                continue
            self.pending[key] = dict(row)
            heapq.heappush(self._due, (_time(row["next"]), key))

    def status(self, now: datetime | None = None) -> dict[str, Any]:
        return {"escalating": {key: dict(row) for key, row in sorted(self.pending.items())}}


STATES: dict[RuleKind, type[RuleState]] = {
    RuleKind.COUNT: CountState,
    RuleKind.ABSENCE: AbsenceState,
    RuleKind.THRESHOLD: ThresholdState,
    RuleKind.ESCALATION: EscalationState,
}


def new_state(rule: Rule) -> RuleState:
    return STATES[rule.kind](rule)


def replay(
    rule: Rule,
    events: Iterable[Event],
    until: datetime,
    *,
    since: datetime | None = None,
    acknowledged: Acknowledged | None = None,
    matches: Callable[[Event], bool] | None = None,
) -> list[Firing]:
    """What ``rule`` would have fired for ``events`` (oldest first), with time running on
    to ``until``: a fresh state driven by the events' own times, ticked at every deadline
    in between. ``matches`` narrows the events (the rule's filter); ``acknowledged``
    says when alerts were acknowledged (escalation). An absence rule starts watching each
    key at ``since`` once it has been seen. Fires nothing."""
    state = new_state(rule)
    found: list[Firing] = []
    for event in events:
        if matches is not None and not matches(event):
            continue
        _run_until(state, event.created, acknowledged, found)
        found.extend(state.observe(event, event.created))
    _run_until(state, until, acknowledged, found)
    return found


def catch_up(
    state: RuleState,
    events: Iterable[Event],
    *,
    skip: Callable[[Event], bool],
    acknowledged: Acknowledged | None = None,
) -> list[Firing]:
    """Drive ``state``, as it was stored, with the events (oldest first, already matched) it
    did not see: what it fired meanwhile (the server asks history which of those were fired
    already). As live: each event at its own time, the deadlines before it ticked first.
    ``skip`` leaves out an event whose key's stored state has it already. Time after the
    last event is left to the live ticks."""
    found: list[Firing] = []
    for event in events:
        _run_until(state, event.created, acknowledged, found)
        if not skip(event):
            found.extend(state.observe(event, event.created))
    return found


def _run_until(
    state: RuleState, moment: datetime, acknowledged: Acknowledged | None, found: list[Firing]
) -> None:
    while True:
        deadline = state.next_deadline()
        if deadline is None or deadline > moment:
            return
        fired = state.tick(deadline, acknowledged)
        if not fired and state.next_deadline() == deadline:
            return  # nothing moves: never loop
        found.extend(fired)


def ack_times(events: Iterable[Event]) -> Acknowledged:
    """An :data:`Acknowledged` from events as history holds them (with acknowledgements)."""
    first: dict[int, datetime] = {}
    for event in events:
        if event.acknowledgements:
            first[event.id] = min(a.time for a in event.acknowledgements)
    return lambda event_id, now: event_id in first and first[event_id] <= now


__all__ = [
    "Acknowledged",
    "RuleState",
    "CountState",
    "AbsenceState",
    "ThresholdState",
    "EscalationState",
    "new_state",
    "replay",
    "catch_up",
    "ack_times",
]
