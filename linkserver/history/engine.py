"""Engines for history: SQLite tuned for one writer, PostgreSQL through psycopg 3."""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

from linkserver.core.errors import HistoryError

log = logging.getLogger("linkserver.history")

SQLITE_FILE = "history.sqlite3"
DEFAULT_BUSY_TIMEOUT = 5.0
#: What a commit survives, by durability mode, as SQLite's ``synchronous`` setting (in WAL mode).
#: ``commit``: the commit is in the WAL file (the OS has it): it survives a crash or kill of the
#: process, not an OS crash or power loss. ``fsync``: the WAL is synced to the disk at every
#: commit: it survives those too. PostgreSQL commits as its server is configured
#: (``synchronous_commit``, on by default: synced) in ``commit`` mode; ``fsync`` forces it on.
DURABILITY = {"commit": "NORMAL", "fsync": "FULL"}


def sqlite_url(data_dir: str | Path) -> str:
    """The URL of the history file in ``data_dir`` (the embedded default)."""
    return f"sqlite:///{Path(data_dir).resolve() / SQLITE_FILE}"


def make_engine(
    url: str | URL, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT, durability: str = "commit"
) -> Engine:
    """An engine for a SQLite file or a PostgreSQL server; anything else is refused.

    SQLite: the file's directory is created; every connection uses WAL,
    ``synchronous`` per :data:`DURABILITY` (``commit``: NORMAL, a commit
    survives a crash of the process, only an OS crash or power loss can take
    the last few; ``fsync``: FULL) and waits ``busy_timeout`` seconds for a
    lock. PostgreSQL: ``postgresql://`` means psycopg 3; ``fsync`` sets
    ``synchronous_commit=on`` on every connection.
    """
    synchronous = DURABILITY.get(durability)
    if synchronous is None:
        raise HistoryError(f"history durability is one of {', '.join(DURABILITY)}, not {durability!r}")
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database
        if not database or database == ":memory:" or parsed.query.get("mode") == "memory":
            raise HistoryError(
                "history needs a SQLite file, not an in-memory database (each connection would "
                "see its own); use a file URL, or MemoryHistoryStore for tests"
            )
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": busy_timeout})
        event.listen(engine, "connect", _sqlite_pragmas(busy_timeout, synchronous))
        return engine
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.get_driver_name() != "psycopg":
            raise HistoryError(
                f"history uses psycopg 3 for PostgreSQL; write 'postgresql+psycopg://...', "
                f"not {parsed.drivername!r}"
            )
        # A connection whose peer vanished without a reset (a cut network, a host gone) must
        # fail within seconds, not after the kernel's retransmissions (~15 min): every blocked
        # commit, lease renewal and lock check waits on it. Settings in the URL win.
        keepalive = {key: value for key, value in PG_KEEPALIVE.items() if key not in parsed.query}
        engine = create_engine(parsed, pool_pre_ping=True, connect_args=keepalive)
        if durability == "fsync":
            event.listen(engine, "connect", _postgres_synchronous_commit)
        return engine
    raise HistoryError(f"history supports SQLite and PostgreSQL, not {backend!r} ({parsed!r})")


#: A WAL larger than this is checkpointed with RESTART (see :class:`WalCheckpointer`).
WAL_RESTART_BYTES = 64 * 1024 * 1024
WAL_FRAME_HEADER = 24  # bytes before each page in the WAL file
CATCH_UP_ROUNDS = 8  # passive rounds at most before a RESTART, while a round takes longer than:
CATCH_UP_SECONDS = 0.01
BULK_HOLD_SECONDS = 0.5  # the longest a bulk writer waits for a RESTART's catch-up (see below)
BULK_ACTIVE = 1.0  # seconds after its last turn a bulk writer runs the rounds (see bulk_turn)
BULK_GONE = 10.0  # seconds after a bulk writer's last transaction, and under
LIGHT_BYTES = 1024 * 1024  # of WAL written in an interval, the file is given back (see below)

#: libpq settings of every history connection to PostgreSQL: TCP keepalives after 10 s idle,
#: then every 5 s, dead after 3 unanswered; unacknowledged data gives up after 30 s.
PG_KEEPALIVE = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}


# Raw sqlite3 on the alarms benchmark's rows (a history of 750k events, median CPU per batch
# of 500 over 300, alternating): the events' INSERT 9.2 ms at 2 MB, 6.3 ms at 16 MB (64 MB the
# same); with the alarm list's upsert 11.4 -> 7.3 ms.
CACHE_KIB = 16_384


def configure_sqlite(
    dbapi_connection: Any, busy_timeout: float = DEFAULT_BUSY_TIMEOUT, synchronous: str = "NORMAL"
) -> None:
    """The settings of every history connection to SQLite (also used by the benchmark's baseline).

    ``wal_autocheckpoint = 0``: no commit ever copies the WAL back into the
    database file (that can take hundreds of milliseconds and would stall
    whichever commit crossed the threshold, often the writer's);
    :class:`WalCheckpointer` does it in a thread of its own instead.

    ``cache_size``: :data:`CACHE_KIB` of page cache instead of SQLite's 2 MB. A writer's
    batch of 500 events dirties about 1 MB of table and index pages spread over the
    indexes; with 2 MB the pages a batch descends through keep being evicted and read back
    from the WAL, and a transaction's dirty pages can spill before its COMMIT. The cache
    fills only as pages are used.
    """
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        (mode,) = cursor.execute("PRAGMA journal_mode").fetchone()
        if mode.lower() != "wal":
            cursor.execute("PRAGMA journal_mode = WAL")
        if synchronous not in ("NORMAL", "FULL"):
            raise HistoryError(f"synchronous is NORMAL or FULL, not {synchronous!r}")
        cursor.execute(f"PRAGMA synchronous = {synchronous}")
        cursor.execute("PRAGMA wal_autocheckpoint = 0")
        cursor.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    finally:
        cursor.close()


def _sqlite_pragmas(busy_timeout: float, synchronous: str) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        configure_sqlite(dbapi_connection, busy_timeout, synchronous)

    return on_connect


def _postgres_synchronous_commit(dbapi_connection: Any, _record: Any) -> None:
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    try:
        dbapi_connection.execute("SET synchronous_commit = on")
    finally:
        dbapi_connection.autocommit = autocommit


class WalCheckpointer:
    """Copies SQLite's WAL into the database file every ``interval`` seconds, in its own thread.

    PASSIVE checkpoints never wait for, nor block, the writer or readers;
    frames still in use are left for the next round. Under a steady stream of
    commits a passive round never catches up with the writer, and SQLite
    starts the WAL from its beginning again only after a checkpoint that did:
    the file would grow for as long as the stream lasts (hundreds of MB in
    minutes, each commit slower than the last). So once the WAL holds more
    than ``restart_bytes`` of frames after a passive round, a RESTART
    checkpoint runs under the history's ``write_lock`` (the writer waits its
    turn for it, as for a purge batch): it copies what the passive round
    left (what was committed while it ran) and makes the next commit begin
    the file anew. Passive rounds back to back until one is short keep that
    wait short: a RESTART that copied a purge's WAL (hundreds of MB) held the
    writer for up to 0.3 s. The frames are what counts, not the file's size:
    after a restart the file keeps its size with few frames in it (judged by
    its size, a RESTART ran every second).

    No commit truncates the file (no connection has a ``journal_size_limit``):
    the commit that began the WAL anew truncated it to the limit, 70 to 150 ms
    for the hundreds of MB a purge leaves, inside that transaction and with the
    write lock held. The file is reused from its start instead, and a round
    that finds nothing committed since the last, or under ``LIGHT_BYTES`` with
    no bulk writer for ``BULK_GONE`` seconds, gives the disk back (TRUNCATE,
    under the write lock: once, when few wait for it); so does the last one
    on stop, when nothing else holds the file.

    A purge writes the WAL faster than a passive round copies it (every small
    transaction rewrites the oldest page of each context in the context
    index): 200 MB a second and more. Bulk writers call :meth:`bulk_turn`
    between their transactions, and while one does the rounds run there, in
    its thread, between two of its transactions, not in this thread next to
    them: a round's I/O (syncing those hundreds of MB of WAL, then the copied
    pages) stalled the purge's transactions running beside it, 4 KB writes to
    the WAL taking 8 to 25 ms, a 200-row transaction 40 to 260 ms instead of
    3, with the write lock held and the fires waiting. So the catch-up before
    a RESTART copies only what the writer commits, and the RESTART under the
    lock finds little left. A round of this thread that began before the bulk
    writer came holds it while a RESTART is prepared (at most
    ``BULK_HOLD_SECONDS``).
    """

    def __init__(
        self,
        engine: Engine,
        interval: float = 1.0,
        *,
        write_lock: contextlib.AbstractContextManager[Any] | None = None,
        restart_bytes: int = WAL_RESTART_BYTES,
    ) -> None:
        self._engine = engine
        self._interval = interval
        self._write_lock = write_lock if write_lock is not None else contextlib.nullcontext()
        self.restart_bytes = restart_bytes
        database = engine.url.database
        self._wal = Path(f"{database}-wal") if database else None
        self.restarts = 0  # RESTART checkpoints run (tests, monitoring)
        self._frame_bytes = 0  # a WAL frame: a page and its header (read at the first checkpoint)
        self._stopping = threading.Event()
        self._bulk_may_write = threading.Event()
        self._bulk_may_write.set()
        self._bulk_seen = 0.0  # when a bulk writer last asked for its turn
        self._holds = 0  # RESTARTs prepared so far: the one a bulk writer waited out is not waited again
        self._held_out = -1
        self._round_lock = threading.Lock()  # one round at a time: the thread's or a bulk writer's
        self._last_round = 0.0  # when the last round began
        self._last_held: int | None = None  # frames after the last round (bytes)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="linkserver-history-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._round_lock:  # after a round a bulk writer may be running; none begins after
            self.checkpoint("TRUNCATE")

    def checkpoint(self, mode: str = "PASSIVE") -> int | None:
        """Run a checkpoint; the bytes of frames the WAL holds, or None if it failed."""
        try:
            raw = self._engine.raw_connection()
            try:
                db = raw.driver_connection
                if not self._frame_bytes:
                    self._frame_bytes = db.execute("PRAGMA page_size").fetchone()[0] + WAL_FRAME_HEADER
                _busy, frames, _copied = db.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
            finally:
                raw.close()
        except Exception:  # the next round tries again; the WAL only grows meanwhile
            log.warning("SQLite WAL checkpoint failed", exc_info=True)
            return None
        return max(frames, 0) * self._frame_bytes

    def bulk_turn(self) -> None:
        """Return when a bulk writer (a purge) may run its next transaction: at once, or once
        the RESTART being prepared is done (at most ``BULK_HOLD_SECONDS``, once per RESTART).

        While a bulk writer runs, the rounds run here, in its thread, between two of its
        transactions (one an interval), instead of in the checkpointer's thread next to them.
        """
        now = time.monotonic()
        self._bulk_seen = now
        hold = self._holds
        if self._held_out != hold and not self._bulk_may_write.wait(BULK_HOLD_SECONDS):
            self._held_out = hold  # a long catch-up: one wait of it, not one per transaction
        if now - self._last_round >= self._interval and self._round_lock.acquire(blocking=False):
            try:
                if not self._stopping.is_set():
                    self._round(hold=False)
            finally:
                self._round_lock.release()

    def bulk_held(self) -> bool:
        """Whether :meth:`bulk_turn` would hold a bulk writer now: a bulk writer that got its
        turn and then waited for the write lock asks again before its transaction begins."""
        return not self._bulk_may_write.is_set() and self._held_out != self._holds

    def wal_size(self) -> int:
        try:
            return self._wal.stat().st_size if self._wal is not None else 0
        except FileNotFoundError:
            return 0

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            if time.monotonic() - self._bulk_seen < BULK_ACTIVE:
                continue  # a bulk writer runs the rounds between its transactions
            with self._round_lock:
                if time.monotonic() - self._bulk_seen >= BULK_ACTIVE:  # none came meanwhile
                    self._round(hold=True)

    def _round(self, *, hold: bool) -> None:
        """A passive checkpoint, then a TRUNCATE or a RESTART when due. ``hold``: the bulk
        writer waits during the RESTART's catch-up (it runs elsewhere)."""
        self._last_round = time.monotonic()
        held = self.checkpoint()
        last_held, self._last_held = self._last_held, held
        grew = held - last_held if held is not None and last_held is not None else None
        if held is None:
            return
        no_bulk = time.monotonic() - self._bulk_seen > BULK_GONE
        light = grew is not None and 0 <= grew < LIGHT_BYTES and no_bulk
        if (grew == 0 or light) and self.wal_size() > self.restart_bytes:
            # Nothing or little committed for a whole interval, no purge: the disk back,
            # the truncation (70 to 150 ms for hundreds of MB) keeping few waiting, once.
            with self._write_lock:
                self._last_held = self.checkpoint("TRUNCATE")
            return
        if held <= self.restart_bytes:
            return
        # More passive rounds first, each copying what was committed during the last (a
        # round copies the frames there when it began): what the RESTART copies under the
        # write lock, the writer waiting, is only what came during a short last round.
        if hold:
            self._holds += 1
            self._bulk_may_write.clear()
        try:
            for _ in range(CATCH_UP_ROUNDS):
                started = time.monotonic()
                if self.checkpoint() is None or time.monotonic() - started < CATCH_UP_SECONDS:
                    break
            with self._write_lock:
                self.checkpoint("RESTART")
        finally:
            self._bulk_may_write.set()
        self.restarts += 1


class FairLock:
    """A FIFO lock: waiting threads get it in arrival order.

    SQLite allows one writer at a time; the writer thread, acknowledgements
    and purge batches take this lock so they alternate fairly inside the
    process instead of polling SQLite's busy handler (which sleeps up to
    100 ms between tries) or starving the writer behind a purge.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: collections.deque[threading.Lock] = collections.deque()
        self._held = False

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock (in turn); with ``blocking`` False only if it is free and nobody
        waits for it: True if taken."""
        with self._lock:
            if not self._held and not self._waiters:
                self._held = True
                return True
            if not blocking:
                return False
            gate = threading.Lock()
            gate.acquire()
            self._waiters.append(gate)
        gate.acquire()  # released by the previous holder, who hands the lock over
        return True

    def release(self) -> None:
        with self._lock:
            if self._waiters:
                self._waiters.popleft().release()  # still held: handed to the next waiter
            else:
                self._held = False

    def __enter__(self) -> FairLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
