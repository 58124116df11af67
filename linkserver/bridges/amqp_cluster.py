"""One node's link to the cluster exchange on RabbitMQ: its fired events out, the others' in.

The server (:mod:`linkserver.server.cluster`) owns the guarantees; this module only
moves bytes:

- :class:`ClusterPublisher` is the AMQP bridge (:mod:`linkserver.bridges.amqp`:
  publisher confirms, reconnecting, blocked connections) with the cluster's
  message: the body the server encodes, ``message_id`` the event id, ``app_id``
  the process that fired it (as the server says), persistent (``delivery_mode`` 2) for persistent
  events; ``type`` ``live`` for a persistent event sent before its commit (as the server says),
  none for every other. :meth:`ClusterPublisher.notice` sends a commit notice (``type``
  ``commits``, the body ``[[ids committed], [ids given up on]]``) on the same channel, after the
  messages published before it.
- :class:`ClusterConsumer` consumes the node's own queue, on a connection of its
  own: durable (it survives a lost connection and a broker restart, so a node
  cut off from RabbitMQ gets what was published meanwhile), bound to the
  exchange with ``#``, and removed by RabbitMQ ``x-expires`` after the node
  went (or by :meth:`ClusterConsumer.stop`). Messages go to ``deliver`` one by
  one, in arrival order: right in the connection's thread while nothing is
  waiting (no thread switch on a sparse stream's path), else through a
  thread of their own, which takes over for ``SLOW_PAUSE`` seconds after a
  delivery took longer than ``SLOW`` (a slow subscriber must not stall the
  connection's heartbeats more than once). Each is acknowledged after
  ``deliver`` returned, so a message in hand when the connection goes is
  delivered again (the server drops the duplicates by event id). When the node connects again
  after an outage, a passive declare on a channel of its own asks whether the
  queue was kept; if RabbitMQ had removed it (the node was away longer than
  ``x-expires``), ``on_queue_lost`` is called in the delivering thread, with
  the wall-clock time the connection was lost, before any message of the new
  queue: the server replays what it missed from history.
"""

from __future__ import annotations

import functools
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pika
from pika.adapters.select_connection import SelectConnection

from linkserver.bridges import amqp_frames
from linkserver.bridges.amqp import AmqpBridge, Message
from linkserver.bridges.amqp_connection import Connector
from linkserver.core.events import Event
from linkserver.typing import BridgeHandle

log = logging.getLogger("linkserver.cluster")

CONTENT_TYPE = "application/json"
LIVE = "live"  # the ``type`` of a persistent event's message sent before its commit
NOTICE = "commits"  # the ``type`` of a commit notice
NOTICE_KEY = "~commits"  # its routing key (every node's queue is bound with #)
_NOTICE_ID = -1  # a notice's place among the unconfirmed messages: nobody's confirm
ACK_EVERY = 64  # messages acknowledged at once at most (when more are waiting)
NOT_FOUND = 404  # AMQP reply code of a passive declare of a queue that is not there
SLOW = 0.05  # seconds: a delivery in the connection's thread longer than this ...
SLOW_PAUSE = 60.0  # ... sends the next ones through the delivering thread for this long


class _QueueLost:
    """In the work queue: the queue was gone at a reconnect; ``since`` the connection was lost."""

    def __init__(self, since: float) -> None:
        self.since = since


class ClusterPublisher(AmqpBridge):
    """The publishing side: a :class:`~linkserver.typing.Bridge` for the server's outbound."""

    def __init__(
        self,
        name: str,
        *,
        url: str,
        exchange: str,
        encode: Callable[[Event], bytes],
        origin: Callable[[Event], str],
        notice_origin: str | None = None,
        heartbeat: int = 30,
    ) -> None:
        super().__init__(name, url=url, exchange=exchange, exchange_type="topic", heartbeat=heartbeat)
        self._connector.what = f"{name} (publishing)"
        self._encode = encode
        self._origin = origin
        self.notice_origin = notice_origin
        self.sent_live: Callable[[int], bool] = lambda event_id: False  # the server's outbound says

    def start(self, handle: BridgeHandle) -> None:
        super().start(_WithoutNotices(handle))

    def _messages(self, events: Sequence[Event]) -> list[Message]:
        key, encode, origin, properties = self._key, self._encode, self._origin, amqp_frames.properties
        live = self.sent_live
        return [
            (
                event.id,
                key(event),
                encode(event),
                properties(
                    content_type=CONTENT_TYPE,
                    delivery_mode=2 if event.expires is not None else 1,
                    message_id=str(event.id),
                    type=LIVE if event.expires is not None and live(event.id) else None,
                    app_id=origin(event),
                ),
            )
            for event in events
        ]

    def notice(self, committed: Sequence[int], rejected: Sequence[int]) -> None:
        """Publish a commit notice after everything handed to :meth:`publish` so far; lost
        (never resent) when the connection is (the other nodes look the events up in history)."""
        body = json.dumps([list(committed), list(rejected)], separators=(",", ":")).encode()
        properties = pika.BasicProperties(
            delivery_mode=2, content_type=CONTENT_TYPE, type=NOTICE, app_id=self.notice_origin
        )
        self._connector.call(lambda: self._send_notice(body, properties))

    def _send_notice(self, body: bytes, properties: pika.BasicProperties) -> None:
        channel = self._channel
        if channel is None or not self._confirming or not channel.is_open:
            return
        try:
            channel.basic_publish(self.exchange, NOTICE_KEY, body, properties)
        except Exception:  # the channel closed under us
            log.debug("%s: a commit notice was lost with the channel", self.name, exc_info=True)
            return
        self._unconfirmed.append((self._next_tag, _NOTICE_ID))  # the channel counts every message
        self._next_tag += 1

    def _returned(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        # No queue bound: no other node is listening. Nothing is lost that anyone asked for.
        self.unroutable += 1


class _WithoutNotices:
    """The server's handle as the AMQP bridge underneath sees it: the confirms (and failures) of
    commit notices are nobody's."""

    def __init__(self, handle: BridgeHandle) -> None:
        self._handle = handle

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def confirmed(self, ids: Sequence[int]) -> None:
        if _NOTICE_ID in ids:
            ids = [event_id for event_id in ids if event_id != _NOTICE_ID]
        if ids:
            self._handle.confirmed(ids)

    def failed(self, ids: Sequence[int], reason: str) -> None:
        if _NOTICE_ID in ids:
            ids = [event_id for event_id in ids if event_id != _NOTICE_ID]
        if ids:
            self._handle.failed(ids, reason)


class ClusterConsumer:
    """The receiving side (see the module doc)."""

    def __init__(
        self,
        name: str,
        *,
        url: str,
        exchange: str,
        queue_name: str,
        deliver: Callable[[bytes, str | None, str | None], None],
        queue_expires_ms: int,
        prefetch: int = 1000,
        heartbeat: int = 30,
        on_queue_lost: Callable[[float], None] | None = None,
    ) -> None:
        self.name = name
        self.on_queue_lost = on_queue_lost
        self.exchange = exchange
        self.queue = queue_name
        self.prefetch = prefetch
        self.queue_expires_ms = queue_expires_ms
        self._deliver = deliver
        self._connector = Connector(
            f"{name}-in", url, self._opened, self._lost, heartbeat=heartbeat, what=f"{name} (receiving)"
        )
        self._channel: Any = None
        self._work: queue.Queue[tuple[Any, int, bytes, str | None, str | None] | _QueueLost | None] = (
            queue.Queue()
        )
        self._thread: threading.Thread | None = None
        self.consuming = threading.Event()
        self.received = 0
        self._consumed = False  # consumed once: a later connection is a reconnect
        self._lost_at: float | None = None  # wall-clock time the connection was lost
        self._queue_gone = False  # the probe of this reconnect found no queue
        # Items put in the work queue (by the connection's thread) and finished (by the
        # delivering thread): equal when that thread holds nothing, each written by one thread.
        self._queued = 0
        self._finished = 0
        self._direct_after = 0.0  # monotonic time from which direct deliveries are allowed again
        self._acked: tuple[Any, int] | None = None  # (channel, highest tag acknowledged)
        self._ack_due: tuple[Any, int] | None = None  # a direct delivery's ack, sent after the burst

    @property
    def problems(self) -> dict[str, int]:
        """Failed connection attempts by kind (see linkserver.bridges.amqp_connection)."""
        return dict(self._connector.problems)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"linkserver-{self.name}-deliver", daemon=True)
        self._thread.start()
        self._connector.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop consuming and delete the queue (nobody here listens any more)."""
        deleted = threading.Event()
        channel = self._channel

        def delete() -> None:
            if channel is not None and channel.is_open:
                channel.queue_delete(self.queue, callback=lambda _frame: deleted.set())
            else:
                deleted.set()

        if channel is not None and self._connector.call(delete):
            deleted.wait(min(timeout, 2.0))
        self._connector.stop(timeout)
        self._work.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    # -- in the connection's thread -------------------------------------------------

    def _opened(self, connection: SelectConnection) -> None:
        if self._consumed:  # a reconnect: was the queue kept while this node was away?
            connection.channel(on_open_callback=functools.partial(self._probe, connection))
        else:
            connection.channel(on_open_callback=self._channel_opened)

    def _probe(self, connection: SelectConnection, channel: Any) -> None:
        """A passive declare on a channel of its own (a missing queue closes the channel)."""
        answered: list[bool] = []

        def answer(gone: bool) -> None:
            if answered:
                return
            answered.append(gone)
            self._queue_gone = gone
            if connection.is_open:
                connection.channel(on_open_callback=self._channel_opened)

        def declared(_frame: Any) -> None:
            answer(False)
            channel.close()

        channel.add_on_close_callback(
            lambda _channel, reason: answer(getattr(reason, "reply_code", None) == NOT_FOUND)
        )
        channel.queue_declare(self.queue, passive=True, callback=declared)

    def _channel_opened(self, channel: Any) -> None:
        self._channel = channel
        channel.add_on_close_callback(self._channel_closed)
        channel.add_on_cancel_callback(lambda _: self._connector.failed(f"queue {self.queue!r} was deleted"))
        arguments = {"x-expires": self.queue_expires_ms}
        steps: list[Callable[[Callable[[Any], None]], None]] = [
            lambda done: channel.exchange_declare(self.exchange, "topic", durable=True, callback=done),
            lambda done: channel.queue_declare(self.queue, durable=True, arguments=arguments, callback=done),
            lambda done: channel.queue_bind(self.queue, self.exchange, "#", callback=done),
            lambda done: channel.basic_qos(prefetch_count=self.prefetch, callback=done),
        ]
        self._run_steps(channel, steps)

    def _run_steps(self, channel: Any, steps: list[Callable[[Callable[[Any], None]], None]]) -> None:
        if not steps:
            if self._queue_gone and self.on_queue_lost is not None:  # before its first message
                self._queued += 1
                self._work.put(_QueueLost(self._lost_at or time.time()))
            self._queue_gone = False
            channel.basic_consume(self.queue, self._message, callback=lambda _: self._consuming())
            return
        steps[0](lambda _frame: self._run_steps(channel, steps[1:]))

    def _consuming(self) -> None:
        self._connector.opened()
        self._consumed, self._lost_at = True, None
        self.consuming.set()
        log.info("%s: receiving the other nodes' events on queue %r", self.name, self.queue)

    def _channel_closed(self, channel: Any, reason: BaseException) -> None:
        self.consuming.clear()
        self._channel = None
        if self._lost_at is None:
            self._lost_at = time.time()
        if not self._connector.stopping:
            code = getattr(reason, "reply_code", None)
            if code == 406:
                why = (
                    f"exchange {self.exchange!r} or queue {self.queue!r} exists with other settings "
                    f"({reason}); the cluster's exchange must be a durable topic exchange of its own"
                )
            else:
                why = f"cluster channel closed: {reason}"
            self._connector.failed(why)

    def _lost(self, reason: str) -> None:
        self.consuming.clear()
        self._channel = None
        if self._lost_at is None:
            self._lost_at = time.time()

    def _message(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        tag = method.delivery_tag
        if self._queued == self._finished and time.monotonic() >= self._direct_after:
            self._deliver_here(channel, tag, body, properties.app_id, properties.type)
            return
        self._queued += 1
        self._work.put((channel, tag, body, properties.app_id, properties.type))

    def _deliver_here(
        self, channel: Any, tag: int, body: bytes, origin: str | None, kind: str | None
    ) -> None:
        """Deliver in the connection's thread: nothing older is waiting or being delivered."""
        started = time.monotonic()
        try:
            self._deliver(body, origin, kind)
        except Exception:  # the server's deliver must not raise; never stop receiving
            log.exception("%s: delivering a message failed", self.name)
        self.received += 1
        took = time.monotonic() - started
        if took > SLOW:
            self._direct_after = time.monotonic() + SLOW_PAUSE
            log.info(
                "%s: a delivery took %.2f s (a slow subscriber); the next %.0f s of messages go "
                "through the delivering thread",
                self.name,
                took,
                SLOW_PAUSE,
            )
        # One acknowledgement for the messages of one read from the socket: after them.
        if self._ack_due is None:
            connection = self._connector.connection
            if connection is not None:
                connection.ioloop.call_later(0, self._ack_direct)
        self._ack_due = (channel, tag)

    def _ack_direct(self) -> None:
        due, self._ack_due = self._ack_due, None
        if due is not None:
            self._ack(*due)

    def _ack(self, channel: Any, tag: int) -> None:
        acked = self._acked
        if acked is not None and acked[0] is channel and tag <= acked[1]:
            return  # acknowledged already with a later one (multiple)
        if channel is self._channel and channel.is_open:  # else RabbitMQ delivers it again
            channel.basic_ack(tag, multiple=True)
            self._acked = (channel, tag)

    # -- the delivering thread ----------------------------------------------------------

    def _run(self) -> None:
        pending = 0
        last: tuple[Any, int] | None = None
        while True:
            item = self._work.get()
            if item is None:
                return
            if isinstance(item, _QueueLost):
                try:
                    assert self.on_queue_lost is not None
                    self.on_queue_lost(item.since)
                except Exception:  # never stop receiving
                    log.exception("%s: replaying what the lost queue missed failed", self.name)
                self._finished += 1
                continue
            channel, tag, body, origin, kind = item
            if last is not None and last[0] is not channel:  # a new channel: the old one's tags are void
                pending, last = 0, None
            try:
                self._deliver(body, origin, kind)
            except Exception:  # the server's deliver must not raise; never stop receiving
                log.exception("%s: delivering a message failed", self.name)
            self.received += 1
            pending += 1
            last = (channel, tag)
            if pending >= ACK_EVERY or self._work.empty():
                self._connector.call(functools.partial(self._ack, channel, tag))
                pending = 0
            self._finished += 1  # after the ack is queued: a direct one after it acknowledges later
