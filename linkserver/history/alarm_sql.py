"""The alarm list in SQL (SQLite and PostgreSQL): the batch's upserts and the reads and changes.

The hot path is :meth:`SqlAlarmStore.statements`: a batch's key changes become
multi-row ``INSERT ... ON CONFLICT (key) DO UPDATE`` statements of a few fixed sizes
(exact-size chunks, as the writer cuts its INSERTs, so they stay in the driver's
statement cache), whose ``SET`` says :func:`linkserver.core.alarm_records.apply` in SQL:
a stored alarm that is cleared starts over with the new events (a new id); otherwise
the count adds up, the level follows the policy, the state stays (or ends cleared).
Keys a batch only clears are one ``UPDATE`` each, run with ``executemany``.

Most changes are plain occurrences (events reduced into an alarm, nothing cleared in the
batch): they take a narrower upsert of their own (:func:`_occur_sql`): eleven parameters a
row instead of sixteen (the state and the cleared columns are literals), no ``CASE`` for a
stored cleared alarm (a ``DELETE`` of the keys' cleared alarms goes first, so the upsert
inserts the new one) and no assignment to the id, which on SQLite moves the row. It costs
the database about half of the general upsert per row; the alarm list's rows are the main
cost it adds to the writer (tools/bench/alarms.py, ``alarm_reduction``). On SQLite the
``DELETE`` is left out for the keys the store's own commits left open (checked in the
transaction: :class:`SqlAlarmStore`), and the upsert and the ``DELETE`` are one statement
each per batch, padded with NULL rows to a few fixed sizes: each statement costs the writer
a release of the GIL, which a busy firer can keep for the switch interval.

Lists join each alarm's last event for what filters read besides the alarm's context,
name, level and id (:mod:`linkserver.history.filter_sql` translates the filter with the
alarm's columns for those), and page by alarm id like history pages by event id.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Text, and_, delete, select, type_coerce, update

from linkserver.core.alarm_fold import KeyChange
from linkserver.core.alarm_records import Alarm
from linkserver.core.alarms import AlarmLevel, AlarmState
from linkserver.core.errors import LinkServerError
from linkserver.core.events import Acknowledgement, Event
from linkserver.core.levels import Level
from linkserver.history.alarms import AlarmNotFound, AlarmPage, AlarmQuery, AlarmStore, alarm_test
from linkserver.history.base import HistoryQuery
from linkserver.history.codec import decode_data, micros
from linkserver.history.filter_sql import COLUMNS, masks_clause, translate
from linkserver.history.matching import check_query, decode_cursor, encode_cursor
from linkserver.history.same_commit import Statement
from linkserver.history.schema import alarm_acknowledgements, alarms, events

_COLUMNS = (
    "id",
    "key",
    "context",
    "name",
    "state",
    "level",
    "alarm_level",
    "count",
    "first",
    "last",
    "event_id",
    "auto_clear_at",
    "cleared",
    "cleared_by",
    "cleared_event",
    "cleared_user",
)
UPSERT_COLUMNS = _COLUMNS  # the alarms' columns in the order every upsert here names them
_CHUNKS = (256, 64, 16, 4, 1)
_FRESH = "alarms.state = 'cleared'"
_MAX = {"sqlite": "max", "postgresql": "GREATEST"}
_MARK = {"sqlite": "?", "postgresql": "%s"}
_KEPT = ("context", "name", "alarm_level", "last", "event_id", "auto_clear_at", *_COLUMNS[12:])


def _upsert_sql(dialect: str, rows: int) -> str:
    marks = "(" + ", ".join([_MARK[dialect]] * len(_COLUMNS)) + ")"
    keep_or_new = [f"{c} = CASE WHEN {_FRESH} THEN excluded.{c} ELSE alarms.{c} END" for c in ("id", "first")]
    return (
        f"INSERT INTO alarms ({', '.join(_COLUMNS)}) VALUES {', '.join([marks] * rows)} "
        "ON CONFLICT (key) DO UPDATE SET "
        + ", ".join(
            [
                *keep_or_new,
                f"count = CASE WHEN {_FRESH} THEN excluded.count ELSE alarms.count + excluded.count END",
                f"level = CASE WHEN {_FRESH} OR excluded.alarm_level = 'last' THEN excluded.level "
                f"ELSE {_MAX[dialect]}(alarms.level, excluded.level) END",
                "state = CASE WHEN excluded.state = 'cleared' THEN 'cleared' "
                f"WHEN {_FRESH} THEN 'open' ELSE alarms.state END",
                *(f"{c} = excluded.{c}" for c in _KEPT),
            ]
        )
    )


_OCCUR_VALUES = "({m}, {m}, {m}, {m}, 'open', {m}, {m}, {m}, {m}, {m}, {m}, {m}, NULL, NULL, NULL, NULL)"


def _occur_sql(dialect: str, rows: int) -> str:
    """The upsert of plain occurrences (``_occurrence`` rows): :func:`_upsert_sql` for a change
    that neither resets nor ends cleared, run after :func:`_unclear_sql` removed the keys'
    cleared alarms. So a stored alarm is open or acknowledged (its cleared columns NULL): it
    keeps its id, first and state and adds the count; a missing one is inserted open. No
    ``id`` is assigned on conflict: on SQLite it is the rowid, and assigning it (even to
    itself) moves the row and its index entry, the dearest part of the statement."""
    values = _OCCUR_VALUES.format(m=_MARK[dialect])
    return (
        f"INSERT INTO alarms ({', '.join(_COLUMNS)}) VALUES {', '.join([values] * rows)} "
        "ON CONFLICT (key) DO UPDATE SET " + OCCUR_SET.format(max=_MAX[dialect])
    )


OCCUR_SET = ", ".join(
    [
        "count = alarms.count + excluded.count",
        "level = CASE WHEN excluded.alarm_level = 'last' THEN excluded.level "
        "ELSE {max}(alarms.level, excluded.level) END",
        *(
            f"{c} = excluded.{c}"
            for c in ("context", "name", "alarm_level", "last", "event_id", "auto_clear_at")
        ),
    ]
)


def _unclear_sql(dialect: str, rows: int) -> str:
    """A cleared alarm whose key occurs again is replaced by a new one (apply's ``fresh``):
    deleted here, in the same transaction, so that :func:`_occur_sql` inserts the new one.
    The keys are looked up in the partial index of cleared alarms (migration 0015), a small
    one: SQLite's planner picks the unique key index instead (a descent of it and one of the
    table per key) unless told; PostgreSQL's picks the partial one by itself."""
    marks = ", ".join([_MARK[dialect]] * rows)
    hint = " INDEXED BY ix_alarms_cleared_key" if dialect == "sqlite" else ""
    return f"DELETE FROM alarms{hint} WHERE state = 'cleared' AND key IN ({marks})"  # NULLs pad it


def _occur_padded_sql(rows: int) -> str:
    """SQLite's :func:`_occur_sql` for up to ``rows`` rows: the rows after the batch's are all
    NULL and left out (``WHERE column2 IS NOT NULL``: a row without a key), so one statement of
    a few fixed sizes takes any number of rows. A stored alarm that is cleared is left alone
    (not counted in the rowcount): the store's check sees it (``SqlAlarmStore._open``)."""
    values = "(" + ", ".join(["?"] * _OCCUR_WIDTH) + ")"
    picked = [f"column{i}" for i in range(1, _OCCUR_WIDTH + 1)]
    columns = [*picked[:4], "'open'", *picked[4:], "NULL", "NULL", "NULL", "NULL"]
    return (
        f"INSERT INTO alarms ({', '.join(_COLUMNS)}) SELECT {', '.join(columns)} "
        f"FROM (VALUES {', '.join([values] * rows)}) WHERE column2 IS NOT NULL "
        "ON CONFLICT (key) DO UPDATE SET " + OCCUR_SET.format(max="max") + " WHERE alarms.state <> 'cleared'"
    )


def _replace_sql(dialect: str) -> str:
    """A change whose raises follow a clear in the same batch: the row is replaced."""
    marks = ", ".join([_MARK[dialect]] * len(_COLUMNS))
    return (
        f"INSERT INTO alarms ({', '.join(_COLUMNS)}) VALUES ({marks}) ON CONFLICT (key) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS if c != "key")
    )


def _clear_sql(dialect: str) -> str:
    m = _MARK[dialect]
    return (
        f"UPDATE alarms SET state = 'cleared', cleared = {m}, cleared_by = 'event', cleared_event = {m}, "
        f"cleared_user = NULL, auto_clear_at = NULL WHERE key = {m} AND state <> 'cleared'"
    )


_SQL: dict[tuple[str, str, int], str] = {}


def _sql(kind: str, dialect: str, rows: int = 1) -> str:
    found = _SQL.get((kind, dialect, rows))
    if found is None:
        if kind == "upsert":
            found = _upsert_sql(dialect, rows)
        elif kind == "occur":
            found = _occur_sql(dialect, rows)
        elif kind == "occur_padded":
            found = _occur_padded_sql(rows)
        elif kind == "unclear":
            found = _unclear_sql(dialect, rows)
        elif kind == "replace":
            found = _replace_sql(dialect)
        else:
            found = _clear_sql(dialect)
        _SQL[(kind, dialect, rows)] = found
    return found


def _row(change: KeyChange, when: Callable[[datetime | None], Any]) -> tuple[Any, ...]:
    ends_cleared = change.cleared_id is not None
    return (
        change.first_id,
        change.key,
        change.context,
        change.name,
        AlarmState.CLEARED.value if ends_cleared else AlarmState.OPEN.value,
        change.level,
        change.policy.value,
        change.count,
        when(change.first),
        when(change.last),
        change.last_id,
        when(change.auto_clear_at),
        when(change.cleared) if ends_cleared else None,
        "event" if ends_cleared else None,
        change.cleared_id,
        None,
    )


_OCCUR_WIDTH = 11
_POLICY = {policy: policy.value for policy in AlarmLevel}


def _chunked(found: list[Statement], kind: str, dialect: str, flat: list[Any], rows: int, width: int) -> None:
    """Append ``rows`` rows of ``flat`` parameters as statements of the fixed chunk sizes."""
    start = 0
    for size in _CHUNKS:
        while rows - start >= size:
            found.append((_sql(kind, dialect, size), [flat[start * width : (start + size) * width]]))
            start += size


# SQLite: the sizes a padded statement comes in (powers of two and halfway between: at most a
# third of a statement's rows are padding), up to what SQLite's 32,766 variables allow.
_PADDED = tuple(sorted({*(1 << k for k in range(12)), *(3 << k for k in range(11))}))
_PADDED_ROWS = {"occur_padded": 2048, "unclear": 16384}


def _padded(found: list[Statement], kind: str, flat: list[Any], rows: int, width: int) -> None:
    """Append ``rows`` rows of ``flat`` parameters as few statements as possible: one, padded
    with NULL rows to the next size of ``_PADDED`` (more only past the largest size). On SQLite
    each statement costs the writer a release of the GIL, and taking it back behind a busy
    firer can wait for the switch interval (5 ms): the statements of a batch, not its rows,
    are what slows firing down (tools/bench/alarms.py, ``alarm_reduction``)."""
    largest = _PADDED_ROWS[kind]
    start = 0
    while start < rows:
        take = min(rows - start, largest)
        size = _PADDED[bisect.bisect_left(_PADDED, take)]
        params = flat[start * width : (start + take) * width]
        if size > take:
            params += [None] * ((size - take) * width)
        found.append((_sql(kind, "sqlite", size), [params]))
        start += take


def _sqlite_time(moment: datetime | None) -> int | None:
    return None if moment is None else micros(moment)


def _same(moment: datetime | None) -> datetime | None:
    return moment


class AlarmListMoved(LinkServerError):
    """An alarm this server's writer took for open was cleared by someone else meanwhile."""


_OPEN_KEYS = 200_000  # keys remembered as open (SQLite); past that the memory starts over


class SqlAlarmStore(AlarmStore):
    """``engine()`` gives the history's engine (valid between its start and stop).

    On SQLite the store remembers the keys whose alarm its own commits left open (``_open``):
    an occurrence of one of those needs no ``DELETE`` of a cleared alarm first (the dearest
    part of the batch's statements after the upsert itself). The memory is a guess, checked
    in the transaction: the upsert leaves a cleared alarm alone, and when it changed fewer
    rows than it was given, the check forgets every key and fails the batch, which the
    writer commits again event by event (each then with the ``DELETE``). Only something
    outside this store clears an alarm behind it (another process on the file); its own
    clears, auto-clears and clearing events forget their keys. PostgreSQL (several nodes
    clear each other's alarms) always deletes first.
    """

    def __init__(
        self, engine: Callable[[], Engine], write_lock: Callable[[], contextlib.AbstractContextManager[Any]]
    ) -> None:
        self._engine = engine
        self._write_lock = write_lock  # the history's, for writes besides its writer's
        self._open: set[str] = set()

    @property
    def dialect(self) -> str:
        return str(self._engine().dialect.name)

    def _opened(self, expected: int) -> Callable[[int], None]:
        def check(changed: int) -> None:
            if changed != expected:
                self._open.clear()
                raise AlarmListMoved(
                    f"{expected - changed} alarms of this batch were cleared outside this server "
                    "meanwhile; the batch is written again, event by event"
                )

        return check

    # -- in the events' transaction ---------------------------------------------------

    def statements(self, dialect: str, changes: Sequence[KeyChange]) -> list[Statement]:
        when = _sqlite_time if dialect == "sqlite" else _same
        occurred: list[Any] = []  # flat: eleven parameters per plain occurrence
        upserts: list[tuple[Any, ...]] = []
        replaced: list[Sequence[Any]] = []
        clears: list[Sequence[Any]] = []
        for change in changes:
            if change.count == 0:
                clears.append((when(change.cleared), change.cleared_id, change.key))
            elif change.reset:
                replaced.append(_row(change, when))
            elif change.cleared_id is None:
                auto, first = change.auto_clear, when(change.first)
                # One event in the batch (the common case): its time is the first and the last.
                last = first if change.first_id == change.last_id else when(change.last)
                occurred += (
                    change.first_id,
                    change.key,
                    change.context,
                    change.name,
                    change.level,
                    _POLICY[change.policy],
                    change.count,
                    first,
                    last,
                    change.last_id,
                    None if auto is None else when(change.last + auto),  # type: ignore[operator]
                )
            else:
                upserts.append(_row(change, when))
        found: list[Statement] = []
        occurring = len(occurred) // _OCCUR_WIDTH
        if dialect == "sqlite":
            known = self._open
            keys = [key for key in occurred[1::_OCCUR_WIDTH] if key not in known]
            _padded(found, "unclear", keys, len(keys), 1)
            before = len(found)
            _padded(found, "occur_padded", occurred, occurring, _OCCUR_WIDTH)
            if len(found) == before + 1:  # checked: one statement changed every row or none moved
                found[-1] = (*found[-1], self._opened(occurring))
            elif len(found) > before:  # past the largest size (rare): each statement checked
                for index in range(before, len(found)):
                    sql, params = found[index][:2]
                    found[index] = (
                        sql,
                        params,
                        self._opened(sum(p is not None for p in params[0][1::_OCCUR_WIDTH])),
                    )
        else:  # one simple query (or executemany) per batch: the number of statements costs little
            _chunked(found, "unclear", dialect, occurred[1::_OCCUR_WIDTH], occurring, 1)
            _chunked(found, "occur", dialect, occurred, occurring, _OCCUR_WIDTH)
        _chunked(
            found,
            "upsert",
            dialect,
            list(itertools.chain.from_iterable(upserts)),
            len(upserts),
            len(_COLUMNS),
        )
        if replaced:
            found.append((_sql("replace", dialect), replaced))
        if clears:
            found.append((_sql("clear", dialect), clears))
        return found

    def triggered(self) -> None:
        # The triggers delete a cleared alarm before they raise its key again: what this store
        # remembers as open may have been cleared by them since.
        if self._open:
            self._open.clear()

    def committed(self, changes: Sequence[KeyChange], events: Sequence[Event]) -> None:
        known = self._open
        if len(known) > _OPEN_KEYS:
            known.clear()
        for change in changes:
            if change.cleared_id is None:
                known.add(change.key)
            else:
                known.discard(change.key)

    # -- reads ----------------------------------------------------------------------------

    def _select(self) -> Any:
        return select(
            alarms,
            events.c.created.label("event_created"),
            events.c.level.label("event_level"),
            events.c.author.label("event_author"),
            events.c.group.label("event_group"),
            events.c.category.label("event_category"),
            type_coerce(events.c.data, Text).label("event_data"),
        ).select_from(alarms.outerjoin(events, events.c.id == alarms.c.event_id))

    def _read(self, conn: Any, rows: Sequence[Any]) -> list[Alarm]:
        ids = [row.id for row in rows]
        acks: dict[int, list[Acknowledgement]] = {}
        if ids:
            found = conn.execute(
                select(alarm_acknowledgements)
                .where(alarm_acknowledgements.c.alarm_id.in_(ids))
                .order_by(alarm_acknowledgements.c.time, alarm_acknowledgements.c.id)
            )
            for ack in found:
                acks.setdefault(ack.alarm_id, []).append(
                    Acknowledgement(time=ack.time, user=ack.user, text=ack.text)
                )
        return [_alarm(row, acks.get(row.id, ())) for row in rows]

    def get(self, alarm_id: int) -> Alarm:
        with self._engine().connect() as conn:
            row = conn.execute(self._select().where(alarms.c.id == alarm_id)).first()
            if row is None:
                raise AlarmNotFound(alarm_id)
            return self._read(conn, [row])[0]

    def by_keys(self, keys: Iterable[str]) -> list[Alarm]:
        keys = list(keys)
        found: list[Alarm] = []
        with self._engine().connect() as conn:
            for start in range(0, len(keys), 500):
                rows = conn.execute(self._select().where(alarms.c.key.in_(keys[start : start + 500]))).all()
                found.extend(self._read(conn, rows))
        return found

    def query(self, query: AlarmQuery) -> AlarmPage:
        check_query(HistoryQuery(masks=query.masks, limit=query.limit, cursor=query.cursor))
        dialect = self._engine().dialect.name
        where, exact = _conditions(query, dialect)
        test = None if exact else alarm_test(query)
        order = alarms.c.id.desc() if query.newest_first else alarms.c.id.asc()
        limit = query.limit
        kept: list[Any] = []
        chunk = limit + 1 if exact else max(limit + 1, 64)
        extra: list[Any] = []
        with self._engine().connect() as conn:
            while True:
                rows = conn.execute(self._select().where(*where, *extra).order_by(order).limit(chunk)).all()
                for row in rows:
                    if test is None or test(_alarm(row, ())):
                        kept.append(row)
                if len(kept) > limit or len(rows) < chunk:
                    break
                last = rows[-1].id
                extra = [alarms.c.id < last if query.newest_first else alarms.c.id > last]
                chunk = min(chunk * 2, 4096)
            page = self._read(conn, kept[:limit])
        more = len(kept) > limit
        return AlarmPage(tuple(page), encode_cursor(page[-1].id) if more else None)

    # -- changes --------------------------------------------------------------------------

    def _change(self, alarm_id: int, do: Callable[[Any, Any], None]) -> Alarm:
        with self._write_lock(), self._engine().begin() as conn:
            row = conn.execute(select(alarms.c.id, alarms.c.state).where(alarms.c.id == alarm_id)).first()
            if row is None:
                raise AlarmNotFound(alarm_id)
            do(conn, row)
        return self.get(alarm_id)

    def acknowledge(self, alarm_id: int, acknowledgement: Acknowledgement) -> Alarm:
        def do(conn: Any, row: Any) -> None:
            conn.execute(
                alarm_acknowledgements.insert().values(
                    alarm_id=alarm_id,
                    time=acknowledgement.time,
                    user=acknowledgement.user,
                    text=acknowledgement.text,
                )
            )
            conn.execute(
                update(alarms)
                .where(alarms.c.id == alarm_id, alarms.c.state == AlarmState.OPEN.value)
                .values(state=AlarmState.ACKNOWLEDGED.value)
            )

        return self._change(alarm_id, do)

    def unacknowledge(self, alarm_id: int) -> Alarm:
        def do(conn: Any, row: Any) -> None:
            conn.execute(delete(alarm_acknowledgements).where(alarm_acknowledgements.c.alarm_id == alarm_id))
            conn.execute(
                update(alarms)
                .where(alarms.c.id == alarm_id, alarms.c.state == AlarmState.ACKNOWLEDGED.value)
                .values(state=AlarmState.OPEN.value)
            )

        return self._change(alarm_id, do)

    def clear(self, alarm_id: int, user: str, now: datetime) -> Alarm:
        def do(conn: Any, row: Any) -> None:
            conn.execute(
                update(alarms)
                .where(alarms.c.id == alarm_id, alarms.c.state != AlarmState.CLEARED.value)
                .values(
                    state=AlarmState.CLEARED.value,
                    cleared=now,
                    cleared_by="user",
                    cleared_user=user,
                    cleared_event=None,
                    auto_clear_at=None,
                )
            )

        alarm = self._change(alarm_id, do)
        self._open.discard(alarm.key)
        return alarm

    def auto_clear(self, now: datetime) -> list[Alarm]:
        due = and_(alarms.c.auto_clear_at <= now, alarms.c.state != AlarmState.CLEARED.value)
        with self._write_lock(), self._engine().begin() as conn:
            keys = [row.key for row in conn.execute(select(alarms.c.key).where(due))]
            if not keys:
                return []
            self._open.difference_update(keys)
            conn.execute(
                update(alarms)
                .where(due, alarms.c.key.in_(keys))
                .values(
                    state=AlarmState.CLEARED.value, cleared=now, cleared_by="auto_clear", auto_clear_at=None
                )
            )
        return self.by_keys(keys)

    def purge_cleared(self, before: datetime) -> int:
        with self._write_lock(), self._engine().begin() as conn:
            removed = conn.execute(
                delete(alarms).where(alarms.c.state == AlarmState.CLEARED.value, alarms.c.cleared < before)
            ).rowcount
            conn.execute(
                delete(alarm_acknowledgements).where(
                    alarm_acknowledgements.c.alarm_id.not_in(select(alarms.c.id))
                )
            )
        return int(removed or 0)


def _conditions(query: AlarmQuery, dialect: str) -> tuple[list[Any], bool]:
    """``(where, exact)``: exact when no Python test is left to do."""
    where: list[Any] = []
    mask_sql, exact = masks_clause(query.masks, alarms.c.context)
    if mask_sql is not None:
        where.append(mask_sql)
    if query.names:
        where.append(alarms.c.name.in_(query.names))
    if query.states:
        where.append(alarms.c.state.in_([state.value for state in query.states]))
    if query.min_level is not None:
        where.append(alarms.c.level >= int(query.min_level))
    if query.max_level is not None:
        where.append(alarms.c.level <= int(query.max_level))
    if query.since is not None:
        where.append(alarms.c.last >= query.since)
    if query.until is not None:
        where.append(alarms.c.last < query.until)
    if query.cursor is not None:
        after = decode_cursor(query.cursor)
        where.append(alarms.c.id < after if query.newest_first else alarms.c.id > after)
    if query.filter is not None:
        clause, filter_exact = translate(query.filter.ast, dialect, ALARM_COLUMNS)
        if clause is not None:
            where.append(clause)
        exact = exact and filter_exact
    if query.visible is not None:
        exact = False
    return where, exact


ALARM_COLUMNS = {
    **COLUMNS,
    "context": alarms.c.context,
    "name": alarms.c.name,
    "level": alarms.c.level,
    "id": alarms.c.id,
}
"""What a filter reads on an alarm: its own context, name, level and id; the rest (and
``data``) its last event's (joined)."""


def _alarm(row: Any, acks: Sequence[Acknowledgement]) -> Alarm:
    last_event = None
    if row.event_created is not None:
        last_event = Event(
            row.event_id,
            row.context,
            row.name,
            Level(row.event_level),  # the event's own level (a message may show it), not the alarm's
            row.event_created,
            None,
            row.event_author,
            row.event_group,
            decode_data(row.event_data),
            category=row.event_category,
        )
    return Alarm(
        id=row.id,
        key=row.key,
        context=row.context,
        name=row.name,
        state=AlarmState(row.state),
        level=Level(row.level),
        count=row.count,
        first=row.first,
        last=row.last,
        event_id=row.event_id,
        policy=AlarmLevel(row.alarm_level),
        auto_clear_at=row.auto_clear_at,
        acknowledgements=tuple(acks),
        cleared=row.cleared,
        cleared_by=row.cleared_by,
        cleared_event=row.cleared_event,
        cleared_user=row.cleared_user,
        last_event=last_event,
    )
