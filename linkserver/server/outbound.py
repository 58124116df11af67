"""Outbound events of one bridge: never lost once committed, never blocking a fire.

How an event travels:

- A persistent event the bridge's selection wants gets an outbox row in the
  same transaction as the event (:mod:`linkserver.history.outbox`). Right after
  the commit the writer hands it to :meth:`Outbound._committed`, which keeps it
  in memory (up to ``buffer`` events) for the publisher thread: the fast path,
  no read back from the database.
- A non-persistent event is taken by a synchronous engine listener into the
  same memory buffer. It is never stored, so it is best effort: lost with the
  process, and dropped (counted, logged) while the buffer is full.
- The publisher thread hands events to the bridge in order, at most
  ``window`` unconfirmed at once. A bridge that may be given events from
  inside its confirm callback (``publishes_on_confirm``: AMQP) gets the
  events the confirms made room for right there, in its connection's
  thread, without waking the publisher thread and waking the connection's
  thread again: two thread switches less per round of the window. A confirmed persistent event's row is
  deleted (in batches: every ``DELETE_EVERY`` or ``DELETE_BATCH`` rows, and at once at the end of
  a burst, ``DELETE_IDLE`` rows or more with nothing else owed); an event the bridge reports
  failed (connection lost, negative confirm) is sent again before anything newer.
- While the broker is down, blocked or slower than the firers the buffer
  fills; then persistent events stay in the table only ("spilled"). Once the
  buffer is empty the publisher walks the table in event id order, skipping
  what it already holds, until it is caught up; then one more walk picks up
  events committed meanwhile whose ids were assigned before, but committed
  after, ones already read. That walk starts at the lowest id that went to
  the table only since the first walk began (any row it could have missed
  was committed since), and is left out when none did. A restart begins
  with such a walk, so everything committed and not confirmed is published.
  The walk reads its next page while the window is full, so a page is at
  hand when confirms make room (as the memory buffer is for live events).

Firing never waits on any of it: the listener and the writer's callback only
append to a deque under a short lock.

Order: per context, persistent events are published in commit order (the
order of their ids, except for events of one context fired at the same time
from several threads); resent events go before newer ones. Non-persistent
events keep their firing order among themselves but may overtake persistent
events still waiting in the table. Delivery is at least once: an event whose
confirm was lost with the connection is sent again, with the same message id.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from linkserver.core.errors import EventNotDefined
from linkserver.core.events import Event
from linkserver.core.filters import Filter, parse_filter
from linkserver.core.filters.labels import bind_filter
from linkserver.core.levels import Level
from linkserver.core.paths import Mask, compile_mask
from linkserver.core.subscriptions import ALL_EVENTS
from linkserver.core.tree import ContextTree
from linkserver.history.base import HistoryStore
from linkserver.history.outbox import Outbox

if TYPE_CHECKING:
    from linkserver.server.delivery import Subscription
    from linkserver.server.engine import Engine
    from linkserver.typing import Bridge

log = logging.getLogger("linkserver.bridges")

DEFAULT_BUFFER = 10_000
DEFAULT_WINDOW = 1_000
PAGE = 500  # events per read of the outbox table and per publish call
DELETE_BATCH = 1_000
DELETE_EVERY = 0.1  # seconds: confirmed rows are deleted at least this often
# ... and at once when this many wait and nothing else is owed: a burst's last rows go when its
# last confirm came (the outbox is empty then, not DELETE_EVERY later); a sparse stream's rows,
# fewer, still go together every DELETE_EVERY (one transaction, not one per event).
DELETE_IDLE = 64
RETRY_DELETE = 1.0
CACHE_SIZE = 50_000
# A commit (or a non-persistent fire) of at most this many events, with the publisher idle, is
# handed to the bridge by the committing (firing) thread itself: one thread switch less on a
# sparse stream's path. Bigger ones wait for the publisher thread, so a busy writer does not
# encode messages.
DIRECT = 16


@attrs.frozen(kw_only=True)
class Select:
    """One entry of a bridge's selection: events named ``event`` (or ``*``: every one
    that is not hidden) in contexts ``mask`` matches, at ``min_level`` or above, for
    which ``filter`` holds."""

    mask: str = "**"
    event: str = ALL_EVENTS
    filter: str | None = None
    min_level: Level = Level.NONE


class Selection:
    """Which events a bridge carries: any of its :class:`Select` entries. Thread-safe;
    the static part (context, name) is cached per pair."""

    def __init__(self, entries: Sequence[Select], tree: ContextTree) -> None:
        self.entries = tuple(entries)
        self._tree = tree
        self._compiled: list[tuple[Mask, str, Filter | None, Level]] = [
            (compile_mask(entry.mask), entry.event, _bound(entry, tree), entry.min_level) for entry in entries
        ]
        # (context, name) -> ((filter or None, min level), ...) of the entries that match it
        self._cache: dict[tuple[str, str], tuple[tuple[Filter | None, Level], ...]] = {}

    def wants(self, event: Event) -> bool:
        key = (event.context, event.name)
        tests = self._cache.get(key)
        if tests is None:
            tests = self._static(*key)
        for filter, min_level in tests:
            if event.level >= min_level and (filter is None or filter.matches(event)):
                return True
        return False

    def _static(self, context: str, name: str) -> tuple[tuple[Filter | None, Level], ...]:
        hidden = False
        found = self._tree.find(context)
        if found is not None and name in found.definitions:
            hidden = found.definitions[name].hidden
        tests = tuple(
            (filter, min_level)
            for mask, event, filter, min_level in self._compiled
            if (event == name or (event == ALL_EVENTS and not hidden)) and mask.matches(context)
        )
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[(context, name)] = tests
        return tests


def _bound(entry: Select, tree: ContextTree) -> Filter | None:
    """The entry's filter fitted to the events it selects, as a subscription's is (checked, value
    labels resolved: ``data.status == "down"`` where down is stored as 2); FilterError for one
    that fits none of them (``linkserver check`` reports it at its line first)."""
    if not entry.filter:
        return None
    parsed = parse_filter(entry.filter)
    definitions = tree.definitions_under((entry.mask,), (entry.event,))
    if not definitions:  # nothing defines it (yet): no labels to resolve, nothing to check against
        return parsed
    return bind_filter(parsed, definitions, f"{entry.event!r} under {entry.mask!r}")


@attrs.define
class OutboundStats:
    """Counters read by the metrics at scrape time."""

    published: int = 0  # confirmed by the broker
    sent: int = 0  # handed to the bridge (resends included)
    resent: int = 0  # sent again after a failure
    dropped: int = 0  # non-persistent events dropped while the buffer was full
    spilled_events: int = 0  # persistent events that went to the table only
    ready_changes: int = 0


class Outbound:
    """The publishing side of one bridge (see the module doc)."""

    def __init__(
        self,
        name: str,
        bridge: Bridge,
        engine: Engine,
        history: HistoryStore,
        selection: Selection,
        *,
        node: int = 0,
        buffer: int = DEFAULT_BUFFER,
        window: int = DEFAULT_WINDOW,
    ) -> None:
        if buffer < 1 or window < 1:
            raise ValueError("buffer and window must be at least 1")
        self.name = name
        self.bridge = bridge
        self.engine = engine
        self.history = history
        self.selection = selection
        self.node = node
        self.buffer = buffer
        self.window = window
        self.stats = OutboundStats()
        self.outbox: Outbox | None = None
        self.is_ready = False
        self.not_ready_reason = "not connected yet"
        self._cond = threading.Condition(threading.Lock())
        # Held from taking a batch until the bridge has it, so batches reach it in the order taken.
        self._sending = threading.Lock()
        self._memory: collections.deque[Event] = collections.deque()
        self._resend: collections.deque[Event] = collections.deque()
        self._in_flight: dict[int, Event] = {}
        self._owned: set[int] = set()  # persistent ids held (memory, in flight, to delete)
        # Persistent ids sent before their commit (the cluster's live path; a bridge sends none)
        # -> whether the broker confirmed them yet: the row is deleted once both happened.
        self._live: dict[int, bool] = {}
        self._spilled = False  # the table may hold events the memory does not
        self._walk: str | None = None  # None, "walk" (spilled) or "final" (catching up)
        self._walk_after = 0
        self._ahead: collections.deque[Event] = collections.deque()  # read by the walk, not sent yet
        # The lowest id committed to the table only since the walk began: the final walk's start.
        self._unread_low: int | None = None
        self._deletes: list[int] = []
        self._transient = 0  # non-persistent events taken and not yet confirmed (part of depth)
        self._last_delete = time.monotonic()
        self._stopping = False
        self._accepting = False
        self._subscriptions: list[Subscription] = []
        self._thread: threading.Thread | None = None
        self._last_drop_log = 0.0
        self._refills = bool(getattr(bridge, "publishes_on_confirm", False))

    # -- lifecycle ------------------------------------------------------------

    def attach(self) -> None:
        """Register the outbox hook and the listener for non-persistent events. Call after
        history started and before events the bridge should carry are fired."""
        outbox = self.outbox = self.history.outbox(self.name, self.node)
        outbox.open()
        if outbox.depth:
            self._spilled = True
            log.info(
                "bridge %s: %d events wait in the outbox from before; publishing them first",
                self.name,
                outbox.depth,
            )
        self._accepting = True
        self.history.add_same_commit(outbox.hook(self.selection.wants, self._committed, self._rejected))
        for entry in self.selection.entries:
            try:
                subscription = self.engine.listen(
                    entry.mask, entry.event, self._fired, filter=entry.filter, min_level=entry.min_level
                )
            except EventNotDefined as exc:
                log.warning(
                    "bridge %s: select %s / %s matches no event definition (%s); it publishes "
                    "nothing until such events are defined",
                    self.name,
                    entry.mask,
                    entry.event,
                    exc,
                )
                continue
            self._subscriptions.append(subscription)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"linkserver-bridge-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop taking events, wait up to ``timeout`` for what is buffered to be confirmed,
        delete the rows of what was; the rest stays in the outbox for the next start."""
        for subscription in self._subscriptions:
            subscription.cancel()
        deadline = time.monotonic() + timeout
        with self._cond:
            self._accepting = False  # rows are still written: the next start publishes them
            while (self._memory or self._resend or self._ahead or self._in_flight) and self.is_ready:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(min(remaining, 0.05))
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        self._flush_deletes(force=True)

    # -- what the engine and history hand in (must be quick) --------------------

    def _committed(self, events: Sequence[Event]) -> None:
        """The writer committed these wanted persistent events and their rows."""
        with self._cond:
            if not self._accepting:
                return
            memory, owned = self._memory, self._owned
            for event in events:
                if event.id in owned:
                    continue
                if self._spilled or len(memory) >= self.buffer:
                    if not self._spilled:
                        self._spilled = True
                        log.warning(
                            "bridge %s: %d events buffered (%s); further events wait in the outbox table",
                            self.name,
                            len(memory),
                            self._why_slow(),
                        )
                    self.stats.spilled_events += 1
                    self._table_only(event.id)
                    continue
                owned.add(event.id)
                memory.append(event)
            self._cond.notify()
        self._send_direct()

    def _rejected(self, events: Sequence[Event]) -> None:
        """The writer gave up on these wanted persistent events: never stored, no row. A bridge
        holds nothing of them (it takes persistent events once committed)."""

    def _fired(self, event: Event) -> None:
        if event.expires is not None:
            return  # persistent: it comes through the outbox once committed
        with self._cond:
            if not self._accepting:
                return
            if len(self._memory) >= self.buffer:
                self.stats.dropped += 1
                now = time.monotonic()
                if now - self._last_drop_log > 10:
                    self._last_drop_log = now
                    log.warning(
                        "bridge %s: buffer of %d full (%s): non-persistent events are dropped "
                        "(%d so far; see linkserver_bridge_dropped_total)",
                        self.name,
                        self.buffer,
                        self._why_slow(),
                        self.stats.dropped,
                    )
                return
            self._memory.append(event)
            self._transient += 1
            self._cond.notify()
        self._send_direct()

    def _send_direct(self) -> None:
        """Hand a small batch to the bridge in this (committing or firing) thread when the
        publisher thread is idle; else leave it to that thread. Never waits: the bridge's
        publish only queues the messages for its connection's thread."""
        if len(self._memory) > DIRECT or not self._sending.acquire(blocking=False):
            return
        try:
            with self._cond:
                if self._stopping or self._walk is not None or self._spilled or self._resend or self._ahead:
                    return
                if len(self._memory) > DIRECT or not self._has_work():
                    return
                batch, walk = self._take()
            if batch and not walk:
                self._publish(batch)
        finally:
            self._sending.release()
            self._after_sending()

    def _publish(self, batch: list[Event], *, pause: float = 0.1) -> None:
        try:
            self.bridge.publish(batch)
        except Exception as exc:  # a bridge must not raise; if it does, send again
            log.exception("bridge %s: publish raised", self.name)
            self.failed([e.id for e in batch], f"publish raised {exc!r}")
            if pause:
                time.sleep(pause)

    def _after_sending(self) -> None:
        """Called by each thread that held ``_sending`` right after it let go of it: what must
        reach the bridge after the batches sent so far (the cluster's commit notices)."""

    def _table_only(self, event_id: int) -> None:
        """Under the lock: a committed event that only the table holds (the walk publishes it)."""
        if self._unread_low is None or event_id < self._unread_low:
            self._unread_low = event_id

    def _why_slow(self) -> str:
        return "the broker is slow" if self.is_ready else f"broker not ready: {self.not_ready_reason}"

    # -- what the bridge reports (BridgeHandle) ------------------------------------

    def ready(self, ready: bool, reason: str) -> None:
        with self._cond:
            if ready == self.is_ready:
                return
            self.is_ready = ready
            self.stats.ready_changes += 1
            if not ready:
                self.not_ready_reason = reason
            self._cond.notify_all()
        if ready:
            log.info("bridge %s: broker ready (%s); %d events to publish", self.name, reason, self.depth)
        else:
            log.warning("bridge %s: broker not ready (%s); events wait in the outbox", self.name, reason)

    def confirmed(self, ids: Iterable[int]) -> None:
        with self._cond:
            in_flight, deletes = self._in_flight, self._deletes
            live = self._live
            for event_id in ids:
                event = in_flight.pop(event_id, None)
                if event is not None:
                    self.stats.published += 1
                    if event.expires is None:
                        self._transient -= 1
                    elif event_id in live:  # sent before its commit: the row goes once it is there
                        live[event_id] = True
                    else:
                        deletes.append(event_id)
            self._cond.notify_all()
        if self._refills:
            self._refill()

    def _refill(self) -> None:
        """In the bridge's confirming thread: send what the confirms made room for (events in
        memory only; a page of the table is the publisher thread's to read). Never waits."""
        if not self._sending.acquire(blocking=False):
            return  # the publisher thread is sending: it takes the room
        try:
            with self._cond:
                if self._stopping:
                    return
                batch, _ = self._take()  # a page to read is left to the publisher thread (notified)
            if batch:
                self._publish(batch, pause=0)  # never sleep in the bridge's thread
        finally:
            self._sending.release()
            self._after_sending()

    def failed(self, ids: Iterable[int], reason: str) -> None:
        with self._cond:
            wanted = set(ids)
            again = [event for event_id, event in self._in_flight.items() if event_id in wanted]
            for event in again:
                del self._in_flight[event.id]
            self._resend.extendleft(reversed(again))
            self.stats.resent += len(again)
            self._cond.notify_all()
        if again:
            log.info("bridge %s: %d events will be sent again: %s", self.name, len(again), reason)

    # -- the publisher thread --------------------------------------------------------

    @property
    def depth(self) -> int:
        """Events owed: in the table (persistent) or in memory only (non-persistent), not confirmed."""
        return (self.outbox.depth if self.outbox is not None else 0) + self._transient

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def buffered(self) -> int:
        return len(self._memory) + len(self._resend) + len(self._ahead)

    @property
    def spilled(self) -> bool:
        return self._spilled or self._walk is not None

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not self._has_work():
                    if self._tail_done():
                        break
                    self._cond.wait(DELETE_EVERY if self._deletes else 1.0)
                    if self._deletes and time.monotonic() - self._last_delete >= DELETE_EVERY:
                        break
                if self._stopping:
                    return
            with self._sending:
                with self._cond:
                    if self._stopping:
                        return
                    batch, walk = self._take()
                if walk:
                    batch = self._walk_page()
                if batch:
                    self._publish(batch)
            self._after_sending()
            self._flush_deletes()

    def _tail_done(self) -> bool:
        """Under the lock: DELETE_IDLE confirmed rows or more wait, and nothing is in flight or
        waiting to be sent (the end of a burst): delete them now."""
        return (
            len(self._deletes) >= DELETE_IDLE
            and not self._in_flight
            and not self._memory
            and not self._resend
            and not self._ahead
            and self._walk is None
            and not self._spilled
        )

    def _room(self) -> int:
        return self.window - len(self._in_flight) if self.is_ready else 0

    def _has_work(self) -> bool:
        if self._deletes and len(self._deletes) >= DELETE_BATCH:
            return True
        if self._room() <= 0:
            return self._reads_ahead()
        if self._resend or self._ahead or self._spilled or self._walk:
            return True
        return bool(self._memory)

    def _reads_ahead(self) -> bool:
        """The window is full and the walk (under way, or next) has no page at hand: read it now."""
        if self._ahead or not self.is_ready:
            return False
        return self._walk is not None or (self._spilled and not self._memory and not self._resend)

    def _take(self) -> tuple[list[Event], bool]:
        """Under the lock: events to send now, or (nothing, True): read a page of the table."""
        room = min(self._room(), PAGE)
        if room > 0:
            batch: list[Event] = []
            # Read-ahead pages are older than anything in memory: they go first.
            source = self._resend or self._ahead or (self._memory if self._walk is None else None)
            if source is not None:
                while source and len(batch) < room:
                    batch.append(source.popleft())
            if batch:
                self._send(batch)
                return batch, False
        elif not self._reads_ahead():
            return [], False
        if self._walk is None and self._spilled:
            self._walk, self._walk_after, self._unread_low = "walk", 0, None
            log.info("bridge %s: publishing %d events from the outbox table", self.name, self.depth)
        return [], self._walk is not None

    def _send(self, batch: list[Event]) -> None:
        for event in batch:
            self._in_flight[event.id] = event
        self.stats.sent += len(batch)

    def _walk_page(self) -> list[Event]:
        """Read the walk's next page; send what the window has room for, keep the rest at hand."""
        assert self.outbox is not None
        with self._cond:
            after = self._walk_after
        try:
            page = self.outbox.page(after, PAGE)
        except Exception as exc:
            log.warning("bridge %s: cannot read the outbox (%s); trying again", self.name, exc)
            time.sleep(RETRY_DELETE)
            return []
        with self._cond:
            owned = self._owned
            fresh = [event for event in page if event.id not in owned]
            owned.update(event.id for event in fresh)
            if page:
                self._walk_after = page[-1].id
            if len(page) < PAGE:  # the end of the table as it was when read
                if self._walk == "walk" and self._unread_low is not None:
                    # From now on new commits go to memory; one more walk catches what
                    # committed between the reads and now under the ids already read.
                    self._spilled = False
                    self._walk, self._walk_after = "final", self._unread_low - 1
                else:  # the final walk's end, or nothing went to the table only: none was missed
                    if self._walk == "walk":
                        self._spilled = False
                    self._walk = None
                    log.info("bridge %s: outbox caught up", self.name)
            if fresh:
                self._show(fresh)
                self._ahead.extend(fresh)
            room = min(self._room(), PAGE)
            batch = [self._ahead.popleft() for _ in range(min(room, len(self._ahead)))]
            if batch:
                self._send(batch)
        return batch

    def _show(self, events: list[Event]) -> None:
        """Events read back from the outbox get their definition, to carry their message."""
        tree = self.engine.tree
        for event in events:
            if event.display is None:
                context = tree.find(event.context)
                event.shown_by(context.definitions.get(event.name) if context is not None else None)

    def _flush_deletes(self, force: bool = False) -> None:
        with self._cond:
            if not self._deletes:
                return
            now = time.monotonic()
            if (
                not force
                and len(self._deletes) < DELETE_BATCH
                and now - self._last_delete < DELETE_EVERY
                and not self._tail_done()
            ):
                return
            ids, self._deletes = self._deletes, []
            self._last_delete = now
        assert self.outbox is not None
        try:
            self.outbox.delete(ids)
        except Exception as exc:  # the database is down: the rows stay owned, deleted later
            log.warning(
                "bridge %s: cannot delete %d confirmed rows from the outbox (%s); later",
                self.name,
                len(ids),
                exc,
            )
            with self._cond:
                self._deletes[:0] = ids
                self._last_delete = now + RETRY_DELETE
            return
        with self._cond:
            self._owned.difference_update(ids)

    def describe(self) -> dict[str, Any]:
        """For logs and the metrics: the bridge's state in one dict."""
        return {
            "ready": self.is_ready,
            "reason": "" if self.is_ready else self.not_ready_reason,
            "depth": self.depth,
            "in_flight": self.in_flight,
            "buffered": self.buffered,
            "spilled": self.spilled,
            **attrs.asdict(self.stats),
        }
