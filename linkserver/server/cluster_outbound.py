"""The cluster's outbound: every event fired on this node, to the other nodes, in firing order.

It is the outbound of a bridge (:mod:`linkserver.server.outbound`: the outbox
table committed with the events, publisher confirms, resending, the walk of
the table after an outage) with these differences:

- It takes every event fired here (the engine's ``on_fired``, hidden events
  too), persistent or not, into one sequence in firing order, before the
  event is stored. So the other nodes get this node's events in the order it
  fired them.
- A persistent event goes out *live*, at once, before its commit (as this
  node's own subscribers get it), while the publisher is connected and owes
  nothing older: nothing held for its commit, resent, read from the table or
  waiting there only. Its outbox row is still written in the event's
  transaction; it is deleted once both the commit and RabbitMQ's confirm
  came, in either order (``_live``), with no second publish. A live copy
  lost with the connection is sent again before anything newer, as any
  unconfirmed event is. An event the writer gives up on for good (rejected)
  was delivered elsewhere and is never stored: the exposure this node's own
  subscribers have too (docs/cluster.md, "What is not").
- Otherwise (not connected, or a backlog) a persistent event is *held* at the
  head of the sequence until its commit (``_pending``); what was fired after
  it waits behind it, and persistent events fired after it are held too, so
  live publishing resumes only once the backlog is gone: a live copy never
  overtakes an older committed event. While the memory buffer is full (a long
  outage) persistent events wait in the table only and the walk publishes
  them in id order, as a bridge's.
- The commit of an event that went out live (or its rejection by the writer)
  is told to the other nodes by a *commit notice* (``bridge.notice``: the ids
  committed, the ids given up on), sent after the live copies on the same
  channel, for their durable subscriptions (:mod:`linkserver.server.cluster_held`).
  A copy sent after its commit says so itself (``sent_live`` is false for it
  when the bridge encodes it). Notices are not resent: a node whose notice was
  lost looks the event up in history.
- A held event whose commit does not come within ``commit_wait`` seconds (the
  database is down; its writer retries) stops holding the others up: the held
  events in memory are given to the outbox table (the walk publishes them in
  id order once they are committed), and the rest goes on.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from linkserver.core.events import Event
from linkserver.server.outbound import DELETE_BATCH, PAGE, Outbound, log

if TYPE_CHECKING:
    from linkserver.history.base import HistoryStore
    from linkserver.server.engine import Engine
    from linkserver.typing import Bridge

COMMIT_WAIT = 2.0


class Everything:
    """The cluster's selection: every event (the outbox hook writes a row for each)."""

    entries = ()

    @staticmethod
    def wants(event: Event) -> bool:
        return True


class ClusterOutbound(Outbound):
    """See the module doc. ``take`` is given to ``engine.on_fired``."""

    def __init__(
        self,
        name: str,
        bridge: Bridge,
        engine: Engine,
        history: HistoryStore,
        *,
        node: int,
        buffer: int,
        window: int,
        commit_wait: float = COMMIT_WAIT,
    ) -> None:
        super().__init__(name, bridge, engine, history, Everything(), node=node, buffer=buffer, window=window)  # type: ignore[arg-type]
        self.commit_wait = commit_wait
        self._pending: dict[int, float] = {}  # persistent ids in memory not yet committed -> when taken
        # Commit notices owed: ids of live events committed, and rejected, since the last one.
        self._notice_committed: list[int] = []
        self._notice_rejected: list[int] = []

    def take(self, event: Event) -> None:
        """A fire on this node (before its store): quick, never blocks."""
        with self._cond:
            if not self._accepting:
                return
            memory = self._memory
            if event.expires is None:
                if len(memory) >= self.buffer:
                    self.stats.dropped += 1
                    return
                memory.append(event)
                self._transient += 1
            elif self._spilled or len(memory) >= self.buffer:
                if not self._spilled:
                    self._spilled = True
                    self.log_spill(len(memory))
                return  # committed, it waits in the table for the walk
            elif self._goes_live():
                self._owned.add(event.id)
                self._live[event.id] = False
                memory.append(event)
            else:
                self._owned.add(event.id)
                self._pending[event.id] = time.monotonic()
                memory.append(event)
                return  # sent once committed (the writer's callback wakes the publisher)
            self._cond.notify()
        self._send_direct()

    def _goes_live(self) -> bool:
        """Under the lock: a persistent event taken now may be sent before its commit. Only
        while connected and owing nothing older (see the module doc); and with at most
        ``buffer`` live events whose commit has not come (a database that is down)."""
        return (
            self.is_ready
            and not self._pending
            and not self._resend
            and not self._ahead
            and self._walk is None
            and len(self._live) < self.buffer
        )

    def log_spill(self, held: int) -> None:
        log.warning(
            "cluster: %d events held in memory (%s); further events wait in the outbox table",
            held,
            self._why_slow(),
        )

    def _committed(self, events: Sequence[Event]) -> None:
        with self._cond:
            pending, owned, live = self._pending, self._owned, self._live
            for event in events:
                if pending.pop(event.id, None) is not None:
                    continue
                confirmed = live.pop(event.id, None)
                if confirmed is not None:  # sent live: its row goes once RabbitMQ has it
                    if confirmed:
                        self._deletes.append(event.id)
                        self._notice_committed.append(event.id)
                    elif event.id in self._in_flight:
                        self._notice_committed.append(event.id)
                    # else not sent yet: the copy sent later says it is committed
                    continue
                if event.id not in owned:  # not in memory: the walk of the table publishes it
                    self._spilled = True
                    self.stats.spilled_events += 1
                    self._table_only(event.id)
            self._cond.notify()
        self._send_direct()
        self._after_sending()

    def sent_live(self, event_id: int) -> bool:
        """Whether ``event_id`` is sent before its commit (the bridge asks as it encodes the
        message; a copy encoded after the commit says it is stored)."""
        return event_id in self._live

    def _after_sending(self) -> None:
        """Send the commit notice owed, unless another thread is sending (it sends the notice
        when it lets go): so a notice never overtakes the live copies it is about."""
        while (self._notice_committed or self._notice_rejected) and self._sending.acquire(blocking=False):
            try:
                with self._cond:
                    committed, self._notice_committed = self._notice_committed, []
                    rejected, self._notice_rejected = self._notice_rejected, []
                if committed or rejected:
                    try:
                        self.bridge.notice(committed, rejected)  # type: ignore[attr-defined]
                    except Exception:  # lost: the other nodes look the events up in history
                        log.exception("cluster: sending a commit notice failed")
            finally:
                self._sending.release()

    def _rejected(self, events: Sequence[Event]) -> None:
        """Never to be stored: a held event leaves the sequence (it will not be sent); so does a
        live one not sent yet (or to be sent again); one sent is told off by a notice (its
        confirm, if still to come, deletes a row that is not there)."""
        with self._cond:
            pending, owned, live = self._pending, self._owned, self._live
            gone = set()
            for event in events:
                if pending.pop(event.id, None) is not None:
                    gone.add(event.id)
                    owned.discard(event.id)
                elif event.id in live:  # went out (or was to go) before its commit: never stored
                    confirmed = live.pop(event.id)
                    if confirmed or event.id not in self._in_flight:
                        owned.discard(event.id)
                        gone.add(event.id)
                    self._notice_rejected.append(event.id)
            if gone:
                for queue in (self._memory, self._resend):
                    kept = [event for event in queue if event.id not in gone]
                    queue.clear()
                    queue.extend(kept)
            self._cond.notify()
        self._after_sending()

    def adopted(self, count: int) -> None:
        """``count`` rows of a dead node's outbox are this node's now: publish them."""
        if count and self.outbox is not None:
            with self._cond:
                self.outbox.depth += count
                self._spilled = True
                self._table_only(0)  # rows of any id: a walk under way looks at all of them again
                self._cond.notify()

    def _head_waits(self) -> bool:
        """The oldest event in memory is persistent and not committed yet (under the lock)."""
        memory = self._memory
        if not memory or memory[0].id not in self._pending:
            return False
        if time.monotonic() - self._pending[memory[0].id] < self.commit_wait:
            return True
        # The commit is late (database down): the table takes the persistent events over.
        kept = [event for event in memory if event.id not in self._pending]
        for event_id in [event.id for event in memory if event.id in self._pending]:
            del self._pending[event_id]
            self._owned.discard(event_id)
        memory.clear()
        memory.extend(kept)
        self._spilled = True
        self.log_spill(len(kept))
        return False

    def _has_work(self) -> bool:
        if self._walk is None and not self._resend and not self._ahead and self._head_waits():
            return len(self._deletes) >= DELETE_BATCH
        return super()._has_work()

    def _take(self) -> tuple[list[Event], bool]:
        if self._resend or self._ahead or self._walk is not None or not self._pending:
            return super()._take()
        room = min(self._room(), PAGE)
        if room <= 0:
            return [], False
        memory, pending = self._memory, self._pending
        batch: list[Event] = []
        while memory and len(batch) < room and memory[0].id not in pending:
            batch.append(memory.popleft())
        if batch:
            self._send(batch)
            return batch, False
        return super()._take() if not memory else ([], False)
