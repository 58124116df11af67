"""Fired events, acknowledgements and event ids."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import attrs

from linkserver.core.levels import Level
from linkserver.core.records import DataTable, to_jsonable

UTC = UTC


@attrs.frozen(kw_only=True)
class Acknowledgement:
    time: datetime
    user: str
    text: str


@attrs.frozen
class Event:
    """One fired event. ``expires`` is None for non-persistent events.

    Not keyword-only on purpose: the engine builds events positionally, which
    costs half as much on the fire path. Keywords work as well. ``category`` is
    the definition's (linkserver.core.categories), None for events stored before
    categories existed.
    """

    id: int
    context: str
    name: str
    level: Level
    created: datetime
    expires: datetime | None
    author: str | None
    group: str | None
    data: DataTable
    acknowledgements: tuple[Acknowledgement, ...] = ()
    category: str | None = None

    @property
    def record(self) -> dict[str, Any]:
        """The first (for single-record formats: the only) record, or {}."""
        return self.data[0] if self.data else {}

    @property
    def acknowledged(self) -> bool:
        return bool(self.acknowledgements)

    def marshal(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`unmarshal` reverses it."""
        return {
            "id": self.id,
            "context": self.context,
            "name": self.name,
            "level": self.level.name,
            "created": self.created.isoformat(),
            "expires": self.expires.isoformat() if self.expires else None,
            "author": self.author,
            "group": self.group,
            "category": self.category,
            "data": to_jsonable(list(self.data)),
            "acknowledgements": [
                {"time": a.time.isoformat(), "user": a.user, "text": a.text} for a in self.acknowledgements
            ],
        }

    @classmethod
    def unmarshal(cls, raw: dict[str, Any]) -> Event:
        return cls(
            id=int(raw["id"]),
            context=raw["context"],
            name=raw["name"],
            level=Level.parse(raw["level"]),
            created=datetime.fromisoformat(raw["created"]),
            expires=datetime.fromisoformat(raw["expires"]) if raw.get("expires") else None,
            author=raw.get("author"),
            group=raw.get("group"),
            data=tuple(raw.get("data") or ()),
            acknowledgements=tuple(
                Acknowledgement(time=datetime.fromisoformat(a["time"]), user=a["user"], text=a["text"])
                for a in raw.get("acknowledgements") or ()
            ),
            category=raw.get("category"),
        )


def _event_maker() -> Callable[..., Event]:
    """``new_event(id, context, name, level, created, expires, author, group, data, category)``: an Event
    without acknowledgements, made without attrs' frozen ``__init__`` (which sets each field
    through ``object.__setattr__``): the fire path makes one per fire. Same result."""
    setters = [getattr(Event, field.name).__set__ for field in attrs.fields(Event)]
    if len(setters) != 11 or attrs.fields(Event)[-2].name != "acknowledgements":
        return Event  # the fields changed: fall back to the plain constructor
    s_id, s_context, s_name, s_level, s_created, s_expires, s_author, s_group, s_data, s_acks, s_category = (
        setters
    )
    make = object.__new__

    def new_event(
        id: int,  # noqa: A002 - the field's name
        context: str,
        name: str,
        level: Level,
        created: datetime,
        expires: datetime | None,
        author: str | None,
        group: str | None,
        data: DataTable,
        category: str | None = None,
    ) -> Event:
        event = make(Event)
        s_id(event, id)
        s_context(event, context)
        s_name(event, name)
        s_level(event, level)
        s_created(event, created)
        s_expires(event, expires)
        s_author(event, author)
        s_group(event, group)
        s_data(event, data)
        s_acks(event, ())
        s_category(event, category)
        return event

    return new_event


new_event = _event_maker()


# Event ids: 41 bits of milliseconds since EPOCH, 10 bits of node id, 12 bits of
# sequence. Ids sort by creation time and never collide between nodes with
# different node ids; 4096 ids per millisecond per node.
EPOCH_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z
NODE_BITS = 10
SEQUENCE_BITS = 12
MAX_NODE_ID = (1 << NODE_BITS) - 1
_SEQUENCE_MASK = (1 << SEQUENCE_BITS) - 1
_TIME_SHIFT = NODE_BITS + SEQUENCE_BITS
_time_ns = time.time_ns


def id_time(event_id: int) -> datetime:
    """The creation time encoded in an event id (millisecond precision)."""
    ms = (event_id >> _TIME_SHIFT) + EPOCH_MS
    return datetime.fromtimestamp(ms / 1000, UTC)


def first_id_at(moment: datetime) -> int:
    """The smallest id an event created at ``moment`` can have (for time-range scans)."""
    ms = int(moment.timestamp() * 1000) - EPOCH_MS
    return max(ms, 0) << _TIME_SHIFT


class IdGenerator:
    """Time-ordered 64-bit ids, unique across nodes with distinct node ids.

    Thread-safe. If the clock steps backwards, ids keep increasing from the
    last one handed out instead of repeating.
    """

    def __init__(self, node_id: int = 0, clock_ms: Callable[[], int] | None = None) -> None:
        if isinstance(node_id, bool) or not isinstance(node_id, int) or not 0 <= node_id <= MAX_NODE_ID:
            raise ValueError(f"node id must be an integer from 0 to {MAX_NODE_ID}, got {node_id!r}")
        self.node_id = node_id
        self._node_bits = node_id << SEQUENCE_BITS
        self._clock_ms = clock_ms
        self._lock = threading.Lock()
        self._last_ms = 0
        self._last_id = 0
        self._last_created: tuple[int, datetime] = (0, datetime.fromtimestamp(0, UTC))

    def use_node(self, node_id: int) -> None:
        """Hand out ids of ``node_id`` from now on (a node that claimed its id at start)."""
        if isinstance(node_id, bool) or not isinstance(node_id, int) or not 0 <= node_id <= MAX_NODE_ID:
            raise ValueError(f"node id must be an integer from 0 to {MAX_NODE_ID}, got {node_id!r}")
        with self._lock:
            self.node_id = node_id
            self._node_bits = node_id << SEQUENCE_BITS

    def next(self) -> tuple[int, int]:
        """Return ``(id, milliseconds since the Unix epoch)`` for a new event."""
        with self._lock:
            now = self._clock_ms() if self._clock_ms is not None else _time_ns() // 1_000_000
            if now > self._last_ms:
                self._last_ms = now
                self._last_id = event_id = ((now - EPOCH_MS) << _TIME_SHIFT) | self._node_bits
                return event_id, now
            event_id = self._last_id + 1
            if not event_id & _SEQUENCE_MASK:
                # 4096 ids used up in this millisecond: borrow the next one.
                self._last_ms += 1
                event_id = ((self._last_ms - EPOCH_MS) << _TIME_SHIFT) | self._node_bits
            self._last_id = event_id
            return event_id, self._last_ms

    def next_created(self) -> tuple[int, datetime]:
        """Return ``(id, creation time)`` for a new event: the time is the id's millisecond,
        one shared ``datetime`` object per millisecond."""
        event_id, ms = self.next()
        last = self._last_created
        if last[0] == ms:
            return event_id, last[1]
        created = datetime.fromtimestamp(ms / 1000, UTC)
        self._last_created = (ms, created)
        return event_id, created
