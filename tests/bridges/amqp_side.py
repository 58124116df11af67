"""The broker side of the AMQP bridge for the contract suite: the real local RabbitMQ,
seen through a pika connection of the test's own, and a proxy between bridge and broker
so that the test can take the broker away from the bridge only."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pika

from bridges.bridge_sides import BrokerSide, Received
from linkserver.bridges.amqp import AmqpBridge
from linkserver.bridges.amqp_inbound import REASON_HEADER
from linkserver.testing_proxy import TcpProxy
from linkserver.typing import Bridge


class AmqpSide(BrokerSide):
    name = "amqp"

    def __init__(self, url: str) -> None:
        self.url = url
        self.connection = pika.BlockingConnection(pika.URLParameters(url))  # unreachable: the test fails
        self.channel = self.connection.channel()
        unique = f"lstest-{uuid.uuid4().hex[:10]}"
        self.exchange = unique
        self.inbound_queue = f"{unique}-in"
        self.dead_exchange = f"{unique}-dead"
        self.channel.exchange_declare(self.exchange, "topic", durable=True)
        self.channel.exchange_declare(self.dead_exchange, "topic", durable=True)
        self.out_queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.channel.queue_bind(self.out_queue, self.exchange, "#")
        self.dead_queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.channel.queue_bind(self.dead_queue, self.dead_exchange, "#")
        self.channel.queue_declare(self.inbound_queue, durable=True)
        self.proxy = TcpProxy.for_url(url)
        self.messages: list[Received] = []
        self.dead: list[tuple[bytes, str]] = []
        self.bridges: list[AmqpBridge] = []

    def bridge(self, name: str, **options: Any) -> Bridge:
        options.setdefault("url", self.proxy.url_for(self.url))
        options.setdefault("exchange", self.exchange)
        options.setdefault("queue", self.inbound_queue)
        options.setdefault("dead_letter_exchange", self.dead_exchange)
        bridge = AmqpBridge(name, **options)
        self.bridges.append(bridge)
        return bridge

    def _drain(self, queue: str, into: list[Any], count: int, timeout: float, convert: Any) -> list[Any]:
        deadline = time.monotonic() + timeout
        while len(into) < count:
            method, properties, body = self.channel.basic_get(queue, auto_ack=True)
            if method is None:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{len(into)} messages on {queue}, waited for {count}")
                self.connection.sleep(0.02)
                continue
            into.append(convert(method, properties, body))
        return into[:count]

    def received(self, count: int, timeout: float = 15.0) -> list[Received]:
        def convert(method: Any, properties: Any, body: bytes) -> Received:
            return Received(
                method.routing_key, json.loads(body), properties.message_id, properties.delivery_mode == 2
            )

        return self._drain(self.out_queue, self.messages, count, timeout, convert)

    def received_so_far(self) -> list[Received]:
        try:
            self.received(len(self.messages) + 1_000_000, timeout=0)  # take what the queue holds
        except TimeoutError:
            pass
        return list(self.messages)

    def post(self, body: bytes) -> None:
        self.channel.basic_publish("", self.inbound_queue, body, pika.BasicProperties(delivery_mode=2))

    def dead_letters(self, count: int, timeout: float = 15.0) -> list[tuple[bytes, str]]:
        def convert(method: Any, properties: Any, body: bytes) -> tuple[bytes, str]:
            return body, (properties.headers or {}).get(REASON_HEADER, "")

        return self._drain(self.dead_queue, self.dead, count, timeout, convert)

    def set_available(self, available: bool) -> None:
        self.proxy.set_available(available)

    def close(self) -> None:
        for bridge in self.bridges:
            bridge.stop(2)
        try:
            for exchange in (self.exchange, self.dead_exchange):
                self.channel.exchange_delete(exchange)
            self.channel.queue_delete(self.inbound_queue)
            self.connection.close()
        finally:
            self.proxy.close()
