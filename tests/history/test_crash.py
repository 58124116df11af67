"""A process killed with SIGKILL right after its durable appends returned loses none of them."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from crash_helpers import APPEND_THEN_KEEP_WRITING, all_events, kill_at_first_line

from linkserver.history.sql import SqlHistoryStore

CHILD = (
    textwrap.dedent(
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
    """
    )
    + APPEND_THEN_KEEP_WRITING
)


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_durable_appends_survive_sigkill(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'history.sqlite3'}"
    count = 300
    line = kill_at_first_line(CHILD, url, str(count))
    assert line == "DONE"

    store = SqlHistoryStore(url)
    store.start()
    try:
        durable = {event.data[0]["i"] for event in all_events(store) if event.data[0]["i"] < count}
        assert durable == set(range(count))
    finally:
        store.stop()
