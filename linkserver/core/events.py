"""Fired events, acknowledgements and event ids."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import attrs
import msgspec
import msgspec.structs

from linkserver.core.levels import Level
from linkserver.core.records import DataTable, labelled, to_jsonable

UTC = UTC


@attrs.frozen(kw_only=True)
class Acknowledgement:
    time: datetime
    user: str
    text: str


class Shows(Protocol):
    """What shows an event: its definition (server side) or :class:`Shown` (as received)."""

    def message_for(self, event: Event) -> str | None: ...

    def labels_for(self, event: Event) -> list[dict[str, Any]] | None: ...


@attrs.frozen
class Shown:
    """The rendering of an event as received from a server (``message``, ``labels``,
    ``instructions`` and ``alarms`` of its JSON): what a client shows."""

    message: str | None = None
    labels: list[dict[str, Any]] | None = None
    instructions: str | None = None
    alarms: list[dict[str, Any]] | None = None

    def message_for(self, event: Event) -> str | None:
        return self.message

    def labels_for(self, event: Event) -> list[dict[str, Any]] | None:
        return self.labels


class Event(msgspec.Struct, frozen=True, gc=False):
    """One fired event. ``expires`` is None for non-persistent events.

    Immutable. A msgspec ``Struct`` rather than an attrs class: made in C (a
    fifth of the cost of attrs' frozen ``__init__``; the fire path makes one
    per fire), and not tracked by the garbage collector (an event never
    refers back to itself; queued persistent events would otherwise make
    collections dearer). Build it positionally or by keyword; a changed copy
    is :meth:`evolve` (``msgspec.structs.replace``). ``category`` is the
    definition's (linkserver.core.categories), None for events stored
    before categories existed.

    ``display`` is what renders :attr:`message` and :attr:`labels`: the event's
    definition where the server fired or read it, a :class:`Shown` where a client
    received it. It is not part of the event's value (equality ignores it) and
    renders only when asked, so firing costs no rendering.
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
    display: Any = None  # a Shows; Any: msgspec need not know the type

    def __eq__(self, other: object) -> bool:
        # Every field but display: how an event is shown is not part of what it is.
        if type(other) is not Event:
            return NotImplemented
        return (
            self.id == other.id
            and self.context == other.context
            and self.name == other.name
            and self.level == other.level
            and self.created == other.created
            and self.expires == other.expires
            and self.author == other.author
            and self.group == other.group
            and self.data == other.data
            and self.acknowledgements == other.acknowledgements
            and self.category == other.category
        )

    def __hash__(self) -> int:
        return hash((self.id, self.context, self.name))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__struct_fields__[:-1])
        return f"Event({fields})"

    @property
    def message(self) -> str | None:
        """What operators read first: the definition's message template rendered from this
        event (else its description, else the name); None when nothing shows this event."""
        display = self.display
        return None if display is None else display.message_for(self)

    @property
    def labels(self) -> list[dict[str, Any]] | None:
        """The labels of the event's coded values per record (``[{"status": "down"}]``), or None."""
        display = self.display
        return None if display is None else display.labels_for(self)

    @property
    def shown_data(self) -> list[dict[str, Any]]:
        """The records with coded values shown as their labels (the stored data is unchanged)."""
        return labelled(self.data, self.labels)

    @property
    def instructions(self) -> str | None:
        """The definition's operator instructions, where known (None: not known here)."""
        text = getattr(self.display, "instructions", None)
        return text if isinstance(text, str) and text else None

    @property
    def alarms(self) -> list[dict[str, Any]]:
        """The alarms this event raises or clears, as ``GET /events/{id}`` says them (``key``,
        ``role``, ``id``, ``state``, ``count``: docs/alarms.md); empty where not known."""
        found = getattr(self.display, "alarms", None)
        return list(found) if isinstance(found, list) else []

    def shown_by(self, display: Shows | None) -> Event:
        """This event, shown by ``display`` from now on unless something shows it already
        (events read from history get their definition this way). Returns the event."""
        if self.display is None and display is not None:
            _set_display(self, display)
        return self

    @property
    def record(self) -> dict[str, Any]:
        """The first (for single-record formats: the only) record, or {}."""
        return self.data[0] if self.data else {}

    @property
    def acknowledged(self) -> bool:
        return bool(self.acknowledgements)

    def evolve(self, **changes: Any) -> Event:
        """A copy with ``changes`` (field name -> new value): what ``attrs.evolve`` is to attrs classes."""
        return msgspec.structs.replace(self, **changes)

    def marshal(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`unmarshal` reverses it. ``message`` and ``labels`` are
        there when something shows the event (the server always does)."""
        out = {
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
        display = self.display
        if display is not None:
            message = display.message_for(self)
            if message is not None:
                out["message"] = message
            labels = display.labels_for(self)
            if labels is not None:
                out["labels"] = labels
        return out

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
            display=_shown(raw),
        )


_set_display = Event.display.__set__  # type: ignore[attr-defined]  # the field's slot: set once, by shown_by


def _shown(raw: dict[str, Any]) -> Shown | None:
    message, labels, instructions = raw.get("message"), raw.get("labels"), raw.get("instructions")
    alarms = raw.get("alarms")
    if message is None and labels is None and instructions is None and alarms is None:
        return None
    return Shown(message=message, labels=labels, instructions=instructions, alarms=alarms)


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
    display: Shows | None = None,
) -> Event:
    """An Event without acknowledgements (kept for callers of the positional fire-path maker)."""
    return Event(id, context, name, level, created, expires, author, group, data, (), category, display)


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


def node_of(event_id: int) -> int:
    """The node id encoded in an event id."""
    return (event_id >> SEQUENCE_BITS) & MAX_NODE_ID


def first_id_at(moment: datetime) -> int:
    """The smallest id an event created at ``moment`` can have (for time-range scans)."""
    ms = int(moment.timestamp() * 1000) - EPOCH_MS
    return max(ms, 0) << _TIME_SHIFT


class IdGenerator:
    """Time-ordered 64-bit ids, unique across nodes with distinct node ids.

    Thread-safe, and increasing within each thread. If the clock steps
    backwards, ids keep increasing from the last one handed out instead of
    repeating; beyond 4096 ids in one millisecond the next millisecond is
    borrowed.

    Without a lock on the usual path (the fire path takes an id per fire):
    each millisecond is a *generation*, ``(ms, counter, first id, created)``,
    and ``next(counter)`` is atomic, so threads drawing from one generation
    get distinct sequence numbers. Only moving to a new generation (the
    clock moved on, or 4096 ids are used up) takes the lock, and at most one
    thread makes each; a generation's millisecond is always later than the
    one before, so two generations never share ids.
    """

    def __init__(self, node_id: int = 0, clock_ms: Callable[[], int] | None = None) -> None:
        if isinstance(node_id, bool) or not isinstance(node_id, int) or not 0 <= node_id <= MAX_NODE_ID:
            raise ValueError(f"node id must be an integer from 0 to {MAX_NODE_ID}, got {node_id!r}")
        self.node_id = node_id
        self._node_bits = node_id << SEQUENCE_BITS
        self._clock_ms = clock_ms
        self._lock = threading.Lock()
        self._generation = self._make(EPOCH_MS)

    def _make(self, ms: int) -> tuple[int, Any, int, datetime]:
        first = ((ms - EPOCH_MS) << _TIME_SHIFT) | self._node_bits
        return ms, itertools.count(), first, datetime.fromtimestamp(ms / 1000, UTC)

    def use_node(self, node_id: int) -> None:
        """Hand out ids of ``node_id`` from now on (a node that claimed its id at start)."""
        if isinstance(node_id, bool) or not isinstance(node_id, int) or not 0 <= node_id <= MAX_NODE_ID:
            raise ValueError(f"node id must be an integer from 0 to {MAX_NODE_ID}, got {node_id!r}")
        with self._lock:
            self.node_id = node_id
            self._node_bits = node_id << SEQUENCE_BITS

    def next(self) -> tuple[int, int]:
        """Return ``(id, milliseconds since the Unix epoch)`` for a new event."""
        event_id, generation = self._take()
        return event_id, generation[0]

    def next_created(self) -> tuple[int, datetime]:
        """Return ``(id, creation time)`` for a new event: the time is the id's millisecond,
        one shared ``datetime`` object per millisecond."""
        now = self._clock_ms() if self._clock_ms is not None else _time_ns() // 1_000_000
        generation = self._generation
        sequence = next(generation[1])
        if sequence <= _SEQUENCE_MASK and generation[0] >= now:  # the usual case, inline
            return generation[2] | sequence, generation[3]
        event_id, generation = self._take()
        return event_id, generation[3]

    def _take(self) -> tuple[int, tuple[int, Any, int, datetime]]:
        now = self._clock_ms() if self._clock_ms is not None else _time_ns() // 1_000_000
        generation = self._generation
        sequence = next(generation[1])
        while sequence > _SEQUENCE_MASK or generation[0] < now:
            with self._lock:
                if self._generation is generation:  # nobody moved on meanwhile: this thread does
                    # the clock's millisecond, or the next one when this one's ids are used up (or
                    # the clock stepped back): always later than the generation before
                    self._generation = self._make(max(now, generation[0] + 1))
                generation = self._generation
            sequence = next(generation[1])
        return generation[2] | sequence, generation
