"""The MQTT bridge beyond the contract: LinkServer JSON payloads, QoS 0, a broker that is not
there at start, options refused with what to write."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable

import pytest

from bridges.bridge_sides import INGEST
from bridges.conftest import MQTT_URL
from bridges.mqtt_side import MqttSide
from bridges.test_contract import ALL_DEVICES, wait_until
from linkserver.bridges.mqtt import MqttBridge
from linkserver.devices.mqtt_broker import MqttConfigError
from linkserver.server.app import LinkServer
from linkserver.server.metrics import exposition, registry

DEVICE = "devices.pump7"
needs_mqtt = pytest.mark.skipif(not MQTT_URL, reason="LINKSERVER_TEST_MQTT_URL is not set")


def problems(server: LinkServer, kind: str) -> float:
    """``linkserver_bridge_connection_problems_total`` of bridge ``out`` for ``kind`` (0 if none)."""
    text = exposition(registry(server)).decode()
    found = re.search(
        rf'^linkserver_bridge_connection_problems_total{{bridge="out",problem="{kind}"}} (\S+)$', text, re.M
    )
    return float(found.group(1)) if found else 0.0


@needs_mqtt
def test_linkserver_payloads_are_the_api_json_of_the_event(mqtt, server_factory: Callable[..., LinkServer]):
    server = server_factory()
    host = server.add_bridge(
        "out", mqtt.bridge("out", payload="linkserver"), select=ALL_DEVICES, principal=INGEST
    )
    wait_until(lambda: host.outbound.is_ready, "ready")
    server.engine.add_context(DEVICE)
    event = server.fire(DEVICE, "error", {"code": "E7", "message": "valve stuck"})
    (received,) = mqtt.received(1)
    assert received.key == "devices.pump7.error"
    assert received.document == json.loads(json.dumps(event.marshal()))
    assert received.message_id == str(event.id)


@needs_mqtt
def test_qos_0_publishes_without_waiting_for_the_broker(mqtt, server_factory: Callable[..., LinkServer]):
    server = server_factory()
    host = server.add_bridge("out", mqtt.bridge("out", qos=0), select=ALL_DEVICES, principal=INGEST)
    wait_until(lambda: host.outbound.is_ready, "ready")
    server.engine.add_context(DEVICE)
    fired = [server.fire(DEVICE, "measurement", [{"quantity": "t", "value": float(i)}]) for i in range(20)]
    received = mqtt.received(20)
    assert [r.message_id for r in received] == [str(e.id) for e in fired]
    assert not any(r.persistent for r in received)
    wait_until(lambda: host.outbound.in_flight == 0 and host.outbound.depth == 0, "all confirmed")


def test_a_broker_that_is_not_there_at_start_is_retried_and_said(own_mosquitto, server_factory, caplog):
    caplog.set_level(logging.INFO)
    server = server_factory()
    bridge = MqttBridge("out", url=own_mosquitto.url, prefix="lstest/late", reconnect_max="1s")
    host = server.add_bridge("out", bridge, select=ALL_DEVICES, principal=INGEST)
    server.engine.add_context(DEVICE)
    event = server.fire(DEVICE, "error", {"code": "E1", "message": "early"}, durable=True)
    wait_until(lambda: bridge.connection.stats.failures >= 2, "connection attempts")
    assert not host.outbound.is_ready
    assert any("cannot reach the MQTT broker" in r.getMessage() for r in caplog.records)
    assert problems(server, "unreachable") >= 2
    own_mosquitto.start()
    side = MqttSide(own_mosquitto.url)
    try:
        wait_until(lambda: host.outbound.is_ready, "ready once the broker answers")
        wait_until(lambda: host.outbound.depth == 0, "the event committed before to go out")
        assert host.outbound.stats.published == 1 and host.outbound.in_flight == 0
        assert any("answers again" in r.getMessage() for r in caplog.records)
    finally:
        side.close()
    assert event.id  # fired while the broker was away, published once it came


@needs_mqtt
def test_wrong_credentials_are_said_without_the_password_and_counted(server_factory, caplog):
    from mqtt_helpers import Mosquitto

    broker = Mosquitto(users={"ingest": "right-secret"})
    broker.start()
    try:
        caplog.set_level(logging.WARNING)
        server = server_factory()
        url = broker.url.replace("mqtt://", "mqtt://ingest:wrong-secret@")
        bridge = MqttBridge("out", url=url, prefix="lstest/creds", reconnect_max="1s")
        host = server.add_bridge("out", bridge, select=ALL_DEVICES, principal=INGEST)
        wait_until(lambda: problems(server, "credentials") >= 2, "refused attempts counted")
        said = [r.getMessage() for r in caplog.records if "refused the connection" in r.getMessage()]
        assert said and "check 'username'/'password'" in said[0], said
        assert "wrong-secret" not in caplog.text
        assert not host.outbound.is_ready and server.running
        assert problems(server, "unreachable") == 0
    finally:
        broker.stop()


@needs_mqtt
def test_a_lost_connection_is_said_counted_and_recovered(mqtt, server_factory, caplog):
    caplog.set_level(logging.WARNING)
    server = server_factory()
    bridge = mqtt.bridge("out", reconnect_max="1s")
    host = server.add_bridge("out", bridge, select=ALL_DEVICES, principal=INGEST)
    wait_until(lambda: host.outbound.is_ready, "connected")
    mqtt.proxy.set_available(False)  # cuts the bridge's connection, refuses new ones
    wait_until(lambda: problems(server, "lost") == 1, "the lost connection counted")
    assert any(
        "connection to the MQTT broker" in r.getMessage() and "lost" in r.getMessage() for r in caplog.records
    )
    mqtt.proxy.set_available(True)
    wait_until(lambda: host.outbound.is_ready, "connected again")


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"qos": 5}, "'qos'"),
        ({"payload": "xml"}, "'payload'"),
        ({"url": "amqp://x"}, "mqtt://host"),
        ({"prefix": "a/#"}, "'prefix'"),
        ({"dead_letter_topic": "dead"}, "needs 'inbound_topic'"),
        ({"inbound_topic": "in", "dead_letter_topic": "dead/+"}, "without wildcards"),
        ({"routing": "{nope}"}, "unknown"),
    ],
)
def test_wrong_options_are_refused_saying_what_to_write(options, problem):
    with pytest.raises((MqttConfigError, ValueError), match=problem):
        MqttBridge("out", **options)


@needs_mqtt
def test_a_configured_mqtt_bridge_carries_events_both_ways(mqtt, tmp_path):
    from bridges.test_configured import write_config

    path = write_config(
        tmp_path,
        f"""
        bridges:
          - name: plant_mqtt
            type: mqtt
            url: {mqtt.url}
            prefix: {mqtt.prefix}/out
            client_id: {mqtt.prefix}-configured
            routing: cloudstack
            source: node7
            select: [{{mask: "devices.*", event: measurement}}]
            inbound:
              queue: "{mqtt.prefix}/posted"
              principal: ingest
              dead_letter_exchange: "{mqtt.prefix}/dead"
        """,
    )
    with LinkServer.from_config_file(path) as server:
        (host,) = server.bridges
        wait_until(lambda: host.outbound.is_ready, "ready")
        server.engine.add_context("devices.p1")
        event = server.fire("devices.p1", "measurement", [{"quantity": "t", "value": 1.0}])
        (received,) = mqtt.received(1)
        assert received.key == "node7.UsageEvent.measurement.devices.p1"
        assert received.message_id == str(event.id)
        mqtt.post(
            json.dumps(
                {"context": "devices.p1", "event": "error", "data": {"code": "E", "message": "m"}}
            ).encode()
        )
        mqtt.post(b"{nope")
        ((_, reason),) = mqtt.dead_letters(1)
        assert "JSON" in reason
        wait_until(lambda: host.inbound.accepted == 1, "the posted event fired")
        assert host.inbound.refused["invalid_json"] == 1
