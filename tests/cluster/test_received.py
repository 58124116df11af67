"""What a node does with each message of the cluster exchange, without a broker: the receiving
side of an unstarted Cluster fed by hand (``receiver.received(body, origin, type)``, as its consumer
calls it): other nodes' events, their live copies held for durable subscriptions, commit
notices, duplicates, and messages that are neither (logged, counted)."""

from __future__ import annotations

import json
import logging

import pytest

from linkserver.core.catalog import Catalog, ContextSpec, DefinitionSet
from linkserver.core.definitions import EventDefinition
from linkserver.core.events import Event
from linkserver.history.memory import MemoryHistoryStore
from linkserver.loading.cluster import ClusterSection
from linkserver.server.cluster import Cluster
from linkserver.server.cluster_wire import LIVE, NOTICE, encode_event
from linkserver.server.engine import Engine

A = "a/1"  # node A's process, as its messages' app_id say


def _engine(node_id: int) -> Engine:
    definitions = DefinitionSet(
        [EventDefinition(name="reading", persistent=True), EventDefinition(name="tick", persistent=False)]
    )
    engine = Engine.from_catalog(
        Catalog(contexts=[ContextSpec(path="plant", definitions=definitions)]),
        node_id=node_id,
        history=MemoryHistoryStore(),
    )
    engine.history.start()
    return engine


class NodeB:
    """An unstarted node B with a durable and a non-durable subscription to everything."""

    def __init__(self) -> None:
        self.engine = _engine(2)
        settings = ClusterSection(url="amqp://guest:guest@127.0.0.1:1/", node_name="b")
        self.cluster = Cluster(self.engine, self.engine.history, settings, node_id=2)
        self.live: list[int] = []
        self._durable: list[int] = []
        self.engine.listen("**", "*", lambda e: self._durable.append(e.id), durable=True)
        self.engine.listen("**", "*", lambda e: self.live.append(e.id))

    def received(self, event: Event, kind: str | None) -> None:
        self.cluster.receiver.received(encode_event(event), A, kind)

    def notice(self, committed: list[int], rejected: list[int]) -> None:
        self.cluster.receiver.received(json.dumps([committed, rejected]).encode(), A, NOTICE)

    def durable(self) -> list[int]:
        self.engine._after_commit.close()  # delivers what was scheduled for durable subscriptions
        return list(self._durable)

    def metric(self, name: str) -> float:
        for family in self.cluster.metrics():
            if family.name == f"linkserver_{name}":
                return float(family.samples[0].value)
        raise AssertionError(f"no metric {name}")


def test_a_live_copy_waits_for_its_notice_a_stored_copy_releases_one_a_new_stored_event_does_not_wait() -> (
    None
):
    a, b = _engine(1), NodeB()
    held, replayed, plain, tick = (a.fire("plant", n) for n in ("reading", "reading", "reading", "tick"))
    b.received(held, LIVE)
    b.received(tick, None)  # not persistent: everybody at once
    assert b.live == [held.id, tick.id] and b.durable() == [tick.id]
    b.received(replayed, LIVE)
    b.received(replayed, None)  # its copy from the outbox (stored): a duplicate that releases it ...
    assert b.durable() == [tick.id]  # ... behind ``held``, which waits for its notice
    assert b.metric("cluster_held") == 2
    b.notice([held.id], [])
    assert b.durable() == [tick.id, held.id, replayed.id]
    b.received(plain, None)  # stored, nothing held: at once
    assert b.durable() == [tick.id, held.id, replayed.id, plain.id]
    assert b.live == [held.id, tick.id, replayed.id, plain.id]  # each once
    assert b.cluster.stats.duplicates == 1 and b.metric("cluster_held") == 0


def test_an_event_its_node_gave_up_on_never_reaches_durable_subscriptions(
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = _engine(1), NodeB()
    gone, kept = a.fire("plant", "reading"), a.fire("plant", "reading")
    b.received(gone, LIVE)
    b.received(kept, LIVE)
    with caplog.at_level(logging.WARNING, logger="linkserver.cluster"):
        b.notice([kept.id], [gone.id])
    assert b.durable() == [kept.id] and b.live == [gone.id, kept.id]
    assert "their node gave up on storing them" in caplog.text


@pytest.mark.parametrize(
    ("body", "kind", "said"),
    [
        (b"not json", None, "is not an event"),
        (b"[1, 2]", None, "is not an event"),
        (b"{", NOTICE, "commit notice on the cluster exchange is unreadable"),
        (b'["x", []]', NOTICE, "commit notice on the cluster exchange is unreadable"),
    ],
)
def test_a_message_that_is_no_event_and_no_notice_is_logged_counted_and_dropped(
    body: bytes, kind: str | None, said: str, caplog: pytest.LogCaptureFixture
) -> None:
    b = NodeB()
    with caplog.at_level(logging.WARNING, logger="linkserver.cluster"):
        b.cluster.receiver.received(body, A, kind)
    assert b.metric("cluster_unreadable") == 1
    assert said in caplog.text
    assert b.live == [] and b.durable() == []
