"""The shell's alarm list in a real terminal (pexpect): ``alarms`` lists, ``--live`` prints each
change as it happens, ``alarm ID ack`` acknowledges, ``alarm ID`` shows it in full."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alarm_helpers import NET
from terminal_helpers import Terminal, admin_client, serve


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    (tmp_path / "net.yaml").write_text(NET)
    database_url = "sqlite:///" + str(tmp_path / "h.sqlite3")
    with serve(tmp_path, contexts=[tmp_path / "net.yaml"], database_url=database_url) as running:
        yield running


def test_alarms_live_view_acknowledge_and_detail(served: tuple[str, dict[str, str]]) -> None:
    url, env = served
    with admin_client(url, env) as admin:
        admin.add_context("net.sw1", description="switch 1")
        shell = Terminal(url, env)
        try:
            shell.type("alarms /net.**\r")
            shell.expect(r"\(no alarms\)")
            shell.type("alarms /net.** --live\r")
            shell.expect(r"watching alarms of net\.\*\*; Ctrl-C returns to the prompt")
            down = admin.fire("net.sw1", "linkDown", {"ifIndex": 3}, durable=True).id
            shell.expect(rf"occurred  #{down}  open  WARNING  count 1  net\.sw1:linkDown:3")
            admin.fire("net.sw1", "linkDown", {"ifIndex": 3}, level="ERROR", durable=True)
            shell.expect(rf"occurred  #{down}  open  ERROR  count 2  net\.sw1:linkDown:3")
            shell.type("\x03")
            shell.expect(r"stopped watching alarms \(2 change\(s\)\)")
            shell.expect(r"root>")

            shell.type(f"alarm {down} ack new cable\r")
            shell.expect(rf"alarm #{down}  acknowledged  ERROR  \(highest level\)")
            shell.expect(r"ack      .* admin: new cable")
            shell.type("alarms /net.** linkDown --state all\r")
            row = rf"#{down}\s+acknowledged\s+ERROR\s+2\s+.*net\.sw1\s+linkDown\s+"
            shell.expect(row + r"interface 3 of net\.sw1 is down \(ERROR\)  \(admin: new cable\)")
            admin.fire("net.sw1", "linkUp", {"ifIndex": 3}, durable=True)
            shell.type(f"alarm {down}\r")
            shell.expect(rf"alarm #{down}  cleared")
            shell.expect(r"cleared  .* by event #\d+")
            shell.type("alarms /net.**\r")
            shell.expect(r"\(no alarms\)")  # cleared ones are shown with --state cleared or all
            shell.type("exit\r")
            assert shell.wait_end() == 0
        finally:
            shell.child.close(force=True)


def threads_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc")
@pytest.mark.parametrize("view", ["watch /net.**", "alarms /net.** --live"])
def test_ctrl_c_pressed_many_times_stops_a_live_view_and_nothing_else(
    served: tuple[str, dict[str, str]], view: str
) -> None:
    url, env = served
    shell = Terminal(url, env)
    try:
        shell.type("pwd\r")
        shell.expect(r"root>")
        before = threads_of(shell.child.pid)
        for _ in range(3):
            shell.type(view + "\r")
            shell.expect(r"watching .*; Ctrl-C returns to the prompt")
            started = shell.pos
            for _press in range(25):  # an impatient operator: each ^C a SIGINT of its own
                shell.type("\x03", pause=0.004)
            shell.expect(r"stopped watching")
            shell.type("pwd\r")  # the shell is still there and answers
            shell.expect(r"\nroot\s*\n")
            said = shell.text[started : shell.pos]
            assert "error" not in said and "interrupted" not in said and "Traceback" not in said, said
            deadline = time.monotonic() + 10
            while threads_of(shell.child.pid) > before:  # the subscription's reader thread ended
                assert time.monotonic() < deadline, f"{threads_of(shell.child.pid)} threads, {before} before"
                time.sleep(0.05)
        shell.type("exit\r")
        assert shell.wait_end() == 0
    finally:
        shell.child.close(force=True)
