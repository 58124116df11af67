"""Helpers of the network tests: configuration files for linkserver.testing.RunningServer."""

from __future__ import annotations

import json
import ssl
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from linkserver.net.auth import hash_password
from linkserver.net.protocol import Limits
from linkserver.testing import RunningServer

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


class Live(RunningServer):
    """The network tests' name for :class:`linkserver.testing.RunningServer` on a configuration
    file (see :func:`write_config`); ``client()`` here is an httpx client, as the tests use it."""

    def __init__(
        self, config_path: Path, *, limits: Limits | None = None, session_lifetime: timedelta | None = None
    ) -> None:
        super().__init__(config_path=config_path, limits=limits, session_lifetime=session_lifetime)

    def client(self, user: str | None = None, token: str | None = None) -> httpx.Client:  # type: ignore[override]
        return self.http(user, token)


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
