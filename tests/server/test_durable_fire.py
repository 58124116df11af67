"""Durable fires through the engine on a real SQLite history: committed at once, in order."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

from linkserver.core.catalog import Catalog
from linkserver.core.definitions import EventDefinition
from linkserver.core.formats import Field, TableFormat
from linkserver.history.base import HistoryQuery
from linkserver.history.sql import SqlHistoryStore
from linkserver.loading.config import ServerConfig
from linkserver.server.app import LinkServer
from linkserver.testing import engine_with

READING = TableFormat(fields=[Field(name="value", type="float")])


def sqlite_engine(tmp_path: Path, **options: object):  # type: ignore[no-untyped-def]
    store = SqlHistoryStore(f"sqlite:///{tmp_path / 'history.sqlite3'}", **options)  # type: ignore[arg-type]
    engine = engine_with(
        {"devices": []},
        templates={"device": [EventDefinition(name="measurement", persistent=True, format=READING)]},
        child_templates={"devices": "device"},
        history=store,
    )
    engine.add_context("devices.plc7")
    return engine, store


def test_a_durable_fire_is_committed_at_once_not_after_the_writers_linger(tmp_path: Path) -> None:
    engine, store = sqlite_engine(tmp_path, flush_interval=timedelta(seconds=30))
    try:
        started = time.monotonic()
        fired = [engine.fire("devices.plc7", "measurement", {"value": i}, durable=True) for i in range(50)]
        assert time.monotonic() - started < 10  # one linger alone would be 30 s
        page = store.query(HistoryQuery(newest_first=False, limit=100))
        assert [event.id for event in page.events] == [event.id for event in fired]
        assert page.events[7].data == ({"value": 7.0},)  # encoded by the committer, read back the same
    finally:
        engine.close()
        store.stop()


def test_durable_fires_from_many_threads_all_land_in_few_transactions(tmp_path: Path) -> None:
    engine, store = sqlite_engine(tmp_path, flush_interval=timedelta(seconds=30))
    errors: list[BaseException] = []

    def fire() -> None:
        try:
            for i in range(40):
                engine.fire("devices.plc7", "measurement", {"value": i}, durable=True)
        except BaseException as exc:
            errors.append(exc)

    try:
        threads = [threading.Thread(target=fire) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors
        assert store.count(HistoryQuery()) == 240
    finally:
        engine.close()
        store.stop()


def test_the_configured_durability_reaches_the_history_store(tmp_path: Path) -> None:
    config = ServerConfig.default(tmp_path / "data", history_durability="fsync")
    server = LinkServer(config, Catalog(templates={}, contexts=[]))
    store = server.open_history(config)
    assert isinstance(store, SqlHistoryStore) and store.durability == "fsync"
