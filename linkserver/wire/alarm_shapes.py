"""The documents of the alarm operations (docs/alarms.md), declared once.

Kept apart from :mod:`linkserver.wire.shapes` (which they build on) like the resource
shapes; /openapi.json takes them from :data:`linkserver.wire.routes.OPERATIONS`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from msgspec import Meta

from linkserver.wire.shapes import (
    MAX_HISTORY_LIMIT,
    Acknowledgement,
    Event,
    EventId,
    LevelName,
    LevelValue,
    Mask,
    Name,
    Shape,
    Time,
)

AlarmStateName = Literal["open", "acknowledged", "cleared"]


class AlarmParams(Shape):
    """``GET /alarms``: ``state``, ``mask`` and ``event`` may repeat (none: every one); the
    filter reads the alarm's context, name, level and id and its last event's other fields;
    ``since`` and ``until`` bound its last occurrence (``since <= last < until``)."""

    state: list[AlarmStateName] = []
    mask: list[Mask] = []
    event: list[Name] = []
    filter: str | None = None
    min_level: LevelValue | None = None
    max_level: LevelValue | None = None
    since: Time | None = None
    until: Time | None = None
    order: Literal["newest", "oldest"] = "newest"
    limit: Annotated[int, Meta(ge=1, le=MAX_HISTORY_LIMIT)] = 100
    cursor: str | None = None


class AlarmPath(Shape):
    id: Annotated[EventId, Meta(description="An alarm id (the id of the event that opened it)")]


class AlarmText(Shape):
    """``POST /alarms/{id}/acknowledge``."""

    text: Annotated[str, Meta(pattern=r"\S", description="What is being done (not only spaces)")]


class Cleared(Shape):
    time: datetime
    by: Literal["event", "user", "auto_clear"]
    event: int | None = None
    user: str | None = None


class Alarm(Shape):
    """One alarm: ``event`` is its last event's id; ``message`` that event's message, rendered
    as GET /events/{id} renders it (null once the event is no longer stored)."""

    id: int
    key: str
    context: str
    name: str
    state: AlarmStateName
    level: LevelName
    count: int
    first: datetime
    last: datetime
    event: int
    alarm_level: Literal["highest", "last"]
    acknowledgements: list[Acknowledgement]
    auto_clear_at: datetime | None = None
    cleared: Cleared | None = None
    message: str | None = None


class AlarmAnswer(Shape):
    alarm: Alarm


class AlarmsAnswer(Shape):
    alarms: list[Alarm]
    next_cursor: str | None


class AlarmEventsParams(Shape):
    """``GET /alarms/{id}/events``: pages of the alarm's stored events by cursor."""

    order: Literal["newest", "oldest"] = "newest"
    limit: Annotated[int, Meta(ge=1, le=MAX_HISTORY_LIMIT)] = 100
    cursor: str | None = None


class AlarmEventsAnswer(Shape):
    """The events the alarm folded (their key is its key) and the one that cleared it, as
    GET /history shows them to the reader (those it may not receive left out)."""

    events: list[Event]
    next_cursor: str | None
