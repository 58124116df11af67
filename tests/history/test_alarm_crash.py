"""A process killed with SIGKILL while its writer folds events into the alarm list leaves the two
together: every alarm row counts exactly the stored events of its key."""

from __future__ import annotations

import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest
from crash_helpers import APPEND_THEN_KEEP_WRITING, all_events, kill_at_first_line

from linkserver.history.alarms import open_alarm_store
from linkserver.history.sql import SqlHistoryStore

CHILD = (
    textwrap.dedent(
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
    """
    )
    + APPEND_THEN_KEEP_WRITING
)


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_alarm_rows_and_their_events_survive_sigkill_together(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'history.sqlite3'}"
    count = 200
    line = kill_at_first_line(CHILD, url, str(count))
    assert line == "DONE"

    store = SqlHistoryStore(url)
    store.start()
    try:
        stored = all_events(store)
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
