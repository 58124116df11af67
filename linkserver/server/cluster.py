"""Several nodes as one system: events fired here go to the other nodes, theirs come here.

How an event travels (docs/cluster.md says what is guaranteed):

1. Fired on node A, it is stored once, by A (the engine's fire, as on a node
   alone), and A's own subscribers get it from A's engine.
2. A's :class:`~linkserver.server.cluster_outbound.ClusterOutbound` takes it in
   firing order and publishes it to the cluster's topic exchange at once, a
   persistent event too (before its commit, as A's own subscribers get it),
   while the publisher is connected and owes nothing older; else a persistent
   event once committed. Either way its outbox row is committed with it and
   deleted once RabbitMQ confirmed it (nothing committed is lost to a broker
   outage or a crash of A: the rows are published when the broker is back, or
   by the next holder of A's node id, or adopted by a live node once A's lease
   ran out). One publisher, one channel: the exchange gets A's events in A's
   order.
3. Every node consumes a queue of its own bound to the exchange
   (:mod:`linkserver.bridges.amqp_cluster`); node B
   (:mod:`linkserver.server.cluster_received`) skips its own messages
   (``app_id``; the events of a dead node's outbox it adopted are not its
   own), drops a second copy of an event id it delivered (a redelivery after a
   lost connection or a resend: the last ``DEDUPLICATE`` ids are kept), and
   hands the rest to ``engine.deliver``, the code that notifies B's
   subscribers of a local fire, in arrival order. A persistent event sent
   before its commit goes to B's durable subscriptions only once A's commit
   notice (or a copy sent after the commit, or history) says it is stored
   (:mod:`linkserver.server.cluster_held`).
4. A node cut off from RabbitMQ longer than ``queue_expires`` finds its queue
   gone when it is back: it replays the other nodes' persistent events from
   history since shortly before it lost the connection (``REPLAY_MARGIN``),
   through the same de-duplication and ``engine.deliver``, before the new
   queue's messages. Their non-persistent events of that time are lost (said
   in the log and counted).

The wire form is LinkServer's own (:mod:`linkserver.server.cluster_wire`). A
dead node's outbox is taken over by :mod:`linkserver.server.cluster_adopt`;
the metrics are :mod:`linkserver.server.cluster_metrics`'s.
"""

from __future__ import annotations

import collections
import importlib
import logging
import threading
import time
import uuid
from concurrent.futures import Future
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from linkserver.core.errors import LinkServerError
from linkserver.core.events import Event, node_of
from linkserver.server.cluster_adopt import OUTBOX, DeadNodes
from linkserver.server.cluster_held import SWEEP_EVERY, HeldForCommit, stored_in
from linkserver.server.cluster_metrics import cluster_metrics
from linkserver.server.cluster_outbound import ClusterOutbound
from linkserver.server.cluster_received import ClusterReceiver, ClusterStats
from linkserver.server.cluster_wire import encode_event

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from prometheus_client.core import Metric

    from linkserver.history.base import HistoryStore
    from linkserver.history.nodes import NodeLeases
    from linkserver.loading.cluster import ClusterSection
    from linkserver.server.engine import Engine

log = logging.getLogger("linkserver.cluster")

TRANSPORT = "linkserver.bridges.amqp_cluster"
ADOPTED = "adopted from node "


class ClusterError(LinkServerError, RuntimeError):
    """The cluster link could not be set up."""


class _Handle:
    """The :class:`~linkserver.typing.BridgeHandle` of the cluster's publisher."""

    def __init__(self, outbound: ClusterOutbound) -> None:
        self.name = "cluster"
        self.log = log
        self._outbound = outbound

    def ready(self, ready: bool, reason: str) -> None:
        self._outbound.ready(ready, reason)

    def confirmed(self, ids: Sequence[int]) -> None:
        self._outbound.confirmed(ids)

    def failed(self, ids: Sequence[int], reason: str) -> None:
        self._outbound.failed(ids, reason)

    def fire(self, posted: Any) -> Future[Event]:
        return self._refused()

    def receive(self, body: bytes) -> Future[Event]:
        return self._refused()

    @staticmethod
    def _refused() -> Future[Event]:
        future: Future[Event] = Future()
        future.set_exception(ClusterError("the cluster exchange carries fired events, not posted ones"))
        return future


class Cluster:
    """This node's part of the cluster (see the module doc): start after history and the
    node id, before events that should reach the other nodes are fired."""

    def __init__(
        self,
        engine: Engine,
        history: HistoryStore,
        settings: ClusterSection,
        *,
        node_id: int,
        owner: str | None = None,
        leases: NodeLeases | None = None,
        grace: timedelta | None = None,
        catch_up: Callable[[], object] | None = None,
    ) -> None:
        self.engine = engine
        self.catch_up = catch_up  # reads the tree's change feed now (server/tree_feed.py)
        self.history = history
        self.settings = settings
        self.node_id = node_id
        self.origin = owner or f"{settings.node_name}/{uuid.uuid4().hex}"
        self.queue = f"{settings.exchange}.{settings.node_name}.{uuid.uuid4().hex[:8]}"
        self.leases = leases
        self.lease_ms = int(settings.lease.total_seconds() * 1000)
        self.grace_ms = int((grace or settings.lease).total_seconds() * 1000)
        self.stats = ClusterStats()
        self._stop = threading.Event()
        self._adopter: threading.Thread | None = None
        transport = importlib.import_module(TRANSPORT)
        self.publisher = transport.ClusterPublisher(
            "cluster",
            url=settings.url,
            exchange=settings.exchange,
            encode=encode_event,
            origin=self._origin_of,
            notice_origin=self.origin,
            heartbeat=settings.heartbeat,
        )
        self.outbound = ClusterOutbound(
            OUTBOX,
            self.publisher,
            engine,
            history,
            node=node_id,
            buffer=settings.buffer,
            window=settings.window,
        )
        self.publisher.sent_live = self.outbound.sent_live
        self.dead = DeadNodes(
            leases, self.outbound, self.stats, node_id=node_id, lease_ms=self.lease_ms, grace_ms=self.grace_ms
        )
        self.held = HeldForCommit(stored_in(history.get), self.dead.gone)
        self._sweeper: threading.Thread | None = None
        self.receiver = ClusterReceiver(
            engine,
            history,
            self.held,
            self.stats,
            node_id=node_id,
            origin=self.origin,
            queue=self.queue,
            queue_expires=settings.queue_expires,
            catch_up=catch_up,
        )
        self.consumer = transport.ClusterConsumer(
            "cluster",
            url=settings.url,
            exchange=settings.exchange,
            queue_name=self.queue,
            deliver=self.receiver.received,
            queue_expires_ms=max(1000, int(settings.queue_expires.total_seconds() * 1000)),
            prefetch=settings.prefetch,
            heartbeat=settings.heartbeat,
            on_queue_lost=self.receiver.queue_lost,
        )

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        self.outbound.attach()
        self.engine.on_fired = self.outbound.take
        self.outbound.start()
        self.publisher.start(_Handle(self.outbound))
        self.consumer.start()
        self._sweeper = threading.Thread(target=self._sweep_loop, name="linkserver-cluster-held", daemon=True)
        self._sweeper.start()
        if self.leases is not None:
            self._adopter = threading.Thread(
                target=self.dead.loop, args=(self._stop,), name="linkserver-cluster-adopt", daemon=True
            )
            self._adopter.start()
        log.info(
            "node %s (node id %d) in the cluster on exchange %r at %s",
            self.settings.node_name,
            self.node_id,
            self.settings.exchange,
            self.publisher.where,
        )

    def stop(self, timeout: float = 5.0) -> None:
        """Stop taking fires, publish what is buffered (up to ``timeout``; the rest stays in
        the outbox), stop receiving and delete this node's queue."""
        self.engine.on_fired = None
        self._stop.set()
        try:  # events sent live before their commit: committed now, their rows are deleted below
            self.history.flush(min(timeout, 1.0))
        except Exception as exc:  # the database is down: their rows (if any) are published again
            log.info("cluster: history not flushed before stopping (%s)", exc)
        self.outbound.stop(timeout)
        try:
            self.publisher.stop(timeout)
        except Exception:
            log.exception("the cluster's publisher failed to stop")
        self.consumer.stop(timeout)
        for thread in (self._adopter, self._sweeper):
            if thread is not None:
                thread.join(timeout)

    @property
    def connected(self) -> bool:
        """Both directions are up."""
        return bool(self.outbound.is_ready and self.consumer.consuming.is_set())

    def wait_connected(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.connected:
                return True
            time.sleep(0.02)
        return self.connected

    def _origin_of(self, event: Event) -> str:
        """Who fired ``event``: this process, or (an adopted outbox row) a dead node, whose
        events this node's own subscribers need too."""
        if node_of(event.id) == self.engine.node_id:
            return self.origin
        return f"{ADOPTED}{node_of(event.id)}"

    def metrics(self) -> Iterator[Metric]:
        """The ``cluster_*`` metric families (linkserver/server/metrics.py)."""
        problems = collections.Counter(self.publisher.problems)
        problems.update(self.consumer.problems)
        return cluster_metrics(self.connected, self.outbound, self.held, self.stats, problems)

    def adopt_dead(self) -> int:
        """Take over the outbox rows of dead nodes now (see :mod:`linkserver.server.cluster_adopt`)."""
        return self.dead.adopt_dead()

    def _sweep_loop(self) -> None:
        while not self._stop.wait(SWEEP_EVERY):
            try:
                self.held.sweep()
            except Exception:  # never stop sweeping
                log.exception("cluster: checking the held events failed")
