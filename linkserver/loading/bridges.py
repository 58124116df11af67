"""The ``bridges:`` section of the server configuration: a list of bridges to brokers.

Declared once (:class:`BridgeConfig` and its parts); the one section reader of
:mod:`linkserver.loading.sections` reads it with ``file:line:column`` errors, and
``linkserver check`` reports them. docs/bridges.md says what each key does::

    bridges:
      - name: rabbit
        type: amqp                     # amqp, mqtt, memory, or module:Class
        url: amqp://guest:guest@127.0.0.1:5672/
        exchange: linkserver
        routing: cloudstack            # default, cloudstack, or a template
        select:
          - {mask: "devices.*", event: "*", min_level: WARNING}
        inbound:
          queue: linkserver.posted
          principal: ingest
          dead_letter_exchange: linkserver.dead
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from linkserver.core.catalog import Catalog
from linkserver.core.errors import FilterError
from linkserver.core.filters import parse_filter
from linkserver.core.filters.labels import bind_filter
from linkserver.core.levels import Level
from linkserver.core.routing import TemplateError, check_template
from linkserver.core.tree import ContextTree
from linkserver.loading.entries import Entries
from linkserver.loading.problems import Location, Problems, describe
from linkserver.loading.sections import (
    Reading,
    choice,
    filter_expression,
    integer,
    items,
    located,
    mapping_value,
    read_section,
    section,
    setting,
    text,
)
from linkserver.loading.sections import flag as a_flag
from linkserver.loading.sections import level as a_level
from linkserver.loading.sections import (
    mask as a_mask,
)
from linkserver.loading.sections import (
    name as a_name,
)
from linkserver.loading.yamlnodes import MISSING

SHIPPED_TYPES = ("amqp", "memory", "mqtt")
EXCHANGE_TYPES = ("topic", "direct", "fanout", "headers")
AMQP_KEYS = ("url", "exchange", "exchange_type", "declare", "heartbeat")
MEMORY_KEYS = ("broker",)
MQTT_KEYS = ("url", "prefix", "qos", "payload", "retain", "client_id")
ONLY_AMQP = tuple(key for key in AMQP_KEYS if key not in MQTT_KEYS)
ONLY_MQTT = tuple(key for key in MQTT_KEYS if key not in AMQP_KEYS)
URL_SCHEMES = {"amqp": ("amqp://", "amqps://"), "mqtt": ("mqtt://", "mqtts://")}
URL_EXAMPLES = {"amqp": "amqp://user:password@host:5672/vhost", "mqtt": "mqtt://user:password@host:1883"}
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


def _template(entries: Entries, key: str, reading: Reading) -> Any:
    value = entries.text(key)
    if isinstance(value, str):
        try:
            return check_template(value)
        except TemplateError as exc:
            entries.error(entries.get(key), str(exc), key)  # type: ignore[arg-type]
            return MISSING
    return value


def _type(entries: Entries, key: str, reading: Reading) -> Any:
    value = entries.text(key)
    if isinstance(value, str) and value not in SHIPPED_TYPES and ":" not in value:
        entries.error(
            entries.get(key),  # type: ignore[arg-type]
            f"'type' in {entries.where} must be {' or '.join(SHIPPED_TYPES)} or 'package.module:Class', "
            f"got {value!r}",
            key,
        )
        return MISSING
    return value


def _url(entries: Entries, key: str, reading: Reading) -> Any:
    value = entries.text(key)
    if isinstance(value, str) and not value.startswith(URL_SCHEMES["amqp"] + URL_SCHEMES["mqtt"]):
        entries.error(
            entries.get(key),  # type: ignore[arg-type]
            f"'url' in {entries.where} must be an AMQP URL like {URL_EXAMPLES['amqp']} "
            f"(or for MQTT {URL_EXAMPLES['mqtt']}), got {describe(value)}",
            key,
        )
        return MISSING
    return value


def _inbound(entries: Entries, key: str, reading: Reading) -> Any:
    inner = entries.mapping(key, f"'inbound' in {entries.where}")
    read = read_section(InboundConfig, inner, reading, partial=False)  # 'queue' and 'principal' required
    if inner.bad:
        entries.bad = True
    return MISSING if read is None else read


def _strings(entries: Entries, key: str, reading: Reading) -> Any:
    found = []
    for node in entries.sequence(key):
        value = reading.doc.plain(node)
        if not isinstance(value, str) or not value:
            entries.error(
                node, f"each of {key!r} in {entries.where} must be a binding key, got {describe(value)}"
            )
            continue
        found.append(value)
    return tuple(found)


@attrs.frozen(kw_only=True)
class SelectConfig:
    """Events a bridge carries: ``event`` (or ``*``) in contexts ``mask`` matches, at
    ``min_level`` or above, for which ``filter`` holds."""

    mask: str = setting("**", a_mask(), doc="context mask")
    event: str = setting("*", a_name("event name", star=True), doc="event name or *")
    filter: str | None = setting(None, filter_expression(), doc="filter expression")
    min_level: Level = setting(Level.NONE, a_level(), doc="lowest level carried")
    filter_location: Location | None = located("filter")


@attrs.frozen(kw_only=True)
class InboundConfig:
    """Posted events consumed from a queue, fired as ``principal``."""

    queue: str = setting(read=text(), required=True, doc="queue of posted events")
    principal: str = setting(read=a_name("user name"), required=True, doc="the user inbound events fire as")
    bindings: tuple[str, ...] = setting((), _strings, doc="binding keys of the queue on the exchange")
    dead_letter_exchange: str | None = setting(None, text(nullable=True), doc="where refused messages go")
    prefetch: int = setting(100, integer(minimum=1, maximum=65535), doc="unacknowledged messages at once")
    max_size: int = setting(1 << 20, integer(minimum=1), doc="largest message accepted, in bytes")


@section(
    "bridges",
    read=items(
        where="bridge {index}",
        rename=("name", "bridge {!r}"),
        unique=("name",),
        duplicate="bridge {name!r} is already defined at {first}; give each bridge its own name",
        duplicate_at="name",
    ),
)
@attrs.frozen(kw_only=True)
class BridgeConfig:
    """A bridge to a broker (see docs/bridges.md). ``type``: ``amqp``, ``memory``, or a
    ``module:Class`` plugin that gets ``options``."""

    name: str = setting(read=a_name("bridge name"), required=True)
    type: str = setting(read=_type, required=True, doc="amqp, mqtt, memory or module:Class")
    select: tuple[SelectConfig, ...] = setting(
        (), items(SelectConfig, where="select entry {index}"), doc="which events go out (none: nothing)"
    )
    routing: str = setting("{path}.{event}", _template, doc="routing-key template or layout")
    source: str | None = setting(None, a_name("source name"), doc="CloudEvents source (default node<id>)")
    buffer: int = setting(10_000, integer(minimum=1), doc="events held in memory before the outbox table")
    window: int = setting(1_000, integer(minimum=1), doc="events sent and not yet confirmed, at most")
    url: str | None = setting(None, _url, doc="AMQP or MQTT URL")
    exchange: str | None = setting(None, text(), doc="AMQP exchange (default linkserver)")
    exchange_type: str | None = setting(
        None, choice(*EXCHANGE_TYPES), doc="AMQP exchange type (default topic)"
    )
    declare: bool | None = setting(None, a_flag(), doc="declare the exchange and queues (default true)")
    heartbeat: int | None = setting(None, integer(minimum=0, maximum=600), doc="AMQP heartbeat, seconds")
    broker: str | None = setting(None, a_name("broker name"), doc="memory broker's name")
    prefix: str | None = setting(None, text(), doc="MQTT topic levels before the routed ones")
    qos: int | None = setting(None, integer(minimum=0, maximum=2), doc="MQTT QoS (default 1)")
    payload: str | None = setting(None, choice("cloudevents", "linkserver"), doc="MQTT payload form")
    retain: bool | None = setting(None, a_flag(), doc="MQTT retained messages (default false)")
    client_id: str | None = setting(None, text(), doc="MQTT client id (default linkserver-bridge-NAME)")
    inbound: InboundConfig | None = setting(None, _inbound, doc="posted events in")
    options: dict[str, Any] = setting(factory=dict, read=mapping_value(), eq=False, doc="a plugin's options")
    location: Location | None = located()

    def check(self, entries: Entries) -> None:
        if self.type == "amqp":
            wrong = [key for key in (*MEMORY_KEYS, *ONLY_MQTT, "options") if key in entries]
        elif self.type == "memory":
            wrong = [key for key in (*AMQP_KEYS, *ONLY_MQTT, "options") if key in entries]
        elif self.type == "mqtt":
            wrong = [key for key in (*ONLY_AMQP, *MEMORY_KEYS, "options") if key in entries]
        else:
            wrong = [key for key in (*AMQP_KEYS, *MEMORY_KEYS, *ONLY_MQTT) if key in entries]
        for key in wrong:
            entries.error(
                entries.key_node(key) or entries.get(key),  # type: ignore[arg-type]
                f"{key!r} does not apply to {entries.where} of type {self.type!r}"
                + ("; a plugin's own settings go under 'options'" if ":" in self.type else ""),
                key,
            )
        if (
            self.type in URL_SCHEMES
            and self.url is not None
            and not self.url.startswith(URL_SCHEMES[self.type])
        ):
            entries.error(
                entries.get("url"),  # type: ignore[arg-type]
                f"'url' in {entries.where} of type {self.type!r} must be like {URL_EXAMPLES[self.type]}, "
                f"got {self.url!r}",
                "url",
            )
        if self.inbound is not None and self.type == "mqtt" and self.inbound.bindings:
            entries.error(
                entries.get("inbound"),  # type: ignore[arg-type]
                f"an MQTT bridge has no bindings ({entries.where}): its 'queue' is the topic filter "
                "it subscribes to, e.g. linkserver/posted/#",
            )
        if self.inbound is not None and self.type == "memory" and self.inbound.bindings:
            entries.error(entries.get("inbound"), f"a memory bridge has no bindings ({entries.where})")  # type: ignore[arg-type]

    @property
    def principal(self) -> str | None:
        return self.inbound.principal if self.inbound is not None else None

    @property
    def max_size(self) -> int:
        return self.inbound.max_size if self.inbound is not None else 1 << 20

    def plugin_options(self, node_id: int = 0) -> dict[str, Any]:
        """The keyword arguments the bridge's class is built with (besides its name)."""
        if ":" in self.type:
            return dict(self.options)
        options: dict[str, Any] = {"routing": self.routing, "source": self.source or f"node{node_id}"}
        if self.type == "memory":
            options["broker"] = self.broker or "default"
            options["inbound"] = self.inbound is not None
            return options
        if self.type == "mqtt":
            for key in MQTT_KEYS:
                value = getattr(self, key)
                if value is not None:
                    options[key] = value
            if self.inbound is not None:  # the queue is a topic filter, the dead letters a topic
                options.update(
                    inbound_topic=self.inbound.queue, dead_letter_topic=self.inbound.dead_letter_exchange
                )
            return options
        for key in AMQP_KEYS:
            value = getattr(self, key)
            if value is not None:
                options[key] = value
        if self.inbound is not None:
            options.update(
                queue=self.inbound.queue,
                bindings=self.inbound.bindings,
                dead_letter_exchange=self.inbound.dead_letter_exchange,
                prefetch=self.inbound.prefetch,
            )
        return options


def check_bridges(bridges: Iterable[BridgeConfig], catalog: Catalog, problems: Problems) -> None:
    """Each ``select`` filter against the events it selects, as a subscription's is checked
    (core.filters.labels.bind_filter): an unknown field, or a literal its field cannot be
    compared with (a word none of a coded field's labels), is reported at its line."""
    tree = ContextTree.from_catalog(catalog)
    for bridge in bridges:
        for index, entry in enumerate(bridge.select, start=1):
            if entry.filter is None:
                continue
            definitions = tree.definitions_under((entry.mask,), (entry.event,))
            if not definitions:
                continue  # nothing to check against (an event defined only at run time)
            try:
                bind_filter(parse_filter(entry.filter), definitions, f"{entry.event!r} under {entry.mask!r}")
            except FilterError as exc:
                problems.add(
                    entry.filter_location or bridge.location or Location("<bridges>", 1, 1),
                    f"'filter' of select entry {index} of bridge {bridge.name!r} cannot match "
                    f"{entry.event!r} under {entry.mask!r}: {exc.message}",
                )
