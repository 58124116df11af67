"""Generated history databases for the query and purge benchmarks, cached by shape.

A database of N rows is built once with raw SQL (table first, indexes after,
from the DDL the migrations made) and kept under the bench data directory
(``LINKSERVER_BENCH_DATA``, default ``build/bench-data`` in the repository),
keyed by row count, data shape version and schema revision, so a re-run
reuses it (the key includes a digest of the ``events`` and
``acknowledgements`` DDL: a migration that changes them makes new files).
Benchmarks that change a database work on a copy.

The shape makes selectivity real: every kind of row is spread through the
whole id range by a pseudo-random draw per row, never clustered at the top.

| share | context | name | level |
|---|---|---|---|
| 90% | ``devices.d0`` .. ``devices.d999`` | measurement | see below |
| 5% | ``devices.dK.sensors.sJ`` (deeper: outside ``devices.*``) | reading | see below |
| 5% | ``users.u0`` .. ``users.u99`` | login | INFO |

Levels of device rows: 20% NOTICE, 65% INFO, 14.9% WARNING, 0.05% ERROR,
0.05% FATAL (so ``level >= ERROR`` is 0.1%). ``data`` is one record
``{"quantity": "temperature", "value": V, "unit": "degC", "seq": i}`` with V
uniform in 0.00 .. 99.99 (``data.value >= 99.9`` is 0.1%, ``> 99.5`` 0.5%).
Ids are real event ids, 10 ms apart (100 events/s), starting 2024-05-01;
``expires`` is ``created`` + 10 days, so every generated row is expired now.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from linkserver.core.events import EPOCH_MS, NODE_BITS, SEQUENCE_BITS
from linkserver.history import migrate
from linkserver.history.engine import configure_sqlite

ROOT = Path(__file__).resolve().parents[2]
SHAPE = "v2"
START_MS = int(datetime(2024, 5, 1, tzinfo=UTC).timestamp() * 1000)
STEP_MS = 10
LIFETIME_MS = 10 * 86_400_000
CHUNK = 1_000_000


def data_dir() -> Path:
    return Path(os.environ.get("LINKSERVER_BENCH_DATA", ROOT / "build" / "bench-data"))


def cached_database(rows: int, *, log: bool = True) -> Path:
    """The path of a generated SQLite history database of ``rows`` events (built if missing)."""
    directory = data_dir()
    directory.mkdir(parents=True, exist_ok=True)
    building = directory / f"history-{SHAPE}-{rows}.building"
    for leftover in directory.glob(building.name + "*"):
        leftover.unlink()
    migrate.upgrade(f"sqlite:///{building}")
    path = directory / f"history-{SHAPE}-{rows}-{schema_digest(building)}.sqlite3"
    if path.exists():
        for leftover in directory.glob(building.name + "*"):
            leftover.unlink()
        return path
    started = time.perf_counter()
    fill(building, rows)
    building.rename(path)
    if log:
        print(f"   generated {rows:,} events in {time.perf_counter() - started:.0f} s: {path}", flush=True)
    return path


def schema_digest(path: Path) -> str:
    """A short digest of the DDL of the tables the benchmarks fill (and their indexes)."""
    connection = sqlite3.connect(path)
    try:
        ddl = connection.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name IN ('events', 'acknowledgements') "
            "AND sql IS NOT NULL ORDER BY name"
        ).fetchall()
    finally:
        connection.close()
    return hashlib.sha256(repr(ddl).encode()).hexdigest()[:10]


def copy_of(rows: int, workdir: Path) -> Path:
    """A private copy of the cached database (for benchmarks that change it)."""
    source = cached_database(rows)
    target = Path(workdir) / f"copy-{time.monotonic_ns()}.sqlite3"
    shutil.copyfile(source, target)
    return target


def fill(path: Path, rows: int) -> None:
    """Insert ``rows`` generated events by SQL: indexes dropped first, rebuilt after."""
    connection = sqlite3.connect(path, isolation_level=None)
    configure_sqlite(connection)
    connection.execute("PRAGMA cache_size = -500000")
    try:
        indexes = connection.execute(
            "SELECT name, sql FROM sqlite_master "
            "WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL"
        ).fetchall()
        for name, _ in indexes:
            connection.execute(f'DROP INDEX "{name}"')
        shift = NODE_BITS + SEQUENCE_BITS
        for first in range(0, rows, CHUNK):
            last = min(rows, first + CHUNK)
            connection.execute("BEGIN")
            connection.execute(
                f"""
                WITH RECURSIVE seq(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM seq WHERE i + 1 < ?),
                draws AS MATERIALIZED (  -- each random() drawn once per row
                    SELECT i, ? + i * {STEP_MS} AS ms,
                           abs(random()) % 100 AS kind, abs(random()) % 10000 AS r,
                           abs(random()) % 10000 AS v, abs(random()) % 1000 AS device
                    FROM seq
                )
                INSERT INTO events (id, context, name, level, created, expires, author, "group", data,
                                    requires_ack)
                SELECT (ms - {EPOCH_MS}) << {shift},
                       CASE WHEN kind < 90 THEN 'devices.d' || device
                            WHEN kind < 95 THEN 'devices.d' || device || '.sensors.s' || (r % 4)
                            ELSE 'users.u' || (device % 100) END,
                       CASE WHEN kind < 90 THEN 'measurement' WHEN kind < 95 THEN 'reading' ELSE 'login' END,
                       CASE WHEN kind >= 95 THEN 2
                            WHEN r < 5 THEN 5 WHEN r < 10 THEN 4 WHEN r < 1500 THEN 3
                            WHEN r < 3500 THEN 1 ELSE 2 END,
                       ms * 1000, (ms + {LIFETIME_MS}) * 1000, 'bench', 'measurements',
                       '[{{"quantity":"temperature","value":' || printf('%.2f', v / 100.0)
                           || ',"unit":"degC","seq":' || i || '}}]',
                       0
                FROM draws
                """,
                (first, last, START_MS),
            )
            connection.execute("COMMIT")
        for _, sql in indexes:
            connection.execute(sql)
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
