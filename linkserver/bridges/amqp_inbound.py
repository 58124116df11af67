"""The inbound side of the AMQP bridge: a queue of posted events, consumed on a connection
of its own (so RabbitMQ's flow control on publishing never stalls consuming, nor the
other way round).

Each message is handed to LinkServer (``handle.receive``): decoded, validated and
fired like any fire. It is acknowledged once LinkServer says so, which for a
persistent event is after its commit: a message acknowledged is never lost across
a restart. A message LinkServer refuses for good (PoisonMessage) is published to
``dead_letter_exchange`` (same routing key, same properties) with the reason in
the ``x-linkserver-reason`` header and its kind in ``x-linkserver-refused``, then
acknowledged; without a dead-letter exchange it is rejected without requeueing
(RabbitMQ then applies the queue's own dead-letter policy, if any). A passing
problem (history unavailable, server stopping) gives the message back to the
queue after a second.

With ``declare`` the bridge's exchange is declared (of ``exchange_type``,
durable: the publishing side declares it too, and either may be first), the
queue is declared durable and bound to it with each of ``bindings``, and the
dead-letter exchange is declared (topic, durable). When a step fails (an
exchange or the queue exists with other settings, is missing without
``declare``, access refused) the log line names the step; the connection is
set up again after a delay.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

import pika
from pika.adapters.select_connection import SelectConnection

from linkserver.bridges.amqp_connection import Connector
from linkserver.core.cloudevents import PoisonMessage
from linkserver.typing import BridgeHandle

log = logging.getLogger("linkserver.bridges.amqp")

REASON_HEADER = "x-linkserver-reason"
KIND_HEADER = "x-linkserver-refused"
REQUEUE_AFTER = 1.0


class AmqpInbound:
    def __init__(
        self,
        name: str,
        url: str,
        queue: str,
        *,
        exchange: str,
        exchange_type: str = "topic",
        bindings: Sequence[str] = (),
        dead_letter_exchange: str | None = None,
        prefetch: int = 100,
        declare: bool = True,
        heartbeat: int = 30,
    ) -> None:
        self.name = name
        self.queue = queue
        self.exchange = exchange
        self.exchange_type = exchange_type
        self.bindings = tuple(bindings)
        self.dead_letter_exchange = dead_letter_exchange
        self.prefetch = prefetch
        self.declare = declare
        self.handle: BridgeHandle | None = None
        self._connector = Connector(f"{name}-in", url, self._opened, self._lost, heartbeat=heartbeat)
        self._channel: Any = None
        self._step = ("", "queue")  # what the channel is doing now, and the kind it fails as
        self.consuming = False

    def start(self, handle: BridgeHandle) -> None:
        self.handle = handle
        self._connector.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._connector.stop(timeout)

    # -- in the connection's thread -------------------------------------------------

    def _opened(self, connection: SelectConnection) -> None:
        connection.channel(on_open_callback=self._channel_opened)

    def _channel_opened(self, channel: Any) -> None:
        self._channel = channel
        channel.add_on_close_callback(self._channel_closed)
        channel.add_on_cancel_callback(lambda _: self._connector.failed(f"queue {self.queue!r} was deleted"))
        steps: list[tuple[str, str, Any]] = []  # (what it does, the problem kind if it fails, the call)
        queue, exchange = self.queue, self.exchange
        if self.declare:
            steps.append(
                (
                    f"declaring exchange {exchange!r} ({self.exchange_type}, durable)",
                    "exchange",
                    lambda done: channel.exchange_declare(
                        exchange, self.exchange_type, durable=True, callback=done
                    ),
                )
            )
            steps.append(
                (
                    f"declaring queue {queue!r} (durable)",
                    "queue",
                    lambda done: channel.queue_declare(queue, durable=True, callback=done),
                )
            )
            for key in self.bindings:
                steps.append(
                    (
                        f"binding queue {queue!r} to exchange {exchange!r} with {key!r}",
                        "queue",
                        lambda done, key=key: channel.queue_bind(queue, exchange, key, callback=done),
                    )
                )
            if self.dead_letter_exchange:
                dlx = self.dead_letter_exchange
                steps.append(
                    (
                        f"declaring dead-letter exchange {dlx!r} (topic, durable)",
                        "exchange",
                        lambda done: channel.exchange_declare(dlx, "topic", durable=True, callback=done),
                    )
                )
        else:
            steps.append(
                (
                    f"looking up queue {queue!r} (declare: false)",
                    "queue",
                    lambda done: channel.queue_declare(queue, passive=True, callback=done),
                )
            )
        steps.append(
            (
                "setting the prefetch",
                "channel",
                lambda done: channel.basic_qos(prefetch_count=self.prefetch, callback=done),
            )
        )
        self._run_steps(steps)

    def _run_steps(self, steps: list[tuple[str, str, Any]]) -> None:
        if not steps:
            self._step = (f"consuming queue {self.queue!r}", "queue")
            self._channel.basic_consume(self.queue, self._message, callback=lambda _: self._consuming())
            return
        (what, kind, call), rest = steps[0], steps[1:]
        self._step = (what, kind)
        call(lambda _frame: self._run_steps(rest))

    def _consuming(self) -> None:
        self.consuming = True
        self._connector.opened()
        log.info("bridge %s: consuming posted events from queue %r", self.name, self.queue)

    def _channel_closed(self, channel: Any, reason: BaseException) -> None:
        self.consuming = False
        self._channel = None
        code = getattr(reason, "reply_code", None)
        what, kind = self._step
        if code == 404:
            why = f"{what} failed: it does not exist ({reason}); create it or set declare: true"
        elif code == 406:
            why = f"{what} failed: it exists with other settings ({reason}); delete it or change the bridge's"
        elif code == 403:
            kind, why = "access", f"{what} failed: access refused ({reason}); check the user's permissions"
        else:
            kind, why = "channel", f"inbound channel closed while {what}: {reason}"
        self._connector.failed(why, kind)

    @property
    def problems(self) -> collections.Counter[str]:
        """The inbound connection's failed attempts by kind (see AmqpBridge.problems)."""
        return self._connector.problems

    def _lost(self, reason: str) -> None:
        self.consuming = False
        self._channel = None

    def _message(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        assert self.handle is not None
        tag = method.delivery_tag
        try:
            future = self.handle.receive(body)
        except Exception as exc:  # noqa: BLE001 - LinkServer should not raise; never take the loop down
            log.exception("bridge %s: receiving a message failed", self.name)
            future = Future()
            future.set_exception(exc)

        def settled(done: Future[Any]) -> None:
            if not self._connector.call(lambda: self._settle(channel, tag, method, properties, body, done)):
                log.info(
                    "bridge %s: connection gone before a message was settled; RabbitMQ delivers it again",
                    self.name,
                )

        future.add_done_callback(settled)

    def _settle(
        self, channel: Any, tag: int, method: Any, properties: Any, body: bytes, done: Future[Any]
    ) -> None:
        if channel is not self._channel or not channel.is_open:
            return  # the channel this came on is gone: RabbitMQ redelivers the message
        error = done.exception()
        if error is None:
            channel.basic_ack(tag)
        elif isinstance(error, PoisonMessage):
            if self.dead_letter_exchange:
                headers = dict(properties.headers or {})
                headers[REASON_HEADER] = str(error)[:4000]
                headers[KIND_HEADER] = error.kind
                dead = pika.BasicProperties(
                    content_type=properties.content_type,
                    delivery_mode=2,
                    message_id=properties.message_id,
                    headers=headers,
                )
                channel.basic_publish(self.dead_letter_exchange, method.routing_key, body, dead)
                channel.basic_ack(tag)
            else:
                channel.basic_reject(tag, requeue=False)
        else:
            connection = self._connector.connection
            if connection is not None:
                connection.ioloop.call_later(REQUEUE_AFTER, lambda: self._requeue(channel, tag))

    def _requeue(self, channel: Any, tag: int) -> None:
        if channel is self._channel and channel.is_open:
            channel.basic_nack(tag, requeue=True)
