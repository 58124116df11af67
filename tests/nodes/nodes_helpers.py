"""Helpers of the several-nodes tests: ``linkserver serve`` processes sharing one PostgreSQL schema."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from linkserver.net.auth import hash_password

REPO = Path(__file__).resolve().parents[2]
CONTEXTS = REPO / "contexts"
POSTGRES_URL = os.environ.get("LINKSERVER_TEST_POSTGRES_URL")

# Every node has the same users and the same hashes (a cluster shares its configuration).
USERS: dict[str, dict[str, str]] = {"admin": {"**": "admin"}, "operator": {"**": "operator"}}
_HASHES = {name: hash_password(f"{name}-pw", n=2**10) for name in USERS}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_node_config(directory: Path, database_url: str, node_id: int, port: int, extra: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lines = [
        "server:",
        f"  data_dir: {json.dumps(str(directory / 'data'))}",
        f"  contexts: [{json.dumps(str(CONTEXTS))}]",
        f"  listen: {json.dumps(f'127.0.0.1:{port}')}",
        f"  node_id: {node_id}",
        "history:",
        f"  database_url: {json.dumps(database_url)}",
        "users:",
    ]
    for name, grants in USERS.items():
        lines += [
            f"  {name}:",
            f"    password_hash: {json.dumps(_HASHES[name])}",
            f"    grants: {json.dumps(grants)}",
        ]
    path = directory / "linkserver.yaml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


class Node:
    """One ``linkserver serve`` process on loopback."""

    def __init__(self, directory: Path, database_url: str, node_id: int, extra: str = "") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api = f"{self.url}/api/v1"
        self.ws_url = f"ws://127.0.0.1:{self.port}/api/v1/ws"
        self.config = write_node_config(directory, database_url, node_id, self.port, extra)
        self.log = open(directory / "server.log", "w+")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "linkserver.net.serve", "--config", str(self.config)],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            text=True,
        )

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def wait_serving(self, timeout: float = 90) -> Node:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"node exited with {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/openapi.json", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError(f"node did not answer within {timeout} s:\n{self.output()}")

    def http(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.api, headers=headers, timeout=10)

    def login(self, user: str = "admin") -> str:
        with self.http() as http:
            answer = http.post("/login", json={"user": user, "password": f"{user}-pw"})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["token"])

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.log.close()


def eventually(check: Callable[[], Any], timeout: float = 5.0, what: str = "the condition") -> Any:
    """``check()``'s first truthy result, trying every 20 ms for up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout} s")
        time.sleep(0.02)
