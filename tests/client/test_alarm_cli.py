"""``linkserver alarms list|ack|unack|clear`` against a real server: the filters of history plus
--state, the table and --json, and the exit code of a refused change; ``linkserver purge``
removing old cleared alarms."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alarm_helpers import alarm_catalog

from linkserver.client.cli import main
from linkserver.core.permissions import Grants, Principal
from linkserver.history.alarms import AlarmNotFound
from linkserver.testing import RunningServer

USERS = {"operator": {"**": "observer", "net.**": "operator"}, "observer": {"**": "observer"}}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    base = tmp_path_factory.mktemp("alarm_cli")
    with RunningServer(base / "data", catalog=alarm_catalog(base / "contexts"), users=USERS) as server:
        server.server.engine.add_context("net.sw1")
        yield server


def cli(
    capsys: pytest.CaptureFixture[str], live: RunningServer, user: str, *argv: str
) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([*argv, "--url", live.url, "--token", live.token(user)])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_ack_unack_and_clear(
    live: RunningServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    down = live.server.fire("net.sw1", "linkDown", {"ifIndex": 2}, durable=True)
    live.server.fire("net.sw1", "linkDown", {"ifIndex": 3}, level="ERROR", durable=True)
    code, out, err = cli(
        capsys, live, "observer", "alarms", "list", "--mask", "net.**", "--min-level", "ERROR"
    )
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "STATE", "LEVEL", "COUNT", "LAST", "KEY", "MESSAGE", "ACK"]
    assert len(lines) == 2 and "net.sw1:linkDown:3" in lines[1] and "ERROR" in lines[1]
    assert "interface 3 of net.sw1 is down (ERROR)" in lines[1]
    code, out, _ = cli(capsys, live, "observer", "alarms", "list", "--filter", "data.ifIndex == 2", "--json")
    (alarm,) = json.loads(out)["alarms"]
    assert (code, alarm["id"], alarm["state"]) == (0, down.id, "open")
    code, _, err = cli(capsys, live, "observer", "alarms", "ack", str(down.id), "mine")
    assert code == 1 and "needs operator" in err
    code, out, _ = cli(capsys, live, "operator", "alarms", "ack", str(down.id), "new", "cable")
    assert (code, out) == (0, f"alarm {down.id} (net.sw1:linkDown:2) is acknowledged\n")
    code, out, _ = cli(capsys, live, "observer", "alarms", "list", "--state", "acknowledged")
    assert "operator: new cable" in out
    assert cli(capsys, live, "operator", "alarms", "unack", str(down.id))[1].endswith("is open\n")
    assert cli(capsys, live, "operator", "alarms", "clear", str(down.id))[1].endswith("is cleared\n")
    code, out, _ = cli(capsys, live, "observer", "alarms", "list", "--filter", "data.ifIndex == 2")
    assert out.endswith("(none)\n")  # cleared alarms are left out unless asked for
    code, out, _ = cli(
        capsys, live, "observer", "alarms", "list", "--state", "all", "--limit", "1", "--oldest-first"
    )
    assert "net.sw1:linkDown:2" in out


def test_since_and_until_bound_the_last_occurrence(
    live: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    live.server.engine.add_context("net.sw2")
    live.server.fire("net.sw2", "linkDown", {"ifIndex": 7}, durable=True)
    mine = ("--mask", "net.sw2", "--json")
    for since, until, found in (("1m", "now", 1), ("today", "1m", 0), ("yesterday", "2099-01-01", 1)):
        code, out, err = cli(
            capsys, live, "observer", "alarms", "list", "--since", since, "--until", until, *mine
        )
        assert (code, err, len(json.loads(out)["alarms"])) == (0, "", found), (since, until)


def test_the_clients_read_an_alarms_events_page_after_page(live: RunningServer) -> None:
    import asyncio

    from linkserver.client import AsyncClient, Client

    down = live.server.fire("net.sw1", "linkDown", {"ifIndex": 30}, durable=True)
    more = [live.server.fire("net.sw1", "linkDown", {"ifIndex": 30}, durable=True) for _ in range(2)]
    up = live.server.fire("net.sw1", "linkUp", {"ifIndex": 30}, durable=True)
    expected = [down.id, *(e.id for e in more), up.id]
    with Client(live.url, token=live.token("observer")) as client:
        page = client.alarm_events(down.id, order="oldest", limit=2)
        assert [e.id for e in page.events] == expected[:2] and page.next_cursor
        assert [e.id for e in client.iter_alarm_events(down.id, order="oldest", limit=1)] == expected
        assert client.event(down.id).message == "interface 30 of net.sw1 is down (WARNING)"

    async def newest_first() -> list[int]:
        async with AsyncClient(live.url, token=live.token("observer")) as client:
            return [e.id async for e in client.iter_alarm_events(down.id, limit=3)]

    assert asyncio.run(newest_first()) == expected[::-1]


def test_show_prints_one_alarm_in_full(live: RunningServer, capsys: pytest.CaptureFixture[str]) -> None:
    """First and last occurrence, every acknowledgement and what cleared it: what the list's one
    line per alarm leaves out."""
    live.server.engine.add_context("net.sw3")
    down = live.server.fire("net.sw3", "linkDown", {"ifIndex": 5}, durable=True)
    last = live.server.fire("net.sw3", "linkDown", {"ifIndex": 5}, level="ERROR", durable=True)
    assert cli(capsys, live, "operator", "alarms", "ack", str(down.id), "on", "it")[0] == 0
    assert cli(capsys, live, "operator", "alarms", "ack", str(down.id), "still")[0] == 0
    up = live.server.fire("net.sw3", "linkUp", {"ifIndex": 5}, durable=True)
    code, out, err = cli(capsys, live, "observer", "alarms", "show", str(down.id))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"alarm {down.id}  cleared  ERROR (highest of its events)"
    assert "  key              net.sw3:linkDown:5" in lines
    assert "  message          interface 5 of net.sw3 is down (ERROR)" in lines
    assert f"  event            net.sw3/linkDown, last {last.id}" in lines
    assert "  count            2" in lines
    assert [line.split()[0] for line in lines[5:]] == [
        "first",
        "last",
        "acknowledged",
        "acknowledged",
        "cleared",
    ]
    assert lines[-3].endswith("by operator: on it") and lines[-2].endswith("by operator: still")
    assert lines[-1].endswith(f"by event {up.id}")
    code, out, _ = cli(capsys, live, "observer", "alarms", "show", str(down.id), "--json")
    assert json.loads(out)["cleared"]["event"] == up.id
    code, _, err = cli(capsys, live, "observer", "alarms", "show", "12345")
    assert code == 1 and "no alarm 12345" in err


def test_purge_removes_the_alarms_cleared_past_keep_cleared_and_says_how_many(
    live: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    live.server.engine.add_context("net.sw4")
    old = live.server.fire("net.sw4", "linkDown", {"ifIndex": 1}, durable=True)
    recent = live.server.fire("net.sw4", "linkDown", {"ifIndex": 2}, durable=True)
    admin = Principal(name="admin", grants=Grants({"**": "admin"}))
    removal = live.server.purger.scheduler.get_job("linkserver-cleared alarm removal")  # type: ignore[union-attr]
    removal.pause()  # this test's purge, not the job's run, removes the old one
    try:
        live.server.alarms.clear(old.id, admin, now=datetime.now(UTC) - timedelta(days=2))
        live.server.alarms.clear(recent.id, admin)
        code, out, err = cli(capsys, live, "observer", "purge")
        assert code != 0 and "engineer" in err
        code, out, err = cli(capsys, live, "admin", "purge")
        assert (code, err) == (0, "")
        assert out.endswith(" and 1 cleared alarm past alarms.keep_cleared\n")
        code, out, _ = cli(capsys, live, "admin", "purge", "--json")
        assert json.loads(out)["alarms_removed"] == 0
    finally:
        removal.resume()
    with pytest.raises(AlarmNotFound):
        live.server.alarms.get(old.id, admin)
    assert live.server.alarms.get(recent.id, admin).state.value == "cleared"  # kept for a day


def test_show_of_an_event_names_its_alarm(live: RunningServer, capsys: pytest.CaptureFixture[str]) -> None:
    live.server.engine.add_context("net.sw5")
    down = live.server.fire("net.sw5", "linkDown", {"ifIndex": 6}, durable=True)
    again = live.server.fire("net.sw5", "linkDown", {"ifIndex": 6}, durable=True)
    plain = live.server.fire("net.sw5", "fanFailed", durable=True)
    code, out, err = cli(capsys, live, "observer", "show", str(again.id))
    assert (code, err) == (0, "")
    assert f"  alarm            {down.id}  open, 2 events  key net.sw5:linkDown:6" in out.splitlines()
    up = live.server.fire("net.sw5", "linkUp", {"ifIndex": 6}, durable=True)
    code, out, _ = cli(capsys, live, "observer", "show", str(up.id))
    assert f"  clears alarm     {down.id}  cleared, 2 events  key net.sw5:linkDown:6" in out.splitlines()
    code, out, _ = cli(capsys, live, "observer", "show", str(up.id), "--json")
    (alarm,) = json.loads(out)["alarms"]
    assert (alarm["id"], alarm["role"], alarm["state"], alarm["count"]) == (down.id, "clears", "cleared", 2)
    live.server.fire("net.sw5", "linkDown", {"ifIndex": 6}, durable=True)  # back: a new alarm
    code, out, _ = cli(capsys, live, "observer", "show", str(down.id))
    assert "  alarm            not in the list now  key net.sw5:linkDown:6" in out.splitlines()
    code, out, _ = cli(capsys, live, "observer", "show", str(plain.id))
    assert f"  alarm            {plain.id}  open, 1 event  key net.sw5:fan" in out.splitlines()
