"""Subscriptions and how events reach their listeners.

``sync`` delivery calls the listener in the firing thread: cheapest, for
listeners that do little. ``queued`` delivery gives the subscription a
bounded queue and a worker thread of its own, so a slow listener delays
nobody but itself; when the queue is full, ``block`` makes the firer wait
(lossless) and ``drop`` discards the event, counts it and tells the listener
where the gap is before the next event it gets.
"""

from __future__ import annotations

import collections
import enum
import logging
import queue
import threading
from collections.abc import Callable

import attrs

from linkserver.core.events import Event
from linkserver.core.subscriptions import SubscriptionSpec
from linkserver.core.tallies import Tally
from linkserver.typing import Gap, Listener

__all__ = ["Delivery", "Gap", "Listener", "Overflow", "QueuedSubscription", "Subscription"]

log = logging.getLogger("linkserver.delivery")

# Process-wide, for the metrics: events dropped by full queues and gaps reported to
# listeners, over every subscription that ever was (queued here, WebSocket sessions in net).
DROPPED = {"queued": Tally(), "websocket": Tally()}
GAPS = {"queued": Tally(), "websocket": Tally()}


class Delivery(enum.Enum):
    SYNC = "sync"
    QUEUED = "queued"


class Overflow(enum.Enum):
    BLOCK = "block"
    DROP = "drop"


class Subscription:
    """A listener's registration. Cancel it to stop deliveries (safe from any thread,
    including from inside the listener)."""

    def __init__(
        self,
        spec: SubscriptionSpec,
        listener: Listener,
        *,
        on_cancel: Callable[[Subscription], None],
        on_gap: Callable[[Gap], object] | None = None,
        durable: bool = False,
    ) -> None:
        self.spec = spec
        self.listener = listener
        self.on_gap = on_gap
        self.durable = durable
        self.active = True
        self.delivered = 0
        self.failures = 0
        self.dropped = 0
        self.last_delivered_id: int | None = None
        self._on_cancel = on_cancel

    delivery = Delivery.SYNC

    def offer(self, event: Event) -> None:
        """Called by the engine, in firing order, for every event that matches.

        Synchronous subscriptions call the listener right here. (The engine
        calls the listeners of the plainest ones, without a level or filter,
        itself: the same checks, one call less per event.)
        """
        if not self.active:
            return
        try:
            self.listener(event)
        except Exception:
            self.failed(event)
        self.delivered += 1
        self.last_delivered_id = event.id

    def cancel(self) -> None:
        if self.active:
            self.active = False
            self._on_cancel(self)

    def close(self) -> None:
        """Release resources; called by the engine on cancel and at shutdown."""

    def failed(self, event: Event) -> None:
        """The listener raised on ``event``: count and log it; nobody else is affected."""
        self.failures += 1
        log.exception(
            "listener %r failed on event %s (%s in %s); other listeners are unaffected",
            self.listener,
            event.id,
            event.name,
            event.context or "root",
        )

    def __repr__(self) -> str:
        spec = self.spec
        return (
            f"<Subscription {spec.mask} {spec.event} {self.delivery.value}"
            f" delivered={self.delivered} dropped={self.dropped}{'' if self.active else ' cancelled'}>"
        )


class QueuedSubscription(Subscription):
    """A subscription with its own bounded queue and worker thread."""

    delivery = Delivery.QUEUED

    def __init__(self, *args: object, queue_size: int, overflow: Overflow, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {queue_size}")
        self.queue_size = queue_size
        self.overflow = overflow
        self._queue: collections.deque[Event | Gap] = collections.deque()
        self._condition = threading.Condition()
        self._closed = False
        self._pending_gap: Gap | None = None
        self._last_offered_id: int | None = None
        self._worker = threading.Thread(
            target=self._run, name=f"linkserver-delivery-{id(self):x}", daemon=True
        )
        self._worker.start()

    def offer(self, event: Event) -> None:
        with self._condition:
            if self._closed:
                return
            if len(self._queue) >= self.queue_size:
                if self.overflow is Overflow.DROP:
                    self._drop(event)
                    return
                # The worker itself may fire into its own subscription: never wait on ourselves.
                while (
                    len(self._queue) >= self.queue_size
                    and not self._closed
                    and threading.current_thread() is not self._worker
                ):
                    self._condition.wait()
                if self._closed:
                    return
            if self._pending_gap is not None:
                self._queue.append(self._pending_gap)
                self._pending_gap = None
            self._queue.append(event)
            self._last_offered_id = event.id
            self._condition.notify_all()

    def _drop(self, event: Event) -> None:
        self.dropped += 1
        DROPPED["queued"].add()
        gap = self._pending_gap
        if gap is None:
            self._pending_gap = Gap(
                last_delivered_id=self._last_offered_id, last_dropped_id=event.id, dropped=1
            )
        else:
            self._pending_gap = attrs.evolve(gap, last_dropped_id=event.id, dropped=gap.dropped + 1)

    @property
    def pending(self) -> int:
        return len(self._queue)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until the queue is empty and the listener has returned (tests, shutdown)."""
        with self._condition:
            return self._condition.wait_for(
                lambda: not self._queue and self._pending_gap is None and not self._busy, timeout
            )

    _busy = False

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        if threading.current_thread() is not self._worker:
            self._worker.join(timeout=5)

    def drain_and_close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (at shutdown), then stop the worker."""
        self.wait_idle(timeout)
        self.close()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._queue and self._pending_gap is None and not self._closed:
                    self._condition.wait()
                if self._queue:
                    item: Event | Gap = self._queue.popleft()
                elif self._pending_gap is not None:
                    # Caught up after a loss: report the gap now, not with the next event.
                    item, self._pending_gap = self._pending_gap, None
                else:
                    return
                self._busy = True
                self._condition.notify_all()
            try:
                if isinstance(item, Gap):
                    self._report_gap(item)
                else:
                    Subscription.offer(self, item)
            finally:
                with self._condition:
                    self._busy = False
                    self._condition.notify_all()

    def _report_gap(self, gap: Gap) -> None:
        GAPS["queued"].add()
        if self.on_gap is None:
            log.warning(
                "subscription %s/%s dropped %d events after id %s (queue of %d full)",
                self.spec.mask,
                self.spec.event,
                gap.dropped,
                gap.last_delivered_id,
                self.queue_size,
            )
            return
        try:
            self.on_gap(gap)
        except Exception:
            log.exception("gap handler of %r failed", self)


class AfterCommit:
    """Delivers persistent events to durable subscriptions once history committed them.

    The history writer completes its futures in its own thread; handing the
    offers to this dispatcher's thread means a slow or blocking durable
    subscriber holds up other durable deliveries, never the writer. Offers
    keep commit order. The thread starts with the first durable delivery.
    """

    _STOP = object()

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def committed(self, offer: Callable[[Event], None], event: Event) -> Callable[[object], None]:
        """A done-callback for the event's history future that schedules ``offer(event)``."""

        def done(future: object) -> None:
            if getattr(future, "exception", lambda: None)() is None:
                self._ensure_running()
                self._queue.put((offer, event))
            else:
                log.error("event %s was not stored, so durable subscribers do not get it", event.id)

        return done

    def _ensure_running(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="linkserver-after-commit", daemon=True
                    )
                    self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is self._STOP:
                return
            offer, event = item  # type: ignore[misc]
            try:
                offer(event)
            except Exception:
                log.exception("durable delivery of event %s failed", event.id)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is scheduled, then stop the thread."""
        if self._thread is not None:
            self._queue.put(self._STOP)
            self._thread.join(timeout)
            self._thread = None
