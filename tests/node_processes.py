"""What the multi-process tests (tests/nodes, tests/cluster) share: a PostgreSQL schema of the test's
own, and ``linkserver serve`` processes on loopback ports whose output the tests keep.

PostgreSQL comes from ``LINKSERVER_TEST_POSTGRES_URL``. Unset: the tests that need it are skipped.
Set but unreachable: they fail. Other helpers' tests use the same server at the same time, so each
test has a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get("LINKSERVER_TEST_POSTGRES_URL")

_Process = TypeVar("_Process", bound="ServeProcess")


@contextlib.contextmanager
def fresh_schema(prefix: str) -> Iterator[str]:
    """A URL whose connections live in a new schema named ``prefix_<random>``, dropped after."""
    if not POSTGRES_URL:
        pytest.skip("LINKSERVER_TEST_POSTGRES_URL is not set")
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)  # unreachable: the test fails here, it is not skipped
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        separator = "&" if "?" in POSTGRES_URL else "?"
        yield f"{POSTGRES_URL}{separator}options={quote(f'-csearch_path={schema}')}"
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServeProcess:
    """One ``linkserver serve`` process in ``directory``, on a free loopback port.

    A subclass writes the configuration (:meth:`config_text`) and says when the
    node serves (:meth:`wait_serving`). Every start appends the process's output
    to ``directory/server.log``, which the test keeps for a failure's reader.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api = f"{self.url}/api/v1"
        self.ws_url = f"ws://127.0.0.1:{self.port}/api/v1/ws"
        self.config = directory / "linkserver.yaml"
        self.log_path = directory / "server.log"
        self.process: subprocess.Popen[str] | None = None
        self._started_at = 0  # where this start's output begins in the log

    def config_text(self) -> str:
        raise NotImplementedError

    def launch(self: _Process) -> _Process:
        """Start the process; :meth:`wait_serving` waits for it (start several at once)."""
        self.config.write_text(self.config_text())
        self._started_at = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "a") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "linkserver.net.serve", "--config", str(self.config)],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        return self

    def wait_serving(self: _Process, timeout: float = 90) -> _Process:
        raise NotImplementedError

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Return once ``ready()`` (HTTP to the node) says so and this start's output says it
        listens on its port (not another process that took the port meanwhile: the answer
        would be someone else's); AssertionError with the node's output when the process
        exits or ``timeout`` passes first."""
        assert self.process is not None, "launch() it first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{what} exited with {self.process.returncode}:\n{self.log()}")
            try:
                if ready() and f"listening on {self.url} " in self.log()[self._started_at :]:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"{what} did not serve within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        """Everything the process wrote so far (all its starts)."""
        return self.log_path.read_text() if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: nothing is flushed or given back."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM, and SIGKILL if the node has not stopped within ``timeout`` seconds."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


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
