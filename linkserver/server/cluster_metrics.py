"""The ``cluster_*`` metric families of a node (linkserver/server/metrics.py; docs/cluster.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from prometheus_client.core import Metric

    from linkserver.server.cluster_held import HeldForCommit
    from linkserver.server.cluster_outbound import ClusterOutbound
    from linkserver.server.cluster_received import ClusterStats

PREFIX = "linkserver_"


def cluster_metrics(
    connected: bool,
    out: ClusterOutbound,
    held: HeldForCommit,
    stats: ClusterStats,
    problems: Mapping[str, int],
) -> Iterator[Metric]:
    """The ``cluster_*`` metric families of one node (``connected``: both directions up;
    ``problems``: failed connection attempts of both directions by kind)."""
    gauges = (
        (
            "cluster_connected",
            "1 while both directions to the cluster's RabbitMQ are up.",
            connected,
        ),
        ("cluster_outbox_depth", "Events fired here not yet confirmed by RabbitMQ.", out.depth),
        ("cluster_spilled", "1 while events wait in the outbox table only.", out.spilled),
        (
            "cluster_held",
            "Other nodes' events sent before their commit, held for durable subscriptions here.",
            held.held,
        ),
    )
    for name, text, value in gauges:
        yield GaugeMetricFamily(PREFIX + name, text, value=float(value))
    counters = (
        ("cluster_published", "Events fired here that RabbitMQ confirmed.", out.stats.published),
        ("cluster_resent", "Events sent again after a lost connection.", out.stats.resent),
        (
            "cluster_dropped",
            "Non-persistent events dropped while the buffer was full.",
            out.stats.dropped,
        ),
        ("cluster_received", "Events of other nodes delivered here.", stats.received),
        ("cluster_duplicates", "Second copies of events dropped.", stats.duplicates),
        (
            "cluster_undeliverable",
            "Events of other nodes whose context or definition is unknown here.",
            stats.undeliverable,
        ),
        ("cluster_unreadable", "Messages on the cluster exchange that are not events.", stats.unreadable),
        ("cluster_adopted", "Outbox rows of dead nodes this node published.", stats.adopted),
        (
            "cluster_queues_lost",
            "Reconnects that found this node's queue removed (away longer than queue_expires).",
            stats.queues_lost,
        ),
        (
            "cluster_replayed",
            "Events of other nodes delivered from history after a lost queue.",
            stats.replayed,
        ),
        (
            "cluster_never_stored",
            "Other nodes' events delivered here before their commit and never committed (their "
            "node gave up on them, or died first): durable subscriptions here did not get them.",
            held.never_stored,
        ),
        (
            "cluster_held_from_history",
            "Held events released because history had them (their commit notice did not come).",
            held.released_from_history,
        ),
    )
    for name, text, value in counters:
        yield CounterMetricFamily(PREFIX + name, text, value=value)
    failures = CounterMetricFamily(
        PREFIX + "cluster_connection_problems",
        "Failed attempts of this node's two RabbitMQ connections (publishing, receiving) to "
        "connect or to set up the exchange or queue, by kind (unreachable, credentials, access, "
        "closed, exchange, queue, channel; each said in the log).",
        labels=["problem"],
    )
    for kind, count in sorted(problems.items()):
        failures.add_metric([kind], count)
    yield failures
