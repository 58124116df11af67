"""Helpers of the network tests: a real LinkServer with its API on an ephemeral loopback port."""

from __future__ import annotations

import itertools
import json
import ssl
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from linkserver.loading.check import load_all
from linkserver.net.app import create_app
from linkserver.net.auth import ensure_admin_credentials, hash_password, read_admin_credentials
from linkserver.net.protocol import Limits
from linkserver.net.serve import _Uvicorn, listen_socket, uvicorn_config
from linkserver.server.app import LinkServer

REPO = Path(__file__).resolve().parents[2]
CONTEXTS = REPO / "contexts"

# One TLS context for every client: building one per httpx.Client costs ~0.1 s.
TLS = ssl.create_default_context()

# Users of the permission tests: name -> grants. Every one but admin has the password NAME-pw.
USERS: dict[str, dict[str, str]] = {
    "admin": {"**": "admin"},
    "engineer": {"**": "engineer"},
    "manager": {"**": "observer", "devices.**": "manager", "alerts.**": "manager", "users.**": "manager"},
    "operator": {"**": "observer", "devices.**": "operator", "alerts.**": "operator"},
    "observer": {"devices.**": "observer"},
    "plc1only": {"devices.plc1": "operator"},
    "nobody": {},
}
_FAST_HASHES = {name: hash_password(f"{name}-pw", n=2**10) for name in USERS if name != "admin"}


def write_config(
    directory: Path, *, database_url: str = "memory://", listen: str = "127.0.0.1:0", extra: str = ""
) -> Path:
    """A configuration file with the test users and the shipped contexts."""
    lines = [
        "server:",
        f"  data_dir: {json.dumps(str(directory / 'data'))}",
        f"  contexts: [{json.dumps(str(CONTEXTS))}]",
        f"  listen: {json.dumps(listen)}",
        "history:",
        f"  database_url: {json.dumps(database_url)}",
        "users:",
    ]
    for name, grants in USERS.items():
        hashed = json.dumps(_FAST_HASHES[name]) if name in _FAST_HASHES else "null"
        lines += [f"  {name}:", f"    password_hash: {hashed}", f"    grants: {json.dumps(grants)}"]
    path = directory / "linkserver.yaml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


class Live:
    """One running server: ``url``, ``server`` (the LinkServer) and helpers to log in."""

    _names = itertools.count(1)

    def __init__(
        self, config_path: Path, *, limits: Limits | None = None, session_lifetime: timedelta | None = None
    ) -> None:
        from linkserver.net.auth import SessionStore

        config, catalog = load_all(config_path)
        self.config = config
        self.limits = limits or Limits()
        self.server = LinkServer(config, catalog).start()
        self.sock = listen_socket("127.0.0.1", 0)
        host, port = self.sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        self.ws_url = f"ws://{host}:{port}/api/v1/ws"
        self.credentials_path = ensure_admin_credentials(config.data_dir, self.url)[1]
        sessions = SessionStore(session_lifetime) if session_lifetime is not None else None
        self.app = create_app(self.server, limits=self.limits, session_store=sessions)
        self.uvicorn = _Uvicorn(uvicorn_config(self.app, self.limits))
        self.thread = threading.Thread(target=self.uvicorn.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.uvicorn.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.005)
        self._tokens: dict[str, str] = {}

    def password(self, user: str) -> str:
        if user == "admin":
            credentials = read_admin_credentials(self.config.data_dir)
            assert credentials is not None
            return str(credentials["password"])
        return f"{user}-pw"

    def login(self, user: str) -> str:
        with self.client() as client:
            response = client.post("/login", json={"user": user, "password": self.password(user)})
        assert response.status_code == 200, response.text
        return str(response.json()["token"])

    def token(self, user: str) -> str:
        """A session token of ``user``, logged in once per server."""
        if user not in self._tokens:
            self._tokens[user] = self.login(user)
        return self._tokens[user]

    def client(self, user: str | None = None, token: str | None = None) -> httpx.Client:
        headers = {}
        if user is not None or token is not None:
            headers["Authorization"] = f"Bearer {token or self.token(user)}"  # type: ignore[arg-type]
        return httpx.Client(base_url=f"{self.url}/api/v1", headers=headers, timeout=10, verify=TLS)

    def ws(self, user: str, **kwargs: Any) -> Any:
        from websockets.sync.client import connect

        return connect(f"{self.ws_url}?token={self.token(user)}", open_timeout=5, **kwargs)

    def new_device(self, prefix: str = "dev") -> str:
        """A fresh device context devices.<unique name>."""
        path = f"devices.{prefix}{next(self._names)}"
        self.server.engine.add_context(path)
        return path

    def stop(self) -> None:
        self.uvicorn.should_exit = True
        self.thread.join(10)
        self.server.stop()
        self.sock.close()


def recv_json(ws: Any, timeout: float = 5.0) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=timeout))  # type: ignore[no-any-return]


def closed_with(ws: Any, timeout: float = 2.0) -> tuple[int, str]:
    """Read until the server closes ``ws``; its close code and reason."""
    from websockets.exceptions import ConnectionClosed

    deadline = time.monotonic() + timeout
    try:
        while True:
            ws.recv(timeout=max(0.01, deadline - time.monotonic()))
    except ConnectionClosed as exc:
        assert exc.rcvd is not None, "the connection ended without a close frame"
        return exc.rcvd.code, exc.rcvd.reason
    except TimeoutError:
        raise AssertionError(f"the server did not close the connection within {timeout} s") from None


def request(ws: Any, message: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    """Send one message and return the next message (its answer, when nothing else is pushed)."""
    ws.send(json.dumps(message))
    return recv_json(ws, timeout)
