"""Other nodes' persistent events held for this node's durable subscriptions until committed.

A node publishes a persistent event to the others at fire time, before its
commit (:mod:`linkserver.server.cluster_outbound`), so their non-durable
subscribers get it as its own do. A durable subscription (``durable=True``)
is promised committed events only. So node B delivers such a *live* copy
with a commit future (``Engine.deliver(event, commit=...)``, the one
delivery path): non-durable subscriptions get the event at once, durable
ones when the future completes. It completes:

- with the firing node's *commit notice* (a small message on the same
  channel, after the live copy: the ids its writer committed, and those it
  gave up on, which fail the future: never stored, never delivered to
  durable subscriptions);
- with a copy of the event sent after its commit (resent after a lost
  connection, published from the outbox table by its node, a restarted one
  or an adopting one): the copy is a duplicate for everybody else, but it
  says the event is stored;
- else, once the event waited ``check_after`` seconds, when history has it
  (a notice lost with a connection), checked for the oldest held event of
  each node only;
- or fails when history does not have it and the process that fired it is
  gone (its node id is held by another process now, or its lease ran out
  and its grace), so it never will: the case of a node killed between the
  fire and the commit.

Order: the durable subscriptions of this node get each other node's events
in the order they arrived from it (which is its firing order): an event is
released only after every older held event of its node was released or
failed; a committed copy of a new event arriving while older ones of its
node are held waits behind them (:meth:`HeldForCommit.behind`).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future

from linkserver.core.errors import EventNotFound, LinkServerError
from linkserver.core.events import Event, node_of

log = logging.getLogger("linkserver.cluster")

CHECK_AFTER = 1.0  # seconds a held event waits for its notice before history is asked
SWEEP_EVERY = 0.5


class NeverStored(LinkServerError, RuntimeError):
    """The event was delivered here before its commit, and its node never committed it."""


class _Held:
    __slots__ = ("event", "future", "origin", "since", "state")

    def __init__(self, event: Event, future: Future[Event], origin: str | None, state: bool | None) -> None:
        self.event, self.future, self.origin = event, future, origin
        self.since = time.monotonic()
        self.state = state  # None: waiting; True: stored; False: never stored


class HeldForCommit:
    """See the module doc. ``gone(node_id, origin)`` says whether the process ``origin`` that
    fired with ``node_id`` is certainly gone (it can commit nothing any more)."""

    def __init__(
        self,
        stored: Callable[[int], bool],
        gone: Callable[[int, str | None], bool],
        *,
        check_after: float = CHECK_AFTER,
    ) -> None:
        self._stored = stored
        self._gone = gone
        self.check_after = check_after
        self._lock = threading.Lock()
        self._nodes: dict[int, collections.deque[_Held]] = {}
        self._by_id: dict[int, _Held] = {}
        self.released_from_history = 0  # notices missed: history said the event is stored
        self.never_stored = 0  # failed: their node is gone without committing them

    @property
    def held(self) -> int:
        return len(self._by_id)

    def hold(self, event: Event, origin: str | None) -> Future[Event]:
        """A live copy (sent before its commit): the future its durable deliveries wait on."""
        future: Future[Event] = Future()
        entry = _Held(event, future, origin, None)
        with self._lock:
            self._by_id[event.id] = entry
            self._nodes.setdefault(node_of(event.id), collections.deque()).append(entry)
        return future

    def behind(self, event: Event) -> Future[Event] | None:
        """A stored event (a committed copy seen for the first time): None when nothing of its
        node is held (deliver it as stored), else a future released after the older ones."""
        with self._lock:
            queue = self._nodes.get(node_of(event.id))
            if not queue:
                return None
            future: Future[Event] = Future()
            entry = _Held(event, future, None, True)
            self._by_id[event.id] = entry
            queue.append(entry)
            return future

    def stored(self, event_ids: Iterable[int]) -> None:
        """These events are committed (a notice, or a committed copy of a held one)."""
        self._decide(event_ids, True)

    def rejected(self, event_ids: Iterable[int]) -> None:
        """Their node gave up on these (never stored)."""
        self._decide(event_ids, False)

    def _decide(self, event_ids: Iterable[int], state: bool) -> None:
        with self._lock:
            nodes = set()
            for event_id in event_ids:
                entry = self._by_id.get(event_id)
                if entry is not None and entry.state is None:
                    entry.state = state
                    nodes.add(node_of(event_id))
            for node in nodes:
                self._release(node)

    def _release(self, node: int) -> None:
        """Under the lock: complete the futures at the head of ``node``'s queue that are decided.
        The done-callbacks only queue the offers (AfterCommit), so this is quick."""
        queue = self._nodes.get(node)
        while queue and queue[0].state is not None:
            entry = queue.popleft()
            del self._by_id[entry.event.id]
            if entry.state:
                entry.future.set_result(entry.event)
            else:
                entry.future.set_exception(
                    NeverStored(f"event {entry.event.id} was delivered before its commit and never stored")
                )
        if queue is not None and not queue:
            del self._nodes[node]

    def sweep(self) -> None:
        """For each node, while its oldest held event waited ``check_after`` for its notice: ask
        history; stored releases it, not stored and its process gone fails it."""
        now = time.monotonic()
        with self._lock:
            heads = [(node, queue[0]) for node, queue in self._nodes.items() if queue]
        for node, head in heads:
            while head is not None and head.state is None and now - head.since >= self.check_after:
                event = head.event
                try:
                    stored = self._stored(event.id)
                    gone = not stored and self._gone(node, head.origin)
                except Exception as exc:  # the database is down: next time
                    log.debug("cluster: cannot look up held event %s: %s", event.id, exc)
                    return
                if not stored and not gone:
                    break
                with self._lock:
                    if head.state is None:
                        head.state = stored
                        if stored:
                            self.released_from_history += 1
                        else:
                            self.never_stored += 1
                    self._release(node)
                    queue = self._nodes.get(node)
                    head = queue[0] if queue else None
                if stored:
                    log.info(
                        "cluster: event %s of node %d is stored (its commit notice did not come); "
                        "delivered to durable subscriptions",
                        event.id,
                        node,
                    )
                else:
                    log.warning(
                        "cluster: event %s (%s in %s) of node %d was delivered here before its commit, "
                        "and the process that fired it is gone without committing it: durable "
                        "subscriptions here do not get it (linkserver_cluster_never_stored_total)",
                        event.id,
                        event.name,
                        event.context or "root",
                        node,
                    )


def stored_in(history_get: Callable[[int], object]) -> Callable[[int], bool]:
    """``stored(event_id)`` from a history's ``get``: EventNotFound means no."""

    def stored(event_id: int) -> bool:
        try:
            history_get(event_id)
        except EventNotFound:
            return False
        return True

    return stored
