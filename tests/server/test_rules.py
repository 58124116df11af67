"""Alert rules in a running server: alerts fired as ordinary events, timers, escalation until
acknowledged, the dry run, and rule state surviving a restart of the server (SQLite file)."""

from __future__ import annotations

import os
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from node_processes import migrated_schema

from linkserver import CapturingListener, LinkServer
from linkserver.core.events import Acknowledgement
from linkserver.history.base import HistoryQuery
from linkserver.history.rule_state import open_rule_state
from linkserver.loading.shipped import SHIPPED_CONTEXTS
from linkserver.testing_proxy import TcpProxy

POSTGRES_URL = os.environ.get("LINKSERVER_TEST_POSTGRES_URL")

RULES = """
rules:
  - {name: burst, kind: count, mask: "devices.*", event: error, count: 3, within: 1h}
  - {name: silent, kind: absence, mask: "devices.*", event: measurement, within: 2s}
  - name: hot
    kind: threshold
    mask: "devices.*"
    event: measurement
    open: "data.value > 80"
    close: "data.value < 70"
    level: ERROR
  - name: page
    kind: escalation
    mask: "alerts.**"
    event: alert
    filter: 'data.severity == "critical"'
    steps:
      - {after: 1s, notify: [oncall]}
      - {after: 1h, level: FATAL, notify: [oncall, boss]}
  - {name: later, kind: count, mask: "devices.*", event: error, count: 1, within: 1h, enabled: false}
"""


def config_file(
    tmp_path: Path, rules: str = RULES, database_url: str | None = None, node_id: int = 0
) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "linkserver.yaml"
    history = f"history:\n  database_url: '{database_url}'\n" if database_url else ""
    path.write_text(
        f"server:\n  node_id: {node_id}\n  data_dir: {tmp_path / 'data'}\n  contexts: [{SHIPPED_CONTEXTS}]\n"
        "controllers: []\n" + history + textwrap.dedent(rules),
        encoding="utf-8",
    )
    return path


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A schema of the test's own, at head and empty (tests/node_processes.py)."""
    with migrated_schema("lstest_rules") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> str | None:
    """None: the SQLite file in the data directory; else a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        return None
    if not POSTGRES_URL:
        pytest.skip("LINKSERVER_TEST_POSTGRES_URL is not set")
    return str(request.getfixturevalue("postgres_url"))


def server(tmp_path: Path) -> LinkServer:
    return LinkServer.from_config_file(config_file(tmp_path))


def alerts(s: LinkServer, name: str = "*") -> list[tuple[str, str, dict]]:
    s.history.flush(5)
    page = s.history.query(HistoryQuery(masks=("alerts.**",), newest_first=False, limit=1000))
    return [(e.context, e.name, e.record) for e in page.events if name in ("*", e.name)]


def measurement(value: float) -> list[dict]:
    return [{"quantity": "temperature", "value": value, "unit": "C"}]


def test_a_count_rule_fires_an_alert_event_in_its_alert_context(tmp_path: Path) -> None:
    with server(tmp_path) as s:
        s.engine.add_context("devices.d1")
        s.engine.add_context("devices.d2")
        seen = CapturingListener()
        s.listen("alerts.*", "alert", seen)
        for path in ("devices.d1", "devices.d2", "devices.d1", "devices.d1"):
            s.fire(path, "error", {"code": "E1", "message": "bad"})
        (alert,) = seen.events
        assert alert.context == "alerts.burst" and alert.author == "rules"
        assert alert.record["rule"] == "burst" and alert.record["key"] == "devices.d1"
        assert alert.record["message"] == "3 error events within 1h in devices.d1"
        assert alert.record["cause"] == "devices.d1/error"
        assert [r["name"] for r in s.rules.status()] == ["burst", "silent", "hot", "page", "later"]
        (burst,) = s.rules.status("burst")
        assert burst["fired"] == 1 and burst["state"]["open"]["devices.d1"]["alert_id"] == alert.id


def test_an_opened_alert_is_stored_at_once_not_only_at_the_next_interval(tmp_path: Path) -> None:
    with server(tmp_path) as s:
        s.engine.add_context("devices.d1")
        for _ in range(3):
            s.fire("devices.d1", "error", {"code": "E1", "message": "bad"})
        store = open_rule_state(s.history)
        deadline = time.monotonic() + 4  # well before the 5 s interval flush
        while time.monotonic() < deadline:
            row = store.load().get("burst", {}).get("devices.d1")
            if row is not None and row["open"] is not None:
                break
            time.sleep(0.05)
        assert row is not None and row["open"]["alert_id"] is not None


def test_a_threshold_opens_once_and_clears_with_the_alert_id(tmp_path: Path) -> None:
    with server(tmp_path) as s:
        s.engine.add_context("devices.d1")
        for value in (75, 85, 90, 72, 65, 66):
            s.fire("devices.d1", "measurement", measurement(value))
        found = alerts(s)
        hot = [(name, record) for context, name, record in found if context == "alerts.hot"]
        assert [name for name, _ in hot] == ["alert", "alertCleared"]
        opened = s.history.query(HistoryQuery(masks=("alerts.hot",), names=("alert",))).events[0]
        assert opened.level.name == "ERROR"
        assert hot[1][1]["alert_id"] == opened.id
        # what an operator reads first (history, watch, the alarm list) is the rule's own text
        ended = s.history.query(HistoryQuery(masks=("alerts.hot",), names=("alertCleared",))).events[0]
        ended = s.access.get(ended.id, None)  # shown as the API shows it
        assert ended.message == hot[1][1]["message"] == "measurement in devices.d1 back within bounds"


def test_escalation_steps_until_acknowledged(tmp_path: Path) -> None:
    with server(tmp_path) as s:
        s.engine.add_context("alerts.manual")
        raised = s.fire("alerts.manual", "alert", {"message": "pump", "severity": "critical"}, durable=True)
        s.fire(
            "alerts.manual", "alert", {"message": "minor", "severity": "low"}, durable=True
        )  # filtered out
        escalated = CapturingListener()
        s.listen("alerts.page", "escalated", escalated)
        deadline = time.monotonic() + 10
        while not escalated.events and time.monotonic() < deadline:  # the scheduler's tick
            time.sleep(0.1)
        (first,) = escalated.events
        assert first.record["alert_id"] == raised.id and first.record["step"] == 1
        assert first.record["notified"] == "oncall" and first.level.name == "ERROR"
        assert first.message == first.record["message"] and str(raised.id) in first.message
        s.history.acknowledge(raised.id, Acknowledgement(time=raised.created, user="op", text="on it"))
        s.rules.clock = lambda: raised.created + timedelta(hours=2)  # step 2 is due
        s.rules.tick()
        assert len(escalated.events) == 1  # acknowledged: no second step
        assert s.rules.status("page")[0]["state"]["escalating"] == {}


def test_a_disabled_rule_is_listed_and_tested_but_fires_nothing(tmp_path: Path) -> None:
    with server(tmp_path) as s:
        s.engine.add_context("devices.d1")
        for _ in range(4):
            s.fire("devices.d1", "error", {"code": "E1", "message": "bad"}, durable=True)
        assert [r for c, *r in alerts(s) if c == "alerts.later"] == []
        result = s.rules.test("later", since=timedelta(hours=1))
        assert result["events"] == 4
        assert [f["event"] for f in result["fired"]] == ["alert"]
        burst = s.rules.test("burst", since=timedelta(hours=1))
        assert [(f["event"], f["key"]) for f in burst["fired"]] == [("alert", "devices.d1")]
        assert len(alerts(s, "alert")) == 1  # the real one, once; the dry runs fired nothing


def test_rule_state_survives_a_restart_mid_window(tmp_path: Path, database: str | None) -> None:
    path = config_file(tmp_path, database_url=database)
    first = LinkServer.from_config_file(path).start()
    try:
        first.engine.add_context("devices.d1")
        first.engine.add_context("devices.d2")
        first.fire("devices.d1", "error", {"code": "E1", "message": "bad"})
        first.fire("devices.d1", "error", {"code": "E1", "message": "bad"})
        first.fire("devices.d1", "measurement", measurement(20))
        first.fire("devices.d2", "measurement", measurement(20))
        first.fire("devices.d2", "measurement", measurement(85))  # hot opens
    finally:
        first.stop()
    second = LinkServer.from_config_file(path).start()
    try:
        second.fire("devices.d1", "error", {"code": "E1", "message": "bad"})  # the third within the hour
        assert [(c, n) for c, n, _ in alerts(second, "alert")] == [
            ("alerts.hot", "alert"),
            ("alerts.burst", "alert"),
        ]
        second.fire("devices.d2", "measurement", measurement(60))  # hot clears: its alert came before
        # d2 keeps reporting (never 2 s silent, also for the rules' own tick once a second, which a
        # single sleep of 2.1 s let fall between d2's last report and the next one: d2 alerted too).
        deadline = time.monotonic() + 2.1
        while time.monotonic() < deadline:
            time.sleep(0.25)
            second.fire("devices.d2", "measurement", measurement(60))
        second.rules.tick()  # d1 has been silent for 2 s, counted from the first server
        silent = [r for c, n, r in alerts(second, "alert") if c == "alerts.silent"]
        assert [r["key"] for r in silent] == ["devices.d1"]
    finally:
        second.stop()
    third = LinkServer.from_config_file(path).start()
    try:
        third.fire("devices.d1", "measurement", measurement(20))  # the silent alert, open before, clears
        cleared = [r for c, n, r in alerts(third, "alertCleared")]
        opened = third.history.query(HistoryQuery(masks=("alerts.silent",), names=("alert",))).events[0]
        assert [(r["rule"], r["alert_id"]) for r in cleared][-1] == ("silent", opened.id)
        hot = [r for r in cleared if r["rule"] == "hot"]
        assert len(hot) == 1 and hot[0]["alert_id"] is not None
    finally:
        third.stop()


PLANT = """
templates:
  pump:
    events:
      fault:
        level: WARNING
        persistent: true
        reduction_key: "{context}:fault"
        format: {fields: [{name: code, type: string}]}
contexts:
  plant: {child_templates: [pump]}
"""


def test_open_alarms_are_escalated_until_acknowledged(tmp_path: Path) -> None:
    plant = tmp_path / "plant.yaml"
    plant.write_text(PLANT, encoding="utf-8")
    path = tmp_path / "linkserver.yaml"
    path.write_text(
        f"server:\n  data_dir: {tmp_path / 'data'}\n  contexts: [{SHIPPED_CONTEXTS}, {plant}]\n"
        "controllers: []\n"
        "rules:\n"
        "  - name: alarm_page\n    kind: escalation\n    source: alarms\n    mask: plant.*\n"
        "    event: fault\n    steps: [{after: 1m, notify: [oncall]}]\n    repeat: 10m\n",
        encoding="utf-8",
    )
    with LinkServer.from_config_file(path) as s:
        s.engine.add_context("plant.p1")
        s.engine.add_context("plant.p2")
        first = s.fire("plant.p1", "fault", {"code": "F1"}, durable=True)
        s.fire("plant.p1", "fault", {"code": "F1"}, durable=True)  # reduced into the same alarm
        s.fire("plant.p2", "fault", {"code": "F2"}, durable=True)
        escalated = CapturingListener()
        s.listen("alerts.alarm_page", "escalated", escalated)
        s.rules.tick()
        assert escalated.events == []  # not a minute yet
        s.rules.clock = lambda: first.created + timedelta(minutes=2)
        s.rules.tick()
        steps = sorted(
            (e.record["alert_context"], e.record["step"], e.record["alert_id"]) for e in escalated.events
        )
        assert [(c, n) for c, n, _ in steps] == [("plant.p1", 1), ("plant.p2", 1)]
        assert steps[0][2] == first.id  # the alarm's id: the event that opened it
        s.alarms.acknowledge(first.id, s.user("admin"), "pump p1 is being replaced")
        s.rules.clock = lambda: first.created + timedelta(minutes=15)
        s.rules.tick()
        later = [(e.record["alert_context"], e.record["step"]) for e in escalated.events[2:]]
        assert later == [("plant.p2", 2)]  # p1 is acknowledged: no more
        with pytest.raises(ValueError, match="the alarm list keeps no history to replay"):
            s.rules.test("alarm_page", since=timedelta(days=1))


def test_one_node_of_a_database_runs_the_rules_and_another_takes_over(
    tmp_path: Path, postgres_url: str
) -> None:
    first = LinkServer.from_config_file(config_file(tmp_path / "a", database_url=postgres_url, node_id=1))
    first.start()
    second: LinkServer | None = None
    try:
        first.engine.add_context("devices.d1")
        first.fire("devices.d1", "error", {"code": "E1", "message": "bad"})
        first.fire("devices.d1", "error", {"code": "E1", "message": "bad"})
        second = LinkServer.from_config_file(
            config_file(tmp_path / "b", database_url=postgres_url, node_id=2)
        )
        second.start()
        assert first.rules.leading and not second.rules.leading
        assert not second.rules.try_lead()  # the first holds the rules lock
        second.fire("devices.d1", "error", {"code": "E1", "message": "bad"})
        assert alerts(second, "alert") == []  # the standby evaluates nothing
        first.stop()
        assert second.rules.try_lead()
        second.fire("devices.d1", "error", {"code": "E1", "message": "bad"})  # with the two stored: three
        assert [(c, r["key"]) for c, _, r in alerts(second, "alert")] == [("alerts.burst", "devices.d1")]
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_a_leader_that_lost_its_database_connection_steps_down_and_another_takes_over(
    tmp_path: Path, postgres_url: str
) -> None:
    # The rules lock is a session lock: a cut connection ends it while its holder goes on.
    proxy = TcpProxy.for_url(postgres_url, 5432)
    first = LinkServer.from_config_file(
        config_file(tmp_path / "a", database_url=proxy.url_for(postgres_url), node_id=1)
    )
    second = LinkServer.from_config_file(config_file(tmp_path / "b", database_url=postgres_url, node_id=2))
    try:
        first.start()
        second.start()
        assert first.rules.leading and not second.rules.try_lead()
        proxy.set_available(False)  # every connection of the first node is cut
        first.rules.tick()  # its next tick finds the lock gone
        assert not first.rules.leading
        deadline = time.monotonic() + 30
        while not second.rules.try_lead():  # PostgreSQL ends the cut session, and its lock
            assert time.monotonic() < deadline, "the rules lock was not released"
            time.sleep(0.1)
        proxy.set_available(True)
        assert not first.rules.try_lead()  # back, it stays the standby
        second.engine.add_context("devices.d1")
        for _ in range(3):
            second.fire("devices.d1", "error", {"code": "E1", "message": "bad"})
        assert [c for c, _, _ in alerts(second, "alert")] == ["alerts.burst"]
    finally:
        first.stop()
        second.stop()
        proxy.close()


def test_a_leader_stopped_right_after_its_lock_was_lost_stops(tmp_path: Path, postgres_url: str) -> None:
    # stop() flushes, and the flush finds the lock gone before any tick did: no deadlock, no write
    proxy = TcpProxy.for_url(postgres_url, 5432)
    node = LinkServer.from_config_file(
        config_file(tmp_path / "a", database_url=proxy.url_for(postgres_url), node_id=1)
    )
    stopping = threading.Thread(target=node.rules.stop, daemon=True)
    try:
        node.start()
        assert node.rules.leading
        proxy.set_available(False)
        stopping.start()
        stopping.join(30)
        assert not stopping.is_alive(), "RuleHost.stop() hung"
        assert not node.rules.leading
    finally:
        proxy.set_available(True)
        if not stopping.is_alive():  # a hung stop would hang this one too
            node.stop()
        proxy.close()
