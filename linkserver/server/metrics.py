"""The server's metrics in the Prometheus text format, collected at scrape time.

Nothing on a hot path touches Prometheus: the engine, the history writer,
the purge job and the deliveries keep plain counters (most of which they
keep anyway; the new ones are :mod:`linkserver.core.tallies`, one C call
each), and :class:`ServerCollector` reads them only when ``/metrics`` is
scraped. A fire thus costs one ``next()`` for the metrics, not a labelled
counter lookup under a lock.

Families (all prefixed ``linkserver_``; see docs/server.md):

- ``events_fired_total{event,level}``, ``fire_validation_failures_total{event,level}``
- ``history_queue_depth``, ``history_batch_size`` and ``history_commit_seconds``
  (histograms per transaction), ``history_events_committed_total``,
  ``history_transactions_total``, ``history_retries_total``, ``history_events_failed_total``
- ``purge_runs_total``, ``purge_removed_total``
- ``subscriptions{delivery}``, ``delivery_dropped_total{where}``, ``delivery_gaps_total{where}``
- ``contexts``, ``info{version,node_id,history}``, ``start_time_seconds``
- ``cluster_*`` with a ``cluster:`` section (linkserver/server/cluster_metrics.py)

plus whatever the ``extra`` sources add (the network API adds sessions,
WebSocket connections and authentication failures) and the process
collector's ``process_*`` (CPU, memory, open files).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from linkserver import __version__
from linkserver.core.levels import Level
from linkserver.core.tallies import Buckets, count_value
from linkserver.server.delivery import DROPPED, GAPS, QueuedSubscription

if TYPE_CHECKING:
    from linkserver.server.app import LinkServer

PREFIX = "linkserver_"
CONTENT_TYPE = CONTENT_TYPE_LATEST
Source = Callable[[], Iterable[Metric]]


def _by_event_and_level(
    family: CounterMetricFamily, counters: dict[str, tuple[Any, ...]]
) -> CounterMetricFamily:
    for event, per_level in sorted(list(counters.items())):
        for level, counter in zip(Level, per_level, strict=False):
            value = count_value(counter)
            if value:
                family.add_metric([event, level.name], value)
    return family


def histogram(name: str, documentation: str, buckets: Buckets) -> HistogramMetricFamily:
    cumulative = buckets.cumulative()
    return HistogramMetricFamily(
        name,
        documentation,
        buckets=[(_bound(bound), count) for bound, count in cumulative],
        sum_value=buckets.total,
    )


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


class ServerCollector:
    """A Prometheus collector over one LinkServer; ``extra`` sources add their families."""

    def __init__(self, server: LinkServer, extra: Iterable[Source] = ()) -> None:
        self.server = server
        self.extra = list(extra)
        self.started = time.time()

    def describe(self) -> list[Metric]:
        return []  # no collect() at registration: the families are dynamic

    def collect(self) -> Iterator[Metric]:
        server, engine = self.server, self.server.engine
        yield _by_event_and_level(
            CounterMetricFamily(
                PREFIX + "events_fired", "Events fired, by event name and level.", labels=["event", "level"]
            ),
            engine.fired,
        )
        yield _by_event_and_level(
            CounterMetricFamily(
                PREFIX + "fire_validation_failures",
                "Fires refused because their data table was invalid, by event name and level.",
                labels=["event", "level"],
            ),
            engine.rejected,
        )
        yield from self._history()
        purger = server.purger
        yield CounterMetricFamily(
            PREFIX + "purge_runs", "Purge runs (scheduled and manual).", value=purger.runs
        )
        yield CounterMetricFamily(PREFIX + "purge_removed", "Expired events purged.", value=purger.removed)
        subscriptions = GaugeMetricFamily(
            PREFIX + "subscriptions", "Open engine subscriptions, by delivery.", labels=["delivery"]
        )
        queued = sum(1 for s in engine.subscriptions if isinstance(s, QueuedSubscription))
        subscriptions.add_metric(["sync"], len(engine.subscriptions) - queued)
        subscriptions.add_metric(["queued"], queued)
        yield subscriptions
        dropped = CounterMetricFamily(
            PREFIX + "delivery_dropped",
            "Events dropped by full subscription queues (process-wide), by where.",
            labels=["where"],
        )
        gaps = CounterMetricFamily(
            PREFIX + "delivery_gaps",
            "Gaps reported to subscribers (process-wide), by where.",
            labels=["where"],
        )
        for where in sorted(DROPPED):
            dropped.add_metric([where], DROPPED[where].value)
            gaps.add_metric([where], GAPS[where].value)
        yield dropped
        yield gaps
        yield GaugeMetricFamily(PREFIX + "contexts", "Contexts in the tree.", value=len(server.tree))
        info = GaugeMetricFamily(PREFIX + "info", "This server.", labels=["version", "node_id", "history"])
        info.add_metric([__version__, str(server.node_id), _history_kind(server)], 1)
        yield info
        yield GaugeMetricFamily(
            PREFIX + "start_time_seconds", "When the metrics began (Unix time).", value=self.started
        )
        for _name, controller, _handle in list(server.controllers):
            # A controller may report its own families (the MQTT controller does).
            metrics = getattr(controller, "metrics", None)
            if callable(metrics):
                yield from metrics()
        yield from bridge_metrics(server)
        cluster = getattr(server, "cluster", None)
        if cluster is not None:
            yield from cluster.metrics()
        for source in self.extra:
            yield from source()

    def _history(self) -> Iterator[Metric]:
        writer = getattr(self.server.history, "writer", None)
        if writer is None:
            return  # the memory store, or history stopped
        yield GaugeMetricFamily(
            PREFIX + "history_queue_depth",
            "Events handed to history, not yet committed.",
            value=writer.pending,
        )
        stats = writer.stats
        for name, text, value in (
            ("history_events_committed", "Events committed to history.", stats.events),
            ("history_transactions", "History transactions committed.", stats.transactions),
            ("history_retries", "Failed history writes that were retried.", stats.retries),
            ("history_events_failed", "Events the database refused for good.", stats.failed),
        ):
            yield CounterMetricFamily(PREFIX + name, text, value=value)
        yield histogram(PREFIX + "history_batch_size", "Events per history transaction.", writer.batch_sizes)
        yield histogram(
            PREFIX + "history_commit_seconds",
            "Time to commit one history transaction, retries included.",
            writer.commit_seconds,
        )


def bridge_metrics(server: LinkServer) -> Iterator[Metric]:
    """The ``bridge_*`` families, one sample per running bridge (label ``bridge``)."""
    hosts = list(getattr(server, "bridges", ()))
    if not hosts:
        return
    families = {
        "ready": GaugeMetricFamily(
            PREFIX + "bridge_ready",
            "1 while the broker takes messages (connected, not blocked).",
            labels=["bridge"],
        ),
        "depth": GaugeMetricFamily(
            PREFIX + "bridge_outbox_depth",
            "Events committed (or fired) and not yet confirmed by the broker.",
            labels=["bridge"],
        ),
        "in_flight": GaugeMetricFamily(
            PREFIX + "bridge_in_flight", "Events sent and not yet confirmed.", labels=["bridge"]
        ),
        "spilled": GaugeMetricFamily(
            PREFIX + "bridge_spilled",
            "1 while events wait in the outbox table only (back-pressure: the memory buffer filled).",
            labels=["bridge"],
        ),
        "published": CounterMetricFamily(
            PREFIX + "bridge_published", "Events the broker confirmed.", labels=["bridge"]
        ),
        "resent": CounterMetricFamily(
            PREFIX + "bridge_resent",
            "Events sent again after a lost connection or a negative confirm.",
            labels=["bridge"],
        ),
        "dropped": CounterMetricFamily(
            PREFIX + "bridge_dropped",
            "Non-persistent events dropped while the bridge's buffer was full.",
            labels=["bridge"],
        ),
        "received": CounterMetricFamily(
            PREFIX + "bridge_received", "Posted events accepted (fired) from the broker.", labels=["bridge"]
        ),
    }
    refused = CounterMetricFamily(
        PREFIX + "bridge_refused",
        "Posted messages refused and dead-lettered, by reason.",
        labels=["bridge", "reason"],
    )
    unroutable = CounterMetricFamily(
        PREFIX + "bridge_unroutable",
        "Messages the broker returned because no queue was bound for their routing key.",
        labels=["bridge"],
    )
    problems = CounterMetricFamily(
        PREFIX + "bridge_connection_problems",
        "Failed attempts to connect to the broker or to set up the exchange or queue, by kind "
        "(unreachable, credentials, access, exchange, queue, ...; each said in the log).",
        labels=["bridge", "problem"],
    )
    for host in hosts:
        for kind, count in sorted(getattr(host.bridge, "problems", {}).items()):
            problems.add_metric([host.name, kind], count)
        state = host.describe()
        for key, family in families.items():
            family.add_metric([host.name], float(state[key]))
        for reason, count in sorted(state["refused"].items()):
            refused.add_metric([host.name, reason], count)
        unroutable.add_metric([host.name], getattr(host.bridge, "unroutable", 0))
    yield from families.values()
    yield refused
    yield unroutable
    yield problems


def _history_kind(server: LinkServer) -> str:
    url = str(server.config.database_url)
    return url.split(":", 1)[0].split("+", 1)[0]


def registry(server: LinkServer, extra: Iterable[Source] = ()) -> CollectorRegistry:
    """A registry of its own (not the process-global default) for one server."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(ServerCollector(server, extra))  # type: ignore[arg-type]
    reg.register(ProcessCollector(registry=None))
    return reg


def exposition(reg: CollectorRegistry) -> bytes:
    """The text format of everything in ``reg`` (``Content-Type``: :data:`CONTENT_TYPE`)."""
    return generate_latest(reg)
