"""A real LinkServer with its network API on an ephemeral loopback port, for the client tests.

:class:`LiveServer` starts the LinkServer (in-memory history, the shipped
contexts, an ``admin`` with the generated credentials file and a
``watcher`` observer) and serves ``create_app(server)`` with uvicorn in a
background thread. :meth:`LiveServer.restart_http` stops uvicorn and starts
a new app on the same port over the same LinkServer, as a server restart
looks to a client (sessions are lost, history is kept).
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from linkserver.core.levels import Permission
from linkserver.core.permissions import Grants
from linkserver.loading.config import ServerConfig, UserConfig
from linkserver.loading.contexts import load_contexts
from linkserver.net.app import create_app
from linkserver.net.auth import ensure_admin_credentials, hash_password, read_admin_credentials
from linkserver.server.app import LinkServer

ROOT = Path(__file__).resolve().parents[2]
OBSERVER_PASSWORD = "look-but-do-not-touch"


class LiveServer:
    """One LinkServer and the uvicorn serving its API (restartable on the same port)."""

    def __init__(self, data_dir: Path) -> None:
        users = {
            "admin": UserConfig(name="admin", grants=Grants({"**": Permission.ADMIN})),
            "watcher": UserConfig(
                name="watcher",
                password_hash=hash_password(OBSERVER_PASSWORD, n=2**4),
                grants=Grants({"**": Permission.OBSERVER}),
            ),
        }
        config = ServerConfig.default(data_dir=data_dir, database_url="memory://", users=users)
        self.server = LinkServer(config, load_contexts([ROOT / "contexts"])).start()
        self.data_dir = data_dir
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        ensure_admin_credentials(data_dir, self.url)
        self.credentials: dict[str, Any] = read_admin_credentials(data_dir) or {}
        self.credentials_path = data_dir / "admin.credentials"
        self._uvicorn: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start_http(self) -> None:
        sock = socket.create_server(("127.0.0.1", self.port), backlog=128)
        config = uvicorn.Config(
            create_app(self.server), lifespan="off", log_level="warning", timeout_graceful_shutdown=1
        )
        self._uvicorn = server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="test-uvicorn", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)

    def stop_http(self) -> None:
        if self._uvicorn is not None and self._thread is not None:
            self._uvicorn.should_exit = True
            self._thread.join(timeout=10)
            self._uvicorn = self._thread = None

    def restart_http(self, down: float = 0.0) -> None:
        self.stop_http()
        time.sleep(down)
        self.start_http()

    def close(self) -> None:
        self.stop_http()
        self.server.stop("test over")
