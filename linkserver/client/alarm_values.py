"""The query of ``GET /alarms`` as the clients build it (docs/alarms.md)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TypedDict

from linkserver.client.transport import level_name
from linkserver.core.levels import Level


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
