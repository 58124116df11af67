#!/usr/bin/env python3
"""Serial durable fires through the engine vs raw sqlite3 one row per commit, measured in one run.

The normal case of a device controller: fire one persistent event, wait
until it is durable, fire the next. One firer, one event in flight.

- LinkServer: ``Engine.fire(path, "measurement", data, durable=True)`` on
  the shipped ``measurement`` event (devices.yaml) into a SqlHistoryStore on
  a fresh SQLite file with its default settings: the context and definition
  resolved, the firer's permission checked, the data table validated, id and
  times assigned, the row encoded (JSON data), committed, and the call
  returns only after the commit.
- Baseline: Python's ``sqlite3`` on a fresh file with the same schema and
  indexes (the same migrations) and the same connection settings
  (:func:`linkserver.history.engine.configure_sqlite`: WAL, the same
  ``synchronous``, no automatic checkpoints), in autocommit mode: per event it
  makes the same row (an id, the times as integer microseconds, the data
  table JSON-encoded) and runs one ``INSERT``: one row per commit.

Two goals, both sides in the same durability mode each time:
``serial_durable_fire`` (durability ``commit``: ``synchronous=NORMAL``; a
commit survives a crash of the process) and ``serial_durable_fire_fsync``
(durability ``fsync``: ``synchronous=FULL``; the WAL is synced at every
commit, so it also survives power loss). Target >= 0.5x each. Each side
keeps its file and connection for the whole run and fires in rounds of
``--seconds``, the two sides' rounds interleaved, best round each (the
machine is shared: the best round is the one least disturbed); the line
above the goals shows LinkServer's p50/p99 per durable fire in its best round.

    python tools/bench/durable.py [--quick] [--seconds S]
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from linkserver.core.events import IdGenerator  # noqa: E402
from linkserver.history import migrate  # noqa: E402
from linkserver.history.engine import DURABILITY, configure_sqlite  # noqa: E402
from linkserver.history.schema import EVENT_COLUMNS  # noqa: E402
from linkserver.history.sql import SqlHistoryStore  # noqa: E402
from linkserver.loading import load_contexts  # noqa: E402
from linkserver.server.engine import Engine  # noqa: E402

DEVICE = "devices.plc7"
DATA = [{"quantity": "temperature", "value": 21.5, "unit": "degC"}]
LIFETIME_US = int(timedelta(days=1).total_seconds() * 1_000_000)
COLUMNS_SQL = ", ".join('"group"' if name == "group" else name for name in EVENT_COLUMNS)


def shipped_contexts() -> Path:
    for candidate in (ROOT / "contexts", ROOT / "linkserver" / "defaults" / "contexts"):
        if (candidate / "devices.yaml").exists():
            return candidate
    raise SystemExit("cannot find the shipped contexts (devices.yaml)")


class LinkServerSide:
    """An engine on a SqlHistoryStore (default settings but ``durability``) on a fresh file."""

    def __init__(self, path: Path, durability: str) -> None:
        self.store = SqlHistoryStore(f"sqlite:///{path}", durability=durability)
        self.engine = Engine.from_catalog(load_contexts([shipped_contexts()]), history=self.store)
        self.store.start()
        self.engine.add_context(DEVICE)
        self.engine.fire(DEVICE, "measurement", DATA, durable=True)  # warm: resolve and connect

    def run(self, seconds: float) -> tuple[float, list[float]]:
        fire = self.engine.fire
        latencies = []
        clock = time.perf_counter
        started = now = clock()
        deadline = started + seconds
        while now < deadline:
            fire(DEVICE, "measurement", DATA, durable=True)
            after = clock()
            latencies.append(after - now)
            now = after
        return len(latencies) / (now - started), latencies

    def close(self) -> None:
        self.engine.close()
        self.store.stop()


class RawSide:
    """sqlite3 in autocommit mode on a fresh file with the same schema and connection settings."""

    def __init__(self, path: Path, durability: str) -> None:
        migrate.upgrade(f"sqlite:///{path}")
        self.connection = sqlite3.connect(path, isolation_level=None)  # a statement is a transaction
        configure_sqlite(self.connection, synchronous=DURABILITY[durability])
        self.insert = f"INSERT INTO events ({COLUMNS_SQL}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
        self.ids = IdGenerator(node_id=1)
        self.dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

    def run(self, seconds: float) -> float:
        execute, insert, ids, dumps = self.connection.execute, self.insert, self.ids, self.dumps
        count = 0
        clock = time.perf_counter
        started = now = clock()
        deadline = started + seconds
        while now < deadline:
            event_id, ms = ids.next()
            created = ms * 1000
            row = (event_id, DEVICE, "measurement", 1, created, created + LIFETIME_US, "bench",
                   "measurements", dumps(DATA), False, "UsageEvent")  # fmt: skip
            execute(insert, row)
            count += 1
            now = clock()
        return count / (now - started)

    def close(self) -> None:
        self.connection.close()


def ms(value: float) -> str:
    return f"{value * 1000:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a second or two")
    parser.add_argument("--seconds", type=float, help="length of one round of one side (default 2)")
    args = parser.parse_args()
    seconds = args.seconds or (0.1 if args.quick else 0.5)
    rounds = 1 if args.quick else 8
    print(
        f"serial durable fire, one in flight: best of {rounds} interleaved rounds of {seconds:g} s per side, "
        f"SQLite {sqlite3.sqlite_version}"
    )
    workdir = Path(tempfile.mkdtemp(prefix="lsbench-durable-"))
    goals = []
    try:
        for durability, name in (("commit", "serial_durable_fire"), ("fsync", "serial_durable_fire_fsync")):
            ours, theirs, samples = 0.0, 0.0, [0.0]
            raw = RawSide(workdir / f"raw-{durability}.sqlite3", durability)
            linkserver = LinkServerSide(workdir / f"linkserver-{durability}.sqlite3", durability)
            try:
                for _ in range(rounds):
                    gc.collect()
                    theirs = max(theirs, raw.run(seconds))
                    rate, latencies = linkserver.run(seconds)
                    if rate > ours:
                        ours, samples = rate, latencies
            finally:
                linkserver.close()
                raw.close()
            cuts = statistics.quantiles(samples, n=100) if len(samples) > 1 else samples * 99
            print(
                f"  {durability:6} (synchronous={DURABILITY[durability]}): linkserver {ours:>9,.0f} fires/s "
                f"(p50 {ms(cuts[49])}, p99 {ms(cuts[98])} in its best round)   "
                f"raw sqlite3 {theirs:>9,.0f} commits/s"
            )
            goals.append((name, ours / theirs))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for name, ratio in goals:
        print(f"goal {name}: {ratio:.2f}x (target >= 0.50x) {'ok' if ratio >= 0.5 else 'short'}")


if __name__ == "__main__":
    main()
