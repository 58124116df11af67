"""The batched history writer (group commit).

Firers put events into a bounded queue and get a future. Whoever commits
takes up to ``batch_size`` of them, writes them in one transaction (SQLite:
a multi-row INSERT; PostgreSQL: one ``COPY``, or for a small batch one
multi-row INSERT; both in autocommit mode, where the statement is the
transaction), and completes the futures only after the
commit returned. Two kinds of committer take turns, one at a time:

- the writer thread, for events nobody waits for: it takes whatever arrived
  within ``flush_interval`` of the first one (or a full batch), so a steady
  stream of fires costs few transactions. It lingers only when the stream
  is dense enough to bring another event within ``flush_interval`` (judged
  from the arrivals since the last batch): a sparse stream (100 events/s
  against a 5 ms linger) would gain no batch, only latency;
- a caller waiting for a future (a durable fire, :meth:`Writer.flush`): when
  no commit is running it commits the queue itself, in its own thread, at
  once: a serial durable firer pays one commit and no thread switches. It
  commits within its own timeout: on SQLite the commit waits for a lock held
  elsewhere (another process) at most that long, not the connection's busy
  timeout, and then leaves the batch to the writer thread. When a
  commit is running, it tells the writer thread to skip its linger and waits;
  everything that queued up meanwhile goes into the next transaction together
  (group commit).

Guarantees:

- a full queue blocks the firer (back-pressure); nothing is ever dropped;
- a future is completed with its event only after the row is committed;
- transient database errors (locked, disconnected, server restarting) are
  retried by the writer thread with exponential backoff (capped at
  ``MAX_BACKOFF``) until they succeed; a retry first skips rows that an
  ambiguous earlier commit did store. A waiting caller tries once and hands a
  failed batch back to the writer thread, front of the queue, order kept;
- a row the database rejects for good (a duplicate id) fails its own future
  only: the batch is retried row by row to find it;
- :meth:`Writer.stop` drains the queue and commits everything, then ends.

The firer's side is cheap: a deque append (atomic in CPython, no lock) and,
only when the writer thread sleeps, setting its event. Rows are made (times
encoded, data tables JSON-encoded) by the committer, not the firer, for
events whose data a format already validated (``row`` None); other callers
pass a ready row so that bad data fails in their thread.

Done-callbacks added to the futures run in the committing thread (the
writer's, or a waiting caller's) right after the commit: they must be quick
and must not block, or every write waits.

The writer talks to the DBAPI connection directly: this is the hot path, and
SQLAlchemy's per-row type processing would halve its speed. On SQLite a full
batch is ONE multi-row ``INSERT`` run through ``executemany(sql, [params])``:
Python's sqlite3 releases the GIL around each call into SQLite (``execute``
three times, ``executemany`` with one parameter set once), and each time the
writer wants it back it may wait up to the switch interval (5 ms) behind a
busy firer. Other batch sizes are cut into power-of-two chunks inside
BEGIN IMMEDIATE/COMMIT, so the few statements stay in sqlite3's cache; inside a
transaction the INSERT is ``OR ROLLBACK`` (no statement journal: see ``_chunk_sql``).
Firers blocked on a full queue are woken when the committer's first long database
call starts, not when it takes the batch: until then they would compete for the GIL
with the committer's own Python work instead of overlapping the database's.

Hooks registered with :meth:`Writer.add_same_commit` (see
:mod:`linkserver.history.same_commit`) add statements to a batch's
transaction; a batch with any runs inside BEGIN/COMMIT (SQLite) or a
transaction block (PostgreSQL) instead of one autocommitted statement. On
PostgreSQL a batch of up to ``SIMPLE_QUERY_ROWS`` events is sent with its
hooks' statements as one simple-protocol query instead, which PostgreSQL runs
as one implicit transaction: one round trip instead of four (BEGIN, COPY, the
statements, COMMIT), which is most of a sparse stream's commit latency. A
batch whose statements carry checks adds one: the checks must see the
rowcounts before COMMIT.
"""

from __future__ import annotations

import collections
import contextlib
import inspect
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any

import attrs
import sqlalchemy.exc
from sqlalchemy.engine import Engine

from linkserver.core.errors import HistoryError, ServerStopped
from linkserver.core.events import Event
from linkserver.core.tallies import Buckets
from linkserver.history.engine import FairLock
from linkserver.history.errors import UnstorableEvent
from linkserver.history.futures import complete, new_future
from linkserver.history.same_commit import SameCommit, Statement
from linkserver.history.schema import EVENT_COLUMNS

log = logging.getLogger("linkserver.history.writer")

MAX_BACKOFF = 2.0
FIRST_BACKOFF = 0.01
SQLITE_MAX_ROWS = 32766 // len(EVENT_COLUMNS)  # rows per INSERT: under SQLite's 32766 variables
BATCH_SIZE_BOUNDS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
COMMIT_SECONDS_BOUNDS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10)
# PostgreSQL batches up to this size are one simple-protocol INSERT (one round trip, see
# Writer._write_postgresql_small), bigger ones a COPY: psycopg quotes client-side at ~5 us a
# value, COPY costs a round trip more (four with same-commit statements) but little per row.
SIMPLE_QUERY_ROWS = 4
IDLE_WAIT = 1.0  # an idle writer thread still looks at the queue this often
_SUSPENDABLE = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR
DENSE_SPAN = 4  # lingers: the arrival rate that decides whether to linger is judged over about this long

#: (future or None (nobody watches), event or None for a flush marker, requires acknowledgement,
#: row or None: made by the committer)
Item = tuple["Future[Any] | None", Event | None, bool, tuple[Any, ...] | None]
RowMaker = Callable[[Event, bool], tuple[Any, ...]]


@attrs.define
class WriterStats:
    """Counters for tests, benchmarks and monitoring."""

    transactions: int = 0  # committed batches
    events: int = 0  # events committed
    retries: int = 0  # failed attempts that were retried
    failed: int = 0  # events rejected by the database for good
    by_callers: int = 0  # committed batches a waiting caller committed itself


class WriteQueue:
    """A bounded FIFO of items waiting for a committer.

    Firers :meth:`put` from any thread without a lock unless the queue is
    full; only the holder of the writer's commit role takes items out.
    """

    def __init__(self, maxsize: int, batch_size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._items: collections.deque[Item] = collections.deque()
        self._clock = clock
        self._maxsize = maxsize
        self.batch_size = batch_size
        self._full_batch = min(batch_size, maxsize)  # what ends a linger
        self._wake = threading.Event()  # the writer thread waits on it
        self._sleeping = False  # the writer thread waits for a first item
        self._lingering = False  # the writer thread waits for a full batch
        self.hurried = False  # someone waits: commit without lingering
        self._room = threading.Condition()
        self._room_waiters = 0
        self._room_made = False  # taken since the firers blocked on a full queue were last woken
        self.closed = False
        self.appended = 0  # items ever put (not exact under concurrent puts: for "anything new?")
        self._counted = 0  # ``appended`` when the writer thread last looked (the arrival rate)
        self._counted_at = clock()
        self._recent = 0.0  # arrivals of about the last DENSE_SPAN lingers (see _dense)
        self.in_flight = 0  # taken and not yet finished

    def put(self, item: Item, *, wake: bool = True) -> None:
        """Queue ``item``; while the queue is full, wait (back-pressure).

        ``wake=False`` leaves a sleeping writer thread asleep: the caller is
        about to wait for the item, which commits it (see the module doc).
        """
        items = self._items
        if len(items) >= self._maxsize:
            self._wait_for_room()
        if self.closed:
            raise ServerStopped("history is stopped; the event was not stored")
        items.append(item)
        self.appended += 1
        # Flag first, then the check (the writer thread sets the flag, then looks at the queue).
        if (wake and self._sleeping) or (self._lingering and len(items) >= self._full_batch):
            self._wake.set()

    def _wait_for_room(self) -> None:
        with self._room:
            self._room_waiters += 1
            try:
                while len(self._items) >= self._maxsize and not self.closed:
                    self._room.wait()
            finally:
                self._room_waiters -= 1

    def hurry(self) -> None:
        """Make the writer thread commit what is queued without lingering."""
        self.hurried = True
        self._wake.set()

    def wait_ready(self, linger: float) -> bool:
        """In the writer thread: wait for a first item, then up to ``linger`` s for a full
        batch (less when hurried or closing). False once the queue is closed and empty."""
        items, wake = self._items, self._wake
        while not items:
            if self.closed:
                return False
            self._sleeping = True
            wake.clear()
            if not items and not self.closed:
                wake.wait(IDLE_WAIT)
            self._sleeping = False
        if (
            linger > 0
            and len(items) < self._full_batch
            and not self.hurried
            and not self.closed
            and self._dense(linger)
        ):
            deadline = time.monotonic() + linger
            self._lingering = True
            while True:
                wake.clear()
                if len(items) >= self._full_batch or self.hurried or self.closed:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                wake.wait(remaining)
            self._lingering = False
        return True

    def _dense(self, linger: float) -> bool:
        """Whether the recent arrivals promise another item within ``linger`` (rate * linger
        >= 1): lingering for a sparse stream only adds latency. The rate is a decaying count
        over about ``DENSE_SPAN`` lingers (an exponential moving average, the arrivals since the
        last look spread over that time), not the arrivals since the last look alone: at 100
        events/s an event that came during the commit of the one before (a firer catching up
        after a pause) made 1 arrival in 1 ms, "1,000/s", and a 5 ms linger for it; so did the
        few that queued up during a slow commit."""
        now, appended = self._clock(), self.appended
        arrived, elapsed = appended - self._counted, now - self._counted_at
        self._counted, self._counted_at = appended, now
        span = DENSE_SPAN * linger
        decay = math.exp(-elapsed / span)
        spread = (1 - decay) * span / elapsed if elapsed > 0 else 1.0
        self._recent = self._recent * decay + arrived * spread  # ~ rate * span
        return self._recent >= DENSE_SPAN

    def take(self) -> list[Item]:
        """Up to ``batch_size`` items, oldest first (commit role held)."""
        items = self._items
        count = min(len(items), self.batch_size)
        self.in_flight += count  # before the pops: ``pending`` never counts too few
        batch = [items.popleft() for _ in range(count)]
        self._room_made = True
        return batch

    def wake_room_waiters(self) -> None:
        """Let firers blocked on a full queue go on (commit role held; after :meth:`take`).

        The committer calls it just before its first long database call rather than in
        :meth:`take`: a woken firer takes the GIL, and the committer's own Python work (rows,
        same-commit statements, a BEGIN) would wait behind it (up to the switch interval per
        GIL release) instead of overlapping the firer with the database's work."""
        if self._room_made:
            self._room_made = False
            if self._room_waiters:
                with self._room:
                    self._room.notify_all()

    def give_back(self, batch: list[Item]) -> None:
        """Put a batch that could not be committed back in front, in order (commit role held)."""
        self._items.extendleft(reversed(batch))
        self.in_flight -= len(batch)

    def finish(self, count: int) -> None:
        self.in_flight -= count
        self.wake_room_waiters()  # if no database call did (nothing to write, or it failed first)

    def drain(self) -> list[Item]:
        """Everything still queued (after the writer thread ended)."""
        items = list(self._items)
        self._items.clear()
        return items

    def close(self) -> None:
        self.closed = True
        self._wake.set()
        with self._room:
            self._room.notify_all()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def pending(self) -> int:
        return len(self._items) + self.in_flight


class Writer:
    """The committer of one engine (SQLite or PostgreSQL): a thread, and waiting callers."""

    def __init__(
        self,
        engine: Engine,
        *,
        batch_size: int,
        flush_interval: float,
        queue_size: int,
        make_row: RowMaker,
        write_lock: contextlib.AbstractContextManager[Any] | None = None,
    ) -> None:
        if batch_size < 1 or queue_size < 1 or flush_interval < 0:
            raise ValueError("batch_size and queue_size must be positive and flush_interval not negative")
        self._engine = engine
        self._dialect = engine.dialect.name
        self._dbapi = engine.dialect.loaded_dbapi
        self._linger = flush_interval
        self._queue = WriteQueue(queue_size, batch_size)
        self._make_row = make_row
        self._write_lock = write_lock if write_lock is not None else contextlib.nullcontext()
        # A waiting caller takes the write lock only if it is free (SQLite's; nothing on PostgreSQL).
        self._lock_to_try = write_lock if isinstance(write_lock, FairLock) else None
        self._role = threading.Lock()  # held by whoever takes and commits
        self._committer: int | None = None  # the thread holding the role
        self._recheck = False  # the next commit skips rows a failed attempt may have stored
        self._conn: Any = None  # the DBAPI connection: used and closed only with ``_role`` held
        self._stopped = False  # stop() closed the connection (role held): nobody opens another
        self._busy_ms = 0  # SQLite: the busy timeout of the open connection (PRAGMA busy_timeout)
        self._abandon = threading.Event()
        self._thread: threading.Thread | None = None
        self._same_commit: tuple[SameCommit, ...] = ()
        self._setups: dict[int, tuple[str, ...]] = {}  # hook index -> connection_setup run on _conn
        self.lost = 0
        self.stats = WriterStats()
        # Per committed transaction, observed by the committer holding the role (linkserver.server.metrics).
        self.batch_sizes = Buckets(BATCH_SIZE_BOUNDS)
        self.commit_seconds = Buckets(COMMIT_SECONDS_BOUNDS)
        quote = engine.dialect.identifier_preparer.quote
        columns = ", ".join(quote(name) for name in EVENT_COLUMNS)
        if self._dialect == "sqlite":
            marks = "(" + ", ".join("?" * len(EVENT_COLUMNS)) + ")"
            full = min(batch_size, SQLITE_MAX_ROWS)
            sizes = sorted({full, *(1 << k for k in range(12) if 1 << k < full)}, reverse=True)
            # OR ROLLBACK: a statement inside BEGIN/COMMIT that may fail half-way (ABORT, the
            # default) makes SQLite keep a statement journal of every page it changes, spilled
            # to a temporary file past 64 KiB: that doubled the CPU cost of a batch's INSERT in
            # a transaction (tools/bench/alarms.py). A rejected row rolls the whole transaction
            # back instead, which is what the writer does with a failed batch anyway.
            self._chunk_sql = {
                size: f"INSERT OR ROLLBACK INTO events ({columns}) VALUES " + ", ".join([marks] * size)
                for size in sizes
            }
            self._existing_sql = "SELECT id FROM events WHERE id BETWEEN ? AND ?"
        else:
            self._insert_sql = f"COPY events ({columns}) FROM STDIN"
            self._insert_values = f"INSERT INTO events ({columns}) VALUES "
            self._marks = "(" + ", ".join(["%s"] * len(EVENT_COLUMNS)) + ")"
            self._values_sql_cache: dict[int, str] = {}
            self._client_cursor = self._dbapi.ClientCursor  # the dbapi is psycopg 3 (see engine.py)
            self._existing_sql = "SELECT id FROM events WHERE id BETWEEN %s AND %s"

    # -- the firer's side ------------------------------------------------------

    def add_same_commit(self, hook: SameCommit) -> None:
        """Run ``hook``'s statements in the transaction of every batch from now on."""
        self._same_commit = (*self._same_commit, hook)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="linkserver-history-writer", daemon=True)
        self._thread.start()

    def submit(
        self,
        event: Event,
        requires_acknowledgement: bool = False,
        row: tuple[Any, ...] | None = None,
        *,
        waiting: bool = False,
        hurry: bool = False,
    ) -> Future[Event]:
        """Queue an event; its future completes after the commit. Blocks while the queue is full.

        ``row`` None: the committer makes it (the data must be JSON-able: a
        format validated it). ``waiting``: the caller waits for the future
        right away, which commits it; the writer thread is not woken for it.
        ``hurry``: the writer thread commits without lingering.
        """
        future: Future[Event] = new_future(self._wait)  # running: it cannot be cancelled any more
        self._queue.put((future, event, requires_acknowledgement, row), wake=not waiting)
        if hurry:
            self._queue.hurry()
        return future

    @property
    def enqueue(self) -> Callable[[Item], None]:
        """The queue's own put, for a store that makes its items itself (one call less per
        event than :meth:`put`): ``(future or None, event, requires_acknowledgement, row)``."""
        return self._queue.put

    def put(
        self, event: Event, requires_acknowledgement: bool = False, row: tuple[Any, ...] | None = None
    ) -> None:
        """:meth:`submit` without a future, for a firer that never waits: the event is
        committed the same way; if it cannot be stored, that is logged."""
        self._queue.put((None, event, requires_acknowledgement, row))

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted so far is finished; False on timeout.

        Returns at once when called by the committing thread (from a future's
        done-callback, which runs there): it cannot wait for itself.
        """
        if self._committer == threading.get_ident() or not self._queue.pending:
            return True
        marker: Future[Any] = new_future(self._wait)
        try:
            self._queue.put((marker, None, False, None), wake=False)
        except ServerStopped:
            return not self._queue.pending
        try:
            marker.result(timeout)
        except TimeoutError:
            return False
        except HistoryError:  # the writer gave up (stopping): nothing is pending any more
            pass
        return True

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
        # A caller may still be committing, or a bulk writer (the purge) be in a transaction on
        # the connection: the role is what keeps two threads off the native connection at once,
        # so it is closed with the role held, and none is opened after.
        with self._role:
            stranded = self._queue.drain()  # put while stop began: nobody commits them now
            self._rejected(stranded)
            self._fail(stranded, HistoryError("history stopped before the event could be stored"))
            self.lost += sum(1 for item in stranded if item[1] is not None)
            self._stopped = True
            self._close_connection()
        if self.lost:
            log.error("history stopped with the database unavailable: %d events were NOT stored", self.lost)

    @contextlib.contextmanager
    def own_connection(self, *, reuse_only: bool = False) -> Iterator[Any]:
        """The writer's own DBAPI connection (in autocommit mode: begin and commit yourself),
        with the committer's role and the write lock held, for a bulk writer's transaction
        (the purge on SQLite) between two batches. Use it only inside the block: the role
        is what keeps the native connection to one thread at a time.

        On SQLite a connection drops its whole page cache when it finds that
        another connection committed since its last transaction: with the purge
        on a connection of its own, the writer's commit and each purge
        transaction after it read every page they touch again (the purge's
        context index pages, the index interiors); on one connection both keep
        theirs. A failure closes the connection: the next user opens another.

        Once :meth:`stop` began it raises ``ServerStopped`` (stop closes the
        connection with the role held, and waits only for a transaction under
        way). ``reuse_only``: yields None instead of opening a connection when
        none is open, and after :meth:`stop` (to undo a setting made on the
        connection, never to open one for it).
        """
        with self._role:
            if self._stopped or (reuse_only and self._conn is None):
                if reuse_only:
                    yield None
                    return
                raise ServerStopped("history is stopped")
            if self._queue.closed and not reuse_only:  # stopping: no bulk transaction delays it
                raise ServerStopped("history is stopping")
            self._committer = threading.get_ident()
            try:
                with self._write_lock:
                    try:
                        yield self._connection().driver_connection
                    except BaseException:
                        self._close_connection()
                        raise
            finally:
                self._committer = None

    @property
    def appended(self) -> int:
        """Events ever submitted (for "anything new?"; not exact under concurrent submits)."""
        return self._queue.appended

    @property
    def pending(self) -> int:
        """Events submitted but not yet finished (queued or being written); never too few."""
        return self._queue.pending

    # -- waiting callers ---------------------------------------------------------

    def _wait(self, future: Future[Any], timeout: float | None = None) -> None:
        """Called by a caller about to wait for ``future`` at most ``timeout`` seconds: commit
        now, here if nobody is committing and nobody else writes (an acknowledgement, a purge
        batch holding the write lock). Otherwise the writer thread commits it, and the caller
        waits for the future with its own timeout: it never waits here for someone else's
        write. Its own commit keeps to ``timeout`` too: on SQLite a lock held by another
        connection is waited for at most the time left (not the connection's busy timeout,
        5 s by default), then the batch goes back to the writer thread, which retries."""
        queue = self._queue
        if queue.closed or self._abandon.is_set() or not self._role.acquire(blocking=False):
            queue.hurry()
            return
        lock = self._lock_to_try
        if lock is not None and not lock.acquire(False):
            self._role.release()
            queue.hurry()
            return
        handed_back = False
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            self._committer = threading.get_ident()
            while not future.done() and len(queue):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    handed_back = True  # the rest is the writer thread's
                    break
                batch = queue.take()
                if not self._process(batch, retry=False, locked=True, within=left):
                    handed_back = True
                    break
                self.stats.by_callers += 1
        finally:
            self._committer = None
            if lock is not None:
                lock.release()
            self._role.release()
        if handed_back:
            queue.hurry()

    # -- the writer thread -------------------------------------------------------

    def _run(self) -> None:
        queue = self._queue
        while queue.wait_ready(self._linger):
            with self._role:
                self._committer = threading.get_ident()
                queue.hurried = False  # a hurry from now on asks for another round
                batch = queue.take()
                if batch:
                    self._process(batch, retry=True)
                self._committer = None

    # -- committing (role held) ----------------------------------------------------

    def _process(
        self, batch: list[Item], *, retry: bool, locked: bool = False, within: float | None = None
    ) -> bool:
        """Commit ``batch`` and finish its items; False if a single attempt failed and the
        batch went back to the queue (``retry=False`` only). ``locked``: the caller holds the
        write lock already. ``within``: seconds the attempt may wait for a database lock."""
        if self._abandon.is_set():
            self._rejected(batch)
            self._fail(batch, HistoryError("history stopped before the event could be stored"))
            self.lost += sum(1 for item in batch if item[1] is not None)
            self._queue.finish(len(batch))
            return True
        try:
            rows, writable, markers = self._rows(batch)
            if writable:
                error = self._commit(rows, writable, retry=retry, locked=locked, within=within)
                if error is not None and not retry:
                    self._queue.give_back(batch)  # the writer thread retries or isolates the bad row
                    return False
                self._complete(writable, rows, error)
            if markers:
                complete((marker, None) for marker in markers)
        except BaseException as exc:  # never leave a future hanging
            log.exception("history writer failed unexpectedly")
            self._rejected(batch)
            self._fail(batch, HistoryError(f"the history writer failed: {exc!r}"))
        self._queue.finish(len(batch))
        return True

    def _rows(self, batch: list[Item]) -> tuple[list[tuple[Any, ...]], list[Item], list[Future[Any]]]:
        """The rows to write (made here when the firer left it to us), their items, and the
        flush markers, which complete after the batch."""
        rows, writable, markers = [], [], []
        make = self._make_row
        for item in batch:
            future, event, requires_ack, row = item
            if event is None:
                markers.append(future)
                continue
            if row is None:
                try:
                    row = make(event, requires_ack)
                except UnstorableEvent as exc:  # validated data should never get here
                    self.stats.failed += 1
                    log.error("history cannot store event %s: %s", event.id, exc)
                    if future is not None:
                        future.set_exception(exc)
                    continue
            rows.append(row)
            writable.append(item)
        return rows, writable, markers

    def _complete(self, items: list[Item], rows: list[tuple[Any, ...]], error: BaseException | None) -> None:
        if error is None:
            self.stats.transactions += 1
            self.stats.events += len(items)
            complete((item[0], item[1]) for item in items if item[0] is not None)
            return
        if isinstance(error, _Abandoned):
            self._rejected(items)
            self._fail(items, HistoryError("history stopped before the event could be stored"))
            self.lost += len(items)
            return
        if len(items) == 1:
            event = items[0][1]
            assert event is not None
            self.stats.failed += 1
            log.error("history rejected event %s: %s", event.id, error)
            rejection = HistoryError(f"the database rejected event {event.id}: {error}")
            _drop_locals(error)  # the frame of _commit too, finished now: no cycle through the future
            rejection.__cause__ = error  # a same-commit check's own error, for the firer to read
            self._rejected(items)  # first: a firer woken by the failure sees the hooks' view of it
            self._fail(items, rejection)
            return
        for item, row in zip(items, rows, strict=True):  # isolate the rows the database rejects
            self._complete([item], [row], self._commit([row], [item], retry=True))

    def _commit(
        self,
        rows: Sequence[tuple[Any, ...]],
        items: Sequence[Item],
        *,
        retry: bool,
        locked: bool = False,
        within: float | None = None,
    ) -> BaseException | None:
        """Commit ``rows``; the permanent error, or None. Transient errors are retried, or
        with ``retry=False`` returned after one attempt. ``locked``: the write lock is held.
        ``within``: seconds an attempt may wait for a database lock (SQLite), None: the
        connection's busy timeout."""
        attempt = 0
        started = time.perf_counter()
        lock = contextlib.nullcontext() if locked else self._write_lock
        while True:
            try:
                with lock:
                    self._write(rows, items, skip_existing=self._recheck, within=within)
                self._recheck = False
                if self._same_commit:
                    self._committed(items)
                self.commit_seconds.observe(time.perf_counter() - started)  # retries included
                self.batch_sizes.observe(len(rows))
                if attempt:
                    log.warning("history writer recovered after %d failed attempts", attempt)
                return None
            except Exception as exc:
                _drop_locals(exc)
                self._close_connection()
                self._queue.wake_room_waiters()  # the room is there, whenever this commits
                if not self._retryable(exc):
                    return exc
                self._recheck = True
                attempt += 1
                self.stats.retries += 1
                if not retry:
                    log.info("history commit by a waiting caller failed; the writer retries: %s", exc)
                    return exc
                delay = min(FIRST_BACKOFF * 2 ** (attempt - 1), MAX_BACKOFF)
                if attempt == 1 or attempt % 10 == 0:
                    log.warning("history write failed (attempt %d), retry in %.2fs: %s", attempt, delay, exc)
                if self._abandon.wait(delay):
                    return _Abandoned()

    def _committed(self, items: Sequence[Item]) -> None:
        events = [item[1] for item in items if item[1] is not None]
        for hook in self._same_commit:
            try:
                hook.committed(events)
            except Exception:  # committed is committed: the events' futures still complete
                log.exception("a same-commit hook failed after the commit")

    def _rejected(self, items: Sequence[Item]) -> None:
        """Tell the hooks that want to know of the events given up on for good."""
        events = [item[1] for item in items if item[1] is not None]
        for hook in self._same_commit:
            rejected = getattr(hook, "rejected", None)
            if rejected is None or not events:
                continue
            try:
                rejected(events)
            except Exception:
                log.exception("a same-commit hook failed on rejected events")

    def _extra_statements(self, rows: Sequence[tuple[Any, ...]], items: Sequence[Item]) -> list[Statement]:
        if len(rows) == len(items):
            events = [item[1] for item in items if item[1] is not None]
        else:  # a retry left out rows an earlier attempt stored
            written = {row[0] for row in rows}
            events = [item[1] for item in items if item[1] is not None and item[1].id in written]
        if not events:
            return []
        return [
            statement for hook in self._same_commit for statement in hook.statements(self._dialect, events)
        ]

    def _connection(self) -> Any:
        conn = self._conn
        if conn is None:
            conn = self._engine.raw_connection()
            # Autocommit: one statement is one transaction, without a round trip
            # (PostgreSQL) or a GIL release (SQLite) for a separate COMMIT.
            if self._dialect == "sqlite":
                db = conn.driver_connection
                db.isolation_level = None
                self._busy_ms = int(db.execute("PRAGMA busy_timeout").fetchone()[0])
            else:
                conn.driver_connection.autocommit = True
            self._conn = conn
        return conn

    def _write(
        self,
        rows: Sequence[tuple[Any, ...]],
        items: Sequence[Item],
        *,
        skip_existing: bool,
        within: float | None = None,
    ) -> None:
        conn = self._connection()
        if self._dialect == "sqlite" and within is not None and within * 1000 < self._busy_ms:
            self._write_within(conn, rows, items, skip_existing, within)
            return
        if skip_existing:
            rows = self._not_stored(conn, rows)
        extra = self._extra_statements(rows, items) if self._same_commit else []
        if self._dialect == "sqlite":
            if self._same_commit:
                self._set_up(conn.driver_connection)
            self._write_sqlite(conn.driver_connection, rows, extra)
            return
        self._queue.wake_room_waiters()
        if rows and len(rows) <= SIMPLE_QUERY_ROWS:
            self._write_postgresql_small(conn.driver_connection, rows, extra)
        elif rows and extra:
            db = conn.driver_connection
            with db.transaction(), db.cursor() as cursor:
                with cursor.copy(self._insert_sql) as copy:
                    for row in rows:
                        copy.write_row(row)
                for statement in extra:
                    cursor.executemany(statement[0], statement[1])
                    if len(statement) > 2:
                        statement[2](cursor.rowcount)  # type: ignore[misc]
        elif rows:
            with conn.driver_connection.cursor() as cursor, cursor.copy(self._insert_sql) as copy:
                for row in rows:
                    copy.write_row(row)

    def _write_within(
        self, conn: Any, rows: Sequence[tuple[Any, ...]], items: Sequence[Item], skip: bool, within: float
    ) -> None:
        """:meth:`_write` on SQLite waiting at most ``within`` seconds for a lock (a waiting
        caller's commit, see :meth:`_wait`), then the connection's busy timeout back. A
        failure closes the connection anyway (a new one has its own busy timeout)."""
        db = conn.driver_connection
        db.execute(f"PRAGMA busy_timeout = {max(1, int(within * 1000))}")
        self._write(rows, items, skip_existing=skip)
        db.execute(f"PRAGMA busy_timeout = {self._busy_ms}")

    def _set_up(self, db: Any) -> None:
        """Run each hook's ``connection_setup`` (SQLite) on this connection when it is not what
        was last run there: after ``statements``, before the batch's INSERT."""
        done = self._setups
        for index, hook in enumerate(self._same_commit):
            setup = getattr(hook, "connection_setup", None)
            if setup is not None and done.get(index) is not setup:
                for sql in setup:
                    db.execute(sql)
                done[index] = setup

    def _write_postgresql_small(
        self, db: Any, rows: Sequence[tuple[Any, ...]], extra: Sequence[Statement]
    ) -> None:
        """A small batch and its hooks' statements as ONE simple-protocol query: one round trip.

        PostgreSQL runs the statements of one simple query in one implicit
        transaction, committed after the last one (any error rolls back all of
        them), so the batch stays atomic without BEGIN/COMMIT round trips; COPY
        plus a transaction block costs four. psycopg's ClientCursor binds the
        parameters client-side (quoted by libpq for this connection). Each
        statement's rowcount comes back as its own result (``nextset``). A
        check must see the rowcounts BEFORE the commit, so with checks the
        query opens a transaction block and a second round trip commits it.
        """
        checked = any(len(statement) > 2 for statement in extra)
        sql = [self._values_sql(len(rows))]
        params = list(itertools.chain.from_iterable(rows))
        for statement in extra:
            for values in statement[1]:
                sql.append(statement[0])
                params.extend(values)
        if checked:
            sql.insert(0, "BEGIN")
        with self._client_cursor(db) as cursor:
            cursor.execute("; ".join(sql), params)
            if checked:
                cursor.nextset()  # BEGIN's result, then the events' INSERT
            try:
                for statement in extra:
                    changed = 0
                    for _ in statement[1]:
                        cursor.nextset()
                        changed += max(cursor.rowcount, 0)
                    if len(statement) > 2:
                        statement[2](changed)  # type: ignore[misc]
            except BaseException:
                if checked:  # a check that raised: nothing of the batch may stay
                    with contextlib.suppress(Exception):
                        cursor.execute("ROLLBACK")
                raise
            if checked:
                cursor.execute("COMMIT")

    def _values_sql(self, count: int) -> str:
        sql = self._values_sql_cache.get(count)
        if sql is None:
            sql = self._values_sql_cache[count] = self._insert_values + ", ".join([self._marks] * count)
        return sql

    def _write_sqlite(
        self, db: Any, rows: Sequence[tuple[Any, ...]], extra: Sequence[Statement] = ()
    ) -> None:
        statements = []
        flatten = itertools.chain.from_iterable
        start, total = 0, len(rows)
        for size, sql in self._chunk_sql.items():
            while total - start >= size:
                statements.append((sql, list(flatten(rows[start : start + size]))))
                start += size
        # executemany with one parameter set: one GIL release (see the module doc).
        wake = self._queue.wake_room_waiters
        if statements and extra:
            db.execute("BEGIN IMMEDIATE")
            wake()  # after the BEGIN: the woken firer would hold the GIL through it
            try:
                for sql, params in statements:
                    db.executemany(sql, [params])
                for statement in extra:
                    cursor = db.executemany(statement[0], statement[1])
                    changed = cursor.rowcount
                    cursor.close()  # before the check: never left to the collector (see _commit)
                    if len(statement) > 2:
                        statement[2](changed)  # type: ignore[misc]
            except BaseException:
                # A check that raised leaves SQLite's transaction open (and its write lock held):
                # end it here, not whenever the invalidated connection is collected.
                with contextlib.suppress(Exception):
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        elif len(statements) == 1:
            wake()
            db.executemany(statements[0][0], [statements[0][1]])  # one statement, one transaction
        elif statements:
            # On error the connection is invalidated, which rolls the transaction back.
            db.execute("BEGIN IMMEDIATE")
            wake()
            for sql, params in statements:
                db.executemany(sql, [params])
            db.execute("COMMIT")

    def _not_stored(self, conn: Any, rows: Sequence[tuple[Any, ...]]) -> Sequence[tuple[Any, ...]]:
        if not rows:
            return rows
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
        self._setups.clear()  # a new connection runs the hooks' setups again
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

    @staticmethod
    def _fail(items: Sequence[Item], error: BaseException) -> None:
        for item in items:
            future = item[0]
            if future is not None and not future.done():
                future.set_exception(error)


class _Abandoned(Exception):
    pass


def _drop_locals(exc: BaseException) -> None:
    """Clear the local variables of the finished frames in ``exc``'s traceback and those of
    its causes (the line numbers stay, for a printed traceback).

    A failed batch's error is kept: as the cause of the rejected event's error, held by its
    future, whose item the frame of :meth:`Writer._commit` holds: a reference cycle, freed by
    the garbage collector in whichever thread it runs. Freeing a sqlite3 cursor that was not
    closed resets its statement, which the connection's statement cache shares with every
    later cursor of the same SQL: CPython 3.11 would reset it under the writer thread while
    that thread runs it. With the frames' locals gone no cursor or connection is in the cycle.
    Frames still running, and those of generators (clearing one would close it), are left.
    """
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        tb = error.__traceback__
        while tb is not None:
            if not tb.tb_frame.f_code.co_flags & _SUSPENDABLE:
                with contextlib.suppress(RuntimeError):  # still running
                    tb.tb_frame.clear()
            tb = tb.tb_next
        error = error.__cause__ or error.__context__
