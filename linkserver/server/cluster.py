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
   (:mod:`linkserver.bridges.amqp_cluster`); node B skips its own messages
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

The wire form is LinkServer's own: a JSON array (id, context, name, level,
created and expires in microseconds since 1970, author, group, category,
data) with the data table encoded as history stores it.
"""

from __future__ import annotations

import collections
import importlib
import json
import logging
import threading
import time
import uuid
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from linkserver.core.errors import ContextNotFound, EventNotDefined, LinkServerError
from linkserver.core.events import Event, new_event, node_of
from linkserver.core.levels import Level
from linkserver.history.base import HistoryQuery
from linkserver.history.codec import decode_data, encode_data, from_micros, micros
from linkserver.server.cluster_held import SWEEP_EVERY, HeldForCommit, stored_in
from linkserver.server.cluster_outbound import ClusterOutbound

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from prometheus_client.core import Metric

    from linkserver.history.base import HistoryStore
    from linkserver.history.nodes import NodeLeases
    from linkserver.loading.cluster import ClusterSection
    from linkserver.server.engine import Engine

log = logging.getLogger("linkserver.cluster")

OUTBOX = "~cluster"  # the outbox rows' bridge name: no configured bridge can be called so
TRANSPORT = "linkserver.bridges.amqp_cluster"
LIVE, NOTICE = "live", "commits"  # message types (linkserver.bridges.amqp_cluster)
DEDUPLICATE = 100_000
REPLAY_MARGIN = 60.0  # seconds of history before a lost queue's outage replayed (other nodes' lag)
REPLAY_PAGE = 1000
ADOPTED = "adopted from node "
LOG_EVERY = 60.0
PREFIX = "linkserver_"
_LEVELS = tuple(Level)


def encode_event(event: Event) -> bytes:
    """The cluster's wire form of a fired event (see the module doc)."""
    head = json.dumps(
        [
            event.id,
            event.context,
            event.name,
            int(event.level),
            micros(event.created),
            micros(event.expires) if event.expires is not None else None,
            event.author,
            event.group,
            event.category,
        ],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return f"{head[:-1]},{encode_data(event.data)}]".encode()


def decode_event(body: bytes) -> Event:
    """The event :func:`encode_event` made; ValueError (or a subclass) when it is not one."""
    raw = json.loads(body)
    if not isinstance(raw, list) or len(raw) != 10:
        raise ValueError("not a cluster message: a JSON array of 10 values expected")
    event_id, context, name, level, created, expires, author, group, category, data = raw
    return new_event(
        int(event_id),
        context,
        name,
        _LEVELS[level],
        from_micros(created),
        from_micros(expires) if expires is not None else None,
        author,
        group,
        decode_data(data),
        category,
    )


class ClusterError(LinkServerError, RuntimeError):
    """The cluster link could not be set up."""


class SeenIds:
    """The last ``size`` event ids delivered: a bounded memory for dropping duplicates."""

    def __init__(self, size: int = DEDUPLICATE) -> None:
        self._order: collections.deque[int] = collections.deque()
        self._ids: set[int] = set()
        self.size = size

    def add(self, event_id: int) -> bool:
        """True the first time ``event_id`` is seen (within the window)."""
        ids = self._ids
        if event_id in ids:
            return False
        ids.add(event_id)
        order = self._order
        order.append(event_id)
        if len(order) > self.size:
            ids.discard(order.popleft())
        return True


@attrs.define
class ClusterStats:
    """Counters read by the metrics and the tests."""

    received: int = 0  # events of other nodes delivered here
    duplicates: int = 0  # second copies dropped
    own: int = 0  # this node's own messages, skipped
    undeliverable: int = 0  # context or definition unknown here
    unreadable: int = 0  # not a cluster message
    adopted: int = 0  # outbox rows of dead nodes taken over
    queues_lost: int = 0  # reconnects that found this node's queue removed by RabbitMQ
    replayed: int = 0  # events of other nodes delivered from history after a lost queue
    notices: int = 0  # commit notices of other nodes received


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
        self._seen = SeenIds()
        self._logged: dict[tuple[str, str], float] = {}
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
        self.held = HeldForCommit(stored_in(history.get), self._gone)
        self._sweeper: threading.Thread | None = None
        self.consumer = transport.ClusterConsumer(
            "cluster",
            url=settings.url,
            exchange=settings.exchange,
            queue_name=self.queue,
            deliver=self._received,
            queue_expires_ms=max(1000, int(settings.queue_expires.total_seconds() * 1000)),
            prefetch=settings.prefetch,
            heartbeat=settings.heartbeat,
            on_queue_lost=self._queue_lost,
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
                target=self._adopt_loop, name="linkserver-cluster-adopt", daemon=True
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
        out = self.outbound
        gauges = (
            (
                "cluster_connected",
                "1 while both directions to the cluster's RabbitMQ are up.",
                self.connected,
            ),
            ("cluster_outbox_depth", "Events fired here not yet confirmed by RabbitMQ.", out.depth),
            ("cluster_spilled", "1 while events wait in the outbox table only.", out.spilled),
            (
                "cluster_held",
                "Other nodes' events sent before their commit, held for durable subscriptions here.",
                self.held.held,
            ),
        )
        for name, text, value in gauges:
            yield GaugeMetricFamily(PREFIX + name, text, value=float(value))
        stats = self.stats
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
                self.held.never_stored,
            ),
            (
                "cluster_held_from_history",
                "Held events released because history had them (their commit notice did not come).",
                self.held.released_from_history,
            ),
        )
        for name, text, value in counters:
            yield CounterMetricFamily(PREFIX + name, text, value=value)

    # -- receiving ---------------------------------------------------------------------

    def _received(self, body: bytes, origin: str | None, kind: str | None = None) -> None:
        if origin == self.origin:
            self.stats.own += 1
            return
        if kind == NOTICE:
            self._notice(body)
            return
        try:
            event = decode_event(body)
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            self.stats.unreadable += 1
            self._say(
                ("", "unreadable"), f"a message on the cluster exchange is not an event ({exc}); dropped"
            )
            return
        if not self._seen.add(event.id):
            self.stats.duplicates += 1
            if kind != LIVE:  # a copy sent after its commit: stored (for a live copy held here)
                self.held.stored((event.id,))
            return
        commit = None
        if event.expires is not None:
            commit = self.held.hold(event, origin) if kind == LIVE else self.held.behind(event)
        try:
            self._deliver(event, commit)
        except (ContextNotFound, EventNotDefined) as exc:
            self.stats.undeliverable += 1
            self._say(
                (event.context, event.name),
                f"event {event.id} from another node cannot be delivered here: {exc} "
                "(this node's tree lacks it); its subscribers here miss it",
            )
            return
        self.stats.received += 1

    def _queue_lost(self, since: float) -> None:
        """This node's queue was removed while it was away (see the module doc, 4.): deliver
        the other nodes' stored events of that time from history, oldest first."""
        self.stats.queues_lost += 1
        start = datetime.fromtimestamp(since - REPLAY_MARGIN, UTC)
        log.warning(
            "cluster: queue %r was removed by RabbitMQ while this node was away (longer than "
            "queue_expires, %s): replaying the other nodes' persistent events since %s from history; "
            "their non-persistent events of that time are lost",
            self.queue,
            self.settings.queue_expires,
            start.isoformat(timespec="seconds"),
        )
        query: HistoryQuery | None = HistoryQuery(since=start, newest_first=False, limit=REPLAY_PAGE)
        replayed = 0
        while query is not None:
            try:
                page = self.history.query(query)
            except LinkServerError as exc:
                log.error("cluster: the replay after the lost queue stopped: %s; its gap stays", exc)
                break
            for event in page.events:
                if node_of(event.id) == self.node_id:
                    continue
                if not self._seen.add(event.id):
                    self.held.stored((event.id,))  # read from history: stored
                    continue
                try:
                    self._deliver(event, self.held.behind(event))
                except (ContextNotFound, EventNotDefined):
                    self.stats.undeliverable += 1
                    continue
                replayed += 1
            query = attrs.evolve(query, cursor=page.next_cursor) if page.next_cursor else None
        self.stats.replayed += replayed
        log.info("cluster: %d events of other nodes replayed from history after the lost queue", replayed)

    def _deliver(self, event: Event, commit: Future[Event] | None = None) -> None:
        """``commit``: the future durable subscriptions wait on (an event sent before its commit,
        or one behind such); None: stored, or never will be (not persistent)."""
        try:
            self.engine.deliver(event, commit=commit)
        except (ContextNotFound, EventNotDefined):
            if self.catch_up is None:
                raise
            # Added on another node a moment ago: follow the tree now, then once more.
            self.catch_up()
            self.engine.deliver(event, commit=commit)

    def _notice(self, body: bytes) -> None:
        """Another node's commit notice: which of its live events are committed, or never will be."""
        try:
            committed, rejected = json.loads(body)
            committed, rejected = [int(i) for i in committed], [int(i) for i in rejected]
        except (ValueError, TypeError) as exc:
            self.stats.unreadable += 1
            self._say(("", "unreadable"), f"a commit notice on the cluster exchange is unreadable ({exc})")
            return
        self.stats.notices += 1
        if committed:
            self.held.stored(committed)
        if rejected:
            self.held.rejected(rejected)
            self._say(
                ("", "rejected"),
                f"{len(rejected)} events of another node (first {rejected[0]}) were delivered here before "
                "their commit and their node gave up on storing them: durable subscriptions here do not "
                "get them",
            )

    def _gone(self, node_id: int, origin: str | None) -> bool:
        """The process ``origin`` that fired with ``node_id`` is gone: another holds the id now, or
        its lease ran out and its grace (without leases: never known)."""
        if self.leases is None:
            return False
        now = time.time_ns() // 1_000_000
        for row in self.leases.all():
            if row.id == node_id:
                return row.owner != origin or row.expires_ms + self.grace_ms < now
        return True  # released: it stopped

    def _sweep_loop(self) -> None:
        while not self._stop.wait(SWEEP_EVERY):
            try:
                self.held.sweep()
            except Exception:  # never stop sweeping
                log.exception("cluster: checking the held events failed")

    def _say(self, key: tuple[str, str], message: str) -> None:
        now = time.monotonic()
        if now - self._logged.get(key, -LOG_EVERY) >= LOG_EVERY:
            if len(self._logged) > 10_000:
                self._logged.clear()
            self._logged[key] = now
            log.warning("cluster: %s", message)

    # -- dead nodes' outboxes ------------------------------------------------------------

    def _adopt_loop(self) -> None:
        every = max(0.2, self.lease_ms / 3000)
        while not self._stop.wait(every):
            try:
                self.adopt_dead()
            except Exception as exc:  # the database is down: next time
                log.debug("cluster: looking for dead nodes' outboxes failed: %s", exc)

    def adopt_dead(self) -> int:
        """Take over the outbox rows of nodes whose lease ran out (and its grace); returns
        how many rows this node publishes now."""
        assert self.leases is not None
        now = time.time_ns() // 1_000_000
        dead = {
            row.id: row
            for row in self.leases.all()
            if row.id != self.node_id and row.expires_ms + self.grace_ms < now
        }
        moved = 0
        for node_id, count in self.leases.owed(OUTBOX, sorted(dead)).items():
            taken = self.leases.adopt(dead[node_id], OUTBOX, self.node_id)
            if taken:
                log.warning(
                    "cluster: node %s (node id %d) is gone; this node publishes the %d events it still owed",
                    dead[node_id].name,
                    node_id,
                    taken,
                )
                self.outbound.adopted(taken)
                self.stats.adopted += taken
                moved += taken
            elif count:
                log.info(
                    "cluster: node id %d was claimed again; its new holder publishes its outbox", node_id
                )
        return moved
