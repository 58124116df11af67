"""The MQTT bridge: selected events out to topics built from the event, posted events in.

Outbound, each event is one message on the topic its ``routing`` template
builds (:mod:`linkserver.core.routing` with ``/`` between the words: by
default ``devices/pump7/measurement`` for ``measurement`` in
``devices.pump7``; the ``cloudstack`` layout works too; ``prefix`` puts
levels of its own in front, e.g. ``plant1/events``), with QoS ``qos``
(default 1), its payload the event as a CloudEvent (``payload:
cloudevents``, structured JSON) or as LinkServer's own JSON (``payload:
linkserver``, the form of the network API). The connection is MQTT 5: each
message carries the event id as the user property ``message_id`` and the
content type, so consumers can de-duplicate. An event is confirmed to
LinkServer when the broker acknowledged it (PUBACK for QoS 1, PUBCOMP for
QoS 2, written to the socket for QoS 0). Messages in flight when the
connection goes are sent again by the client after it reconnects, ahead of
newer ones (the bridge says it is ready only once paho queued them again:
see :class:`~linkserver.devices.mqtt_broker.BrokerConnection`), and
confirmed then; what is still unconfirmed when the bridge stops stays in
LinkServer's outbox and goes out after the next start.

Inbound (``inbound_topic`` set, e.g. ``linkserver/posted/#``): each message
is a posted event (a CloudEvent or LinkServer's fire form), handed to
LinkServer (``handle.receive``), validated and fired like any fire, and
acknowledged once LinkServer says so (after the commit for a persistent
event). A message refused for good is published to ``dead_letter_topic``
with the reason in the user property ``x-linkserver-reason`` (and its kind
in ``x-linkserver-refused``), then acknowledged; a passing problem (history
unavailable) leaves it unacknowledged, and the bridge reconnects so that the
broker delivers it again. The session is kept by the broker
(``session_expiry``), so posts published while LinkServer is down wait.

paho-mqtt, as for the MQTT device controller (see
:mod:`linkserver.devices.mqtt_broker`, which both share).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from datetime import timedelta
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from linkserver.core.cloudevents import CONTENT_TYPE, PoisonMessage, encode
from linkserver.core.durations import parse_duration
from linkserver.core.events import Event
from linkserver.core.routing import DEFAULT, category_of, router
from linkserver.devices.mqtt_broker import BrokerAddress, BrokerConnection, MqttConfigError
from linkserver.typing import BridgeHandle

DEFAULT_URL = "mqtt://127.0.0.1:1883"
PAYLOADS = ("cloudevents", "linkserver")
JSON_TYPE = "application/json"
REASON_PROPERTY = "x-linkserver-reason"
KIND_PROPERTY = "x-linkserver-refused"
MESSAGE_ID = "message_id"
_NOT_YET = object()


class MqttBridge:
    """A :class:`~linkserver.typing.Bridge` to an MQTT broker (see the module doc)."""

    def __init__(
        self,
        name: str,
        *,
        url: str = DEFAULT_URL,
        username: str | None = None,
        password: str | None = None,
        routing: str = DEFAULT,
        source: str = "node0",
        prefix: str = "",
        qos: int = 1,
        retain: bool = False,
        payload: str = "cloudevents",
        client_id: str | None = None,
        inbound_topic: str | None = None,
        dead_letter_topic: str | None = None,
        session_expiry: str | float | timedelta = "7d",
        keepalive: str | float | timedelta = "30s",
        reconnect_max: str | float | timedelta = "30s",
        max_inflight: int = 100,
    ) -> None:
        self.name = name
        self.address = BrokerAddress.parse(url, username=username, password=password)
        if qos not in (0, 1, 2) or isinstance(qos, bool):
            raise MqttConfigError(f"'qos' must be 0, 1 or 2, got {qos!r}")
        if payload not in PAYLOADS:
            raise MqttConfigError(f"'payload' must be {' or '.join(PAYLOADS)}, got {payload!r}")
        if dead_letter_topic is not None and inbound_topic is None:
            raise MqttConfigError("'dead_letter_topic' needs 'inbound_topic' (where posted events come from)")
        for topic in (dead_letter_topic,):
            if topic is not None and ("+" in topic or "#" in topic or not topic):
                raise MqttConfigError(f"'dead_letter_topic' must be a topic without wildcards, got {topic!r}")
        self.qos = qos
        self.retain = retain
        self.payload = payload
        self.source = source
        self.client_id = client_id
        self.inbound_topic = inbound_topic
        self.dead_letter_topic = dead_letter_topic
        self.session_expiry = round(parse_duration(session_expiry).total_seconds())
        self.keepalive = max(1, round(parse_duration(keepalive).total_seconds()))
        self.reconnect_max = parse_duration(reconnect_max).total_seconds()
        self.max_inflight = max_inflight
        if "+" in prefix or "#" in prefix:
            raise MqttConfigError(f"'prefix' must be topic levels without wildcards, got {prefix!r}")
        self.prefix = prefix.strip("/")
        key = router(routing, source, separator="/")
        self._topic = key if not self.prefix else (lambda event: f"{self.prefix}/{key(event)}")
        self._handle: BridgeHandle | None = None
        self._connection: BrokerConnection | None = None
        self._lock = threading.Lock()
        self._pending: dict[int, int | None] = {}  # paho message id -> event id (None: not an event)
        self._early: dict[int, Any] = {}  # acknowledged before publish returned: message id -> reason
        self._holding = False
        # Set once the broker acknowledged the inbound subscription on this connection: before
        # that, a message posted on a new session's topic finds no subscriber and is not kept.
        self.subscribed = threading.Event()

    # -- Bridge ----------------------------------------------------------------------

    def start(self, handle: BridgeHandle) -> None:
        self._handle = handle
        connection = BrokerConnection(
            self.address,
            client_id=self.client_id or f"linkserver-bridge-{self.name}",
            log=handle.log,
            what=f"bridge {self.name}",
            clean_session=self.inbound_topic is None,  # keep the session only for posts
            keepalive=self.keepalive,
            max_delay=self.reconnect_max,
            on_connect=self._connected,
            on_message=self._message if self.inbound_topic is not None else None,
            on_lost=self._lost,
            manual_ack=True,
            v5=True,
            session_expiry=self.session_expiry,
        )
        connection.client.max_inflight_messages_set(self.max_inflight)
        connection.client.on_publish = self._published
        connection.client.on_subscribe = self._subscribed
        self._connection = connection
        connection.start()

    def publish(self, events: Sequence[Event]) -> None:
        connection, handle = self._connection, self._handle
        assert connection is not None and handle is not None, "not started"
        client = connection.client
        for event in events:
            if self.payload == "cloudevents":
                body, content_type = encode(event, self.source, category=category_of(event)), CONTENT_TYPE
            else:
                body, content_type = json.dumps(event.marshal()).encode(), JSON_TYPE
            properties = Properties(PacketTypes.PUBLISH)
            properties.ContentType = content_type
            properties.UserProperty = [(MESSAGE_ID, str(event.id))]
            info = client.publish(
                self._topic(event), body, qos=self.qos, retain=self.retain, properties=properties
            )
            if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):  # NO_CONN: sent later
                reason = f"the MQTT client refused the message: {paho.error_string(info.rc)}"
                handle.failed([event.id], reason)
            elif self.qos == 0:
                self._track(info.mid, None)
                handle.confirmed([event.id])  # nothing to wait for
            else:
                self._track(info.mid, event.id)

    def _track(self, mid: int, event_id: int | None) -> None:
        """Remember which event a message id stands for (None: a message nobody waits for).

        The broker's acknowledgement may come (on the connection's thread) before
        publish returned the message id: then it waits in ``_early``. paho calls
        on_publish holding its own lock, so this lock is never held around a paho call.
        """
        with self._lock:
            reason = self._early.pop(mid, _NOT_YET)
            if reason is _NOT_YET:
                self._pending[mid] = event_id
                return
        if event_id is not None:
            self._settle_publish(event_id, reason)

    def stop(self, timeout: float = 5.0) -> None:
        if self._connection is not None:
            self._connection.stop(timeout)

    @property
    def connection(self) -> BrokerConnection:
        assert self._connection is not None, "not started"
        return self._connection

    @property
    def problems(self) -> dict[str, int]:
        """Failed connection attempts and lost connections by kind (the metric
        ``linkserver_bridge_connection_problems_total``; docs/bridges.md)."""
        return dict(self._connection.problems) if self._connection is not None else {}

    # -- the connection's thread -----------------------------------------------------

    def _connected(self, client: paho.Client) -> None:
        assert self._handle is not None
        self._holding = False
        if self.inbound_topic is not None:
            client.subscribe(self.inbound_topic, qos=1)
        self._handle.ready(True, f"connected to {self.address}")

    def _subscribed(
        self, client: paho.Client, userdata: Any, mid: int, reasons: Any, properties: Any
    ) -> None:
        assert self._handle is not None
        refused = [str(reason) for reason in reasons if getattr(reason, "is_failure", False)]
        if refused:
            self._handle.log.warning(
                "bridge %s: the MQTT broker %s refused the subscription to %r (%s): events posted "
                "there are not received; check the broker's access rules for this client",
                self.name,
                self.address,
                self.inbound_topic,
                ", ".join(refused),
            )
        else:
            self.subscribed.set()

    def _lost(self, reason: str) -> None:
        assert self._handle is not None
        self.subscribed.clear()
        # What is in flight stays pending: the client sends it again after reconnecting.
        self._handle.ready(False, f"connection to {self.address} lost ({reason})")

    def _published(self, client: paho.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        with self._lock:
            if mid not in self._pending:
                self._early[mid] = reason
                return
            event_id = self._pending.pop(mid)
        if event_id is not None:
            self._settle_publish(event_id, reason)

    def _settle_publish(self, event_id: int, reason: Any) -> None:
        assert self._handle is not None
        if reason is not None and getattr(reason, "is_failure", False):
            self._handle.failed([event_id], f"the MQTT broker refused the message: {reason}")
        else:
            self._handle.confirmed([event_id])

    def _message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        if self._holding or self._handle is None:
            return  # unacknowledged: delivered again after the reconnection under way
        future = self._handle.receive(message.payload)
        future.add_done_callback(lambda done: self._settled(client, message, done))

    def _settled(self, client: paho.Client, message: paho.MQTTMessage, done: Future[Event]) -> None:
        error = done.exception()
        if error is None:
            client.ack(message.mid, message.qos)
            return
        if isinstance(error, PoisonMessage):
            if self.dead_letter_topic is not None:
                properties = Properties(PacketTypes.PUBLISH)
                properties.UserProperty = [
                    (REASON_PROPERTY, str(error)[:1000]),
                    (KIND_PROPERTY, error.kind),
                    ("topic", message.topic),
                ]
                info = client.publish(self.dead_letter_topic, message.payload, qos=1, properties=properties)
                self._track(info.mid, None)
            client.ack(message.mid, message.qos)
            return
        # A passing problem: not acknowledged, and no more until the broker delivers them again.
        if not self._holding:
            self._holding = True
            assert self._handle is not None
            self._handle.log.warning(
                "bridge %s: posted message on %s not acknowledged (%s); reconnecting so that the broker "
                "delivers it again",
                self.name,
                message.topic,
                error,
            )
            self.connection.reconnect()
