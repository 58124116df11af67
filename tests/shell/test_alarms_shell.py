"""The shell's ``alarms`` table and ``alarm ID`` detail on a real server: each alarm shows its last
event's message (the key where that event is no longer stored)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alarm_helpers import alarm_catalog
from shell_helpers import ShellDriver, TextConsole

from linkserver.client import Client
from linkserver.shell.session import ShellError
from linkserver.testing import RunningServer


@pytest.fixture
def alarmed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[RunningServer, ShellDriver]]:
    server = RunningServer(
        tmp_path / "data",
        catalog=alarm_catalog(tmp_path / "contexts"),
        database_url=f"sqlite:///{tmp_path / 'h.sqlite3'}",
    )
    monkeypatch.setenv("LINKSERVER_CREDENTIALS", str(server.credentials_path))
    try:
        server.server.engine.add_context("net.sw1")
        with Client(server.url) as client:
            yield server, ShellDriver(client, TextConsole(width=200))
    finally:
        server.stop()


def test_alarms_and_alarm_show_the_last_events_message(alarmed: tuple[RunningServer, ShellDriver]) -> None:
    server, sh = alarmed
    down = server.server.fire("net.sw1", "linkDown", {"ifIndex": 3}, level="ERROR", durable=True)
    server.server.fire("net.sw1", "linkDown", {"ifIndex": 3}, durable=True)
    (row,) = [line for line in sh.run("alarms /net.**").splitlines() if line.startswith(f"#{down.id}")]
    assert "interface 3 of net.sw1 is down (WARNING)" in row and "net.sw1:linkDown:3" not in row
    detail = sh.run(f"alarm {down.id}")
    assert "  key      net.sw1:linkDown:3\n  message  interface 3 of net.sw1 is down (WARNING)\n" in detail

    other = server.server.fire("net.sw1", "linkDown", {"ifIndex": 4}, durable=True)
    server.server.history.delete(other.id)  # its only event is gone: nothing renders a message
    (row,) = [line for line in sh.run("alarms /net.**").splitlines() if line.startswith(f"#{other.id}")]
    assert row.rstrip().endswith("net.sw1:linkDown:4")
    assert "  message" not in sh.run(f"alarm {other.id}")


def test_alarms_since_and_until_bound_the_last_occurrence(alarmed: tuple[RunningServer, ShellDriver]) -> None:
    server, sh = alarmed
    down = server.server.fire("net.sw1", "linkDown", {"ifIndex": 5}, durable=True)
    assert f"#{down.id}" in sh.run("alarms /net.** --since 1m --until now")
    assert sh.run("alarms /net.** --until 1m").strip() == "(no alarms)"
    with pytest.raises(ShellError, match="'soon' is not a time"):
        sh.run("alarms --since soon")
