#!/usr/bin/env python3
"""History store benchmarks, each next to a baseline measured in the same run.

1. ``sqlite_durable_fire``: N persistent events appended through
   SqlHistoryStore (its default settings) into a SQLite file, every future
   waited for (durable), vs. raw ``sqlite3``: the same rows, built from the
   same events, ``executemany`` in ONE transaction on a connection with the
   same settings. Both start from Event objects, because the store's input is
   events and any way of storing them must encode their data tables; the
   line above the goal also shows the baseline with rows built beforehand.
   Best of several rounds each side, interleaved. Goal: >= 0.5x.
2. ``postgres_durable_fire``: the same into PostgreSQL vs. psycopg ``COPY``
   of the same rows in one transaction. Needs ``LINKSERVER_BENCH_POSTGRES_URL``
   (default: the local server); skipped with a message if unreachable.

The query and purge goals are in tools/bench/queries.py.

    python tools/bench/history.py [--quick] [--postgres-url URL] [--keep DIR]
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from linkserver.core.events import Event, IdGenerator  # noqa: E402
from linkserver.core.levels import Level  # noqa: E402
from linkserver.history import migrate  # noqa: E402
from linkserver.history.engine import configure_sqlite  # noqa: E402
from linkserver.history.schema import EVENT_COLUMNS, row_maker  # noqa: E402
from linkserver.history.sql import SqlHistoryStore  # noqa: E402

SETTINGS = {
    "quick": dict(fire=10_000, rounds=1),
    "full": dict(fire=100_000, rounds=3),
}  # fmt: skip
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
COLUMNS_SQL = ", ".join('"group"' if name == "group" else name for name in EVENT_COLUMNS)
BASE_ID = 500_000_000 << 22  # ids of generated rows: well before the ones fired now


def goal(name: str, value: float, target: float, *, at_least: bool) -> None:
    ok = value >= target if at_least else value <= target
    relation = ">=" if at_least else "<="
    verdict = "ok" if ok else "short"
    print(f"goal {name}: {value:.2f}x (target {relation} {target:.2f}x) {verdict}", flush=True)


def skipped(name: str, why: str) -> None:
    print(f"goal {name}: skipped ({why})", flush=True)


def make_events(count: int, *, start: datetime | None = None) -> list[Event]:
    ids = IdGenerator(node_id=1)
    events = []
    for i in range(count):
        event_id, ms = ids.next()
        created = datetime.fromtimestamp(ms / 1000, UTC)
        events.append(
            Event(
                id=event_id,
                context=f"devices.d{i % 100}",
                name="measurement",
                level=Level(i % 6),
                created=created,
                expires=created + timedelta(days=10),
                author="bench",
                group="measurements",
                data=({"quantity": "temperature", "value": 20.0 + i % 7, "unit": "degC", "seq": i},),
            )
        )
    return events


@contextmanager
def sqlite_file(workdir: Path) -> Iterator[str]:
    """A fresh, migrated SQLite file; yields its path."""
    directory = Path(tempfile.mkdtemp(dir=workdir))
    path = directory / "history.sqlite3"
    migrate.upgrade(f"sqlite:///{path}")
    try:
        yield str(path)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s"


# -- 1. durable fire into SQLite -----------------------------------------------------


def store_round(url: str, events: list[Event]) -> float:
    store = SqlHistoryStore(url)
    store.start()
    try:
        started = time.perf_counter()
        futures = [store.append(event) for event in events]
        for future in futures:
            future.result()
        return time.perf_counter() - started
    finally:
        store.stop()


def sqlite_raw_round(path: str, events: list[Event], *, prebuilt: bool) -> float:
    make = row_maker("sqlite")
    rows = [make(event, False) for event in events] if prebuilt else None
    connection = sqlite3.connect(path)
    configure_sqlite(connection)
    try:
        started = time.perf_counter()
        if rows is None:
            rows = [make(event, False) for event in events]
        marks = ", ".join("?" * len(EVENT_COLUMNS))
        connection.executemany(f"INSERT INTO events ({COLUMNS_SQL}) VALUES ({marks})", rows)
        connection.commit()
        return time.perf_counter() - started
    finally:
        connection.close()


def bench_sqlite_fire(settings: dict[str, Any], workdir: Path) -> None:
    count, rounds = settings["fire"], settings["rounds"]
    print(f"\n1. durable fire into SQLite: {count:,} events, best of {rounds}")
    events = make_events(count)
    gc.collect()
    gc.freeze()  # the prepared events are the benchmark's, not the store's garbage
    best = {"store": float("inf"), "raw": float("inf"), "prebuilt": float("inf")}
    for _ in range(rounds):
        with sqlite_file(workdir) as path:
            best["raw"] = min(best["raw"], sqlite_raw_round(path, events, prebuilt=False))
        with sqlite_file(workdir) as path:
            best["store"] = min(best["store"], store_round(f"sqlite:///{path}", events))
        with sqlite_file(workdir) as path:
            best["prebuilt"] = min(best["prebuilt"], sqlite_raw_round(path, events, prebuilt=True))
    gc.unfreeze()
    print(f"   store, every future waited for:           {rate(count, best['store'])}")
    print(
        f"   raw sqlite3 executemany, one transaction: {rate(count, best['raw'])} "
        f"(rows built beforehand: {rate(count, best['prebuilt'])}, "
        f"store/that = {best['prebuilt'] / best['store']:.2f}x)"
    )
    goal("sqlite_durable_fire", best["raw"] / best["store"], 0.5, at_least=True)


# -- 2. durable fire into PostgreSQL ---------------------------------------------------


def bench_postgres_fire(settings: dict[str, Any], url: str) -> None:
    from sqlalchemy import create_engine, text

    count, rounds = settings["fire"], settings["rounds"]
    print(f"\n2. durable fire into PostgreSQL: {count:,} events, best of {rounds}")
    admin = create_engine(url)
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        admin.dispose()
        print(f"   PostgreSQL at {url} is unreachable: {exc.__class__.__name__}")
        skipped("postgres_durable_fire", "PostgreSQL unreachable; set LINKSERVER_BENCH_POSTGRES_URL")
        return
    events = make_events(count)
    gc.collect()
    gc.freeze()
    best = {"store": float("inf"), "raw": float("inf")}
    try:
        for _ in range(rounds):
            for side in ("raw", "store"):
                schema = f"lsbench_{uuid.uuid4().hex[:10]}"
                with admin.begin() as conn:
                    conn.execute(text(f'CREATE SCHEMA "{schema}"'))
                separator = "&" if "?" in url else "?"
                schema_url = f"{url}{separator}options=-csearch_path%3D{schema}"
                try:
                    migrate.upgrade(schema_url)
                    if side == "store":
                        seconds = store_round(schema_url, events)
                    else:
                        seconds = postgres_copy_round(schema_url, events)
                    best[side] = min(best[side], seconds)
                finally:
                    with admin.begin() as conn:
                        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        gc.unfreeze()
        admin.dispose()
    print(f"   store, every future waited for:      {rate(count, best['store'])}")
    print(f"   raw psycopg COPY, one transaction:   {rate(count, best['raw'])}")
    goal("postgres_durable_fire", best["raw"] / best["store"], 0.5, at_least=True)


def postgres_copy_round(url: str, events: list[Event]) -> float:
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url).set(drivername="postgresql")
    dsn = parsed.render_as_string(hide_password=False)
    make = row_maker("postgresql")
    with psycopg.connect(dsn) as connection:
        started = time.perf_counter()
        rows = [make(event, False) for event in events]
        with connection.cursor() as cursor, cursor.copy(f"COPY events ({COLUMNS_SQL}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        connection.commit()
        return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test of a few seconds")
    parser.add_argument(
        "--postgres-url", default=os.environ.get("LINKSERVER_BENCH_POSTGRES_URL", DEFAULT_POSTGRES)
    )
    parser.add_argument("--only", nargs="*", choices=["sqlite_fire", "postgres_fire"])
    parser.add_argument("--workdir", help="where the SQLite files go (default: a temporary directory)")
    args = parser.parse_args()
    settings = SETTINGS["quick" if args.quick else "full"]
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="lsbench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(
        f"history benchmark ({'quick' if args.quick else 'full'}), Python {sys.version.split()[0]}, "
        f"SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs"
    )
    parts = {
        "sqlite_fire": lambda: bench_sqlite_fire(settings, workdir),
        "postgres_fire": lambda: bench_postgres_fire(settings, args.postgres_url),
    }
    try:
        for name, run in parts.items():
            if not args.only or name in args.only:
                run()
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
