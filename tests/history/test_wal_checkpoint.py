"""SQLite's WAL stays bounded under a steady stream of commits (history/engine.py WalCheckpointer):
passive checkpoints alone never catch up with a busy writer, so the file grew without end."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from history_helpers import EventMaker

from linkserver.history.sql import SqlHistoryStore


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
    """After a restart the file keeps its limit's size: what counts is the frames in it, or a
    RESTART (the writer waiting for it) ran every second under the lightest stream."""
    store = SqlHistoryStore(f"sqlite:///{tmp_path / 'history.sqlite3'}")
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
        time.sleep(1.5)  # the restart's own round ends; the next commit begins the file anew
        after = checkpointer.restarts
        for _ in range(40):  # a light stream: a few pages a commit, far below the limit
            store.append(make()).result(timeout=10)
            time.sleep(0.05)
        assert checkpointer.wal_size() >= 1024 * 1024, "the file should still have its limit's size"
        assert checkpointer.restarts - after <= 1, f"{checkpointer.restarts - after} restarts in 2 s"
    finally:
        store.stop()
