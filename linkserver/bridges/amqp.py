"""The AMQP bridge (RabbitMQ): events out to a topic exchange, posted events in from a queue.

Outbound, each event is one persistent message (``delivery_mode`` 2) on
``exchange`` (declared durable, of ``exchange_type``, unless ``declare`` is
false), routed by ``routing`` (a template or layout of
:mod:`linkserver.core.routing`), its body the event as a CloudEvent
(``content_type`` ``application/cloudevents+json``), its ``message_id`` the
event id. The channel is in publisher-confirm mode: an event is confirmed to
LinkServer only when RabbitMQ acknowledged it, and everything unconfirmed
when the connection goes is reported failed (LinkServer sends it again).
``mandatory`` is set, so a message no queue is bound for comes back: it is
logged (once per routing key and minute) and counted, and counts as
delivered (RabbitMQ confirms it; nobody asked for it).

A blocked connection (RabbitMQ's memory or disk alarm) makes the bridge
"not ready": LinkServer stops handing it events, which wait in the outbox;
nothing ever waits in a fire.

Inbound (``queue`` set): see :mod:`linkserver.bridges.amqp_inbound`.

Why pika and not aio-pika: LinkServer's engine and history writer are
threads, not an asyncio loop; pika's ``SelectConnection`` runs its own loop
in the bridge's thread, exposes ``Connection.Blocked``/``Unblocked`` and
multiple-acknowledge confirms directly (one callback for many messages,
where aio-pika resolves one future per message), and it was already the
project's AMQP client (tools/bench).
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Sequence
from typing import Any

from pika.adapters.select_connection import SelectConnection
from pika.spec import Basic

from linkserver.bridges import amqp_frames
from linkserver.bridges.amqp_connection import Connector
from linkserver.core.cloudevents import CONTENT_TYPE, encode
from linkserver.core.events import Event
from linkserver.core.routing import DEFAULT, category_of, router
from linkserver.typing import BridgeHandle

log = logging.getLogger("linkserver.bridges.amqp")

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
EXCHANGE_TYPES = ("topic", "direct", "fanout", "headers")
UNROUTABLE_LOG_EVERY = 60.0
METHODS_KEPT = 10_000  # routing keys whose publish method frame is kept
# (event id, routing key, body, encoded properties: linkserver.bridges.amqp_frames)
Message = tuple[int, str, bytes, bytes]


class AmqpBridge:
    """A :class:`~linkserver.typing.Bridge` to RabbitMQ (see the module doc)."""

    # ``publish`` may be called from inside ``handle.confirmed`` (the connection's thread): it
    # only queues the messages for the connection's next turn, so the outbound refills the
    # window right where the confirms arrive (see linkserver.server.outbound).
    publishes_on_confirm = True

    def __init__(
        self,
        name: str,
        *,
        url: str = DEFAULT_URL,
        exchange: str = "linkserver",
        exchange_type: str = "topic",
        declare: bool = True,
        routing: str = DEFAULT,
        source: str = "node0",
        heartbeat: int = 30,
        queue: str | None = None,
        bindings: Sequence[str] = (),
        dead_letter_exchange: str | None = None,
        prefetch: int = 100,
    ) -> None:
        if exchange_type not in EXCHANGE_TYPES:
            raise ValueError(
                f"exchange_type must be one of {', '.join(EXCHANGE_TYPES)}, got {exchange_type!r}"
            )
        self.name = name
        self.url = url
        self.exchange = exchange
        self.exchange_type = exchange_type
        self.declare = declare
        self.source = source
        self.routing = routing
        self.handle: BridgeHandle | None = None
        self._key = router(routing, source)
        self._connector = Connector(name, url, self._opened, self._lost, heartbeat=heartbeat)
        self._channel: Any = None
        self._confirming = False
        self._blocked = False
        self._next_tag = 1
        self._unconfirmed: collections.deque[tuple[int, int]] = collections.deque()  # (tag, event id)
        self._methods: dict[str, bytes] = {}  # routing key -> its basic.publish payload
        self.unroutable = 0
        self._unroutable_logged: dict[str, float] = {}
        self.inbound = None
        if queue is not None:
            from linkserver.bridges.amqp_inbound import AmqpInbound

            self.inbound = AmqpInbound(
                name,
                url,
                queue,
                exchange=exchange,
                exchange_type=exchange_type,
                bindings=bindings,
                dead_letter_exchange=dead_letter_exchange,
                prefetch=prefetch,
                declare=declare,
                heartbeat=heartbeat,
            )

    @property
    def where(self) -> str:
        return self._connector.where

    @property
    def problems(self) -> dict[str, int]:
        """Failed connection attempts by kind, publishing and inbound connection together (the
        metric ``linkserver_bridge_connection_problems_total``; docs/bridges.md)."""
        total = collections.Counter(self._connector.problems)
        if self.inbound is not None:
            total.update(self.inbound.problems)
        return dict(total)

    # -- Bridge ---------------------------------------------------------------

    def start(self, handle: BridgeHandle) -> None:
        self.handle = handle
        self._connector.start()
        if self.inbound is not None:
            self.inbound.start(handle)

    def stop(self, timeout: float = 5.0) -> None:
        if self.inbound is not None:
            self.inbound.stop(timeout)
        self._connector.stop(timeout)

    def publish(self, events: Sequence[Event]) -> None:
        handle = self.handle
        assert handle is not None
        messages = self._messages(events)
        if not self._connector.call(lambda: self._send(messages)):
            handle.failed([event.id for event in events], "not connected to RabbitMQ")

    def _messages(self, events: Sequence[Event]) -> list[Message]:
        """Each event's message, encoded in the caller's thread (see :data:`Message`)."""
        key, source, properties = self._key, self.source, amqp_frames.properties
        return [
            (
                event.id,
                key(event),
                encode(event, source, category=category_of(event)),
                properties(content_type=CONTENT_TYPE, delivery_mode=2, message_id=str(event.id)),
            )
            for event in events
        ]

    # -- in the connection's thread ---------------------------------------------

    def _send(self, messages: list[Message]) -> None:
        """Publish ``messages`` (mandatory), their frames in one write to the connection."""
        channel = self._channel
        handle = self.handle
        assert handle is not None
        if channel is None or not self._confirming or not channel.is_open:
            handle.failed([message[0] for message in messages], "the channel is not open")
            return
        connection, number = channel.connection, channel.channel_number
        body_max, frames = amqp_frames.body_max(connection), amqp_frames.publish_frames
        methods, unconfirmed = self._methods, self._unconfirmed
        pieces: list[bytes] = []
        tag = first = self._next_tag
        sent = 0
        try:
            for event_id, key, body, properties in messages:
                method = methods.get(key)
                if method is None:
                    try:
                        method = amqp_frames.publish_method(self.exchange, key, mandatory=True)
                    except ValueError:  # a key over 255 bytes: this event can never be published
                        self._unsendable(event_id, key)
                        sent += 1
                        continue
                    if len(methods) >= METHODS_KEPT:
                        methods.clear()
                    methods[key] = method
                frames(pieces, number, method, properties, body, body_max)
                unconfirmed.append((tag, event_id))
                tag += 1
                sent += 1
        except Exception as exc:  # not expected: that one and the rest are not sent
            handle.failed([message[0] for message in messages[sent:]], f"publish failed: {exc!r}")
        try:
            amqp_frames.write(connection, pieces)
        except Exception as exc:  # the connection closed under us: none of them was sent
            while unconfirmed and unconfirmed[-1][0] >= first:
                unconfirmed.pop()
            handle.failed([message[0] for message in messages[:sent]], f"publish failed: {exc!r}")
            return
        self._next_tag = tag

    def _opened(self, connection: SelectConnection) -> None:
        connection.add_on_connection_blocked_callback(self._on_blocked)
        connection.add_on_connection_unblocked_callback(self._on_unblocked)
        connection.channel(on_open_callback=self._channel_opened)

    def _channel_opened(self, channel: Any) -> None:
        self._channel = channel
        channel.add_on_close_callback(self._channel_closed)
        channel.add_on_return_callback(self._returned)
        if self.declare:
            channel.exchange_declare(
                self.exchange, self.exchange_type, durable=True, callback=lambda _: self._declared(channel)
            )
        else:
            channel.exchange_declare(self.exchange, passive=True, callback=lambda _: self._declared(channel))

    def _declared(self, channel: Any) -> None:
        self._next_tag = 1
        channel.confirm_delivery(self._confirm, callback=lambda _: self._confirm_on())

    def _confirm_on(self) -> None:
        self._confirming = True
        self._connector.opened()
        assert self.handle is not None
        if not self._blocked:
            self.handle.ready(True, f"connected to {self.where}, exchange {self.exchange!r}")

    def _channel_closed(self, channel: Any, reason: BaseException) -> None:
        self._confirming = False
        self._channel = None
        self._fail_unconfirmed(f"channel closed: {reason}")
        if self._connector.stopping:
            return
        code = getattr(reason, "reply_code", None)
        text = getattr(reason, "reply_text", str(reason))
        if code == 406:
            kind = "exchange"
            why = (
                f"exchange {self.exchange!r} exists with other settings than type "
                f"{self.exchange_type!r}, durable ({text}); delete it or set exchange_type to its type"
            )
        elif code == 404:
            kind = "exchange"
            why = f"exchange {self.exchange!r} does not exist ({text}); create it or set declare: true"
        elif code == 403:
            kind = "access"
            why = f"access to exchange {self.exchange!r} refused ({text}); check the user's permissions"
        else:
            kind, why = "channel", f"channel closed: {reason}"
        if self.handle is not None:
            self.handle.ready(False, why)
        self._connector.failed(why, kind)

    def _lost(self, reason: str) -> None:
        self._confirming = False
        self._channel = None
        self._blocked = False
        self._fail_unconfirmed(reason)
        if self.handle is not None:
            self.handle.ready(False, reason)

    def _fail_unconfirmed(self, reason: str) -> None:
        lost = [event_id for _, event_id in self._unconfirmed]
        self._unconfirmed.clear()
        if lost and self.handle is not None:
            self.handle.failed(lost, reason)

    def _confirm(self, frame: Any) -> None:
        method = frame.method
        tag, multiple = method.delivery_tag, method.multiple
        unconfirmed = self._unconfirmed
        ids: list[int] = []
        if multiple:
            while unconfirmed and unconfirmed[0][0] <= tag:
                ids.append(unconfirmed.popleft()[1])
        elif unconfirmed and unconfirmed[0][0] == tag:
            ids.append(unconfirmed.popleft()[1])
        else:  # out of order (rare): find it
            for index, (found, event_id) in enumerate(unconfirmed):
                if found == tag:
                    ids.append(event_id)
                    del unconfirmed[index]
                    break
        if not ids or self.handle is None:
            return
        if isinstance(method, Basic.Nack):
            self.handle.failed(ids, "RabbitMQ refused the messages (negative confirm)")
        else:
            self.handle.confirmed(ids)

    def _unsendable(self, event_id: int, key: str) -> None:
        """An event whose routing key AMQP cannot carry (over 255 bytes): said, counted as
        unroutable and taken as delivered, as a message no queue is bound for is (sending it
        again would fail again and hold up every event after it)."""
        self.unroutable += 1
        self._say_once(
            key[:200],
            "bridge %s: the routing key of event %d is over 255 bytes, AMQP's limit (%r...): it cannot "
            "be published and is dropped; shorten the context path or set the bridge's routing [%d so far]",
            self.name,
            event_id,
            key[:60],
            self.unroutable,
        )
        assert self.handle is not None
        self.handle.confirmed([event_id])

    def _say_once(self, key: str, message: str, *args: Any) -> None:
        """Log ``message`` at most once per key and UNROUTABLE_LOG_EVERY seconds."""
        now = time.monotonic()
        if now - self._unroutable_logged.get(key, -UNROUTABLE_LOG_EVERY) >= UNROUTABLE_LOG_EVERY:
            self._unroutable_logged[key] = now
            if len(self._unroutable_logged) > 10_000:
                self._unroutable_logged.clear()
            log.warning(message, *args)

    def _returned(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        self.unroutable += 1
        self._say_once(
            method.routing_key,
            "bridge %s: no queue is bound to exchange %r for routing key %r: RabbitMQ dropped the "
            "message (%s); bind a queue (see docs/bridges.md) or narrow the bridge's select [%d so far]",
            self.name,
            self.exchange,
            method.routing_key,
            method.reply_text,
            self.unroutable,
        )

    def _on_blocked(self, connection: Any, frame: Any) -> None:
        self._blocked = True
        reason = getattr(frame.method, "reason", "") or "resource alarm"
        log.warning(
            "bridge %s: RabbitMQ blocked the connection (%s): events wait in the outbox", self.name, reason
        )
        if self.handle is not None:
            self.handle.ready(False, f"blocked by RabbitMQ: {reason}")

    def _on_unblocked(self, connection: Any, frame: Any) -> None:
        self._blocked = False
        log.info("bridge %s: RabbitMQ unblocked the connection", self.name)
        if self.handle is not None and self._confirming:
            self.handle.ready(True, "unblocked")

    # -- for tests and tools ----------------------------------------------------

    def drop_connection(self) -> None:
        """Close the connection as if it were lost (it is opened again)."""
        self._connector.close_connection()
