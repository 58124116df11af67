"""The DeviceOwnerTable contract (the ``device_owners`` table), run against memory, SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from linkserver.history.base import HistoryStore
from linkserver.history.device_owners import OwnerRow

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def row(path: str, controller: str = "plc", principal: str | None = None, node: int = 1) -> OwnerRow:
    return OwnerRow(path=path, controller=controller, principal=principal, node=node, claimed=T0)


def test_put_is_a_compare_and_set(store: HistoryStore) -> None:
    table = store.device_owners
    assert table.get("devices.a") is None
    assert table.put(row("devices.a"), None)
    assert not table.put(row("devices.a", "other"), None)  # there is a row now
    current = table.get("devices.a")
    assert current == row("devices.a")
    assert not table.put(row("devices.a", "other"), row("devices.a", node=2))  # not the row there
    assert table.put(row("devices.a", "remote", "operator", node=2), current)
    assert table.get("devices.a") == row("devices.a", "remote", "operator", node=2)
    assert table.put(row("devices.a", "remote", None, node=2), row("devices.a", "remote", "operator", node=2))


def test_under_delete_and_delete_node(store: HistoryStore) -> None:
    table = store.device_owners
    for path, node in (("devices.a", 1), ("devices.a.x", 1), ("devices.ab", 2), ("devices.b", 2), ("vms", 1)):
        assert table.put(row(path, node=node), None)
    assert [r.path for r in table.under("devices.a")] == ["devices.a", "devices.a.x"]
    assert [r.path for r in table.under("devices")] == ["devices.a", "devices.a.x", "devices.ab", "devices.b"]
    assert len(table.under("")) == 5
    assert table.delete(["devices.a", "devices.b"], node=1) == 1  # devices.b was claimed on node 2
    assert table.get("devices.a") is None and table.get("devices.b") is not None
    assert table.delete_node(2) == 2
    assert [r.path for r in table.under("")] == ["devices.a.x", "vms"]


def test_the_table_is_shared_by_stores_on_one_database(
    backend: str, make_store: Callable[..., HistoryStore]
) -> None:
    if backend == "memory":
        pytest.skip("a memory store is its own database")
    first, second = make_store(backend), make_store(backend)
    assert first.device_owners.put(row("devices.shared"), None)
    assert not second.device_owners.put(row("devices.shared", node=2), None)
    assert second.device_owners.get("devices.shared") == row("devices.shared")
