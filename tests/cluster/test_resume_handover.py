"""A subscriber resuming on one node gets each event once, in history's order, however late the
cluster's bus brings this node its live copy of an event another node fired and committed.

In process, without sockets: one node's session protocol over a memory history. An event "fired
on another node" is what the bus hands this node: stored already (the shared history has it),
delivered here through ``Engine.deliver`` when the bus gets to it, which is after the other
node's commit and, on a loaded machine, seconds later.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from linkserver.core.events import SEQUENCE_BITS, Event, first_id_at
from linkserver.core.permissions import Grants, Principal
from linkserver.loading.config import ServerConfig
from linkserver.loading.contexts import load_contexts
from linkserver.net.gateway import Gateway
from linkserver.net.protocol import Limits, Session
from linkserver.server.app import LinkServer

HERE = Path(__file__).resolve().parent
OBSERVER = Principal(name="op", grants=Grants({"**": "observer"}))


@pytest.fixture
def node(tmp_path: Path) -> Iterator[LinkServer]:
    config = ServerConfig.default(tmp_path / "data", database_url="memory://")
    server = LinkServer(config, load_contexts([HERE.parents[1] / "contexts", HERE / "contexts"])).start()
    yield server
    server.stop()


def fired_elsewhere(node: LinkServer, count: int, seconds_ago: float, *, by: int = 7) -> list[Event]:
    """``count`` readings of plant.line1 node ``by`` fired ``seconds_ago`` (a millisecond apart),
    committed in the shared history; nobody here has been offered them yet."""
    definition = node.tree.get("plant.line1").definitions["reading"]
    created = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    events = [
        Event(
            first_id_at(created + timedelta(milliseconds=i)) | (by << SEQUENCE_BITS),
            "plant.line1",
            "reading",
            definition.level,
            created + timedelta(milliseconds=i),
            created + timedelta(days=1),
            "op",
            None,
            ({"seq": i, "at": None},),
            (),
            definition.category,
        )
        for i in range(count)
    ]
    for event in events:
        node.history.append(event, checked=True)
    node.history.flush(10)
    return events


def subscribe(session: Session, resume_from: int) -> None:
    session.receive(
        json.dumps(
            {
                "type": "subscribe",
                "ref": 1,
                "mask": "plant.line1",
                "event": "reading",
                "resume_from": resume_from,
            }
        )
    )


def sent_ids(session: Session) -> list[int]:
    """Replay to its end and take everything the session has to send: the ids pushed."""
    messages: list[dict[str, Any]] = []
    while True:
        while session.wants_pump:
            session.pump()
            messages += session.take(1000)
        batch = session.take(1000)
        if not batch and not session.wants_pump:
            break
        messages += batch
    return [m["event"]["id"] for m in messages if m["type"] == "event"]


@pytest.mark.parametrize("seconds_ago", [0.0, 5.0, 50.0])
def test_a_live_copy_that_comes_while_the_history_is_replayed_is_not_sent_again(
    node: LinkServer, seconds_ago: float
) -> None:
    # The other node fired and committed these before the subscriber moved here; this node's
    # bus consumer, behind, delivers them only once the subscription exists.
    events = fired_elsewhere(node, 5, seconds_ago)
    session = Session(Gateway(node), OBSERVER, Limits(replay_page=2))
    subscribe(session, resume_from=events[0].id)
    for event in events[1:]:
        node.engine.deliver(event)
    assert sent_ids(session) == [e.id for e in events[1:]]


def test_a_live_copy_that_comes_after_the_replay_is_not_sent_again(node: LinkServer) -> None:
    events = fired_elsewhere(node, 4, 0.0)
    session = Session(Gateway(node), OBSERVER, Limits(replay_page=2))
    subscribe(session, resume_from=events[0].id)
    assert sent_ids(session) == [e.id for e in events[1:]]  # from history
    for event in events[1:]:  # the bus catches up: copies of what was replayed
        node.engine.deliver(event)
    [later] = fired_elsewhere(node, 1, 0.0, by=8)
    node.engine.deliver(later)
    assert sent_ids(session) == [later.id]
