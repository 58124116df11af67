"""A durable subscription (``durable=True``) gets committed events only, on every node: another
node's persistent event, which comes live before its commit (test_live.py), reaches it once the
firing node's commit notice says it is stored (docs/cluster.md, "What is guaranteed"), and never
when that node dies before the commit. Non-durable subscriptions get it at once as before.

A's commits are held by a lock on the shared ``events`` table, as in test_live.py; each node with
``recorder`` runs tests/cluster/durable_recorder.py, a durable and a non-durable subscription of
its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cluster_helpers import Node, start
from durable_recorder import recorded
from sqlalchemy import create_engine, text
from test_live import commits_held, eventually

from linkserver.testing_proxy import TcpProxy


def test_a_durable_subscription_on_another_node_gets_persistent_events_once_committed_in_order(
    cluster: Callable[..., Node], postgres_url: str
) -> None:
    a, b = cluster("a"), cluster("b", recorder=True)
    start(a, b)
    with commits_held(postgres_url):
        fired = [a.fire("plant.line1", "reading", {"seq": seq}, durable=False) for seq in range(5)]
        eventually(lambda: recorded(b.recorded, "live") == fired, "the live copies on b", 10)
        time.sleep(1.5)  # past the held events' first look into history (they are not there)
        assert recorded(b.recorded, "durable") == []
        assert b.metric("cluster_held") == 5
    eventually(lambda: recorded(b.recorded, "durable") == fired, "b's durable deliveries after the commits")
    later = [a.fire("plant.line1", "reading", {"seq": seq}) for seq in range(5, 10)]
    eventually(lambda: recorded(b.recorded, "durable") == fired + later, "the later ones")
    time.sleep(0.5)
    assert recorded(b.recorded, "durable") == fired + later  # once each
    assert recorded(b.recorded, "live") == fired + later
    assert b.metric("cluster_held") == 0
    assert b.metric("cluster_never_stored_total") == 0
    assert b.metric("cluster_held_from_history_total") == 0  # each released by a's commit notice


def _terminate_blocked_by_me(conn: object) -> int:
    """End the backends waiting for this connection's lock (a killed node's commit in flight)."""
    rows = conn.execute(  # type: ignore[attr-defined]
        text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"
        )
    ).fetchall()
    return len(rows)


def test_an_event_whose_node_is_killed_before_its_commit_never_reaches_durable_subscriptions(
    cluster: Callable[..., Node], postgres_url: str
) -> None:
    a, b = cluster("a"), cluster("b", recorder=True)
    start(a, b)
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            conn.execute(text("LOCK TABLE events IN EXCLUSIVE MODE"))
            lost = a.fire("plant.line1", "reading", {"seq": 0}, durable=False)
            eventually(lambda: recorded(b.recorded, "live") == [lost], "the live copy on b", 10)
            a.kill()  # SIGKILL, its commit waiting for the lock
            eventually(lambda: _terminate_blocked_by_me(conn) >= 1, "a's commit ended", 10)
            conn.rollback()
    finally:
        engine.dispose()
    assert lost not in b.history_ids("plant.line1", "reading")
    a.start()  # the same node name: it claims the node id back
    after = a.fire("plant.line1", "reading", {"seq": 1})
    eventually(lambda: recorded(b.recorded, "durable") == [after], "the next event, durable, on b", 30)
    assert recorded(b.recorded, "live") == [lost, after]
    # Given up once the process that fired it is gone: at once when the restart took its node id
    # back, else when the old lease and its grace ran out (2 s each here).
    eventually(lambda: b.metric("cluster_never_stored_total") == 1, "b giving the lost event up", 30)
    assert b.metric("cluster_held") == 0
    assert recorded(b.recorded, "durable") == [after]
    assert "gone without committing it: durable subscriptions here do not get it" in b.log()


def test_a_lost_commit_notice_is_made_up_for_from_history(
    cluster: Callable[..., Node],
    proxies: Callable[[str, int], TcpProxy],
    rabbitmq_url: str,
    postgres_url: str,
) -> None:
    to_a = proxies(rabbitmq_url, 5672)
    a = cluster("a", amqp_url=to_a.url_for(rabbitmq_url))
    b = cluster("b", recorder=True)
    start(a, b)
    with commits_held(postgres_url):
        fired = a.fire("plant.line1", "reading", {"seq": 0}, durable=False)
        eventually(lambda: recorded(b.recorded, "live") == [fired], "the live copy on b", 10)
        eventually(lambda: a.metric("cluster_published_total") >= 1, "RabbitMQ's confirm to a", 10)
        to_a.set_available(False)  # a's commit notice cannot go out
        eventually(lambda: a.metric("cluster_connected") == 0, "a cut off from RabbitMQ", 30)
    eventually(lambda: fired in b.history_ids("plant.line1", "reading"), "a's commit")
    eventually(lambda: recorded(b.recorded, "durable") == [fired], "b's durable delivery", 15)
    assert b.metric("cluster_held_from_history_total") == 1
    to_a.set_available(True)
    after = a.fire("plant.line1", "reading", {"seq": 1})
    eventually(lambda: recorded(b.recorded, "durable") == [fired, after], "the next one", 30)
    time.sleep(0.5)
    assert recorded(b.recorded, "live") == [fired, after]
