"""What a session's outbox becomes on the wire, and waking the senders cheaply.

Live fan-out costs per delivery, so the work done per subscriber is kept to
the minimum:

- :class:`EncodedEvents` turns a live event into JSON text once, however
  many subscribers it goes to (``Event.marshal()`` + ``json.dumps`` cost
  more than everything else a delivery does in Python).
- :func:`frames` writes the items a session took from its outbox as
  WebSocket texts. For a subscription made with ``batch: true`` the events
  queued together go out as one ``events`` message (docs/protocol.md); the
  cached texts are spliced in, never decoded and encoded again.
- :class:`LoopWaker` sets the senders' ``asyncio.Event`` s from firing
  threads with at most one ``call_soon_threadsafe`` pending per event loop,
  instead of one per session per event.

:class:`SessionSubscription` is the per-subscription state the session
keeps under its lock; nothing else here takes a session's lock: the session
hands over the items it already took out of its outbox.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import weakref
from collections.abc import Container, Sequence
from typing import TYPE_CHECKING, Any

from linkserver.core.events import Event
from linkserver.net.codec import dumps
from linkserver.server.delivery import GAPS, Gap

if TYPE_CHECKING:
    from linkserver.net.protocol import Cancellable, SubscribeRequest

# An ``events`` message stops growing at this many characters of event text (a single
# event is always sent, whatever its size), so that a batch stays well below the 1 MiB
# message size common WebSocket clients accept by default.
BATCH_CHARS = 256 * 1024

# Outbox items: ("msg", dict) an answer; ("event", sid, Event) live; ("replay", sid, Event)
# from history; ("gap", sid, Gap).
Item = tuple[Any, ...]


class SessionSubscription:
    """What a session knows of one of its subscriptions (guarded by the session's lock):
    whether live events are held back (until the answer and the replay are out), the
    last id queued, the loss not yet reported, and where the replay stands."""

    __slots__ = (
        "sid",
        "ref",
        "request",
        "handle",
        "holding",
        "held",
        "last_id",
        "gap",
        "replaying",
        "after",
        "cursor",
        "rechecked",
        "replayed",
        "floor",
    )

    def __init__(self, sid: str, ref: Any, request: SubscribeRequest, floor: int) -> None:
        self.sid, self.ref, self.request, self.floor = sid, ref, request, floor
        self.handle: Cancellable | None = None
        self.holding = True
        self.held: collections.deque[Event] = collections.deque()
        self.last_id: int | None = None
        self.gap: Gap | None = None
        self.replaying = False
        self.after = 0  # replay events with ids above this (and the cursor)
        self.cursor: str | None = None
        self.rechecked = False
        self.replayed: set[int] = set()


class EncodedEvents:
    """The JSON text of recently pushed events, each encoded once.

    Bounded by ``max_events`` entries and ``max_chars`` characters, the oldest
    going first. An entry serves only the very event object it was made from,
    so an event that changed since (acknowledged, replayed from history) is
    encoded anew. Safe from any thread.
    """

    def __init__(self, max_events: int = 4096, max_chars: int = 16 << 20) -> None:
        self.max_events, self.max_chars = max_events, max_chars
        self._texts: dict[int, tuple[Event, str]] = {}
        self._chars = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def text(self, event: Event) -> str:
        entry = self._texts.get(event.id)
        if entry is not None and entry[0] is event:
            self.hits += 1
            return entry[1]
        text = dumps(event.marshal())
        self.misses += 1
        with self._lock:
            old = self._texts.pop(event.id, None)
            if old is not None:
                self._chars -= len(old[1])
            self._texts[event.id] = (event, text)
            self._chars += len(text)
            while self._texts and (len(self._texts) > self.max_events or self._chars > self.max_chars):
                oldest = next(iter(self._texts))  # dicts keep insertion order
                self._chars -= len(self._texts.pop(oldest)[1])
        return text

    def __len__(self) -> int:
        return len(self._texts)


# One for the process. A session is never more than its queue (1000 live events) plus one
# taken chunk behind the newest event, so 4096 entries serve every session that keeps up.
ENCODED = EncodedEvents()


# Subscription ids are the session's own ``s<number>``: JSON strings as they are.


def event_text(sid: str, event_json: str) -> str:
    return f'{{"type":"event","subscription":"{sid}","event":{event_json}}}'


def events_text(sid: str, events_json: Sequence[str]) -> str:
    return f'{{"type":"events","subscription":"{sid}","events":[{",".join(events_json)}]}}'


def gap_message(sid: str, gap: Gap) -> dict[str, Any]:
    return {
        "type": "gap",
        "subscription": sid,
        "last_delivered_id": gap.last_delivered_id,
        "last_dropped_id": gap.last_dropped_id,
        "dropped": gap.dropped,
    }


class _Batch:
    __slots__ = ("sid", "texts", "chars")

    def __init__(self, sid: str, text: str) -> None:
        self.sid, self.texts, self.chars = sid, [text], len(text)

    def wire(self) -> str:
        if len(self.texts) == 1:
            return event_text(self.sid, self.texts[0])
        return events_text(self.sid, self.texts)


def frames(items: Sequence[Item], batched: Container[str], encoded: EncodedEvents = ENCODED) -> list[str]:
    """The WebSocket texts for ``items`` taken from an outbox, in an order the protocol allows.

    Subscriptions in ``batched`` get their events in ``events`` messages: each
    event joins the open batch of its subscription, which sits where that
    subscription's first event of the batch was. A subscription's order
    therefore never changes, while its events may overtake other
    subscriptions' events (which the protocol does not order). A ``gap``
    closes its subscription's batch; an answer closes every batch, so answers
    and pushes keep their relative order exactly. A batch holding one event is
    an ordinary ``event`` message.
    """
    out: list[str | _Batch] = []
    open_batches: dict[str, _Batch] = {}
    for item in items:
        kind = item[0]
        if kind == "msg":
            open_batches.clear()
            out.append(dumps(item[1]))
            continue
        sid = item[1]
        if kind == "gap":
            GAPS["websocket"].add()
            open_batches.pop(sid, None)
            out.append(dumps(gap_message(sid, item[2])))
            continue
        event: Event = item[2]
        text = encoded.text(event) if kind == "event" else dumps(event.marshal())
        if sid not in batched:
            out.append(event_text(sid, text))
            continue
        batch = open_batches.get(sid)
        if batch is not None and batch.chars + len(text) <= BATCH_CHARS:
            batch.texts.append(text)
            batch.chars += len(text)
        else:
            batch = open_batches[sid] = _Batch(sid, text)
            out.append(batch)
    return [part if isinstance(part, str) else part.wire() for part in out]


class LoopWaker:
    """Sets ``asyncio.Event`` s of one event loop from any thread, cheaply.

    :meth:`wake` only records the event while a wake-up of the loop is
    pending; the first call after the loop ran schedules one. Many sessions
    signalled by one fired event thus cost one ``call_soon_threadsafe``.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._pending: list[asyncio.Event] = []
        self.wakeups = 0

    def wake(self, event: asyncio.Event) -> None:
        with self._lock:
            self._pending.append(event)
            if len(self._pending) > 1:
                return  # a wake-up is already scheduled and will see this one
        try:
            self._loop.call_soon_threadsafe(self._run)
        except RuntimeError:  # the loop is closed: its sessions are ending anyway
            with self._lock:
                self._pending.clear()

    def _run(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        self.wakeups += 1
        for event in pending:
            event.set()


_WAKERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopWaker] = weakref.WeakKeyDictionary()


def waker_for(loop: asyncio.AbstractEventLoop) -> LoopWaker:
    """The loop's one waker (call on that loop)."""
    waker = _WAKERS.get(loop)
    if waker is None:
        waker = _WAKERS[loop] = LoopWaker(loop)
    return waker
