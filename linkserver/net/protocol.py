"""The WebSocket session protocol (docs/protocol.md) as a pure object: no socket, no asyncio.

A :class:`Session` takes client messages with :meth:`Session.receive` and
puts everything it has to say into its *outbox*, in order; the transport
takes messages out with :meth:`Session.take` and sends them. Three kinds of
message share the outbox:

- answers to requests (``fired``, ``subscribed``, ``error``...) in request
  order, never dropped. A durable ``fire`` does not hold up the messages
  after it: its answer's place in the outbox is kept and filled when the
  commit completes (in the committing thread), so a client can keep many
  durable fires in flight and the history writer commits them together;
  what follows the place waits for it;
- history replayed for ``resume_from``, fetched a page at a time by
  :meth:`Session.pump` when the outbox has room, never dropped;
- live events, pushed by the engine from the firing thread through
  :meth:`Session.offer`-style listeners that only append under a lock, so
  a slow client never delays a firer. At most ``Limits.queue_size`` live
  events wait; beyond that they are dropped and counted, and the
  subscriber gets a ``gap`` message before its next event (or as soon as
  the outbox is empty).

A new subscription holds its live events until its ``subscribed`` answer
(and, with ``resume_from``, the replay) is in the outbox, so nothing
arrives before the answer, and live events already replayed from history
are not sent twice: neither those held meanwhile nor copies that come
after the replay. An event fired on another node reaches this one through
the cluster's bus, usually before its commit there but after it when it
waited in that node's outbox, so the replay can read it from history before
(or long after: a busy node's bus consumer lags) its live copy comes; the replayed ids of events from up to
:data:`REPLAY_DEDUPE_WINDOW` seconds before the subscription are kept that
long after the replay, and a live copy of one of them is dropped.

What :meth:`Session.take_text` hands the transport is written by
:mod:`linkserver.net.push`: live events encoded once for all sessions, and
the events of a ``batch: true`` subscription taken together sent as one
``events`` message.

Thread model: ``receive`` and ``pump`` may block (firing, history) and run
in worker threads, serialised by the session; ``take_text`` is cheap and
may run on the event loop; listeners run in firing threads. ``on_output`` is
called (from any thread) when the outbox turns non-empty.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import heapq
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import attrs

from linkserver.core.errors import HistoryUnavailable, LinkServerError
from linkserver.core.events import Event, first_id_at
from linkserver.core.levels import Level
from linkserver.core.permissions import Principal
from linkserver.history.base import HistoryPage
from linkserver.net.codec import BadRequest, FireRequest, NotFound, TooLarge, error_body, fire_request
from linkserver.net.push import ENCODED, SessionSubscription, deferred_wakes, frames
from linkserver.server.delivery import DROPPED
from linkserver.typing import Gap
from linkserver.wire import decode
from linkserver.wire.shapes import (
    MESSAGE_TYPES,
    ClientMessage,
    FireBatchMessage,
    FireMessage,
    PingMessage,
    SubscribeMessage,
    UnsubscribeMessage,
)

log = logging.getLogger("linkserver.net.session")

#: How far back (seconds before a resuming subscription began) replayed events are remembered,
#: and how long after its replay: a live copy of one of them arriving meanwhile (from another
#: node, whose bus may deliver an event after its commit there) is not sent again. A copy later
#: than that (a broker outage) may be: clients de-duplicate by id (linkserver.client does).
REPLAY_DEDUPE_WINDOW = 60.0


@attrs.frozen(kw_only=True)
class Limits:
    """What one client may ask for at once. Exceeding a limit is answered with an error."""

    max_message_bytes: int = 1 << 20  # one WebSocket message or HTTP body
    max_batch: int = 1000  # events in one batch
    max_subscriptions: int = 100  # per WebSocket session
    queue_size: int = 1000  # live events waiting to be sent, per session
    replay_page: int = 500  # history events fetched per replay step
    durable_timeout: float = 5.0  # seconds a durable fire waits for history before HistoryUnavailable
    # Keepalive pings every so many seconds. An unanswered ping never closes the connection: a
    # client that does not read cannot answer while its socket is full, and it is owed a ``gap``
    # when it reads again, not a 1011. A dead peer is closed by TCP (its pings go unacknowledged).
    ping_interval: float | None = 20.0


@attrs.frozen(kw_only=True)
class SubscribeRequest:
    mask: str
    event: str = "*"
    filter: str | None = None
    min_level: Level | None = None
    resume_from: int | None = None


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Backend(Protocol):
    """What a session needs from the server, with the caller's permissions applied."""

    def fire(self, principal: Principal, request: FireRequest, *, durable: bool) -> Event: ...

    def submit(self, principal: Principal, request: FireRequest) -> tuple[Event, Future[Event] | None]:
        """Fire without waiting: the event and, if persistent, the future of its commit."""
        ...

    def fire_many(
        self, principal: Principal, requests: list[FireRequest | LinkServerError], *, durable: bool
    ) -> list[Event | LinkServerError]: ...

    def subscribe(
        self, principal: Principal, request: SubscribeRequest, listener: Callable[[Event], None]
    ) -> Cancellable: ...

    def replay(
        self, principal: Principal, request: SubscribeRequest, after_id: int, cursor: str | None, limit: int
    ) -> HistoryPage:
        """Stored, visible, matching events with id > ``after_id``, oldest first, one page."""
        ...

    def flush(self) -> None:
        """Return once every event fired so far is readable from history."""
        ...


_HANDLERS = {
    FireMessage: "_on_fire",
    FireBatchMessage: "_on_fire_batch",
    SubscribeMessage: "_on_subscribe",
    UnsubscribeMessage: "_on_unsubscribe",
    PingMessage: "_on_ping",
}


class _Unreadable(Exception):
    def __init__(self, ref: Any, error: LinkServerError) -> None:
        self.ref, self.error = ref, error


class _Deadlines:
    """One thread for every session: calls ``late()`` for futures not done ``seconds`` after
    they were added (a durable fire's answer, when history does not confirm it in time)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], None], Future[Any]]] = []
        self._order = itertools.count()
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, seconds: float, late: Callable[[], None], future: Future[Any]) -> None:
        with self._condition:
            order = next(self._order)
            heapq.heappush(self._heap, (time.monotonic() + seconds, order, late, future))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="linkserver-deadlines", daemon=True)
                self._thread.start()
            elif self._heap[0][1] == order:  # the earliest now: the thread sleeps too long otherwise
                self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._heap:
                    self._condition.wait()
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._condition.wait(wait)
                    continue
                _, _, late, future = heapq.heappop(self._heap)
            if not future.done():
                try:
                    late()
                except Exception:
                    log.exception("a durable fire's deadline failed")


_DEADLINES = _Deadlines()
_NO_SCOPE = contextlib.nullcontext()


class Session:
    """One client's WebSocket session; see the module docstring for the contract."""

    def __init__(
        self,
        backend: Backend,
        principal: Principal,
        limits: Limits | None = None,
        *,
        on_output: Callable[[], None] | None = None,
    ) -> None:
        self.backend = backend
        self.principal = principal
        self.limits = limits or Limits()
        self.on_output = on_output
        self._subs: dict[str, SessionSubscription] = {}
        self._batched: set[str] = set()  # subscriptions that take ``events`` messages
        self._queue: collections.deque[tuple[Any, ...]] = collections.deque()
        self._live = 0  # live events in the queue
        self._signalled = False
        # Subscriptions ever set replaying, less those whose replay ended: while 0, no replay is
        # due, which the sender asks after every push (unsubscribed ones only keep it above 0).
        self._replays = 0
        self._gapped = False  # some subscription may hold a gap not yet queued (set by _drop)
        self._lock = threading.Lock()  # the outbox and the subscriptions' state
        self._serial = threading.RLock()  # one receive or pump at a time
        self._ids = itertools.count(1)
        self.closed = False

    # -- input ---------------------------------------------------------------

    def receive(self, text: str | bytes) -> None:
        """Handle one client message; its answer goes to the outbox."""
        with self._serial:
            ref = None
            try:
                decode.check_size(text, self.limits.max_message_bytes)
                message = self._decode(text)
                ref = message.ref
                getattr(self, _HANDLERS[type(message)])(message, ref)
            except _Unreadable as exc:
                self._answer(self.error(exc.ref, exc.error))
            except LinkServerError as exc:
                self._answer(self.error(ref, exc))
            except Exception as exc:  # a bug: the client learns that much, the log the rest
                log.exception("session of %s failed on a message", self.principal.name)
                self._answer(self.error(ref, exc))

    @staticmethod
    def _decode(text: str | bytes) -> ClientMessage:
        """The message in its shape; on failure the error and whatever ``ref`` can be read."""
        try:
            return decode.decode(text, ClientMessage, "a message")  # type: ignore[arg-type]
        except LinkServerError as exc:
            error: LinkServerError = exc
        try:
            raw = decode.loads(text, "a message")
        except LinkServerError:
            raise _Unreadable(None, error) from None
        if not isinstance(raw, dict):
            raise _Unreadable(None, BadRequest("a message must be a JSON object")) from None
        ref = raw.get("ref")
        ref = ref if isinstance(ref, (int, str)) and not isinstance(ref, bool) else None
        kind = raw.get("type")
        if "type" not in raw:
            error = BadRequest(f"a message: 'type' is required; use one of {', '.join(MESSAGE_TYPES)}")
        elif kind not in MESSAGE_TYPES:
            error = BadRequest(f"unknown message type {kind!r}; use one of {', '.join(MESSAGE_TYPES)}")
        else:
            error = BadRequest(str(error).replace("a message:", f"a {kind} message:", 1))
        raise _Unreadable(ref, error)

    @staticmethod
    def error(ref: Any, exc: BaseException) -> dict[str, Any]:
        return {"type": "error", "ref": ref, "error": error_body(exc)}

    def _on_ping(self, message: PingMessage, ref: Any) -> None:
        self._answer({"type": "pong", "ref": ref})

    def _on_fire(self, message: FireMessage, ref: Any) -> None:
        if not message.durable:
            with deferred_wakes():  # see _on_fire_batch
                event = self.backend.fire(self.principal, message, durable=False)
                self._answer({"type": "fired", "ref": ref, "id": event.id})
            return
        event, stored = self.backend.submit(self.principal, message)
        answer = {"type": "fired", "ref": ref, "id": event.id}
        if stored is None:
            self._answer(answer)
            return
        place: list[dict[str, Any] | None] = [None]
        with self._lock:
            self._queue.append(("wait", place))

        def committed(future: Future[Event]) -> None:
            error = future.exception()
            self._fill(place, answer if error is None else self.error(ref, error))

        def too_late() -> None:
            self._fill(place, self.error(ref, HistoryUnavailable(
                f"{message.event} in {message.context} was fired but history did not confirm it within "
                f"{self.limits.durable_timeout:g} s (is the database reachable?): it is not confirmed "
                "durable; retry, or look for it in history once the database is back"
            )))  # fmt: skip

        _DEADLINES.add(self.limits.durable_timeout, too_late, stored)
        stored.add_done_callback(committed)

    def _fill(self, place: list[dict[str, Any] | None], message: dict[str, Any]) -> None:
        """A kept answer place gets its message, once (the commit or the deadline, first wins)."""
        with self._lock:
            if place[0] is None:
                place[0] = message
                self._signal()

    def _on_fire_batch(self, message: FireBatchMessage, ref: Any) -> None:
        items = message.events
        if len(items) > self.limits.max_batch:
            raise TooLarge(f"the batch has {len(items)} events; the limit is {self.limits.max_batch}")
        requests: list[FireRequest | LinkServerError] = []
        for index, item in enumerate(items):
            try:
                requests.append(fire_request(item, f"events[{index}]"))
            except LinkServerError as exc:
                requests.append(exc)
        # One event, not durable: nothing here waits once it is delivered, so the sessions it
        # went to and this answer share one loop wake-up, made when the answer is queued: the
        # loop's sends then do not compete with this thread for the GIL. (More events are woken
        # for event by event, and a durable batch before its wait for the commit.)
        with deferred_wakes() if len(requests) == 1 and not message.durable else _NO_SCOPE:
            self._fire_batch(requests, ref, message.durable)

    def _fire_batch(self, requests: list[FireRequest | LinkServerError], ref: Any, durable: bool) -> None:
        results = self.backend.fire_many(self.principal, requests, durable=durable)
        self._answer(
            {
                "type": "fired_batch",
                "ref": ref,
                "results": [
                    {"id": r.id} if isinstance(r, Event) else {"error": error_body(r)} for r in results
                ],
            }
        )

    def _on_subscribe(self, message: SubscribeMessage, ref: Any) -> None:
        resume = message.resume_from
        batch = message.batch
        request = SubscribeRequest(
            mask=message.mask,
            event=message.event,
            filter=message.filter or None,
            min_level=Level.parse(message.min_level) if message.min_level is not None else None,
            resume_from=resume,
        )
        if len(self._subs) >= self.limits.max_subscriptions:
            raise TooLarge(
                f"this session has {len(self._subs)} subscriptions, the most allowed; "
                "unsubscribe from one first"
            )
        sid = f"s{next(self._ids)}"
        # Local events offered from now on are fired after this moment (the replay's second
        # pass reads again from a second before it); events from other nodes may come live
        # much later than they were fired, so replayed ids are remembered from further back
        # (REPLAY_DEDUPE_WINDOW), so that nothing is sent twice.
        now = datetime.now(UTC)
        floor = first_id_at(now - timedelta(seconds=1))
        dedupe_from = first_id_at(now - timedelta(seconds=REPLAY_DEDUPE_WINDOW))
        sub = SessionSubscription(sid, ref, request, floor, dedupe_from if resume is not None else floor)
        with self._lock:
            if self.closed:
                return
            self._subs[sid] = sub
            if batch:
                self._batched.add(sid)
        try:
            handle = self.backend.subscribe(self.principal, request, functools.partial(self._offer, sub))
        except BaseException:
            with self._lock:
                self._subs.pop(sid, None)
                self._batched.discard(sid)
            raise
        with self._lock:
            sub.handle = handle
            orphaned = self._subs.get(sid) is not sub  # closed meanwhile
        if orphaned:
            handle.cancel()
            return
        self._answer({"type": "subscribed", "ref": ref, "subscription": sid})
        if resume is None:
            with self._lock:
                self._release(sub)
            return
        self.backend.flush()  # events fired before the subscription are now in history
        with self._lock:
            sub.after, sub.replaying = resume, True
            self._replays += 1
            self._signal()

    def _on_unsubscribe(self, message: UnsubscribeMessage, ref: Any) -> None:
        sid = message.subscription
        with self._lock:
            sub = self._subs.pop(sid, None)
            self._batched.discard(sid)
            if sub is not None:
                self._queue = collections.deque(
                    item for item in self._queue if item[0] == "msg" or item[1] != sid
                )
                self._live = sum(1 for item in self._queue if item[0] == "event")
        if sub is None:
            raise NotFound(f"no subscription {sid!r} in this session")
        if sub.handle is not None:
            sub.handle.cancel()
        self._answer({"type": "unsubscribed", "ref": ref, "subscription": sid})

    # -- live events -----------------------------------------------------------

    def _offer(self, sub: SessionSubscription, event: Event) -> None:
        """Called in the firing thread: append or drop, never wait."""
        with self._lock:
            if self._subs.get(sub.sid) is not sub:
                return
            if sub.holding:
                if len(sub.held) >= self.limits.queue_size:
                    self._drop(sub, event)
                else:
                    sub.held.append(event)
                    sub.last_id = event.id
            elif sub.replayed and self._replayed_before(sub, event):
                return
            elif self._live >= self.limits.queue_size:
                self._drop(sub, event)
            elif sub.gap is None:  # _enqueue_live without its call: this runs per session per event
                self._queue.append(("event", sub.sid, event))
                self._live += 1
                sub.last_id = event.id
                if not self._signalled:
                    self._signal()
            else:
                self._enqueue_live(sub, event)

    @staticmethod
    def _replayed_before(sub: SessionSubscription, event: Event) -> bool:
        """Whether ``event`` is a late live copy of one the replay sent (lock held). Each id
        comes live at most once (the cluster drops second copies), so a match is forgotten."""
        if time.monotonic() > sub.forget_replayed:
            sub.replayed = set()
            return False
        if event.id in sub.replayed:
            sub.replayed.discard(event.id)
            return True
        return False

    def _drop(self, sub: SessionSubscription, event: Event) -> None:
        DROPPED["websocket"].add()
        self._gapped = True
        gap = sub.gap
        if gap is None:
            sub.gap = Gap(last_delivered_id=sub.last_id, last_dropped_id=event.id, dropped=1)
        else:
            sub.gap = attrs.evolve(gap, last_dropped_id=event.id, dropped=gap.dropped + 1)

    def _enqueue_live(self, sub: SessionSubscription, event: Event) -> None:
        if sub.gap is not None:
            self._queue.append(("gap", sub.sid, sub.gap))
            sub.gap = None
        self._queue.append(("event", sub.sid, event))
        self._live += 1
        sub.last_id = event.id
        self._signal()

    def _release(self, sub: SessionSubscription) -> None:
        """End holding: held events not already replayed go out, then live ones as they come."""
        if sub.replaying:
            self._replays -= 1
        sub.holding = sub.replaying = False
        held, sub.held = sub.held, collections.deque()
        gap, sub.gap = sub.gap, None
        seen = sub.request.resume_from if sub.request.resume_from is not None else -1
        replayed = sub.replayed
        for event in held:
            if event.id in replayed:
                replayed.discard(event.id)
            elif event.id > seen:
                self._enqueue_live(sub, event)
        sub.gap = gap
        # Kept for late live copies of what was replayed (see REPLAY_DEDUPE_WINDOW).
        sub.forget_replayed = time.monotonic() + REPLAY_DEDUPE_WINDOW
        self._signal()

    # -- history replay --------------------------------------------------------

    @property
    def wants_pump(self) -> bool:
        if not self._replays:
            return False
        with self._lock:
            return any(sub.replaying for sub in self._subs.values())

    def pump(self) -> bool:
        """One replay step for each replaying subscription, if the outbox has room.

        Returns True while some subscription still replays.
        """
        with self._serial:
            with self._lock:
                replaying = [s for s in self._subs.values() if s.replaying]
            for sub in replaying:
                if self.backlog >= self.limits.replay_page:
                    break
                self._replay_step(sub)
            return self.wants_pump

    def _replay_step(self, sub: SessionSubscription) -> None:
        """One page of history. Two passes: everything after ``resume_from``, then, after a
        flush, once more from just before the subscription began, for an event fired
        before it but committed only after the first flush. Ids already sent are skipped."""
        try:
            page = self.backend.replay(
                self.principal, sub.request, sub.after, sub.cursor, self.limits.replay_page
            )
        except Exception as exc:  # the subscription goes on live; the client learns why replay stopped
            if not isinstance(exc, LinkServerError):
                log.exception("replay for %s failed", self.principal.name)
            with self._lock:
                self._queue.append(("msg", self.error(sub.ref, exc)))
                self._release(sub)
            return
        with self._lock:
            if self._subs.get(sub.sid) is not sub:
                return
            for event in page.events:
                if event.id <= sub.after or event.id in sub.replayed:
                    continue
                self._queue.append(("replay", sub.sid, event))
                if event.id >= sub.dedupe_from:
                    sub.replayed.add(event.id)
            self._signal()
            sub.cursor = page.next_cursor
            if page.next_cursor is not None:
                return
            if sub.rechecked:
                self._release(sub)
                return
        self.backend.flush()
        sub.after, sub.cursor, sub.rechecked = max(sub.after, sub.floor - 1), None, True

    # -- output ---------------------------------------------------------------

    @property
    def pending(self) -> bool:
        """Something in the outbox can be taken. After a :meth:`take_text` that left nothing
        to take, ``on_output`` is called again when something can be."""
        queue = self._queue
        return bool(queue) and not (queue[0][0] == "wait" and queue[0][1][0] is None)

    @property
    def backlog(self) -> int:
        """Answers and replayed events waiting in the outbox (live events not counted)."""
        return len(self._queue) - self._live

    def take_text(self, limit: int = 100) -> list[str]:
        """The next messages to send as WebSocket texts, in order, made of up to ``limit``
        outbox items (an ``events`` message carries several). Cheap; never blocks for long."""
        with self._lock:
            queue = self._queue
            # The usual push: one live event of an unbatched subscription and nothing else.
            # The general path below does the same with it in more steps; this runs per session
            # per event on the event loop, in front of the subscribers served after this one.
            item = queue[0] if len(queue) == 1 and not self._gapped else None
            if item is not None and item[0] == "event" and item[1] not in self._batched:
                queue.pop()
                self._live -= 1
                self._signalled = False
            else:
                item = None
                items = self._take_items(queue, limit)
        if item is not None:
            return [ENCODED.message(item[1], item[2])]
        return frames(items, self._batched) if items else []

    def _take_items(self, queue: collections.deque[tuple[Any, ...]], limit: int) -> list[tuple[Any, ...]]:
        """Up to ``limit`` items from the front of the outbox, then the losses not yet told if
        that emptied it (lock held)."""
        items: list[tuple[Any, ...]] = []
        while queue and len(items) < limit:
            if queue[0][0] == "wait":  # a durable fire's answer: in its place, once committed
                message = queue[0][1][0]
                if message is None:
                    self._signalled = False  # _fill signals
                    break
                queue.popleft()
                items.append(("msg", message))
                continue
            item = queue.popleft()
            if item[0] == "event":
                self._live -= 1
            items.append(item)
        if not queue:
            if self._gapped:
                self._gapped = False
                for sub in self._subs.values():  # caught up: tell about losses now
                    if sub.gap is not None:
                        if sub.holding:
                            self._gapped = True  # told once it is released
                            continue
                        items.append(("gap", sub.sid, sub.gap))
                        sub.gap = None
            self._signalled = False
        return items

    def take(self, limit: int = 100) -> list[dict[str, Any]]:
        """:meth:`take_text` decoded: the messages as the client will read them."""
        return [json.loads(text) for text in self.take_text(limit)]

    def _answer(self, message: dict[str, Any]) -> None:
        with self._lock:
            self._queue.append(("msg", message))
            self._signal()

    def _signal(self) -> None:
        """Tell the transport once per drain that there is something to take (lock held)."""
        if not self._signalled and self.on_output is not None:
            self._signalled = True
            self.on_output()

    @property
    def subscriptions(self) -> list[str]:
        return list(self._subs)

    def close(self) -> None:
        """Cancel every subscription; the session takes no more events or subscriptions."""
        with self._lock:
            subs, self._subs = list(self._subs.values()), {}
            self._batched = set()
            self.closed = True
            handles = [sub.handle for sub in subs if sub.handle is not None]
        for handle in handles:
            handle.cancel()
