"""What the MQTT device controller and the MQTT bridge share: the broker address, topic
templates, and one supervised paho-mqtt connection that connects in the background,
reconnects with back-off and says so in the log.

paho-mqtt rather than aiomqtt: device controllers and bridges are thread-based
(``start`` returns promptly, work happens on a thread of their own) and paho's
client is exactly that; aiomqtt is an asyncio wrapper around the same paho
client, which would add an event loop thread and a dependency for nothing.
"""

from __future__ import annotations

import collections
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import attrs
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from linkserver.core.errors import LinkServerError

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
_PLACEHOLDER = re.compile(r"\{([A-Za-z_]\w*)\}")
STILL_DOWN_EVERY = 60.0  # seconds between "still cannot reach the broker" lines
# A connection lost this soon after it was made, twice running, is likely taken over by another
# client with the same client id (a broker keeps one connection per id and closes the older).
QUICK_LOSS = 10.0
SESSION_TAKEN_OVER = 0x8E  # MQTT 5's reason code for it (3.1.1 gives none)


class MqttConfigError(LinkServerError, ValueError):
    """A broker URL, topic template or option of an MQTT controller or bridge is wrong."""


@attrs.frozen
class BrokerAddress:
    """``mqtt://[user[:password]@]host[:port]`` (``mqtts://`` for TLS, port 8883 by default)."""

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str, *, username: str | None = None, password: str | None = None) -> BrokerAddress:
        """Parse ``url``; ``username``/``password`` given separately win over the URL's."""
        if not isinstance(url, str):
            raise MqttConfigError(
                f"the broker 'url' must be a string such as mqtt://127.0.0.1:1883, got {url!r}"
            )
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise MqttConfigError(
                f"broker url {_hide_password(url)!r} must look like mqtt://host:1883 or mqtts://host:8883"
            )
        if parts.path not in ("", "/") or parts.query:
            raise MqttConfigError(
                f"broker url {_hide_password(url)!r} has a path or query; MQTT takes host and port only"
            )
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError as exc:
            raise MqttConfigError(f"broker url {_hide_password(url)!r}: {exc}") from None
        return cls(
            scheme=parts.scheme,
            host=parts.hostname,
            port=port,
            username=username if username is not None else _unquoted(parts.username),
            password=password if password is not None else _unquoted(parts.password),
        )

    @property
    def tls(self) -> bool:
        return self.scheme == "mqtts"

    def __str__(self) -> str:  # for logs: never the password
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{user}{host}:{self.port}"


def _unquoted(value: str | None) -> str | None:
    return unquote(value) if value is not None else None


def _hide_password(url: str) -> str:
    return re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", url)


class TopicTemplate:
    """A topic with placeholders as whole levels: ``devices/{device}/{event}``.

    ``fields`` names the placeholders allowed and ``required`` those that must
    appear. :attr:`filter` is the subscription (each placeholder a ``+``),
    :meth:`match` reads a topic back, :meth:`format` builds one.
    """

    def __init__(self, text: str, *, fields: tuple[str, ...], required: tuple[str, ...] = ()) -> None:
        if not isinstance(text, str) or not text:
            raise MqttConfigError(
                "a topic template must be a non-empty string such as "
                f"'devices/{{device}}/{{event}}', got {text!r}"
            )
        self.text = text
        self.levels: list[tuple[bool, str]] = []  # (is a placeholder, name or literal)
        seen: set[str] = set()
        for level in text.split("/"):
            found = _PLACEHOLDER.fullmatch(level)
            if found is not None:
                name = found.group(1)
                if name not in fields:
                    raise MqttConfigError(
                        f"topic template {text!r}: unknown placeholder {{{name}}}; "
                        f"the placeholders are {', '.join('{' + f + '}' for f in fields)}"
                    )
                if name in seen:
                    raise MqttConfigError(f"topic template {text!r} has {{{name}}} twice")
                seen.add(name)
                self.levels.append((True, name))
            elif "{" in level or "}" in level:
                raise MqttConfigError(
                    f"topic template {text!r}: a placeholder must be a whole level between slashes, "
                    f"got {level!r}"
                )
            elif "+" in level or "#" in level:
                raise MqttConfigError(
                    f"topic template {text!r} has the wildcard {level!r}: write placeholders instead"
                )
            else:
                self.levels.append((False, level))
        missing = [name for name in required if name not in seen]
        if missing:
            raise MqttConfigError(
                f"topic template {text!r} lacks {', '.join('{' + m + '}' for m in missing)}: "
                "e.g. 'devices/{device}/{event}'"
            )
        self.filter = "/".join("+" if placeholder else value for placeholder, value in self.levels)

    def match(self, topic: str) -> dict[str, str] | None:
        """The placeholders' values in ``topic``, or None when it is not one of the template's."""
        levels = topic.split("/")
        if len(levels) != len(self.levels):
            return None
        values: dict[str, str] = {}
        for (placeholder, value), level in zip(self.levels, levels, strict=True):
            if placeholder:
                if not level:
                    return None
                values[value] = level
            elif level != value:
                return None
        return values

    def format(self, values: Mapping[str, str]) -> str:
        return "/".join(values[value] if placeholder else value for placeholder, value in self.levels)

    def __repr__(self) -> str:
        return f"TopicTemplate({self.text!r})"


@attrs.define
class ConnectionStats:
    attempts: int = 0
    failures: int = 0
    connects: int = 0
    losses: int = 0


# CONNACK reason codes that say the user or password is wrong (MQTT 3.1.1's 4 and 5 as paho
# maps them, and MQTT 5's "bad authentication method").
CREDENTIALS_REFUSED = (0x86, 0x87, 0x8C)


class BrokerConnection:
    """One paho-mqtt client on a thread of its own, connected while it runs.

    :meth:`start` returns at once: the thread connects, and while the broker
    cannot be reached (or refuses) it retries with back-off from one second
    up to ``max_delay``, logging the first failure and then a line a minute
    while it stays down. ``on_connect(client)`` runs on every (re)connection
    (subscribe there: a broker that lost the session forgets subscriptions),
    on the connection's thread once paho has handled the CONNACK: by then the
    QoS > 0 messages still unacknowledged from the connection before are queued
    again, ahead of anything published after ``on_connect``.
    :meth:`reconnect` drops the connection on purpose (to get unacknowledged
    messages delivered again).

    Only the connection's thread writes to the socket: ``publish`` from any
    other thread queues the packet and wakes it. (paho, driven by ``loop()``
    rather than its own ``loop_start()`` thread, otherwise writes from the
    publishing thread too, and two threads taking packets off one queue can put
    them on the wire out of order.)
    """

    def __init__(
        self,
        address: BrokerAddress,
        *,
        client_id: str,
        log: logging.Logger,
        what: str,
        clean_session: bool = True,
        keepalive: int = 30,
        max_delay: float = 30.0,
        on_connect: Callable[[paho.Client], None] | None = None,
        on_message: Callable[[paho.Client, Any, paho.MQTTMessage], None] | None = None,
        on_lost: Callable[[str], None] | None = None,
        manual_ack: bool = False,
        v5: bool = False,
        session_expiry: int = 0,
    ) -> None:
        self.address = address
        self.log = log
        self.what = what
        self.keepalive = keepalive
        self.max_delay = max_delay
        self.stats = ConnectionStats()
        # Failed attempts and lost connections by kind: unreachable, credentials (refused for
        # the user or password), refused (another CONNACK refusal), lost (the bridges' metric
        # linkserver_bridge_connection_problems_total; docs/bridges.md)
        self.problems: collections.Counter[str] = collections.Counter()
        self.connected = threading.Event()
        self._on_connect = on_connect
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._drop = threading.Event()
        self._refused: str | None = None
        self._refused_kind = "refused"
        self._accepted = False  # a CONNACK accepted the connection; on_connect not run yet
        self._down_since: float | None = None
        self._last_said = 0.0
        self.client_id = client_id
        self._connected_at = 0.0
        self._quick_losses = 0  # connections lost within QUICK_LOSS of being made, running
        self._on_lost = on_lost
        # MQTT 5 (for user properties): the session is kept by clean_start off and an expiry.
        self._v5 = v5
        self._clean_start = clean_session
        self._session_expiry = session_expiry
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=None if v5 else clean_session,
            protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
            manual_ack=manual_ack,
        )
        if address.username is not None:
            client.username_pw_set(address.username, address.password)
        if address.tls:
            client.tls_set()
        client.on_connect = self._connected
        client.on_disconnect = self._disconnected
        # An "external event loop" for paho: publish() queues and wakes loop() (through paho's
        # socket pair) instead of writing from the caller's thread; loop() writes.
        client.on_socket_register_write = _loop_writes
        if on_message is not None:
            client.on_message = on_message
        self.client = client

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"linkserver-mqtt-{self.what}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self.connected.is_set():
            self.client.disconnect()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def reconnect(self) -> None:
        """Drop the connection; the thread connects again after the shortest delay."""
        self._drop.set()

    def wait_connected(self, timeout: float) -> bool:
        return self.connected.wait(timeout)

    # -- the thread -----------------------------------------------------------

    def _run(self) -> None:
        delay = 1.0
        while not self._stop.is_set():
            self.stats.attempts += 1
            self._refused = None
            self._accepted = False
            try:
                if self._v5:
                    properties = Properties(PacketTypes.CONNECT)
                    if not self._clean_start and self._session_expiry:
                        properties.SessionExpiryInterval = self._session_expiry
                    self.client.connect(
                        self.address.host,
                        self.address.port,
                        self.keepalive,
                        clean_start=self._clean_start,
                        properties=properties,
                    )
                else:
                    self.client.connect(self.address.host, self.address.port, self.keepalive)
            except (OSError, ValueError) as exc:  # refused, unknown host, TLS handshake...
                self.problems["unreachable"] += 1
                self._failed(f"cannot reach the MQTT broker {self.address} ({_describe(exc)})")
            else:
                for _ in self._loop():
                    pass
                self.connected.clear()
                if self._refused is not None:
                    self.problems[self._refused_kind] += 1
                    self._failed(f"the MQTT broker {self.address} refused the connection ({self._refused})")
                else:
                    delay = 1.0
            if self._stop.is_set():
                break
            if self._drop.is_set():
                self._drop.clear()
                self._stop.wait(0.1)
                continue
            self._stop.wait(delay)
            if self._down_since is not None:
                delay = min(delay * 2, self.max_delay)

    def _failed(self, what: str) -> None:
        """Say the first failure, then a line a minute while it lasts."""
        self.stats.failures += 1
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = self._last_said = now
            hint = (
                "; check 'username'/'password' and the broker's access rules"
                if self._refused is not None
                else ""
            )
            self.log.warning("%s: %s%s; retrying every %.0f s at most", self.what, what, hint, self.max_delay)
        elif now - self._last_said >= STILL_DOWN_EVERY:
            self._last_said = now
            self.log.warning(
                "%s: still failing after %.0f s and %d attempts: %s; retrying",
                self.what,
                now - self._down_since,
                self.stats.failures,
                what,
            )

    def _loop(self) -> Iterator[None]:
        while not self._stop.is_set():
            if self._drop.is_set():
                self.client.disconnect()
                self.client.loop(0.1)  # send the DISCONNECT
                return
            rc = self.client.loop(1.0)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return
            if self._accepted:
                # After, not inside, paho's CONNACK handling: it queued the messages in flight
                # before the connection broke again once on_connect returned, so a bridge that
                # said "ready" there had newer messages overtake them.
                self._accepted = False
                if self._on_connect is not None:
                    self._on_connect(self.client)
                self.connected.set()
            yield None
        self.client.disconnect()
        self.client.loop(0.1)

    def _connected(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            self._refused = str(reason)
            self._refused_kind = "credentials" if reason.value in CREDENTIALS_REFUSED else "refused"
            return
        if self._down_since is not None:
            self.log.info(
                "%s: the MQTT broker %s answers again after %.0f s",
                self.what,
                self.address,
                time.monotonic() - self._down_since,
            )
            self._down_since = None
        self.stats.connects += 1
        self._connected_at = time.monotonic()
        session = " (session resumed)" if getattr(flags, "session_present", False) else ""
        self.log.info("%s: connected to the MQTT broker %s%s", self.what, self.address, session)
        self._accepted = True  # on_connect runs once loop() returns (see _loop)

    def _disconnected(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        was = self.connected.is_set()
        self.connected.clear()
        if was and self._on_lost is not None:
            self._on_lost(str(reason))
        if was and not self._stop.is_set() and not self._drop.is_set():
            self.stats.losses += 1
            self.problems["lost"] += 1
            quick = time.monotonic() - self._connected_at < QUICK_LOSS
            self._quick_losses = self._quick_losses + 1 if quick else 0
            fix = f"give each LinkServer its own 'client_id' (this one is {self.client_id!r})"
            if getattr(reason, "value", None) == SESSION_TAKEN_OVER:
                hint = f"; another client connected with the same client id: {fix}"
            elif self._quick_losses >= 2:
                hint = (
                    "; it is lost again and again right after connecting: another client with the "
                    f"same client id may be taking it over (a broker keeps one connection per id): {fix}"
                )
            else:
                hint = ""
            self.log.warning(
                "%s: connection to the MQTT broker %s lost (%s)%s; reconnecting",
                self.what,
                self.address,
                reason,
                hint,
            )


def _loop_writes(client: paho.Client, userdata: Any, sock: Any) -> None:
    """paho's "the socket has bytes to write" callback: nothing to do, loop() writes them."""


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text
