"""The shell's ``alarms`` table and ``alarm ID`` detail on a real server: each alarm shows its last
event's message (the key where that event is no longer stored)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


def test_event_names_the_alarm_it_is_part_of(alarmed: tuple[RunningServer, ShellDriver]) -> None:
    server, sh = alarmed
    down = server.server.fire("net.sw1", "linkDown", {"ifIndex": 8}, durable=True)
    up = server.server.fire("net.sw1", "linkUp", {"ifIndex": 8}, durable=True)
    assert f"  alarm            {down.id}  cleared, 1 event  key net.sw1:linkDown:8\n" in sh.run(
        f"event {down.id}"
    )
    detail = sh.run(f"event {up.id}")
    assert f"  clears alarm     {down.id}  cleared, 1 event  key net.sw1:linkDown:8\n" in detail


def test_alarms_all_lists_every_page(alarmed: tuple[RunningServer, ShellDriver]) -> None:
    server, sh = alarmed
    ids = [server.server.fire("net.sw1", "linkDown", {"ifIndex": i}, durable=True).id for i in (20, 21, 22)]
    first = sh.run("alarms /net.** --limit 2")
    assert "more alarms than 2: --all shows every one" in first and f"#{ids[0]}" not in first
    every = sh.run("alarms /net.** --limit 2 --all")
    assert all(f"#{i}" in every for i in ids) and "more alarms" not in every


def test_alarms_since_and_until_bound_the_last_occurrence(alarmed: tuple[RunningServer, ShellDriver]) -> None:
    server, sh = alarmed
    down = server.server.fire("net.sw1", "linkDown", {"ifIndex": 5}, durable=True)
    assert f"#{down.id}" in sh.run("alarms /net.** --since 1m --until now")
    assert sh.run("alarms /net.** --until 1m").strip() == "(no alarms)"
    with pytest.raises(ShellError, match="'soon' is not a time"):
        sh.run("alarms --since soon")


class FiringConsole(TextConsole):
    """Runs ``act()`` in a thread once the live view says it is watching."""

    def __init__(self, act: Callable[[], None]) -> None:
        super().__init__(width=200)
        self.act, self.acting = act, threading.Thread(target=act)

    def write(self, text: str = "") -> None:
        super().write(text)
        if text.startswith("watching alarms"):
            self.acting.start()


def test_alarms_live_shows_the_changes_that_take_an_alarm_out_of_the_view(
    alarmed: tuple[RunningServer, ShellDriver],
) -> None:
    """The default view (open and acknowledged) shows an alarm cleared by an event or by hand: the
    change that makes it leave the list is what the operator watches for."""
    server, sh = alarmed
    ids: dict[str, int] = {}

    alarms = server.server.alarms

    def told(change: Callable[[], Any]) -> Any:
        # The notifier tells an alarm as it is when it reads it: one change at a time keeps
        # each line's state the one its change made.
        before = alarms.notified
        result = change()
        deadline = time.monotonic() + 10
        while alarms.notified == before and time.monotonic() < deadline:
            time.sleep(0.005)
        return result

    def act() -> None:
        ids["a"] = told(lambda: server.server.fire("net.sw1", "linkDown", {"ifIndex": 3}, durable=True)).id
        ids["b"] = told(lambda: server.server.fire("net.sw1", "linkDown", {"ifIndex": 4}, durable=True)).id
        told(lambda: sh.client.acknowledge_alarm(ids["b"], "on it"))
        told(lambda: sh.client.clear_alarm(ids["b"]))
        told(lambda: server.server.fire("net.sw1", "linkUp", {"ifIndex": 3}, durable=True))

    console = FiringConsole(act)
    live = ShellDriver(sh.client, console)
    text = live.run("alarms /net.** --live --seconds 6")
    console.acting.join()
    changes = [line.split("  ")[1:4] for line in text.splitlines() if line[:2].isdigit()]
    assert changes == [
        ["occurred", f"#{ids['a']}", "open"],
        ["occurred", f"#{ids['b']}", "open"],
        ["acknowledged by admin", f"#{ids['b']}", "acknowledged"],
        ["cleared by admin", f"#{ids['b']}", "cleared"],
        ["cleared", f"#{ids['a']}", "cleared"],
    ], text
    assert text.rstrip().endswith("stopped watching alarms (5 change(s))")
    assert f"#{ids['a']}  open  WARNING  count 1  net.sw1:linkDown:3  interface 3 of net.sw1 is down" in text

    in_cleared = ShellDriver(sh.client, FiringConsole(lambda: sh.client.acknowledge_alarm(ids["a"], "x")))
    text = in_cleared.run("alarms /net.** --state cleared --live --seconds 3")
    assert f"acknowledged by admin  #{ids['a']}  cleared" in text  # an ack of a cleared alarm, in its view
