"""Fixtures of the cluster tests: a PostgreSQL schema of the test's own, the RabbitMQ URL.

Other helpers' tests use the same PostgreSQL and RabbitMQ at the same time: every
schema, exchange and queue a test makes has a unique name and is removed after it.
Set and unreachable: the tests fail, they are not skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from node_processes import migrated_schema

from linkserver.testing_proxy import TcpProxy

RABBITMQ_URL = os.environ.get("LINKSERVER_TEST_RABBITMQ_URL")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose connections live in a schema of the test's own, at head and empty
    (tests/node_processes.py: a pool's, emptied after)."""
    with migrated_schema("lscluster") as url:
        yield url


@pytest.fixture
def rabbitmq_url() -> str:
    if not RABBITMQ_URL:
        pytest.skip("LINKSERVER_TEST_RABBITMQ_URL is not set")
    return RABBITMQ_URL


@pytest.fixture
def cluster(tmp_path: Any, postgres_url: str, rabbitmq_url: str) -> Iterator[Callable[..., Any]]:
    """``cluster(name, **Node options)``: a Node (tests/cluster/cluster_helpers.py) of this test's
    cluster, not started. After the test every node is killed, and the exchange and the queues
    the nodes declared are deleted."""
    from cluster_helpers import Node, delete_broker_objects, queues_in

    exchange = f"lstest.cluster.{uuid.uuid4().hex[:10]}"
    made: list[Node] = []

    def make(name: str, **options: Any) -> Node:
        options.setdefault("amqp_url", rabbitmq_url)
        options.setdefault("database_url", postgres_url)
        node = Node(tmp_path, name, exchange=exchange, **options)
        made.append(node)
        return node

    yield make
    for node in made:
        node.kill()
    delete_broker_objects(rabbitmq_url, exchange, {q for node in made for q in queues_in(node.log())})


@pytest.fixture
def proxies() -> Iterator[Callable[[str, int], TcpProxy]]:
    """``proxies(url, default port)``: a TCP proxy to a service (``.url_for(url)`` goes through
    it; ``set_available(False)`` cuts it), closed after the test."""
    made: list[TcpProxy] = []

    def make(url: str, port: int) -> TcpProxy:
        proxy = TcpProxy.for_url(url, port)
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.close()
