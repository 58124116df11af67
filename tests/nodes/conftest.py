"""Fixtures of the several-nodes tests: a fresh PostgreSQL schema per test, nodes started in it
(tests/node_processes.py: unset URL skips, unreachable fails)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from node_processes import fresh_schema
from nodes_helpers import Node

pytestmark = pytest.mark.postgres


@pytest.fixture
def shared_url() -> Iterator[str]:
    """A URL whose connections live in a fresh schema; the schema is dropped afterwards."""
    with fresh_schema("lsnodes") as url:
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
