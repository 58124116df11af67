"""Fixtures of the several-nodes tests: a fresh PostgreSQL schema per test, nodes started in it
(tests/node_processes.py: unset URL skips, unreachable fails)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from node_processes import migrated_schema
from nodes_helpers import CONTEXTS, Node

from linkserver.loading.config import ServerConfig
from linkserver.loading.contexts import load_contexts
from linkserver.server.app import LinkServer

pytestmark = pytest.mark.postgres


@pytest.fixture
def shared_url() -> Iterator[str]:
    """A URL whose connections live in a schema of the test's own, at head and empty
    (tests/node_processes.py: a pool's, emptied after)."""
    with migrated_schema("lsnodes") as url:
        yield url


@pytest.fixture
def start_nodes(shared_url: str, tmp_path: Path) -> Iterator[Callable[..., list[Node]]]:
    """``start_nodes(n, extra="")``: n ``linkserver serve`` processes on the schema, serving."""
    started: list[Node] = []

    def start(count: int, extra: str = "") -> list[Node]:
        first = len(started)
        # The first one migrates the schema alone; the others start together.
        nodes = [Node(tmp_path / f"node{first + 1}", shared_url, first + 1, extra).wait_serving()]
        nodes += [
            Node(tmp_path / f"node{first + i + 1}", shared_url, first + i + 1, extra) for i in range(1, count)
        ]
        started.extend(nodes)
        return [node.wait_serving() for node in nodes]

    yield start
    for node in started:
        node.stop()


@pytest.fixture
def make_node(shared_url: str, tmp_path: Path) -> Iterator[Callable[[int], LinkServer]]:
    """``make_node(node_id)``: a LinkServer in this process on the schema, stopped after the test."""
    made: list[LinkServer] = []

    def make(node_id: int) -> LinkServer:
        config = ServerConfig.default(tmp_path / f"node{node_id}", database_url=shared_url, node_id=node_id)
        server = LinkServer(config, load_contexts([CONTEXTS])).start()
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()
