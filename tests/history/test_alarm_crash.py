"""A process killed with SIGKILL while its writer folds events into the alarm list leaves the two
together: every alarm row counts exactly the stored events of its key."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from linkserver.history.alarms import open_alarm_store
from linkserver.history.base import HistoryQuery
from linkserver.history.sql import SqlHistoryStore

CHILD = textwrap.dedent(
    """
    import sys
    from datetime import datetime, timedelta, timezone
    from linkserver.core.alarm_fold import Raise
    from linkserver.core.alarms import AlarmLevel, parse_key
    from linkserver.core.events import Event, IdGenerator
    from linkserver.core.levels import Level
    from linkserver.history.alarms import AlarmWrites, open_alarm_store
    from linkserver.history.sql import SqlHistoryStore

    url, count = sys.argv[1], int(sys.argv[2])
    store = SqlHistoryStore(url, flush_interval=timedelta(milliseconds=1))
    raise_ = Raise(parse_key("{context}:{data.port}"), AlarmLevel.HIGHEST, None)
    store.add_same_commit(AlarmWrites(open_alarm_store(store), lambda event: raise_))
    store.start()
    ids = IdGenerator(node_id=1)

    def event(i):
        event_id, ms = ids.next()
        created = datetime.fromtimestamp(ms / 1000, timezone.utc)
        return Event(id=event_id, context="devices.sw", name="linkDown", level=Level.WARNING,
                     created=created, expires=created + timedelta(days=1), author=None, group=None,
                     data=({"i": i, "port": i % 50},))

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
def test_alarm_rows_and_their_events_survive_sigkill_together(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'history.sqlite3'}"
    count = 200
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
        stored = _all(store)
        assert {e.data[0]["i"] for e in stored} >= set(range(count))
        per_key = Counter(f"devices.sw:{e.data[0]['port']}" for e in stored)
        alarms = {alarm.key: alarm for alarm in open_alarm_store(store).by_keys(per_key)}
        assert {key: alarm.count for key, alarm in alarms.items()} == dict(per_key)
        last = {}
        for e in stored:
            last[f"devices.sw:{e.data[0]['port']}"] = e.id
        assert {key: alarm.event_id for key, alarm in alarms.items()} == last
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
