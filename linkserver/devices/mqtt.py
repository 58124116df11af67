"""The MQTT device controller: devices publish to topics, LinkServer fires their events.

A message on ``devices/{device}/{event}`` (the default topic template) fires
``event`` in the context ``devices.{device}`` with the JSON payload as its
data table, validated like any fire; the device's context is added on its
first valid message. A device announces itself with ``connected`` and sets
its MQTT last will to ``disconnected``: when its connection dies, the broker
publishes the will and LinkServer fires ``disconnected``. Configure it in
``config/linkserver.yaml`` (see docs/mqtt.md)::

    controllers:
      - name: mqtt
        class: linkserver.devices.mqtt:MqttController
        principal: mqtt            # the user whose grants are checked on every fire
        options: {url: "mqtt://127.0.0.1:1883", topic: "devices/{device}/{event}"}

A message that cannot become an event (invalid JSON, unknown event, data
that does not fit the definition, too large, a topic that names no valid
device) is dropped with a log line and counted in
``linkserver_mqtt_messages_total{outcome}``; it never stops the controller.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import paho.mqtt.client as paho
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from linkserver.core.durations import parse_duration
from linkserver.core.errors import (
    ContextNotFound,
    DataTableError,
    DeviceOwned,
    EventNotDefined,
    HistoryUnavailable,
    InvalidName,
    LinkServerError,
    PermissionDenied,
    ServerStopped,
)
from linkserver.core.levels import InvalidLevel
from linkserver.core.paths import check_name
from linkserver.devices.mqtt_broker import BrokerAddress, BrokerConnection, MqttConfigError, TopicTemplate
from linkserver.typing import DeviceHandle

DEFAULT_TOPIC = "devices/{device}/{event}"
DEFAULT_MAX_PAYLOAD = 64 * 1024

# Outcomes of a message, the label of linkserver_mqtt_messages_total.
FIRED = "fired"
REJECTED = (
    "bad_topic",
    "oversize",
    "invalid_json",
    "unknown_event",
    "invalid_data",
    "forbidden",
    "device_owned",
)
RETAINED = "retained"  # ignored: an old message the broker kept, not something that just happened
HELD = "held"  # not acknowledged (history unavailable): the broker delivers it again
FAILED = "failed"  # another error; acknowledged and lost
MAX_UNDEFINED = 1000  # event names remembered as undefined for new devices
LOG_BURST = 10  # rejected messages logged per outcome and minute; the rest are counted, then summed up


class MqttController:
    """Maps MQTT topics to device contexts and events (see the module docs and docs/mqtt.md).

    Options: ``url`` of the broker (``mqtt://`` or ``mqtts://``, user and
    password in it or as ``username``/``password``), ``topic`` (a template
    with ``{device}`` and ``{event}`` as whole levels), ``qos`` of the
    subscription (1: every message at least once), ``template`` the device
    template new device contexts get (None: the ``devices`` context's child
    templates), ``client_id`` (default ``linkserver-NAME``),
    ``persistent_session`` (the broker keeps the subscription and queues
    messages while LinkServer is down), ``durable`` (acknowledge a message
    only once its event is committed), ``retained`` (``ignore`` or
    ``accept`` retained messages), ``max_payload`` in bytes, ``keepalive``
    and ``reconnect_max`` (durations).
    """

    def __init__(
        self,
        url: str = "mqtt://127.0.0.1:1883",
        topic: str = DEFAULT_TOPIC,
        qos: int = 1,
        username: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
        template: str | None = None,
        persistent_session: bool = True,
        durable: bool = False,
        retained: str = "ignore",
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        keepalive: str | float | timedelta = "30s",
        reconnect_max: str | float | timedelta = "30s",
    ) -> None:
        self.address = BrokerAddress.parse(url, username=username, password=password)
        self.topic = TopicTemplate(topic, fields=("device", "event"), required=("device", "event"))
        if qos not in (0, 1, 2) or isinstance(qos, bool):
            raise MqttConfigError(f"'qos' must be 0, 1 or 2, got {qos!r}")
        if retained not in ("ignore", "accept"):
            raise MqttConfigError(f"'retained' must be 'ignore' or 'accept', got {retained!r}")
        if not isinstance(max_payload, int) or isinstance(max_payload, bool) or max_payload < 1:
            raise MqttConfigError(f"'max_payload' must be a positive number of bytes, got {max_payload!r}")
        for name, flag in (("persistent_session", persistent_session), ("durable", durable)):
            if not isinstance(flag, bool):
                raise MqttConfigError(f"{name!r} must be true or false, got {flag!r}")
        self.qos = qos
        self.client_id = client_id
        self.template = template
        self.persistent_session = persistent_session
        self.durable = durable
        self.accept_retained = retained == "accept"
        self.max_payload = max_payload
        self.keepalive = max(1, round(parse_duration(keepalive).total_seconds()))
        self.reconnect_max = parse_duration(reconnect_max).total_seconds()
        self.outcomes: Counter[str] = Counter()
        self.connected_devices: set[str] = set()
        self._known: set[str] = set()  # devices whose context this controller added or adopted
        self._undefined: set[str] = set()  # event names a new device's context turned out not to define
        self._handle: DeviceHandle | None = None
        self._connection: BrokerConnection | None = None
        self.subscribed = threading.Event()
        self._holding = False  # after a message was held: no more until the broker delivers them again
        self._lock = threading.Lock()
        self._said: dict[str, tuple[float, int]] = {}  # outcome -> (minute start, lines said)

    # -- DeviceController --------------------------------------------------------

    def start(self, handle: DeviceHandle) -> None:
        self._handle = handle
        self._connection = BrokerConnection(
            self.address,
            client_id=self.client_id or f"linkserver-{handle.controller}",
            log=handle.log,
            what=f"device controller {handle.controller}",
            clean_session=not self.persistent_session,
            keepalive=self.keepalive,
            max_delay=self.reconnect_max,
            on_connect=self._subscribe,
            on_message=self._message,
            manual_ack=True,
        )
        self._connection.client.on_subscribe = self._subscribed
        self._connection.start()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection.stop()
        handle = self._handle
        if handle is None:
            return
        # The server stops driving its devices: their state is unknown from now on.
        for device in sorted(self.connected_devices):
            try:
                handle.fire(device, "disconnected", {"reason": "stopped"})
            except LinkServerError as exc:
                handle.log.debug("device %s: no disconnected event at stop (%s)", device, exc)
        self.connected_devices.clear()

    # -- for tests, tools and /metrics ---------------------------------------------

    @property
    def connection(self) -> BrokerConnection:
        assert self._connection is not None, "not started"
        return self._connection

    def wait_connected(self, timeout: float = 10.0) -> bool:
        """True once connected and subscribed (within ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while self._connection is not None:
            if self._connection.connected.is_set() and self.subscribed.is_set():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.subscribed.wait(min(0.05, remaining))
        return False

    def metrics(self) -> list[Metric]:
        """Prometheus families of this controller (the server's /metrics collects them)."""
        name = self._handle.controller if self._handle is not None else "mqtt"
        messages = CounterMetricFamily(
            "linkserver_mqtt_messages",
            "MQTT messages received by a device controller, by outcome "
            "(fired, or why not: bad_topic, oversize, invalid_json, unknown_event, invalid_data, "
            "forbidden, device_owned, retained, held, failed).",
            labels=["controller", "outcome"],
        )
        for outcome, count in sorted(self.outcomes.items()):
            messages.add_metric([name, outcome], count)
        connected = GaugeMetricFamily(
            "linkserver_mqtt_connected", "1 while connected to the MQTT broker.", labels=["controller"]
        )
        connection = self._connection
        connected.add_metric([name], 1 if connection is not None and connection.connected.is_set() else 0)
        failures = CounterMetricFamily(
            "linkserver_mqtt_connection_failures",
            "Failed attempts to connect to the MQTT broker (unreachable or refused).",
            labels=["controller"],
        )
        failures.add_metric([name], connection.stats.failures if connection is not None else 0)
        return [messages, connected, failures]

    # -- the connection's thread -----------------------------------------------------

    def _subscribe(self, client: paho.Client) -> None:
        self._holding = False
        self.subscribed.clear()
        client.subscribe(self.topic.filter, qos=self.qos)
        assert self._handle is not None
        self._handle.log.info(
            "device controller %s: subscribed to %s (QoS %d)",
            self._handle.controller,
            self.topic.filter,
            self.qos,
        )

    def _subscribed(
        self, client: paho.Client, userdata: Any, mid: int, reasons: Any, properties: Any
    ) -> None:
        if all(not reason.is_failure for reason in reasons):
            self.subscribed.set()
            return
        assert self._handle is not None
        self._handle.log.error(
            "device controller %s: the MQTT broker refused the subscription to %s: %s; "
            "check the broker's access rules for this client",
            self._handle.controller,
            self.topic.filter,
            ", ".join(str(reason) for reason in reasons),
        )

    def _message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        if self._holding:
            return  # not acknowledged: delivered again after the reconnection under way
        outcome = self.ingest(message.topic, message.payload, retained=bool(message.retain))
        self.outcomes[outcome] += 1
        if outcome == HELD:
            self._holding = True
            self.connection.reconnect()
            return
        if message.qos > 0:
            client.ack(message.mid, message.qos)

    def ingest(self, topic: str, payload: bytes, *, retained: bool = False) -> str:
        """Fire the event one message stands for; returns its outcome (a label of the metric)."""
        handle = self._handle
        assert handle is not None, "not started"
        if retained and not self.accept_retained:
            handle.log.debug("retained message on %s ignored (retained: ignore)", topic)
            return RETAINED
        values = self.topic.match(topic)
        if values is None:
            return self._reject("bad_topic", topic, f"the topic does not fit {self.topic.text!r}")
        device, event = values["device"], values["event"]
        try:
            check_name(device, "device name")
        except InvalidName as exc:
            return self._reject("bad_topic", topic, str(exc))
        if len(payload) > self.max_payload:
            return self._reject(
                "oversize", topic, f"{len(payload)} bytes, more than 'max_payload' ({self.max_payload})"
            )
        try:
            data = json.loads(payload) if payload.strip() else None
        except ValueError as exc:  # UnicodeDecodeError included
            return self._reject("invalid_json", topic, f"the payload is not JSON: {exc}")
        if not isinstance(data, dict | list) and data is not None:
            return self._reject(
                "invalid_data",
                topic,
                f"the payload must be a JSON object (one record), an array of objects or empty, "
                f"got {type(data).__name__}",
            )
        return self._fire(handle, topic, device, event, data)

    def _fire(self, handle: DeviceHandle, topic: str, device: str, event: str, data: Any) -> str:
        added = False
        for attempt in (1, 2):
            if device not in self._known:
                if event in self._undefined:
                    # Every new device gets the same definitions: no context added and removed again.
                    return self._reject(
                        "unknown_event",
                        topic,
                        f"event {event!r} is not defined for devices of this controller",
                    )
                try:
                    handle.add_device(device, template=self.template)
                except DeviceOwned as exc:
                    return self._reject("device_owned", topic, str(exc))
                except PermissionDenied as exc:  # a remote controller's user may not add contexts
                    return self._reject("forbidden", topic, str(exc))
                except (ServerStopped, HistoryUnavailable) as exc:
                    return self._hold(topic, exc)
                except LinkServerError as exc:
                    return self._failed(topic, exc)
                self._known.add(device)
                added = True
            try:
                handle.fire(device, event, data, durable=self.durable)
            except ContextNotFound:
                # Removed under the controller (an operator, a restore): add it again, once.
                self._known.discard(device)
                self.connected_devices.discard(device)
                if attempt == 2:
                    return self._failed(topic, ContextNotFound(f"{handle.root}.{device}"))
                continue
            except (EventNotDefined, DataTableError, InvalidLevel, PermissionDenied) as exc:
                if added:
                    self._forget(handle, device)  # a context only for devices that sent a valid message
                    if isinstance(exc, EventNotDefined) and len(self._undefined) < MAX_UNDEFINED:
                        self._undefined.add(event)
                outcome = {EventNotDefined: "unknown_event", PermissionDenied: "forbidden"}
                kind = next((v for k, v in outcome.items() if isinstance(exc, k)), "invalid_data")
                return self._reject(kind, topic, str(exc))
            except (ServerStopped, HistoryUnavailable) as exc:
                return self._hold(topic, exc)
            except LinkServerError as exc:
                return self._failed(topic, exc)
            if event == "connected":
                self.connected_devices.add(device)
            elif event == "disconnected":
                self.connected_devices.discard(device)
            return FIRED
        raise AssertionError("unreachable")

    def _forget(self, handle: DeviceHandle, device: str) -> None:
        self._known.discard(device)
        try:
            handle.remove_device(device)
        except LinkServerError as exc:
            handle.log.debug("device %s added for a rejected message stays: %s", device, exc)

    def _reject(self, outcome: str, topic: str, why: str) -> str:
        self._say(outcome, "MQTT message on %s rejected (%s): %s", topic, outcome, why)
        return outcome

    def _hold(self, topic: str, exc: Exception) -> str:
        self._say(
            HELD,
            "MQTT message on %s not acknowledged, the broker delivers it again after a reconnection: %s",
            topic,
            exc,
        )
        return HELD

    def _failed(self, topic: str, exc: Exception) -> str:
        self._say(FAILED, "MQTT message on %s could not fire: %s", topic, exc)
        return FAILED

    def _say(self, outcome: str, text: str, *args: Any) -> None:
        """A warning per message, at most LOG_BURST a minute per outcome (a flood is counted, not logged)."""
        assert self._handle is not None
        log = self._handle.log
        now = time.monotonic()
        with self._lock:
            since, said = self._said.get(outcome, (now, 0))
            if now - since >= 60:
                if said > LOG_BURST:
                    log.warning(
                        "%d more MQTT messages %s in the last minute (see linkserver_mqtt_messages_total)",
                        said - LOG_BURST,
                        outcome,
                    )
                since, said = now, 0
            said += 1
            self._said[outcome] = (since, said)
        if said <= LOG_BURST:
            log.warning(text, *args)
