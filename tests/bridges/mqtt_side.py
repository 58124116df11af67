"""The broker side of the MQTT bridge for the contract suite: the real local Mosquitto, seen
through a paho client (MQTT 5) of the test's own, a topic prefix of its own, and a proxy
between bridge and broker so that the test can take the broker away from the bridge only."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bridges.bridge_sides import BrokerSide, Received
from linkserver.bridges.mqtt import MESSAGE_ID, REASON_PROPERTY, MqttBridge
from linkserver.testing_proxy import TcpProxy
from linkserver.typing import Bridge


class MqttSide(BrokerSide):
    name = "mqtt"

    def __init__(self, url: str) -> None:
        self.url = url
        self.prefix = f"lstest/{uuid.uuid4().hex[:10]}"
        self.messages: list[Received] = []
        self.dead: list[tuple[bytes, str]] = []
        self._changed = threading.Condition()
        address = urlsplit(url)
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"{self.prefix}-side", protocol=paho.MQTTv5
        )
        self.client.on_message = self._message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect(address.hostname or "127.0.0.1", address.port or 1883)  # unreachable: fails
        self.client.loop_start()
        self.client.subscribe([(f"{self.prefix}/out/#", 1), (f"{self.prefix}/dead", 1)])
        assert subscribed.wait(10), "the test's own MQTT client could not subscribe"
        self.proxy = TcpProxy.for_url(url, default_port=1883)
        self.bridges: list[MqttBridge] = []

    def bridge(self, name: str, **options: Any) -> Bridge:
        options.setdefault("url", self.proxy.url_for(self.url))
        options.setdefault("prefix", f"{self.prefix}/out")
        options.setdefault("inbound_topic", f"{self.prefix}/posted")
        options.setdefault("dead_letter_topic", f"{self.prefix}/dead")
        options.setdefault("client_id", f"{self.prefix}-{name}")
        options.setdefault("session_expiry", "1m")
        bridge = MqttBridge(name, **options)
        self.bridges.append(bridge)
        return bridge

    def _message(self, client: Any, userdata: Any, message: paho.MQTTMessage) -> None:
        properties = dict(getattr(message.properties, "UserProperty", []) or [])
        with self._changed:
            if message.topic == f"{self.prefix}/dead":
                self.dead.append((message.payload, properties.get(REASON_PROPERTY, "")))
            else:
                key = message.topic.removeprefix(f"{self.prefix}/out/").replace("/", ".")
                received = Received(
                    key, json.loads(message.payload), properties.get(MESSAGE_ID, ""), message.qos >= 1
                )
                self.messages.append(received)
            self._changed.notify_all()

    def _wait(self, into: list[Any], count: int, timeout: float) -> list[Any]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(into) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(into)} messages, waited for {count}")
                self._changed.wait(left)
            return into[:count]

    def received(self, count: int, timeout: float = 15.0) -> list[Received]:
        return self._wait(self.messages, count, timeout)

    def received_so_far(self) -> list[Received]:
        with self._changed:
            return list(self.messages)

    def post(self, body: bytes) -> None:
        # A post before the bridge's subscription is acknowledged would find no subscriber.
        for bridge in self.bridges:
            if bridge.inbound_topic is not None:
                assert bridge.subscribed.wait(15), f"bridge {bridge.name} never subscribed"
        self.client.publish(f"{self.prefix}/posted", body, qos=1).wait_for_publish(10)

    def dead_letters(self, count: int, timeout: float = 15.0) -> list[tuple[bytes, str]]:
        return self._wait(self.dead, count, timeout)

    def set_available(self, available: bool) -> None:
        self.proxy.set_available(available)

    def close(self) -> None:
        for bridge in self.bridges:
            bridge.stop(2)
        try:
            self.client.disconnect()
            self.client.loop_stop()
        finally:
            self.proxy.close()
