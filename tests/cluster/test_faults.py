"""Faults under a stream of events: RabbitMQ or PostgreSQL out of reach of one node, a node
killed. Nothing confirmed is lost and the nodes recover without a restart.

The shared RabbitMQ and PostgreSQL keep running (other tests use them): a TCP proxy
(linkserver/testing_proxy.py) between one node and the service is cut instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from cluster_helpers import Firer, Node, start

from linkserver.testing_proxy import TcpProxy


def test_rabbitmq_out_of_reach_of_the_firing_node_and_then_of_the_receiving_one_loses_nothing(
    cluster: Callable[..., Node], proxies: Callable[[str, int], TcpProxy], rabbitmq_url: str
) -> None:
    to_a, to_b = proxies(rabbitmq_url, 5672), proxies(rabbitmq_url, 5672)
    a = cluster("a", amqp_url=to_a.url_for(rabbitmq_url))
    b = cluster("b", amqp_url=to_b.url_for(rabbitmq_url))
    start(a, b)
    on_b = b.subscribe("plant.line1", "reading")
    firer = Firer(a)
    firer.wait_for(20)
    to_a.set_available(False)  # a cannot publish: its events wait in the outbox
    firer.wait_for(len(firer.confirmed) + 30)
    to_a.set_available(True)
    firer.wait_for(len(firer.confirmed) + 20)
    to_b.set_available(False)  # b cannot receive: its queue keeps what a publishes
    firer.wait_for(len(firer.confirmed) + 30)
    to_b.set_available(True)
    firer.wait_for(len(firer.confirmed) + 20)
    confirmed = firer.stop()
    got = on_b.wait_for(lambda ids: set(confirmed) <= set(ids), timeout=60)
    assert set(confirmed) <= set(got), f"lost {len(set(confirmed) - set(got))} of {len(confirmed)}"
    assert len(got) == len(set(got))  # no duplicates after the redeliveries
    assert got == sorted(got)  # one firer: its order, also across the outages
    assert firer.refused == 0  # firing never waited on the broker
    assert "events wait in the outbox" in a.log()  # the outages were real
    assert "broker not ready" in b.log()


def test_a_node_killed_mid_stream_loses_nothing_it_confirmed_and_the_others_go_on(
    cluster: Callable[..., Node], proxies: Callable[[str, int], TcpProxy], rabbitmq_url: str
) -> None:
    to_a = proxies(rabbitmq_url, 5672)
    a, b, c = cluster("a", amqp_url=to_a.url_for(rabbitmq_url)), cluster("b"), cluster("c")
    start(a, b, c)
    on_b, on_c = b.subscribe("plant.line1", "reading"), c.subscribe("plant.line1", "reading")
    firer = Firer(a, pause=0.0)
    firer.wait_for(30)
    to_a.set_available(False)  # from now on a's events stay in its outbox for sure
    firer.wait_for(len(firer.confirmed) + 30)
    a.kill()  # SIGKILL, with committed events it never published
    confirmed = firer.stop()
    # a's lease runs out (2 s, and as long again of grace): b or c adopts a's outbox
    for sub in (on_b, on_c):
        got = sub.wait_for(lambda ids: set(confirmed) <= set(ids), timeout=60)
        assert set(confirmed) <= set(got), f"lost {len(set(confirmed) - set(got))} of {len(confirmed)}"
        assert len(got) == len(set(got))
    assert "this node publishes the" in b.log() + c.log()  # adopted, not published by a
    later = b.fire("plant.line2", "reading", {"seq": 1})
    on_c2 = c.subscribe("plant.line2", "reading", resume_from=later - 1)
    assert later in on_c2.wait_for(lambda ids: later in ids)


def test_postgresql_out_of_reach_of_the_firing_node_loses_nothing_it_confirmed(
    cluster: Callable[..., Node], proxies: Callable[[str, int], TcpProxy], postgres_url: str
) -> None:
    to_db = proxies(postgres_url, 5432)
    a = cluster("a", database_url=to_db.url_for(postgres_url))
    b = cluster("b")
    start(a, b)
    on_b = b.subscribe("plant.line1", "reading")
    firer = Firer(a)
    firer.wait_for(30)
    to_db.set_available(False)  # a's commits fail and are retried; its durable fires are refused
    time.sleep(4)
    to_db.set_available(True)
    firer.wait_for(len(firer.confirmed) + 30)
    confirmed = firer.stop()
    stored = b.history_ids("plant.line1", "reading")
    assert set(confirmed) <= set(stored)
    # everything a stored (confirmed or not) reaches b once, in a's order
    time.sleep(1)
    stored = b.history_ids("plant.line1", "reading")
    got = on_b.wait_for(lambda ids: set(stored) <= set(ids), timeout=60)
    assert set(stored) <= set(got), f"lost {len(set(stored) - set(got))} of {len(stored)}"
    assert len(got) == len(set(got)) and got == sorted(got)
    assert "history write failed" in a.log()  # the outage was real
    later = a.fire("plant.line2", "reading", {"seq": 1})  # a works on without a restart
    assert later in b.history_ids("plant.line2", "reading")


def test_a_node_away_longer_than_queue_expires_replays_what_it_missed_from_history(
    cluster: Callable[..., Node], proxies: Callable[[str, int], TcpProxy], rabbitmq_url: str
) -> None:
    to_b = proxies(rabbitmq_url, 5672)
    a = cluster("a")
    b = cluster("b", amqp_url=to_b.url_for(rabbitmq_url), queue_expires="1s")
    start(a, b)
    on_b = b.subscribe("plant.line1", "reading")
    firer = Firer(a)
    firer.wait_for(20)
    to_b.set_available(False)  # b's queue is unused from now on: RabbitMQ removes it after 1 s
    firer.wait_for(len(firer.confirmed) + 150)  # well over a second of events b's queue never gets
    to_b.set_available(True)
    firer.wait_for(len(firer.confirmed) + 20)
    confirmed = firer.stop()
    got = on_b.wait_for(lambda ids: set(confirmed) <= set(ids), timeout=90)
    assert set(confirmed) <= set(got), f"lost {len(set(confirmed) - set(got))} of {len(confirmed)}"
    assert len(got) == len(set(got))  # the replay and the new queue overlap: no duplicates
    assert "was removed by RabbitMQ while this node was away" in b.log()
    metrics = httpx.get(f"{b.url}/metrics", headers=b.headers, timeout=10).text
    assert "linkserver_cluster_queues_lost_total 1.0" in metrics
