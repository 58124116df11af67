"""The SQLAlchemy HistoryStore: SQLite (embedded default) or PostgreSQL, one code path."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from datetime import datetime, timedelta
from typing import Any

import attrs
from sqlalchemy import Engine, bindparam, delete, exists, func, insert, literal, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from linkserver.core.errors import EventNotFound, HistoryError, HistoryUnavailable, ServerStopped
from linkserver.core.events import Acknowledgement, Event
from linkserver.history import migrate, queries
from linkserver.history.base import Held, HistoryPage, HistoryQuery, HistoryStore
from linkserver.history.codec import check_acknowledgement, micros
from linkserver.history.engine import (
    CACHE_KIB,
    DEFAULT_BUSY_TIMEOUT,
    DURABILITY,
    FairLock,
    WalCheckpointer,
    make_engine,
)
from linkserver.history.matching import encode_cursor
from linkserver.history.nodes import NodeLeases, SqlNodeLeases
from linkserver.history.outbox import Outbox, SqlOutbox
from linkserver.history.same_commit import SameCommit
from linkserver.history.schema import Id, UtcDateTime, acknowledgements, contexts, events, row_maker
from linkserver.history.sql_api_tokens import SqlTokenTable
from linkserver.history.sql_device_owners import SqlDeviceOwnerTable
from linkserver.history.sql_failures import SqlFailureTable
from linkserver.history.sql_sessions import SqlSessionTable
from linkserver.history.sql_users import SqlUserStore
from linkserver.history.tree import StoredContext
from linkserver.history.writer import Item, Writer, WriterStats

log = logging.getLogger("linkserver.history")

MAX_PURGE_BATCH = 10_000
# How long one purge transaction should take. On SQLite while events are being fired:
# the writer's flush interval, at least PURGE_BUSY_MIN_SECONDS (see purge_expired);
# otherwise just short.
PURGE_BUSY_MIN_SECONDS = 0.002
PURGE_IDLE_SECONDS = 0.05
PURGE_IDLE_AFTER = 1.0  # seconds without a fire before the purge stops making way
PURGE_CACHE_KIB = 65536  # SQLite page cache of the purge's connection (see purge_expired)
FIRST_PURGE_ROWS = 100
# The purge's transaction on SQLite, on the writer's connection (raw SQL: see purge_expired).
_OLDEST_EXPIRED = "SELECT id FROM events WHERE expires <= ? ORDER BY expires LIMIT ?"
_SQLITE_PURGE_ACKS = f"DELETE FROM acknowledgements WHERE event_id IN ({_OLDEST_EXPIRED})"
_SQLITE_PURGE_EVENTS = f"DELETE FROM events WHERE id IN ({_OLDEST_EXPIRED})"
_TRY_LOCK = text("SELECT pg_try_advisory_lock(hashtext(:name), hashtext(current_schema()))")
_UNLOCK = text("SELECT pg_advisory_unlock(hashtext(:name), hashtext(current_schema()))")
_TREE_LOCK_KEY = 0x4C696E6B54726565  # "LinkTree": tree changes commit in change-number order
_LAST_SEQ = select(func.coalesce(func.max(contexts.c.seq), 0))


class SqlHistoryStore(HistoryStore):
    """History in a SQL database through SQLAlchemy Core.

    ``url``: ``sqlite:///path/to/history.sqlite3`` (see
    :func:`linkserver.history.engine.sqlite_url`) or
    ``postgresql+psycopg://user@host/db``. ``batch_size``, ``flush_interval`` and
    ``queue_size`` tune the writer (see :mod:`linkserver.history.writer`).
    ``upgrade``: migrate the schema at start; when False, start refuses a
    schema that is not exactly this code's (SchemaOutdated / SchemaTooNew).
    A schema newer than this code is refused either way. ``durability``:
    ``commit`` (a committed event survives a crash of the process) or
    ``fsync`` (it also survives an OS crash or power loss); see
    :data:`linkserver.history.engine.DURABILITY`. ``checkpoint_interval``: on
    SQLite, how often the WAL is checkpointed (see
    :class:`linkserver.history.engine.WalCheckpointer`).
    """

    def __init__(
        self,
        url: str | URL,
        *,
        batch_size: int = 500,
        flush_interval: timedelta = timedelta(milliseconds=5),
        queue_size: int = 10_000,
        upgrade: bool = True,
        busy_timeout: timedelta = timedelta(seconds=DEFAULT_BUSY_TIMEOUT),
        durability: str = "commit",
        checkpoint_interval: timedelta = timedelta(seconds=1),
    ) -> None:
        if batch_size < 1 or queue_size < 1:
            raise ValueError("batch_size and queue_size must be at least 1")
        if durability not in DURABILITY:
            raise ValueError(f"durability must be one of {', '.join(DURABILITY)}, got {durability!r}")
        self.durability = durability
        self.url = url
        self._batch_size = batch_size
        self._flush_interval = flush_interval.total_seconds()
        self._queue_size = queue_size
        self._upgrade = upgrade
        self._busy_timeout = busy_timeout.total_seconds()
        self._checkpoint_interval = checkpoint_interval.total_seconds()
        self._engine: Engine | None = None
        self._writer: Writer | None = None
        # The running writer's WriteQueue.put: store() queues there itself, the fire path's one
        # call into history (Writer.put would add a call that only makes the same tuple).
        self._enqueue: Callable[[Item], None] | None = None
        self._write_lock: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        self._make_row: Any = None
        self._checkpointer: WalCheckpointer | None = None
        self._dialect = ""
        self._upsert: Any = None
        self._users = SqlUserStore(lambda: self.engine, lambda: self._write_lock)
        self._sessions = SqlSessionTable(lambda: self.engine, lambda: self._write_lock)
        self._device_owners = SqlDeviceOwnerTable(lambda: self.engine, lambda: self._write_lock)
        self._login_failures = SqlFailureTable(lambda: self.engine, lambda: self._write_lock)
        self._api_tokens = SqlTokenTable(lambda: self.engine, lambda: self._write_lock)
        self._same_commit: list[SameCommit] = []

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        if self._engine is not None:
            raise HistoryError("this history store is already started")
        engine = make_engine(self.url, busy_timeout=self._busy_timeout, durability=self.durability)
        try:
            if self._upgrade:
                migrate.upgrade(engine)
            else:
                migrate.check_schema(engine)
        except BaseException:
            engine.dispose()
            raise
        self._dialect = engine.dialect.name
        self._write_lock = FairLock() if self._dialect == "sqlite" else contextlib.nullcontext()
        self._make_row = row_maker(self._dialect)
        self._writer = Writer(
            engine,
            batch_size=self._batch_size,
            flush_interval=self._flush_interval,
            queue_size=self._queue_size,
            make_row=self._make_row,
            write_lock=self._write_lock,
        )
        for hook in self._same_commit:
            self._writer.add_same_commit(hook)
        self._writer.start()
        if self._dialect == "sqlite":
            self._checkpointer = WalCheckpointer(
                engine, self._checkpoint_interval, write_lock=self._write_lock
            )
            self._checkpointer.start()
        self._engine = engine
        self._enqueue = self._writer.enqueue  # last: a store before this refuses the event

    def stop(self, timeout: float | None = None) -> None:
        """Commit every appended event, then close. See :meth:`Writer.stop` for ``timeout``."""
        writer, engine = self._writer, self._engine
        self._enqueue = None  # first: stores from now on refuse the event (the queue closes next)
        if writer is not None:
            writer.stop(timeout)
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        if engine is not None:
            engine.dispose()
        self._engine = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise ServerStopped("history is not running")
        return self._engine

    @property
    def write_lock(self) -> contextlib.AbstractContextManager[Any]:
        """Taken around every write transaction besides the writer's own: on SQLite, one writer
        at a time and in turn (a write that skipped it would make the writer wait on SQLite's
        busy timeout, and could wait past it); nothing on PostgreSQL."""
        return self._write_lock

    @property
    def users(self) -> SqlUserStore:
        return self._users

    @property
    def sessions(self) -> SqlSessionTable:
        return self._sessions

    @property
    def device_owners(self) -> SqlDeviceOwnerTable:
        return self._device_owners

    @property
    def login_failures(self) -> SqlFailureTable:
        return self._login_failures

    @property
    def api_tokens(self) -> SqlTokenTable:
        return self._api_tokens

    @property
    def shared(self) -> bool:
        return self._dialect == "postgresql"

    @property
    def keeps_field_order(self) -> bool:
        return self._dialect != "postgresql"  # JSONB keeps its keys by length, then bytes

    def hold(self, name: str) -> contextlib.AbstractContextManager[Held]:
        """See :meth:`HistoryStore.exclusive`. PostgreSQL: a session advisory lock keyed by
        ``name`` and the schema, held on a connection of its own for the block (PostgreSQL
        releases it when a node dies); SQLite: one process uses the file, a lock of this
        process."""
        if self._dialect != "postgresql":
            return super().hold(name)
        return self._advisory(name)

    @contextlib.contextmanager
    def _advisory(self, name: str) -> Iterator[Held]:
        key = {"name": f"linkserver:{name}"}
        guard = threading.Lock()  # the check and the unlock may come from different threads
        with self.engine.connect() as conn:
            # Two keys: one per schema, so separate systems sharing a database never wait on
            # each other.
            acquired = bool(conn.execute(_TRY_LOCK, key).scalar_one())
            conn.commit()
            lost = False

            def alive() -> bool:
                # A session's advisory lock lasts as long as the session: while this connection
                # answers, the lock is held; once it broke, PostgreSQL has released it.
                nonlocal lost
                with guard:
                    if not lost:
                        try:
                            conn.execute(text("SELECT 1"))
                            conn.commit()
                        except SQLAlchemyError:
                            lost = True
                    return not lost

            try:
                yield Held(acquired, alive)
            finally:
                if acquired:
                    with guard:
                        try:
                            conn.execute(
                                text(
                                    "SELECT pg_advisory_unlock(hashtext(:name), hashtext(current_schema()))"
                                ),
                                key,
                            )
                            conn.commit()
                        except SQLAlchemyError:  # the connection is gone, and the lock with it
                            conn.invalidate()

    @property
    def writer_stats(self) -> WriterStats:
        if self._writer is None:
            raise ServerStopped("history was never started")
        return self._writer.stats

    @property
    def writer(self) -> Writer | None:
        """The running writer (its queue and histograms), None while stopped."""
        return self._writer

    # -- writes --------------------------------------------------------------------

    def append(
        self,
        event: Event,
        *,
        requires_acknowledgement: bool = False,
        checked: bool = False,
        waiting: bool = False,
        hurry: bool = False,
    ) -> Future[Event]:
        writer = self._writer
        if writer is None or self._engine is None:
            raise ServerStopped("history is not running; the event was not stored")
        # Unchecked: the row is made here, and the row maker refuses naive datetimes and
        # data JSON cannot hold (UnstorableEvent). Checked: the committer makes it.
        required = bool(requires_acknowledgement)
        row = None if checked else self._make_row(event, required)
        return writer.submit(event, required, row, waiting=waiting, hurry=hurry)

    def store(self, event: Event, *, requires_acknowledgement: bool = False, checked: bool = False) -> None:
        enqueue = self._enqueue
        if enqueue is None:
            raise ServerStopped("history is not running; the event was not stored")
        required = bool(requires_acknowledgement)
        # What Writer.put queues: no future (nobody waits), the row made by the committer if checked
        enqueue((None, event, required, None if checked else self._make_row(event, required)))

    def add_same_commit(self, hook: SameCommit) -> None:
        self._same_commit.append(hook)
        if self._writer is not None:
            self._writer.add_same_commit(hook)

    def outbox(self, bridge: str, node: int) -> Outbox:
        return SqlOutbox(bridge, node, lambda: self.engine, lambda: self._write_lock)

    def node_leases(self) -> NodeLeases:
        return SqlNodeLeases(lambda: self.engine, lambda: self._write_lock)

    def flush(self, timeout: float | None = None) -> None:
        if self._writer is not None and not self._writer.flush(timeout):
            raise TimeoutError(f"history did not commit the pending events within {timeout} s")

    def acknowledge(self, event_id: int, acknowledgement: Acknowledgement) -> Event:
        check_acknowledgement(acknowledgement)
        # One statement: the event's existence and the insert cannot be split by a delete.
        source = select(
            literal(event_id, Id),
            literal(acknowledgement.time, UtcDateTime()),
            literal(acknowledgement.user),
            literal(acknowledgement.text),
        ).where(exists().where(events.c.id == event_id))
        statement = (
            insert(acknowledgements)
            .from_select(["event_id", "time", "user", "text"], source)
            .execution_options(preserve_rowcount=True)
        )
        if not self._retry_pending(lambda: self._write(statement) > 0):
            raise EventNotFound(event_id)
        return self.get(event_id)

    def delete(self, event_id: int) -> None:
        def remove() -> bool:
            with self._write_lock, self.engine.begin() as conn:
                conn.execute(delete(acknowledgements).where(acknowledgements.c.event_id == event_id))
                return conn.execute(delete(events).where(events.c.id == event_id)).rowcount > 0

        if not self._retry_pending(remove):
            raise EventNotFound(event_id)

    def purge_expired(self, now: datetime, batch_size: int = 5000) -> int:
        """See :meth:`HistoryStore.purge_expired`.

        Each transaction deletes at most ``batch_size`` events and is also kept
        near a target time: the rows per transaction start at FIRST_PURGE_ROWS
        and double or halve with the time the previous one took. On SQLite a
        purge transaction holds the only write lock, and deleting the oldest
        events touches a different page of the context index for nearly every
        row: most of a purge's cost, and the reason small transactions purge
        fewer rows per second (each dirty page is written once per
        transaction). So while events are being fired, the target is the
        writer's flush interval (at least 2 ms): a fire committed behind a
        purge transaction waits about as long again as the writer lingers for a
        batch anyway. The events the writer has waiting are committed before
        each next transaction, and the FIFO write lock hands the writer its
        turn between two. After a second without fires, and always on
        PostgreSQL (deletes there do not block inserts), the target is 50 ms.

        On SQLite the transactions run on the writer's own connection, between
        its batches (:meth:`Writer.own_connection`): a connection that finds
        another's commit drops its page cache, so with two connections every
        purge transaction and every batch after one read all their pages again
        (in raw sqlite3, 250-row purge transactions alternating with 5-row
        inserts: 63 to 66 rows/ms on two connections, 95 to 111 on one).
        """
        if not 1 <= batch_size <= MAX_PURGE_BATCH:
            raise ValueError(f"batch_size must be from 1 to {MAX_PURGE_BATCH}, got {batch_size}")
        oldest = (
            select(events.c.id)
            .where(events.c.expires <= bindparam("now", type_=UtcDateTime()))
            .order_by(events.c.expires)
            .limit(bindparam("rows"))
            .scalar_subquery()
        )
        # Two statements with the batch as a subquery: no ids travel through Python,
        # so a purge holds the GIL (which the writer needs too) as little as possible.
        drop_acks = delete(acknowledgements).where(acknowledgements.c.event_id.in_(oldest))
        drop_events = delete(events).where(events.c.id.in_(oldest))
        writer, checkpointer = self._writer, self._checkpointer  # stop() clears them
        shares_lock = self._dialect == "sqlite" and writer is not None
        busy_target = max(PURGE_BUSY_MIN_SECONDS, self._flush_interval)
        removed = 0
        rows = min(batch_size, FIRST_PURGE_ROWS)
        appended = writer.appended if writer is not None else 0
        firing, last_fire = shares_lock, time.monotonic()
        sized: Any = None  # the writer's connection whose page cache this purge enlarged
        expired = micros(now)
        with contextlib.ExitStack() as stack:
            if shares_lock:
                assert writer is not None
                stack.callback(self._restore_cache, writer, lambda: sized)
            else:
                conn = stack.enter_context(self.engine.connect())
                if self._dialect == "sqlite":  # no writer (a read-only store?): its own connection
                    conn.exec_driver_sql(f"PRAGMA cache_size = -{PURGE_CACHE_KIB}")
                    conn.commit()
            while True:
                if checkpointer is not None:
                    checkpointer.bulk_turn()
                if shares_lock:
                    assert writer is not None
                    with writer.own_connection() as db:
                        if checkpointer is not None and checkpointer.bulk_held():
                            continue  # a RESTART's catch-up began while this waited for its turn
                        if db is not sized:
                            db.execute(f"PRAGMA cache_size = -{PURGE_CACHE_KIB}")
                            sized = db
                        started = time.monotonic()
                        deleted = _purge_sqlite(db, expired, rows)
                else:
                    started = time.monotonic()
                    with self._write_lock, conn.begin():
                        # The first DELETE takes the write lock, so both see the same oldest rows.
                        conn.execute(drop_acks, {"now": now, "rows": rows})
                        deleted = conn.execute(drop_events, {"now": now, "rows": rows}).rowcount
                removed += deleted
                elapsed = time.monotonic() - started
                log.debug("purge: %d expired events deleted in %.1f ms", deleted, elapsed * 1000)
                if deleted < rows:
                    return removed
                target = busy_target if firing else PURGE_IDLE_SECONDS
                if elapsed < target / 2:
                    rows = min(batch_size, rows * 2)
                elif elapsed > target:
                    rows = max(1, rows // 2)
                if writer is not None and writer.pending:
                    writer.flush(timeout=1.0)
                if shares_lock:
                    assert writer is not None
                    if writer.appended != appended:
                        appended, last_fire = writer.appended, time.monotonic()
                    firing = time.monotonic() - last_fire < PURGE_IDLE_AFTER

    @staticmethod
    def _restore_cache(writer: Writer, sized: Callable[[], Any]) -> None:
        """The writer's page cache back to its own size, if its connection is still the one
        the purge enlarged (a new one has its own size; a stopped writer has none)."""
        with writer.own_connection(reuse_only=True) as db:
            if db is not None and db is sized():
                db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")

    def _write(self, statement: Any) -> int:
        with self._write_lock, self.engine.begin() as conn:
            return conn.execute(statement).rowcount

    def _retry_pending(self, attempt: Any) -> bool:
        """Run ``attempt``; if it finds no event, wait for the writer's queue and try once more.

        An event the firer just got back may still be queued: acknowledging it
        must not fail for that.
        """
        if attempt():
            return True
        if self._writer is not None and self._writer.pending:
            self.flush()
            return bool(attempt())
        return False

    # -- reads -----------------------------------------------------------------------

    def get(self, event_id: int) -> Event:
        def load() -> Event | None:
            with self.engine.connect() as conn:
                return queries.get(conn, event_id, self._dialect or self.engine.dialect.name)

        found = load()
        if found is None and self._writer is not None and self._writer.pending:
            self.flush()
            found = load()
        if found is None:
            raise EventNotFound(event_id)
        return found

    def query(self, query: HistoryQuery) -> HistoryPage:
        plan = queries.plan(query, self._dialect or self.engine.dialect.name)
        with self.engine.connect() as conn:
            found, more = queries.fetch_page(conn, plan)
        return HistoryPage(events=tuple(found), next_cursor=encode_cursor(found[-1].id) if more else None)

    def count(self, query: HistoryQuery) -> int:
        plan = queries.plan(
            attrs.evolve(query, cursor=None), self._dialect or self.engine.dialect.name, for_count=True
        )
        with self.engine.connect() as conn:
            return queries.count(conn, plan)

    # -- the run-time tree -------------------------------------------------------------

    def save_contexts(self, rows: Sequence[StoredContext]) -> int:
        """See :meth:`TreeStore.save_contexts`.

        Each row's change number is computed inside its own INSERT, which on
        SQLite holds the database's write lock; on PostgreSQL a transaction
        lock makes writers take turns. Either way a change number becomes
        visible only after every smaller one, so a reader following the feed
        never skips a change that commits late.
        """
        engine = self.engine
        upsert = self._context_upsert()
        try:
            with self._write_lock, engine.begin() as conn:
                if self._dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _TREE_LOCK_KEY})
                for row in rows:
                    # One row per statement: each reads the number the previous one took.
                    conn.execute(
                        upsert,
                        {
                            "path": row.path,
                            "removed": row.removed,
                            "template": row.template,
                            "child_template": row.child_template,
                            "description": row.description,
                            "changed": row.changed,
                            "node": row.node,
                        },
                    )
                return int(conn.execute(_LAST_SEQ).scalar_one())
        except (OperationalError, InterfaceError) as exc:  # down, locked, connection lost: may pass
            raise HistoryUnavailable(
                f"the tree change was not recorded, so nothing changed: history is unavailable "
                f"({_database_error(exc)}); try again"
            ) from exc
        except SQLAlchemyError as exc:
            raise HistoryError(
                f"could not record the tree change in history ({_database_error(exc)})"
            ) from exc

    def _context_upsert(self) -> Any:
        """``INSERT ... ON CONFLICT (path) DO UPDATE``, the change number taken inside it; built once."""
        if self._upsert is None:
            dialect = postgresql if self._dialect == "postgresql" else sqlite
            columns = ("path", "removed", "template", "child_template", "description", "changed", "node")
            next_seq = select(func.coalesce(func.max(contexts.c.seq), 0) + 1).scalar_subquery()
            statement = dialect.insert(contexts).values(
                seq=next_seq, **{name: bindparam(name, type_=contexts.c[name].type) for name in columns}
            )
            self._upsert = statement.on_conflict_do_update(
                index_elements=[contexts.c.path],
                set_={name: statement.excluded[name] for name in ("seq", *columns[1:])},
            )
        return self._upsert

    def load_contexts(self, after: int = 0) -> list[StoredContext]:
        statement = select(contexts).where(contexts.c.seq > after).order_by(contexts.c.seq)
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(statement).all()
        except SQLAlchemyError as exc:
            raise HistoryError(f"could not read the tree from history ({_database_error(exc)})") from exc
        return [
            StoredContext(
                path=row.path,
                removed=row.removed,
                template=row.template,
                child_template=row.child_template,
                description=row.description,
                changed=row.changed,
                node=row.node,
                seq=row.seq,
            )
            for row in rows
        ]


def _database_error(exc: SQLAlchemyError) -> str:
    """What the database said, without the statement and parameters SQLAlchemy adds."""
    original = getattr(exc, "orig", None)
    return f"{type(original or exc).__name__}: {str(original or exc).strip()}"


def _purge_sqlite(db: Any, expired: int, rows: int) -> int:
    """One purge transaction on a raw SQLite connection in autocommit mode: the acknowledgements
    of the oldest ``rows`` events expired at ``expired`` (microseconds) or before, then those
    events (BEGIN IMMEDIATE: both statements see the same oldest rows). How many events went."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(_SQLITE_PURGE_ACKS, (expired, rows))
        deleted = int(db.execute(_SQLITE_PURGE_EVENTS, (expired, rows)).rowcount)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            with contextlib.suppress(Exception):  # the connection is closed after a failure anyway
                db.execute("ROLLBACK")
        raise
    return deleted
