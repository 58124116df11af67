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
- :class:`LoopWaker` wakes the sessions' :class:`Pusher` s from firing
  threads with at most one ``call_soon_threadsafe`` pending per event loop,
  instead of one per session per event.
- :class:`Pusher` writes a session's outbox from that one wake-up, starting
  each ASGI send eagerly: a send that completes without waiting (the
  transport is writable: the usual case) costs no task, no
  ``asyncio.Event`` and no loop iteration. One event to 100 sessions is one
  callback making 100 sends, not 100 task wake-ups.

:class:`SessionSubscription` is the per-subscription state the session
keeps under its lock; nothing else here takes a session's lock: the session
hands over the items it already took out of its outbox.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import weakref
from collections.abc import Awaitable, Callable, Container, Coroutine, Generator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from linkserver.core.events import Event
from linkserver.net.codec import dumps
from linkserver.net.wire import Wire, direct_writer
from linkserver.server.delivery import GAPS
from linkserver.typing import Gap

if TYPE_CHECKING:
    from linkserver.net.protocol import Cancellable, Session, SubscribeRequest

log = logging.getLogger("linkserver.net.push")

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
        "dedupe_from",
        "forget_replayed",
    )

    def __init__(
        self, sid: str, ref: Any, request: SubscribeRequest, floor: int, dedupe_from: int = 0
    ) -> None:
        self.sid, self.ref, self.request, self.floor = sid, ref, request, floor
        self.dedupe_from = dedupe_from  # replayed ids from here on are remembered (see protocol.py)
        self.forget_replayed = 0.0  # after the replay: when (monotonic) ``replayed`` is dropped
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
    """The JSON text of recently pushed events, each encoded once, and the ``event``
    messages made of them, each made once per subscription id.

    Bounded by ``max_events`` entries and ``max_chars`` characters (an event's
    text and its messages), the oldest going first. An entry serves only the
    very event object it was made from, so an event that changed since
    (acknowledged, replayed from history) is encoded anew. Safe from any thread.
    """

    def __init__(self, max_events: int = 4096, max_chars: int = 16 << 20) -> None:
        self.max_events, self.max_chars = max_events, max_chars
        self._texts: dict[int, _Encoded] = {}
        self._chars = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def text(self, event: Event) -> str:
        return self._entry(event).text

    def message(self, sid: str, event: Event) -> Wire:
        """``event_text(sid, text(event))``, the same object for every session whose
        subscription has this id (``s1`` for most: ids count per session), so that its
        WebSocket frame is made once too (:class:`Wire`)."""
        entry = self._entry(event)
        message = entry.messages.get(sid)
        if message is None:
            message = Wire(event_text(sid, entry.text))
            with self._lock:
                entry.messages[sid] = message
                if self._texts.get(event.id) is entry:
                    entry.chars += 2 * len(message)  # the text and, once written, its frame
                    self._chars += 2 * len(message)
                    self._trim()
        return message

    def _entry(self, event: Event) -> _Encoded:
        entry = self._texts.get(event.id)
        if entry is not None and entry.event is event:
            self.hits += 1
            return entry
        entry = _Encoded(event, dumps(event.marshal()))
        self.misses += 1
        with self._lock:
            old = self._texts.pop(event.id, None)
            if old is not None:
                self._chars -= old.chars
            self._texts[event.id] = entry
            self._chars += entry.chars
            self._trim()
        return entry

    def _trim(self) -> None:  # lock held
        texts = self._texts
        while texts and (len(texts) > self.max_events or self._chars > self.max_chars):
            oldest = next(iter(texts))  # dicts keep insertion order
            self._chars -= texts.pop(oldest).chars

    def __len__(self) -> int:
        return len(self._texts)


class _Encoded:
    __slots__ = ("event", "text", "chars", "messages")

    def __init__(self, event: Event, text: str) -> None:
        self.event, self.text, self.chars = event, text, len(text)
        self.messages: dict[str, Wire] = {}


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
    if len(items) == 1 and items[0][0] == "event" and items[0][1] not in batched:  # the usual push
        return [encoded.message(items[0][1], items[0][2])]
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
        if sid not in batched:
            out.append(
                encoded.message(sid, event) if kind == "event" else event_text(sid, dumps(event.marshal()))
            )
            continue
        text = encoded.text(event) if kind == "event" else dumps(event.marshal())
        batch = open_batches.get(sid)
        if batch is not None and batch.chars + len(text) <= BATCH_CHARS:
            batch.texts.append(text)
            batch.chars += len(text)
        else:
            batch = open_batches[sid] = _Batch(sid, text)
            out.append(batch)
    return [part if isinstance(part, str) else part.wire() for part in out]


class Wakeable(Protocol):
    def set(self) -> None: ...


# Per thread: the (waker, target) wake-ups asked for inside ``deferred_wakes()``, or None.
_deferred = threading.local()


class LoopWaker:
    """Calls ``set()`` of objects (a :class:`Pusher`, an ``asyncio.Event``) on one event loop,
    from any thread, cheaply.

    :meth:`wake` only records the object while a wake-up of the loop is
    pending; the first call after the loop ran schedules one. Many sessions
    signalled by one fired event thus cost one ``call_soon_threadsafe``.
    Inside :func:`deferred_wakes` the calls of that thread are recorded and
    made when it leaves (see there why).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._pending: list[Wakeable] = []
        self.wakeups = 0

    def wake(self, target: Wakeable) -> None:
        held = getattr(_deferred, "wakes", None)
        if held is not None:
            held.append((self, target))
            return
        with self._lock:
            self._pending.append(target)
            if len(self._pending) > 1:
                return  # a wake-up is already scheduled and will see this one
        self._schedule()

    def wake_all(self, targets: Sequence[Wakeable]) -> None:
        """:meth:`wake` for each of ``targets``, with at most one loop wake-up."""
        with self._lock:
            scheduled = bool(self._pending)
            self._pending.extend(targets)
        if not scheduled:
            self._schedule()

    def _schedule(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._run)
        except RuntimeError:  # the loop is closed: its sessions are ending anyway
            with self._lock:
                self._pending.clear()

    def _run(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        self.wakeups += 1
        for target in pending:
            try:
                target.set()
            except Exception:  # one session's failure never keeps the others waiting
                log.exception("waking %r failed", target)


class deferred_wakes:  # noqa: N801 - used like a function: ``with deferred_wakes():``
    """Wake-ups this thread asks for inside are made when it leaves, together: for one fired
    event, one ``call_soon_threadsafe`` per loop after the last session was offered it.

    Waking the loop is a write to its self-pipe, a system call that lets the GIL go: in the
    middle of an event's offers it hands the interpreter to the loop thread or to the history
    writer (woken by the same fire), and the firing thread waits for it back before it offers
    the event to the next session; the sends begin only once every session has it anyway
    (measured at 100 subscribers: offers 0.78 ms with the wake at the first offer, most of it
    waiting for the GIL). Nested uses are one. What a deferred wake delays is the loop's sends
    by the rest of the offers: the caller keeps the scope to one event's delivery (a firing
    thread that may wait for long inside, a durable fire, must not use it).
    """

    __slots__ = ("outer",)

    def __enter__(self) -> None:
        self.outer = getattr(_deferred, "wakes", None) is not None
        if not self.outer:
            _deferred.wakes = []

    def __exit__(self, *exc: object) -> None:
        if self.outer:
            return
        held, _deferred.wakes = _deferred.wakes, None
        if len(held) == 1:
            held[0][0].wake(held[0][1])
            return
        by_waker: dict[LoopWaker, list[Wakeable]] = {}
        for waker, target in held:
            by_waker.setdefault(waker, []).append(target)
        for waker, targets in by_waker.items():
            waker.wake_all(targets)


_WAKERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopWaker] = weakref.WeakKeyDictionary()


def waker_for(loop: asyncio.AbstractEventLoop) -> LoopWaker:
    """The loop's one waker (call on that loop)."""
    waker = _WAKERS.get(loop)
    if waker is None:
        waker = _WAKERS[loop] = LoopWaker(loop)
    return waker


# -- sending ----------------------------------------------------------------------------------

SEND_CHUNK = 1000  # outbox items taken at once (batched subscriptions: few messages)
# What a send raises when the connection is gone (uvicorn: ClientDisconnected, an OSError).
GONE = (RuntimeError, OSError)


def start(coroutine: Coroutine[Any, Any, None]) -> Awaitable[None] | None:
    """Run ``coroutine`` until it first waits: None if it finished without waiting, else an
    awaitable that finishes it (what Python 3.12's eager tasks do, without the task).

    Raises what the coroutine raised before waiting.
    """
    try:
        waiting = coroutine.send(None)
    except StopIteration:
        return None
    return _Rest(coroutine, waiting)


class _Rest:
    """The rest of a coroutine that :func:`start` ran up to ``waiting`` (what it yielded to its
    task: a future, or None for a bare yield). Awaiting it hands ``waiting`` to the awaiting
    task, which waits for it as the coroutine's own task would have, then resumes the
    coroutine; cancelling the awaiting task throws into the coroutine."""

    __slots__ = ("coroutine", "waiting")

    def __init__(self, coroutine: Coroutine[Any, Any, None], waiting: Any) -> None:
        self.coroutine, self.waiting = coroutine, waiting

    def __await__(self) -> Generator[Any, None, None]:
        coroutine, waiting = self.coroutine, self.waiting
        try:
            while True:
                try:
                    yield waiting
                except BaseException as exc:  # noqa: BLE001 - cancellation goes to the coroutine
                    waiting = coroutine.throw(exc)
                else:
                    waiting = coroutine.send(None)
        except StopIteration:
            return


class Closing(Protocol):
    """What a Pusher reads of its connection (net.connections.Connection): set once it ended."""

    closing: tuple[int, str] | None


class Pusher:
    """Writes one session's outbox to its WebSocket; lives on the connection's event loop.

    :meth:`set` (from the loop's :class:`LoopWaker`) takes what the session
    has to say and sends it at once, each ASGI send started eagerly. Only
    when a send has to wait (flow control: the client reads slowly), or a
    replay step (:meth:`Session.pump`, blocking) is due, does the rest go to
    a task; until that task is done :meth:`set` does nothing, and the task
    takes whatever arrived meanwhile before it ends. The session's order is
    kept throughout. ``pump(fn)`` runs a blocking call off the loop.
    """

    def __init__(
        self,
        session: Session,
        send: Callable[[dict[str, Any]], Coroutine[Any, Any, None]],
        pump: Callable[[Callable[[], object]], Awaitable[object]],
        connection: Closing | None = None,
    ) -> None:
        self.session, self.send, self._pump_off_loop = session, send, pump
        self.connection = connection
        # Texts written straight to the transport where that is what the ASGI send would do
        # (linkserver/net/wire.py); the ASGI send otherwise, and for everything after it.
        self._write = direct_writer(send)
        self.task: asyncio.Task[None] | None = None
        self.closed = False

    def set(self) -> None:
        if self.task is None and not self.closed:
            self._push()

    def close(self) -> None:
        self.closed = True
        if self.task is not None:
            self.task.cancel()

    def _push(self) -> None:
        session, send, connection, write = self.session, self.send, self.connection, self._write
        try:
            while True:
                if connection is not None and connection.closing is not None:
                    self._close(*connection.closing)
                    return
                texts = session.take_text(SEND_CHUNK)
                for index, text in enumerate(texts):
                    if connection is not None and connection.closing is not None:
                        break  # the next round sends the close frame instead
                    if write is not None and write(text):
                        continue
                    rest = start(send({"type": "websocket.send", "text": text}))
                    if rest is not None:
                        self._continue(self._finish(rest, texts[index + 1 :]))
                        return
                if not session.pending and (connection is None or connection.closing is None):
                    break  # emptied: the next item signals again
            if session.wants_pump:
                self._continue(self._pump())
        except GONE:
            self.closed = True  # the connection is gone; the receive loop ends the session
        except Exception:
            self._failed()

    def _close(self, code: int, reason: str) -> None:
        """An ended connection (token revoked, user changed): its close frame, nothing more."""
        self.closed = True
        rest = start(self.send({"type": "websocket.close", "code": code, "reason": reason}))
        if rest is not None:
            self.task = asyncio.get_running_loop().create_task(_quietly(rest))

    def _continue(self, work: Coroutine[Any, Any, None]) -> None:
        self.task = asyncio.get_running_loop().create_task(work)

    async def _finish(self, rest: Awaitable[None], texts: Sequence[str]) -> None:
        try:
            await rest
            for text in texts:
                await self.send({"type": "websocket.send", "text": text})
        except GONE:
            self.closed = True
            return
        except Exception:
            self._failed()
            return
        finally:
            self.task = None
        self.set()  # what came while this was sending

    async def _pump(self) -> None:
        try:
            await self._pump_off_loop(self.session.pump)
        except Exception:
            self._failed()
            return
        finally:
            self.task = None
        self.set()

    def _failed(self) -> None:
        """A bug: close the connection rather than leave a session that never answers."""
        log.exception("WebSocket sender of %s failed; closing the connection", self.session.principal.name)
        self.closed = True
        self.session.close()
        closing = self.send(
            {"type": "websocket.close", "code": 1011, "reason": "internal error; see the log"}
        )
        asyncio.get_running_loop().create_task(_quietly(closing))

    def __repr__(self) -> str:
        return f"<Pusher of {self.session.principal.name}{' closed' if self.closed else ''}>"


async def _quietly(work: Awaitable[None]) -> None:
    try:
        await work
    except Exception:  # noqa: BLE001 - the connection is gone already
        pass
