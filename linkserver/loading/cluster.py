"""The ``cluster:`` section of the server configuration: this node as one of several.

Absent: the node is alone (its node id is ``server.node_id``). Present: the
node claims its node id from the history database at start and passes fired
events to the other nodes through RabbitMQ (docs/cluster.md)::

    cluster:
      url: amqp://guest:guest@rabbit.example.com:5672/
      exchange: linkserver.cluster     # a topic exchange of the cluster's own
      node_name: web1                  # default: the host's name
"""

from __future__ import annotations

import socket
from datetime import timedelta
from typing import Any

import attrs

from linkserver.loading.entries import Entries
from linkserver.loading.problems import Location, describe
from linkserver.loading.sections import (
    Reading,
    duration,
    integer,
    located,
    read_section,
    section,
    setting,
    text,
)
from linkserver.loading.yamlnodes import MISSING

AMQP_SCHEMES = ("amqp://", "amqps://")


def _url(entries: Entries, key: str, reading: Reading) -> Any:
    value = entries.text(key)
    if isinstance(value, str) and not value.startswith(AMQP_SCHEMES):
        entries.error(
            entries.get(key),  # type: ignore[arg-type]
            f"'url' in {entries.where} must be an AMQP URL like amqp://user:password@host:5672/vhost, "
            f"got {describe(value)}",
            key,
        )
        return MISSING
    return value


def _node_name(entries: Entries, key: str, reading: Reading) -> Any:
    value = entries.text(key)
    if isinstance(value, str) and (not value or any(c.isspace() or c in "#*" for c in value)):
        entries.error(
            entries.get(key),  # type: ignore[arg-type]
            f"'node_name' in {entries.where} must be a name without spaces, '#' or '*', got {value!r}",
            key,
        )
        return MISSING
    return value


def _read_cluster(top: Entries, key: str, reading: Reading) -> Any:
    if key not in top:
        return None  # no cluster: one node alone
    return read_section(ClusterSection, top.mapping(key, f"{key!r}"), reading, partial=False)


@section("cluster", read=_read_cluster)
@attrs.frozen(kw_only=True)
class ClusterSection:
    """Several nodes on one database and one RabbitMQ (see docs/cluster.md)."""

    url: str = setting(read=_url, required=True, doc="the cluster's RabbitMQ")
    exchange: str = setting("linkserver.cluster", text(), doc="topic exchange the nodes pass events on")
    node_name: str = setting(factory=socket.gethostname, read=_node_name, doc="this node's name")
    lease: timedelta = setting(timedelta(seconds=30), duration(), doc="how long a node id is held unrenewed")
    queue_expires: timedelta = setting(
        timedelta(minutes=10), duration(), doc="how long a node's queue outlives its connection"
    )
    heartbeat: int = setting(30, integer(minimum=0, maximum=600), doc="AMQP heartbeat, seconds")
    buffer: int = setting(10_000, integer(minimum=1), doc="events held in memory before the outbox table")
    window: int = setting(1_000, integer(minimum=1), doc="events sent and not yet confirmed, at most")
    prefetch: int = setting(1_000, integer(minimum=1, maximum=65535), doc="events received unacknowledged")
    location: Location | None = located()
