"""The cluster's consumer on the real RabbitMQ: where messages are delivered, and in what order."""

from __future__ import annotations

import threading
import time
import uuid

import pika
import pytest

from bridges.conftest import RABBITMQ_URL
from linkserver.bridges import amqp_cluster
from linkserver.bridges.amqp_cluster import ClusterConsumer

pytestmark = pytest.mark.skipif(not RABBITMQ_URL, reason="LINKSERVER_TEST_RABBITMQ_URL is not set")


def test_a_slow_delivery_hands_the_next_messages_to_the_delivering_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Messages are delivered in the connection's thread while nothing waits; one delivery
    longer than SLOW sends the next ones through the delivering thread, in the same order,
    each once, and acknowledged (a new connection gets none of them again)."""
    assert RABBITMQ_URL is not None
    monkeypatch.setattr(amqp_cluster, "SLOW", 0.05)
    exchange = f"linkserver-test-consumer-{uuid.uuid4().hex[:8]}"
    got: list[tuple[bytes, str]] = []
    arrived = threading.Condition()

    def deliver(body: bytes, origin: str | None, kind: str | None) -> None:
        if body == b"3":
            time.sleep(0.2)  # a slow subscriber
        with arrived:
            got.append((body, threading.current_thread().name))
            arrived.notify_all()

    consumer = ClusterConsumer(
        "test",
        url=RABBITMQ_URL,
        exchange=exchange,
        queue_name=exchange + ".q",
        deliver=deliver,
        queue_expires_ms=60_000,
    )
    consumer.start()
    publisher = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    try:
        assert consumer.consuming.wait(30)
        channel = publisher.channel()

        def publish(first: int, last: int) -> None:
            for number in range(first, last):
                channel.basic_publish(exchange, "a.b", str(number).encode())
                time.sleep(0.02)  # one at a time: nothing waits when each arrives

        publish(0, 4)
        with arrived:
            assert arrived.wait_for(lambda: len(got) == 4, 10)
        # Those were acknowledged: a new connection gets none of them again.
        time.sleep(0.2)
        consumer.consuming.clear()
        consumer._connector.close_connection()
        assert consumer.consuming.wait(30)
        time.sleep(0.5)
        assert len(got) == 4
        publish(4, 20)
        with arrived:
            assert arrived.wait_for(lambda: len(got) == 20, 10)
        assert [body for body, _ in got] == [str(number).encode() for number in range(20)]
        threads = [name for _, name in got]
        assert all(name.startswith("linkserver-amqp-") for name in threads[:4]), threads
        assert all(name.endswith("-deliver") for name in threads[4:]), threads
        assert consumer.received == 20
    finally:
        consumer.stop()
        channel = publisher.channel()
        channel.exchange_delete(exchange)
        publisher.close()
