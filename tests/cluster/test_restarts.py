"""Real restarts under a stream of events: the cluster's RabbitMQ stopped and started again, its
PostgreSQL restarted (``pg_ctl restart -m fast``: every connection terminated). Both are
instances of the test's own (tests/service_instances.py), so the machine's shared services
keep running for the other tests. Nothing confirmed is lost, nothing arrives twice, one
firer's order holds, and the nodes recover without a restart of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from cluster_helpers import Firer, Node, start
from service_instances import PrivatePostgres, PrivateRabbitMQ, private_postgres, private_rabbitmq


@pytest.fixture
def own_rabbitmq() -> Iterator[PrivateRabbitMQ]:
    with private_rabbitmq() as broker:
        yield broker


@pytest.fixture
def own_postgres() -> Iterator[PrivatePostgres]:
    with private_postgres() as database:
        yield database


def assert_all_once_in_order(confirmed: list[int], got: list[int]) -> None:
    assert set(confirmed) <= set(got), f"lost {len(set(confirmed) - set(got))} of {len(confirmed)}"
    assert len(got) == len(set(got)), "duplicates"
    assert got == sorted(got), "one firer's events out of order"


def test_rabbitmq_restarted_mid_stream_loses_nothing_confirmed_and_the_nodes_recover(
    cluster: Callable[..., Node], own_rabbitmq: PrivateRabbitMQ
) -> None:
    a, b = cluster("a", amqp_url=own_rabbitmq.url), cluster("b", amqp_url=own_rabbitmq.url)
    start(a, b)
    on_b = b.subscribe("plant.line1", "reading")
    firer = Firer(a)
    firer.wait_for(30)
    own_rabbitmq.restart()  # durable queues and persistent messages survive; connections do not
    firer.wait_for(len(firer.confirmed) + 50)
    confirmed = firer.stop()
    got = on_b.wait_for(lambda ids: set(confirmed) <= set(ids), timeout=90)
    assert_all_once_in_order(confirmed, got)
    assert firer.refused == 0  # firing never waited on the broker
    for node in (a, b):  # the outage was real, and each node came back by itself
        assert "broker forced connection closure" in node.log()
        assert "connected to RabbitMQ at" in node.log() and "again" in node.log()
    later = a.fire("plant.line2", "reading", {"seq": 1})  # both nodes go on without a restart
    on_a = a.subscribe("plant.line2", "reading", resume_from=later - 1)
    assert later in on_a.wait_for(lambda ids: later in ids)
    after = b.subscribe("plant.line2", "reading")
    again = a.fire("plant.line2", "reading", {"seq": 2})
    assert again in after.wait_for(lambda ids: again in ids, timeout=60)


def test_postgresql_restarted_mid_stream_loses_nothing_confirmed_and_the_nodes_recover(
    cluster: Callable[..., Node], own_postgres: PrivatePostgres
) -> None:
    a, b = cluster("a", database_url=own_postgres.url), cluster("b", database_url=own_postgres.url)
    start(a, b)
    on_b = b.subscribe("plant.line1", "reading")
    firer = Firer(a)
    firer.wait_for(30)
    own_postgres.restart()  # every connection of both nodes is terminated
    firer.wait_for(len(firer.confirmed) + 50)
    confirmed = firer.stop()
    stored = b.history_ids("plant.line1", "reading")
    assert set(confirmed) <= set(stored), f"{len(set(confirmed) - set(stored))} confirmed fires not stored"
    got = on_b.wait_for(lambda ids: set(stored) <= set(ids), timeout=90)
    assert_all_once_in_order(stored, got)  # everything stored, confirmed or not, reaches b once
    assert "history writer recovered" in a.log() or "a waiting caller failed" in a.log()  # real outage
    later = b.fire("plant.line2", "reading", {"seq": 1})  # b writes too, without a restart
    assert later in a.history_ids("plant.line2", "reading")
