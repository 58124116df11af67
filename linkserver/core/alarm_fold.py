"""Folding a batch of events into one change per reduction key (pure; docs/alarms.md).

The history writer commits events in batches; the alarm list is updated in the
same transaction with ONE statement row per key, not one per event. :func:`fold`
walks the batch in order and keeps, per key, what the batch did to it: how
many events it folded (count, first, last, level by the definition's policy),
whether a clear came before them (then they start a new alarm, whatever the
stored one was) and whether the key ends cleared.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

import attrs

from linkserver.core.alarms import AlarmLevel, KeyTemplate
from linkserver.core.events import Event


@attrs.frozen
class Raise:
    """The event raises (or reduces into) the alarm of its key."""

    key: KeyTemplate
    level: AlarmLevel
    auto_clear: timedelta | None


@attrs.frozen
class Clear:
    """The event clears the alarms of the keys of these (name, key template) pairs."""

    cleared: tuple[tuple[str, KeyTemplate], ...]


Action = Raise | Clear
Resolve = Callable[[Event], Action | None]
"""``event -> what it does to the alarm list`` (None: nothing; most events)."""


@attrs.define(slots=True)
class KeyChange:
    """What one batch did to one key. ``count`` 0: it only cleared (an alarm stored before)."""

    key: str
    context: str
    name: str = ""
    count: int = 0
    first_id: int = 0
    first: datetime | None = None
    last_id: int = 0
    last: datetime | None = None
    level: int = 0
    policy: AlarmLevel = AlarmLevel.HIGHEST
    auto_clear: timedelta | None = None
    reset: bool = False  # a clear came first: the raises start a new alarm
    cleared_id: int | None = None  # the key ends cleared by this event
    cleared: datetime | None = None

    @property
    def auto_clear_at(self) -> datetime | None:
        if self.auto_clear is None or self.last is None or self.cleared_id is not None:
            return None
        return self.last + self.auto_clear

    def occurred(self, event: Event, action: Raise) -> None:
        if self.cleared_id is not None:  # cleared earlier in this batch: a new alarm from here
            self.reset = True
            self.count = 0
            self.cleared_id = self.cleared = None
        level = int(event.level)
        if self.count == 0:
            self.first_id, self.first, self.level = event.id, event.created, level
        elif action.level is AlarmLevel.LAST or level > self.level:
            self.level = level
        self.name = event.name
        self.context = event.context
        self.count += 1
        self.last_id, self.last = event.id, event.created
        self.policy, self.auto_clear = action.level, action.auto_clear

    def clear(self, event: Event) -> None:
        # The first clear since the key last occurred: a later one finds the alarm cleared and
        # changes nothing, as it would in a batch of its own (and as the SQLite triggers do).
        if self.cleared_id is None:
            self.cleared_id, self.cleared = event.id, event.created


def fold(events: Iterable[Event], resolve: Resolve) -> dict[str, KeyChange]:
    """The changes ``events`` (in commit order) make, by key, in the order keys were first seen."""
    changes: dict[str, KeyChange] = {}
    for event in events:
        action = resolve(event)
        if action is None:
            continue
        if type(action) is Raise:
            key = action.key.render(event)
            change = changes.get(key)
            if change is None:  # the key's first event in the batch (the common case): made whole at once
                changes[key] = KeyChange(
                    key,
                    event.context,
                    event.name,
                    1,
                    event.id,
                    event.created,
                    event.id,
                    event.created,
                    int(event.level),
                    action.level,
                    action.auto_clear,
                )
            else:
                change.occurred(event, action)
        else:
            for name, template in action.cleared:  # type: ignore[union-attr]
                key = template.render(event, name)
                change = changes.get(key)
                if change is None:
                    change = changes[key] = KeyChange(key, event.context, name)
                change.clear(event)
    return changes
