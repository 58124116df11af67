"""The query of ``GET /alarms`` as the clients build it, and what ``POST /purge`` removed
(docs/alarms.md)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TypedDict

import attrs

from linkserver.client.transport import level_name
from linkserver.core.levels import Level


@attrs.frozen
class Purged:
    """What ``POST /purge`` removed: expired ``events`` and ``alarms`` cleared longer ago than
    ``alarms.keep_cleared`` (0 from a server that does not say)."""

    events: int
    alarms: int = 0

    @classmethod
    def from_answer(cls, answer: Any) -> Purged:
        return cls(events=int(answer["removed"]), alarms=int(answer.get("alarms_removed") or 0))


def event_alarm_facts(alarms: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """``(label, text)`` per alarm an event raises or clears (``Event.alarms``), as ``show``
    prints them: ``alarm  1042  open, 3 events  key net.sw1:linkDown:3`` (``clears alarm``
    for a clearing event), or ``not in the list`` when the alarm was removed or came back as
    a new one."""
    facts = []
    for alarm in alarms:
        label = "clears alarm" if alarm.get("role") == "clears" else "alarm"
        key = f"key {alarm.get('key')}"
        if alarm.get("id") is None:
            facts.append((label, f"not in the list now  {key}"))
            continue
        count = alarm.get("count")
        counted = f", {count} event{'s' if count != 1 else ''}" if count is not None else ""
        facts.append((label, f"{alarm['id']}  {alarm.get('state')}{counted}  {key}"))
    return facts


class AlarmCriteria(TypedDict, total=False):
    """Keyword arguments of ``alarms`` and ``iter_alarms``; None means not given."""

    state: str | Iterable[str] | None  # open, acknowledged, cleared (default: every state)
    mask: str | Iterable[str] | None
    event: str | Iterable[str] | None
    filter: str | None
    min_level: Level | str | int | None
    max_level: Level | str | int | None
    since: datetime | str | None  # the last occurrence at or after this time
    until: datetime | str | None  # ... and before this one
    order: str | None  # "newest" (the default) or "oldest"
    limit: int | None
    cursor: str | None


def _many(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def alarm_params(
    *,
    state: str | Iterable[str] | None = None,
    mask: str | Iterable[str] | None = None,
    event: str | Iterable[str] | None = None,
    filter: str | None = None,  # noqa: A002 - the protocol's name
    min_level: Level | str | int | None = None,
    max_level: Level | str | int | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    order: str | None = None,
    limit: int | None = 100,
    cursor: str | None = None,
) -> list[tuple[str, str]]:
    params = [("state", s) for s in _many(state)] + [("mask", m) for m in _many(mask)]
    params += [("event", e) for e in _many(event)]
    single = {
        "filter": filter,
        "min_level": level_name(min_level),
        "max_level": level_name(max_level),
        "since": since.isoformat() if isinstance(since, datetime) else since,
        "until": until.isoformat() if isinstance(until, datetime) else until,
        "order": order,
        "limit": None if limit is None else str(int(limit)),
        "cursor": cursor,
    }
    return params + [(k, v) for k, v in single.items() if v is not None]


def alarm_url(alarm_id: int, action: str = "") -> str:
    return f"/alarms/{int(alarm_id)}" + (f"/{action}" if action else "")
