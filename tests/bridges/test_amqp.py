"""What only the AMQP bridge has: connection problems said clearly, confirms across a
connection killed mid-stream, a blocked connection, messages nobody is bound for."""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pika
import pytest

from bridges.amqp_side import AmqpSide
from bridges.test_contract import DEVICE, measurement, start, wait_until
from linkserver.bridges.amqp import AmqpBridge
from linkserver.server.app import LinkServer
from linkserver.server.metrics import exposition, registry
from linkserver.server.outbound import Select

RABBITMQ_URL = os.environ.get("LINKSERVER_TEST_RABBITMQ_URL")
pytestmark = pytest.mark.skipif(not RABBITMQ_URL, reason="LINKSERVER_TEST_RABBITMQ_URL is not set")


def problems(server: LinkServer, kind: str) -> float:
    """``linkserver_bridge_connection_problems_total`` of bridge ``out`` for ``kind`` (0 if none)."""
    text = exposition(registry(server)).decode()
    found = re.search(
        rf'^linkserver_bridge_connection_problems_total{{bridge="out",problem="{kind}"}} (\S+)$', text, re.M
    )
    return float(found.group(1)) if found else 0.0


@pytest.fixture
def side() -> Iterator[AmqpSide]:
    assert RABBITMQ_URL is not None
    made = AmqpSide(RABBITMQ_URL)
    try:
        yield made
    finally:
        made.close()


def test_a_broker_unreachable_at_start_is_retried_and_said_and_nothing_is_lost(
    side: AmqpSide, server_factory: Callable[..., LinkServer], caplog: pytest.LogCaptureFixture
) -> None:
    side.set_available(False)
    server = server_factory()
    with caplog.at_level(logging.WARNING, logger="linkserver.bridges"):
        host = server.add_bridge("out", side.bridge("out"), select=[Select(mask="devices.*")])
        server.engine.add_context(DEVICE)
        fired = [server.fire(DEVICE, "measurement", measurement(float(i))) for i in range(10)]
        wait_until(lambda: "cannot reach RabbitMQ at guest@127.0.0.1" in caplog.text, "the log line")
    assert not host.outbound.is_ready
    text = exposition(registry(server)).decode()
    assert 'linkserver_bridge_ready{bridge="out"} 0.0' in text
    assert problems(server, "unreachable") >= 1
    side.set_available(True)
    received = side.received(10)
    assert [r.message_id for r in received] == [str(e.id) for e in fired]


def test_wrong_credentials_are_said_without_the_password(
    side: AmqpSide, server_factory: Callable[..., LinkServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = server_factory()
    url = side.proxy.url_for(side.url).replace("guest:guest@", "guest:wrong-secret@")
    with caplog.at_level(logging.WARNING, logger="linkserver.bridges"):
        host = server.add_bridge("out", side.bridge("out", url=url), select=[Select(mask="devices.*")])
        wait_until(lambda: "refused the credentials" in caplog.text, "the log line")
    assert "wrong-secret" not in caplog.text
    assert not host.outbound.is_ready
    assert server.running
    assert problems(server, "credentials") >= 1 and problems(server, "unreachable") == 0


def test_an_exchange_of_another_type_is_said_and_the_bridge_keeps_trying(
    side: AmqpSide, server_factory: Callable[..., LinkServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = server_factory()
    with caplog.at_level(logging.WARNING, logger="linkserver.bridges"):
        bridge = side.bridge("out", exchange_type="fanout")  # the side declared it a topic exchange
        host = server.add_bridge("out", bridge, select=[Select(mask="devices.*")])
        wait_until(lambda: "exists with other settings than type 'fanout'" in caplog.text, "the log line")
    assert not host.outbound.is_ready
    assert problems(server, "exchange") >= 1


def test_a_message_no_queue_is_bound_for_is_said_and_counted(
    side: AmqpSide, server_factory: Callable[..., LinkServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = server_factory()
    lonely = f"lstest-{uuid.uuid4().hex[:10]}-unbound"
    try:
        with caplog.at_level(logging.WARNING, logger="linkserver.bridges"):
            host = start(server, side, exchange=lonely, queue=None)
            server.engine.add_context(DEVICE)
            server.fire(DEVICE, "measurement", measurement(1.0))
            wait_until(lambda: "no queue is bound to exchange" in caplog.text, "the log line")
        wait_until(lambda: host.outbound.depth == 0, "the confirm")  # RabbitMQ confirms it all the same
        text = exposition(registry(server)).decode()
        assert 'linkserver_bridge_unroutable_total{bridge="out"} 1.0' in text
    finally:
        side.channel.exchange_delete(lonely)


def test_a_connection_killed_mid_stream_loses_nothing_and_keeps_the_order(
    side: AmqpSide, server_factory: Callable[..., LinkServer]
) -> None:
    server = server_factory()
    host = start(server, side)
    server.engine.add_context(DEVICE)
    fired = []
    for i in range(2000):
        fired.append(server.fire(DEVICE, "measurement", measurement(float(i))))
        if i in (500, 1200):
            bridge = host.bridge
            assert isinstance(bridge, AmqpBridge)
            bridge.drop_connection()
    received = side.received(2000, timeout=60)
    while len(list(dict.fromkeys(r.message_id for r in side.messages))) < 2000:
        side.received(len(side.messages) + 1, timeout=30)
    unique = list(dict.fromkeys(r.message_id for r in side.messages))
    assert unique == [str(e.id) for e in fired]
    assert host.outbound.stats.ready_changes >= 2
    assert len(received) == 2000


def test_a_blocked_connection_holds_events_back_until_unblocked(
    side: AmqpSide, server_factory: Callable[..., LinkServer]
) -> None:
    server = server_factory()
    host = start(server, side)
    bridge = host.bridge
    assert isinstance(bridge, AmqpBridge)
    server.engine.add_context(DEVICE)
    blocked = SimpleNamespace(method=pika.spec.Connection.Blocked(reason="low on memory"))
    bridge._connector.call(lambda: bridge._on_blocked(None, blocked))  # as RabbitMQ's alarm would
    wait_until(lambda: not host.outbound.is_ready, "blocked")
    assert "low on memory" in host.outbound.not_ready_reason
    started = time.monotonic()
    fired = [server.fire(DEVICE, "measurement", measurement(float(i))) for i in range(50)]
    assert time.monotonic() - started < 2  # the firer never waits on the broker
    time.sleep(0.3)
    assert side.channel.queue_declare(side.out_queue, passive=True).method.message_count == 0
    bridge._connector.call(lambda: bridge._on_unblocked(None, None))
    assert [r.message_id for r in side.received(50)] == [str(e.id) for e in fired]


class _Receiving:
    """A BridgeHandle that takes every posted message (the inbound side alone needs no more)."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.ready = self.confirmed = self.failed = lambda *args: None

    def receive(self, body: bytes) -> Any:
        from concurrent.futures import Future

        self.bodies.append(body)
        done: Future[None] = Future()
        done.set_result(None)
        return done


def test_the_inbound_side_declares_the_exchange_it_binds_to_whichever_connection_comes_first(
    side: AmqpSide,
) -> None:
    from linkserver.bridges.amqp_inbound import AmqpInbound

    fresh = f"lstest-{uuid.uuid4().hex[:10]}-fresh"  # no exchange of that name yet
    inbound = AmqpInbound("in", side.url, f"{fresh}-q", exchange=fresh, bindings=["posted.#"])
    handle = _Receiving()
    inbound.start(handle)  # type: ignore[arg-type]
    try:
        wait_until(lambda: inbound.consuming, "consuming (the exchange declared, the queue bound)")
        assert dict(inbound.problems) == {}
        side.channel.basic_publish(fresh, "posted.x", b"{}")
        wait_until(lambda: handle.bodies == [b"{}"], "the posted message")
    finally:
        inbound.stop()
        side.channel.queue_delete(f"{fresh}-q")
        side.channel.exchange_delete(fresh)


def test_a_dead_letter_exchange_of_another_type_is_said_naming_it_and_counted(
    side: AmqpSide, server_factory: Callable[..., LinkServer], caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"lstest-{uuid.uuid4().hex[:10]}-fanout"
    side.channel.exchange_declare(dead, "fanout", durable=True)
    try:
        server = server_factory()
        with caplog.at_level(logging.WARNING, logger="linkserver.bridges"):
            server.add_bridge(
                "out", side.bridge("out", dead_letter_exchange=dead), select=[Select(mask="x.*")]
            )
            wait_until(lambda: f"declaring dead-letter exchange {dead!r}" in caplog.text, "the log line")
        assert "exists with other settings" in caplog.text
        assert problems(server, "exchange") >= 1
    finally:
        side.channel.exchange_delete(dead)


def test_an_event_whose_routing_key_is_over_255_bytes_is_said_counted_and_does_not_hold_up_the_rest(
    side: AmqpSide, server_factory: Callable[..., LinkServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = server_factory()
    host = start(server, side)
    long_device = "devices.d" + "x" * 250  # its default routing key: 272 bytes, over AMQP's 255
    server.engine.add_context(long_device)
    server.engine.add_context(DEVICE)
    with caplog.at_level(logging.WARNING, logger="linkserver.bridges"):
        server.fire(long_device, "measurement", measurement(1.0))
        after = server.fire(DEVICE, "measurement", measurement(2.0))
        wait_until(lambda: "routing key" in caplog.text and "over 255 bytes" in caplog.text, "the log line")
    assert [r.message_id for r in side.received(1)] == [str(after.id)]
    wait_until(lambda: host.outbound.depth == 0, "the outbox to empty")
    text = exposition(registry(server)).decode()
    assert 'linkserver_bridge_unroutable_total{bridge="out"} 1.0' in text
