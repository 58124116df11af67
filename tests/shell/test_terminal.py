"""End to end in a real terminal (pexpect): ``linkserver serve`` and two shells as processes.

One shell completes a path with Tab and watches; the other fires an alert;
the watching shell asks for the acknowledgement, gets it, and the
acknowledgement shows in ``history`` and ``acks``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from terminal_helpers import Terminal, admin_client, serve


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    with serve(tmp_path) as running:
        yield running


def test_tab_fire_watch_acknowledge_history(served):
    url, env = served
    with admin_client(url, env) as admin:
        admin.add_context("alerts.pump", description="the main pump")

    watcher, firer = Terminal(url, env), Terminal(url, env)
    try:
        # Tab completes the path: only "/alerts.pu" is typed.
        watcher.type("cd /alerts.pu", pause=0.3)
        watcher.type("\t", pause=0.3)
        watcher.type("\r")
        watcher.expect(r"\nalerts\.pump>")
        watcher.type("watch\r")
        watcher.expect(r"watching alerts\.pump\.\*\* \*")

        firer.type("cd /alerts/pump\r")
        firer.expect(r"\nalerts\.pump>")
        firer.type("fire alert message='pressure low' severity=high\r")
        event_id = firer.expect(r"fired alerts\.pump/alert #(\d+) WARNING").group(1)

        # the definition's message first, then the data
        watcher.expect(
            rf"WARNING alerts\.pump/alert #{event_id}\s+pressure low \(high\) \| message=pressure low"
        )
        watcher.expect(
            rf"acknowledge alerts\.pump/alert #{event_id} \(pressure low \(high\)\) "
            r"\(text, Enter skips\):"
        )
        watcher.type("valve opened\r")
        watcher.expect(rf"acknowledged alerts\.pump/alert #{event_id} \(1 acknowledgement\(s\)\)")
        watcher.type("\x03")
        watcher.expect(r"stopped watching \(1 event\(s\)\)")
        watcher.expect(r"alerts\.pump>")

        watcher.type("history --limit 5\r")
        watcher.expect(
            rf"{event_id}\s+\S+ \S+\s+alerts\.pump\s+alert\s+WARNING\s+admin\s+1\s+"
            r"pressure low \(high\)\s+message=pressure low"
        )
        watcher.type(f"acks {event_id}\r")
        watcher.expect(r"admin\s+valve opened")

        watcher.type("exit\r")
        firer.type("\x04")
        assert watcher.wait_end() == 0 and firer.wait_end() == 0
    finally:
        for terminal in (watcher, firer):
            terminal.child.close(force=True)
    history = Path(env["XDG_DATA_HOME"]) / "linkserver" / "shell_history"
    assert re.search(r"\+cd /alerts\.pump\n", history.read_text())


def test_watch_keeps_printing_while_an_acknowledgement_is_asked_for(served):
    url, env = served
    with admin_client(url, env) as admin:
        admin.add_context("alerts.boiler", description="the boiler")
        watcher = Terminal(url, env)
        try:
            watcher.type("watch /alerts.boiler\r")
            watcher.expect(r"watching alerts\.boiler \*")
            first = admin.fire("alerts.boiler", "alert", {"message": "too hot"}).id
            watcher.expect(
                rf"acknowledge alerts\.boiler/alert #{first} \(too hot \(medium\)\) \(text, Enter skips\):"
            )
            # Nothing typed yet: the question is pending, and the stream goes on above it.
            second = admin.fire("alerts.boiler", "alert", {"message": "hotter still"}).id
            watcher.expect(
                rf"WARNING alerts\.boiler/alert #{second}\s+hotter still \(medium\) \| message=hotter still"
            )
            watcher.type("turned the burner down\r")
            watcher.expect(rf"acknowledged alerts\.boiler/alert #{first} \(1 acknowledgement\(s\)\)")
            # The alert that came in meanwhile is asked for next.
            watcher.expect(
                rf"acknowledge alerts\.boiler/alert #{second} \(hotter still \(medium\)\) "
                r"\(text, Enter skips\):"
            )
            watcher.type("\r")
            watcher.expect(rf"skipped alerts\.boiler/alert #{second}")
            watcher.type("\x03")
            watcher.expect(r"stopped watching \(2 event\(s\)\)")
            watcher.type("exit\r")
            assert watcher.wait_end() == 0
        finally:
            watcher.child.close(force=True)
        assert [a.text for a in admin.event(first).acknowledgements] == ["turned the burner down"]
        assert admin.event(second).acknowledgements == ()


def test_an_interactive_shell_is_one_session_logged_in_and_out(served):
    url, env = served
    shell = Terminal(url, env)
    try:
        shell.type("me\r")
        shell.expect(r"admin at ")
        shell.type("exit\r")
        assert shell.wait_end() == 0
    finally:
        shell.child.close(force=True)
    from linkserver.client import Client

    credentials = json.loads(Path(env["LINKSERVER_CREDENTIALS"]).read_text())
    with Client(url, user="admin", password=credentials["password"]) as client:  # a session of its own
        logins = client.history(mask="users.admin", event="login").events
        [logout] = client.history(mask="users.admin", event="logout").events
    assert len(logins) == 2  # the shell's and this client's
    assert logout.record["reason"] == "logout"
