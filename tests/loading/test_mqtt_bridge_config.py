"""The bridges: section for MQTT bridges (type: mqtt): its keys, and those it refuses."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from linkserver.core.errors import ConfigError
from linkserver.loading import load_config_text

AT = "/etc/linkserver/linkserver.yaml:"


def read(text: str):  # noqa: ANN201
    return load_config_text(textwrap.dedent(text), Path("/etc/linkserver/linkserver.yaml"))


def problems(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        read(text)
    return str(caught.value)


def test_an_mqtt_bridge_is_read_and_built_with_its_options() -> None:
    config = read(
        """
        bridges:
          - name: plant_mqtt
            type: mqtt
            url: mqtt://linkserver:secret@broker.example:1883
            prefix: plant1/events
            qos: 2
            payload: linkserver
            retain: true
            client_id: ls-plant1
            routing: cloudstack
            select: [{mask: "devices.*"}]
            inbound: {queue: "linkserver/posted/#", principal: ingest, dead_letter_exchange: linkserver/dead}
        """
    )
    (bridge,) = config.sections["bridges"]
    options = bridge.plugin_options(node_id=3)
    assert options == {
        "routing": "{source}.{category}.{event}.{resource_type}.{resource_id}",
        "source": "node3",
        "url": "mqtt://linkserver:secret@broker.example:1883",
        "prefix": "plant1/events",
        "qos": 2,
        "payload": "linkserver",
        "retain": True,
        "client_id": "ls-plant1",
        "inbound_topic": "linkserver/posted/#",
        "dead_letter_topic": "linkserver/dead",
    }
    assert bridge.principal == "ingest"


def test_wrong_values_are_named_at_their_line() -> None:
    text = problems(
        """
        bridges:
          - {name: m1, type: mqtt, qos: 3, payload: xml}
        """
    )
    assert f"{AT}3:33: 'qos' in bridge 'm1' must be an integer from 0 to 2" in text
    assert f"{AT}3:45: 'payload' in bridge 'm1' must be" in text


def test_keys_of_other_brokers_are_named_at_their_line() -> None:
    text = problems(
        """
        bridges:
          - name: m1
            type: mqtt
            url: amqp://guest:guest@127.0.0.1:5672/
            exchange: linkserver
            inbound: {queue: "posted/#", principal: ingest, bindings: ["a.#"]}
          - {name: r1, type: amqp, qos: 1}
        """
    )
    assert f"{AT}5:10: 'url' in bridge 'm1' of type 'mqtt' must be like mqtt://user:password@host:1883" in (
        text
    )
    assert f"{AT}6:5: 'exchange' does not apply to bridge 'm1' of type 'mqtt'" in text
    assert "an MQTT bridge has no bindings (bridge 'm1'): its 'queue' is the topic filter" in text
    assert f"{AT}8:28: 'qos' does not apply to bridge 'r1' of type 'amqp'" in text
