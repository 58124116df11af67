"""Fixtures of the shell tests: linkserver.testing.RunningServer with its network API on a loopback port.

``live`` is one server for the whole module set (memory history); tests keep
apart by using device and alert contexts of their own (``live.new_device()``).
``make_live`` starts a fresh one (for restarts). ``env`` points the client at
the server's admin credentials file and the command history at a temporary
directory, so nothing of the user's own setup is read or written.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from linkserver.core.expiration import ExpirationRule, ExpirationTable
from linkserver.shell.commands import Shell
from linkserver.testing import RunningServer

REPO = Path(__file__).resolve().parents[2]


class LiveServer(RunningServer):
    """The shell tests' name for linkserver.testing.RunningServer (admin, operator, observer):
    ``credentials`` is the credentials file, ``new_device``/``new_alert`` return the new name."""

    def __init__(self, data_dir: Path, port: int = 0) -> None:
        # One table entry, as the shipped configuration has: 'events' and 'show' explain it.
        table = ExpirationTable(
            [ExpirationRule(mask="devices.**", event="error", expiration=timedelta(days=180))]
        )
        super().__init__(data_dir, port=port, expiration=table)

    @property
    def credentials(self) -> Path:
        return self.credentials_path

    @property
    def thread(self) -> Any:
        return self._thread or threading.Thread()  # a stopped server's thread is not alive

    def new_device(self, prefix: str = "dev", description: str = "") -> str:
        return super().new_device(prefix, description).rpartition(".")[2]

    def new_alert(self, prefix: str = "alarm") -> str:
        return super().new_alert(prefix).rpartition(".")[2]


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("shell-live"))
    yield server
    server.stop()


@pytest.fixture
def make_live(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    started: list[LiveServer] = []

    def make(port: int = 0, data_dir: Path | None = None) -> LiveServer:
        directory = data_dir or tmp_path / f"server{len(started)}"
        server = LiveServer(directory, port)
        started.append(server)
        return server

    yield make
    for server in started:
        if server.thread.is_alive():
            server.stop()


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    for name in ("LINKSERVER_URL", "LINKSERVER_TOKEN", "LINKSERVER_PASSWORD", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    if "live" in request.fixturenames:
        live = request.getfixturevalue("live")
        monkeypatch.setenv("LINKSERVER_CREDENTIALS", str(live.credentials))
        monkeypatch.setenv("LINKSERVER_URL", live.url)


class TextConsole:
    """A console that keeps what is written; ``answers`` are the replies to ``ask`` in order."""

    def __init__(
        self, answers: list[str] | None = None, colour: bool = False, width: int | None = None
    ) -> None:
        self.buffer = io.StringIO()
        self.answers = answers
        self.questions: list[str] = []
        self.colour, self.width = colour, width

    def write(self, text: str = "") -> None:
        self.buffer.write(text + "\n")

    def ask(self, question: str, meanwhile: Any = None) -> str | None:
        self.questions.append(question)
        if self.answers is None:
            return None
        return self.answers.pop(0) if self.answers else ""

    def ask_secret(self, question: str) -> str | None:
        return self.ask(question)

    def take(self) -> str:
        text = self.buffer.getvalue()
        self.buffer.seek(0)
        self.buffer.truncate()
        return text


class ShellDriver:
    """A Shell on a real client: ``run(line)`` returns what the commands wrote (errors raise)."""

    def __init__(self, client: Any, console: TextConsole) -> None:
        self.client, self.console = client, console
        self.shell = Shell(client, console)

    def run(self, line: str) -> str:
        self.shell.execute(line)
        return self.console.take()


@pytest.fixture
def client(live: LiveServer) -> Iterator[Any]:
    from linkserver.client import Client

    with Client(live.url) as c:
        yield c


@pytest.fixture
def sh(client: Any) -> ShellDriver:
    return ShellDriver(client, TextConsole())
