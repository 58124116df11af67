"""History fixtures: one ``store`` per backend (memory, a SQLite file, PostgreSQL).

PostgreSQL comes from ``LINKSERVER_TEST_POSTGRES_URL``. Unset: its tests are
skipped. Set but unreachable: its tests fail. Each PostgreSQL test runs in a
schema of its own, so runs never see each other's rows.

A test's database is already at this code's head revision and has no rows: a
copy of a SQLite file migrated once per session, a schema from a pool migrated
once each and emptied after every test (tests/node_processes.py). Migrating
one took 0.1-1 s of each test. The tests of migrations themselves take
``empty_database_url``: a database nothing has migrated.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from history_helpers import BACKENDS, EventMaker
from node_processes import fresh_schema, migrated_schema

from linkserver.history.base import HistoryStore
from linkserver.history.memory import MemoryHistoryStore
from linkserver.history.sql import SqlHistoryStore


@pytest.fixture(scope="session")
def migrated_sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file at head with no rows; tests get copies (never the file itself)."""
    path = tmp_path_factory.mktemp("migrated") / "history.sqlite3"
    store = SqlHistoryStore(f"sqlite:///{path}")
    store.start()
    store.stop()
    assert not Path(f"{path}-wal").exists()  # everything is in the file a copy takes
    return path


@pytest.fixture
def database_url(tmp_path: Path, migrated_sqlite_file: Path) -> Iterator[Callable[[str], str]]:
    """``database_url(kind)``: the test's SQLite file or PostgreSQL schema, at head and empty
    (the same one for every call of the test). Stores made on it must be stopped before the
    test ends (``make_store`` stops its own): the schema is emptied once it does."""
    urls: dict[str, str] = {}
    with contextlib.ExitStack() as stack:

        def make(kind: str) -> str:
            if kind not in urls:
                if kind == "sqlite":
                    path = tmp_path / "data" / "history.sqlite3"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(migrated_sqlite_file, path)
                    urls[kind] = f"sqlite:///{path}"
                elif kind == "postgresql":
                    urls[kind] = stack.enter_context(migrated_schema("lstest"))
                else:
                    raise ValueError(kind)
            return urls[kind]

        yield make


@pytest.fixture
def postgres_url(database_url: Callable[[str], str]) -> str:
    """The test's PostgreSQL schema (as ``database_url("postgresql")``), at head and empty."""
    return database_url("postgresql")


@pytest.fixture
def empty_database_url(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """``empty_database_url(kind)``: a SQLite file or PostgreSQL schema nothing has migrated
    (the same one for every call of the test)."""
    urls: dict[str, str] = {}
    with contextlib.ExitStack() as stack:

        def make(kind: str) -> str:
            if kind not in urls:
                if kind == "sqlite":
                    urls[kind] = f"sqlite:///{tmp_path / 'empty' / 'history.sqlite3'}"
                elif kind == "postgresql":
                    urls[kind] = stack.enter_context(fresh_schema("lstest"))
                else:
                    raise ValueError(kind)
            return urls[kind]

        yield make


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
