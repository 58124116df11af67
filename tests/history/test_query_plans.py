"""How the SQL store plans reads: which index a count uses on SQLite, which filters
need no Python test, how often a permission predicate is asked, row decoding."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
from history_helpers import SQL_BACKENDS, EventMaker, store_all
from sqlalchemy import event

from linkserver.core.filters import parse_filter
from linkserver.core.levels import Level
from linkserver.history import queries
from linkserver.history.base import HistoryQuery, HistoryStore
from linkserver.history.codec import decode_data, encode_data
from linkserver.history.sql import SqlHistoryStore


def explained_counts(store: SqlHistoryStore, run: Callable[[], Any]) -> list[str]:
    """SQLite's plan for each counting statement (not the sizing probes) that ``run`` executes."""
    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if "count(*)" in statement and "level" in statement:
            statements.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        run()
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    plans = []
    raw = store.engine.raw_connection()
    try:
        for statement, parameters in statements:
            rows = raw.driver_connection.execute(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()
            plans.append(" / ".join(row[3] for row in rows))
    finally:
        raw.close()
    return plans


@pytest.fixture
def sqlite_store(make_store: Callable[..., HistoryStore], make_event: EventMaker) -> SqlHistoryStore:
    """12,000 events: about 11,000 spread over 100 devices, 100 in ``alerts.a``, the rest in ``users.*``."""
    store = make_store("sqlite")
    assert isinstance(store, SqlHistoryStore)
    made = []
    for i in range(12_000):
        if i % 120 == 0:
            context = "alerts.a"
        elif i % 13 == 0:
            context = f"users.u{i % 9}"
        else:
            context = f"devices.d{i % 100}"
        made.append(make_event(context, "measurement", Level(i % 6), data=({"value": i % 1000 / 10},)))
    store_all(store, made)
    return store


def test_a_count_over_most_of_the_table_scans_it_instead_of_walking_the_context_index(
    sqlite_store: SqlHistoryStore,
) -> None:
    query = HistoryQuery(masks=("devices.*",), min_level=Level.WARNING)
    counted: list[int] = []
    [plan] = explained_counts(sqlite_store, lambda: counted.append(sqlite_store.count(query)))
    assert counted == [sum(1 for i in range(12_000) if i % 120 and i % 13 and i % 6 >= 3)]
    assert plan.startswith("SCAN events") and "INDEX" not in plan, plan
    # A user's count groups by (context, name): still one pass over the table.
    user = HistoryQuery(masks=("devices.*",), min_level=Level.WARNING, visible=lambda c, n: c != "devices.d1")
    [grouped] = explained_counts(sqlite_store, lambda: sqlite_store.count(user))
    assert grouped.startswith("SCAN events") and "INDEX" not in grouped, grouped


def test_a_count_of_a_small_range_uses_the_context_index(sqlite_store: SqlHistoryStore) -> None:
    query = HistoryQuery(masks=("alerts.*",), min_level=Level.WARNING)
    [plan] = explained_counts(sqlite_store, lambda: sqlite_store.count(query))
    assert "INDEX ix_events_context_id" in plan, plan
    assert sqlite_store.count(query) == sum(1 for i in range(0, 12_000, 120) if i % 6 >= 3)


def test_a_count_the_context_index_answers_alone_uses_it(sqlite_store: SqlHistoryStore) -> None:
    statements: list[str] = []
    event.listen(sqlite_store.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    assert sqlite_store.count(HistoryQuery(masks=("devices.*",))) == sum(
        1 for i in range(12_000) if i % 120 and i % 13
    )
    assert len(statements) == 1  # no sizing: the covering index counts it


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_number_and_string_equality_on_data_need_no_python_test(dialect: str) -> None:
    def exact(expression: str) -> bool:
        return queries.plan(HistoryQuery(filter=parse_filter(expression)), dialect).exact

    for expression in (
        "data.value > 99.5", "data.value != 3", "data.x in [1, 2.5]", "not data.x == 5",
        'data.s == "abc"', 'data.s != "abc"', 'data.s not in ["a", "b"]', "level >= WARNING and data.v < 0",
    ):  # fmt: skip
        assert exact(expression), expression
    for expression in ('data.s > "abc"', f"data.x > {2**53}", "data.rows.a == 1", "data.ok == true"):
        assert not exact(expression), expression


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_a_permission_predicate_is_asked_once_per_context_and_name(
    backend: str, make_store: Callable[..., HistoryStore], make_event: EventMaker
) -> None:
    store = make_store(backend)
    store_all(store, [make_event(f"devices.d{i % 2}", ["a", "b"][i % 3 // 2]) for i in range(300)])
    asked: list[tuple[str, str]] = []

    def visible(context: str, name: str) -> bool:
        asked.append((context, name))
        return context == "devices.d0"

    page = store.query(HistoryQuery(visible=visible, limit=200))
    assert len(page.events) == 150 and page.next_cursor is None
    assert sorted(asked) == sorted(set(asked)) and len(asked) <= 4
    asked.clear()
    assert store.count(HistoryQuery(visible=visible)) == 150
    assert len(asked) <= 4


@pytest.mark.parametrize(
    "data",
    [
        (),
        ({"a": 1, "s": "plain", "f": 1.5, "n": None, "ok": True},),
        ({"s": "a [bracket", "t": 'ends with +00:00"'},),  # look like the full way: still plain strings
        ({"s": "2024-05-01T12:00:00+00:00 is text"},),
        ({"when": datetime(2024, 5, 1, 12, tzinfo=UTC)}, {"rows": ({"a": 1}, {"a": 2})}),
        ({"ünïcode": 'ä "quoted" \\ back'},),
    ],
)
def test_stored_data_reads_back_equal(data: tuple[dict[str, Any], ...]) -> None:
    assert decode_data(encode_data(data)) == data


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_a_kept_plan_applies_each_readers_own_permissions_and_cursor_pages_are_not_kept(
    backend: str, make_store: Callable[..., HistoryStore], make_event: EventMaker
) -> None:
    store = make_store(backend)
    store_all(store, [make_event(f"devices.d{i % 2}", "a") for i in range(40)])

    def sees(context: str) -> Callable[[str, str], bool]:
        return lambda seen, name: seen == context

    # Equal queries (visible is not part of equality) share one kept plan, each its own predicate.
    for context in ("devices.d0", "devices.d1", "devices.d0"):
        page = store.query(HistoryQuery(visible=sees(context), limit=30))
        assert {event.context for event in page.events} == {context} and len(page.events) == 20
    first = HistoryQuery(limit=5)
    page = store.query(first)
    assert page.next_cursor is not None
    kept_first = queries.plan(first, store.engine.dialect.name)  # type: ignore[attr-defined]
    assert queries.plan(first, store.engine.dialect.name) is kept_first  # type: ignore[attr-defined]
    kept = dict(queries._plans)  # noqa: SLF001 - what is tested
    for _ in range(3):  # walking on: each later page planned anew and dropped
        page = store.query(attrs.evolve(first, cursor=page.next_cursor))
    assert dict(queries._plans) == kept  # noqa: SLF001
