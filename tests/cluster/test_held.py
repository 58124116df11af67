"""Other nodes' live persistent events held for durable subscriptions (server/cluster_held.py),
without a broker: node A's engine fires, node B's engine delivers through HeldForCommit as the
cluster's receiver does (``Engine.deliver(event, commit=...)``)."""

from __future__ import annotations

import threading
import time

from linkserver.core.catalog import Catalog, ContextSpec, DefinitionSet
from linkserver.core.definitions import EventDefinition
from linkserver.core.events import Event
from linkserver.server.cluster_held import HeldForCommit
from linkserver.server.engine import Engine


def _engine(node_id: int) -> Engine:
    definitions = DefinitionSet([EventDefinition(name="reading", persistent=True)])
    engine = Engine.from_catalog(
        Catalog(contexts=[ContextSpec(path="plant", definitions=definitions)]), node_id=node_id
    )
    engine.history.start()
    return engine


class NodeB:
    """Node B: a durable and a non-durable subscription; ``stored_ids`` is what its history has."""

    def __init__(self, gone: bool = False) -> None:
        self.engine = _engine(2)
        self.durable: list[int] = []
        self.live: list[int] = []
        self.stored_ids: set[int] = set()
        self.gone = gone
        self.arrived = threading.Condition()
        self.engine.listen("**", "reading", self._durable, durable=True)
        self.engine.listen("**", "reading", lambda event: self.live.append(event.id))
        self.held = HeldForCommit(
            lambda event_id: event_id in self.stored_ids, lambda node, origin: self.gone, check_after=0.0
        )

    def _durable(self, event: Event) -> None:
        with self.arrived:
            self.durable.append(event.id)
            self.arrived.notify_all()

    def live_copy(self, event: Event) -> None:
        self.engine.deliver(event, commit=self.held.hold(event, "a/1"))

    def stored_copy(self, event: Event) -> None:
        self.engine.deliver(event, commit=self.held.behind(event))

    def wait_durable(self, count: int) -> list[int]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.durable) >= count, 5)
        time.sleep(0.05)  # and nothing more
        return list(self.durable)


def test_durable_subscriptions_get_live_copies_once_committed_in_arrival_order_others_at_once() -> None:
    a, b = _engine(1), NodeB()
    events = [a.fire("plant", "reading") for _ in range(4)]
    for event in events:
        b.live_copy(event)
    assert b.live == [e.id for e in events] and b.durable == []
    b.held.stored([events[2].id, events[1].id])  # the first not yet: nothing goes
    assert b.wait_durable(0) == [] and b.held.held == 4
    b.held.stored([events[0].id])
    assert b.wait_durable(3) == [e.id for e in events[:3]]
    b.held.stored([events[3].id, events[3].id])  # a second notice changes nothing
    assert b.wait_durable(4) == [e.id for e in events]
    assert b.held.held == 0


def test_a_copy_sent_after_the_commit_releases_a_held_one_and_a_new_stored_event_waits_behind() -> None:
    a, b = _engine(1), NodeB()
    held, later = a.fire("plant", "reading"), a.fire("plant", "reading")
    b.live_copy(held)
    b.stored_copy(later)  # committed, from the outbox after an outage: behind the held one
    assert b.wait_durable(0) == []
    b.held.stored([held.id])  # the outbox's copy of ``held`` arrived (a duplicate otherwise)
    assert b.wait_durable(2) == [held.id, later.id]
    alone = a.fire("plant", "reading")
    b.stored_copy(alone)  # nothing held: delivered as stored, at once
    assert b.durable[-1] == alone.id


def test_a_rejected_event_never_reaches_durable_subscriptions_and_does_not_hold_up_the_next() -> None:
    a, b = _engine(1), NodeB()
    rejected, kept = a.fire("plant", "reading"), a.fire("plant", "reading")
    b.live_copy(rejected)
    b.live_copy(kept)
    b.held.stored([kept.id])
    b.held.rejected([rejected.id])
    assert b.wait_durable(1) == [kept.id]
    assert b.live == [rejected.id, kept.id]


def test_a_missed_notice_is_made_up_for_by_history_and_a_dead_nodes_uncommitted_event_fails() -> None:
    a, b = _engine(1), NodeB()
    stored, never, next_one = (a.fire("plant", "reading") for _ in range(3))
    for event in (stored, never, next_one):
        b.live_copy(event)
    b.stored_ids.add(stored.id)
    b.held.stored([next_one.id])
    b.held.sweep()  # ``stored`` is in history; ``never`` is not, and its node is alive: it waits
    assert b.wait_durable(1) == [stored.id]
    assert b.held.released_from_history == 1 and b.held.held == 2
    b.gone = True  # the process that fired it is gone: it will never be stored
    b.held.sweep()
    assert b.wait_durable(2) == [stored.id, next_one.id]
    assert b.held.never_stored == 1 and b.held.held == 0
