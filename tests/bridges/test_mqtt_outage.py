"""The MQTT bridge when its connection breaks with packets in transit: the proxy between
bridge and broker holds one direction back, then cuts the connection, so that exactly one
publish or one acknowledgement is lost with it, as on a real network."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bridges.conftest import MQTT_URL
from bridges.mqtt_side import MqttSide
from bridges.test_contract import measurement, start, wait_until
from linkserver.server.app import LinkServer

DEVICE = "devices.pump7"
pytestmark = pytest.mark.skipif(not MQTT_URL, reason="LINKSERVER_TEST_MQTT_URL is not set")


def test_an_event_whose_acknowledgement_was_lost_with_the_connection_is_sent_again(
    mqtt: MqttSide, server_factory: Callable[..., LinkServer]
) -> None:
    server = server_factory()
    host = start(server, mqtt)
    server.engine.add_context(DEVICE)
    mqtt.proxy.hold("down")  # the broker's PUBACK waits in the proxy
    first = server.fire(DEVICE, "measurement", measurement(0.0), durable=True)
    mqtt.received(1)  # the broker has it and acknowledged it ...
    mqtt.set_available(False)  # ... and the acknowledgement is lost with the connection
    mqtt.proxy.release("down")
    wait_until(lambda: not host.outbound.is_ready, "the bridge to notice")
    assert host.outbound.stats.published == 0 and host.outbound.depth == 1  # its row stays
    later = [server.fire(DEVICE, "measurement", measurement(float(i)), durable=True) for i in range(1, 6)]
    mqtt.set_available(True)
    expected = [str(e.id) for e in [first, *later]]
    ids = mqtt.received_ids(expected)
    assert ids.count(str(first.id)) == 2  # at least once: sent again with the same message id
    assert list(dict.fromkeys(ids)) == expected
    wait_until(lambda: host.outbound.depth == 0, "every row deleted once acknowledged")


def test_an_event_published_but_lost_with_the_connection_goes_out_before_newer_ones(
    mqtt: MqttSide, server_factory: Callable[..., LinkServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = server_factory()
    host = start(server, mqtt)
    server.engine.add_context(DEVICE)
    mqtt.proxy.hold("up")  # the bridge's PUBLISH never reaches the broker
    first = server.fire(DEVICE, "measurement", measurement(0.0), durable=True)
    wait_until(lambda: host.outbound.in_flight == 1, "the bridge to publish it")
    mqtt.set_available(False)
    mqtt.proxy.release("up")
    wait_until(lambda: not host.outbound.is_ready, "the bridge to notice")
    later = [server.fire(DEVICE, "measurement", measurement(float(i)), durable=True) for i in range(1, 201)]
    server.history.flush()
    said_ready = host.ready

    def ready_then_preempted(ready: bool, reason: str) -> None:
        # The thread that says "ready" loses the CPU right after, until the publisher thread
        # handed every newer event to the bridge: the event still in flight from before the
        # cut must nevertheless go out first.
        said_ready(ready, reason)
        if ready:
            wait_until(lambda: host.outbound.in_flight == 1 + len(later), "the newer events handed over")

    monkeypatch.setattr(host, "ready", ready_then_preempted)
    mqtt.set_available(True)
    expected = [str(e.id) for e in [first, *later]]
    ids = mqtt.received_ids(expected)
    assert list(dict.fromkeys(ids)) == expected  # the one in flight first, then the newer ones
    wait_until(lambda: host.outbound.depth == 0, "every row deleted once acknowledged")
