"""What a node does with each message of the cluster exchange (docs/cluster.md).

:class:`ClusterReceiver` is the consumer's ``deliver``: it skips this
process's own messages (``app_id``; the events of a dead node's outbox it
adopted are not its own), drops a second copy of an event id it delivered (a
redelivery after a lost connection or a resend: the last ``DEDUPLICATE`` ids
are kept), and hands the rest to ``engine.deliver``, the code that notifies
this node's subscribers of a local fire, in arrival order. A persistent event
sent before its commit goes to durable subscriptions only once its node's
commit notice (or a copy sent after the commit, or history) says it is stored
(:mod:`linkserver.server.cluster_held`). After an outage longer than
``queue_expires`` (the node's queue gone) it replays the other nodes'
persistent events from history (:meth:`ClusterReceiver.queue_lost`).
"""

from __future__ import annotations

import collections
import json
import logging
import time
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import attrs

from linkserver.core.errors import ContextNotFound, EventNotDefined, LinkServerError
from linkserver.core.events import Event, node_of
from linkserver.history.base import HistoryQuery
from linkserver.server.cluster_held import HeldForCommit
from linkserver.server.cluster_wire import LIVE, NOTICE, decode_event

if TYPE_CHECKING:
    from collections.abc import Callable

    from linkserver.history.base import HistoryStore
    from linkserver.server.engine import Engine

log = logging.getLogger("linkserver.cluster")

DEDUPLICATE = 100_000
REPLAY_MARGIN = 60.0  # seconds of history before a lost queue's outage replayed (other nodes' lag)
REPLAY_PAGE = 1000
LOG_EVERY = 60.0


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


class ClusterReceiver:
    """The receiving side of this node (see the module doc): ``origin`` is this process's
    ``app_id``, ``queue`` (its name) and ``queue_expires`` are for the log."""

    def __init__(
        self,
        engine: Engine,
        history: HistoryStore,
        held: HeldForCommit,
        stats: ClusterStats,
        *,
        node_id: int,
        origin: str,
        queue: str,
        queue_expires: object,
        catch_up: Callable[[], object] | None = None,
    ) -> None:
        self.engine = engine
        self.history = history
        self.held = held
        self.stats = stats
        self.node_id = node_id
        self.origin = origin
        self.queue = queue
        self.queue_expires = queue_expires
        self.catch_up = catch_up
        self._seen = SeenIds()
        self._logged: dict[tuple[str, str], float] = {}

    def received(self, body: bytes, origin: str | None, kind: str | None = None) -> None:
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

    def queue_lost(self, since: float) -> None:
        """This node's queue was removed while it was away (see the module doc, 4.): deliver
        the other nodes' stored events of that time from history, oldest first."""
        self.stats.queues_lost += 1
        start = datetime.fromtimestamp(since - REPLAY_MARGIN, UTC)
        log.warning(
            "cluster: queue %r was removed by RabbitMQ while this node was away (longer than "
            "queue_expires, %s): replaying the other nodes' persistent events since %s from history; "
            "their non-persistent events of that time are lost",
            self.queue,
            self.queue_expires,
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

    def _say(self, key: tuple[str, str], message: str) -> None:
        now = time.monotonic()
        if now - self._logged.get(key, -LOG_EVERY) >= LOG_EVERY:
            if len(self._logged) > 10_000:
                self._logged.clear()
            self._logged[key] = now
            log.warning("cluster: %s", message)
