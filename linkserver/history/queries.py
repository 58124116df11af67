"""History reads in SQL: a query becomes a WHERE clause plus, where SQL cannot
say it, a test in Python; pages are cut by keyset on the event id.

Pagination stays exact with Python tests: rows are fetched in growing chunks
(keyset, never OFFSET) until ``limit + 1`` rows passed every test, so the page
is full whenever more matches exist, ``next_cursor`` is the id of the last
*returned* event, and it is None only when nothing matches after it.

SQLite keeps no statistics, so for it this module chooses between an index on
the context or name terms and walking the table itself (see
:func:`choose_where` for pages, :func:`choose_count_where` for counts).
PostgreSQL's planner decides with its own statistics.

Rows are read with the database's own types (no SQLAlchemy result
processing) and turned into events by :func:`row_reader`; each row says
whether it has acknowledgements, so a page of events nobody acknowledged
costs one statement.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import attrs
from sqlalchemy import BigInteger, Connection, Select, Text, exists, func, select, type_coerce

from linkserver.core.events import Acknowledgement, Event
from linkserver.core.levels import Level
from linkserver.history.base import HistoryQuery
from linkserver.history.codec import UTC, decode_data, from_micros
from linkserver.history.filter_sql import COLUMNS, UNINDEXED, Clause, Columns, masks_clause, translate
from linkserver.history.matching import check_query, compile_masks, id_bounds, masks_test
from linkserver.history.schema import acknowledgements, events

FIRST_CHUNK = 64
MAX_CHUNK = 4096
# A page whose context/name terms select fewer rows than this uses their index (and sorts).
PROBE_ROWS = 5000
# A count uses the context/name index (one table lookup per row in its range, in
# scattered order) only for ranges below this share of the table; a scan reads each
# table page once and costs about as much as looking up a tenth of the rows.
INDEX_SHARE = 16
RowTest = Callable[[str, str], bool]
"""``(context, name) -> keep``: tests that need no data (masks SQL could not say, visibility)."""
RowReader = Callable[[Any], Event]

_LEVELS = tuple(Level)


def _has_acknowledgements() -> Any:
    return exists().where(acknowledgements.c.event_id == events.c.id).label("acked")


def event_columns(dialect: str, acknowledged: Any = None) -> tuple[Any, ...]:
    """The selected columns, in :func:`row_reader`'s order, with the database's own types;
    ``acknowledged`` the column that says whether the event has acknowledgements (by default
    looked up; a reader that never carries them passes ``literal(False)``)."""
    if dialect == "sqlite":
        times: tuple[Any, ...] = (
            type_coerce(events.c.created, BigInteger).label("created"),
            type_coerce(events.c.expires, BigInteger).label("expires"),
        )
    else:
        times = (events.c.created, events.c.expires)  # timestamptz: already datetimes
    return (
        events.c.id,
        events.c.context,
        events.c.name,
        events.c.level,
        *times,
        events.c.author,
        events.c.group,
        # as stored: decoded only for rows that pass the row tests
        type_coerce(events.c.data, Text).label("data"),
        _has_acknowledgements() if acknowledged is None else acknowledged,
        events.c.category,
    )


_COLUMNS = {dialect: event_columns(dialect) for dialect in ("sqlite", "postgresql")}


def row_reader(dialect: str) -> RowReader:
    """``row -> Event`` (without acknowledgements) for rows of :func:`event_columns`."""
    levels = _LEVELS
    if dialect == "sqlite":

        def read_sqlite(row: Any) -> Event:
            expires = row[5]
            return Event(
                row[0],
                row[1],
                row[2],
                levels[row[3]],
                from_micros(row[4]),
                None if expires is None else from_micros(expires),
                row[6],
                row[7],
                decode_data(row[8]),
                category=row[10],
            )

        return read_sqlite

    def utc(moment: datetime | None) -> datetime | None:
        if moment is None or moment.tzinfo is UTC:
            return moment
        return moment.astimezone(UTC)

    def read(row: Any) -> Event:
        return Event(
            row[0],
            row[1],
            row[2],
            levels[row[3]],
            utc(row[4]),
            utc(row[5]),
            row[6],
            row[7],
            decode_data(row[8]),
            category=row[10],
        )

    return read


_READERS = {dialect: row_reader(dialect) for dialect in _COLUMNS}


@attrs.frozen
class Plan:
    where: tuple[Clause, ...]
    row_test: RowTest | None
    event_test: Callable[[Event], bool] | None
    newest_first: bool
    limit: int
    dialect: str = "sqlite"
    # SQLite only: the context/name conditions alone, to size them (see choose_where).
    probe: tuple[Clause, ...] = ()
    query: HistoryQuery | None = None
    # Pages: an index on the probe terms might not give id order (see _may_sort).
    may_sort: bool = False
    # Counts: one index on the probe terms answers every condition by itself.
    covered: bool = False
    # Page SELECTs made for this plan, by (scan, limit): the same statement object again
    # keeps SQLAlchemy's memoized cache key, so a repeated query is neither rebuilt nor re-keyed.
    statements: dict[tuple[bool, int], Select[Any]] = attrs.field(factory=dict, eq=False, repr=False)

    @property
    def exact(self) -> bool:
        return self.row_test is None and self.event_test is None


PLAN_CACHE_SIZE = 256
_plans: dict[tuple[HistoryQuery, str | None, str, bool], Plan] = {}


def plan(query: HistoryQuery, dialect: str, *, for_count: bool = False) -> Plan:
    """Split ``query`` into SQL conditions and the Python tests SQL cannot express;
    ``for_count``: the plan is for :func:`count` (which sizes more often than pages).

    Plans are kept per query (up to PLAN_CACHE_SIZE; a query's permission predicate
    ``visible`` is not part of its equality and is added to the kept plan each time):
    the same query again, a console polling its first page, costs no new clauses.
    A query with a cursor (a later page, asked once) is planned but not kept, so
    walking a long result does not push the first pages' plans out.
    """
    # The filter's text too: equal ASTs may differ in type (``== true`` and ``== 1``).
    key = (query, query.filter.text if query.filter is not None else None, dialect, for_count)
    found = _plans.get(key)
    if found is None:
        check_query(query)
        found = _plan(attrs.evolve(query, visible=None), dialect, for_count)
        if query.cursor is None:
            if len(_plans) >= PLAN_CACHE_SIZE:
                _plans.clear()
            _plans[key] = found
    if query.visible is None:
        return found
    visible = _memoized(query.visible)
    first = found.row_test
    row_test = (
        visible if first is None else (lambda context, name: first(context, name) and visible(context, name))
    )
    return attrs.evolve(found, row_test=row_test, query=query)


def _plan(query: HistoryQuery, dialect: str, for_count: bool) -> Plan:
    """:func:`plan` for a query without ``visible``."""
    where, masks_exact, event_test = _conditions(query, dialect, COLUMNS)
    row_tests: list[RowTest] = []
    if not masks_exact:
        in_masks = masks_test(compile_masks(query.masks))
        row_tests.append(lambda context, name: in_masks(context))
    row_test = row_tests[0] if row_tests else None
    probe: tuple[Clause, ...] = ()
    may_sort = covered = False
    if dialect == "sqlite" and (for_count or _may_sort(query)):
        probe = tuple(_conditions(query, dialect, COLUMNS, only_paths=True)[0])
        may_sort = bool(probe) and not for_count
        covered = bool(probe) and for_count and _covered(query, where, probe)
    return Plan(
        tuple(where),
        row_test,
        event_test,
        query.newest_first,
        query.limit,
        dialect,
        probe,
        query,
        may_sort=may_sort,
        covered=covered,
    )


def _scan_where(plan: Plan) -> tuple[Clause, ...]:
    """The plan's WHERE with the context/name terms hidden from SQLite's index chooser."""
    assert plan.query is not None
    return tuple(_conditions(plan.query, plan.dialect, UNINDEXED)[0])


def _memoized(visible: Callable[[str, str], bool]) -> RowTest:
    """``visible`` asked once per (context, name) in one query: permission checks are not free."""
    seen: dict[tuple[str, str], bool] = {}

    def test(context: str, name: str) -> bool:
        key = (context, name)
        found = seen.get(key)
        if found is None:
            found = seen[key] = bool(visible(context, name))
        return found

    return test


def _covered(query: HistoryQuery, where: list[Clause], probe: tuple[Clause, ...]) -> bool:
    """Whether the conditions are only the mask's or only the names' (plus id bounds):
    then the index on that column, which holds the id too, counts them alone."""
    bounds = sum(bound is not None for bound in id_bounds(query))
    return len(probe) == 1 and len(where) == 1 + bounds


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


def _count_up_to(conn: Connection, where: Sequence[Clause], most: int) -> int:
    limited = select(1).where(*where).limit(most).subquery()
    return conn.execute(select(func.count()).select_from(limited)).scalar_one()


def choose_where(conn: Connection, plan: Plan) -> tuple[Clause, ...]:
    """The WHERE to page with. SQLite has no statistics to choose between walking the
    id order (stopping after ``limit`` matches) and an index on context or name (which
    visits every row in its range, then sorts). Count the range, up to PROBE_ROWS:
    below that, the index is cheap; above it, hide those terms from the index chooser.
    """
    if not plan.may_sort or _count_up_to(conn, plan.probe, PROBE_ROWS) < PROBE_ROWS:
        return plan.where
    return _scan_where(plan)


def choose_count_where(conn: Connection, plan: Plan) -> tuple[tuple[Clause, ...], Columns]:
    """The WHERE to count with, and the columns to group by.

    An index on the context or name terms costs one table lookup per row in its
    range, in scattered order (about 2 us a row, more when the pages are not
    cached); a scan of the table about 0.2 us a row. So: the index when
    it answers everything itself (``covered``) or its range is under 1/INDEX_SHARE of
    the table, else a scan with those terms hidden. Sizing costs an index-only count
    of the range (up to PROBE_ROWS, then up to the share) and one of the table. A scan
    groups by hidden columns too: SQLite would otherwise walk the context index for
    its order, with a table lookup per row.
    """
    if not plan.probe or (plan.covered and plan.exact):
        return plan.where, COLUMNS
    if _count_up_to(conn, plan.probe, PROBE_ROWS) < PROBE_ROWS:
        return plan.where, COLUMNS
    share = conn.execute(select(func.count()).select_from(events)).scalar_one() // INDEX_SHARE
    if _count_up_to(conn, plan.probe, share) < share:
        return plan.where, COLUMNS
    return _scan_where(plan), UNINDEXED


def _select(where: Sequence[Clause], plan: Plan, extra: Sequence[Clause] = ()) -> Select[Any]:
    order = events.c.id.desc() if plan.newest_first else events.c.id.asc()
    return select(*_COLUMNS[plan.dialect]).where(*where, *extra).order_by(order)


def _page_select(plan: Plan, where: tuple[Clause, ...], limit: int) -> Select[Any]:
    """The plan's SELECT of ``limit`` rows with ``where`` (the plan's own or its scan variant)."""
    key = (where is not plan.where, limit)
    statement = plan.statements.get(key)
    if statement is None:
        if len(plan.statements) >= 8:
            plan.statements.clear()
        statement = plan.statements[key] = _select(where, plan).limit(limit)
    return statement


def fetch_page(conn: Connection, plan: Plan) -> tuple[list[Event], bool]:
    """Up to ``limit`` matching events in order (with acknowledgements) and whether more exist."""
    limit = plan.limit
    where = choose_where(conn, plan)
    read = _READERS[plan.dialect]
    if plan.exact:
        rows = conn.execute(_page_select(plan, where, limit + 1)).all()
        kept = rows[:limit]
        return _with_acknowledgements(conn, [read(row) for row in kept], kept), len(rows) > limit
    row_test, event_test = plan.row_test, plan.event_test
    found: list[Event] = []
    found_rows: list[Any] = []
    extra: list[Clause] = []
    chunk = min(max(limit + 1, FIRST_CHUNK), MAX_CHUNK)
    while True:
        statement = (
            _page_select(plan, where, chunk) if not extra else _select(where, plan, extra).limit(chunk)
        )
        rows = conn.execute(statement).all()
        for row in rows:
            if row_test is not None and not row_test(row[1], row[2]):
                continue
            event = read(row)
            if event_test is not None and not event_test(event):
                continue
            found.append(event)
            found_rows.append(row)
            if len(found) > limit:
                return _with_acknowledgements(conn, found[:limit], found_rows), True
        if len(rows) < chunk:
            return _with_acknowledgements(conn, found, found_rows), False
        last = rows[-1][0]
        extra = [events.c.id < last if plan.newest_first else events.c.id > last]
        chunk = min(chunk * 2, MAX_CHUNK)


def count(conn: Connection, plan: Plan) -> int:
    where, cols = choose_count_where(conn, plan)
    if plan.exact:
        return conn.execute(select(func.count()).select_from(events).where(*where)).scalar_one()
    if plan.event_test is None:
        # Only (context, name) tests: count per pair in SQL, test each pair once.
        row_test = plan.row_test
        assert row_test is not None
        pairs = conn.execute(
            select(events.c.context, events.c.name, func.count())
            .where(*where)
            .group_by(cols["context"], cols["name"])
        ).all()
        return sum(n for context, name, n in pairs if row_test(context, name))
    total = 0
    last: int | None = None
    scan = attrs.evolve(plan, newest_first=False)
    read = _READERS[plan.dialect]
    while True:
        extra = [] if last is None else [events.c.id > last]
        rows = conn.execute(_select(where, scan, extra).limit(MAX_CHUNK)).all()
        for row in rows:
            if plan.row_test is not None and not plan.row_test(row[1], row[2]):
                continue
            if plan.event_test(read(row)):
                total += 1
        if len(rows) < MAX_CHUNK:
            return total
        last = rows[-1][0]


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
        found[row.event_id].append(Acknowledgement(time=row.time, user=row.user, text=row.text))
    return found


def _with_acknowledgements(conn: Connection, found: list[Event], rows: Sequence[Any]) -> list[Event]:
    """``found`` with the acknowledgements of those whose row (same position) has any."""
    acked = [event.id for event, row in zip(found, rows, strict=False) if row[9]]
    if not acked:
        return found
    acks = acknowledgements_of(conn, acked)
    return [
        event.evolve(acknowledgements=tuple(acks[event.id])) if event.id in acks else event for event in found
    ]


def get(conn: Connection, event_id: int, dialect: str) -> Event | None:
    row = conn.execute(select(*_COLUMNS[dialect]).where(events.c.id == event_id)).first()
    if row is None:
        return None
    return _with_acknowledgements(conn, [_READERS[dialect](row)], [row])[0]
