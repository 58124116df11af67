"""The outbox table's delete (SQLite and PostgreSQL): only the bridge's own rows on its own
node go, and the depth drops by the rows deleted, not by the ids asked for."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from node_processes import fresh_schema
from sqlalchemy import insert, select

from linkserver.history.schema import bridge_outbox
from linkserver.history.sql import SqlHistoryStore


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[SqlHistoryStore]:
    if request.param == "sqlite":
        made = SqlHistoryStore(f"sqlite:///{tmp_path / 'history.sqlite3'}")
        made.start()
        yield made
        made.stop()
        return
    with fresh_schema("lsoutbox") as url:
        made = SqlHistoryStore(url)
        made.start()
        yield made
        made.stop()


def test_delete_takes_only_its_own_rows_and_counts_what_it_deleted(store: SqlHistoryStore) -> None:
    rows = [("a", 1, i) for i in range(1, 1201)] + [("a", 2, 5), ("b", 1, 5)]
    with store.engine.begin() as conn:
        conn.execute(insert(bridge_outbox), [{"bridge": b, "node": n, "event_id": i} for b, n, i in rows])
    outbox = store.outbox("a", 1)
    outbox.open()
    assert outbox.depth == 1200
    outbox.delete([*range(1, 1101), 5000])  # 5000: not there (deleted before, or never written)
    assert outbox.depth == 100
    outbox.delete([])
    with store.engine.connect() as conn:
        columns = bridge_outbox.c
        left = set(conn.execute(select(columns.bridge, columns.node, columns.event_id)))
    assert left == {("a", 1, i) for i in range(1101, 1201)} | {("a", 2, 5), ("b", 1, 5)}
    assert [event.id for event in outbox.page(0, 10)] == []  # orphans (no events): deleted as met
