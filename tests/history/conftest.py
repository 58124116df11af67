"""History fixtures: one ``store`` per backend (memory, a SQLite file, PostgreSQL).

PostgreSQL comes from ``LINKSERVER_TEST_POSTGRES_URL``. Unset: its tests are
skipped. Set but unreachable: its tests fail. Each PostgreSQL test runs in a
schema of its own, dropped afterwards, so runs never see each other's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from history_helpers import BACKENDS, EventMaker
from node_processes import fresh_schema

from linkserver.history.base import HistoryStore
from linkserver.history.memory import MemoryHistoryStore
from linkserver.history.sql import SqlHistoryStore


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose connections live in a fresh schema (tests/node_processes.py), dropped after."""
    with fresh_schema("lstest") as url:
        yield url


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> Callable[[str], str]:
    """``database_url(kind)``: a fresh SQLite file or PostgreSQL schema."""

    def make(kind: str) -> str:
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / 'data' / 'history.sqlite3'}"
        if kind == "postgresql":
            return request.getfixturevalue("postgres_url")
        raise ValueError(kind)

    return make


@pytest.fixture
def make_store(database_url: Callable[[str], str]) -> Iterator[Callable[..., HistoryStore]]:
    """``make_store(kind, **options)``: a started store; stopped after the test."""
    made: list[HistoryStore] = []

    def make(kind: str, **options: Any) -> HistoryStore:
        store = MemoryHistoryStore() if kind == "memory" else SqlHistoryStore(database_url(kind), **options)
        store.start()
        made.append(store)
        return store

    yield make
    for store in made:
        store.stop()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store(backend: str, make_store: Callable[..., HistoryStore]) -> HistoryStore:
    return make_store(backend)


@pytest.fixture
def make_event() -> EventMaker:
    return EventMaker()
