"""End to end in a real terminal (pexpect): ``linkserver serve`` and two shells as processes.

One shell completes a path with Tab and watches; the other fires an alert;
the watching shell asks for the acknowledgement, gets it, and the
acknowledgement shows in ``history`` and ``acks``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
TIMEOUT = 15


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ready(url: str, credentials: Path) -> bool:
    """The server answers HTTP and has written the admin credentials file."""
    import httpx

    try:
        return credentials.exists() and httpx.get(f"{url}/openapi.json", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    config = tmp_path / "linkserver.yaml"
    config.write_text(
        "server:\n"
        f"  data_dir: {json.dumps(str(tmp_path / 'data'))}\n"
        f"  contexts: [{json.dumps(str(REPO / 'contexts'))}]\n"
        f"  listen: 127.0.0.1:{port}\n"
        "history:\n"
        "  database_url: memory://\n"
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


_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\x1b[=>]|\r")


class Terminal:
    """A shell in a pseudo-terminal; ``expect`` searches its output with escape codes removed."""

    def __init__(self, url: str, env: dict[str, str]) -> None:
        self.child = pexpect.spawn(
            PYTHON,
            ["-m", "linkserver.shell.main", "--url", url, "--no-colour"],
            cwd=str(REPO),
            env=env,
            encoding="utf-8",
            dimensions=(40, 200),
        )
        self.raw, self.pos = "", 0
        self.expect(r"LinkServer shell: admin at ")
        self.expect(r"root>")

    @property
    def text(self) -> str:
        return _ESCAPES.sub("", self.raw)

    def expect(self, pattern: str, timeout: float = TIMEOUT) -> re.Match[str]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            found = regex.search(self.text, self.pos)
            if found:
                self.pos = found.end()
                return found
            if time.monotonic() > deadline:
                pytest.fail(f"{pattern!r} did not appear; the terminal shows:\n{self.text[-2000:]}")
            try:
                self.raw += self.child.read_nonblocking(65536, timeout=0.1)
            except pexpect.TIMEOUT:
                pass
            except pexpect.EOF:
                if regex.search(self.text, self.pos) is None:
                    pytest.fail(f"the shell ended before {pattern!r}:\n{self.text[-2000:]}")

    def type(self, text: str, pause: float = 0.0) -> None:
        self.child.send(text)
        time.sleep(pause)

    def wait_end(self) -> int:
        self.child.expect(pexpect.EOF, timeout=TIMEOUT)
        self.child.close()
        return int(self.child.exitstatus)


def test_tab_fire_watch_acknowledge_history(served):
    url, env = served
    from linkserver.client import Client

    password = json.loads(Path(env["LINKSERVER_CREDENTIALS"]).read_text())["password"]
    with Client(url, user="admin", password=password) as admin:
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
    from linkserver.client import Client

    password = json.loads(Path(env["LINKSERVER_CREDENTIALS"]).read_text())["password"]
    with Client(url, user="admin", password=password) as admin:
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
