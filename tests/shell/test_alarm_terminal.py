"""The shell's alarm list in a real terminal (pexpect): ``alarms`` lists, ``--live`` prints each
change as it happens, ``alarm ID ack`` acknowledges, ``alarm ID`` shows it in full."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alarm_helpers import NET
from test_terminal import PYTHON, REPO, Terminal, free_port, ready

pytest.importorskip("pexpect")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    (tmp_path / "net.yaml").write_text(NET)
    config = tmp_path / "linkserver.yaml"
    contexts = [str(REPO / "contexts"), str(tmp_path / "net.yaml")]
    config.write_text(
        "server:\n"
        f"  data_dir: {json.dumps(str(tmp_path / 'data'))}\n"
        f"  contexts: {json.dumps(contexts)}\n"
        f"  listen: 127.0.0.1:{port}\n"
        "history:\n"
        f"  database_url: {json.dumps('sqlite:///' + str(tmp_path / 'h.sqlite3'))}\n"
    )
    env = {
        **os.environ,
        "LINKSERVER_CREDENTIALS": str(tmp_path / "data" / "admin.credentials"),
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
        "PROMPT_TOOLKIT_NO_CPR": "1",
        "TERM": "xterm",
    }
    for name in ("LINKSERVER_URL", "LINKSERVER_TOKEN", "LINKSERVER_PASSWORD", "NO_COLOR"):
        env.pop(name, None)
    server = subprocess.Popen(
        [PYTHON, "-m", "linkserver.net.serve", "--config", str(config)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while not ready(url, Path(env["LINKSERVER_CREDENTIALS"])):
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail(f"linkserver serve did not start: {server.stderr.read().decode()}")  # type: ignore[union-attr]
        time.sleep(0.05)
    try:
        yield url, env
    finally:
        server.send_signal(signal.SIGINT)
        try:
            assert server.wait(15) == 0
        finally:
            if server.poll() is None:
                server.kill()


def test_alarms_live_view_acknowledge_and_detail(served: tuple[str, dict[str, str]]) -> None:
    url, env = served
    from linkserver.client import Client

    password = json.loads(Path(env["LINKSERVER_CREDENTIALS"]).read_text())["password"]
    with Client(url, user="admin", password=password) as admin:
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
