"""History shows a record's fields in its format's order on every database (PostgreSQL's JSONB
keeps keys by length: ``unit, value, quantity`` for the shipped ``measurement``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from node_processes import migrated_schema

from linkserver import LinkServer
from linkserver.history.base import HistoryQuery
from linkserver.loading import ServerConfig, load_all
from linkserver.server.access import in_field_order

POSTGRES_URL = os.environ.get("LINKSERVER_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LinkServer]:
    _, catalog = load_all()
    if request.param == "postgresql":
        if not POSTGRES_URL:
            pytest.skip("LINKSERVER_TEST_POSTGRES_URL is not set")
        with (
            migrated_schema("lsorder") as url,
            LinkServer(ServerConfig.default(data_dir=tmp_path, database_url=url), catalog) as s,
        ):
            yield s
    else:
        with LinkServer(ServerConfig.default(data_dir=tmp_path), catalog) as s:
            yield s


def test_history_and_get_show_the_fields_in_their_format_s_order(server: LinkServer) -> None:
    server.engine.add_context("devices.p1")
    fired = server.fire(
        "devices.p1", "measurement", [{"quantity": "t", "value": 3.5, "unit": "C"}], durable=True
    )
    page = server.access.query(HistoryQuery(masks=("devices.p1",), names=("measurement",)), None)
    assert [list(e.record) for e in page.events] == [["quantity", "value", "unit"]]
    assert list(server.access.get(fired.id, None).record) == ["quantity", "value", "unit"]
    assert page.events[0].marshal()["data"] == [{"quantity": "t", "value": 3.5, "unit": "C"}]


def test_keys_a_format_does_not_name_follow_its_fields() -> None:
    records = [{"b": 2, "x": 0, "a": 1}, {"a": 1}, {}]
    in_field_order(records, ("a", "b"))
    assert [list(r) for r in records] == [["a", "b", "x"], ["a"], []]
