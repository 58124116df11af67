"""Fixtures of the shell tests: a real LinkServer with its network API on an ephemeral loopback port.

``live`` is one server for the whole module set (memory history); tests keep
apart by using device and alert contexts of their own (``live.new_device()``).
``make_live`` starts a fresh one (for restarts). ``env`` points the client at
the server's admin credentials file and the command history at a temporary
directory, so nothing of the user's own setup is read or written.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from linkserver.core.expiration import ExpirationRule, ExpirationTable
from linkserver.core.permissions import Grants
from linkserver.loading import load_all
from linkserver.loading.config import ServerConfig, UserConfig
from linkserver.net.app import create_app
from linkserver.net.auth import ensure_admin_credentials, hash_password
from linkserver.server.app import LinkServer
from linkserver.shell.commands import Shell

REPO = Path(__file__).resolve().parents[2]
_names = itertools.count(1)
_HASHES: dict[str, str] = {}


def users() -> dict[str, UserConfig]:
    grants = {
        "admin": {"**": "admin"},
        "operator": {"**": "observer", "devices.**": "operator", "alerts.**": "operator"},
        "observer": {"**": "observer"},
    }
    for name in grants:
        if name != "admin" and name not in _HASHES:
            _HASHES[name] = hash_password(f"{name}-pw", n=2**10)
    return {
        name: UserConfig(name=name, password_hash=_HASHES.get(name), grants=Grants(g))
        for name, g in grants.items()
    }


class _Uvicorn(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # leave SIGINT to the test process
        yield


class LiveServer:
    """A started LinkServer served on 127.0.0.1 by uvicorn in a thread: ``url``, ``credentials``."""

    def __init__(self, data_dir: Path, port: int = 0) -> None:
        _, catalog = load_all(REPO / "config" / "linkserver.yaml")
        # One table entry, as the shipped configuration has: 'events' and 'show' explain it.
        table = ExpirationTable(
            [ExpirationRule(mask="devices.**", event="error", expiration=timedelta(days=180))]
        )
        config = ServerConfig.default(
            data_dir=data_dir, database_url="memory://", users=users(), expiration=table
        )
        self.data_dir = data_dir
        self.server = LinkServer(config, catalog).start()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        ensure_admin_credentials(data_dir, self.url)
        self.credentials = data_dir / "admin.credentials"
        config = uvicorn.Config(
            create_app(self.server), lifespan="off", log_level="warning", access_log=False
        )
        self.uvicorn = _Uvicorn(config)
        self.thread = threading.Thread(target=self.uvicorn.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.uvicorn.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.005)

    def new_device(self, prefix: str = "dev") -> str:
        """A fresh device context ``devices.<unique name>`` (device template)."""
        name = f"{prefix}{next(_names)}"
        self.server.engine.add_context(f"devices.{name}", description=f"test device {name}")
        return name

    def new_alert(self, prefix: str = "alarm") -> str:
        name = f"{prefix}{next(_names)}"
        self.server.engine.add_context(f"alerts.{name}", description=f"test alert {name}")
        return name

    def stop(self) -> None:
        self.uvicorn.should_exit = True
        self.thread.join(10)
        self.server.stop()
        self.sock.close()


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
