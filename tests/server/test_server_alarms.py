"""The alarm list in a running server: fires fold into alarms in the events' commit, linkUp clears
linkDown's alarm, operators acknowledge and clear with history's permissions, alarmChanged tells
listeners, auto_clear and the purge (memory and a SQLite file)."""

from __future__ import annotations

import shutil
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alarm_helpers import NET, alarm_catalog

from linkserver import CapturingListener, LinkServer
from linkserver.core.alarms import AlarmState
from linkserver.core.errors import PermissionDenied
from linkserver.core.levels import Level
from linkserver.core.permissions import Grants, Principal
from linkserver.history.alarms import AlarmNotFound, AlarmQuery
from linkserver.loading import ServerConfig, load_contexts
from linkserver.loading.alarm_config import AlarmSettings
from linkserver.loading.shipped import SHIPPED_CONTEXTS
from linkserver.server.alarms import REMOVAL_LOCK

ALICE = Principal(name="alice", grants=Grants({"net.**": "operator"}))
OBSERVER = Principal(name="olga", grants=Grants({"net.**": "observer"}))
STRANGER = Principal(name="sam", grants=Grants({"users.**": "admin"}))


def server(tmp_path: Path, url: str = "memory://") -> LinkServer:
    config = ServerConfig.default(data_dir=tmp_path / "data", database_url=url)
    return LinkServer(config, alarm_catalog(tmp_path))


@pytest.fixture(params=["memory", "sqlite"])
def running(request: pytest.FixtureRequest, tmp_path: Path) -> LinkServer:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'h.sqlite3'}"
    s = server(tmp_path, url).start()
    s.engine.add_context("net.sw1")
    request.addfinalizer(s.stop)
    return s


def test_fires_fold_into_one_alarm_per_key_and_link_up_clears_it(running: LinkServer) -> None:
    s = running
    first = s.fire("net.sw1", "linkDown", {"ifIndex": 3})
    s.fire("net.sw1", "linkDown", {"ifIndex": 3}, level="ERROR")
    s.fire("net.sw1", "linkDown", {"ifIndex": 4}, durable=True)
    page = s.alarms.query(AlarmQuery(), ALICE)
    assert [(a.key, a.count, a.level) for a in page.alarms] == [
        ("net.sw1:linkDown:4", 1, Level.WARNING),
        ("net.sw1:linkDown:3", 2, Level.ERROR),
    ]
    up = s.fire("net.sw1", "linkUp", {"ifIndex": 3}, durable=True)
    alarm = s.alarms.get(first.id, ALICE)
    assert (alarm.state, alarm.cleared_by, alarm.cleared_event) == (AlarmState.CLEARED, "event", up.id)
    assert s.alarms.query(AlarmQuery(states=(AlarmState.OPEN,)), ALICE).alarms[0].key == "net.sw1:linkDown:4"


def test_operators_acknowledge_and_clear_observers_only_read(running: LinkServer) -> None:
    s = running
    event = s.fire("net.sw1", "linkDown", {"ifIndex": 1}, durable=True)
    with pytest.raises(PermissionDenied, match="olga may not acknowledge alarm .* it needs operator"):
        s.alarms.acknowledge(event.id, OBSERVER, "mine")
    assert s.alarms.get(event.id, OBSERVER).state is AlarmState.OPEN
    with pytest.raises(AlarmNotFound):
        s.alarms.get(event.id, STRANGER)  # may not see it: it does not exist for sam
    assert s.alarms.query(AlarmQuery(), STRANGER).alarms == ()
    alarm = s.alarms.acknowledge(event.id, ALICE, "replacing the cable")
    assert alarm.state is AlarmState.ACKNOWLEDGED and alarm.acknowledgements[0].user == "alice"
    assert s.alarms.unacknowledge(event.id, ALICE).state is AlarmState.OPEN
    cleared = s.alarms.clear(event.id, ALICE)
    assert (cleared.state, cleared.cleared_by, cleared.cleared_user) == (AlarmState.CLEARED, "user", "alice")


def test_alarm_changed_tells_listeners_once_per_commit(running: LinkServer) -> None:
    s = running
    seen = CapturingListener()
    s.listen("net.**", "alarmChanged", seen)
    event = s.fire("net.sw1", "linkDown", {"ifIndex": 7}, durable=True)
    wait_for(seen, 1)  # (changes still waiting for the notifier are told once, as they are by then)
    s.alarms.acknowledge(event.id, ALICE, "looking")
    wait_for(seen, 2)
    first, second = seen.events
    assert first.context == "net.sw1" and first.level is Level.WARNING
    assert {k: first.record[k] for k in ("id", "key", "state", "count", "change", "by", "message")} == {
        "id": event.id,
        "key": "net.sw1:linkDown:7",
        "state": "open",
        "count": 1,
        "change": "occurred",
        "by": None,
        "message": "interface 7 of net.sw1 is down (WARNING)",  # the alarm list's, told live
    }
    assert (second.record["state"], second.record["change"], second.record["by"]) == (
        "acknowledged",
        "acknowledged",
        "alice",
    )


def test_alarm_changed_of_an_older_standard_template_without_message_still_tells(tmp_path: Path) -> None:
    """A copy of the contexts made (linkserver init) before alarmChange had 'message' keeps working."""
    shipped = tmp_path / "shipped"
    shutil.copytree(SHIPPED_CONTEXTS, shipped)
    standard = shipped / "standard.yaml"
    text = standard.read_text()
    start = text.index("      - name: message\n")
    end = text.index("\ntemplates:", start)
    standard.write_text(text[:start] + text[end:])
    (tmp_path / "net.yaml").write_text(NET)
    catalog = load_contexts([shipped, tmp_path / "net.yaml"])
    assert catalog is not None
    config = ServerConfig.default(data_dir=tmp_path / "data", database_url="memory://")
    with LinkServer(config, catalog) as s:
        s.engine.add_context("net.sw1")
        seen = CapturingListener()
        s.listen("net.**", "alarmChanged", seen)
        s.fire("net.sw1", "linkDown", {"ifIndex": 7}, durable=True)
        wait_for(seen, 1)
        assert "message" not in seen.events[0].record and seen.events[0].record["key"] == "net.sw1:linkDown:7"


def test_changes_told_together_keep_the_order_they_were_made_in(running: LinkServer) -> None:
    """Changes of several alarms waiting for the notifier are told as they were made, not in
    the order the store reads the alarms (SQLite reads them by key)."""
    s = running
    seen = CapturingListener()
    s.listen("net.**", "alarmChanged", seen)
    held, release = threading.Event(), threading.Event()
    by_keys = s.alarms.store.by_keys

    def slow_by_keys(keys: Any) -> Any:
        held.set()
        release.wait(10)
        return by_keys(keys)

    a = s.fire("net.sw1", "linkDown", {"ifIndex": 3}, durable=True)
    b = s.fire("net.sw1", "linkDown", {"ifIndex": 4}, durable=True)
    c = s.fire("net.sw1", "linkDown", {"ifIndex": 5}, durable=True)
    wait_for(seen, 3)
    s.alarms.store.by_keys = slow_by_keys  # type: ignore[method-assign]
    s.alarms.acknowledge(c.id, ALICE, "first")  # the notifier reads it and waits
    assert held.wait(10)
    s.alarms.clear(b.id, ALICE)
    s.alarms.clear(a.id, ALICE)  # both wait for the notifier, b's change first
    release.set()
    wait_for(seen, 6)
    assert [(e.record["id"], e.record["change"]) for e in seen.events[3:]] == [
        (c.id, "acknowledged"),
        (b.id, "cleared"),
        (a.id, "cleared"),
    ]


def wait_for(seen: CapturingListener, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(seen.events) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(seen.events) == count


def test_auto_clear_and_the_purge_of_cleared_alarms(running: LinkServer) -> None:
    s = running
    fan = s.fire("net.sw1", "fanFailed", durable=True)
    assert s.alarms.sweep(fan.created + timedelta(seconds=59)) == 0
    assert s.alarms.sweep(fan.created + timedelta(minutes=1)) == 1
    alarm = s.alarms.get(fan.id, ALICE)
    assert (alarm.state, alarm.cleared_by) == (AlarmState.CLEARED, "auto_clear")
    assert s.alarms.settings.keep_cleared == timedelta(days=1)
    s.purger.clock = lambda: datetime.now(UTC) + timedelta(days=2)
    s.purger.run_now()
    with pytest.raises(AlarmNotFound):
        s.alarms.get(fan.id, ALICE)


def test_the_removal_interval_is_a_tenth_of_keep_cleared_between_a_second_and_a_minute() -> None:
    assert AlarmSettings(keep_cleared=timedelta(seconds=30)).removal_interval == timedelta(seconds=3)
    assert AlarmSettings(keep_cleared=timedelta(days=1)).removal_interval == timedelta(minutes=1)
    assert AlarmSettings(keep_cleared=timedelta(milliseconds=500)).removal_interval == timedelta(seconds=1)


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_cleared_alarms_go_soon_after_keep_cleared_not_at_the_hourly_purge(
    tmp_path: Path, store: str
) -> None:
    url = "memory://" if store == "memory" else f"sqlite:///{tmp_path / 'h.sqlite3'}"
    config = ServerConfig.default(
        data_dir=tmp_path / "data",
        database_url=url,
        sections={"alarms": AlarmSettings(keep_cleared=timedelta(seconds=1))},
    )
    assert config.purge_interval >= timedelta(hours=1)
    with LinkServer(config, alarm_catalog(tmp_path)) as s:
        s.engine.add_context("net.sw1")
        kept = s.fire("net.sw1", "linkDown", {"ifIndex": 1}, durable=True)
        down = s.fire("net.sw1", "linkDown", {"ifIndex": 2}, durable=True)
        s.fire("net.sw1", "linkUp", {"ifIndex": 2}, durable=True)
        assert s.alarms.get(down.id, ALICE).state is AlarmState.CLEARED
        deadline = time.monotonic() + 30  # removed about 2 s after the clear; 30 s under any load
        while time.monotonic() < deadline:
            try:
                s.alarms.get(down.id, ALICE)
            except AlarmNotFound:
                break
            time.sleep(0.05)
        with pytest.raises(AlarmNotFound):
            s.alarms.get(down.id, ALICE)
        assert s.alarms.get(kept.id, ALICE).state is AlarmState.OPEN  # open alarms stay


def test_the_removal_job_leaves_the_rows_to_a_node_already_removing_them(running: LinkServer) -> None:
    s = running
    down = s.fire("net.sw1", "linkDown", {"ifIndex": 9}, durable=True)
    with s.history.exclusive(REMOVAL_LOCK) as held:  # another node (here: this test) removes now
        assert held
        s.alarms.clear(down.id, ALICE, now=datetime.now(UTC) - timedelta(days=2))
        assert s.alarms.remove_cleared() == 0
        assert s.alarms.get(down.id, ALICE).state is AlarmState.CLEARED
    assert s.alarms.remove_cleared() == 1
    with pytest.raises(AlarmNotFound):
        s.alarms.get(down.id, ALICE)


def test_an_alarm_shows_its_last_events_message_as_that_event_does(running: LinkServer) -> None:
    s = running
    first = s.fire("net.sw1", "linkDown", {"ifIndex": 7}, level="ERROR")
    last = s.fire("net.sw1", "linkDown", {"ifIndex": 7}, durable=True)
    shown = s.alarms.marshal(s.alarms.get(first.id, ALICE))
    stored = s.access.get(last.id, ALICE)
    # The alarm keeps the highest level (ERROR); its message is the last event's, rendered with that
    # event's own level, exactly as GET /events/{id} shows it.
    assert (shown["level"], shown["event"]) == ("ERROR", last.id)
    assert shown["message"] == stored.message == "interface 7 of net.sw1 is down (WARNING)"
    (listed,) = [a for a in s.alarms.query(AlarmQuery(), ALICE).alarms if a.id == first.id]
    assert s.alarms.marshal(listed)["message"] == shown["message"]
    fan = s.fire("net.sw1", "fanFailed", durable=True)  # no message template: the definition's name
    assert s.alarms.marshal(s.alarms.get(fan.id, ALICE))["message"] == "fanFailed"


def test_an_alarm_whose_last_event_is_gone_has_no_message(tmp_path: Path) -> None:
    s = server(tmp_path, f"sqlite:///{tmp_path / 'h.sqlite3'}").start()
    try:
        s.engine.add_context("net.sw1")
        down = s.fire("net.sw1", "linkDown", {"ifIndex": 1}, durable=True)
        s.history.delete(down.id)
        shown = s.alarms.marshal(s.alarms.get(down.id, ALICE))
        assert (shown["count"], shown["message"]) == (1, None)
    finally:
        s.stop()


def test_on_sqlite_triggers_write_the_alarms_unless_an_event_context_is_gone(tmp_path: Path) -> None:
    s = server(tmp_path, f"sqlite:///{tmp_path / 'h.sqlite3'}").start()
    try:
        writes = s.alarms.writes
        assert writes.triggers is not None  # every alarm definition of the catalog has a trigger
        s.engine.add_context("net.sw1")
        event = s.fire("net.sw1", "linkDown", {"ifIndex": 3}, durable=True)
        assert writes.connection_setup is writes.triggers.on
        s.fire("net.sw1", "linkDown", {"ifIndex": 3}, level="ERROR", durable=True)
        (alarm,) = s.alarms.query(AlarmQuery(), ALICE).alarms
        assert (alarm.id, alarm.count, alarm.level) == (event.id, 2, Level.ERROR)
        s.engine.remove_context("net.sw1")
        assert writes.triggers.take([event]) is None  # the fold does nothing for a gone context
    finally:
        s.stop()
