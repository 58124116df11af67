"""Persistent events go to the other nodes live, before their commit (docs/cluster.md, "How an
event travels"): seen on another node while the firing node's commit is held, never twice when
the outbox publishes them again, and in order when the live path is off during a backlog.

A's commits are held by a lock on the shared PostgreSQL's ``events`` table (EXCLUSIVE mode:
reads go through, every INSERT waits), taken by the test on a connection of its own.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from cluster_helpers import Firer, Node, start
from sqlalchemy import create_engine, text

from linkserver.core.events import node_of
from linkserver.testing_proxy import TcpProxy


@contextlib.contextmanager
def commits_held(database_url: str) -> Iterator[None]:
    """No node commits an event while this is open; each commit goes through once it closes."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            conn.execute(text("LOCK TABLE events IN EXCLUSIVE MODE"))
            yield
            conn.rollback()
    finally:
        engine.dispose()


def eventually(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.05)


def test_a_persistent_event_reaches_another_node_before_its_commit_and_only_once(
    cluster: Callable[..., Node], postgres_url: str
) -> None:
    a, b = cluster("a"), cluster("b")
    start(a, b)
    on_b = b.subscribe("plant.line1", "reading")
    with commits_held(postgres_url):
        fired = [a.fire("plant.line1", "reading", {"seq": seq}, durable=False) for seq in range(5)]
        got = on_b.wait_for(lambda ids: set(fired) <= set(ids), timeout=10)
        assert got == fired  # live, in firing order
        assert not set(fired) & set(b.history_ids("plant.line1", "reading"))  # none stored yet
    eventually(lambda: set(fired) <= set(b.history_ids("plant.line1", "reading")), "the commits")
    # After the commit the rows go without a second publish: no copy reaches b again.
    eventually(lambda: a.metric("cluster_outbox_depth") == 0, "a's outbox empty")
    time.sleep(0.5)
    assert on_b.ids() == fired
    assert b.metric("cluster_duplicates_total") == 0
    assert a.metric("cluster_resent_total") == 0


def test_an_event_published_live_and_again_from_its_outbox_row_reaches_each_subscriber_once(
    cluster: Callable[..., Node], postgres_url: str
) -> None:
    a, b, c = cluster("a"), cluster("b"), cluster("c")
    start(a, b, c)
    on_b, on_c = b.subscribe("plant.line1", "reading"), c.subscribe("plant.line1", "reading")
    items = [{"context": "plant.line1", "event": "reading", "data": {"seq": seq}} for seq in range(30)]
    fired = a.fire_batch(items)
    for sub in (on_b, on_c):
        assert sub.wait_for(lambda ids: len(ids) >= len(fired)) == fired
    eventually(lambda: a.metric("cluster_outbox_depth") == 0, "a's outbox empty")
    # What a crash of a between the commit and the delete of the rows leaves: the rows of
    # events whose live copies RabbitMQ has. Then a dies; b or c adopts its outbox.
    engine = create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO bridge_outbox (bridge, node, event_id) VALUES ('~cluster', :node, :id)"),
                [{"node": node_of(event_id), "id": event_id} for event_id in fired],
            )
    finally:
        engine.dispose()
    a.kill()
    eventually(lambda: "this node publishes the" in b.log() + c.log(), "the adoption", 60)
    for node in (b, c):  # each got the second copies and dropped them
        eventually(
            lambda node=node: node.metric("cluster_duplicates_total") >= len(fired), f"{node.name}'s copies"
        )
    assert on_b.ids() == fired and on_c.ids() == fired


def test_order_holds_when_the_live_path_is_off_during_a_backlog_and_live_resumes_after_it(
    cluster: Callable[..., Node],
    proxies: Callable[[str, int], TcpProxy],
    rabbitmq_url: str,
    postgres_url: str,
) -> None:
    to_a = proxies(rabbitmq_url, 5672)
    a = cluster("a", amqp_url=to_a.url_for(rabbitmq_url), buffer=20)
    b = cluster("b")
    start(a, b)
    on_b = b.subscribe("plant.line1", "reading")
    firer = Firer(a)
    firer.wait_for(20)  # live
    to_a.set_available(False)  # held for their commits, then (past 20 in memory) in the table only
    firer.wait_for(len(firer.confirmed) + 60)
    to_a.set_available(True)  # the backlog drains while the firer goes on
    firer.wait_for(len(firer.confirmed) + 60)
    confirmed = firer.stop()
    got = on_b.wait_for(lambda ids: set(confirmed) <= set(ids), timeout=60)
    assert set(confirmed) <= set(got), f"lost {len(set(confirmed) - set(got))} of {len(confirmed)}"
    assert len(got) == len(set(got)), "duplicates"
    assert got == sorted(got), "one firer's events out of order"
    assert "further events wait in the outbox table" in a.log()  # the backlog was real
    # The backlog gone, persistent events go live again: one arrives while its commit is held.
    eventually(lambda: a.metric("cluster_outbox_depth") == 0, "a's outbox empty")
    with commits_held(postgres_url):
        late = a.fire("plant.line1", "reading", {"seq": -1}, durable=False)
        assert late in on_b.wait_for(lambda ids: late in ids, timeout=10)
