"""History reads in SQL: a query becomes a WHERE clause plus, where SQL cannot
say it, a test in Python; pages are cut by keyset on the event id.

Pagination stays exact with Python tests: rows are fetched in growing chunks
(keyset, never OFFSET) until ``limit + 1`` rows passed every test, so the page
is full whenever more matches exist, ``next_cursor`` is the id of the last
*returned* event, and it is None only when nothing matches after it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from sqlalchemy import Connection, Select, Text, exists, func, select, type_coerce

from linkserver.core.events import Acknowledgement, Event
from linkserver.history.base import HistoryQuery
from linkserver.history.filter_sql import COLUMNS, UNINDEXED, Clause, Columns, masks_clause, translate
from linkserver.history.matching import check_query, compile_masks, id_bounds, masks_test
from linkserver.history.schema import ack_from_row, acknowledgements, event_from_row, events

FIRST_CHUNK = 64
MAX_CHUNK = 4096
RowTest = Callable[[str, str], bool]
"""``(context, name) -> keep``: tests that need no data (masks SQL could not say, visibility)."""

# data is selected as it is stored and decoded only for rows that pass the row tests.
EVENT_COLUMNS = (
    *(column for column in events.columns if column.name not in ("data", "requires_ack")),
    type_coerce(events.c.data, Text).label("data"),
)


@attrs.frozen
class Plan:
    where: tuple[Clause, ...]
    row_test: RowTest | None
    event_test: Callable[[Event], bool] | None
    newest_first: bool
    limit: int
    # SQLite only: the context/name conditions alone, to size them (see choose_where),
    # and the same WHERE with those terms hidden from the index chooser.
    probe: tuple[Clause, ...] = ()
    scan_where: tuple[Clause, ...] = ()

    @property
    def exact(self) -> bool:
        return self.row_test is None and self.event_test is None


def plan(query: HistoryQuery, dialect: str) -> Plan:
    """Split ``query`` into SQL conditions and the Python tests SQL cannot express."""
    check_query(query)
    where, masks_exact, event_test = _conditions(query, dialect, COLUMNS)
    row_tests: list[RowTest] = []
    if not masks_exact:
        in_masks = masks_test(compile_masks(query.masks))
        row_tests.append(lambda context, name: in_masks(context))
    if query.visible is not None:
        visible = query.visible
        row_tests.append(lambda context, name: bool(visible(context, name)))
    row_test = None
    if len(row_tests) == 1:
        row_test = row_tests[0]
    elif row_tests:
        first, second = row_tests
        row_test = lambda context, name: first(context, name) and second(context, name)  # noqa: E731
    probe: tuple[Clause, ...] = ()
    scan_where: tuple[Clause, ...] = ()
    if dialect == "sqlite" and _may_sort(query):
        probe = tuple(_conditions(query, dialect, COLUMNS, only_paths=True)[0])
        scan_where = tuple(_conditions(query, dialect, UNINDEXED)[0])
    return Plan(tuple(where), row_test, event_test, query.newest_first, query.limit, probe, scan_where)


def _may_sort(query: HistoryQuery) -> bool:
    """Whether SQLite might pick a context or name index that cannot give id order."""
    masks = compile_masks(query.masks)
    ranges = len(masks) > 1 or any(not mask.is_exact and mask.segments != ("**",) for mask in masks)
    return ranges or len(query.names) > 1 or query.filter is not None


def _conditions(
    query: HistoryQuery, dialect: str, cols: Columns, *, only_paths: bool = False
) -> tuple[list[Clause], bool, Callable[[Event], bool] | None]:
    """``(where, masks_exact, event_test)``; ``only_paths``: the mask and name terms only."""
    where: list[Clause] = []
    mask_sql, masks_exact = masks_clause(query.masks, cols["context"])
    if mask_sql is not None:
        where.append(mask_sql)
    if query.names:
        where.append(cols["name"].in_(query.names))
    if only_paths:
        return where, masks_exact, None
    if query.min_level is not None:
        where.append(events.c.level >= int(query.min_level))
    if query.max_level is not None:
        where.append(events.c.level <= int(query.max_level))
    low, high = id_bounds(query)
    if low is not None:
        where.append(events.c.id >= low)
    if high is not None:
        where.append(events.c.id < high)
    if query.group is not None:
        where.append(events.c.group == query.group)
    if query.author is not None:
        where.append(events.c.author == query.author)
    if query.acknowledged is not None:
        acked = exists().where(acknowledgements.c.event_id == events.c.id)
        where.append(acked if query.acknowledged else ~acked)
    if query.requires_acknowledgement is not None:
        # The same expression as the partial index's WHERE, so SQLite can use it.
        required = events.c.requires_ack == True  # noqa: E712
        where.append(required if query.requires_acknowledgement else ~required)
    event_test = None
    if query.filter is not None:
        filter_sql, filter_exact = translate(query.filter.ast, dialect, cols)
        if filter_sql is not None:
            where.append(filter_sql)
        if not filter_exact:
            event_test = query.filter.matches
    return where, masks_exact, event_test


PROBE_ROWS = 5000


def choose_where(conn: Connection, plan: Plan) -> tuple[Clause, ...]:
    """The WHERE to page with. SQLite has no statistics to choose between walking the
    id order (stopping after ``limit`` matches) and an index on context or name (which
    visits every row in its range, then sorts). Count the range, up to PROBE_ROWS:
    below that, the index is cheap; above it, hide those terms from the index chooser.
    """
    if not plan.probe:
        return plan.where
    probe = select(func.count()).select_from(select(1).where(*plan.probe).limit(PROBE_ROWS).subquery())
    return plan.where if conn.execute(probe).scalar_one() < PROBE_ROWS else plan.scan_where


def _select(where: Sequence[Clause], plan: Plan, extra: Sequence[Clause] = ()) -> Select[Any]:
    order = events.c.id.desc() if plan.newest_first else events.c.id.asc()
    return select(*EVENT_COLUMNS).where(*where, *extra).order_by(order)


def fetch_page(conn: Connection, plan: Plan) -> tuple[list[Event], bool]:
    """Up to ``limit`` matching events in order (with acknowledgements) and whether more exist."""
    limit = plan.limit
    where = choose_where(conn, plan)
    if plan.exact:
        rows = conn.execute(_select(where, plan).limit(limit + 1)).all()
        found = [event_from_row(row) for row in rows[:limit]]
        return with_acknowledgements(conn, found), len(rows) > limit
    row_test, event_test = plan.row_test, plan.event_test
    found = []
    extra: list[Clause] = []
    chunk = min(max(limit + 1, FIRST_CHUNK), MAX_CHUNK)
    while True:
        rows = conn.execute(_select(where, plan, extra).limit(chunk)).all()
        for row in rows:
            if row_test is not None and not row_test(row.context, row.name):
                continue
            event = event_from_row(row)
            if event_test is not None and not event_test(event):
                continue
            found.append(event)
            if len(found) > limit:
                return with_acknowledgements(conn, found[:limit]), True
        if len(rows) < chunk:
            return with_acknowledgements(conn, found), False
        last = rows[-1].id
        extra = [events.c.id < last if plan.newest_first else events.c.id > last]
        chunk = min(chunk * 2, MAX_CHUNK)


def count(conn: Connection, plan: Plan) -> int:
    if plan.exact:
        return conn.execute(select(func.count()).select_from(events).where(*plan.where)).scalar_one()
    if plan.event_test is None:
        # Only (context, name) tests: count per pair in SQL, test each pair once.
        row_test = plan.row_test
        assert row_test is not None
        pairs = conn.execute(
            select(events.c.context, events.c.name, func.count())
            .where(*plan.where)
            .group_by(events.c.context, events.c.name)
        ).all()
        return sum(n for context, name, n in pairs if row_test(context, name))
    total = 0
    last: int | None = None
    scan = attrs.evolve(plan, newest_first=False)
    while True:
        extra = [] if last is None else [events.c.id > last]
        rows = conn.execute(_select(plan.where, scan, extra).limit(MAX_CHUNK)).all()
        for row in rows:
            if plan.row_test is not None and not plan.row_test(row.context, row.name):
                continue
            if plan.event_test(event_from_row(row)):
                total += 1
        if len(rows) < MAX_CHUNK:
            return total
        last = rows[-1].id


def acknowledgements_of(conn: Connection, ids: Sequence[int]) -> dict[int, list[Acknowledgement]]:
    found: dict[int, list[Acknowledgement]] = defaultdict(list)
    if not ids:
        return found
    rows = conn.execute(
        select(acknowledgements)
        .where(acknowledgements.c.event_id.in_(ids))
        .order_by(acknowledgements.c.event_id, acknowledgements.c.time, acknowledgements.c.id)
    )
    for row in rows:
        found[row.event_id].append(ack_from_row(row))
    return found


def with_acknowledgements(conn: Connection, found: list[Event]) -> list[Event]:
    acks = acknowledgements_of(conn, [event.id for event in found])
    if not acks:
        return found
    return [
        attrs.evolve(event, acknowledgements=tuple(acks[event.id])) if event.id in acks else event
        for event in found
    ]


def get(conn: Connection, event_id: int) -> Event | None:
    row = conn.execute(select(*EVENT_COLUMNS).where(events.c.id == event_id)).first()
    if row is None:
        return None
    return event_from_row(row, acknowledgements_of(conn, [event_id]).get(event_id, ()))
