"""SQLite's WAL stays bounded under a steady stream of commits (history/engine.py WalCheckpointer):
passive checkpoints alone never catch up with a busy writer, so the file grew without end."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from history_helpers import EventMaker

from linkserver.history.base import HistoryQuery
from linkserver.history.engine import BULK_HOLD_SECONDS
from linkserver.history.sql import SqlHistoryStore

# The checkpointer's rounds where a test waits for several: a fifth of the server's 1 s.
INTERVAL = timedelta(milliseconds=200)


def test_the_wal_is_restarted_once_it_passes_its_limit_while_the_writer_keeps_committing(
    tmp_path: Path,
) -> None:
    store = SqlHistoryStore(f"sqlite:///{tmp_path / 'history.sqlite3'}")
    store.start()
    checkpointer = store._checkpointer  # noqa: SLF001 - the thread under test
    assert checkpointer is not None
    checkpointer.restart_bytes = 1024 * 1024
    make, stop, largest = EventMaker(), threading.Event(), [0]
    payload = ({"text": "x" * 400},)

    def fire() -> None:
        while not stop.is_set():
            store.append(make(data=payload))
            time.sleep(0)  # let the committer and the checkpointer in

    firer = threading.Thread(target=fire, daemon=True)
    firer.start()
    try:
        deadline = time.monotonic() + 60
        while checkpointer.restarts < 3 and time.monotonic() < deadline:
            largest[0] = max(largest[0], checkpointer.wal_size())
            time.sleep(0.05)
    finally:
        stop.set()
        firer.join(10)
        written = store.writer_stats.events
        store.stop()
    assert checkpointer.restarts >= 3, f"{written} events written; the WAL reached {largest[0]:,} bytes"
    # Each restart brings the WAL back within its limit (SQLite truncates it to journal_size_limit):
    # it peaks at about what one checkpoint interval of commits adds, not at everything written.
    assert largest[0] < 24 * 1024 * 1024, f"the WAL reached {largest[0]:,} bytes"


def test_a_wal_file_left_at_its_limit_with_few_frames_in_it_is_not_restarted_again(
    tmp_path: Path,
) -> None:
    """After a restart the file keeps its size with few frames in it: what counts is the frames
    in it, or a RESTART (the writer waiting for it) ran every second under the lightest stream.
    Such a stream (no purge running) gets the file's disk back instead, once."""
    store = SqlHistoryStore(f"sqlite:///{tmp_path / 'history.sqlite3'}", checkpoint_interval=INTERVAL)
    store.start()
    checkpointer = store._checkpointer  # noqa: SLF001 - the thread under test
    assert checkpointer is not None
    checkpointer.restart_bytes = 1024 * 1024
    make = EventMaker()
    try:
        deadline = time.monotonic() + 60
        while checkpointer.restarts < 1 and time.monotonic() < deadline:
            for _ in range(50):
                store.append(make(data=({"text": "x" * 2000},)))
            store.flush(10)
        assert checkpointer.restarts >= 1
        # the restart's own round ends; the next commit begins the file anew
        time.sleep(1.5 * INTERVAL.total_seconds())
        after = checkpointer.restarts
        for _ in range(40):  # a light stream: a few pages a commit, far below the limit
            store.append(make()).result(timeout=10)
            time.sleep(0.05)  # 2 s: ten rounds
        assert checkpointer.wal_size() < 1024 * 1024, "a light stream should get the disk back"
        assert checkpointer.restarts - after <= 1, f"{checkpointer.restarts - after} restarts in 2 s"
    finally:
        store.stop()


def test_the_wal_file_is_given_back_once_nothing_is_committed_for_an_interval(tmp_path: Path) -> None:
    """A commit never truncates the WAL (truncating hundreds of MB took 70 to 150 ms inside a
    purge's or the writer's transaction); the checkpointer empties the file when all is quiet."""
    store = SqlHistoryStore(f"sqlite:///{tmp_path / 'history.sqlite3'}", checkpoint_interval=INTERVAL)
    store.start()
    checkpointer = store._checkpointer  # noqa: SLF001 - the thread under test
    assert checkpointer is not None
    checkpointer.restart_bytes = 1024 * 1024
    make, largest = EventMaker(), 0
    try:
        deadline = time.monotonic() + 60
        while checkpointer.restarts < 2 and time.monotonic() < deadline:
            for _ in range(50):
                store.append(make(data=({"text": "x" * 2000},)))
            store.flush(10)
            largest = max(largest, checkpointer.wal_size())
        assert checkpointer.restarts >= 2
        assert largest > 1024 * 1024
        deadline = time.monotonic() + 10
        while checkpointer.wal_size() > 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert checkpointer.wal_size() == 0, f"the WAL still holds {checkpointer.wal_size():,} bytes"
        store.append(make()).result(timeout=10)  # and the history goes on as before
        assert store.count(HistoryQuery()) > 100
    finally:
        store.stop()


def test_a_purge_runs_the_checkpoint_rounds_between_its_transactions(tmp_path: Path) -> None:
    """A purge writes the WAL faster than a passive round copies it, and its transactions
    stalled (100 ms and more for 200 rows) in the I/O of a round running next to them, the
    fires waiting behind them: while a purge runs, the rounds (and the RESTARTs they lead to)
    run in its thread, between two of its transactions, never during one."""
    url = f"sqlite:///{tmp_path / 'history.sqlite3'}"
    # rounds often enough for a purge of a second
    store = SqlHistoryStore(
        url, flush_interval=timedelta(milliseconds=2), checkpoint_interval=timedelta(milliseconds=50)
    )
    store.start()
    checkpointer = store._checkpointer  # noqa: SLF001 - the thread under test
    assert checkpointer is not None
    make = EventMaker()
    for _ in range(40):
        futures = [
            store.append(make(context=f"devices.d{i % 500}", data=({"text": "x" * 300},),
                              lifetime=timedelta(seconds=1)))
            for i in range(1000)
        ]  # fmt: skip
        futures[-1].result(timeout=30)
    checkpointer.restart_bytes = 1024 * 1024
    rounds: list[tuple[float, float, str, str]] = []  # began, ended, mode, thread
    checkpoint = checkpointer.checkpoint

    def recorded(mode: str = "PASSIVE") -> int | None:
        began = time.monotonic()
        try:
            return checkpoint(mode)
        finally:
            rounds.append((began, time.monotonic(), mode, threading.current_thread().name))

    checkpointer.checkpoint = recorded  # type: ignore[method-assign]
    transactions: list[tuple[float, float, str]] = []  # began, ended, thread

    class Transactions(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.msg.startswith("purge:"):
                ended = time.monotonic()
                began = ended - record.args[1] / 1000  # type: ignore[index]
                transactions.append((began, ended, threading.current_thread().name))

    handler, logger = Transactions(), logging.getLogger("linkserver.history")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    stop = threading.Event()

    def fire() -> None:  # the writer commits throughout, as a live server's does
        while not stop.is_set():
            store.append(make(context="devices.live", lifetime=None))
            time.sleep(0.001)

    firer = threading.Thread(target=fire, daemon=True)
    firer.start()
    restarts = checkpointer.restarts
    try:
        removed = store.purge_expired(datetime.now(UTC))
    finally:
        stop.set()
        firer.join(10)
        logger.removeHandler(handler)
        logger.setLevel(level)
        store.stop()
    assert removed == 40_000
    assert checkpointer.restarts > restarts, f"no RESTART during a purge of {removed:,} rows"
    (purger,) = {thread for _, _, thread in transactions}
    # From the purge's first round on (a round of the checkpointer's thread that began before
    # the purge came may still be catching up when the first transactions run).
    first = min(began for began, _, _, thread in rounds if thread == purger)
    last = transactions[-1][1]
    during = [round_ for round_ in rounds if first <= round_[0] < last]
    assert any(mode == "RESTART" for _, _, mode, _ in during)
    assert {thread for _, _, _, thread in during} == {purger}
    for began, ended, mode, _ in during:
        inside = [t for t in transactions if t[0] < ended and t[1] > began]
        assert not inside, f"{len(inside)} purge transactions ran during a {mode} round"


def test_a_purge_waits_out_a_long_catch_up_once_not_before_each_transaction(tmp_path: Path) -> None:
    store = SqlHistoryStore(f"sqlite:///{tmp_path / 'history.sqlite3'}")
    store.start()
    checkpointer = store._checkpointer  # noqa: SLF001 - the thread under test
    assert checkpointer is not None
    try:
        checkpointer._holds += 1  # noqa: SLF001 - a RESTART being prepared, its catch-up long
        checkpointer._bulk_may_write.clear()  # noqa: SLF001
        started = time.monotonic()
        checkpointer.bulk_turn()
        waited = time.monotonic() - started
        assert BULK_HOLD_SECONDS * 0.9 <= waited < BULK_HOLD_SECONDS * 3
        started = time.monotonic()
        for _ in range(10):
            checkpointer.bulk_turn()
        assert time.monotonic() - started < 0.1
        checkpointer._holds += 1  # noqa: SLF001 - the next RESTART is waited for again
        started = time.monotonic()
        checkpointer.bulk_turn()
        assert time.monotonic() - started >= BULK_HOLD_SECONDS * 0.9
    finally:
        checkpointer._bulk_may_write.set()  # noqa: SLF001
        store.stop()


def test_no_round_runs_in_a_bulk_writers_thread_once_the_checkpointer_stopped(tmp_path: Path) -> None:
    store = SqlHistoryStore(f"sqlite:///{tmp_path / 'history.sqlite3'}", checkpoint_interval=INTERVAL)
    store.start()
    checkpointer = store._checkpointer  # noqa: SLF001 - the thread under test
    assert checkpointer is not None
    store.append(EventMaker()(), waiting=True).result(timeout=10)
    checkpointer.bulk_turn()  # a purge's first turn runs a round here
    assert checkpointer._last_held is not None  # noqa: SLF001
    store.stop()
    modes: list[str] = []
    checkpointer.checkpoint = lambda mode="PASSIVE": modes.append(mode)  # type: ignore[method-assign,assignment,return-value]
    time.sleep(INTERVAL.total_seconds())
    checkpointer.bulk_turn()  # a purge that ends after the stop: its turn touches nothing
    assert modes == []
