"""Node ids claimed from the database: distinct on one database, reused once given back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cluster_helpers import delete_broker_objects

from linkserver.core.events import NODE_BITS, SEQUENCE_BITS
from linkserver.loading import ServerConfig, load_all
from linkserver.loading.cluster import ClusterSection
from linkserver.server.app import LinkServer


def node_of(event_id: int) -> int:
    return (event_id >> SEQUENCE_BITS) & ((1 << NODE_BITS) - 1)


@pytest.fixture
def exchange(rabbitmq_url: str) -> Iterator[str]:
    name = f"lstest.ids.{uuid.uuid4().hex[:10]}"
    yield name
    delete_broker_objects(rabbitmq_url, name)  # the nodes delete their queues when they stop


def make(tmp_path: Path, name: str, database_url: str, rabbitmq_url: str, exchange: str) -> LinkServer:
    cluster = ClusterSection(url=rabbitmq_url, node_name=name, exchange=exchange, lease=timedelta(seconds=5))
    config = ServerConfig.default(
        data_dir=tmp_path / name, database_url=database_url, node_id=9, sections={"cluster": cluster}
    )
    return LinkServer(config, load_all()[1])


def test_nodes_on_one_database_claim_distinct_ids_and_fire_with_them(
    tmp_path: Path, postgres_url: str, rabbitmq_url: str, exchange: str
) -> None:
    a = make(tmp_path, "a", postgres_url, rabbitmq_url, exchange).start()
    b = make(tmp_path, "b", postgres_url, rabbitmq_url, exchange).start()
    try:
        assert {a.node_id, b.node_id} == {0, 1}  # claimed, not the configured 9
        for server in (a, b):
            event = server.fire("", "serverStarted", {"version": "x", "node_id": server.node_id})
            assert node_of(event.id) == server.node_id
        rows = {row.name: row.id for row in a.history.node_leases().all()}
        assert rows == {"a": a.node_id, "b": b.node_id}
        held = b.node_id
        b.stop()
        c = make(tmp_path, "c", postgres_url, rabbitmq_url, exchange).start()  # b gave its id back
        try:
            assert c.node_id == held
        finally:
            c.stop()
    finally:
        a.stop()
        b.stop()


def test_without_a_cluster_section_the_configured_id_is_used(tmp_path: Path) -> None:
    config = ServerConfig.default(data_dir=tmp_path, node_id=9)
    with LinkServer(config, load_all()[1]) as server:
        assert server.node_id == 9 and server.node_lease is None
        assert node_of(server.fire("", "serverStarted", {"version": "x", "node_id": 9}).id) == 9
