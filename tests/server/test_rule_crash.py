"""Rule state after a crash (SIGKILL of a real server process): a start replays the persistent
events committed after the stored state's watermark, so counts and open alerts are what they
would have been, and an alert fired before the crash is not fired again (docs/rules.md)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from crash_helpers import kill_at_first_line

from linkserver.history.base import HistoryQuery
from linkserver.loading.shipped import SHIPPED_CONTEXTS
from linkserver.server.app import LinkServer

RULES = """\
rules:
  - {name: burst, kind: count, mask: "devices.*", event: error, count: 5, within: 1h}
"""

# The child: a server whose only state write after its start is the explicit one below (the
# interval job removed, the write right after an alert turned off), so that everything after
# it is in memory only when the kill comes.
CRASHING = textwrap.dedent(
    """
    import sys
    from linkserver.server.app import LinkServer

    s = LinkServer.from_config_file(sys.argv[1]).start()
    s.rules._scheduler.remove_job("linkserver-rules-flush")
    s.rules._flush_soon = lambda rule, keys: None
    s.engine.add_context("devices.d1")
    s.engine.add_context("devices.d2")
    error = {"code": "E1", "message": "bad"}
    for path in ("devices.d1", "devices.d1", "devices.d2"):
        s.fire(path, "error", error, durable=True)
    s.rules.flush()  # the last write: d1 counts 2, d2 counts 1
    if sys.argv[2:] == ["before-the-alert"]:  # the crash comes between the event and its alert
        s.rules._fire = lambda running, firings: None
    for path in ["devices.d1"] * 2 + ["devices.d2"] * 4:  # d2 reaches 5: its alert fires
        s.fire(path, "error", error, durable=True)
    s.history.flush(10)
    print("READY", flush=True)
    import time
    time.sleep(60)
    """
)


def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "linkserver.yaml"
    path.write_text(
        f"server:\n  data_dir: {tmp_path / 'data'}\n  contexts: [{SHIPPED_CONTEXTS}]\n"
        "controllers: []\n" + RULES,
        encoding="utf-8",
    )
    return path


def alerts(s: LinkServer) -> list[tuple[str, str, int]]:
    s.history.flush(10)
    page = s.history.query(HistoryQuery(masks=("alerts.**",), newest_first=False, limit=1000))
    return [(e.name, str(e.record["key"]), e.id) for e in page.events]


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_a_restart_after_sigkill_replays_the_events_the_stored_rule_state_missed(tmp_path: Path) -> None:
    config = config_file(tmp_path)
    assert kill_at_first_line(CRASHING, str(config)) == "READY"
    with LinkServer.from_config_file(config) as s:
        fired = alerts(s)
        assert [(name, key) for name, key, _ in fired] == [("alert", "devices.d2")]  # not again
        (burst,) = s.rules.status("burst")
        assert burst["state"]["counting"] == {"devices.d1": 4, "devices.d2": 5}
        assert burst["state"]["open"]["devices.d2"]["alert_id"] == fired[0][2]  # its clear names it
        assert s.rules.replayed == 6
        s.fire("devices.d1", "error", {"code": "E1", "message": "bad"}, durable=True)  # the fifth
        assert [(name, key) for name, key, _ in alerts(s)] == [
            ("alert", "devices.d2"),
            ("alert", "devices.d1"),
        ]
    with LinkServer.from_config_file(config) as s:  # a clean stop wrote everything: nothing to replay
        assert s.rules.replayed == 0
        (burst,) = s.rules.status("burst")
        assert burst["state"]["counting"] == {"devices.d1": 5, "devices.d2": 5}
        assert len(alerts(s)) == 2


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_an_alert_the_crash_came_before_is_fired_at_the_restart(tmp_path: Path) -> None:
    config = config_file(tmp_path)
    assert kill_at_first_line(CRASHING, str(config), "before-the-alert") == "READY"
    with LinkServer.from_config_file(config) as s:
        fired = alerts(s)
        assert [(name, key) for name, key, _ in fired] == [("alert", "devices.d2")]
        (burst,) = s.rules.status("burst")
        assert burst["state"]["open"]["devices.d2"]["alert_id"] == fired[0][2]
        assert fired[0][2] > max(e.id for e in s.history.query(HistoryQuery(names=("error",))).events)
    with LinkServer.from_config_file(config) as s:
        assert len(alerts(s)) == 1  # and only once
