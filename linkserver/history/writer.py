"""The batched history writer (group commit).

Firers put rows into a bounded queue and get a future. One daemon thread
takes up to ``batch_size`` rows, or whatever arrived within ``flush_interval``
of the first one, writes them in one transaction (SQLite: a multi-row INSERT;
PostgreSQL: one ``COPY``; both in autocommit mode, where the statement is the
transaction), and completes the futures only after the commit returned.
Guarantees:

- a full queue blocks the firer (back-pressure); nothing is ever dropped;
- a future is completed with its event only after the row is committed;
- transient database errors (locked, disconnected, server restarting) are
  retried with exponential backoff (capped at ``MAX_BACKOFF``) until they
  succeed; a retry first skips rows that an ambiguous earlier commit did store;
- a row the database rejects for good (a duplicate id) fails its own future
  only: the batch is retried row by row to find it;
- :meth:`Writer.stop` drains the queue and commits everything, then ends.

Done-callbacks added to the futures run in the writer thread, right after
the commit: they must be quick and must not block, or every write waits.

The writer talks to the DBAPI connection directly: this is the hot path, and
SQLAlchemy's per-row type processing would halve its speed. On SQLite a full
batch is ONE multi-row ``INSERT`` run through ``executemany(sql, [params])``:
Python's sqlite3 releases the GIL around each call into SQLite (``execute``
three times, ``executemany`` with one parameter set once), and each time the
writer wants it back it may wait up to the switch interval (5 ms) behind a
busy firer. Other batch sizes are cut into power-of-two chunks inside
BEGIN IMMEDIATE/COMMIT, so the few statements stay in sqlite3's cache.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

import attrs
import sqlalchemy.exc
from sqlalchemy.engine import Engine

from linkserver.core.errors import HistoryError, ServerStopped
from linkserver.core.events import Event
from linkserver.core.tallies import Buckets
from linkserver.history.futures import complete, new_future
from linkserver.history.schema import EVENT_COLUMNS

log = logging.getLogger("linkserver.history.writer")

MAX_BACKOFF = 2.0
FIRST_BACKOFF = 0.01
SQLITE_MAX_ROWS = 3000  # rows per INSERT: 10 columns each, under SQLite's 32766 variables
BATCH_SIZE_BOUNDS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
COMMIT_SECONDS_BOUNDS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10)

Item = tuple[tuple[Any, ...], "Future[Event]", Event]


@attrs.define
class WriterStats:
    """Counters for tests, benchmarks and monitoring."""

    transactions: int = 0  # committed batches
    events: int = 0  # events committed
    retries: int = 0  # failed attempts that were retried
    failed: int = 0  # events rejected by the database for good


class BatchQueue:
    """A bounded FIFO of rows waiting for the writer, handed out in batches."""

    def __init__(self, maxsize: int, batch_size: int) -> None:
        self._items: collections.deque[Item] = collections.deque()
        self._maxsize = maxsize
        self._batch_size = batch_size
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self._progress = threading.Condition(self._lock)
        self._closed = False
        self._lingering = False
        self._flushers = 0
        self.appended = 0  # items ever put
        self.finished = 0  # items ever finished (committed or failed)

    def put(self, item: Item) -> None:
        """Queue ``item``; while the queue is full, wait (back-pressure)."""
        with self._lock:
            items = self._items
            while True:
                if self._closed:
                    raise ServerStopped("history is stopped; the event was not stored")
                if len(items) < self._maxsize:
                    break
                self._not_full.wait()
            items.append(item)
            self.appended += 1
            size = len(items)
            if size == 1 or (self._lingering and size >= self._batch_size):
                self._not_empty.notify()

    def wait_ready(self, linger: float) -> bool:
        """Wait for a first item, then up to ``linger`` s for a full batch (less if flushed).

        False once the queue is closed and empty.
        """
        with self._lock:
            while not self._items:
                if self._closed:
                    return False
                self._not_empty.wait()
            if linger > 0 and len(self._items) < self._batch_size:
                deadline = time.monotonic() + linger
                self._lingering = True
                while len(self._items) < self._batch_size and not self._closed and not self._flushers:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._not_empty.wait(remaining)
                self._lingering = False
            return True

    def take(self) -> list[Item]:
        """Up to ``batch_size`` items, oldest first, without waiting."""
        with self._lock:
            items = self._items
            batch = [items.popleft() for _ in range(min(len(items), self._batch_size))]
            self._not_full.notify_all()
            return batch

    def finish(self, count: int) -> None:
        with self._lock:
            self.finished += count
            self._progress.notify_all()

    def wait_finished(self, target: int, timeout: float | None) -> bool:
        """Wait until ``target`` items have finished; hurries the writer meanwhile."""
        with self._lock:
            self._flushers += 1
            self._not_empty.notify()
            try:
                return self._progress.wait_for(lambda: self.finished >= target, timeout)
            finally:
                self._flushers -= 1

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._not_empty.notify_all()
            self._not_full.notify_all()

    def __len__(self) -> int:
        return len(self._items)


class Writer:
    """The writer thread of one engine (SQLite or PostgreSQL)."""

    def __init__(
        self,
        engine: Engine,
        *,
        batch_size: int,
        flush_interval: float,
        queue_size: int,
        write_lock: contextlib.AbstractContextManager[Any] | None = None,
    ) -> None:
        if batch_size < 1 or queue_size < 1 or flush_interval < 0:
            raise ValueError("batch_size and queue_size must be positive and flush_interval not negative")
        self._engine = engine
        self._dialect = engine.dialect.name
        self._dbapi = engine.dialect.loaded_dbapi
        self._linger = flush_interval
        self._queue = BatchQueue(queue_size, batch_size)
        self._write_lock = write_lock if write_lock is not None else contextlib.nullcontext()
        self._conn: Any = None
        self._abandon = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = 0
        self.stats = WriterStats()
        # Per committed transaction, observed by the writer thread only (linkserver.server.metrics).
        self.batch_sizes = Buckets(BATCH_SIZE_BOUNDS)
        self.commit_seconds = Buckets(COMMIT_SECONDS_BOUNDS)
        quote = engine.dialect.identifier_preparer.quote
        columns = ", ".join(quote(name) for name in EVENT_COLUMNS)
        if self._dialect == "sqlite":
            marks = "(" + ", ".join("?" * len(EVENT_COLUMNS)) + ")"
            full = min(batch_size, SQLITE_MAX_ROWS)
            sizes = sorted({full, *(1 << k for k in range(12) if 1 << k < full)}, reverse=True)
            self._chunk_sql = {
                size: f"INSERT INTO events ({columns}) VALUES " + ", ".join([marks] * size) for size in sizes
            }
            self._existing_sql = "SELECT id FROM events WHERE id BETWEEN ? AND ?"
        else:
            self._insert_sql = f"COPY events ({columns}) FROM STDIN"
            self._existing_sql = "SELECT id FROM events WHERE id BETWEEN %s AND %s"

    # -- the firer's side ------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="linkserver-history-writer", daemon=True)
        self._thread.start()

    def submit(self, row: tuple[Any, ...], event: Event) -> Future[Event]:
        """Queue a row; its future completes after the commit. Blocks while the queue is full."""
        future: Future[Event] = new_future()  # running: it cannot be cancelled any more
        self._queue.put((row, future, event))
        return future

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted so far is finished; False on timeout.

        Returns at once when called from the writer thread (from a future's
        done-callback, which runs there): it cannot wait for itself.
        """
        if threading.current_thread() is self._thread:
            return True
        return self._queue.wait_finished(self._queue.appended, timeout)

    def stop(self, timeout: float | None = None) -> None:
        """Refuse new rows, commit every queued one, end the thread.

        With a timeout and a database that stays unreachable that long, the
        rows still queued are given up: their futures fail and the loss is
        logged. Without one, stop waits for the database as long as it takes.
        """
        self._queue.close()
        thread = self._thread
        if thread is None:
            return
        thread.join(timeout)
        if thread.is_alive():
            self._abandon.set()
            thread.join()
        self._thread = None
        self._close_connection()
        if self.lost:
            log.error("history stopped with the database unavailable: %d events were NOT stored", self.lost)

    @property
    def appended(self) -> int:
        """Events ever submitted."""
        return self._queue.appended

    @property
    def pending(self) -> int:
        """Events submitted but not yet finished (queued or being written)."""
        return self._queue.appended - self._queue.finished

    # -- the writer thread -------------------------------------------------------

    def _run(self) -> None:
        queue = self._queue
        while queue.wait_ready(self._linger):
            self._process(queue.take())

    def _process(self, batch: list[Item]) -> None:
        if self._abandon.is_set():
            _fail(batch, HistoryError("history stopped before the event could be stored"))
            self.lost += len(batch)
        else:
            try:
                self._commit_and_complete(batch)
            except BaseException as exc:  # never leave a future hanging
                log.exception("history writer failed unexpectedly")
                _fail(batch, HistoryError(f"the history writer failed: {exc!r}"))
        self._queue.finish(len(batch))

    def _commit_and_complete(self, batch: list[Item]) -> None:
        started = time.perf_counter()
        error = self._commit([item[0] for item in batch])
        if error is None:
            self.commit_seconds.observe(time.perf_counter() - started)  # retries included
            self.batch_sizes.observe(len(batch))
            self.stats.transactions += 1
            self.stats.events += len(batch)
            complete((future, event) for _row, future, event in batch)
            return
        if isinstance(error, _Abandoned):
            _fail(batch, HistoryError("history stopped before the event could be stored"))
            self.lost += len(batch)
            return
        if len(batch) == 1:
            self.stats.failed += 1
            log.error("history rejected event %s: %s", batch[0][2].id, error)
            _fail(batch, HistoryError(f"the database rejected event {batch[0][2].id}: {error}"))
            return
        for item in batch:  # isolate the rows the database rejects
            self._commit_and_complete([item])

    def _commit(self, rows: Sequence[tuple[Any, ...]]) -> BaseException | None:
        """Commit ``rows``; retry transient errors. Returns the permanent error, or None."""
        attempt = 0
        while True:
            try:
                with self._write_lock:
                    self._write(rows, skip_existing=attempt > 0)
                if attempt:
                    log.warning("history writer recovered after %d failed attempts", attempt)
                return None
            except Exception as exc:
                self._close_connection()
                if not self._retryable(exc):
                    return exc
                attempt += 1
                self.stats.retries += 1
                delay = min(FIRST_BACKOFF * 2 ** (attempt - 1), MAX_BACKOFF)
                if attempt == 1 or attempt % 10 == 0:
                    log.warning("history write failed (attempt %d), retry in %.2fs: %s", attempt, delay, exc)
                if self._abandon.wait(delay):
                    return _Abandoned()

    def _write(self, rows: Sequence[tuple[Any, ...]], *, skip_existing: bool) -> None:
        conn = self._conn
        if conn is None:
            conn = self._engine.raw_connection()
            # Autocommit: one statement is one transaction, without a round trip
            # (PostgreSQL) or a GIL release (SQLite) for a separate COMMIT.
            if self._dialect == "sqlite":
                conn.driver_connection.isolation_level = None
            else:
                conn.driver_connection.autocommit = True
            self._conn = conn
        if skip_existing:
            rows = self._not_stored(conn, rows)
        if self._dialect == "sqlite":
            self._write_sqlite(conn.driver_connection, rows)
        elif rows:
            with conn.driver_connection.cursor() as cursor, cursor.copy(self._insert_sql) as copy:
                for row in rows:
                    copy.write_row(row)

    def _write_sqlite(self, db: Any, rows: Sequence[tuple[Any, ...]]) -> None:
        statements = []
        flatten = itertools.chain.from_iterable
        start, total = 0, len(rows)
        for size, sql in self._chunk_sql.items():
            while total - start >= size:
                statements.append((sql, list(flatten(rows[start : start + size]))))
                start += size
        # executemany with one parameter set: one GIL release (see the module doc).
        if len(statements) == 1:
            db.executemany(statements[0][0], [statements[0][1]])  # one statement, one transaction
        elif statements:
            # On error the connection is invalidated, which rolls the transaction back.
            db.execute("BEGIN IMMEDIATE")
            for sql, params in statements:
                db.executemany(sql, [params])
            db.execute("COMMIT")

    def _not_stored(self, conn: Any, rows: Sequence[tuple[Any, ...]]) -> Sequence[tuple[Any, ...]]:
        ids = [row[0] for row in rows]
        cursor = conn.driver_connection.cursor()
        try:
            cursor.execute(self._existing_sql, (min(ids), max(ids)))
            stored = {found for (found,) in cursor.fetchall()}
        finally:
            cursor.close()
        return [row for row in rows if row[0] not in stored] if stored else rows

    def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            # Never back to the pool: SQLAlchemy expects its SQLite connections in
            # the default transaction mode, the writer's is in autocommit.
            conn.invalidate()
        except Exception:  # the connection is gone anyway
            log.debug("closing the writer's connection failed", exc_info=True)

    def _retryable(self, exc: BaseException) -> bool:
        if isinstance(exc, sqlalchemy.exc.DBAPIError):
            if exc.connection_invalidated:
                return True
            exc = exc.orig if exc.orig is not None else exc
        if isinstance(
            exc,
            (
                sqlalchemy.exc.OperationalError,
                sqlalchemy.exc.InterfaceError,
                sqlalchemy.exc.DisconnectionError,
                sqlalchemy.exc.TimeoutError,
            ),
        ):
            return True
        dbapi = self._dbapi
        return isinstance(exc, (dbapi.OperationalError, dbapi.InterfaceError))


class _Abandoned(Exception):
    pass


def _fail(items: Sequence[Item], error: BaseException) -> None:
    for _row, future, _event in items:
        if not future.done():
            future.set_exception(error)
