"""The FailureTable contract (the ``login_failures`` table), run against memory, SQLite and
PostgreSQL; and the back-off of linkserver/net/throttle.py shared through it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from linkserver.history.base import HistoryStore
from linkserver.history.failures import FailureCount
from linkserver.net.throttle import Throttle, ThrottleRule

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_counts_are_kept_per_rule_and_key(store: HistoryStore) -> None:
    table = store.login_failures
    assert table.get("user", "alice") is None
    table.put("user", "alice", FailureCount(failures=1, last=T0, locked_until=T0))
    table.put("address", "alice", FailureCount(failures=7, last=T0, locked_until=T0 + timedelta(seconds=4)))
    table.put("user", "alice", FailureCount(failures=2, last=T0 + timedelta(seconds=1), locked_until=T0))
    assert table.get("user", "alice") == FailureCount(
        failures=2, last=T0 + timedelta(seconds=1), locked_until=T0
    )
    assert table.get("address", "alice") is not None
    table.forget("user", "alice")
    assert table.get("user", "alice") is None and table.get("address", "alice") is not None
    assert table.forget_before(T0 + timedelta(seconds=4)) == 0  # locked until then
    assert table.forget_before(T0 + timedelta(seconds=5)) == 1
    assert table.get("address", "alice") is None


def test_a_guesser_spread_over_two_nodes_is_locked_as_on_one(
    backend: str, make_store: Callable[..., HistoryStore]
) -> None:
    if backend == "memory":
        pytest.skip("a memory store is its own database")
    now = [T0.timestamp()]
    rule = ThrottleRule(free=3, first_delay=2.0)
    first, second = make_store(backend), make_store(backend)
    on_a = Throttle(rule, clock=lambda: now[0], table=first.login_failures, name="user")
    on_b = Throttle(rule, clock=lambda: now[0], table=second.login_failures, name="user")
    assert on_a.failed("alice") == 0 and on_b.failed("alice") == 0
    assert on_a.failures("alice") == 2
    assert on_b.failed("alice") == 2.0  # the third failure of the two nodes together
    assert on_a.retry_after("alice") == 2.0
    now[0] += 2
    assert on_b.retry_after("alice") == 0
    on_a.succeeded("alice")
    assert on_b.failures("alice") == 0
