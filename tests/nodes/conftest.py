"""Fixtures of the several-nodes tests: a fresh PostgreSQL schema per test, nodes started in it.

PostgreSQL comes from ``LINKSERVER_TEST_POSTGRES_URL``. Unset: these tests are skipped. Set but
unreachable: they fail. Other helpers' tests use the same server at the same time, so each test
has a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from nodes_helpers import POSTGRES_URL, Node
from sqlalchemy import create_engine, text

pytestmark = pytest.mark.postgres


@pytest.fixture
def shared_url() -> Iterator[str]:
    """A URL whose connections live in a fresh schema; the schema is dropped afterwards."""
    if not POSTGRES_URL:
        pytest.skip("LINKSERVER_TEST_POSTGRES_URL is not set")
    schema = f"lsnodes_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        separator = "&" if "?" in POSTGRES_URL else "?"
        yield f"{POSTGRES_URL}{separator}options={quote(f'-csearch_path={schema}')}"
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


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
