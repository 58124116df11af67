"""A process killed with SIGKILL right after its durable appends returned loses none of them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from linkserver.history.base import HistoryQuery
from linkserver.history.sql import SqlHistoryStore

CHILD = textwrap.dedent(
    """
    import sys
    from datetime import datetime, timedelta, timezone
    from linkserver.core.events import Event, IdGenerator
    from linkserver.core.levels import Level
    from linkserver.history.sql import SqlHistoryStore

    url, count = sys.argv[1], int(sys.argv[2])
    store = SqlHistoryStore(url, flush_interval=timedelta(milliseconds=1))
    store.start()
    ids = IdGenerator(node_id=1)

    def event(i):
        event_id, ms = ids.next()
        created = datetime.fromtimestamp(ms / 1000, timezone.utc)
        return Event(id=event_id, context="devices.plc7", name="tick", level=Level.INFO, created=created,
                     expires=created + timedelta(days=1), author=None, group=None, data=({"i": i},))

    for i in range(count):
        store.append(event(i)).result()  # durable: returns once committed
    print("DONE", flush=True)
    i = count
    while True:  # keep the writer busy: the kill lands in the middle of a transaction
        store.append(event(i))
        i += 1
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_durable_appends_survive_sigkill(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'history.sqlite3'}"
    count = 300
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, str(count)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert line.strip() == "DONE", child.stderr.read() if child.stderr else ""
    assert child.returncode == -signal.SIGKILL

    store = SqlHistoryStore(url)
    store.start()
    try:
        durable = {event.data[0]["i"] for event in _all(store) if event.data[0]["i"] < count}
        assert durable == set(range(count))
    finally:
        store.stop()


def _all(store: SqlHistoryStore) -> list:  # type: ignore[type-arg]
    found = []
    query = HistoryQuery(limit=10_000, newest_first=False)
    while True:
        page = store.query(query)
        found.extend(page.events)
        if page.next_cursor is None:
            return found
        query = HistoryQuery(limit=10_000, newest_first=False, cursor=page.next_cursor)
