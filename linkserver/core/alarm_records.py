"""One alarm of the alarm list, and how a batch's :class:`KeyChange` moves it (docs/alarms.md).

:func:`apply` is the meaning of the SQL upserts in ``history/alarm_sql.py`` written in
Python: the memory store runs it, the contract tests hold the SQL stores to it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from linkserver.core.alarm_fold import KeyChange
from linkserver.core.alarms import AlarmLevel, AlarmState
from linkserver.core.events import Acknowledgement, Event
from linkserver.core.levels import Level

CLEARED_BY = ("event", "user", "auto_clear")


@attrs.frozen(kw_only=True)
class Alarm:
    """``id`` is the id of the event that opened it (a recurrence after a clear opens a new one).
    ``cleared_by``: ``event`` (``cleared_event`` says which), ``user`` (``cleared_user``) or
    ``auto_clear``; None while not cleared. ``last_event`` (when known) is what filters read
    besides the alarm's context, name, level and id."""

    id: int
    key: str
    context: str
    name: str
    state: AlarmState
    level: Level
    count: int
    first: datetime
    last: datetime
    event_id: int
    policy: AlarmLevel = AlarmLevel.HIGHEST
    auto_clear_at: datetime | None = None
    acknowledgements: tuple[Acknowledgement, ...] = ()
    cleared: datetime | None = None
    cleared_by: str | None = None
    cleared_event: int | None = None
    cleared_user: str | None = None
    last_event: Event | None = attrs.field(default=None, eq=False, repr=False)

    def as_event(self) -> Event:
        """The alarm as filters see it: its context, name, level and id; the rest (created,
        author, group, category, data) its last event's."""
        last = self.last_event
        return Event(
            self.id,
            self.context,
            self.name,
            self.level,
            last.created if last is not None else self.last,
            None,
            last.author if last is not None else None,
            last.group if last is not None else None,
            last.data if last is not None else (),
            category=last.category if last is not None else None,
        )

    def marshal(self) -> dict[str, Any]:
        """The alarm as the API answers it (times ISO-8601)."""
        cleared = None
        if self.cleared is not None:
            cleared = {
                "time": self.cleared.isoformat(),
                "by": self.cleared_by,
                "event": self.cleared_event,
                "user": self.cleared_user,
            }
        return {
            "id": self.id,
            "key": self.key,
            "context": self.context,
            "name": self.name,
            "state": self.state.value,
            "level": self.level.name,
            "count": self.count,
            "first": self.first.isoformat(),
            "last": self.last.isoformat(),
            "event": self.event_id,
            "alarm_level": self.policy.value,
            "auto_clear_at": self.auto_clear_at.isoformat() if self.auto_clear_at is not None else None,
            "acknowledgements": [
                {"time": a.time.isoformat(), "user": a.user, "text": a.text} for a in self.acknowledgements
            ],
            "cleared": cleared,
        }


def apply(alarm: Alarm | None, change: KeyChange, last_event: Event | None = None) -> Alarm | None:
    """The alarm after ``change`` (None: there is none). A change that only clears leaves a
    missing alarm missing and a cleared one as it was."""
    if change.count == 0:
        if alarm is None or alarm.state is AlarmState.CLEARED or change.cleared_id is None:
            return alarm
        return attrs.evolve(
            alarm,
            state=AlarmState.CLEARED,
            cleared=change.cleared,
            cleared_by="event",
            cleared_event=change.cleared_id,
            cleared_user=None,
            auto_clear_at=None,
        )
    assert change.first is not None and change.last is not None
    ends_cleared = change.cleared_id is not None
    cleared = dict(
        cleared=change.cleared if ends_cleared else None,
        cleared_by="event" if ends_cleared else None,
        cleared_event=change.cleared_id,
        cleared_user=None,
    )
    fresh = alarm is None or change.reset or alarm.state is AlarmState.CLEARED
    if fresh:
        return Alarm(
            id=change.first_id,
            key=change.key,
            context=change.context,
            name=change.name,
            state=AlarmState.CLEARED if ends_cleared else AlarmState.OPEN,
            level=Level(change.level),
            count=change.count,
            first=change.first,
            last=change.last,
            event_id=change.last_id,
            policy=change.policy,
            auto_clear_at=change.auto_clear_at,
            last_event=last_event,
            **cleared,  # type: ignore[arg-type]
        )
    assert alarm is not None
    level = change.level if change.policy is AlarmLevel.LAST else max(int(alarm.level), change.level)
    return attrs.evolve(
        alarm,
        context=change.context,
        name=change.name,
        state=AlarmState.CLEARED if ends_cleared else alarm.state,
        level=Level(level),
        count=alarm.count + change.count,
        last=change.last,
        event_id=change.last_id,
        policy=change.policy,
        auto_clear_at=change.auto_clear_at,
        last_event=last_event,
        **cleared,  # type: ignore[arg-type]
    )
